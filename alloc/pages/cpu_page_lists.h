// SPDX-License-Identifier: MIT
// CPU page lists: the per-CPU caches of small free blocks in front of the buddy free blocks (as
// Linux's per-CPU page lists), for the CPU-list region (the largest region of the highest zone at
// init). Owns the lists of every CPU slot and one state byte per page of that region, all in the
// allocator's metadata.
//
// A CPU's list of order k is a stack of page indexes (page - the region's first page) in the
// metadata, one cache line (no link lives in the pages): the fast paths pop and push at its top,
// the slow paths refill an empty one from the free blocks and give a full one's oldest blocks
// back, kCpuListBatch at a time, under the allocator's lock. Only the owning CPU touches its
// lists, with interrupts masked (an offline CPU's: drain_cpu() from another); a list's count is
// stored with relaxed atomics so that free_pages() may read it from another CPU.
// Lock order: interrupts masked on the calling CPU -> the allocator's lock (the slow paths).
//
// The state byte of the first page of a block says what it is, so that the fast free validates
// with one load and changes the state with one store of its own byte (a bitmap word is shared
// by many blocks and would need a lock or an atomic read-modify-write):
//   Allocated(k): a block of order k, allocated from a CPU list, not part of a run
//   Cached(k):    a block of order k on exactly one CPU's list
//   None:         anything else (a free block, a block or run allocated under the lock, ...)
// A block on a CPU list keeps its allocated bit in the region's bitmaps (so it never merges)
// and is counted as free only by the allocator's totals. Invariants:
//   count <= kCpuListBlocks for every list
//   page p is on a list of order k  <=>  state(p) == Cached(k); it is then allocated at order k,
//   not part of a run, and its tags are 0
//   state(p) == Allocated(k)  =>  an allocated block of order k starts at p, not part of a run
//   a region's free_pages + the pages of the lists = what free_pages() reports for it
#pragma once

#include <stdint.h>

#include "bedrock/page_frame_allocator.h"
#include "bedrock/platform.h"

namespace bedrock {
namespace pages {

struct CpuPageList {
    uint32_t count;                 // blocks held, <= kCpuListBlocks (relaxed atomics)
    uint32_t pages[kCpuListBlocks]; // page - the region's first page, oldest first
};

enum class PageState : uint8_t { None = 0, Allocated = 0x10, Cached = 0x20 };

constexpr uint8_t state_byte(PageState state, unsigned order) {
    return static_cast<uint8_t>(static_cast<uint8_t>(state) | order);
}

// The largest region that can have CPU page lists (indexes are 32-bit): 16 TiB.
inline constexpr uint64_t kMaxCpuListRegionPages = uint64_t{1} << 32;

inline uint32_t list_count(const CpuPageList& list) {
    return __atomic_load_n(&list.count, __ATOMIC_RELAXED);
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

static_assert(sizeof(CpuPageList) == 64, "a list is one cache line");
static_assert(kCpuListOrders <= 0x10 && kCpuListBatch <= kCpuListBlocks);

} // namespace pages

// One CPU slot's lists, one per small order.
struct PageFrameAllocator::CpuLists {
    pages::CpuPageList order[kCpuListOrders];
};

} // namespace bedrock
