// Size classes: which block size serves a request, and how a slab of each class is laid out.
//
// Owns the class table (compile-time constants, no state, no lock).
//
// Classes: 16, 32, ..., 128 in steps of 16, then four classes per doubling up to kMaxSmallSize:
//   class(i) = 16 * (i + 1)                                  for i < 8
//   class(i) = (128 << g) + (k + 1) * (32 << g)              for i = 8 + 4g + k, k < 4
// so every request r <= kMaxSmallSize gets class_size(class_of(r)) >= max(r, 1), and above 128
// bytes the rounding loses less than a fifth of the block:
//   class_size(class_of(r)) - r < class_size(class_of(r)) / 5          (r > 128)
//
// Slab layout (kSlabBytes, kSlabBytes-aligned; see slab.h):
//   [ Slab header | allocated bitmap | pad to first_offset ][ block 0 ][ block 1 ] ... [ tail ]
//   first_offset = round_up(header + bitmap, natural_alignment)
//   first_offset + blocks * size <= kSlabBytes < first_offset + (blocks + 1) * size
// where natural_alignment is the largest power of two dividing the class size, so every block
// of the class is aligned to it (memalign() uses that to serve small aligned requests).
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace bedrock::heap {

// Slabs are 64 KiB: a size that holds at least 7 blocks of the largest class and keeps the
// per-class fixed cost (one reserve slab) small. Every slab and every large block's header
// starts on a kSlabBytes boundary, which is how free() finds the metadata of any block.
inline constexpr size_t kSlabBytes = size_t{64} << 10;
inline constexpr unsigned kSlabPageOrder = 4; // kSlabBytes = 2^4 pages
static_assert(kSlabBytes == (size_t{4096} << kSlabPageOrder));

inline constexpr size_t kMinBlockSize = 16;   // also the alignment malloc() guarantees
inline constexpr size_t kMaxSmallSize = 8192; // larger requests are large blocks
inline constexpr unsigned kSizeClassCount = 32;

// Bytes of the fixed slab header before the bitmap (checked against sizeof(Slab) in slab.cpp).
inline constexpr size_t kSlabHeaderBytes = 64;

// The block size of class `index` (< kSizeClassCount).
constexpr size_t class_size(unsigned index) {
    if (index < 8) {
        return kMinBlockSize * (index + 1);
    }
    const unsigned group = (index - 8) / 4;
    const unsigned step = (index - 8) % 4;
    return (size_t{128} << group) + (step + 1) * (size_t{32} << group);
}

// The smallest class whose blocks hold `size` bytes (size <= kMaxSmallSize; 0 maps to class 0).
// O(1): one count-leading-zeros.
constexpr unsigned class_of(size_t size) {
    if (size <= 128) {
        return size == 0 ? 0 : static_cast<unsigned>((size + 15) / 16 - 1);
    }
    const size_t last = size - 1;
    const auto log2 = static_cast<unsigned>(63 - __builtin_clzll(last)); // >= 7
    return 8 + (log2 - 7) * 4 + static_cast<unsigned>((last >> (log2 - 2)) & 3);
}

// The largest power of two dividing the class size: every block of the class is aligned to it.
constexpr size_t natural_alignment(unsigned index) {
    const size_t size = class_size(index);
    return size & (~size + 1);
}

struct SlabLayout {
    uint32_t block_size;
    uint32_t first_offset; // offset of block 0 from the slab base
    uint32_t block_count;
    uint32_t reciprocal; // ceil(2^32 / block_size): offset / size as a multiply, see slab.cpp
};

constexpr SlabLayout slab_layout(unsigned index) {
    const size_t size = class_size(index);
    // The bitmap needs one bit per block; size it for the most blocks that could fit.
    const size_t bitmap_bytes = ((kSlabBytes / size + 63) / 64) * 8;
    const size_t align = natural_alignment(index);
    const size_t first = (kSlabHeaderBytes + bitmap_bytes + align - 1) & ~(align - 1);
    return SlabLayout{static_cast<uint32_t>(size), static_cast<uint32_t>(first),
                      static_cast<uint32_t>((kSlabBytes - first) / size),
                      static_cast<uint32_t>((uint64_t{1} << 32) / size + 1)};
}

// The table, computed at compile time.
extern const SlabLayout kSlabLayouts[kSizeClassCount];

// The smallest class that holds `size` bytes at an address aligned to `alignment` (a power of
// two), or kSizeClassCount if no small class does. O(kSizeClassCount) at worst.
unsigned class_for_aligned(size_t size, size_t alignment);

static_assert(class_size(kSizeClassCount - 1) == kMaxSmallSize);
static_assert(class_of(kMaxSmallSize) == kSizeClassCount - 1);
static_assert(class_of(129) == 8 && class_size(8) == 160);
static_assert(class_of(257) == 12 && class_size(12) == 320);

} // namespace bedrock::heap
