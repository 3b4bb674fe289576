// PageFrameAllocator: a buddy allocator over the physical RAM the firmware reported.
//
// It owns every page of the usable ranges it is given and hands out physically contiguous,
// naturally aligned blocks of 2^order pages (order 0 = 4 KiB ... kMaxOrder = 1 GiB), plus runs of
// any page count (beyond a maximum block: consecutive maximum blocks and a tail). Addresses in
// and out are physical; it touches memory only through platform::phys_to_virt (free-list links
// live inside the free blocks themselves).
//
// Zones: each usable range is split at 16 MiB and 4 GiB into regions, so allocations below
// those limits (ISA DMA, 32-bit devices) pick whole regions; unconstrained allocations take the
// highest region first, keeping low memory for the devices that need it. A run never spans two
// regions.
//
// Words: allocate/free are the caller's side (a block or run passes to the caller and back);
// inside the allocator a free block is taken off / given to the free lists (take/give), split
// into halves or merged with its buddy (split/merge); reserve takes pages out for good.
//
// Metadata (carved at init from the usable ranges, preferably where it breaks up none of a
// region's largest blocks, and zeroed there): one Region descriptor and one tag window (the
// region's virtual range, for page_tag()) per region; two bitmaps per order, "free block of
// order k starts here" and "allocated block of order k starts here" (~4 bits per page together);
// two bitmaps with one bit per page, "the run continues after this page" and "reserved page";
// and one 16-bit page tag per page. About 22 bits per 4 KiB page: ~0.067 % of managed RAM
// (budget: 0.1 %). Invariants, per region:
//   free_pages + allocated_pages + reserved_pages = managed_pages
//   the free blocks, the allocated blocks and the reserved pages tile the region exactly
//   a block is on free list k  <=>  its free bit at order k is set (one list per block)
//   no free block at order k < kMaxOrder has its buddy free at order k (merging is complete)
//   a run is its greedy decomposition into aligned blocks of non-increasing order (only
//   maximum blocks repeat), every block but the last with the run mark on its last page; no
//   other page has one
//   every free page and every reserved page has tag 0
// and the tag windows are sorted by virtual address and do not overlap.
// check() verifies all of them.
//
// Locking: one SpinLock per allocator guards everything but the tags; every public function
// except page_tag() takes it (they are safe from several CPUs). It is a leaf lock: no platform
// hook but phys_to_virt (which takes no lock) is called while it is held. It does not mask
// interrupts: a kernel that calls the allocator from interrupt handlers must disable interrupts
// around every call on that CPU, or a handler interrupting the holder on its own CPU spins forever.
// page_tag() takes no lock: the regions and their tag windows never change after init().
//
// Misuse is reported through platform::report_error (component "pfa", the caller's address,
// the order or count, the caller's return address) and changes nothing:
//   FreeOutsideManagedMemory  the pages are not managed (or reserved, or the metadata's)
//   FreeMisaligned            the address is not aligned to the order's block size
//   DoubleFree                the pages are free
//   FreeWrongOrder            allocated, but as another order or run length, or inside a
//                             larger block
//   ReserveConflict           reserve_range() over allocated pages
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
    // kernel/memory_map.cpp produces them), carving its metadata out of them: from the highest
    // region that can hold it without breaking up one of that region's largest blocks, else
    // from the bottom of the largest region. Returns false (allocator unusable, nothing owned;
    // the metadata's pages may have been zeroed) if called twice, the ranges are malformed, no
    // range can hold the metadata, or phys_to_virt maps two regions onto overlapping addresses.
    // Precondition: phys_to_virt maps each range contiguously. Time: O(ranges * orders + blocks
    // + metadata bytes / 8 + ranges^2), no per-page loop; the ranges^2 (sorting the tag windows
    // by virtual address) is O(ranges) when phys_to_virt keeps the physical order.
    [[nodiscard]] bool init(const PhysRange* usable, size_t count);

    // A naturally aligned block of 2^order pages, or kNoPage (exhausted, or order > kMaxOrder).
    // O(regions + kMaxOrder).
    [[nodiscard]] PhysAddr allocate(unsigned order);
    // As allocate(), with the whole block at or below `limit` (e.g. kZoneDmaLimit). O(regions +
    // kMaxOrder) when `limit` is a zone limit or above all RAM; otherwise also O(free blocks in
    // the region that `limit` cuts).
    [[nodiscard]] PhysAddr allocate_below(unsigned order, PhysAddr limit);
    // `count` contiguous pages (count >= 1) starting at a multiple of `alignment` bytes (a power
    // of two up to a maximum block; below kPageSize means kPageSize), ending at or below `limit`,
    // inside one region; or kNoPage, with nothing changed. Free with free_pages() and the same
    // count. Up to a maximum block (2^kMaxOrder pages), the run is the start of a buddy block and
    // the block's tail goes back to the free lists; time as allocate_below(). Beyond it, the run
    // starts a stretch of consecutive free maximum blocks (so it is 1 GiB-aligned) and ends in a
    // tail taken from the free blocks after them; time O(regions + sum over the regions of
    // (B + S * kMaxOrder^2) + count / 2^kMaxOrder * kMaxOrder), where B is a region's number of
    // maximum-block slots (one per GiB) and S <= B its stretches of free maximum blocks.
    [[nodiscard]] PhysAddr allocate_pages(size_t count, uint64_t alignment = kPageSize,
                                          PhysAddr limit = kNoLimit);

    // Frees a block from allocate()/allocate_below() and merges it with its free buddies.
    // O(kMaxOrder + log regions).
    void free(PhysAddr address, unsigned order);
    // Frees a run from allocate_pages(address, count, ...), or a block with count = 2^order;
    // the whole run or nothing (a wrong count is misuse, reported with size = count).
    // O((count / 2^kMaxOrder + kMaxOrder) * kMaxOrder + log regions).
    void free_pages(PhysAddr address, size_t count);

    // Takes the managed pages of `range` (widened to whole pages) out of circulation for good
    // (firmware tables found late). Each of them must be free or reserved already: otherwise
    // reports ReserveConflict and changes nothing. Pages of the range that the allocator does
    // not manage are ignored. Freeing a reserved page is misuse. Returns whether it reserved.
    // O(regions + blocks and pages of the range * kMaxOrder).
    [[nodiscard]] bool reserve_range(PhysRange range);

    // The tag of the managed page holding virtual address `address` (any byte of the page), or
    // null if no region of this allocator manages that page: holes between ranges, addresses
    // outside the direct map, and the metadata's own pages return null; reserved pages
    // (reserve_range) return their tag, which stays 0. Reads only the tag windows (never memory
    // near `address`). Lock-free and O(log regions): the regions never change after init, which
    // must happen before any CPU calls this. The tag belongs to whoever allocated the page:
    // init() zeroes every tag, the allocator never writes one after init, and a page must be
    // freed with tag 0 (check() verifies that every free page has tag 0; debug builds assert it
    // on every free). Writing the tag is the owner's business (no lock here).
    [[nodiscard]] uint16_t* page_tag(const void* address) const;
    // The physical address of `address`, a virtual address in a managed page (page_tag() is not
    // null for it): the inverse of platform::phys_to_virt there. Lock-free, O(log regions).
    [[nodiscard]] PhysAddr phys_of(const void* address) const;

    // Introspection (each takes the lock; O(regions * orders) at most).
    [[nodiscard]] uint64_t managed_pages() const { return m_managed_pages; }
    [[nodiscard]] uint64_t free_pages() const;
    [[nodiscard]] uint64_t reserved_pages() const;
    [[nodiscard]] FreeBlockCounts free_blocks() const;
    // The largest order with a free block, or -1 when nothing is free.
    [[nodiscard]] int largest_free_order() const;
    [[nodiscard]] uint64_t metadata_bytes() const { return m_metadata.size; }
    // Where the metadata lives (size 0 before init()).
    [[nodiscard]] PhysRange metadata_range() const { return m_metadata; }
    [[nodiscard]] size_t region_count() const { return m_region_count; }
    // The pages region `index` manages and how many of them are free.
    [[nodiscard]] PhysRange region_range(size_t index) const;
    [[nodiscard]] uint64_t region_free_pages(size_t index) const;
    // Free pages below `limit` (whole regions only: limits at zone boundaries are exact).
    [[nodiscard]] uint64_t free_pages_below(PhysAddr limit) const;

    // Walks all metadata and verifies the invariants listed above. O(blocks * kMaxOrder +
    // reserved pages + free pages + metadata bytes / 8).
    [[nodiscard]] PageFrameCheck check() const;

private:
    struct Region;
    struct Misuse;
    // One region's pages in the direct map, for page_tag().
    struct TagWindow {
        uintptr_t base; // platform::phys_to_virt(the region's first page)
        uint64_t bytes; // the region's pages * kPageSize
        uint16_t* tags; // one per page of the region
        PhysAddr phys;  // the region's first page
    };

    // Functions named *_locked need m_lock held.
    [[nodiscard]] PhysAddr allocate_locked(unsigned order, PhysAddr limit);
    [[nodiscard]] PhysAddr allocate_long_run_locked(uint64_t count, PhysAddr limit);
    [[nodiscard]] Region* region_of(uint64_t first_page, uint64_t page_count) const;
    // Why freeing is misuse, or no misuse and `region` set to the block's or run's region.
    [[nodiscard]] Misuse free_misuse_locked(PhysAddr address, unsigned order,
                                            Region*& region) const;
    [[nodiscard]] Misuse free_pages_misuse_locked(PhysAddr address, uint64_t count,
                                                  Region*& region) const;

    Region* m_regions = nullptr;        // sorted by address, in the metadata
    TagWindow* m_tag_windows = nullptr; // sorted by virtual base, in the metadata
    size_t m_region_count = 0;          // also the number of tag windows
    uint64_t m_managed_pages = 0;
    PhysRange m_metadata;
    mutable SpinLock m_lock;
};

inline PhysAddr PageFrameAllocator::phys_of(const void* address) const {
    const auto virt = reinterpret_cast<uintptr_t>(address);
    const TagWindow* window = m_tag_windows;
    size_t count = m_region_count;
    while (count > 1) {
        const size_t half = count / 2;
        window = window[half].base <= virt ? window + half : window;
        count -= half;
    }
    return window->phys + (virt - window->base);
}

// The last window whose base is at or below `address`, by halving, then one range test: about
// 14 + 8 * ceil(log2(regions)) instructions on x86-64 (clang -O2), reading only the windows.
inline uint16_t* PageFrameAllocator::page_tag(const void* address) const {
    const auto virt = reinterpret_cast<uintptr_t>(address);
    const TagWindow* window = m_tag_windows;
    size_t count = m_region_count;
    if (count == 0) {
        return nullptr;
    }
    while (count > 1) {
        const size_t half = count / 2;
        window = window[half].base <= virt ? window + half : window;
        count -= half;
    }
    const uint64_t offset = virt - window->base;
    return virt >= window->base && offset < window->bytes ? window->tags + (offset >> kPageShift)
                                                          : nullptr;
}

} // namespace bedrock
