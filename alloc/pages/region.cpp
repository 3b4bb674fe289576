// SPDX-License-Identifier: MIT
// The out-of-line part of Region (pages/region.h): taking and giving free blocks (their bits and
// summaries), finding the lowest free block of an order, splitting and merging, finding and
// recording runs, and the block lookups that misuse detection needs.
// Invariants, words and diagrams are in region.h.
#include "pages/region.h"

namespace bedrock {

using pages::for_each_aligned_block;
using pages::kPageEnd;
using pages::kWordBits;
using pages::kWordOrder;
using pages::pages_of;

void PageFrameAllocator::Region::give(uint64_t page, unsigned order) {
    BEDROCK_DEBUG_ASSERT(holds(page, order) && page % pages_of(order) == 0);
    BEDROCK_DEBUG_ASSERT(!is_free(page, order));
    // Up from the free bit, while the word it joins was empty (its summary bit clear).
    uint64_t bit = bit_index(page, order);
    uint64_t* word = &bits[word_offset[order] + bit / kWordBits];
    bool was_empty = *word == 0;
    *word |= uint64_t{1} << (bit % kWordBits);
    const uint64_t* starts = summary_starts(order);
    const unsigned levels = summary_levels[order];
    for (unsigned level = 0; was_empty && level < levels; ++level) {
        bit /= kWordBits;
        word = &bits[starts[level] + bit / kWordBits];
        was_empty = *word == 0;
        *word |= uint64_t{1} << (bit % kWordBits);
    }
    ++free_count[order];
    nonempty_orders |= 1u << order;
    free_pages += pages_of(order);
}

void PageFrameAllocator::Region::count_out(unsigned order, uint64_t bit, uint64_t word) {
    BEDROCK_DEBUG_ASSERT(word == bits[word_offset[order] + bit / kWordBits] &&
                         (word & uint64_t{1} << (bit % kWordBits)) == 0);
    // Up from the free bit, while the word it left became empty (its summary bit then clears).
    if (word == 0) {
        const uint64_t* starts = summary_starts(order);
        const unsigned levels = summary_levels[order];
        for (unsigned level = 0; level < levels; ++level) {
            bit /= kWordBits;
            uint64_t& summary = bits[starts[level] + bit / kWordBits];
            BEDROCK_DEBUG_ASSERT((summary & uint64_t{1} << (bit % kWordBits)) != 0);
            summary &= ~(uint64_t{1} << (bit % kWordBits));
            if (summary != 0) {
                break;
            }
        }
    }
    if (--free_count[order] == 0) {
        nonempty_orders &= ~(1u << order);
    }
}

void PageFrameAllocator::Region::give_merged(Block block, uint32_t& unreported) {
    give(block.page, block.order);
    if (block.order >= kUnusedOrder && unreported > kRetainedUnusedPages) {
        platform::pages_unused(platform::phys_to_virt(block.page << kPageShift),
                               pages_of(block.order) * kPageSize);
        note_reported_or_taken(unreported, pages_of(block.order));
    }
}

void PageFrameAllocator::Region::tell_unused_blocks() const {
    for (unsigned order = kUnusedOrder; order <= kMaxOrder; ++order) {
        if (free_count[order] == 0) {
            continue;
        }
        // The free bitmaps are one after another by order, the allocated bitmaps after them.
        const uint64_t end = order < kMaxOrder ? word_offset[order + 1] : allocated_offset;
        for (uint64_t index = word_offset[order]; index < end; ++index) {
            for (uint64_t word = bits[index]; word != 0; word &= word - 1) {
                const uint64_t bit =
                    (index - word_offset[order]) * kWordBits + lowest_set_bit(word);
                const uint64_t page = ((first_page >> order) + bit) << order;
                BEDROCK_DEBUG_ASSERT(holds(page, order) && is_free(page, order));
                platform::pages_unused(platform::phys_to_virt(page << kPageShift),
                                       pages_of(order) * kPageSize);
            }
        }
    }
}

void PageFrameAllocator::Region::take_split(uint64_t page, unsigned order, unsigned wanted) {
    take(page, order);
    while (order > wanted) {
        --order;
        give(page + pages_of(order), order);
    }
}

bool PageFrameAllocator::Region::is_free_range(uint64_t first, uint64_t end) const {
    if (first < first_page || end > end_page()) {
        return false;
    }
    for (uint64_t page = first; page < end;) {
        const int order = block_containing(page, false);
        if (order < 0) {
            return false;
        }
        page = align_down(page, pages_of(static_cast<unsigned>(order))) +
               pages_of(static_cast<unsigned>(order));
    }
    return true;
}

void PageFrameAllocator::Region::take_range(uint64_t first, uint64_t end) {
    for (uint64_t page = first; page < end;) {
        const int found = block_containing(page, false);
        BEDROCK_ASSERT(found >= 0);
        const auto order = static_cast<unsigned>(found);
        const uint64_t head = align_down(page, pages_of(order));
        const uint64_t block_end = head + pages_of(order);
        const uint64_t taken_end = block_end < end ? block_end : end;
        take(head, order);
        const auto give_back = [&](uint64_t block, unsigned k, bool) { give(block, k); };
        for_each_aligned_block(head, page, give_back);
        for_each_aligned_block(taken_end, block_end, give_back);
        page = taken_end;
    }
}

uint64_t PageFrameAllocator::Region::free_pages_before(uint64_t page, uint64_t wanted) const {
    uint64_t at = page;
    while (at > first_page && page - at < wanted) {
        const int order = block_containing(at - 1, false);
        if (order < 0) {
            break;
        }
        at = align_down(at - 1, pages_of(static_cast<unsigned>(order)));
    }
    return page - at;
}

uint64_t PageFrameAllocator::Region::free_pages_from(uint64_t page, uint64_t wanted) const {
    uint64_t at = page;
    while (at < end_page() && at - page < wanted) {
        const int order = block_containing(at, false);
        if (order < 0) {
            break;
        }
        at = align_down(at, pages_of(static_cast<unsigned>(order))) +
             pages_of(static_cast<unsigned>(order));
    }
    return at - page;
}

uint64_t PageFrameAllocator::Region::find_long_run(uint64_t count, uint64_t alignment,
                                                   uint64_t end_limit) const {
    BEDROCK_DEBUG_ASSERT(count > pages_of(kMaxOrder) && is_power_of_two(alignment) &&
                         alignment <= pages_of(kMaxOrder));
    constexpr uint64_t kMaxBlock = pages_of(kMaxOrder);
    const uint64_t first_boundary = align_up(first_page, kMaxBlock);
    for (uint64_t boundary = first_boundary; boundary < end_page(); boundary += kMaxBlock) {
        if (boundary > first_boundary && is_free(boundary - kMaxBlock, kMaxOrder)) {
            continue; // inside a stretch: tried from its start
        }
        uint64_t stretch_end = boundary;
        while (stretch_end + kMaxBlock <= end_page() && is_free(stretch_end, kMaxOrder)) {
            stretch_end += kMaxBlock;
        }
        const uint64_t body = stretch_end - boundary;
        const uint64_t around = count > body ? count - body : 0; // for the head and the tail
        const uint64_t tail = around == 0 ? 0 : free_pages_from(stretch_end, around);
        const uint64_t head = around > tail ? align_up(around - tail, alignment) : 0;
        if (head != 0 &&
            (boundary - first_page < head || free_pages_before(boundary, head) < head)) {
            continue;
        }
        const uint64_t start = boundary - head;
        if (start + count <= end_limit) {
            return start;
        }
        // Ending past the limit: the lowest start that ends at it, if the free pages before the
        // boundary reach down there (every later boundary's run starts, and so ends, higher).
        if (end_limit < count) {
            return kPageEnd;
        }
        const uint64_t low = align_down(end_limit - count, alignment);
        const uint64_t longer_head = boundary - low;
        return low < start && low >= first_page &&
                       free_pages_before(boundary, longer_head) >= longer_head
                   ? low
                   : kPageEnd;
    }
    return kPageEnd;
}

uint64_t PageFrameAllocator::Region::find_lowest_run(uint64_t count, uint64_t alignment,
                                                     uint64_t end_limit) const {
    BEDROCK_DEBUG_ASSERT(count != 0 && is_power_of_two(alignment));
    const uint64_t end = end_limit < end_page() ? end_limit : end_page();
    return count <= kWordBits ? find_run_in_windows(count, alignment, end)
                              : find_run_across_windows(count, alignment, end);
}

uint64_t PageFrameAllocator::Region::find_run_in_windows(uint64_t count, uint64_t alignment,
                                                         uint64_t end) const {
    // Aligned starts in a window (a multiple of 64): every alignment-th page up to 64, else its
    // first page when the window is aligned (only such windows are visited then).
    const uint64_t aligned_starts = every_nth_bit(alignment);
    const uint64_t step = alignment > kWordBits ? alignment : kWordBits;
    uint64_t window = align_down(align_up(first_page, alignment), kWordBits);
    uint64_t low = free_window(window).mask;
    for (; window + count <= end; window = align_up(window + kWordBits, step)) {
        const uint64_t next = window + kWordBits;
        const uint64_t high = free_window(next).mask;
        const uint64_t starts =
            starts_of_set_runs(low, high, static_cast<unsigned>(count)) & aligned_starts;
        if (starts != 0) {
            const uint64_t start = window + lowest_set_bit(starts);
            return start + count <= end ? start : kPageEnd;
        }
        low = step == kWordBits ? high : free_window(align_up(next, step)).mask;
    }
    return kPageEnd;
}

uint64_t PageFrameAllocator::Region::find_run_across_windows(uint64_t count, uint64_t alignment,
                                                             uint64_t end) const {
    // The candidate `start`, with pages [start, scanned) known free. A run of more than 64
    // pages that starts in a window holds that window's last page, so after a page that is not
    // free the next candidate is the first aligned page of the free pages that end its window.
    uint64_t start = align_up(first_page, alignment);
    uint64_t scanned = start;
    while (start + count <= end) {
        if (scanned - start >= count) {
            return start;
        }
        const uint64_t window = align_down(scanned, kWordBits);
        const FreeWindow free = free_window(window);
        const uint64_t not_free = ~free.mask & ~low_bits(static_cast<unsigned>(scanned - window));
        if (not_free == 0) {
            scanned = free.end;
            continue;
        }
        if (window + lowest_set_bit(not_free) - start >= count) {
            return start;
        }
        const uint64_t top_free = window + floor_log2(not_free) + 1;
        start = align_up(top_free, alignment);
        scanned = start > window + kWordBits ? start : window + kWordBits;
    }
    return kPageEnd;
}

uint64_t PageFrameAllocator::Region::free_bits_from(uint64_t window, unsigned order) const {
    BEDROCK_DEBUG_ASSERT(order <= kWordOrder && window % kWordBits == 0);
    // The free bitmaps are one after another by order, the allocated bitmaps after them.
    const uint64_t* words = bits + word_offset[order];
    const uint64_t word_count = word_offset[order + 1] - word_offset[order];
    const uint64_t first_block = first_page >> order;
    const uint64_t block = window >> order;
    if (block < first_block) {
        const uint64_t below = first_block - block; // bits before the bitmap's first
        return below < kWordBits ? words[0] << below : 0;
    }
    const uint64_t index = (block - first_block) / kWordBits;
    const uint64_t shift = (block - first_block) % kWordBits;
    const uint64_t low = index < word_count ? words[index] >> shift : 0;
    const uint64_t high =
        shift != 0 && index + 1 < word_count ? words[index + 1] << (kWordBits - shift) : 0;
    return low | high;
}

PageFrameAllocator::Region::FreeWindow
PageFrameAllocator::Region::free_window(uint64_t window) const {
    // Top down: the order-k bits of the window's blocks, each doubled into the bits of the
    // order below, ORed with those of order k - 1, and so on down to a mask of pages. Unrolled,
    // each order's block count is a constant: double_each_bit() keeps only the halving steps it
    // needs.
    const auto page_mask = [](auto bits_of) {
        uint64_t mask = bits_of(kWordOrder) & 1;
        // gcc 12 ignores the annotation in a generic lambda, with a warning (an error under an
        // adopter's -Werror): clang's builds only.
#if defined(__clang__)
#pragma GCC unroll 6
#endif
        for (unsigned order = kWordOrder; order-- > 0;) {
            const unsigned blocks = 1u << (kWordOrder - order); // of this order in the window
            mask = double_each_bit(mask, blocks / 2) | (bits_of(order) & low_bits(blocks));
        }
        return mask;
    };
    // A window inside the region has a bit for every block: in the word of the first block, and
    // the next word for the bits past its end. That next word is in the metadata even where
    // the bitmap ends before it (a larger order's bitmap follows), and is shifted out when it
    // is not needed.
    const auto bits_inside = [this, window](unsigned order) {
        const uint64_t bit = (window >> order) - (first_page >> order);
        const uint64_t shift = bit % kWordBits;
        const uint64_t* word = bits + word_offset[order] + bit / kWordBits;
        return word[0] >> shift | (word[1] << 1) << (kWordBits - 1 - shift);
    };
    const uint64_t mask =
        window >= first_page && window + kWordBits <= end_page()
            ? page_mask(bits_inside)
            : page_mask([this, window](unsigned order) { return free_bits_from(window, order); });
    if (mask != 0) {
        return {mask, window + kWordBits};
    }
    // Only the larger orders that have a free block.
    for (uint32_t orders = nonempty_orders & ~uint32_t{0} << (kWordOrder + 1); orders != 0;
         orders &= orders - 1) {
        const unsigned order = lowest_set_bit(orders);
        const uint64_t head = align_down(window, pages_of(order));
        if (holds(head, order) && is_free(head, order)) {
            return {~uint64_t{0}, head + pages_of(order)};
        }
    }
    return {0, window + kWordBits};
}

int PageFrameAllocator::Region::block_containing(uint64_t page, bool allocated) const {
    for (unsigned order = 0; order < kOrderCount; ++order) {
        const uint64_t head = align_down(page, pages_of(order));
        if (holds(head, order) && (allocated ? is_allocated(head, order) : is_free(head, order))) {
            return static_cast<int>(order);
        }
    }
    return -1;
}

bool PageFrameAllocator::Region::starts_allocated_block(uint64_t page) const {
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

PageFrameAllocator::Misuse PageFrameAllocator::Region::block_misuse(uint64_t page,
                                                                    unsigned order) const {
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

void PageFrameAllocator::Region::record_run(uint64_t page, uint64_t count) {
    for_each_aligned_block(page, page + count, [&](uint64_t block, unsigned order, bool last) {
        set_allocated(block, order, true);
        set_run_continues_after(block, order, !last);
    });
}

void PageFrameAllocator::Region::forget_run(uint64_t page, uint64_t count) {
    for_each_aligned_block(page, page + count, [&](uint64_t block, unsigned order, bool) {
        set_allocated(block, order, false);
        set_run_continues_after(block, order, false);
    });
}

void PageFrameAllocator::Region::free_run(const RunBlocks& run, uint32_t& unreported) {
    // Maximum blocks cannot merge: they are given at once. The others are given top-down, each
    // grown first: by its free buddies outside the run (taken), and by the run's block just
    // below it when that has become its buddy (not given yet, so no block of the run is given
    // and then taken again by a merge). A buddy that holds pages of the run below but is not
    // its next block stops the growth: those pages are given later, and merge then.
    for (uint64_t page = run.maximum_first; page < run.maximum_end; page += pages_of(kMaxOrder)) {
        clear_run_block({page, kMaxOrder});
        give_merged({page, kMaxOrder}, unreported);
    }
    uint64_t taken = 0; // pages of the free buddies taken
    for (unsigned i = run.edge_count; i-- > 0;) {
        Block block = run.edges[i];
        clear_run_block(block);
        for (uint64_t size = pages_of(block.order); block.order < kMaxOrder; size += size) {
            const uint64_t buddy = block.page ^ size;
            if (buddy < block.page && buddy >= run.first) {
                // The run's block below ends at this block: the buddy if of this order.
                BEDROCK_DEBUG_ASSERT(i > 0 &&
                                     run.edges[i - 1].page + pages_of(run.edges[i - 1].order) ==
                                         block.page);
                if (i == 0 || run.edges[i - 1].order != block.order) {
                    break;
                }
                clear_run_block(run.edges[--i]);
            } else {
                // holds() && is_free() from the bit alone: a buddy outside the region has its
                // word index past the order's words (word_offset[order + 1] ends them; below the
                // region the index wraps around), one only partly inside a bit never set.
                const uint64_t bit = bit_index(buddy, block.order);
                const uint64_t index = word_offset[block.order] + bit / kWordBits;
                if (index >= word_offset[block.order + 1]) {
                    break;
                }
                // The word without the buddy's bit: unchanged when the buddy is not free.
                const uint64_t word = bits[index] & ~(uint64_t{1} << (bit % kWordBits));
                if (word == bits[index]) {
                    break;
                }
                bits[index] = word;
                count_out(block.order, bit, word);
                taken += size;
            }
            block = {block.page & ~size, block.order + 1};
        }
        give_merged(block, unreported);
    }
    free_pages -= taken;
}

uint64_t PageFrameAllocator::Region::first_tagged_page(uint64_t page, uint64_t count) const {
    const uint16_t* tag = tags + (page - first_page);
    // All clear is the rule: OR them together (a loop the compiler vectorises), then search.
    unsigned any = 0;
    for (uint64_t i = 0; i < count; ++i) {
        any |= tag[i];
    }
    uint64_t i = 0;
    while (any != 0 && tag[i] == 0) {
        ++i;
    }
    return any != 0 ? i : count;
}

bool PageFrameAllocator::Region::tags_clear(uint64_t page, uint64_t count) const {
    if (first_tagged_page(page, count) != count) {
        return false;
    }
    for (uint64_t span = page >> kTagSpanOrder; span <= (page + count - 1) >> kTagSpanOrder;
         ++span) {
        if (*span_tag_of(span << kTagSpanOrder) != 0) {
            return false;
        }
    }
    return true;
}

} // namespace bedrock
