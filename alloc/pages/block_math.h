// SPDX-License-Identifier: MIT
// Block arithmetic of the page frame allocator: page frame numbers, orders and the greedy
// decomposition of a page range into naturally aligned blocks. Pure functions, no state.
//
// Pages are handled by page frame number (pfn = address >> kPageShift). The block of order k
// starting at pfn p is [p, p + 2^k) and is naturally aligned: p % 2^k == 0. The greedy
// decomposition of [first, end) takes, at each step, the largest naturally aligned block (of at
// most kMaxOrder) that starts at the current page and fits before `end`.
#pragma once

#include <stdint.h>

#include "bedrock/page_frame_allocator.h"
#include "support/bits.h"

namespace bedrock::pages {

inline constexpr uint64_t kWordBits = 64;
// The order of a block of as many pages as a bitmap word has bits: a word-aligned window of pages
// holds whole blocks of orders up to it, and lies inside one block of each order above it.
inline constexpr unsigned kWordOrder = 6;
// One past the last page frame of the 64-bit physical address space.
inline constexpr uint64_t kPageEnd = uint64_t{1} << (64 - kPageShift);

constexpr uint64_t pages_of(unsigned order) {
    return uint64_t{1} << order;
}
static_assert(pages_of(kWordOrder) == kWordBits && kWordOrder < kMaxOrder);

// The first page a block must not reach when it has to end at or below `limit`.
inline uint64_t end_page_below(PhysAddr limit) {
    return limit == kNoLimit ? kPageEnd : limit >> kPageShift;
}

// The order of the largest naturally aligned block that starts at `page` and fits in
// `remaining` pages.
inline unsigned largest_block_order(uint64_t page, uint64_t remaining) {
    unsigned order = floor_log2(remaining);
    if (page != 0) {
        const auto alignment = static_cast<unsigned>(__builtin_ctzll(page));
        order = alignment < order ? alignment : order;
    }
    return order < kMaxOrder ? order : kMaxOrder;
}

// Calls visit(page, order, last) for each block of the greedy decomposition of [first, end)
// into the largest naturally aligned blocks; `last` is true for the final one.
template <class Visit>
void for_each_aligned_block(uint64_t first, uint64_t end, Visit visit) {
    while (first < end) {
        const unsigned order = largest_block_order(first, end - first);
        visit(first, order, first + pages_of(order) == end);
        first += pages_of(order);
    }
}

} // namespace bedrock::pages
