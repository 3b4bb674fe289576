// SPDX-License-Identifier: MIT
// Slab: block carving, the free list and the allocated bitmap (invariants in slab.h).
#include "heap/slab.h"

#include "support/bits.h"

namespace bedrock::heap {

using slab_detail::bit_is_set;
using slab_detail::first_block;
using slab_detail::index_of;

SlabLookup slab_classify(const Slab* slab, const void* address) {
    const unsigned char* holder = slab_block_holding(slab, address);
    if (holder == nullptr) {
        return SlabLookup::OutsideBlocks;
    }
    if (holder != address) {
        return SlabLookup::Interior;
    }
    const uint32_t index =
        index_of(slab->layout(), reinterpret_cast<uintptr_t>(address) - first_block(slab));
    if (index >= slab->fresh) {
        return SlabLookup::NeverHandedOut;
    }
    return bit_is_set(slab->bitmap(), index) ? SlabLookup::Live : SlabLookup::AlreadyFree;
}

bool slab_check(const Slab* slab, uintptr_t secret) {
    if (slab->state != kSlabInUse || slab->class_index >= kSizeClassCount) {
        return false;
    }
    const SlabLayout& layout = slab->layout();
    if (slab->fresh > layout.block_count || slab->used > slab->fresh) {
        return false;
    }
    // Its lead is where one placement or the other puts the header in its block.
    void* medium = block_of_slab(slab);
    if (slab_in_block(medium, SlabPlacement::Packed) != slab &&
        slab_in_block(medium, SlabPlacement::OwnLine) != slab) {
        return false;
    }
    uint32_t set_bits = 0;
    for (uint32_t word = 0; word < (layout.block_count + 63) / 64; ++word) {
        set_bits += popcount(slab->bitmap()[word]);
    }
    uint32_t free_blocks = 0;
    for (const FreeBlock* block = slab->free_list; block != nullptr;
         block = reinterpret_cast<const FreeBlock*>(block->link ^ secret ^
                                                    reinterpret_cast<uintptr_t>(block))) {
        const uintptr_t offset = reinterpret_cast<uintptr_t>(block) - first_block(slab);
        const uint32_t index = index_of(layout, offset);
        if (offset >= kMaxSlabBytes || index >= slab->fresh ||
            size_t{index} * layout.block_size != offset || bit_is_set(slab->bitmap(), index) ||
            block->mark != free_mark(slab, block, secret) || ++free_blocks > layout.block_count) {
            return false;
        }
    }
    return set_bits == slab->used && slab->used + free_blocks == slab->fresh;
}

} // namespace bedrock::heap
