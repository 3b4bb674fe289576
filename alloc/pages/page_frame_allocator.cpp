// The buddy page frame allocator; the contract, metadata layout and invariants are in
// bedrock/page_frame_allocator.h.
//
// Pages are handled by page frame number (pfn = address >> 12). In a region, the block of order
// k starting at pfn p (p a multiple of 2^k) has bit index (p >> k) - (first_page >> k) in the
// order-k bitmaps; the two page bitmaps (run continues, reserved) have one bit per page, index
// p - first_page. Splitting and merging, for a block of order k at p:
//
//   split:  [ p ............ p + 2^k )      merge:  buddy(p, k) = p ^ 2^k
//           [ p .. p+2^(k-1) )[ buddy  )            [ p ..... )[ buddy ..... ] -> [ min(p, buddy) )
//             kept / split on   freed                 both free at order k        free at k + 1
//
// A run of `count` pages (allocate_pages) is recorded as the greedy decomposition of
// [p, p + count) into naturally aligned blocks, in decreasing order, each with its allocated bit;
// every block but the last also has the "run continues" mark on its last page, so whether a
// block continues a run, or is continued, is one bit each (the pages either side of its edges),
// and a run is freed only whole:
//
//   count 7 at p:  [ . . . C | . C | . ]     C: the run continues after this page
//                    order 2  order 1 order 0
//
// Misuse is decided under the lock and reported after it is released: report_error never runs
// with the allocator locked.
#include "bedrock/page_frame_allocator.h"

#include "bedrock/assert.h"
#include "bedrock/memory_routines.h"
#include "bedrock/platform.h"

namespace bedrock {
namespace {

constexpr uint64_t kWordBits = 64;
// One past the last page frame of the 64-bit physical address space.
constexpr uint64_t kPageEnd = uint64_t{1} << (64 - kPageShift);

constexpr uint64_t pages_of(unsigned order) {
    return uint64_t{1} << order;
}

unsigned floor_log2(uint64_t value) {
    return 63u - static_cast<unsigned>(__builtin_clzll(value));
}

unsigned ceil_log2(uint64_t value) {
    return value <= 1 ? 0 : floor_log2(value - 1) + 1;
}

// The first page a block must not reach when it has to end at or below `limit`.
uint64_t end_page_below(PhysAddr limit) {
    return limit == kNoLimit ? kPageEnd : limit >> kPageShift;
}

// The order of the largest naturally aligned block that starts at `page` and fits in
// `remaining` pages.
unsigned largest_block_order(uint64_t page, uint64_t remaining) {
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

// Calls visit(first_page, page_count) for each region: the usable ranges split at the zone
// boundaries.
template <class Visit>
void for_each_region_piece(const PhysRange* usable, size_t count, Visit visit) {
    constexpr uint64_t kBoundaries[] = {kZoneDmaLimit >> kPageShift, kZoneDma32Limit >> kPageShift};
    for (size_t i = 0; i < count; ++i) {
        uint64_t first = usable[i].base >> kPageShift;
        const uint64_t end = first + usable[i].page_count();
        for (const uint64_t boundary : kBoundaries) {
            if (first < boundary && boundary < end) {
                visit(first, boundary - first);
                first = boundary;
            }
        }
        visit(first, end - first);
    }
}

uint64_t bitmap_words(uint64_t first_page, uint64_t page_count, unsigned order) {
    const uint64_t bits = ((first_page + page_count - 1) >> order) - (first_page >> order) + 1;
    return (bits + kWordBits - 1) / kWordBits;
}

// Free and allocated bitmaps for every order, then the two page bitmaps.
uint64_t bitmaps_words(uint64_t first_page, uint64_t page_count) {
    uint64_t words = 0;
    for (unsigned order = 0; order < kOrderCount; ++order) {
        words += bitmap_words(first_page, page_count, order);
    }
    return 2 * words + 2 * bitmap_words(first_page, page_count, 0);
}

// The order of the largest block in the greedy decomposition of [first, end).
unsigned largest_greedy_order(uint64_t first, uint64_t end) {
    unsigned largest = 0;
    for_each_aligned_block(first, end, [&](uint64_t, unsigned order, bool) {
        largest = order > largest ? order : largest;
    });
    return largest;
}

// Where in a region piece [first, first + count) the metadata's `pages` pages can go without
// breaking up one of the piece's largest blocks (of order L): its top, when the part above the
// last multiple of 2^L holds them, else its bottom, when the part below the first one does.
// Returns the metadata's first page, or kPageEnd when neither fits.
uint64_t harmless_metadata_place(uint64_t first, uint64_t count, uint64_t pages) {
    const uint64_t end = first + count;
    const uint64_t span = pages_of(largest_greedy_order(first, end));
    const uint64_t last_boundary = end & ~(span - 1);
    const uint64_t tail = end - (last_boundary > first ? last_boundary : first);
    if (tail >= pages) {
        return end - pages;
    }
    const uint64_t first_boundary = (first + span - 1) & ~(span - 1);
    const uint64_t head = (first_boundary < end ? first_boundary : end) - first;
    return head >= pages ? first : kPageEnd;
}

struct FreeNode {
    uint64_t next; // pfn, or kNoPage
    uint64_t prev;
};

FreeNode& node(uint64_t page) {
    return *static_cast<FreeNode*>(platform::phys_to_virt(page << kPageShift));
}

} // namespace

// Why a free cannot be done; detail == nullptr when it can.
struct PageFrameAllocator::Misuse {
    ErrorKind kind;
    const char* detail;
};

struct PageFrameAllocator::Region {
    enum class PageMark : uint8_t { RunContinues, Reserved };

    uint64_t first_page;
    uint64_t page_count;
    uint64_t free_pages;
    uint64_t reserved_pages;
    uint64_t* bits;                    // free bitmaps, allocated bitmaps, then the page marks
    uint64_t allocated_offset;         // words from bits to the allocated bitmaps
    uint64_t marks_offset;             // words from bits to the run-continues bitmap
    uint64_t page_words;               // words of one page bitmap
    uint64_t word_offset[kOrderCount]; // words from a bitmap's start to order k's
    uint64_t free_list[kOrderCount];   // head pfn, or kNoPage
    uint64_t free_count[kOrderCount];  // blocks on each list
    uint32_t nonempty_orders;          // bit k <=> free_list[k] is not empty

    [[nodiscard]] uint64_t end_page() const { return first_page + page_count; }
    [[nodiscard]] bool holds(uint64_t page, unsigned order) const {
        return page >= first_page && page + pages_of(order) <= end_page();
    }
    [[nodiscard]] uint64_t bit_index(uint64_t page, unsigned order) const {
        return (page >> order) - (first_page >> order);
    }
    [[nodiscard]] uint64_t& word(bool allocated, uint64_t page, unsigned order) const {
        return bits[(allocated ? allocated_offset : 0) + word_offset[order] +
                    bit_index(page, order) / kWordBits];
    }
    [[nodiscard]] uint64_t mask(uint64_t page, unsigned order) const {
        return uint64_t{1} << (bit_index(page, order) % kWordBits);
    }
    [[nodiscard]] bool is_free(uint64_t page, unsigned order) const {
        return (word(false, page, order) & mask(page, order)) != 0;
    }
    [[nodiscard]] bool is_allocated(uint64_t page, unsigned order) const {
        return (word(true, page, order) & mask(page, order)) != 0;
    }
    void set_allocated(uint64_t page, unsigned order, bool allocated) {
        uint64_t& w = word(true, page, order);
        w = allocated ? w | mask(page, order) : w & ~mask(page, order);
    }

    [[nodiscard]] uint64_t& mark_word(PageMark mark, uint64_t page) const {
        return bits[marks_offset + (mark == PageMark::Reserved ? page_words : 0) +
                    (page - first_page) / kWordBits];
    }
    [[nodiscard]] bool has_mark(PageMark mark, uint64_t page) const {
        return (mark_word(mark, page) & mask(page, 0)) != 0;
    }
    void set_mark(PageMark mark, uint64_t page, bool set) {
        uint64_t& w = mark_word(mark, page);
        w = set ? w | mask(page, 0) : w & ~mask(page, 0);
    }
    [[nodiscard]] bool is_reserved(uint64_t page) const {
        return has_mark(PageMark::Reserved, page);
    }

    void push_free(uint64_t page, unsigned order) {
        BEDROCK_DEBUG_ASSERT(holds(page, order) && page % pages_of(order) == 0);
        BEDROCK_DEBUG_ASSERT(!is_free(page, order));
        word(false, page, order) |= mask(page, order);
        FreeNode& n = node(page);
        n.next = free_list[order];
        n.prev = kNoPage;
        if (free_list[order] != kNoPage) {
            node(free_list[order]).prev = page;
        }
        free_list[order] = page;
        ++free_count[order];
        nonempty_orders |= 1u << order;
        free_pages += pages_of(order);
    }

    void remove_free(uint64_t page, unsigned order) {
        BEDROCK_DEBUG_ASSERT(is_free(page, order));
        word(false, page, order) &= ~mask(page, order);
        const FreeNode& n = node(page);
        if (n.prev != kNoPage) {
            node(n.prev).next = n.next;
        } else {
            free_list[order] = n.next;
        }
        if (n.next != kNoPage) {
            node(n.next).prev = n.prev;
        }
        if (--free_count[order] == 0) {
            nonempty_orders &= ~(1u << order);
        }
        free_pages -= pages_of(order);
    }

    // Inserts a free block, merging it with its free buddies all the way up.
    void insert_coalescing(uint64_t page, unsigned order) {
        while (order < kMaxOrder) {
            const uint64_t buddy = page ^ pages_of(order);
            if (!holds(buddy, order) || !is_free(buddy, order)) {
                break;
            }
            remove_free(buddy, order);
            page = page < buddy ? page : buddy;
            ++order;
        }
        push_free(page, order);
    }

    // Takes the free block (page, order) off its list and splits it down to `wanted`, keeping
    // the lowest part: the upper halves go back to the free lists.
    void split_to(uint64_t page, unsigned order, unsigned wanted) {
        remove_free(page, order);
        while (order > wanted) {
            --order;
            push_free(page + pages_of(order), order);
        }
    }

    // The order of the free (or allocated) block that contains `page`, or -1 if none does.
    [[nodiscard]] int block_containing(uint64_t page, bool allocated) const {
        for (unsigned order = 0; order < kOrderCount; ++order) {
            const uint64_t head = page & ~(pages_of(order) - 1);
            if (holds(head, order) &&
                (allocated ? is_allocated(head, order) : is_free(head, order))) {
                return static_cast<int>(order);
            }
        }
        return -1;
    }

    // Whether an allocated block of any order starts at `page`.
    [[nodiscard]] bool starts_allocated_block(uint64_t page) const {
        for (unsigned order = 0; order < kOrderCount; ++order) {
            if (page % pages_of(order) != 0 || !holds(page, order)) {
                break;
            }
            if (is_allocated(page, order)) {
                return true;
            }
        }
        return false;
    }

    // Whether `page` starts a block that continues a run (the page before it is marked).
    [[nodiscard]] bool continues_a_run(uint64_t page) const {
        return page > first_page && has_mark(PageMark::RunContinues, page - 1);
    }
    // Whether the run of the allocated block (page, order) continues after it.
    [[nodiscard]] bool run_continues_after(uint64_t page, unsigned order) const {
        return has_mark(PageMark::RunContinues, page + pages_of(order) - 1);
    }
    void set_run_continues_after(uint64_t page, unsigned order, bool continues) {
        set_mark(PageMark::RunContinues, page + pages_of(order) - 1, continues);
    }

    // Why the block (page, order), page aligned to the order and inside the region, is not an
    // allocated block that may be freed; the run marks are the caller's business.
    // (Reserved pages lie in no block, so an allocated block is never reserved.)
    [[nodiscard]] Misuse block_misuse(uint64_t page, unsigned order) const {
        if (is_allocated(page, order)) {
            return {};
        }
        if (is_reserved(page)) {
            return {ErrorKind::FreeOutsideManagedMemory, "the pages are reserved (reserve_range)"};
        }
        if (starts_allocated_block(page)) {
            return {ErrorKind::FreeWrongOrder, "the block was allocated with another order"};
        }
        if (block_containing(page, true) >= 0) {
            return {ErrorKind::FreeWrongOrder, "the address is inside a larger allocated block"};
        }
        return {ErrorKind::DoubleFree,
                "the block is not allocated (already freed, or never allocated)"};
    }

    // Records [page, page + count) as allocated: its greedy blocks, chained by run marks.
    void mark_run(uint64_t page, uint64_t count) {
        for_each_aligned_block(page, page + count, [&](uint64_t block, unsigned order, bool last) {
            set_allocated(block, order, true);
            set_run_continues_after(block, order, !last);
        });
    }
};

static_assert(kOrderCount <= 32, "nonempty_orders is a 32-bit mask");
static_assert(sizeof(FreeNode) <= kPageSize, "a free node lives in the first page of a block");
static_assert(kMaxOrder + kPageShift < 64, "a maximum block is addressable");

bool PageFrameAllocator::init(const PhysRange* usable, size_t count) {
    // The descriptors are followed by the bitmaps in one page-aligned block.
    static_assert(sizeof(Region) % alignof(uint64_t) == 0 && alignof(Region) <= kPageSize);
    LockGuard guard(m_lock);
    if (m_regions != nullptr || usable == nullptr || count == 0) {
        return false;
    }
    for (size_t i = 0; i < count; ++i) {
        const PhysRange& range = usable[i];
        const bool aligned = range.base % kPageSize == 0 && range.size % kPageSize == 0;
        if (!aligned || range.size == 0 || range.last() < range.base ||
            (i > 0 && usable[i - 1].last() >= range.base)) {
            return false;
        }
    }

    // Pass 1: how much metadata there is, and where it goes: preferably in the highest piece
    // that holds it without breaking up a maximum-order block, else at the bottom of the
    // largest piece.
    size_t regions = 0;
    uint64_t words = 0;
    for_each_region_piece(usable, count, [&](uint64_t first, uint64_t pages) {
        ++regions;
        words += bitmaps_words(first, pages);
    });
    const uint64_t descriptor_bytes = regions * sizeof(Region);
    const uint64_t metadata_bytes = descriptor_bytes + words * sizeof(uint64_t);
    const uint64_t metadata_pages = (metadata_bytes + kPageSize - 1) / kPageSize;
    uint64_t metadata_page = kPageEnd;
    uint64_t largest_first = 0;
    uint64_t largest_count = 0;
    for_each_region_piece(usable, count, [&](uint64_t first, uint64_t pages) {
        if (pages > metadata_pages) {
            const uint64_t place = harmless_metadata_place(first, pages, metadata_pages);
            metadata_page = place != kPageEnd ? place : metadata_page;
        }
        if (pages > largest_count) {
            largest_first = first;
            largest_count = pages;
        }
    });
    if (metadata_page == kPageEnd) {
        if (metadata_pages >= largest_count) {
            return false;
        }
        metadata_page = largest_first;
    }

    // Pass 2: the regions, their bitmaps and their free blocks. The piece holding the metadata
    // loses those pages at its bottom or top; its bitmaps, sized for the shrunk piece, fit in
    // what pass 1 counted.
    auto* metadata = static_cast<uint8_t*>(platform::phys_to_virt(metadata_page << kPageShift));
    bedrock_memset(metadata, 0, metadata_bytes);
    m_regions = reinterpret_cast<Region*>(metadata);
    auto* next_bits = reinterpret_cast<uint64_t*>(metadata + descriptor_bytes);
    m_region_count = 0;
    m_managed_pages = 0;
    m_metadata = PhysRange{metadata_page << kPageShift, metadata_pages * kPageSize};
    for_each_region_piece(usable, count, [&](uint64_t first, uint64_t pages) {
        if (first == metadata_page) {
            first += metadata_pages;
            pages -= metadata_pages;
        } else if (metadata_page > first && metadata_page - first < pages) {
            pages -= metadata_pages;
        }
        Region& region = m_regions[m_region_count++];
        region.first_page = first;
        region.page_count = pages;
        region.bits = next_bits;
        uint64_t offset = 0;
        for (unsigned order = 0; order < kOrderCount; ++order) {
            region.word_offset[order] = offset;
            region.free_list[order] = kNoPage;
            offset += bitmap_words(first, pages, order);
        }
        region.allocated_offset = offset;
        region.marks_offset = 2 * offset;
        region.page_words = bitmap_words(first, pages, 0);
        next_bits += bitmaps_words(first, pages);
        // One step per block, never per page. The greedy blocks are never buddies of equal
        // order below kMaxOrder (the greedy step would have taken their parent), so no merging.
        for_each_aligned_block(first, first + pages, [&](uint64_t page, unsigned order, bool) {
            region.push_free(page, order);
        });
        m_managed_pages += pages;
    });
    BEDROCK_ASSERT(reinterpret_cast<uint8_t*>(next_bits) <= metadata + metadata_bytes);
    return true;
}

PhysAddr PageFrameAllocator::allocate_locked(unsigned order, PhysAddr limit) {
    if (order > kMaxOrder) {
        return kNoPage;
    }
    const uint64_t limit_page = end_page_below(limit);
    const uint32_t usable_orders = ~((1u << order) - 1);
    // Highest region first: low memory stays available for constrained allocations.
    for (size_t i = m_region_count; i-- > 0;) {
        Region& region = m_regions[i];
        const uint32_t candidates = region.nonempty_orders & usable_orders;
        if (candidates == 0 || region.first_page + pages_of(order) > limit_page) {
            continue;
        }
        if (region.end_page() <= limit_page) {
            const auto found = static_cast<unsigned>(__builtin_ctz(candidates));
            const uint64_t page = region.free_list[found];
            region.split_to(page, found, order);
            region.set_allocated(page, order, true);
            return page << kPageShift;
        }
        // The region straddles the limit: find a block whose lowest 2^order pages fit below.
        for (unsigned k = order; k < kOrderCount; ++k) {
            for (uint64_t page = region.free_list[k]; page != kNoPage; page = node(page).next) {
                if (page + pages_of(order) <= limit_page) {
                    region.split_to(page, k, order);
                    region.set_allocated(page, order, true);
                    return page << kPageShift;
                }
            }
        }
    }
    return kNoPage;
}

PhysAddr PageFrameAllocator::allocate(unsigned order) {
    LockGuard guard(m_lock);
    return allocate_locked(order, kNoLimit);
}

PhysAddr PageFrameAllocator::allocate_below(unsigned order, PhysAddr limit) {
    LockGuard guard(m_lock);
    return allocate_locked(order, limit);
}

PhysAddr PageFrameAllocator::allocate_pages(size_t count, uint64_t alignment, PhysAddr limit) {
    if (count == 0 || count > pages_of(kMaxOrder) || (alignment & (alignment - 1)) != 0) {
        return kNoPage;
    }
    const unsigned alignment_order =
        alignment <= kPageSize ? 0 : floor_log2(alignment) - kPageShift;
    const unsigned size_order = ceil_log2(count);
    const unsigned order = size_order > alignment_order ? size_order : alignment_order;
    LockGuard guard(m_lock);
    const PhysAddr address = allocate_locked(order, limit);
    if (address == kNoPage || pages_of(order) == count) {
        return address;
    }
    // Keep exactly `count` pages (recorded as their aligned blocks); the tail goes back. The
    // tail's blocks need no merging: each one's buddy holds kept pages.
    const uint64_t page = address >> kPageShift;
    Region& region = *region_of(page, count);
    region.set_allocated(page, order, false);
    region.mark_run(page, count);
    for_each_aligned_block(page + count, page + pages_of(order),
                           [&](uint64_t block, unsigned k, bool) { region.push_free(block, k); });
    return address;
}

PageFrameAllocator::Region* PageFrameAllocator::region_of(uint64_t first_page,
                                                          uint64_t page_count) const {
    size_t low = 0;
    size_t high = m_region_count;
    while (low < high) { // first region whose end is above first_page
        const size_t middle = (low + high) / 2;
        if (m_regions[middle].end_page() <= first_page) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    if (low == m_region_count) {
        return nullptr;
    }
    Region& region = m_regions[low];
    const bool inside =
        first_page >= region.first_page && page_count <= region.end_page() - first_page;
    return inside ? &region : nullptr;
}

PageFrameAllocator::Misuse PageFrameAllocator::free_misuse_locked(PhysAddr address, unsigned order,
                                                                  Region*& region) const {
    if (order > kMaxOrder) {
        return {ErrorKind::FreeWrongOrder, "the order exceeds the maximum"};
    }
    if (address % kPageSize != 0) {
        return {ErrorKind::FreeMisaligned, "the address is not page-aligned"};
    }
    const uint64_t page = address >> kPageShift;
    region = region_of(page, 1);
    if (region == nullptr) {
        return {ErrorKind::FreeOutsideManagedMemory,
                "the address is not inside memory this allocator manages"};
    }
    // The start of a block allocated with another order is a wrong order, even where the
    // block of the order given would be misaligned or run past the end of the region.
    if (page % pages_of(order) != 0 || !region->holds(page, order)) {
        if (region->starts_allocated_block(page)) {
            return {ErrorKind::FreeWrongOrder, "the block was allocated with another order"};
        }
        return page % pages_of(order) != 0
                   ? Misuse{ErrorKind::FreeMisaligned,
                            "the address is not aligned to the block size of its order"}
                   : Misuse{ErrorKind::FreeOutsideManagedMemory,
                            "the block runs past the end of memory this allocator manages"};
    }
    const Misuse misuse = region->block_misuse(page, order);
    if (misuse.detail != nullptr) {
        return misuse;
    }
    if (region->run_continues_after(page, order) || region->continues_a_run(page)) {
        return {ErrorKind::FreeWrongOrder,
                "the block is part of a run: free the whole run with free_pages()"};
    }
    return {};
}

PageFrameAllocator::Misuse PageFrameAllocator::free_pages_misuse_locked(PhysAddr address,
                                                                        uint64_t count,
                                                                        Region*& region) const {
    if (count == 0) {
        return {ErrorKind::FreeWrongOrder, "a run of zero pages"};
    }
    if (address % kPageSize != 0) {
        return {ErrorKind::FreeMisaligned, "the address is not page-aligned"};
    }
    const uint64_t page = address >> kPageShift;
    region = region_of(page, count);
    if (region == nullptr) {
        return {ErrorKind::FreeOutsideManagedMemory,
                "the run is not inside memory this allocator manages"};
    }
    Misuse misuse{};
    for_each_aligned_block(page, page + count, [&](uint64_t block, unsigned order, bool last) {
        if (misuse.detail == nullptr) {
            misuse = region->block_misuse(block, order);
        }
        if (misuse.detail == nullptr && region->run_continues_after(block, order) == last) {
            misuse = {ErrorKind::FreeWrongOrder, "the run was allocated with another page count"};
        }
    });
    if (misuse.detail == nullptr && region->continues_a_run(page)) {
        misuse = {ErrorKind::FreeWrongOrder, "the address is inside a run, not at its start"};
    }
    return misuse;
}

void PageFrameAllocator::release_locked(Region& region, uint64_t page, uint64_t count) {
    for_each_aligned_block(page, page + count, [&](uint64_t block, unsigned order, bool) {
        region.set_allocated(block, order, false);
        region.set_run_continues_after(block, order, false);
        region.insert_coalescing(block, order);
    });
}

void PageFrameAllocator::free(PhysAddr address, unsigned order) {
    const void* call_site = call_site_of(__builtin_return_address(0));
    Misuse misuse;
    {
        LockGuard guard(m_lock);
        Region* region = nullptr;
        misuse = free_misuse_locked(address, order, region);
        if (misuse.detail == nullptr) {
            release_locked(*region, address >> kPageShift, pages_of(order));
            return;
        }
    }
    platform::report_error(
        ErrorReport{misuse.kind, "pfa", address, order, call_site, misuse.detail, 0, 0, {}, {}});
}

void PageFrameAllocator::free_pages(PhysAddr address, size_t count) {
    const void* call_site = call_site_of(__builtin_return_address(0));
    Misuse misuse;
    {
        LockGuard guard(m_lock);
        Region* region = nullptr;
        misuse = free_pages_misuse_locked(address, count, region);
        if (misuse.detail == nullptr) {
            release_locked(*region, address >> kPageShift, count);
            return;
        }
    }
    platform::report_error(
        ErrorReport{misuse.kind, "pfa", address, count, call_site, misuse.detail, 0, 0, {}, {}});
}

bool PageFrameAllocator::reserve_range(PhysRange range) {
    const void* call_site = call_site_of(__builtin_return_address(0));
    if (range.size == 0) {
        return true;
    }
    const uint64_t first = range.base >> kPageShift;
    const uint64_t end = (range.last() >> kPageShift) + 1;
    {
        LockGuard guard(m_lock);
        // Pass 1: every managed page of the range must be free or reserved already.
        bool conflict = false;
        for (size_t i = 0; i < m_region_count && !conflict; ++i) {
            const Region& region = m_regions[i];
            const uint64_t a = first > region.first_page ? first : region.first_page;
            const uint64_t b = end < region.end_page() ? end : region.end_page();
            for (uint64_t page = a; page < b && !conflict;) {
                if (region.is_reserved(page)) {
                    ++page;
                    continue;
                }
                const int order = region.block_containing(page, false);
                conflict = order < 0;
                if (!conflict) {
                    const uint64_t pages = pages_of(static_cast<unsigned>(order));
                    page = (page & ~(pages - 1)) + pages;
                }
            }
        }
        if (!conflict) {
            // Pass 2: take each free block; its parts outside the range go back (their buddies
            // hold reserved pages, so they do not merge), its pages inside become reserved.
            for (size_t i = 0; i < m_region_count; ++i) {
                Region& region = m_regions[i];
                const uint64_t a = first > region.first_page ? first : region.first_page;
                const uint64_t b = end < region.end_page() ? end : region.end_page();
                for (uint64_t page = a; page < b;) {
                    if (region.is_reserved(page)) {
                        ++page;
                        continue;
                    }
                    const auto order = static_cast<unsigned>(region.block_containing(page, false));
                    const uint64_t head = page & ~(pages_of(order) - 1);
                    const uint64_t block_end = head + pages_of(order);
                    const uint64_t taken_end = block_end < b ? block_end : b;
                    region.remove_free(head, order);
                    const auto give_back = [&](uint64_t block, unsigned k, bool) {
                        region.push_free(block, k);
                    };
                    for_each_aligned_block(head, page, give_back);
                    for_each_aligned_block(taken_end, block_end, give_back);
                    region.reserved_pages += taken_end - page;
                    for (; page < taken_end; ++page) {
                        region.set_mark(Region::PageMark::Reserved, page, true);
                    }
                }
            }
            return true;
        }
    }
    platform::report_error(ErrorReport{ErrorKind::ReserveConflict,
                                       "pfa",
                                       range.base,
                                       range.size,
                                       call_site,
                                       "the range contains allocated pages",
                                       0,
                                       0,
                                       {},
                                       {}});
    return false;
}

uint64_t PageFrameAllocator::free_pages() const {
    LockGuard guard(m_lock);
    uint64_t total = 0;
    for (size_t i = 0; i < m_region_count; ++i) {
        total += m_regions[i].free_pages;
    }
    return total;
}

uint64_t PageFrameAllocator::reserved_pages() const {
    LockGuard guard(m_lock);
    uint64_t total = 0;
    for (size_t i = 0; i < m_region_count; ++i) {
        total += m_regions[i].reserved_pages;
    }
    return total;
}

uint64_t PageFrameAllocator::free_pages_below(PhysAddr limit) const {
    LockGuard guard(m_lock);
    uint64_t total = 0;
    for (size_t i = 0; i < m_region_count; ++i) {
        if (m_regions[i].end_page() <= end_page_below(limit)) {
            total += m_regions[i].free_pages;
        }
    }
    return total;
}

FreeBlockCounts PageFrameAllocator::free_blocks() const {
    LockGuard guard(m_lock);
    FreeBlockCounts counts;
    for (size_t i = 0; i < m_region_count; ++i) {
        for (unsigned order = 0; order < kOrderCount; ++order) {
            counts.blocks[order] += m_regions[i].free_count[order];
        }
    }
    return counts;
}

int PageFrameAllocator::largest_free_order() const {
    LockGuard guard(m_lock);
    int largest = -1;
    for (size_t i = 0; i < m_region_count; ++i) {
        const uint32_t orders = m_regions[i].nonempty_orders;
        if (orders != 0 && static_cast<int>(floor_log2(orders)) > largest) {
            largest = static_cast<int>(floor_log2(orders));
        }
    }
    return largest;
}

PhysRange PageFrameAllocator::region_range(size_t index) const {
    LockGuard guard(m_lock);
    const Region& region = m_regions[index];
    return PhysRange{region.first_page << kPageShift, region.page_count << kPageShift};
}

uint64_t PageFrameAllocator::region_free_pages(size_t index) const {
    LockGuard guard(m_lock);
    return m_regions[index].free_pages;
}

PageFrameCheck PageFrameAllocator::check() const {
    LockGuard guard(m_lock);
    const auto fail = [](const char* failure, uint64_t page) {
        return PageFrameCheck{false, failure, page << kPageShift};
    };
    for (size_t i = 0; i < m_region_count; ++i) {
        const Region& region = m_regions[i];
        if (i > 0 && m_regions[i - 1].end_page() > region.first_page) {
            return fail("regions overlap or are unsorted", region.first_page);
        }
        // The blocks and reserved pages must tile the region exactly: walk it block by block.
        FreeBlockCounts free_walked;
        FreeBlockCounts allocated_walked;
        uint64_t reserved = 0;
        uint64_t run_marks = 0;
        uint64_t free_pages = 0;
        uint64_t allocated_pages = 0;
        bool run_open = false; // the previous block's run continues here
        unsigned run_order = 0;
        for (uint64_t page = region.first_page; page < region.end_page();) {
            if (region.is_reserved(page)) {
                if (run_open) {
                    return fail("a run continues into a reserved page", page);
                }
                ++reserved;
                ++page;
                continue;
            }
            int found = -1;
            bool found_free = false;
            for (unsigned k = 0; k < kOrderCount; ++k) {
                if (page % pages_of(k) != 0 || !region.holds(page, k)) {
                    break;
                }
                const bool is_free = region.is_free(page, k);
                const bool is_allocated = region.is_allocated(page, k);
                if (is_free && is_allocated) {
                    return fail("a block is both free and allocated", page);
                }
                if (is_free || is_allocated) {
                    if (found >= 0) {
                        return fail("two blocks start at the same page", page);
                    }
                    found = static_cast<int>(k);
                    found_free = is_free;
                }
            }
            if (found < 0) {
                return fail("a page belongs to no block", page);
            }
            const auto order = static_cast<unsigned>(found);
            const bool continues = region.run_continues_after(page, order);
            if (run_open && (found_free || order >= run_order)) {
                return fail("a run's next block is not a smaller allocated block", page);
            }
            if (found_free) {
                if (continues) {
                    return fail("a free block carries a run mark", page);
                }
                ++free_walked.blocks[order];
                free_pages += pages_of(order);
            } else {
                ++allocated_walked.blocks[order];
                allocated_pages += pages_of(order);
                run_marks += continues ? 1 : 0;
            }
            run_open = continues;
            run_order = order;
            page += pages_of(order);
        }
        if (run_open) {
            return fail("a run continues past the end of its region", region.end_page() - 1);
        }
        // Every set bit must belong to a block or page the walk found.
        uint64_t run_bits = 0;
        uint64_t reserved_bits = 0;
        for (uint64_t w = 0; w < region.page_words; ++w) {
            run_bits +=
                static_cast<uint64_t>(__builtin_popcountll(region.bits[region.marks_offset + w]));
            reserved_bits += static_cast<uint64_t>(
                __builtin_popcountll(region.bits[region.marks_offset + region.page_words + w]));
        }
        if (run_bits != run_marks || reserved_bits != reserved) {
            return fail("a run or reserved mark lies inside a block", region.first_page);
        }
        for (unsigned order = 0; order < kOrderCount; ++order) {
            const uint64_t words = bitmap_words(region.first_page, region.page_count, order);
            uint64_t free_bits = 0;
            uint64_t allocated_bits = 0;
            for (uint64_t w = 0; w < words; ++w) {
                free_bits += static_cast<uint64_t>(
                    __builtin_popcountll(region.bits[region.word_offset[order] + w]));
                allocated_bits += static_cast<uint64_t>(__builtin_popcountll(
                    region.bits[region.allocated_offset + region.word_offset[order] + w]));
            }
            if (free_bits != free_walked.blocks[order] ||
                allocated_bits != allocated_walked.blocks[order]) {
                return fail("a block bit lies inside another block", region.first_page);
            }
            // Each free block is on exactly one list: the lists hold distinct blocks (the back
            // links agree and no list outgrows its count), all with their free bit, and as
            // many as the walk found.
            uint64_t listed = 0;
            uint64_t previous = kNoPage;
            for (uint64_t page = region.free_list[order]; page != kNoPage;
                 previous = page, page = node(page).next) {
                if (++listed > region.free_count[order]) {
                    return fail("a free list is longer than its count (a cycle?)", page);
                }
                if (!region.holds(page, order) || page % pages_of(order) != 0) {
                    return fail("a free block is outside its region or misaligned", page);
                }
                if (node(page).prev != previous) {
                    return fail("a free list's back link is wrong", page);
                }
                if (!region.is_free(page, order)) {
                    return fail("a listed block's free bit is clear", page);
                }
                const uint64_t buddy = page ^ pages_of(order);
                if (order < kMaxOrder && region.holds(buddy, order) &&
                    region.is_free(buddy, order)) {
                    return fail("a free block and its buddy are both free (not merged)", page);
                }
            }
            if (listed != region.free_count[order] || listed != free_walked.blocks[order] ||
                ((region.nonempty_orders >> order) & 1u) != (listed != 0 ? 1u : 0u)) {
                return fail("a free list's count or non-empty mask is wrong", region.first_page);
            }
        }
        if (free_pages != region.free_pages || reserved != region.reserved_pages) {
            return fail("the region's free or reserved page count is wrong", region.first_page);
        }
        if (free_pages + allocated_pages + reserved != region.page_count) {
            return fail("free + allocated + reserved pages != managed pages", region.first_page);
        }
    }
    return PageFrameCheck{};
}

} // namespace bedrock
