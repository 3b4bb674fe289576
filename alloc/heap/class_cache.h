// ClassCache: the slabs of one size class in one heap, and the policy for getting and
// returning them.
//
// Owns: the partial list, the empty reserve, the class statistics. Everything here is guarded
// by m_lock; a full slab is on no list (its blocks lead back to it through the arena's
// block-start bitmap, see heap.cpp).
// Invariants:
//   slabs == |partial| + |full| + |reserve|
//   blocks_in_use == sum of used over the class's slabs
//   every slab on partial has used < block_count, and exactly empty_on_partial (0 or 1) of them
//   has used == 0; every slab in reserve has used == 0;  |reserve| <= kReserveSlabs
// Policy: a slab that becomes empty stays on the partial list if no other empty slab is there
// (so a malloc/free loop on one slab touches no list), else goes to the reserve if it has room,
// else straight back to the arenas; an allocation with no partial slab takes the reserve before
// the arenas. So a malloc/free loop at a slab boundary costs no arena traffic, and a class holds
// at most 1 + kReserveSlabs empty slabs once its blocks are freed (heap_trim gives them back).
// Slabs are medium blocks of the heap's arenas (arenas.h).
// Lock order: m_lock -> the arenas' lock -> the page frame allocator's. Classes never take each
// other's locks.
//
// The per-CPU front (later) sits in front of allocate()/free(): it will keep a few blocks per
// CPU and refill/flush through these two calls, so nothing here changes.
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

class alignas(64) ClassCache {
public:
    void init(unsigned class_index) { m_class_index = static_cast<uint8_t>(class_index); }

    // A block of this class, or null if a new slab was needed and `arenas` had none.
    // `requested` feeds the statistics only. O(1) plus at most one arena call.
    [[nodiscard]] void* allocate(Arenas& arenas, size_t requested);
    // Takes back `block` of `slab` if `slab` is still a slab of this class and `block` one of its
    // live blocks, returning Live; otherwise returns what `block` is (changing nothing; the
    // caller reports). O(1) plus at most one arena call.
    [[nodiscard]] SlabLookup free(Arenas& arenas, Slab* slab, void* block);
    // What `block` is in `slab` (found as a slab of this class), read under the class lock.
    [[nodiscard]] SlabLookup classify(const Slab* slab, const void* block);
    // Gives every reserve slab back to `arenas`.
    void trim(Arenas& arenas);

    [[nodiscard]] SizeClassStatistics statistics();
    [[nodiscard]] bool check();

private:
    using SlabList = IntrusiveList<Slab, &Slab::prev, &Slab::next>;
    void give_slab_locked(Arenas& arenas, Slab* slab);

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

} // namespace bedrock::heap
