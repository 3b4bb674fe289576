// ClassCache: the slabs of one size class in one heap, and the policy for getting and
// returning them.
//
// Owns: the partial list, the empty reserve, the class statistics. Everything here is guarded
// by m_lock; a full slab is on no list (its blocks lead back to it through run_of()).
// Invariants:
//   slabs == |partial| + |full| + |reserve|
//   blocks_in_use == sum of used over the class's slabs
//   every slab on partial has 0 < used < block_count, every slab in reserve has used == 0
//   |reserve| <= kReserveSlabs
// Policy: a slab that becomes empty goes to the reserve if it has room, else straight back to
// the page source; an allocation with no partial slab takes the reserve before the page
// source. So a malloc/free loop at a slab boundary costs no page traffic, and a class holds at
// most kReserveSlabs empty slabs (64 KiB) once its blocks are freed.
// Lock order: m_lock -> page source. Classes never take each other's locks.
//
// The per-CPU front (later) sits in front of allocate()/free(): it will keep a few blocks per
// CPU and refill/flush through these two calls, so nothing here changes.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/heap.h"
#include "bedrock/spinlock.h"
#include "heap/page_source.h"
#include "heap/slab.h"

namespace bedrock::heap {

inline constexpr uint32_t kReserveSlabs = 1;

class alignas(64) ClassCache {
public:
    // `kind`: Slab, or CheckedSlab for the checked-mode caches (their slabs hold only checked
    // blocks, which is how free() tells them apart).
    void init(unsigned class_index, RunKind kind) {
        m_class_index = static_cast<uint8_t>(class_index);
        m_kind = kind;
    }

    // A block of this class, or null if a new slab was needed and `source` had none.
    // `requested` feeds the statistics only. O(1) plus at most one page-source call.
    [[nodiscard]] void* allocate(PageSource& source, Heap* owner, size_t requested);
    // Takes back `block` of `slab` (a slab of this class) and returns Freed, or returns why it
    // cannot (changing nothing; the caller reports). O(1) plus at most one page-source call.
    [[nodiscard]] SlabFree free(PageSource& source, Slab* slab, void* block);
    // Gives every reserve slab back to `source`.
    void trim(PageSource& source);

    [[nodiscard]] SizeClassStatistics statistics();
    [[nodiscard]] bool check();

private:
    void unlink_partial(Slab* slab);
    void push_partial(Slab* slab);
    void release_locked(PageSource& source, Slab* slab);

    SpinLock m_lock;
    uint8_t m_class_index = 0;
    RunKind m_kind = RunKind::Slab;
    uint32_t m_reserve_count = 0;
    Slab* m_partial = nullptr;
    Slab* m_reserve = nullptr; // singly linked through next
    uint64_t m_slabs = 0;
    uint64_t m_blocks_in_use = 0;
    uint64_t m_peak_blocks_in_use = 0;
    uint64_t m_allocations = 0;
    uint64_t m_bytes_requested = 0;
};
static_assert(sizeof(ClassCache) == 64, "one cache line per class: no false sharing");

} // namespace bedrock::heap
