// SPDX-License-Identifier: MIT
// Slab: one medium block of a size class's slab_bytes (and its lead), carved into equal blocks
// (layout in size_class.h). The slab header sits at the start of the medium block, or up to
// kMaxSlabLead bytes in (SlabPlacement), which the heap finds from its arena's block-start bitmap
// (segregated_fit.h), never from memory near a block.
//
// Owns: the slab's free list, its allocated bitmap and its counters. A slab is touched only
// under the lock of its class (class_cache.h); it takes no lock itself. The free() fast path
// reads one bitmap word without the lock (the word holding a block its caller owns, whose bit
// nobody else may change), so bitmap words are written with relaxed atomic stores.
// Invariants, with n = block_count of the class:
//   used + |free list| + (n - fresh) == n
//   popcount(allocated bitmap) == used
//   bit i set  <=>  block i is handed out (to the program or to a CPU cache, cpu_cache.h);
//   free-list blocks and blocks >= fresh have bit 0
//   state == kSlabInUse  <=>  the slab belongs to its class cache (cleared when it goes back);
//   state == kSlabRetired: its free list was found corrupt; it left its class for good
//   slab == slab_in_block(its medium block, the heap's SlabPlacement), lead == the distance
// Hardening (as Linux's SLAB_FREELIST_HARDENED): a free block's link to the next one is stored
// encoded, link == next ^ secret ^ &link, with the heap's secret; slab_take() decodes it and
// follows it only if it names a free block start of the same slab. So a write after free can
// make malloc fail (the slab is retired and the corruption reported), never hand out memory
// outside the slab's blocks. Every free block also carries free_mark() in its second word:
// a free of a block that carries it is a double free, caught at the call.
// Blocks at index >= fresh have never been handed out: a new slab costs O(1).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/assert.h"
#include "heap/size_class.h"

namespace bedrock::heap {

// The first two words of a free block.
struct FreeBlock {
    uintptr_t link; // the next free block of the slab, encoded (see above)
    uintptr_t mark; // free_mark(slab, block, secret)
};

inline constexpr uint8_t kSlabInUse = 0x5a;
inline constexpr uint8_t kSlabRetired = 0xa5;

struct Slab {
    Slab* next; // in the class's partial list or reserve
    Slab* prev;
    FreeBlock* free_list; // the first free block (the slab header is not the caller's: plain)
    uint8_t used;         // blocks handed out
    uint8_t fresh;        // index of the first never-used block
    uint8_t lead;         // bytes from the start of its medium block to this header
    uint8_t class_index;
    uint8_t state; // kSlabInUse while its class holds it
    // The arenas' count of slabs given back when it was carved (low kIncarnationBits): a slab
    // carved where another stood has another (the other was given back in between), and so do
    // its blocks' free marks.
    uint16_t incarnation;

    [[nodiscard]] const SlabLayout& layout() const { return kSlabLayouts[class_index]; }
    [[nodiscard]] bool is_full() const { return used == layout().block_count; }
    [[nodiscard]] uint64_t* bitmap() { return reinterpret_cast<uint64_t*>(this + 1); }
    [[nodiscard]] const uint64_t* bitmap() const {
        return reinterpret_cast<const uint64_t*>(this + 1);
    }
};
static_assert(sizeof(Slab) == kSlabHeaderBytes);
static_assert(alignof(Slab) <= kMinBlockSize);
static_assert(slab_layout(0).block_count < 256, "used and fresh fit 8 bits");

// What a pointer into a slab is.
enum class SlabLookup {
    Live,           // the start of a handed-out block
    Interior,       // inside a block's bytes, not at its start
    OutsideBlocks,  // in the slab's header, bitmap or unused tail
    NeverHandedOut, // the start of a block the slab never handed out
    AlreadyFree,    // the start of a block handed out before and free now
    Corrupt,        // slab_take(): the free list's next link does not name a free block
};

// The part of a free mark that names the block: its second word's address, with bits 0-46 also
// mixed with a multiple of the whole address. Plain `slab ^ address` would depend only on the
// block's offset in its slab and the slab's low address bits, so blocks at one offset in slabs
// placed alike would share a mark, and a mark left in memory that a later block covers (a slab
// given back, a medium block or large run over its old place) and copied into another small
// block (a realloc, a memcpy of fresh memory) would make that live block look freed: its free
// reported as a double free, the block lost. Mixed, two blocks' marks meet only where the
// multiples' top 47 bits happen to differ as their slabs' addresses do. Bits 47-63 are the
// address's own, so the mark's top bit is still the secret's.
[[nodiscard]] inline uintptr_t block_mark_key(const void* block) {
    constexpr uint64_t kMixer = 0x9e3779b97f4a7c15; // odd: 2^64 / the golden ratio
    constexpr unsigned kMixedShift = 17;            // keeps the top bits the address's own
    const uintptr_t address = reinterpret_cast<uintptr_t>(block) + 8;
    return address ^ static_cast<uintptr_t>((uint64_t{address} * kMixer) >> kMixedShift);
}
// A slab's incarnation takes bits 48-62 of its blocks' free marks, where a slab's address and
// its blocks' (which share bits 47-63) cancel out.
inline constexpr unsigned kIncarnationBits = 15;
inline constexpr unsigned kIncarnationShift = 48;
inline constexpr uintptr_t kIncarnationMask = (uintptr_t{1} << kIncarnationBits) - 1;
// The free mark of `block` in the slab at `slab` of incarnation `incarnation`.
[[nodiscard]] inline uintptr_t free_mark_at(uintptr_t slab, uintptr_t incarnation,
                                            const void* block, uintptr_t secret) {
    return slab ^ secret ^ block_mark_key(block) ^
           ((incarnation & kIncarnationMask) << kIncarnationShift);
}
// What every free block of `slab` holds in its second word; a live block holds anything else
// (malloc clears it; forging it takes the heap's secret). Never 0: the secret's top bit is set
// and a slab and its blocks share their top address bits, which block_mark_key() keeps (the
// incarnation stays below bit 63). A mark left in memory a slab once covered (which a realloc or
// a memcpy may copy into a live small block) names that slab's incarnation, never that of a
// slab carved at the same address since.
[[nodiscard]] inline uintptr_t free_mark(const Slab* slab, const void* block, uintptr_t secret) {
    return free_mark_at(reinterpret_cast<uintptr_t>(slab), slab->incarnation, block, secret);
}
// The slab a free mark names, if `mark` is free_mark(slab, block, secret) (its incarnation set
// aside: bits 48-63 are the block's own); anything else for any other value (the caller checks
// it is within a slab's reach below the block).
[[nodiscard]] inline uintptr_t slab_named_by_mark(uintptr_t mark, const void* block,
                                                  uintptr_t secret) {
    constexpr uintptr_t kLowBits = (uintptr_t{1} << kIncarnationShift) - 1;
    return ((mark ^ secret ^ block_mark_key(block)) & kLowBits) |
           (reinterpret_cast<uintptr_t>(block) & ~kLowBits);
}
// A free block's encoded link to `next` (null included) at `block`.
[[nodiscard]] inline uintptr_t encode_link(const FreeBlock* next, const FreeBlock* block,
                                           uintptr_t secret) {
    return reinterpret_cast<uintptr_t>(next) ^ secret ^ reinterpret_cast<uintptr_t>(block);
}

// Bytes after every slab header that are its bitmap or the padding before block 0: two words,
// what the class with the most blocks needs.
inline constexpr size_t kSlabBitmapSpan = 16;
static_assert(
    [] {
        for (unsigned index = 0; index < kSizeClassCount; ++index) {
            if (slab_layout(index).first_offset < kSlabHeaderBytes + kSlabBitmapSpan ||
                slab_layout(index).block_count > kSlabBitmapSpan * 8) {
                return false;
            }
        }
        return true;
    }(),
    "every class's bitmap fits in two words, and its bitmap and padding span them");
// Where a slab's header sits in the medium block taken for it, for a heap (Arenas::
// slab_placement()). Packed: at its start. OwnLine: at the first address 16 bytes past a cache
// line, 0-48 bytes in (kMaxSlabLead, taken with the block), so that the header and bitmap (48
// bytes, kSlabFirstOffset) end where the line does. That line, read by the free() fast path of
// every CPU that frees one of the slab's blocks (its class and its bitmap), then holds no block
// and nothing of the memory before the slab, which other CPUs write at every malloc and free of
// their blocks (each block's free mark): 2 threads freeing 16-527 byte blocks of shared slabs at
// once took 1.4-2.0 times as long with the line shared (tests/bench/many_threads.c). Its other 16
// bytes are the medium block's header (written only under the arenas' lock when the block before
// is given back) or the lead. Heaps with CPU caches on a build for more than one CPU use OwnLine;
// the others Packed (a region below CpuCaches::kMinRegionBytes, firmware on one core), where no
// other CPU reads the line, or none without the class lock.
enum class SlabPlacement : uint8_t { Packed, OwnLine };
inline constexpr size_t kCacheLineBytes = 64;
inline constexpr size_t kSlabFirstOffset = kSlabHeaderBytes + kSlabBitmapSpan;
inline constexpr size_t kMaxSlabLead = kCacheLineBytes - kMinBlockSize;
static_assert(
    [] {
        for (unsigned index = 0; index < kSizeClassCount; ++index) {
            if (slab_layout(index).first_offset != kSlabFirstOffset) {
                return false;
            }
        }
        return true;
    }(),
    "every class's block 0 starts a line when its header is placed OwnLine");
// How far back from a slab's block the start of the slab's medium block can be: what a lookup of
// the medium block holding a slab's block must reach.
inline constexpr size_t kMaxSlabReach = kMaxSlabBytes + kMaxSlabLead;

// The bytes of the medium block a slab of `layout` takes.
constexpr size_t slab_block_bytes(const SlabLayout& layout, SlabPlacement placement) {
    return layout.slab_bytes + (placement == SlabPlacement::OwnLine ? kMaxSlabLead : 0);
}
// Where the header of the slab in medium block `block` (16-aligned) is.
[[nodiscard]] inline Slab* slab_in_block(void* block, SlabPlacement placement) {
    const auto start = reinterpret_cast<uintptr_t>(block);
    const uintptr_t lead = placement == SlabPlacement::OwnLine
                               ? (kCacheLineBytes - kSlabFirstOffset - start) % kCacheLineBytes
                               : 0;
    return reinterpret_cast<Slab*>(start + lead);
}
// The medium block `slab` was carved from (the start of its lead).
[[nodiscard]] inline void* block_of_slab(const Slab* slab) {
    return const_cast<unsigned char*>(reinterpret_cast<const unsigned char*>(slab)) - slab->lead;
}

// Sets up a slab of class `class_index` and incarnation `incarnation` in medium block `block`
// (16-byte aligned, slab_block_bytes() long), its header placed as `placement` says, with its
// block 0 handed out (a new slab is made for an allocation), and returns it; the block is
// slab_detail::first_block(slab). O(1). Inline: a refill that carves a slab is malloc's worst
// case.
inline Slab* slab_init_taking_first(void* block, SlabPlacement placement, unsigned class_index,
                                    uint64_t incarnation) {
    Slab* slab = slab_in_block(block, placement);
    slab->next = nullptr;
    slab->prev = nullptr;
    slab->free_list = nullptr;
    slab->used = 1;
    slab->fresh = 1;
    slab->lead = static_cast<uint8_t>(reinterpret_cast<uintptr_t>(slab) -
                                      reinterpret_cast<uintptr_t>(block));
    slab->class_index = static_cast<uint8_t>(class_index);
    __atomic_store_n(&slab->state, kSlabInUse,
                     __ATOMIC_RELEASE); // after its class (see cpu_cache.cpp)
    slab->incarnation = static_cast<uint16_t>(incarnation & kIncarnationMask);
    // Both bitmap words whatever the class: the second is the padding before block 0 when the
    // class has no more than 64 blocks (kSlabBitmapSpan).
    __atomic_store_n(&slab->bitmap()[0], uint64_t{1}, __ATOMIC_RELAXED);
    __atomic_store_n(&slab->bitmap()[1], uint64_t{0}, __ATOMIC_RELAXED);
    return slab;
}
static_assert(kSlabBitmapSpan == 16, "slab_init_taking_first() writes two bitmap words");

// Checks the invariants above, following the free list only through links that decode to free
// blocks of the slab. O(n).
[[nodiscard]] bool slab_check(const Slab* slab, uintptr_t secret);

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

inline void set_bit(uint64_t* bitmap, uint32_t index) {
    __atomic_store_n(&bitmap[index / 64], bitmap[index / 64] | uint64_t{1} << (index % 64),
                     __ATOMIC_RELAXED);
}
inline void clear_bit(uint64_t* bitmap, uint32_t index) {
    __atomic_store_n(&bitmap[index / 64], bitmap[index / 64] & ~(uint64_t{1} << (index % 64)),
                     __ATOMIC_RELAXED);
}

} // namespace slab_detail

// Hands out one block, or null (changing nothing but retiring nothing either) when the free
// list's next link is corrupt: the caller retires the slab and reports. Precondition:
// !slab->is_full(). O(1). Inline: the allocation path.
[[nodiscard]] inline void* slab_take(Slab* slab, uintptr_t secret) {
    const SlabLayout& layout = slab->layout();
    uint32_t index;
    void* block;
    if (FreeBlock* head = slab->free_list; head != nullptr) {
        const uintptr_t first = slab_detail::first_block(slab);
        const auto next =
            reinterpret_cast<FreeBlock*>(head->link ^ secret ^ reinterpret_cast<uintptr_t>(head));
        if (next != nullptr) {
            // Followed only to a free block start of this slab: index < fresh, bit clear.
            const uintptr_t offset = reinterpret_cast<uintptr_t>(next) - first;
            const uint32_t next_index = slab_detail::index_of(layout, offset);
            if (offset >= kMaxSlabBytes || next_index >= slab->fresh ||
                size_t{next_index} * layout.block_size != offset ||
                slab_detail::bit_is_set(slab->bitmap(), next_index)) [[unlikely]] {
                return nullptr;
            }
        }
        slab->free_list = next;
        block = head;
        index = slab_detail::index_of(layout, reinterpret_cast<uintptr_t>(block) - first);
    } else {
        BEDROCK_DEBUG_ASSERT(slab->fresh < layout.block_count);
        index = slab->fresh++;
        block = reinterpret_cast<void*>(slab_detail::first_block(slab) +
                                        size_t{index} * layout.block_size);
    }
    slab_detail::set_bit(slab->bitmap(), index);
    ++slab->used;
    return block;
}

// Whether `block` is the start of a block `slab` handed out (to the program or a CPU cache),
// read without the class lock: the free() fast path. Stable for a block its caller owns; for
// anything else the answer may be stale and is confirmed under the lock (ClassCache::free) or
// when a CPU cache flushes the block. O(1).
[[nodiscard]] inline bool slab_handed_out(const Slab* slab, const void* block) {
    const SlabLayout& layout = slab->layout();
    const uintptr_t offset = reinterpret_cast<uintptr_t>(block) - slab_detail::first_block(slab);
    const uint32_t index = slab_detail::index_of(layout, offset);
    return offset < kMaxSlabBytes && index < layout.block_count &&
           size_t{index} * layout.block_size == offset &&
           ((__atomic_load_n(&slab->bitmap()[index / 64], __ATOMIC_RELAXED) >> (index % 64)) & 1) !=
               0;
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
// (Live: it was, and is free now, linked and marked; anything else: nothing changed). O(1).
// Inline: the free path.
[[nodiscard]] inline SlabLookup slab_give(Slab* slab, void* block, uintptr_t secret) {
    const SlabLayout& layout = slab->layout();
    const uintptr_t offset = reinterpret_cast<uintptr_t>(block) - slab_detail::first_block(slab);
    const uint32_t index = slab_detail::index_of(layout, offset);
    if (offset >= kMaxSlabBytes || index >= layout.block_count ||
        size_t{index} * layout.block_size != offset ||
        !slab_detail::bit_is_set(slab->bitmap(), index)) [[unlikely]] {
        return slab_classify(slab, block);
    }
    slab_detail::clear_bit(slab->bitmap(), index);
    auto* freed = static_cast<FreeBlock*>(block);
    freed->link = encode_link(slab->free_list, freed, secret);
    freed->mark = free_mark(slab, block, secret);
    slab->free_list = freed;
    --slab->used;
    return SlabLookup::Live;
}

} // namespace bedrock::heap
