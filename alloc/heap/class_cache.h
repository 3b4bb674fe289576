// SPDX-License-Identifier: MIT
// ClassCache: the slabs of one size class in one heap, and the policy for getting and
// returning them; the refill, free and drain interface of the per-CPU caches (cpu_cache.h).
//
// Owns: the partial list, the empty reserve, the class statistics. Everything here is guarded
// by m_lock; a full slab is on no list (its blocks lead back to it through the arena's
// block-start bitmap, see heap.cpp), nor is a retired one (slab.h), which has left the class.
// Invariants:
//   slabs == |partial| + |full| + |reserve|
//   blocks_in_use == sum of used over the class's slabs (blocks held by CPU caches included:
//     the statistics subtract them, cpu_cache.h)
//   every slab on partial has used < block_count, and exactly empty_on_partial (0 or 1) of them
//   has used == 0; every slab in reserve has used == 0
//   the reserve's slabs beyond the first kReserveSlabs (its excess) are slabs to give back
// Policy: a slab that becomes empty stays on the partial list if no other empty slab is there
// (so a malloc/free loop on one slab touches no list), else goes to the reserve; a refill with
// no partial slab takes the reserve before the arenas. So a malloc/free loop at a slab boundary
// costs no arena traffic. Which call gives an empty slab back to the arenas - a merge in the
// segregated fit, the costliest step a heap call can make short of the page frame allocator -
// is chosen so that no call pays for it on top of another costly step:
//   - a free never does (ClassCache::free, from a CPU whose magazine is full or that has no
//     cache, and free_batch, a CPU cache's drain): a slab it empties joins the reserve, maybe as
//     excess, so a free that looked its block up in the page map pays no merge as well;
//   - a malloc (allocate_batch, a CPU cache's refill, or allocate()) that needs no new slab
//     gives one slab of the excess back, and takes one block then; one that finds no partial
//     slab takes the reserve's first (the excess saves a carve); only one with neither carves a
//     new slab, and hands out just its first block;
//   - a drain gives back the excess (give_excess), heap_trim and the reclaims every empty slab.
// So no malloc or free makes more than one arena call, and the excess, bounded by the class's
// slabs, is held only until the class's next mallocs that reach it, a drain, a trim, or until
// memory runs short (the reclaims).
// Slabs are medium blocks of the heap's arenas (arenas.h).
// Lock order: m_lock -> the arenas' lock -> the page frame allocator's. Classes never take each
// other's locks.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/heap.h"
#include "bedrock/spinlock.h"
#include "heap/arenas.h"
#include "heap/slab.h"
#include "support/intrusive_list.h"

namespace bedrock::heap {

inline constexpr uint32_t kReserveSlabs = 1;

// What a flush found wrong with the blocks it was given (raised by the caller once no lock is
// held and interrupts are back on).
struct FlushFailures {
    uint32_t count = 0;    // blocks freed twice or whose free mark was overwritten
    void* first = nullptr; // the first of them
    ErrorKind kind = ErrorKind::DoubleFree;
};

class alignas(64) ClassCache {
public:
    void init(unsigned class_index) { m_class_index = static_cast<uint8_t>(class_index); }

    // A block of this class (its free mark cleared), or null if a new slab was needed and
    // `arenas` had none. `requested` feeds the statistics. A slab whose free list is found
    // corrupt is retired and returned in `corrupt` (the caller reports it). O(1) plus at most
    // one arena call.
    [[nodiscard]] void* allocate(Arenas& arenas, size_t requested, uintptr_t secret,
                                 Slab*& corrupt);
    // What allocate_batch() gives: a block to hand out (its free mark cleared; null: no memory)
    // and how many more it put in the caller's array, each keeping its free mark.
    struct Batch {
        void* block;
        uint32_t cached;
    };
    // A block for a CPU cache's malloc, and up to `count` more (of the same slab) into `blocks`
    // for the cache; a new slab gives just the one block. Counted in blocks_in_use, not in
    // allocations (the CPU counts those). `corrupt` as allocate(). O(count) plus at most one
    // arena call (a carve, or one slab of the excess given back: that refill takes no more).
    // Inline (below): a refill that carves a slab or gives one back is malloc's worst case.
    [[nodiscard]] [[gnu::always_inline]] Batch
    allocate_batch(Arenas& arenas, void** blocks, uint32_t count, uintptr_t secret, Slab*& corrupt);
    // Takes back `block` of `slab` if `slab` is still a slab of this class and `block` one of its
    // live blocks, returning Live; otherwise returns what `block` is (changing nothing; the
    // caller reports). Makes no arena call: a slab it empties joins the reserve. O(1).
    [[nodiscard]] SlabLookup free(Slab* slab, void* block, uintptr_t secret);
    // Takes back blocks[0 .. count) from a CPU cache, each found from its free mark
    // (cpu_cache.h), or, when a write after free overwrote the mark, from `arenas`' metadata
    // (counted in `failures` as damage, the block taken back all the same); blocks that are no
    // live blocks of this class (freed twice) are left alone and counted in `failures`. Makes no
    // arena call but that lookup: a slab it empties joins the reserve. O(count).
    void free_batch(void* const* blocks, uint32_t count, uintptr_t secret, const Arenas& arenas,
                    FlushFailures& failures);
    // Gives the reserve's excess back to `arenas` (a drain's). O(excess).
    void give_excess(Arenas& arenas);
    // Adds a CPU cache's counters (allocations served from it) when its storage goes. O(1).
    void absorb(uint64_t allocations, uint64_t bytes_requested);
    // What `block` is in `slab` (found as a slab of this class), read under the class lock.
    [[nodiscard]] SlabLookup classify(const Slab* slab, const void* block);
    // Gives every empty slab but none of the partial ones' blocks back to `arenas`.
    void trim(Arenas& arenas);
    // trim() for a caller that must not wait: only if this class's lock and the arenas' are
    // free now. Returns whether a slab went back. O(partial slabs).
    bool trim_without_waiting(Arenas& arenas);

    [[nodiscard]] SizeClassStatistics statistics();
    [[nodiscard]] bool check(uintptr_t secret);

    // heap_lock_all()'s hold on m_lock, for fork() (bedrock/heap.h).
    [[nodiscard]] platform::InterruptState lock_all() { return m_lock.lock(); }
    void unlock_all(platform::InterruptState previous) { m_lock.unlock(previous); }

private:
    using SlabList = IntrusiveList<Slab, &Slab::prev, &Slab::next>;
    // An empty slab off every list leaves the class for `arenas` (counted there as leaving, then
    // no longer counted here, not in use).
    [[gnu::always_inline]] void leave_class_locked(Arenas& arenas, Slab* slab);
    [[gnu::always_inline]] void give_slab_locked(Arenas& arenas, Slab* slab);
    // The next empty slab this class keeps (on the partial list, then in the reserve), taken off
    // its list and out of the class for the arenas to have; null when there is none.
    [[nodiscard]] Slab* leave_empty_slab_locked(Arenas& arenas);
    // The reserve's first slab, taken off it. Precondition: the reserve is not empty.
    [[gnu::always_inline]] Slab* pop_reserve_locked();
    // Counts `blocks` more handed out (blocks_in_use and its peak).
    [[gnu::always_inline]] void count_handed_out_locked(uint32_t blocks);
    // The slab a malloc takes from: the partial list's first, else the reserve's first (moved
    // onto the partial list); null when the class has neither.
    [[gnu::always_inline]] Slab* slab_to_take_from_locked();
    // allocate_batch() under m_lock.
    [[gnu::always_inline]] Batch allocate_locked(Arenas& arenas, void** blocks, uint32_t count,
                                                 uintptr_t secret, Slab*& corrupt);
    // allocate_locked() once `slab`'s first link was found corrupt: retires it (the first one a
    // call meets) and tries the next slab. Out of line: only a write after free comes here.
    [[gnu::noinline]] Batch allocate_after_corrupt_locked(Arenas& arenas, Slab* slab, void** blocks,
                                                          uint32_t count, uintptr_t secret,
                                                          Slab*& corrupt);
    // A block of `slab` (on the partial list) and up to `count` more into `blocks`, each with
    // its free mark, or - when the reserve holds excess - just the block, and one slab of the
    // excess given back to `arenas`; a null block when `slab`'s first link is corrupt.
    [[gnu::always_inline]] Batch take_locked(Arenas& arenas, Slab* slab, void** blocks,
                                             uint32_t count, uintptr_t secret);
    // A new slab from `arenas`, onto the (empty) partial list, and its first block; a null block
    // when the arenas have no room.
    [[gnu::always_inline]] Batch carve_locked(Arenas& arenas);
    // free() under m_lock.
    [[gnu::always_inline]] SlabLookup free_locked(Slab* slab, void* block, uintptr_t secret);
    void retire_locked(Slab* slab);

    SpinLock m_lock;
    uint8_t m_class_index = 0;
    uint8_t m_empty_on_partial = 0;
    uint32_t m_reserve_count = 0;
    SlabList m_partial;
    SlabList m_reserve;
    uint64_t m_slabs = 0;
    uint64_t m_blocks_in_use = 0;
    uint64_t m_peak_blocks_in_use = 0;
    uint64_t m_allocations = 0;
    uint64_t m_bytes_requested = 0;
};
static_assert(sizeof(ClassCache) == 64, "one cache line per class: no false sharing");

// The malloc side under the lock, inline so that a refill is one frame in the caller's slow path
// (heap.cpp) around the one arena call it may make.

inline void ClassCache::leave_class_locked(Arenas& arenas, Slab* slab) {
    BEDROCK_DEBUG_ASSERT(slab->used == 0 && slab->state == kSlabInUse);
    arenas.note_slab_leaving();
    __atomic_store_n(&slab->state, uint8_t{0}, __ATOMIC_RELEASE); // after the count (see there)
    --m_slabs;
}

inline void ClassCache::give_slab_locked(Arenas& arenas, Slab* slab) {
    leave_class_locked(arenas, slab);
    arenas.give(block_of_slab(slab), BlockUse::Slab);
}

inline Slab* ClassCache::pop_reserve_locked() {
    Slab* slab = m_reserve.front();
    m_reserve.remove(*slab);
    --m_reserve_count;
    return slab;
}

inline void ClassCache::count_handed_out_locked(uint32_t blocks) {
    m_blocks_in_use += blocks;
    if (m_blocks_in_use > m_peak_blocks_in_use) {
        m_peak_blocks_in_use = m_blocks_in_use;
    }
}

inline Slab* ClassCache::slab_to_take_from_locked() {
    Slab* slab = m_partial.front();
    if (slab == nullptr && !m_reserve.empty()) {
        slab = pop_reserve_locked();
        m_partial.push_front(*slab);
    }
    return slab;
}

inline ClassCache::Batch ClassCache::take_locked(Arenas& arenas, Slab* slab, void** blocks,
                                                 uint32_t count, uintptr_t secret) {
    BEDROCK_DEBUG_ASSERT(slab->state == kSlabInUse && slab->class_index == m_class_index &&
                         !slab->is_full());
    if (slab->used == 0) {
        m_empty_on_partial = 0; // the empty slab on the partial list, if it was this one
    }
    auto* block = static_cast<FreeBlock*>(slab_take(slab, secret));
    if (block == nullptr) [[unlikely]] {
        return Batch{nullptr, 0};
    }
    // A refill that gives a slab of the excess back takes one block: the merge is its cost.
    const bool give_excess = m_reserve_count > kReserveSlabs;
    uint32_t cached = 0;
    if (!give_excess) [[likely]] {
        while (cached < count && !slab->is_full()) {
            auto* more = static_cast<FreeBlock*>(slab_take(slab, secret));
            if (more == nullptr) [[unlikely]] {
                break; // a corrupt link: the slab is retired when it is met first
            }
            more->mark = free_mark(slab, more, secret);
            blocks[cached++] = more;
        }
    }
    if (slab->is_full()) {
        m_partial.remove(*slab);
    }
    count_handed_out_locked(1 + cached);
    block->mark = 0; // a live block
    if (give_excess) [[unlikely]] {
        give_slab_locked(arenas, pop_reserve_locked());
    }
    return Batch{block, cached};
}

inline ClassCache::Batch ClassCache::carve_locked(Arenas& arenas) {
    const SlabLayout& layout = kSlabLayouts[m_class_index];
    const SlabPlacement placement = arenas.slab_placement();
    void* base = arenas.take(slab_block_bytes(layout, placement), kMinBlockSize, BlockUse::Slab, 0);
    if (base == nullptr) {
        return Batch{nullptr, 0};
    }
    Slab* slab = slab_init_taking_first(base, placement, m_class_index, arenas.slabs_given());
    m_partial.push_front(*slab);
    ++m_slabs;
    count_handed_out_locked(1);
    auto* block = reinterpret_cast<FreeBlock*>(slab_detail::first_block(slab));
    block->mark = 0; // a live block
    return Batch{block, 0};
}

inline ClassCache::Batch ClassCache::allocate_locked(Arenas& arenas, void** blocks, uint32_t count,
                                                     uintptr_t secret, Slab*& corrupt) {
    Slab* slab = slab_to_take_from_locked();
    if (slab == nullptr) {
        return carve_locked(arenas);
    }
    const Batch batch = take_locked(arenas, slab, blocks, count, secret);
    if (batch.block == nullptr) [[unlikely]] {
        return allocate_after_corrupt_locked(arenas, slab, blocks, count, secret, corrupt);
    }
    return batch;
}

inline ClassCache::Batch ClassCache::allocate_batch(Arenas& arenas, void** blocks, uint32_t count,
                                                    uintptr_t secret, Slab*& corrupt) {
    LockGuard guard(m_lock);
    return allocate_locked(arenas, blocks, count, secret, corrupt);
}

} // namespace bedrock::heap
