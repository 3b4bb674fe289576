// SPDX-License-Identifier: MIT
// PageFrameAllocator: a buddy allocator over the physical RAM the firmware reported.
//
// It owns every page of the usable ranges it is given and hands out physically contiguous,
// naturally aligned blocks of 2^order pages (order 0 = 4 KiB ... kMaxOrder = 1 GiB), plus runs of
// any page count at any power-of-two alignment: any free pages in a row of one region, cut from
// a buddy block when one holds them, and recorded as their aligned blocks. Addresses in
// and out are physical; it touches memory only through platform::phys_to_virt, and never a free
// page: the free blocks are bits in its metadata (per order, a free bitmap and its summaries), so
// a write to freed memory cannot damage the allocator.
//
// Zones: each usable range is split at 16 MiB and 4 GiB into regions, so allocations below
// those limits (ISA DMA, 32-bit devices) pick whole regions; unconstrained allocations take the
// highest region first, keeping low memory for the devices that need it. A run never spans two
// regions.
//
// Words: allocate/free are the caller's side (a block or run passes to the caller and back);
// inside the allocator a free block is taken from / given to the free blocks (take/give: its
// free bit and the summaries above it), split into halves or merged with its buddy
// (split/merge); reserve takes pages out for good. An allocation takes the lowest-addressed
// free block of the smallest order that serves it (low addresses fill first, which keeps the
// free memory above them in large blocks).
//
// Metadata (carved at init from the usable ranges, preferably where it breaks up none of a
// region's largest blocks, and zeroed there): one Region descriptor and one tag window (the
// region's virtual range, for page_tag()) per region; two bitmaps per order, "free block of
// order k starts here" and "allocated block of order k starts here" (~4 bits per page together);
// above each free bitmap, summary levels of one bit per word of the level below up to one word
// (~1/63 of the free bitmaps); two bitmaps with one bit per page, "the run continues after this
// page" and "reserved page";
// one 16-bit page tag per page and one 16-bit span tag per span of 2^kTagSpanOrder pages; and,
// with CPU page lists, the lists of every CPU slot (kMaxCpus * 256 bytes) and one state byte per
// page of the CPU-list region. About 22 bits per 4 KiB page, plus 8 for the CPU-list region's
// pages: ~0.08 % of managed RAM on a 6 GiB machine (budget: 0.1 %). Invariants, per region:
//   free_pages + allocated_pages + reserved_pages = managed_pages   (a block on a CPU page
//                                                                  list counts as allocated here)
//   the free blocks, the allocated blocks and the reserved pages tile the region exactly
//   free blocks of order k = set bits of free bitmap k = free_count[k]
//   summary bit j of level l + 1 of order k  <=>  word j of level l of order k != 0 (level 0:
//                                               the free bitmap)
//   no free block at order k < kMaxOrder has its buddy free at order k (merging is complete)
//   a run is its greedy decomposition into aligned blocks of non-increasing order (only
//   maximum blocks repeat), every block but the last with the run mark on its last page; no
//   other page has one
//   every free page, every page on a CPU page list and every reserved page has tag 0, and so
//   has the span tag of every span holding one of them
// and the tag windows are sorted by virtual address and do not overlap.
//
// Growth (add_range): RAM found or mapped after init joins as new regions above every managed
// address, each carrying its own metadata (carved from the added range, as at init); init()
// leaves room for their descriptors (`spare_regions`). An allocation the regions cannot serve
// calls the reclaim hook (set_reclaim_hook: the heaps over the allocator give back what they
// hold idle) and then the owner's grow hook (set_grow_hook), with no lock held, which may
// add_range(); each lets the allocation try again: a hosted process starts with a small range and
// grows into its reservation, a kernel adds hot-plugged memory. Added regions have no CPU page
// lists.
//
// Giving pages back: when a free (or a CPU page list's drain) leaves a free block of order
// kUnusedOrder or more after merging, and more than kRetainedUnusedPages freed pages have gone
// unreported (pages freed, less pages allocated and reported since), platform::pages_unused() is
// told of all of the block's pages (nothing of the allocator's is in them), so the platform may
// drop their contents (hosted: madvise) or account them. The retained pages spare a block freed
// and allocated again and again (a process's large buffer) from being dropped and faulted back
// in each time. An allocation takes the smallest order that serves it, so the small free blocks
// that recently freed memory leaves go out before the large blocks given back.
//
// CPU page lists (pages/cpu_page_lists.h): blocks of orders below kCpuListOrders freed in one
// region (the CPU-list region, chosen at init: the largest of the highest zone where it holds an
// eighth of the RAM or every CPU's full lists, else the largest of all) are kept
// on a list of the freeing CPU, up to kCpuListBlocks per CPU and order, and a CPU allocates from
// its own lists first: the common allocate/free of a small block touches only the calling CPU's
// list (interrupts masked around it, no lock, one compare-and-swap). A list is refilled
// from the free blocks and drained back to them kCpuListBatch blocks at a time under the lock.
// Their pages count as free in free_pages() and its kin, and an allocation fails only when it
// cannot be served with them either: one the free blocks cannot serve takes back, under the lock,
// the calling CPU's lists and then other CPUs' lists one CPU at a time, trying again after each
// (a listed block may be what it needs, or the gap that keeps free neighbours from merging into a
// long enough run), before the reclaim and grow hooks. Taking back another CPU's lists is safe
// while that CPU runs its fast paths: they commit each pop or push with one compare-and-swap of
// the list's count, which fails once the list is marked taken (pages/cpu_page_lists.h).
// check() verifies all of them.
//
// Locking: one SpinLock per allocator guards everything but the tags and the CPU page lists;
// every public function except page_tag(), span_tag(), tags_of() and the CPU-list paths of
// allocate/free takes it (they are safe from several CPUs). It is a leaf lock: no platform hook
// but phys_to_virt, current_cpu, the interrupt hooks and pages_unused (none of which may call
// into the allocator) is called while it is held, and nothing is waited for under it (a CPU's
// lists are taken back without waiting for that CPU); the reclaim and grow hooks are called
// without it. Lock order: interrupts masked -> this lock; a caller may hold its own locks (a
// heap's arenas lock) around any call. A CPU's lists are changed by that CPU alone on the fast
// paths, with interrupts masked (platform::disable_interrupts), so a handler cannot interrupt a
// list operation, and otherwise only under the lock. The lock masks interrupts on the CPU that
// holds it (bedrock/spinlock.h), so an interrupt handler may call any function here (not an
// NMI). page_tag() takes no lock: a region and its tag window never change once
// published, and add_range() publishes a new one (appended above all others) with a release store
// of the count.
//
// Misuse is reported through platform::report_error (component "pfa", the caller's address,
// the order or count, the caller's return address) and changes nothing:
//   FreeOutsideManagedMemory  the pages are not managed (or reserved, or the metadata's)
//   FreeMisaligned            the address is not aligned to the order's block size
//   DoubleFree                the pages are free (or on a CPU page list)
//   FreeWrongOrder            allocated, but as another order or run length, or inside a
//                             larger block
//   ReserveConflict           reserve_range() over allocated pages
//   RangeRefused              init() refused its arguments, or add_range() a range it cannot
//                             take (detail: why; address and size: the range at fault)
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

// Span tags: one per naturally aligned span of 2^kTagSpanOrder pages (256 KiB), for the owner of
// whole spans (a heap's arena): tagging 2^k pages then costs 2^(k - kTagSpanOrder) tags.
inline constexpr unsigned kTagSpanOrder = 6;
inline constexpr uint64_t kTagSpanPages = uint64_t{1} << kTagSpanOrder;

// Whether init() sets up per-CPU page lists (Off: every call takes the lock, as on one CPU).
enum class CpuPageLists : uint8_t { On, Off };
// What the ranges given to init() and add_range() hold: anything (the metadata carved from them
// is zeroed), or zeroes already (fresh anonymous memory, RAM the firmware cleared): the
// metadata is then not written until it is used, so its untouched pages cost nothing.
enum class RangeContents : uint8_t { Unknown, Zeroed };
// Where allocate_pages() looks for a run of up to a maximum block: a free buddy block that holds
// it, then any free pages in a row (AnyFreePages); or the buddy block only (BuddyBlock).
enum class RunSearch : uint8_t { AnyFreePages, BuddyBlock };
// CPU page lists hold blocks of orders 0 .. kCpuListOrders - 1 (4 KiB to 32 KiB), at most
// kCpuListBlocks per CPU and order (order k: 15 * 2^k pages; 225 pages, 900 KiB, per CPU in
// all), refilled and drained kCpuListBatch blocks at a time.
inline constexpr unsigned kCpuListOrders = 4;
inline constexpr unsigned kCpuListBlocks = 15;
inline constexpr unsigned kCpuListBatch = 8;

// The zone boundaries at which regions are split.
inline constexpr PhysAddr kZoneDmaLimit = PhysAddr{16} << 20;
inline constexpr PhysAddr kZoneDma32Limit = PhysAddr{4} << 30;

// The smallest merged free block whose pages are reported to platform::pages_unused(): 2^8
// pages, 1 MiB. Smaller free blocks stay as they are (the hysteresis: a block split and merged
// again and again below this size costs no hook call).
inline constexpr unsigned kUnusedOrder = 8;
// Freed pages the allocator keeps from platform::pages_unused() (an estimate: see above): 32 MiB,
// as much as glibc's malloc lets a process keep of a large block it frees (its largest mmap
// threshold) before it unmaps one.
inline constexpr uint32_t kRetainedUnusedPages = 8192;

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
    // from the bottom of the highest region without a maximum (1 GiB) block, else from the
    // bottom of the largest region. Returns false (allocator unusable, nothing owned;
    // the metadata's pages may have been zeroed), reporting RangeRefused with the reason, if
    // called twice, the ranges are malformed, no range can hold the metadata, phys_to_virt maps
    // two regions onto overlapping addresses, or phys_to_virt does not keep the alignment of a
    // range's blocks (phys_to_virt(p) - p must be a multiple of the largest naturally aligned
    // block inside the range, at most 1 GiB: a direct map at a 1 GiB-aligned offset does).
    // Precondition: phys_to_virt maps each range contiguously. Time: O(ranges * orders + blocks
    // + metadata bytes / 8 + ranges^2), no per-page loop; the ranges^2 (sorting the tag windows
    // by virtual address) is O(ranges) when phys_to_virt keeps the physical order.
    // With `lists` On, CPU page lists are set up for the largest region of the highest zone
    // where that region holds an eighth of the RAM or every CPU's full lists (56 MiB), else
    // for the largest region (the highest of equals; see above; not for a region of more than
    // 2^32 pages, 16 TiB). `spare_regions` descriptors (about 600 bytes
    // each, in the metadata) are kept for add_range() (a range takes one region per zone it
    // touches).
    // With `contents` Zeroed (the ranges read as zeroes, and so will every range added
    // later), the metadata is not zeroed.
    [[nodiscard]] bool init(const PhysRange* usable, size_t count,
                            CpuPageLists lists = CpuPageLists::On, size_t spare_regions = 0,
                            RangeContents contents = RangeContents::Unknown);

    // Takes ownership of `range` after init(), as init() takes a range: page-aligned, at least
    // kMinAddedPages, above every managed page (and the metadata) physically and, through
    // phys_to_virt, virtually, mapped keeping its blocks' alignment (as init() requires); its
    // metadata (~0.07 % of it) is carved from its own top (or bottom, to keep its largest blocks
    // whole) and zeroed. Returns false, changing nothing: reporting RangeRefused with the reason
    // before init(), for a malformed or too small range, a range mapped without keeping its
    // blocks' alignment, or one at or below a managed address; unreported when the spare
    // descriptors are used up. Precondition: phys_to_virt maps the range contiguously. Safe
    // against concurrent page_tag()/phys_of() (the new region is published last). Takes the
    // lock; O(zones of the range * orders + blocks + metadata bytes / 8).
    [[nodiscard]] bool add_range(PhysRange range);
    // The smallest range add_range() takes: its metadata must fit beside a page of RAM.
    static constexpr uint64_t kMinAddedPages = 16;

    // Called when an allocation cannot be served (after taking back every CPU's page lists,
    // and after the reclaim hook), with no lock of this allocator held and interrupts as the
    // caller had them.
    // `pages` is what an added range must hold besides its metadata (under 0.1 % + 2 pages) for
    // the request to fit: for a run of up to a maximum block that any free pages in a row serve
    // (allocate_pages() with RunSearch::AnyFreePages, aligned to a page), its page count; for
    // anything else, twice the naturally aligned block it needs (for a run of more than a
    // maximum block, its maximum blocks plus one; for a run aligned beyond that, its alignment),
    // which such a range always holds. So an owner under a limit (an address-space limit, say)
    // can serve a run of most of what the limit leaves. It
    // returns true if it added memory (add_range()), and the allocation then tries again
    // (at most kGrowAttempts times). It may be called from several CPUs at once and may call
    // any function of this allocator (usually add_range() alone), but an allocation it makes
    // must not need growth: one that finds no memory calls the hooks again, from inside them,
    // without bound (until the stack overflows); what a hook needs for itself it takes ahead of
    // time, or from elsewhere. The same holds for the reclaim hook. Null (the default): no
    // growth. Set it before other CPUs allocate.
    // With `reserve_order` <= kMaxOrder, the hook is also called (pages = 2^(reserve_order + 1),
    // its result ignored) before an allocation returns that left no free block of that order in
    // any region (noticed on the locked paths): growth ahead of need, so that a caller that
    // looks at largest_free_order() before allocating (the heap's arenas) finds the memory it
    // could grow into.
    using GrowHook = bool (*)(PageFrameAllocator& frames, uint64_t pages, void* context);
    void set_grow_hook(GrowHook hook, void* context, unsigned reserve_order = kOrderCount) {
        m_grow_context = context;
        m_grow_reserve_order =
            static_cast<uint8_t>(reserve_order < kOrderCount ? reserve_order : kOrderCount);
        __atomic_store_n(&m_grow_hook, hook, __ATOMIC_RELEASE);
    }
    static constexpr unsigned kGrowAttempts = 4;
    [[nodiscard]] bool has_grow_hook() const {
        return __atomic_load_n(&m_grow_hook, __ATOMIC_ACQUIRE) != nullptr;
    }

    // Called, like the grow hook and before it, when an allocation cannot be served (the CPU
    // page lists of every CPU taken back already, under the lock, which it no longer holds):
    // whoever
    // holds pages of this allocator idle gives back what it can without waiting for a lock (the
    // failed allocation may come from inside it, holding its locks) and returns whether pages
    // came back; the allocation then tries once more. Every heap over this allocator sets it
    // (heap_create(): each heap's empty slabs and spare arena go back); one hook per allocator.
    using ReclaimHook = bool (*)(PageFrameAllocator& frames);
    void set_reclaim_hook(ReclaimHook hook) {
        __atomic_store_n(&m_reclaim_hook, hook, __ATOMIC_RELEASE);
    }

    // A naturally aligned block of 2^order pages, or kNoPage (exhausted, or order > kMaxOrder).
    // O(1) from the calling CPU's list (order < kCpuListOrders); otherwise, or to refill it,
    // O(regions + kMaxOrder + L) (+ kCpuListBatch * (kMaxOrder + L) for a refill), where L is the
    // number of summary levels (log64 of a region's pages: 4 for 6 GiB, 8 at most). A request
    // the free blocks cannot serve (this and every allocation below) then takes back CPU page
    // lists, trying again after each CPU's: at most kMaxCpus more attempts and kMaxCpus *
    // kCpuListOrders * kCpuListBlocks blocks given back, O(kMaxOrder * L) each.
    [[nodiscard]] PhysAddr allocate(unsigned order);
    // As allocate(), with the whole block below `limit`: its end (one past its last byte) at or
    // below it, as a zone limit is written (kZoneDmaLimit, 16 MiB); for a device that can
    // address up to a mask (0xFFFFFFFF), pass mask + 1, or the last page below it is not had.
    // O(regions +
    // kMaxOrder + L) when `limit` is a zone limit or above all RAM; otherwise also O(kMaxOrder *
    // L) for the region that `limit` cuts (the lowest free block of each order).
    [[nodiscard]] PhysAddr allocate_below(unsigned order, PhysAddr limit);
    // `count` contiguous pages (count >= 1) starting at a multiple of `alignment` bytes (any
    // power of two; 0 or below kPageSize means kPageSize), ending (one past the last byte) at or
    // below `limit` (as allocate_below()), inside one
    // region; or kNoPage, with nothing changed: for count 0, an alignment other than 0 that is
    // not a power of two, or when no region has `count` such free pages in a row (the CPU page
    // lists taken back first, as for allocate()). Any free pages in a row serve: the promise is
    // that a run that fits contiguously in free RAM can be allocated. Free with free_pages() and
    // the same count.
    //   - Up to a maximum block (2^kMaxOrder pages) and aligned to at most one, the run is first
    //     the start of a buddy block (the smallest order that holds the count and the alignment),
    //     whose tail is given back; time as allocate_below(). When no free block serves it (the
    //     CPU page lists taken back), it is the lowest such free pages in a row of the highest
    //     region that has them (Region::find_lowest_run(): the free bitmaps read a window of 64
    //     pages at a time); time O(regions + sum over the regions of P / 64 windows of about two
    //     hundred instructions each), P a region's pages below the limit (fewer windows with an
    //     alignment above 64 pages). Reached only when the buddy path fails; a 4 GiB region
    //     fragmented into stretches of 1-3 free pages is 2^14 windows, about 0.3-0.5 ms.
    //   - Beyond a maximum block, aligned to at most one: the free maximum blocks of a stretch,
    //     with the free pages right after them and, when those fall short, right before them (so
    //     it starts at a maximum block, 1 GiB-aligned, whenever a stretch and its tail hold it);
    //     time O(regions + sum over the regions of B * kMaxOrder^2 + count / 2^kMaxOrder *
    //     kMaxOrder), where B is a region's number of maximum-block slots (one per GiB).
    //   - Aligned beyond a maximum block: the lowest such free pages in a row of the highest
    //     region that has them, as above, visiting only the windows at multiples of the
    //     alignment and those the runs from them cover.
    // `search` = BuddyBlock leaves out the search for free pages in a row up to a maximum block
    // (a caller with a bounded cost to keep, such as a heap's malloc, asks once more with
    // AnyFreePages when memory is short); runs beyond a maximum block or aligned beyond one are
    // found in free pages in a row either way.
    [[nodiscard]] PhysAddr allocate_pages(size_t count, uint64_t alignment = kPageSize,
                                          PhysAddr limit = kNoLimit,
                                          RunSearch search = RunSearch::AnyFreePages);

    // Frees a block from allocate()/allocate_below() and merges it with its free buddies. A block
    // of order < kCpuListOrders in the CPU-list region goes to the calling CPU's list: O(1), and
    // O(kCpuListBatch * kMaxOrder * L) when the list is full and half of it is drained first.
    // Otherwise O(kMaxOrder * L + log regions) (each merge takes a buddy: O(L)).
    void free(PhysAddr address, unsigned order);
    // Frees a run from allocate_pages(address, count, ...), or a block with count = 2^order (as
    // free(), CPU page lists included); the whole run or nothing (a wrong count is misuse,
    // reported with size = count).
    // O((count / 2^kMaxOrder + kMaxOrder) * (kMaxOrder + L) + log regions).
    void free_pages(PhysAddr address, size_t count);
    // Grows the run of `count` pages at `address` (from allocate_pages() and not freed) in place
    // to `new_count` pages, taking the pages right after it, and returns true; false, changing
    // nothing and reporting nothing, when `new_count` <= `count`, any of those pages is not free
    // (allocated, reserved, on a CPU page list, or outside the run's region), or `address` and
    // `count` are not such a run. The run is then freed with free_pages(address, new_count).
    // Their tags are 0, as free pages' are. O(as free_pages() of the run + the pages taken /
    // 2^kMaxOrder * kMaxOrder + kMaxOrder^2).
    [[nodiscard]] bool extend_pages(PhysAddr address, size_t count, size_t new_count);
    // Shrinks the run of `count` pages at `address` (from allocate_pages() and not freed) in
    // place to its first `new_count` pages, freeing the rest (whose tags must be 0, as free
    // pages' are), and returns true; false, changing nothing and reporting nothing, when
    // `new_count` is 0 or >= `count`, or `address` and `count` are not such a run. The run is
    // then freed with free_pages(address, new_count). O(as free_pages() of the run).
    [[nodiscard]] bool shrink_pages(PhysAddr address, size_t count, size_t new_count);

    // Gives every block on CPU slot `cpu`'s page lists back to the free blocks (a CPU going
    // offline, or one that wants its cached pages merged with their buddies). Any CPU may call
    // it for any slot at any time: that CPU may be running its fast paths meanwhile (a block it
    // pushes during the call may stay on its list). Does nothing for cpu >= kMaxCpus or without
    // CPU page lists. O(kCpuListOrders * kCpuListBlocks * kMaxOrder * L).
    void drain_cpu(unsigned cpu);

    // Takes the managed pages of `range` (widened to whole pages) out of circulation for good
    // (firmware tables found late), after taking back every CPU's page lists. Each of them
    // must be free, reserved already, or on a CPU's lists: otherwise reports ReserveConflict and
    // changes nothing more (the lists stay taken back). Pages of the range that the allocator does
    // not manage are ignored. A range that wraps past the top of the address space is refused
    // (false, nothing changed). Freeing a reserved page is misuse. Returns whether it reserved.
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
    // The span tag of the span of 2^kTagSpanOrder pages holding `address` (null as for
    // page_tag()). Like a page tag it belongs to the owner, but only to an owner of every page
    // of the span (an allocated block of order >= kTagSpanOrder holds whole spans); it is 0
    // while any page of the span is free (check() verifies it; debug builds assert it on every
    // free). Lock-free, O(log regions).
    [[nodiscard]] uint16_t* span_tag(const void* address) const { return tags_of(address).span; }
    // Both tags of the page holding `address`, from one lookup; both null if page_tag() is.
    struct PageTags {
        uint16_t* page;
        uint16_t* span;
    };
    [[nodiscard]] PageTags tags_of(const void* address) const;
    // The physical address of `address`, a virtual address in a managed page (page_tag() is not
    // null for it): the inverse of platform::phys_to_virt there. Lock-free, O(log regions).
    [[nodiscard]] PhysAddr phys_of(const void* address) const;

    // Tells platform::pages_unused() of every free block of order kUnusedOrder or more, the
    // retained ones included (kRetainedUnusedPages): for a trim (heap_trim() calls it). O(free
    // bitmap words of those orders).
    void tell_unused_pages();

    // Introspection (each takes the lock but managed_pages() and cpu_list_pages(), which read
    // atomic counts; O(regions * orders + kMaxCpus * kCpuListOrders) at most). Pages on CPU page
    // lists count as free (each CPU's count read as it stands: exact while no other CPU
    // allocates or frees).
    [[nodiscard]] uint64_t managed_pages() const {
        return __atomic_load_n(&m_managed_pages, __ATOMIC_RELAXED);
    }
    [[nodiscard]] uint64_t free_pages() const;
    // The pages on the CPU page lists of every CPU.
    [[nodiscard]] uint64_t cpu_list_pages() const;
    [[nodiscard]] uint64_t reserved_pages() const;
    // free_blocks() and largest_free_order() describe the free blocks alone (a block on a CPU
    // page list is not merged with its buddies until it is drained).
    [[nodiscard]] FreeBlockCounts free_blocks() const;
    // The largest order with a free block, or -1 when nothing is free.
    [[nodiscard]] int largest_free_order() const;
    // All metadata: init()'s and every added range's.
    [[nodiscard]] uint64_t metadata_bytes() const {
        return m_metadata.size + __atomic_load_n(&m_added_metadata_bytes, __ATOMIC_RELAXED);
    }
    // Where init()'s metadata lives (size 0 before init()).
    [[nodiscard]] PhysRange metadata_range() const { return m_metadata; }
    [[nodiscard]] size_t region_count() const {
        return __atomic_load_n(&m_region_count, __ATOMIC_ACQUIRE);
    }
    // The pages region `index` manages and how many of them are free; an empty range and 0 for
    // an index at or beyond region_count() (before init(): every index).
    [[nodiscard]] PhysRange region_range(size_t index) const;
    [[nodiscard]] uint64_t region_free_pages(size_t index) const;
    // The free pages of the CPU-list region (those on CPU page lists included): what every CPU's
    // lists together can hold at most. 0 without CPU page lists.
    [[nodiscard]] uint64_t cpu_list_region_free_pages() const;
    // Free pages below `limit` (whole regions only: limits at zone boundaries are exact).
    [[nodiscard]] uint64_t free_pages_below(PhysAddr limit) const;

    // Walks all metadata and verifies the invariants listed above, the CPU page lists included
    // (call it while no other CPU allocates or frees), and the 64-byte pad each metadata block
    // begins with (pages/metadata_pad.h), where a write past the end of the page before it lands
    // instead of on the CPU page lists or a free bitmap. O(blocks * kMaxOrder + reserved pages +
    // free pages + metadata bytes / 8).
    [[nodiscard]] PageFrameCheck check() const;

    // For fork() in a threaded program: takes the lock (masking interrupts) and returns the
    // mask to give to unlock_all(), which the caller calls in both the parent and the child.
    // The CPU page lists take no lock (the child's one thread keeps its own CPU's; a list
    // cannot be left taken, since only the lock's holder marks one). Lock order:
    // after every heap's locks (bedrock/heap.h's heap_lock_all()). Between the two calls, call
    // nothing else of this allocator. O(1) plus the wait for the lock.
    [[nodiscard]] platform::InterruptState lock_all() { return m_lock.lock(); }
    void unlock_all(platform::InterruptState previous) { m_lock.unlock(previous); }

private:
    struct Region;
    struct RunBlocks;
    struct Misuse;
    struct CpuLists;
    // Why init() or add_range() did not take its ranges (`why` null: it did). A Misuse refusal
    // is the caller's arguments at fault and is reported as RangeRefused; add_range() running
    // short (no spare descriptor, no room for the metadata) is an answer, not reported.
    enum class RefusalCause { Misuse, ShortOfMemory };
    struct Refusal {
        const char* why;
        PhysRange range;
        RefusalCause cause;
    };
    [[nodiscard]] Refusal init_locked(const PhysRange* usable, size_t count, CpuPageLists lists,
                                      size_t spare_regions, RangeContents contents);
    [[nodiscard]] Refusal add_range_locked(PhysRange range);
    // One region's pages in the direct map, for page_tag().
    struct TagWindow {
        uintptr_t base;       // platform::phys_to_virt(the region's first page)
        uint64_t bytes;       // the region's pages * kPageSize
        uint16_t* tags;       // one per page of the region
        PhysAddr phys;        // the region's first page
        uint16_t* span_tags;  // one per span the region touches
        uint64_t span_offset; // the first page's index in its span
    };
    // The CPU page lists, in the metadata (null without them), and their region's bounds and
    // page states, kept here for the fast paths.
    struct CpuListsRef {
        CpuLists* lists = nullptr; // kMaxCpus of them
        uint8_t* states = nullptr; // one per page of the region (pages/cpu_page_lists.h)
        uint64_t first_page = 0;
        PhysAddr base = 0;       // first_page's address
        uint64_t page_count = 0; // 0 without lists
        Region* region = nullptr;
    };

    // Functions named *_locked need m_lock held.
    // Fills in a region descriptor and its tag window for the pages [first, first + pages), with
    // its bitmaps at `bits` and its tags at `tags` (zeroed; the sizes pages/region.h computes).
    void set_up_region(Region& region, TagWindow& window, uint64_t first, uint64_t pages,
                       uint64_t* bits, uint16_t* tags);
    // After an allocation that failed (`address` kNoPage: retries `retry` once if the reclaim
    // hook gave pages back, then asks the grow hook for `pages` pages and retries while it adds
    // some; pages 0: neither can help) or that left the allocator below its reserve
    // (m_grow_wanted: asks for the reserve). Out of line: the fast paths stay small.
    template <class Retry>
    [[gnu::noinline]] PhysAddr grow_after(PhysAddr address, uint64_t pages, Retry retry);
    // Whether an allocation's slow half must run (it failed, or growth ahead is wanted).
    [[nodiscard]] bool needs_growth(PhysAddr address) const {
        return address == kNoPage || __atomic_load_n(&m_grow_wanted, __ATOMIC_RELAXED) != 0;
    }
    // After an allocation from `region`: notes m_grow_wanted if no region has a free block of
    // m_grow_reserve_order or more.
    void note_reserve_locked(const Region& region);
    [[nodiscard]] PhysAddr allocate_pages_once(size_t count, uint64_t alignment, PhysAddr limit,
                                               RunSearch search);
    [[nodiscard, gnu::always_inline]] PhysAddr allocate_once(unsigned order);
    [[nodiscard]] PhysAddr allocate_locked(unsigned order, PhysAddr limit);
    // allocate_locked(), and when the free blocks cannot serve it, again after taking back CPU
    // page lists (attempt_taking_lists_locked). Takes the lock.
    [[nodiscard, gnu::noinline]] PhysAddr allocate_or_drain(unsigned order, PhysAddr limit);
    // The CPU-list paths (pages/cpu_page_lists.cpp), with interrupts masked on CPU `cpu`: the
    // slow halves of allocate (an empty or taken list: refill it, or allocate_locked() and then
    // taking lists back) and of free (a full or taken list: drain its oldest kCpuListBatch
    // blocks if it is full, then push the block at page index `index`, which the fast path
    // claimed: its state is Cached). Each takes the lock.
    [[nodiscard]] PhysAddr refill_and_take(unsigned cpu, unsigned order);
    void drain_batch_and_push(unsigned cpu, unsigned order, uint32_t index);
    // Gives the block of `order` at page index `index` of the CPU-list region, from a CPU list,
    // back to the free blocks, merging.
    void give_back_locked(uint32_t index, unsigned order);
    // Gives back every block on `cpu`'s lists (any slot, its CPU running or not: the lists are
    // marked taken meanwhile); returns whether there was one. False for cpu >= kMaxCpus.
    [[nodiscard]] bool drain_cpu_locked(unsigned cpu);
    // `attempt()` (an allocation under the lock; kNoPage when it fails), and while it fails
    // again after taking back each CPU's lists in turn, the calling CPU's first, when the lists'
    // pages lie below `limit` (pages/cpu_page_lists.h).
    template <class Attempt>
    [[nodiscard]] PhysAddr attempt_taking_lists_locked(PhysAddr limit, Attempt attempt);
    // Its slow half, after `attempt()` failed once. Out of line: the lock's callers stay small.
    template <class Attempt>
    [[nodiscard, gnu::noinline]] PhysAddr retry_taking_lists_locked(PhysAddr limit,
                                                                    Attempt attempt);
    // The fast half of free(): pushes the block on the calling CPU's list if it was allocated
    // from one; false (nothing done) otherwise.
    [[nodiscard, gnu::always_inline]] bool free_to_cpu_list(PhysAddr address, unsigned order);
    // The locked free of a block (size = its order) or a run (size = its pages), misuse reported
    // after unlocking. Out of line: the CPU-list fast paths stay small.
    enum class FreeOf : uint8_t { Block, Run };
    [[gnu::noinline]] void free_locked(PhysAddr address, uint64_t size, FreeOf what,
                                       const void* call_site);
    // Whether `page` lies in a block on a CPU page list (at its start or inside it).
    [[nodiscard]] bool on_cpu_list(uint64_t page) const;
    // Takes the state byte of `page` (if it has one) to None for a free or a resize under the lock,
    // with a compare-and-swap from Allocated: false, changing nothing, if a free through a CPU
    // list (which takes no lock) has claimed the block since the caller checked it.
    [[nodiscard]] bool claim_cpu_state(uint64_t page);
    // A region's free pages, with the CPU lists' pages for the CPU-list region.
    [[nodiscard]] uint64_t free_pages_of(const Region& region) const;
    // The CPU page lists' part of check().
    [[nodiscard]] PageFrameCheck check_cpu_lists_locked() const;
    // `count` free pages in a row at a multiple of `alignment` pages, ending at or below
    // `limit`, in the highest region that has them (Region::find_long_run() beyond a maximum
    // block with an alignment up to one, else Region::find_lowest_run()), taken and recorded as
    // a run; or kNoPage.
    [[nodiscard]] PhysAddr allocate_run_locked(uint64_t count, uint64_t alignment, PhysAddr limit);
    [[nodiscard]] Region* region_of(uint64_t first_page, uint64_t page_count) const;
    // Why freeing is misuse, or no misuse, `region` set to the block's or run's region and its
    // blocks added to `blocks` (made for the address).
    [[nodiscard]] Misuse free_misuse_locked(PhysAddr address, unsigned order, Region*& region,
                                            RunBlocks& blocks) const;
    // The region of the run of `count` pages at `address` (from allocate_pages() and not freed),
    // or null if that is no such run. Under m_lock.
    [[nodiscard]] Region* live_run_region_locked(PhysAddr address, uint64_t count);
    [[nodiscard]] Misuse free_pages_misuse_locked(PhysAddr address, uint64_t count, Region*& region,
                                                  RunBlocks& blocks) const;

    Region* m_regions = nullptr;        // sorted by address, in the metadata
    TagWindow* m_tag_windows = nullptr; // sorted by virtual base, in the metadata
    size_t m_region_count = 0;          // also the number of tag windows
    size_t m_initial_regions = 0;       // init()'s; add_range()'s follow, in address order
    size_t m_region_capacity = 0;       // descriptors and windows the metadata has room for
    uint64_t m_managed_pages = 0;
    PhysRange m_metadata;
    uint64_t m_added_metadata_bytes = 0; // add_range()'s metadata, carved from the added ranges
    // The end of the last range add_range() took, its metadata included (which may lie above its
    // last region), physically (a page number) and virtually; 0 before any.
    uint64_t m_added_end_page = 0;
    uintptr_t m_added_virtual_end = 0;
    GrowHook m_grow_hook = nullptr;
    ReclaimHook m_reclaim_hook = nullptr;
    void* m_grow_context = nullptr;
    RangeContents m_contents = RangeContents::Unknown; // init()'s promise, for add_range()
    uint8_t m_grow_reserve_order = kOrderCount;        // kOrderCount: no reserve
    uint8_t m_grow_wanted = 0;                         // 1: the reserve is gone, grow ahead
    uint32_t m_unreported_pages = 0; // freed, less allocated and reported since (capped)
    CpuListsRef m_cpu;
    mutable SpinLock m_lock;
};

inline PhysAddr PageFrameAllocator::phys_of(const void* address) const {
    const auto virt = reinterpret_cast<uintptr_t>(address);
    const TagWindow* window = m_tag_windows;
    size_t count = __atomic_load_n(&m_region_count, __ATOMIC_ACQUIRE);
    while (count > 1) {
        const size_t half = count / 2;
        window = window[half].base <= virt ? window + half : window;
        count -= half;
    }
    return window->phys + (virt - window->base);
}

// The last window whose base is at or below `address`, by halving, then one range test: about
// 20 + 8 * ceil(log2(regions)) instructions on x86-64 (clang -O2), reading only the windows.
inline PageFrameAllocator::PageTags PageFrameAllocator::tags_of(const void* address) const {
    const auto virt = reinterpret_cast<uintptr_t>(address);
    const TagWindow* window = m_tag_windows;
    size_t count = __atomic_load_n(&m_region_count, __ATOMIC_ACQUIRE);
    if (count == 0) {
        return {nullptr, nullptr};
    }
    while (count > 1) {
        const size_t half = count / 2;
        window = window[half].base <= virt ? window + half : window;
        count -= half;
    }
    const uint64_t offset = virt - window->base;
    if (virt < window->base || offset >= window->bytes) {
        return {nullptr, nullptr};
    }
    const uint64_t page = offset >> kPageShift;
    return {window->tags + page,
            window->span_tags + ((page + window->span_offset) >> kTagSpanOrder)};
}

inline uint16_t* PageFrameAllocator::page_tag(const void* address) const {
    return tags_of(address).page;
}

} // namespace bedrock
