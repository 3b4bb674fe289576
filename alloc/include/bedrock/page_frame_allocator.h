// PageFrameAllocator: a buddy allocator over the physical RAM the firmware reported.
//
// It owns every page of the usable ranges it is given and hands out physically contiguous,
// naturally aligned blocks of 2^order pages (order 0 = 4 KiB ... kMaxOrder = 1 GiB), plus runs of
// any page count. Addresses in and out are physical; it touches memory only through
// platform::phys_to_virt (free-list links live inside the free blocks themselves).
//
// Zones: each usable range is split at 16 MiB and 4 GiB into regions, so allocations below
// those limits (ISA DMA, 32-bit devices) pick whole regions; unconstrained allocations take the
// highest region first, keeping low memory for the devices that need it.
//
// Metadata (carved from the largest usable range at init): one Region descriptor per region
// and two bitmaps per order, "free block starts here" and "allocated block starts here", about
// 4 bits per page in all (~0.012 % of managed RAM). Invariants, per region:
//   free_pages + allocated_pages = managed_pages          (allocated: sum over allocated heads)
//   a block is on free list k  <=>  its free bit at order k is set
//   no free block at order k < kMaxOrder has its buddy free at order k (coalescing is complete)
//   free and allocated blocks never overlap
// check() verifies all of them.
//
// Locking: one SpinLock per allocator guards everything; every public function takes it (they
// are safe from several CPUs). It does not mask interrupts: a kernel that calls the allocator
// from interrupt handlers must disable interrupts around every call on that CPU.
//
// Misuse (freeing memory it does not manage, misaligned or unallocated blocks, the wrong order,
// reserving allocated pages) is reported through platform::report_error and changes nothing.
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

// The zone boundaries at which regions are split.
inline constexpr PhysAddr kZoneDmaLimit = PhysAddr{16} << 20;
inline constexpr PhysAddr kZoneDma32Limit = PhysAddr{4} << 30;

struct FreeBlockCounts {
    uint64_t blocks[kOrderCount] = {};
};

struct PageFrameCheck {
    bool ok = true;
    const char* failure = nullptr; // which invariant does not hold
    PhysAddr address = 0;          // the block it was found at
};

class PageFrameAllocator {
public:
    constexpr PageFrameAllocator() = default;
    PageFrameAllocator(const PageFrameAllocator&) = delete;
    PageFrameAllocator& operator=(const PageFrameAllocator&) = delete;

    // Takes ownership of the pages in `usable` (page-aligned, sorted, non-overlapping, as
    // kernel/memory_map.cpp produces them), carving its metadata out of the largest range.
    // Returns false (allocator unusable, nothing owned) if called twice, the ranges are
    // malformed, or no range can hold the metadata. Time: O(ranges * orders + blocks + bitmap
    // bytes), no per-page loop.
    [[nodiscard]] bool init(const PhysRange* usable, size_t count);

    // A naturally aligned block of 2^order pages, or kNoPage (exhausted, or order > kMaxOrder).
    // O(regions + kMaxOrder).
    [[nodiscard]] PhysAddr allocate(unsigned order);
    // As allocate(), with the whole block below `limit` (e.g. kZoneDmaLimit).
    [[nodiscard]] PhysAddr allocate_below(unsigned order, PhysAddr limit);
    // `count` contiguous pages (count >= 1) starting at a multiple of `alignment` bytes (a power
    // of two; below kPageSize means kPageSize), ending at or below `limit`; or kNoPage. The tail
    // of the underlying buddy block goes back to the free lists. Free with free_pages().
    [[nodiscard]] PhysAddr allocate_pages(size_t count, uint64_t alignment = kPageSize,
                                          PhysAddr limit = kNoLimit);

    // Frees a block from allocate()/allocate_below() and merges it with its free buddies.
    // O(kMaxOrder + log regions).
    void free(PhysAddr address, unsigned order);
    // Frees a run from allocate_pages(address, count, ...).
    void free_pages(PhysAddr address, size_t count);

    // Takes the managed pages of `range` out of circulation (firmware tables found late). All
    // of them must be free: otherwise reports ReserveConflict and changes nothing. Pages of the
    // range that the allocator does not manage are ignored. Returns whether it reserved.
    [[nodiscard]] bool reserve_range(PhysRange range);

    // Introspection (each takes the lock; O(regions * orders) at most).
    [[nodiscard]] uint64_t managed_pages() const { return m_managed_pages; }
    [[nodiscard]] uint64_t free_pages() const;
    [[nodiscard]] FreeBlockCounts free_blocks() const;
    // The largest order with a free block, or -1 when nothing is free.
    [[nodiscard]] int largest_free_order() const;
    [[nodiscard]] uint64_t metadata_bytes() const { return m_metadata_bytes; }
    [[nodiscard]] size_t region_count() const { return m_region_count; }
    // The pages region `index` manages and how many of them are free.
    [[nodiscard]] PhysRange region_range(size_t index) const;
    [[nodiscard]] uint64_t region_free_pages(size_t index) const;
    // Free pages below `limit` (whole regions only: limits at zone boundaries are exact).
    [[nodiscard]] uint64_t free_pages_below(PhysAddr limit) const;

    // Walks all metadata and verifies the invariants listed above. O(managed pages / 64 +
    // free blocks).
    [[nodiscard]] PageFrameCheck check() const;

private:
    struct Region;

    [[nodiscard]] PhysAddr allocate_locked(unsigned order, PhysAddr limit);
    [[nodiscard]] Region* region_of(uint64_t first_page, uint64_t page_count) const;
    [[nodiscard]] bool validate_free(uint64_t page, unsigned order, const void* call_site) const;
    void free_locked(uint64_t page, unsigned order);

    Region* m_regions = nullptr; // sorted by address, in the metadata
    size_t m_region_count = 0;
    uint64_t m_managed_pages = 0;
    uint64_t m_metadata_bytes = 0;
    mutable SpinLock m_lock;
};

} // namespace bedrock
