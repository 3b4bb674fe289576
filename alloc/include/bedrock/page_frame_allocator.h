// PageFrameAllocator: the buddy allocator over the physical RAM the firmware reported.
// (Interface draft: the implementation fills in private state and may add functions; the
// signatures below are the contract the kernel and the heap build on.)
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/phys_range.h"
#include "bedrock/spinlock.h"

namespace bedrock {

// Returned instead of an address when an allocation fails. Never page-aligned, so it can
// never be a valid block address.
inline constexpr PhysAddr kNoPage = ~PhysAddr{0};
// "No address limit" for the constrained allocations.
inline constexpr PhysAddr kNoLimit = ~PhysAddr{0};

// Order k is a block of 2^k pages. Order 18 is 1 GiB.
inline constexpr unsigned kMaxOrder = 18;
inline constexpr unsigned kOrderCount = kMaxOrder + 1;

class PageFrameAllocator {
public:
    constexpr PageFrameAllocator() = default;
    PageFrameAllocator(const PageFrameAllocator&) = delete;
    PageFrameAllocator& operator=(const PageFrameAllocator&) = delete;

    // Takes ownership of the pages in `usable` (page-aligned, sorted, non-overlapping), carving
    // its metadata out of them. Returns false (allocator unusable, nothing owned) if the
    // metadata does not fit or the ranges are malformed.
    [[nodiscard]] bool init(const PhysRange* usable, size_t count);

    // A naturally aligned block of 2^order pages, or kNoPage.
    [[nodiscard]] PhysAddr allocate(unsigned order);
    // As allocate(), with the whole block below `limit` (e.g. 16 MiB for ISA DMA).
    [[nodiscard]] PhysAddr allocate_below(unsigned order, PhysAddr limit);
    // `count` physically contiguous pages (any count >= 1), aligned to `alignment` bytes (a
    // power of two >= kPageSize), ending below `limit`; or kNoPage. Free with free_pages().
    [[nodiscard]] PhysAddr allocate_pages(size_t count, uint64_t alignment = kPageSize,
                                          PhysAddr limit = kNoLimit);

    // Frees a block from allocate()/allocate_below(). Misuse (not managed, misaligned, double
    // free, wrong order) is reported through platform::report_error and changes nothing.
    void free(PhysAddr address, unsigned order);
    // Frees a run from allocate_pages(); same misuse handling.
    void free_pages(PhysAddr address, size_t count);
};

} // namespace bedrock
