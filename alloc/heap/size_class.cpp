// SPDX-License-Identifier: MIT
// The size-class table (see size_class.h for the classes, their layout and their waste bound).
#include "heap/size_class.h"

namespace bedrock::heap {
namespace {

constexpr bool layouts_are_sound() {
    for (unsigned i = 0; i < kSizeClassCount; ++i) {
        const SlabLayout layout = slab_layout(i);
        const size_t end = layout.first_offset + size_t{layout.block_count} * layout.block_size;
        if (layout.block_count < kMinBlocksPerSlab || end != layout.slab_bytes ||
            layout.slab_bytes > kMaxSlabBytes || layout.first_offset % kMinBlockSize != 0 ||
            (i > 0 && class_size(i) <= class_size(i - 1)) || class_of(class_size(i)) != i ||
            (i + 1 < kSizeClassCount && class_of(class_size(i) + 1) != i + 1)) {
            return false;
        }
    }
    return true;
}
static_assert(layouts_are_sound());

} // namespace

const SlabLayout kSlabLayouts[kSizeClassCount] = {
    slab_layout(0),  slab_layout(1),  slab_layout(2),  slab_layout(3),  slab_layout(4),
    slab_layout(5),  slab_layout(6),  slab_layout(7),  slab_layout(8),  slab_layout(9),
    slab_layout(10), slab_layout(11), slab_layout(12), slab_layout(13), slab_layout(14),
    slab_layout(15), slab_layout(16), slab_layout(17), slab_layout(18), slab_layout(19),
    slab_layout(20), slab_layout(21), slab_layout(22), slab_layout(23)};
static_assert(sizeof(kSlabLayouts) / sizeof(kSlabLayouts[0]) == kSizeClassCount);

} // namespace bedrock::heap
