// The buddy page frame allocator; the contract, metadata layout and invariants are in
// bedrock/page_frame_allocator.h.
//
// Pages are handled by page frame number (pfn = address >> 12). In a region, the block of order
// k starting at pfn p (p a multiple of 2^k) has bit index (p >> k) - (first_page >> k) in the
// order-k bitmaps. Splitting and merging, for a block of order k at p:
//
//   split:  [ p ............ p + 2^k )      merge:  buddy(p, k) = p ^ 2^k
//           [ p .. p+2^(k-1) )[ buddy  )            [ p ..... )[ buddy ..... ] -> [ min(p, buddy) )
//             kept / split on   freed                 both free at order k        free at k + 1
#include "bedrock/page_frame_allocator.h"

#include "bedrock/assert.h"
#include "bedrock/memory_routines.h"
#include "bedrock/platform.h"

namespace bedrock {
namespace {

constexpr uint64_t kWordBits = 64;

constexpr uint64_t pages_of(unsigned order) {
    return uint64_t{1} << order;
}

unsigned floor_log2(uint64_t value) {
    return 63u - static_cast<unsigned>(__builtin_clzll(value));
}

unsigned ceil_log2(uint64_t value) {
    return value <= 1 ? 0 : floor_log2(value - 1) + 1;
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

// Calls visit(page, order) for each block of the greedy decomposition of [first, end) into
// the largest naturally aligned blocks.
template <class Visit>
void for_each_aligned_block(uint64_t first, uint64_t end, Visit visit) {
    while (first < end) {
        const unsigned order = largest_block_order(first, end - first);
        visit(first, order);
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

uint64_t bitmaps_words(uint64_t first_page, uint64_t page_count) {
    uint64_t words = 0;
    for (unsigned order = 0; order < kOrderCount; ++order) {
        words += bitmap_words(first_page, page_count, order);
    }
    return 2 * words; // free and allocated
}

struct FreeNode {
    uint64_t next; // pfn, or kNoPage
    uint64_t prev;
};

FreeNode& node(uint64_t page) {
    return *static_cast<FreeNode*>(platform::phys_to_virt(page << kPageShift));
}

void report(ErrorKind kind, PhysAddr address, uint64_t order, const void* call_site,
            const char* detail) {
    platform::report_error(ErrorReport{kind, "pfa", address, order, call_site, detail});
}

} // namespace

struct PageFrameAllocator::Region {
    uint64_t first_page;
    uint64_t page_count;
    uint64_t free_pages;
    uint64_t* bits;                    // free bitmaps, then allocated bitmaps
    uint64_t allocated_offset;         // words from bits to the allocated bitmaps
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

    // The free block containing `page`, as its order, or -1.
    [[nodiscard]] int free_block_containing(uint64_t page) const {
        for (unsigned order = 0; order < kOrderCount; ++order) {
            const uint64_t head = page & ~(pages_of(order) - 1);
            if (holds(head, order) && is_free(head, order)) {
                return static_cast<int>(order);
            }
        }
        return -1;
    }
};

static_assert(kOrderCount <= 32, "nonempty_orders is a 32-bit mask");
static_assert(sizeof(FreeNode) <= kPageSize);

bool PageFrameAllocator::init(const PhysRange* usable, size_t count) {
    // The descriptors are followed by the bitmaps in one page-aligned block.
    static_assert(sizeof(Region) % alignof(uint64_t) == 0 && alignof(Region) <= kPageSize);
    LockGuard guard(m_lock);
    if (m_regions != nullptr || count == 0) {
        return false;
    }
    for (size_t i = 0; i < count; ++i) {
        const PhysRange& range = usable[i];
        const bool aligned = range.base % kPageSize == 0 && range.size % kPageSize == 0;
        if (!aligned || range.size == 0 || (i > 0 && usable[i - 1].last() >= range.base)) {
            return false;
        }
    }

    // Pass 1: how much metadata, and which region piece is largest to hold it.
    size_t regions = 0;
    uint64_t words = 0;
    uint64_t host_first = 0;
    uint64_t host_count = 0;
    for_each_region_piece(usable, count, [&](uint64_t first, uint64_t pages) {
        ++regions;
        words += bitmaps_words(first, pages);
        if (pages > host_count) {
            host_first = first;
            host_count = pages;
        }
    });
    const uint64_t descriptor_bytes = regions * sizeof(Region);
    const uint64_t metadata_bytes = descriptor_bytes + words * sizeof(uint64_t);
    const uint64_t metadata_pages = (metadata_bytes + kPageSize - 1) / kPageSize;
    if (metadata_pages >= host_count) {
        return false;
    }

    // Pass 2: the regions, their bitmaps and their free blocks. The host piece starts after
    // the metadata (its bitmaps, sized for the shrunk piece, fit in what pass 1 counted).
    auto* metadata = static_cast<uint8_t*>(platform::phys_to_virt(host_first << kPageShift));
    bedrock_memset(metadata, 0, metadata_bytes);
    m_regions = reinterpret_cast<Region*>(metadata);
    auto* next_bits = reinterpret_cast<uint64_t*>(metadata + descriptor_bytes);
    m_region_count = 0;
    m_managed_pages = 0;
    m_metadata_bytes = metadata_pages * kPageSize;
    for_each_region_piece(usable, count, [&](uint64_t first, uint64_t pages) {
        if (first == host_first) {
            first += metadata_pages;
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
        next_bits += 2 * offset;
        for_each_aligned_block(first, first + pages, [&](uint64_t page, unsigned order) {
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
    const uint64_t limit_page = limit >> kPageShift;
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
    if (count == 0 || (alignment & (alignment - 1)) != 0) {
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
    // Keep exactly `count` pages (recorded as their aligned pieces); the tail goes back.
    const uint64_t page = address >> kPageShift;
    Region& region = *region_of(page, count);
    region.set_allocated(page, order, false);
    for_each_aligned_block(page, page + count, [&](uint64_t piece, unsigned k) {
        region.set_allocated(piece, k, true);
    });
    for_each_aligned_block(page + count, page + pages_of(order),
                           [&](uint64_t piece, unsigned k) { region.insert_coalescing(piece, k); });
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

bool PageFrameAllocator::validate_free(uint64_t page, unsigned order, const void* call_site) const {
    const PhysAddr address = page << kPageShift;
    const Region* region = region_of(page, pages_of(order));
    if (region == nullptr) {
        report(ErrorKind::FreeOutsideManagedMemory, address, order, call_site,
               "the block is not inside memory this allocator manages");
        return false;
    }
    const bool aligned = page % pages_of(order) == 0;
    if (aligned && region->is_allocated(page, order)) {
        return true;
    }
    // The start of a block allocated with another order is a wrong order, even where the
    // address is not aligned for the order given.
    for (unsigned other = 0; other < kOrderCount; ++other) {
        if (page % pages_of(other) == 0 && region->holds(page, other) &&
            region->is_allocated(page, other)) {
            report(ErrorKind::FreeWrongOrder, address, order, call_site,
                   "the block was allocated with another order");
            return false;
        }
    }
    if (!aligned) {
        report(ErrorKind::FreeMisaligned, address, order, call_site,
               "the address is not aligned to the block size of its order");
        return false;
    }
    report(ErrorKind::DoubleFree, address, order, call_site,
           "the block is not currently allocated (already freed, or never allocated)");
    return false;
}

void PageFrameAllocator::free_locked(uint64_t page, unsigned order) {
    Region& region = *region_of(page, pages_of(order));
    region.set_allocated(page, order, false);
    region.insert_coalescing(page, order);
}

void PageFrameAllocator::free(PhysAddr address, unsigned order) {
    const void* call_site = __builtin_return_address(0);
    LockGuard guard(m_lock);
    if (order > kMaxOrder) {
        report(ErrorKind::FreeWrongOrder, address, order, call_site,
               "the order exceeds the maximum");
        return;
    }
    if (address % kPageSize != 0) {
        report(ErrorKind::FreeMisaligned, address, order, call_site,
               "the address is not page-aligned");
        return;
    }
    if (validate_free(address >> kPageShift, order, call_site)) {
        free_locked(address >> kPageShift, order);
    }
}

void PageFrameAllocator::free_pages(PhysAddr address, size_t count) {
    const void* call_site = __builtin_return_address(0);
    LockGuard guard(m_lock);
    if (count == 0 || address % kPageSize != 0) {
        report(ErrorKind::FreeMisaligned, address, count, call_site,
               "the address is not page-aligned or the count is zero");
        return;
    }
    const uint64_t page = address >> kPageShift;
    if (region_of(page, count) == nullptr) {
        report(ErrorKind::FreeOutsideManagedMemory, address, count, call_site,
               "the run is not inside memory this allocator manages");
        return;
    }
    // Every piece must be allocated before any is freed: a bad call changes nothing.
    bool valid = true;
    for_each_aligned_block(page, page + count, [&](uint64_t piece, unsigned order) {
        valid = valid && validate_free(piece, order, call_site);
    });
    if (valid) {
        for_each_aligned_block(page, page + count,
                               [&](uint64_t piece, unsigned order) { free_locked(piece, order); });
    }
}

bool PageFrameAllocator::reserve_range(PhysRange range) {
    const void* call_site = __builtin_return_address(0);
    if (range.size == 0) {
        return true;
    }
    const uint64_t first = range.base >> kPageShift;
    const uint64_t last = range.last() >> kPageShift;
    LockGuard guard(m_lock);
    // Pass 1: every managed page of the range must be in a free block.
    for (size_t i = 0; i < m_region_count; ++i) {
        const Region& region = m_regions[i];
        const uint64_t a = first > region.first_page ? first : region.first_page;
        const uint64_t b = last + 1 < region.end_page() ? last + 1 : region.end_page();
        for (uint64_t page = a; page < b;) {
            const int order = region.free_block_containing(page);
            if (order < 0) {
                report(ErrorKind::ReserveConflict, page << kPageShift, range.size, call_site,
                       "the range contains allocated pages");
                return false;
            }
            page = (page & ~(pages_of(static_cast<unsigned>(order)) - 1)) +
                   pages_of(static_cast<unsigned>(order));
        }
    }
    // Pass 2: take each such block; the parts outside the range go back.
    for (size_t i = 0; i < m_region_count; ++i) {
        Region& region = m_regions[i];
        const uint64_t a = first > region.first_page ? first : region.first_page;
        const uint64_t b = last + 1 < region.end_page() ? last + 1 : region.end_page();
        for (uint64_t page = a; page < b;) {
            const auto order = static_cast<unsigned>(region.free_block_containing(page));
            const uint64_t head = page & ~(pages_of(order) - 1);
            const uint64_t end = head + pages_of(order);
            const uint64_t taken_end = end < b ? end : b;
            region.remove_free(head, order);
            for_each_aligned_block(head, page, [&](uint64_t piece, unsigned k) {
                region.insert_coalescing(piece, k);
            });
            for_each_aligned_block(page, taken_end, [&](uint64_t piece, unsigned k) {
                region.set_allocated(piece, k, true);
            });
            for_each_aligned_block(taken_end, end, [&](uint64_t piece, unsigned k) {
                region.insert_coalescing(piece, k);
            });
            page = taken_end;
        }
    }
    return true;
}

uint64_t PageFrameAllocator::free_pages() const {
    LockGuard guard(m_lock);
    uint64_t total = 0;
    for (size_t i = 0; i < m_region_count; ++i) {
        total += m_regions[i].free_pages;
    }
    return total;
}

uint64_t PageFrameAllocator::free_pages_below(PhysAddr limit) const {
    LockGuard guard(m_lock);
    uint64_t total = 0;
    for (size_t i = 0; i < m_region_count; ++i) {
        if (m_regions[i].end_page() <= (limit >> kPageShift)) {
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
        uint64_t free_pages = 0;
        uint64_t allocated_pages = 0;
        for (unsigned order = 0; order < kOrderCount; ++order) {
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
                if (region.is_allocated(page, order)) {
                    return fail("a block is both free and allocated", page);
                }
                const uint64_t buddy = page ^ pages_of(order);
                if (order < kMaxOrder && region.holds(buddy, order) &&
                    region.is_free(buddy, order)) {
                    return fail("a free block and its buddy are both free (not merged)", page);
                }
            }
            if (listed != region.free_count[order] ||
                ((region.nonempty_orders >> order) & 1u) != (listed != 0 ? 1u : 0u)) {
                return fail("a free list's count or non-empty mask is wrong", region.first_page);
            }
            const uint64_t words = bitmap_words(region.first_page, region.page_count, order);
            uint64_t free_bits = 0;
            uint64_t allocated_bits = 0;
            for (uint64_t w = 0; w < words; ++w) {
                free_bits += static_cast<uint64_t>(
                    __builtin_popcountll(region.bits[region.word_offset[order] + w]));
                allocated_bits += static_cast<uint64_t>(__builtin_popcountll(
                    region.bits[region.allocated_offset + region.word_offset[order] + w]));
            }
            if (free_bits != listed) {
                return fail("a free bitmap disagrees with its list", region.first_page);
            }
            free_pages += listed * pages_of(order);
            allocated_pages += allocated_bits * pages_of(order);
        }
        if (free_pages != region.free_pages) {
            return fail("the region's free page count is wrong", region.first_page);
        }
        if (free_pages + allocated_pages != region.page_count) {
            return fail("free + allocated pages != managed pages", region.first_page);
        }
    }
    return PageFrameCheck{};
}

} // namespace bedrock
