// Slab: kSlabBytes of one size class, carved into equal blocks (layout in size_class.h).
//
// Owns: the slab's free list, its allocated bitmap and its counters. A slab is touched only
// under the lock of its class (class_cache.h); it takes no lock itself.
// Invariants, with n = block_count of the class:
//   used + |free list| + (n - fresh) == n
//   popcount(allocated bitmap) == used
//   bit i set  <=>  block i is handed out; free-list blocks and blocks >= fresh have bit 0
// Blocks at index >= fresh have never been handed out: a new slab costs O(1), not O(n).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/assert.h"
#include "heap/run_header.h"

namespace bedrock::heap {

struct FreeBlock {
    FreeBlock* next;
};

struct Slab {
    RunHeader run;
    Slab* next; // in the class's partial list or reserve
    Slab* prev;
    FreeBlock* free_list;
    uint32_t used;  // blocks handed out
    uint32_t fresh; // index of the first never-used block
    uint64_t unused;

    [[nodiscard]] const SlabLayout& layout() const { return kSlabLayouts[run.class_index]; }
    [[nodiscard]] bool is_full() const { return used == layout().block_count; }
    [[nodiscard]] uint64_t* bitmap() { return reinterpret_cast<uint64_t*>(this + 1); }
    [[nodiscard]] const uint64_t* bitmap() const {
        return reinterpret_cast<const uint64_t*>(this + 1);
    }
};
static_assert(sizeof(Slab) == kSlabHeaderBytes);
static_assert(alignof(Slab) <= kMinBlockSize);

// What slab_give found.
enum class SlabFree {
    Freed,
    Interior,       // inside a block's bytes, not at its start
    OutsideBlocks,  // in the slab's header, bitmap or unused tail
    NeverHandedOut, // the start of a block the slab never handed out
    AlreadyFree,    // the start of a block handed out before and free now
};

// Sets up a slab (kind Slab or CheckedSlab) of class `class_index` at `base`
// (kSlabBytes-aligned). O(bitmap words).
Slab* slab_init(void* base, uint64_t source_address, Heap* owner, unsigned class_index,
                RunKind kind);
// Checks the invariants above. O(n).
[[nodiscard]] bool slab_check(const Slab* slab);

namespace slab_detail {

inline uintptr_t first_block(const Slab* slab) {
    return reinterpret_cast<uintptr_t>(slab) + slab->layout().first_offset;
}

// The block index of `offset` bytes past block 0, exact for offset < kSlabBytes: the
// reciprocal overestimates 1/size by less than 2^-32, which moves offset/size by less than
// kSlabBytes / 2^32 < 1 / kMaxSmallSize, too little to cross an integer.
inline uint32_t index_of(const SlabLayout& layout, uintptr_t offset) {
    return static_cast<uint32_t>((uint64_t{offset} * layout.reciprocal) >> 32);
}
static_assert(kSlabBytes * kMaxSmallSize < (uint64_t{1} << 32));

inline bool bit_is_set(const uint64_t* bitmap, uint32_t index) {
    return ((bitmap[index / 64] >> (index % 64)) & 1) != 0;
}

} // namespace slab_detail

// Hands out one block. Precondition: !slab->is_full(). O(1). Inline: the allocation fast path.
[[nodiscard]] inline void* slab_take(Slab* slab) {
    const SlabLayout& layout = slab->layout();
    uint32_t index;
    void* block;
    if (slab->free_list != nullptr) {
        FreeBlock* head = slab->free_list;
        slab->free_list = head->next;
        block = head;
        index = slab_detail::index_of(layout, reinterpret_cast<uintptr_t>(block) -
                                                  slab_detail::first_block(slab));
    } else {
        BEDROCK_DEBUG_ASSERT(slab->fresh < layout.block_count);
        index = slab->fresh++;
        block = reinterpret_cast<void*>(slab_detail::first_block(slab) +
                                        size_t{index} * layout.block_size);
    }
    slab->bitmap()[index / 64] |= uint64_t{1} << (index % 64);
    ++slab->used;
    return block;
}

// The block of `slab` whose bytes hold `address`, or null if `address` is in the slab's header,
// bitmap or unused tail. O(1).
[[nodiscard]] inline unsigned char* slab_block_holding(const Slab* slab, const void* address) {
    const SlabLayout& layout = slab->layout();
    const uintptr_t offset = reinterpret_cast<uintptr_t>(address) - slab_detail::first_block(slab);
    if (offset >= size_t{layout.block_count} * layout.block_size) {
        return nullptr;
    }
    return reinterpret_cast<unsigned char*>(slab_detail::first_block(slab) +
                                            size_t{slab_detail::index_of(layout, offset)} *
                                                layout.block_size);
}

// Whether `block` (a block start of the slab) is handed out.
[[nodiscard]] inline bool slab_block_is_allocated(const Slab* slab, const void* block) {
    const uintptr_t offset = reinterpret_cast<uintptr_t>(block) - slab_detail::first_block(slab);
    return slab_detail::bit_is_set(slab->bitmap(), slab_detail::index_of(slab->layout(), offset));
}

// What slab_give would find for `block`, changing nothing (Freed: a live block's start). O(1).
[[nodiscard]] SlabFree slab_classify(const Slab* slab, const void* block);

// Takes back `block` if it is a handed-out block of the slab. O(1). Inline: the free fast path.
[[nodiscard]] inline SlabFree slab_give(Slab* slab, void* block) {
    const SlabLayout& layout = slab->layout();
    const uintptr_t offset = reinterpret_cast<uintptr_t>(block) - slab_detail::first_block(slab);
    const uint32_t index = slab_detail::index_of(layout, offset);
    if (offset >= kSlabBytes || index >= layout.block_count ||
        size_t{index} * layout.block_size != offset ||
        !slab_detail::bit_is_set(slab->bitmap(), index)) [[unlikely]] {
        return slab_classify(slab, block);
    }
    slab->bitmap()[index / 64] &= ~(uint64_t{1} << (index % 64));
    auto* freed = static_cast<FreeBlock*>(block);
    freed->next = slab->free_list;
    slab->free_list = freed;
    --slab->used;
    return SlabFree::Freed;
}

} // namespace bedrock::heap
