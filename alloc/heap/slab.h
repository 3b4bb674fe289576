// Slab: one medium block of a size class's slab_bytes, carved into equal blocks (layout in
// size_class.h). The slab header sits at the start of the medium block, which the heap finds
// from its arena's block-start bitmap (segregated_fit.h), never from memory near a block.
//
// Owns: the slab's free list, its allocated bitmap and its counters. A slab is touched only
// under the lock of its class (class_cache.h); it takes no lock itself.
// Invariants, with n = block_count of the class:
//   used + |free list| + (n - fresh) == n
//   popcount(allocated bitmap) == used
//   bit i set  <=>  block i is handed out; free-list blocks and blocks >= fresh have bit 0
//   state == kSlabInUse  <=>  the slab belongs to its class cache (cleared when it goes back)
// Blocks at index >= fresh have never been handed out: a new slab costs O(bitmap words).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/assert.h"
#include "heap/size_class.h"

namespace bedrock::heap {

struct FreeBlock {
    FreeBlock* next;
};

inline constexpr uint8_t kSlabInUse = 0x5a;

struct Slab {
    Slab* next; // in the class's partial list or reserve
    Slab* prev;
    FreeBlock* free_list;
    uint16_t used;  // blocks handed out
    uint16_t fresh; // index of the first never-used block
    uint8_t class_index;
    uint8_t state; // kSlabInUse while its class holds it
    uint16_t unused;

    [[nodiscard]] const SlabLayout& layout() const { return kSlabLayouts[class_index]; }
    [[nodiscard]] bool is_full() const { return used == layout().block_count; }
    [[nodiscard]] uint64_t* bitmap() { return reinterpret_cast<uint64_t*>(this + 1); }
    [[nodiscard]] const uint64_t* bitmap() const {
        return reinterpret_cast<const uint64_t*>(this + 1);
    }
};
static_assert(sizeof(Slab) == kSlabHeaderBytes);
static_assert(alignof(Slab) <= kMinBlockSize);
static_assert(slab_layout(0).block_count < 65536, "used and fresh fit 16 bits");

// What a pointer into a slab is.
enum class SlabLookup {
    Live,           // the start of a handed-out block
    Interior,       // inside a block's bytes, not at its start
    OutsideBlocks,  // in the slab's header, bitmap or unused tail
    NeverHandedOut, // the start of a block the slab never handed out
    AlreadyFree,    // the start of a block handed out before and free now
};

// Sets up a slab of class `class_index` at `base` (16-byte aligned, slab_bytes long).
// O(bitmap words).
Slab* slab_init(void* base, unsigned class_index);
// Checks the invariants above. O(n).
[[nodiscard]] bool slab_check(const Slab* slab);

namespace slab_detail {

inline uintptr_t first_block(const Slab* slab) {
    return reinterpret_cast<uintptr_t>(slab) + slab->layout().first_offset;
}

// The block index of `offset` bytes past block 0, exact for offset < kMaxSlabBytes: the
// reciprocal overestimates 1/size by less than 2^-32, which moves offset/size by less than
// kMaxSlabBytes / 2^32 < 1 / kMaxSmallSize, too little to cross an integer.
inline uint32_t index_of(const SlabLayout& layout, uintptr_t offset) {
    return static_cast<uint32_t>((uint64_t{offset} * layout.reciprocal) >> 32);
}
static_assert(uint64_t{kMaxSlabBytes} * kMaxSmallSize < (uint64_t{1} << 32));

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

// What `address` is in `slab`, changing nothing. O(1).
[[nodiscard]] SlabLookup slab_classify(const Slab* slab, const void* address);

// Takes back `block` if it is a handed-out block start of the slab, and returns what it was
// (Live: it was, and is free now; anything else: nothing changed). O(1). Inline: the free
// fast path.
[[nodiscard]] inline SlabLookup slab_give(Slab* slab, void* block) {
    const SlabLayout& layout = slab->layout();
    const uintptr_t offset = reinterpret_cast<uintptr_t>(block) - slab_detail::first_block(slab);
    const uint32_t index = slab_detail::index_of(layout, offset);
    if (offset >= kMaxSlabBytes || index >= layout.block_count ||
        size_t{index} * layout.block_size != offset ||
        !slab_detail::bit_is_set(slab->bitmap(), index)) [[unlikely]] {
        return slab_classify(slab, block);
    }
    slab->bitmap()[index / 64] &= ~(uint64_t{1} << (index % 64));
    auto* freed = static_cast<FreeBlock*>(block);
    freed->next = slab->free_list;
    slab->free_list = freed;
    --slab->used;
    return SlabLookup::Live;
}

} // namespace bedrock::heap
