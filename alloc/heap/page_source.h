// PageSource: where a heap gets its pages - a PageFrameAllocator, or one caller-given region
// whose pages it tracks itself in a bitmap.
//
// Owns the region bitmap (region heaps only) and the count of pages held.
// Invariants:
//   region: bit i of the bitmap is 1  <=>  page (m_first + i * kPageSize) is handed out
//   pages_held == pages handed out and not yet given back (both kinds)
//   region: every page below m_lowest_free is handed out (first fit starts there)
// Lock order: any heap lock -> PageSource::m_lock (region) or the page frame allocator's lock.
// A PageSource never calls back into the heap.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/page_frame_allocator.h"
#include "bedrock/spinlock.h"

namespace bedrock::heap {

// A run of pages taken from a page source. `base` is null when the source is exhausted.
struct PageRun {
    void* base;
    uint64_t source_address; // physical address (frames) or the virtual base (region)
};

class PageSource {
public:
    void init_frames(PageFrameAllocator& frames);
    // Tracks the pages of [first, first + pages * kPageSize), page-aligned; `bitmap` holds
    // pages bits, zeroed here.
    void init_region(uintptr_t first, size_t pages, uint64_t* bitmap);

    // `pages` contiguous pages whose base is aligned to `alignment` (a power of two >= the
    // page size). Frames: one page frame allocation. Region: first fit, O(pages in region).
    [[nodiscard]] PageRun take(size_t pages, size_t alignment);
    // Gives back a run from take() with the same page count.
    void give(const PageRun& run, size_t pages);

    [[nodiscard]] uint64_t pages_held() const { return __atomic_load_n(&m_held, __ATOMIC_RELAXED); }
    [[nodiscard]] uint64_t peak_pages_held() const {
        return __atomic_load_n(&m_peak_held, __ATOMIC_RELAXED);
    }

private:
    [[nodiscard]] bool region_run_is_free(size_t first_page, size_t pages) const;
    void region_mark(size_t first_page, size_t pages, bool taken);
    void count_taken(size_t pages);

    PageFrameAllocator* m_frames = nullptr; // null for a region source
    uintptr_t m_first = 0;                  // region: address of page 0
    size_t m_pages = 0;                     // region: pages tracked
    uint64_t* m_bitmap = nullptr;           // region: one bit per page
    size_t m_lowest_free = 0;               // region: see the invariant above
    SpinLock m_lock;                        // region: guards m_bitmap
    uint64_t m_held = 0;
    uint64_t m_peak_held = 0;
};

} // namespace bedrock::heap
