// SPDX-License-Identifier: MIT
// PageFrameAllocator::check(): walks all metadata and verifies the invariants listed in
// bedrock/page_frame_allocator.h (the free bitmaps' summaries and counts included), naming the
// first one that fails. Owns nothing; reads every region under the allocator's lock and changes
// nothing (the CPU page lists' part is in pages/cpu_page_lists.cpp).
#include "pages/metadata_pad.h"
#include "pages/region.h"

namespace bedrock {

using pages::bitmap_words;
using pages::pages_of;

PageFrameCheck PageFrameAllocator::check() const {
    LockGuard guard(m_lock);
    const auto fail = [](const char* failure, uint64_t page) {
        return PageFrameCheck{false, failure, page << kPageShift};
    };
    // The tag windows: sorted by virtual base, disjoint, and each the window of one region.
    for (size_t i = 0; i < m_region_count; ++i) {
        const TagWindow& window = m_tag_windows[i];
        if (i > 0 && window.base - m_tag_windows[i - 1].base < m_tag_windows[i - 1].bytes) {
            return fail("tag windows overlap or are unsorted", 0);
        }
        // init()'s regions' tags are consecutive in address order: find the window's by
        // halving. An added region's window has the region's index.
        size_t low = i < m_initial_regions ? 0 : i;
        size_t high = i < m_initial_regions ? m_initial_regions : i + 1;
        while (high - low > 1) {
            const size_t middle = (low + high) / 2;
            low = m_regions[middle].tags <= window.tags ? middle : low;
            high = m_regions[middle].tags <= window.tags ? high : middle;
        }
        const Region* region = &m_regions[low];
        if (region->tags != window.tags || region->span_tags != window.span_tags ||
            window.span_offset != region->first_page % kTagSpanPages ||
            window.bytes != region->page_count * kPageSize ||
            window.base != reinterpret_cast<uintptr_t>(
                               platform::phys_to_virt(region->first_page << kPageShift))) {
            return fail("a tag window does not match its region", 0);
        }
    }
    // The pads in front of the metadata blocks: init()'s (none before init() succeeds), and each
    // add_range()'s (named by its first region).
    if (m_metadata.size != 0 &&
        !pages::metadata_pad_holds(platform::phys_to_virt(m_metadata.base))) {
        return fail("the pad in front of the allocator's metadata was overwritten (a write past "
                    "the end of the page before it)",
                    m_metadata.base >> kPageShift);
    }
    for (size_t i = 0; i < m_region_count; ++i) {
        const Region& region = m_regions[i];
        if (region.pad_before == Region::PadBefore::Bits &&
            !pages::metadata_pad_holds(region.bits - pages::kMetadataPadWords)) {
            return fail("the pad in front of an added range's metadata was overwritten (a write "
                        "past the end of the page before it; address: the range's first region)",
                        region.first_page);
        }
    }
    for (size_t i = 0; i < m_region_count; ++i) {
        const Region& region = m_regions[i];
        if (i > 0 && m_regions[i - 1].end_page() > region.first_page) {
            return fail("regions overlap or are unsorted", region.first_page);
        }
        const Region& before = m_regions[i > 0 ? i - 1 : 0];
        if (i > 0 && i < m_initial_regions &&
            before.span_tags + pages::span_count(before.first_page, before.page_count) !=
                region.tags) {
            return fail("the regions' tags are not consecutive", region.first_page);
        }
        if (region.span_tags != region.tags + region.page_count) {
            return fail("a region's span tags do not follow its page tags", region.first_page);
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
        bool run_rising = false; // no block of the open run has been smaller than the one before
        for (uint64_t page = region.first_page; page < region.end_page();) {
            if (region.is_reserved(page)) {
                if (run_open) {
                    return fail("a run continues into a reserved page", page);
                }
                if (!region.tags_clear(page, 1)) {
                    return fail("a reserved page or its span has a tag other than 0", page);
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
            // A run's blocks are its greedy blocks (record_run()): orders rising while the
            // blocks are held down by their alignment (a run grown by extend_pages()), then its
            // maximum blocks, then falling while held down by the run's end - where the first
            // may be of the order of the last rising one.
            const bool next_in_run = order < run_order ||
                                     (order == kMaxOrder && run_order == kMaxOrder) ||
                                     (order >= run_order && run_rising);
            if (run_open && (found_free || !next_in_run)) {
                return fail("a run's next block is neither a smaller allocated block, another "
                            "maximum block, nor a larger one while its orders rise",
                            page);
            }
            run_rising = run_open ? run_rising && order > run_order : true;
            if (found_free) {
                if (continues) {
                    return fail("a free block carries a run mark", page);
                }
                if (region.first_tagged_page(page, pages_of(order)) != pages_of(order)) {
                    return fail("a free page has a tag other than 0",
                                page + region.first_tagged_page(page, pages_of(order)));
                }
                if (!region.tags_clear(page, pages_of(order))) {
                    return fail("a span holding a free page has a tag other than 0", page);
                }
                const uint64_t buddy = page ^ pages_of(order);
                if (order < kMaxOrder && region.holds(buddy, order) &&
                    region.is_free(buddy, order)) {
                    return fail("a free block and its buddy are both free (not merged)", page);
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
            run_bits += popcount(region.bits[region.marks_offset + w]);
            reserved_bits += popcount(region.bits[region.marks_offset + region.page_words + w]);
        }
        if (run_bits != run_marks || reserved_bits != reserved) {
            return fail("a run or reserved mark lies inside a block", region.first_page);
        }
        for (unsigned order = 0; order < kOrderCount; ++order) {
            const uint64_t words = bitmap_words(region.first_page, region.page_count, order);
            uint64_t free_bits = 0;
            uint64_t allocated_bits = 0;
            for (uint64_t w = 0; w < words; ++w) {
                free_bits += popcount(region.bits[region.word_offset[order] + w]);
                allocated_bits +=
                    popcount(region.bits[region.allocated_offset + region.word_offset[order] + w]);
            }
            if (free_bits != free_walked.blocks[order] ||
                allocated_bits != allocated_walked.blocks[order]) {
                return fail("a block bit lies inside another block", region.first_page);
            }
            if (free_bits != region.free_count[order] ||
                ((region.nonempty_orders >> order) & 1u) != (free_bits != 0 ? 1u : 0u)) {
                return fail("a free block count or the non-empty mask is wrong", region.first_page);
            }
            // Each summary level: bit j set <=> word j of the level below is nonzero, and no bit
            // past the words below; the last level is one word.
            if (region.summary_levels[order] != pages::summary_levels(words)) {
                return fail("a free bitmap has the wrong number of summary levels",
                            region.first_page);
            }
            const uint64_t* starts = region.summary_starts(order);
            const uint64_t* below = region.bits + region.word_offset[order];
            uint64_t below_words = words;
            uint64_t expected_start = region.summary_offset[order] + region.summary_levels[order];
            for (unsigned level = 0; level < region.summary_levels[order]; ++level) {
                if (starts[level] != expected_start) {
                    return fail("a summary level's start is wrong", region.first_page);
                }
                const uint64_t* summary = region.bits + starts[level];
                const uint64_t summary_words = pages::summary_level_words(below_words);
                expected_start += summary_words;
                for (uint64_t j = 0; j < summary_words * pages::kWordBits; ++j) {
                    const bool set =
                        (summary[j / pages::kWordBits] >> (j % pages::kWordBits) & 1u) != 0;
                    if (set != (j < below_words && below[j] != 0)) {
                        return fail("a summary bit disagrees with the bitmap word below it",
                                    region.first_page);
                    }
                }
                below = summary;
                below_words = summary_words;
            }
        }
        if (free_pages != region.free_pages || reserved != region.reserved_pages) {
            return fail("the region's free or reserved page count is wrong", region.first_page);
        }
        if (free_pages + allocated_pages + reserved != region.page_count) {
            return fail("free + allocated + reserved pages != managed pages", region.first_page);
        }
    }
    return check_cpu_lists_locked();
}

} // namespace bedrock
