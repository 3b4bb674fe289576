// SPDX-License-Identifier: MIT
// CPU page lists: the per-CPU caches of small free blocks in front of the buddy free blocks (as
// Linux's per-CPU page lists), for the CPU-list region (chosen at init: the largest region of the
// highest zone where that region holds an eighth of the RAM or every CPU's full lists). Owns the
// lists of every CPU slot and one state byte per page of that region, all in the allocator's
// metadata.
//
// A CPU's list of order k is a stack of page indexes (page - the region's first page) in the
// metadata, one cache line (no link lives in the pages): the fast paths pop and push at its top,
// the slow paths refill an empty one from the free blocks and give a full one's oldest blocks
// back, kCpuListBatch at a time, under the allocator's lock.
//
// Who changes a list (its count word says how many blocks it holds, and kListTaken marks it
// taken):
//   - its own CPU, interrupts masked, on the fast paths: it reads the count (acquire), and
//     commits a pop or a push with one compare-and-swap of the count word, which fails if the
//     word changed or is taken meanwhile (the fast path then takes the slow one; it never waits);
//   - whoever holds the allocator's lock: its own CPU on the slow paths (plain stores: nobody
//     else can change the list then), and any CPU taking a list back (drain_cpu_locked(): a
//     request that cannot be served otherwise, drain_cpu(), reserve_range()), which first sets
//     kListTaken with an atomic or (from then on the owner's commit fails and its entries
//     [0, count) are the taker's), gives those blocks back, and stores 0 (release).
// So kListTaken is set only while the allocator's lock is held, by its holder; a taker never
// waits for the owner, nor the owner for a taker (its slow path waits for the allocator's lock,
// whose holder does not wait for it): no cycle. A pushed entry is written, and its block marked
// Cached, before the commit publishes it (release); the taker reads them after its or (acquire).
// Lock order: interrupts masked on the calling CPU -> the allocator's lock (the slow paths); the
// list words are not locks: nobody waits on one.
//
// The state byte of the first page of a block says what it is, so that the fast free validates
// with one load and changes the state with one store of its own byte (a bitmap word is shared
// by many blocks and would need a lock or an atomic read-modify-write):
//   Allocated(k): a block of order k, allocated from a CPU list, not part of a run
//   Cached(k):    a block of order k on exactly one CPU's list
//   None:         anything else (a free block, a block or run allocated under the lock, ...)
// A block on a CPU list keeps its allocated bit in the region's bitmaps (so it never merges)
// and is counted as free only by the allocator's totals. Invariants (while no fast path is
// between its pushed entry and its commit):
//   count <= kCpuListBlocks for every list, and no list is taken outside the allocator's lock
//   page p is on a list of order k  <=>  state(p) == Cached(k); it is then allocated at order k,
//   not part of a run, and its tags are 0
//   state(p) == Allocated(k)  =>  an allocated block of order k starts at p, not part of a run
//   a region's free_pages + the pages of the lists = what free_pages() reports for it
#pragma once

#include <stdint.h>

#include "bedrock/page_frame_allocator.h"
#include "bedrock/platform.h"
#include "pages/block_math.h"

namespace bedrock {
namespace pages {

struct CpuPageList {
    uint32_t count;                 // blocks held, <= kCpuListBlocks, | kListTaken (atomics)
    uint32_t pages[kCpuListBlocks]; // page - the region's first page, oldest first
};

// Set in a list's count word by the allocator's lock holder while it takes the list back.
inline constexpr uint32_t kListTaken = uint32_t{1} << 31;

enum class PageState : uint8_t { None = 0, Allocated = 0x10, Cached = 0x20 };

constexpr uint8_t state_byte(PageState state, unsigned order) {
    return static_cast<uint8_t>(static_cast<uint8_t>(state) | order);
}

// The largest region that can have CPU page lists (indexes are 32-bit): 16 TiB.
inline constexpr uint64_t kMaxCpuListRegionPages = uint64_t{1} << 32;

// The blocks a list holds (as it stands: exact on its own CPU or under the allocator's lock).
inline uint32_t list_count(const CpuPageList& list) {
    return __atomic_load_n(&list.count, __ATOMIC_RELAXED) & ~kListTaken;
}
// The fast paths' view: the count word, with kListTaken, ordered after the last taker's reads.
inline uint32_t list_word(const CpuPageList& list) {
    return __atomic_load_n(&list.count, __ATOMIC_ACQUIRE);
}
// Commits a fast path's pop or push: false (nothing changed) if the word is no longer `word`.
inline bool commit_list_count(CpuPageList& list, uint32_t word, uint32_t count) {
    return __atomic_compare_exchange_n(&list.count, &word, count, false, __ATOMIC_ACQ_REL,
                                       __ATOMIC_RELAXED);
}
inline void set_list_count(CpuPageList& list, uint32_t count) {
    __atomic_store_n(&list.count, count, __ATOMIC_RELAXED);
}
inline uint8_t page_state(const uint8_t* states, uint64_t index) {
    return __atomic_load_n(&states[index], __ATOMIC_RELAXED);
}
inline void set_page_state(uint8_t* states, uint64_t index, uint8_t state) {
    __atomic_store_n(&states[index], state, __ATOMIC_RELAXED);
}
// Changes a page's state from `from` to `to` if it is `from`, atomically: of two frees racing on
// one block, exactly one claims it. Returns whether this call did.
inline bool claim_page_state(uint8_t* states, uint64_t index, uint8_t from, uint8_t to) {
    return __atomic_compare_exchange_n(&states[index], &from, to, false, __ATOMIC_ACQUIRE,
                                       __ATOMIC_RELAXED);
}

static_assert(sizeof(CpuPageList) == 64, "a list is one cache line");
static_assert(kCpuListOrders <= 0x10 && kCpuListBatch <= kCpuListBlocks);
static_assert(kCpuListBlocks < kListTaken, "a taken list's word is above every count");

} // namespace pages

// One CPU slot's lists, one per small order.
struct PageFrameAllocator::CpuLists {
    pages::CpuPageList order[kCpuListOrders];
};

// A request the free blocks cannot serve takes back CPU page lists one CPU at a time, the
// calling CPU's first (its own lists hold its most recently freed blocks), then the other slots
// from the next one up, trying `attempt` again after each CPU that gave blocks back: it empties
// no more CPUs' lists than it needs (the others stay warm), and it fails only when every list
// has been taken back and the free blocks still cannot serve it. The lock masks interrupts, so
// current_cpu() holds still. Only when the lists' pages lie below `limit` (allocate_below stays
// exact: pages above it would not help). O(kMaxCpus * (attempt + kCpuListOrders)) plus the
// blocks given back, each O(kMaxOrder * L).
template <class Attempt>
PhysAddr PageFrameAllocator::attempt_taking_lists_locked(PhysAddr limit, Attempt attempt) {
    const PhysAddr address = attempt();
    return address != kNoPage ? address : retry_taking_lists_locked(limit, attempt);
}

template <class Attempt>
PhysAddr PageFrameAllocator::retry_taking_lists_locked(PhysAddr limit, Attempt attempt) {
    PhysAddr address = kNoPage;
    if (m_cpu.lists == nullptr || m_cpu.first_page >= pages::end_page_below(limit)) {
        return address;
    }
    const unsigned self = platform::current_cpu();
    for (unsigned step = 0; step < platform::kMaxCpus && address == kNoPage; ++step) {
        if (drain_cpu_locked((self + step) % platform::kMaxCpus)) {
            address = attempt();
        }
    }
    return address;
}

} // namespace bedrock
