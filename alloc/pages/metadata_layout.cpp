// SPDX-License-Identifier: MIT
// Metadata carving at init: how much metadata the regions need, where it goes, and the
// regions' initial free blocks.
//
// Owns PageFrameAllocator::init() and add_range(), and why they refuse a range (reported as
// RangeRefused, outside the lock; add_range() running short is an answer, not a report). The
// metadata is one page-aligned block carved out of the usable ranges: a pad (metadata_pad.h), the
// CPU page lists (with them), the Region descriptors, the tag windows (sorted by virtual base),
// each region's bitmaps and their summaries (pages/region.h), each region's tags and span tags,
// then the CPU-list region's page states, all zeroed here. It goes where it breaks up none of a
// region's largest blocks when some region has room for that (the highest such), else at the bottom
// of the highest region without a 1 GiB block, else at the bottom of the largest region
// (metadata_place()). Invariant after init: the regions, sorted by address, plus the metadata
// pages, tile the usable ranges exactly, and every region page is in exactly one free block, and
// the tag windows are sorted and disjoint.
#include "bedrock/memory_routines.h"
#include "pages/cpu_page_lists.h"
#include "pages/metadata_pad.h"
#include "pages/region.h"

namespace bedrock {
namespace {

using pages::bitmap_words;
using pages::bitmaps_words;
using pages::for_each_aligned_block;
using pages::kPageEnd;
using pages::pages_of;
using pages::span_count;

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

constexpr unsigned kZoneCount = 3;

// The zone of a region piece starting at page `first`: 0 below 16 MiB, 1 below 4 GiB, 2 above
// (a piece never spans a boundary).
unsigned zone_of(uint64_t first) {
    return first < kZoneDmaLimit >> kPageShift ? 0 : first < kZoneDma32Limit >> kPageShift ? 1 : 2;
}

// A zone serves the CPU lists only if its largest piece holds at least 1/kListRegionShare of the
// RAM, or as many pages as every CPU's lists hold when full (kFullListsPages, 56 MiB).
constexpr uint64_t kListRegionShare = 8;
constexpr uint64_t kFullListsPages =
    uint64_t{platform::kMaxCpus} * kCpuListBlocks * ((uint64_t{1} << kCpuListOrders) - 1);

// A region piece: its index among the regions, and its pages.
struct Piece {
    size_t region = 0;
    uint64_t pages = 0;
};

// The CPU-list region (see init()) among each zone's largest piece (pages 0: none), of
// `ram_pages` in all: that of the highest zone where it holds at least 1/kListRegionShare of the
// RAM or kFullListsPages, else the largest (the highest of equals).
Piece list_region_piece(const Piece (&largest_of_zone)[kZoneCount], uint64_t ram_pages) {
    for (unsigned zone = kZoneCount; zone-- > 0;) {
        const Piece& largest = largest_of_zone[zone];
        if (largest.pages != 0 &&
            (largest.pages >= ram_pages / kListRegionShare || largest.pages >= kFullListsPages)) {
            return largest;
        }
    }
    Piece chosen;
    for (const Piece& largest : largest_of_zone) {
        chosen = largest.pages >= chosen.pages ? largest : chosen;
    }
    return chosen;
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
    const uint64_t last_boundary = align_down(end, span);
    const uint64_t tail = end - (last_boundary > first ? last_boundary : first);
    if (tail >= pages) {
        return end - pages;
    }
    const uint64_t first_boundary = align_up(first, span);
    const uint64_t head = (first_boundary < end ? first_boundary : end) - first;
    return head >= pages ? first : kPageEnd;
}

// The first page of `pages` pages of metadata among the region pieces of `usable` (count
// ranges): the highest harmless place (above) of any piece longer than the metadata; else the
// bottom of the highest such piece that has no maximum-order block (so no 1 GiB block is broken
// up); else the bottom of the largest piece. kPageEnd when no piece is longer than the metadata.
uint64_t metadata_place(const PhysRange* usable, size_t count, uint64_t pages) {
    uint64_t harmless = kPageEnd;
    uint64_t below_max_order = kPageEnd;
    uint64_t largest_first = 0;
    uint64_t largest_count = 0;
    for_each_region_piece(usable, count, [&](uint64_t first, uint64_t piece_pages) {
        if (piece_pages > pages) {
            const uint64_t place = harmless_metadata_place(first, piece_pages, pages);
            harmless = place != kPageEnd ? place : harmless;
            if (largest_greedy_order(first, first + piece_pages) < kMaxOrder) {
                below_max_order = first;
            }
        }
        if (piece_pages > largest_count) {
            largest_first = first;
            largest_count = piece_pages;
        }
    });
    if (harmless != kPageEnd) {
        return harmless;
    }
    if (below_max_order != kPageEnd) {
        return below_max_order;
    }
    return pages < largest_count ? largest_first : kPageEnd;
}

} // namespace

void PageFrameAllocator::set_up_region(Region& region, TagWindow& window, uint64_t first,
                                       uint64_t pages, uint64_t* bits, uint16_t* tags) {
    region.first_page = first;
    region.page_count = pages;
    region.bits = bits;
    region.tags = tags;
    region.span_tags = tags + pages;
    uint64_t offset = 0;
    for (unsigned order = 0; order < kOrderCount; ++order) {
        region.word_offset[order] = offset;
        offset += bitmap_words(first, pages, order);
    }
    region.allocated_offset = offset;
    region.marks_offset = 2 * offset;
    region.page_words = bitmap_words(first, pages, 0);
    // The summaries follow the page bitmaps: each order's table of level starts, then its
    // levels from the lowest up.
    uint64_t summary = region.marks_offset + 2 * region.page_words;
    for (unsigned order = 0; order < kOrderCount; ++order) {
        const uint64_t words = bitmap_words(first, pages, order);
        const unsigned levels = pages::summary_levels(words);
        region.summary_offset[order] = summary;
        region.summary_levels[order] = static_cast<uint8_t>(levels);
        uint64_t level_start = summary + levels;
        for (uint64_t level = 0, level_words = words; level < levels; ++level) {
            level_words = pages::summary_level_words(level_words);
            bits[summary + level] = level_start;
            level_start += level_words;
        }
        summary = level_start;
    }
    BEDROCK_DEBUG_ASSERT(summary == pages::bitmaps_words(first, pages));
    window = TagWindow{reinterpret_cast<uintptr_t>(platform::phys_to_virt(first << kPageShift)),
                       pages * kPageSize,
                       region.tags,
                       first << kPageShift,
                       region.span_tags,
                       first % kTagSpanPages};
}

namespace {

// Reports a refusal the caller's arguments caused, outside the lock.
void report_refusal(const char* why, PhysRange range, const void* call_site) {
    platform::report_error(ErrorReport{
        ErrorKind::RangeRefused, "pfa", range.base, range.size, call_site, why, 0, 0, {}, {}});
}

// What is wrong with one of init()'s or add_range()'s ranges (`previous`: the one before it, or
// null), or null.
const char* range_fault(const PhysRange& range, const PhysRange* previous) {
    if (range.base % kPageSize != 0 || range.size % kPageSize != 0) {
        return "a range not page-aligned (base and size must be multiples of 4 KiB)";
    }
    if (range.size == 0) {
        return "an empty range";
    }
    if (range.last() < range.base) {
        return "a range that wraps past the top of the address space";
    }
    if (previous != nullptr && previous->last() >= range.base) {
        return "a range that starts inside or below the range before it (ranges must be sorted "
               "and must not overlap)";
    }
    // A block's virtual address must be as aligned as its physical one (the heap finds an
    // arena from its pages' virtual addresses, and hands out large runs as aligned as asked):
    // the direct map's offset is a multiple of the largest naturally aligned block in the range.
    const uint64_t first = range.base >> kPageShift;
    const uint64_t end = first + range.page_count();
    unsigned largest = kMaxOrder;
    while (largest > 0 && (align_up(first, pages_of(largest)) >= end ||
                           end - align_up(first, pages_of(largest)) < pages_of(largest))) {
        --largest;
    }
    const uintptr_t offset =
        reinterpret_cast<uintptr_t>(platform::phys_to_virt(range.base)) - range.base;
    if (offset % (kPageSize << largest) != 0) {
        return "phys_to_virt() does not keep the alignment of the range's blocks (virtual - "
               "physical: a multiple of its largest aligned block)";
    }
    return nullptr;
}

} // namespace

bool PageFrameAllocator::init(const PhysRange* usable, size_t count, CpuPageLists lists,
                              size_t spare_regions, RangeContents contents) {
    const void* call_site = call_site_of(__builtin_return_address(0));
    Refusal refusal{};
    {
        LockGuard guard(m_lock);
        refusal = init_locked(usable, count, lists, spare_regions, contents);
    }
    if (refusal.why != nullptr) {
        report_refusal(refusal.why, refusal.range, call_site);
    }
    return refusal.why == nullptr;
}

PageFrameAllocator::Refusal PageFrameAllocator::init_locked(const PhysRange* usable, size_t count,
                                                            CpuPageLists lists,
                                                            size_t spare_regions,
                                                            RangeContents contents) {
    // One page-aligned block: the pad, the CPU lists, the descriptors, the tag windows, the
    // bitmaps, the tags and span tags, then the page states.
    static_assert(sizeof(CpuLists) % 64 == 0, "CPU slots share no cache line");
    static_assert(sizeof(Region) % alignof(uint64_t) == 0 && alignof(Region) <= kPageSize);
    static_assert(sizeof(TagWindow) % alignof(uint64_t) == 0 && alignof(TagWindow) <= kPageSize);
    if (m_regions != nullptr) {
        return Refusal{"init() called a second time", {}, RefusalCause::Misuse};
    }
    if (usable == nullptr || count == 0) {
        return Refusal{"no usable range given", {}, RefusalCause::Misuse};
    }
    if (spare_regions > 4096) {
        return Refusal{"more than 4096 spare regions asked for", {}, RefusalCause::Misuse};
    }
    for (size_t i = 0; i < count; ++i) {
        const char* fault = range_fault(usable[i], i > 0 ? &usable[i - 1] : nullptr);
        if (fault != nullptr) {
            return Refusal{fault, usable[i], RefusalCause::Misuse};
        }
    }

    // Pass 1: how much metadata there is, and where it goes (metadata_place()).
    // The CPU-list region is the largest piece (the highest of equals) of the highest zone whose
    // largest piece holds at least 1/kListRegionShare of the RAM or every CPU's full lists, where
    // unconstrained allocations go first; with no such zone, the largest piece of all. Not simply
    // the highest piece, nor the highest zone's: a sliver at the top (the pages firmware leaves
    // above a loaded file, a few MiB above 16 MiB or 4 GiB) would send most allocations to the
    // lock, the sliver soon taken. Its page states are counted for the whole piece (the metadata
    // may take a few of its pages).
    Piece largest_of_zone[kZoneCount];
    size_t regions = 0;
    uint64_t words = 0;
    uint64_t tags = 0;
    uint64_t ram_pages = 0;
    for_each_region_piece(usable, count, [&](uint64_t first, uint64_t pages) {
        Piece& largest = largest_of_zone[zone_of(first)];
        if (pages >= largest.pages) {
            largest = Piece{regions, pages};
        }
        ++regions;
        ram_pages += pages;
        words += bitmaps_words(first, pages);
        tags += pages + span_count(first, pages);
    });
    const Piece list_piece = list_region_piece(largest_of_zone, ram_pages);
    const size_t list_region = list_piece.region;
    const uint64_t list_region_pages = list_piece.pages;
    const bool with_lists =
        lists == CpuPageLists::On && list_region_pages <= pages::kMaxCpuListRegionPages;
    const uint64_t lists_bytes = with_lists ? platform::kMaxCpus * sizeof(CpuLists) : 0;
    const size_t capacity = regions + spare_regions;
    const uint64_t descriptor_bytes =
        pages::kMetadataPadBytes + lists_bytes + capacity * (sizeof(Region) + sizeof(TagWindow));
    const uint64_t states_bytes = with_lists ? list_region_pages : 0;
    const uint64_t metadata_bytes =
        descriptor_bytes + words * sizeof(uint64_t) + tags * sizeof(uint16_t) + states_bytes;
    const uint64_t metadata_pages = align_up(metadata_bytes, kPageSize) / kPageSize;
    const uint64_t metadata_page = metadata_place(usable, count, metadata_pages);
    if (metadata_page == kPageEnd) {
        return Refusal{"no range can hold the allocator's metadata (size: the bytes it needs)",
                       PhysRange{0, metadata_pages * kPageSize}, RefusalCause::Misuse};
    }

    // Pass 2: the regions with their bitmaps and tags, and the tag windows. The piece holding
    // the metadata loses those pages at its bottom or top; its bitmaps and tags, sized for the
    // shrunk piece, fit in what pass 1 counted. Zeroing the metadata zeroes every tag.
    auto* metadata = static_cast<uint8_t*>(platform::phys_to_virt(metadata_page << kPageShift));
    if (contents != RangeContents::Zeroed) {
        bedrock_memset(metadata, 0, metadata_bytes);
    }
    pages::write_metadata_pad(metadata);
    uint8_t* descriptors = metadata + pages::kMetadataPadBytes;
    auto* cpu_lists = with_lists ? reinterpret_cast<CpuLists*>(descriptors) : nullptr;
    auto* region_list = reinterpret_cast<Region*>(descriptors + lists_bytes);
    auto* windows =
        reinterpret_cast<TagWindow*>(descriptors + lists_bytes + capacity * sizeof(Region));
    auto* next_bits = reinterpret_cast<uint64_t*>(metadata + descriptor_bytes);
    auto* next_tags = reinterpret_cast<uint16_t*>(next_bits + words);
    size_t made = 0;
    for_each_region_piece(usable, count, [&](uint64_t first, uint64_t pages) {
        if (first == metadata_page) {
            first += metadata_pages;
            pages -= metadata_pages;
        } else if (metadata_page > first && metadata_page - first < pages) {
            pages -= metadata_pages;
        }
        set_up_region(region_list[made], windows[made], first, pages, next_bits, next_tags);
        next_bits += bitmaps_words(first, pages);
        next_tags += pages + span_count(first, pages);
        ++made;
    });
    auto* states = reinterpret_cast<uint8_t*>(next_tags);
    BEDROCK_ASSERT(made == regions && states + states_bytes <= metadata + metadata_bytes);

    // The tag windows sorted by virtual base (insertion sort: linear when phys_to_virt keeps
    // the physical order, as direct maps do; quadratic in regions otherwise). Overlapping
    // windows mean phys_to_virt maps two pages to one address: refuse, owning nothing.
    for (size_t i = 1; i < regions; ++i) {
        const TagWindow moving = windows[i];
        size_t j = i;
        for (; j > 0 && windows[j - 1].base > moving.base; --j) {
            windows[j] = windows[j - 1];
        }
        windows[j] = moving;
    }
    for (size_t i = 1; i < regions; ++i) {
        if (windows[i].base - windows[i - 1].base < windows[i - 1].bytes) {
            return Refusal{"phys_to_virt() maps two ranges onto overlapping addresses",
                           PhysRange{windows[i].phys, windows[i].bytes}, RefusalCause::Misuse};
        }
    }

    // The free blocks: one step per block, never per page. The greedy blocks are never buddies
    // of equal order below kMaxOrder (the greedy step would have taken their parent), so none
    // merge.
    m_managed_pages = 0;
    for (size_t i = 0; i < regions; ++i) {
        Region& region = region_list[i];
        for_each_aligned_block(
            region.first_page, region.end_page(),
            [&](uint64_t page, unsigned order, bool) { region.give(page, order); });
        m_managed_pages += region.page_count;
    }
    if (with_lists) {
        Region& listed = region_list[list_region];
        m_cpu = CpuListsRef{cpu_lists,         states,
                            listed.first_page, listed.first_page << kPageShift,
                            listed.page_count, &listed};
    }
    m_regions = region_list;
    m_tag_windows = windows;
    m_contents = contents;
    m_initial_regions = regions;
    m_region_capacity = capacity;
    m_metadata = PhysRange{metadata_page << kPageShift, metadata_pages * kPageSize};
    __atomic_store_n(&m_region_count, regions, __ATOMIC_RELEASE);
    return Refusal{};
}

bool PageFrameAllocator::add_range(PhysRange range) {
    const void* call_site = call_site_of(__builtin_return_address(0));
    Refusal refusal{};
    {
        LockGuard guard(m_lock);
        refusal = add_range_locked(range);
    }
    if (refusal.why != nullptr && refusal.cause == RefusalCause::Misuse) {
        report_refusal(refusal.why, range, call_site);
    }
    return refusal.why == nullptr;
}

PageFrameAllocator::Refusal PageFrameAllocator::add_range_locked(PhysRange range) {
    if (m_regions == nullptr) {
        return Refusal{"add_range() before init()", range, RefusalCause::Misuse};
    }
    const char* fault = range_fault(range, nullptr);
    if (fault != nullptr) {
        return Refusal{fault, range, RefusalCause::Misuse};
    }
    if (range.size < kMinAddedPages * kPageSize) {
        return Refusal{"a range below add_range()'s smallest (kMinAddedPages pages)", range,
                       RefusalCause::Misuse};
    }
    // Above everything managed: the last region (added ones are appended in address order),
    // init()'s metadata and the last added range's (at its top, above its last region),
    // physically and virtually.
    const Region& last = m_regions[m_region_count - 1];
    const uint64_t metadata_end = (m_metadata.last() >> kPageShift) + 1;
    uint64_t managed_end = last.end_page() > metadata_end ? last.end_page() : metadata_end;
    managed_end = m_added_end_page > managed_end ? m_added_end_page : managed_end;
    if (range.base >> kPageShift < managed_end) {
        return Refusal{"a range at or below a managed page (an added range must lie above all "
                       "the memory managed so far)",
                       range, RefusalCause::Misuse};
    }
    const uintptr_t virtual_base = reinterpret_cast<uintptr_t>(platform::phys_to_virt(range.base));
    uintptr_t virtual_end = 0;
    for (size_t i = 0; i < m_region_count; ++i) {
        const uintptr_t end = m_tag_windows[i].base + m_tag_windows[i].bytes;
        virtual_end = end > virtual_end ? end : virtual_end;
    }
    const uintptr_t metadata_virtual_end =
        reinterpret_cast<uintptr_t>(platform::phys_to_virt(m_metadata.base)) + m_metadata.size;
    virtual_end = metadata_virtual_end > virtual_end ? metadata_virtual_end : virtual_end;
    virtual_end = m_added_virtual_end > virtual_end ? m_added_virtual_end : virtual_end;
    if (virtual_base < virtual_end) {
        return Refusal{"phys_to_virt() maps the range below memory managed so far", range,
                       RefusalCause::Misuse};
    }

    // The metadata: a pad, then each piece's bitmaps and tags, in one block at the range's top when
    // that breaks up none of the last piece's largest blocks, else at the bottom of the largest
    // piece (as init() places its own).
    size_t pieces = 0;
    uint64_t words = 0;
    uint64_t tags = 0;
    for_each_region_piece(&range, 1, [&](uint64_t first, uint64_t pages) {
        ++pieces;
        words += bitmaps_words(first, pages);
        tags += pages + span_count(first, pages);
    });
    if (pieces > m_region_capacity - m_region_count) {
        return Refusal{"no spare region descriptor left", range, RefusalCause::ShortOfMemory};
    }
    const uint64_t metadata_bytes =
        pages::kMetadataPadBytes + words * sizeof(uint64_t) + tags * sizeof(uint16_t);
    const uint64_t metadata_pages = align_up(metadata_bytes, kPageSize) / kPageSize;
    const uint64_t metadata_page = metadata_place(&range, 1, metadata_pages);
    if (metadata_page == kPageEnd) {
        return Refusal{"no room for the range's metadata", range, RefusalCause::ShortOfMemory};
    }
    auto* block = static_cast<uint64_t*>(platform::phys_to_virt(metadata_page << kPageShift));
    if (m_contents != RangeContents::Zeroed) {
        bedrock_memset(block, 0, metadata_bytes);
    }
    pages::write_metadata_pad(block);
    uint64_t* next_bits = block + pages::kMetadataPadWords;
    auto* next_tags = reinterpret_cast<uint16_t*>(next_bits + words);

    // The new regions, then their free blocks, then the count that publishes them to the
    // lock-free lookups (tags_of, phys_of).
    size_t made = m_region_count;
    uint64_t added_pages = 0;
    for_each_region_piece(&range, 1, [&](uint64_t first, uint64_t pages) {
        if (first == metadata_page) {
            first += metadata_pages;
            pages -= metadata_pages;
        } else if (metadata_page > first && metadata_page - first < pages) {
            pages -= metadata_pages;
        }
        Region& region = m_regions[made];
        region = Region{};
        set_up_region(region, m_tag_windows[made], first, pages, next_bits, next_tags);
        if (next_bits == block + pages::kMetadataPadWords) {
            region.pad_before = Region::PadBefore::Bits;
        }
        next_bits += bitmaps_words(first, pages);
        next_tags += pages + span_count(first, pages);
        for_each_aligned_block(
            region.first_page, region.end_page(),
            [&](uint64_t page, unsigned order, bool) { region.give(page, order); });
        added_pages += pages;
        ++made;
    });
    __atomic_store_n(&m_managed_pages, m_managed_pages + added_pages, __ATOMIC_RELAXED);
    __atomic_store_n(&m_added_metadata_bytes, m_added_metadata_bytes + metadata_pages * kPageSize,
                     __ATOMIC_RELAXED);
    m_added_end_page = (range.last() >> kPageShift) + 1;
    const uintptr_t added_virtual_end = virtual_base + range.size; // 0 when it ends at the top
    m_added_virtual_end = added_virtual_end > virtual_base ? added_virtual_end : ~uintptr_t{0};
    __atomic_store_n(&m_region_count, made, __ATOMIC_RELEASE);
    return Refusal{};
}

} // namespace bedrock
