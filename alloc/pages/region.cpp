// SPDX-License-Identifier: MIT
// The out-of-line part of Region (pages/region.h): taking and giving free blocks, splitting and
// merging, finding and recording runs, and the block lookups that misuse detection needs.
// Invariants, words and diagrams are in region.h.
#include "pages/region.h"

namespace bedrock {

using pages::for_each_aligned_block;
using pages::FreeNode;
using pages::kPageEnd;
using pages::node;
using pages::pages_of;

void PageFrameAllocator::Region::push_free(uint64_t page, unsigned order) {
    FreeNode& n = node(page);
    n.next = free_list[order];
    n.prev = kNoPage;
    if (free_list[order] != kNoPage) {
        node(free_list[order]).prev = page;
    }
    free_list[order] = page;
    ++free_count[order];
}

void PageFrameAllocator::Region::give(uint64_t page, unsigned order) {
    BEDROCK_DEBUG_ASSERT(holds(page, order) && page % pages_of(order) == 0);
    BEDROCK_DEBUG_ASSERT(!is_free(page, order));
    word(false, page, order) |= mask(page, order);
    push_free(page, order);
    nonempty_orders |= 1u << order;
    free_pages += pages_of(order);
}

uint64_t PageFrameAllocator::Region::next_free(uint64_t page, unsigned order) {
    const uint64_t next = node(page).next;
    if (next == kNoPage || is_free_block(next, order)) [[likely]] {
        return next;
    }
    *corrupt_link = page;
    rebuild_free_list(order);
    return free_list[order];
}

void PageFrameAllocator::Region::rebuild_free_list(unsigned order) {
    free_list[order] = kNoPage;
    free_count[order] = 0;
    const uint64_t words = pages::bitmap_words(first_page, page_count, order);
    for (uint64_t w = words; w-- > 0;) {
        for (uint64_t bits_left = bits[word_offset[order] + w]; bits_left != 0;
             bits_left &= bits_left - 1) {
            const uint64_t bit =
                w * pages::kWordBits + static_cast<uint64_t>(__builtin_ctzll(bits_left));
            const uint64_t page = ((first_page >> order) + bit) << order;
            push_free(page, order);
        }
    }
    nonempty_orders =
        free_count[order] != 0 ? nonempty_orders | 1u << order : nonempty_orders & ~(1u << order);
}

void PageFrameAllocator::Region::take(uint64_t page, unsigned order) {
    BEDROCK_DEBUG_ASSERT(is_free(page, order));
    // Each neighbour is looked at only once its link names a free block of this order here, and
    // must link back: otherwise the list is rebuilt from the bitmap (and then it is sound).
    FreeNode& n = node(page);
    FreeNode* prev = n.prev != kNoPage && is_free_block(n.prev, order) ? &node(n.prev) : nullptr;
    FreeNode* next = n.next != kNoPage && is_free_block(n.next, order) ? &node(n.next) : nullptr;
    const bool sound =
        (n.prev == kNoPage ? free_list[order] == page : prev != nullptr && prev->next == page) &&
        (n.next == kNoPage || (next != nullptr && next->prev == page));
    if (!sound) [[unlikely]] {
        *corrupt_link = page;
        rebuild_free_list(order);
        take(page, order);
        return;
    }
    word(false, page, order) &= ~mask(page, order);
    if (prev != nullptr) {
        prev->next = n.next;
    } else {
        free_list[order] = n.next;
    }
    if (next != nullptr) {
        next->prev = n.prev;
    }
    if (--free_count[order] == 0) {
        nonempty_orders &= ~(1u << order);
    }
    free_pages -= pages_of(order);
}

PageFrameAllocator::Region::Block
PageFrameAllocator::Region::merge_with_free_buddies(Block block, uint64_t run_first) {
    while (block.order < kMaxOrder) {
        const uint64_t buddy = block.page ^ pages_of(block.order);
        if (buddy < block.page && buddy >= run_first) {
            break; // pages of the run being freed, given after this block
        }
        if (!holds(buddy, block.order) || !is_free(buddy, block.order)) {
            break;
        }
        take(buddy, block.order);
        block = {block.page < buddy ? block.page : buddy, block.order + 1};
    }
    return block;
}

void PageFrameAllocator::Region::give_merged(Block block) {
    give(block.page, block.order);
    if (block.order >= kUnusedOrder) {
        // All but the first page, which holds the block's free-list links.
        platform::pages_unused(platform::phys_to_virt((block.page + 1) << kPageShift),
                               (pages_of(block.order) - 1) * kPageSize);
    }
}

void PageFrameAllocator::Region::give_merging(uint64_t page, unsigned order) {
    give_merged(merge_with_free_buddies({page, order}, page));
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

uint64_t PageFrameAllocator::Region::find_long_run(uint64_t count, uint64_t end_limit) const {
    BEDROCK_DEBUG_ASSERT(count > pages_of(kMaxOrder));
    constexpr uint64_t kMaxBlock = pages_of(kMaxOrder);
    const uint64_t whole_blocks = count / kMaxBlock;
    // One pass over the maximum-block slots, counting the free ones in a row; a stretch of
    // `whole_blocks` of them starts a run when the tail after them is free too.
    uint64_t in_a_row = 0;
    for (uint64_t block = align_up(first_page, kMaxBlock); block + kMaxBlock <= end_page();
         block += kMaxBlock) {
        in_a_row = is_free(block, kMaxOrder) ? in_a_row + 1 : 0;
        if (in_a_row < whole_blocks) {
            continue;
        }
        const uint64_t start = block + kMaxBlock - whole_blocks * kMaxBlock;
        if (start + count > end_limit) {
            return kPageEnd; // every later start ends higher still
        }
        if (is_free_range(block + kMaxBlock, start + count)) {
            return start;
        }
    }
    return kPageEnd;
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

void PageFrameAllocator::Region::free_run(uint64_t page, uint64_t count) {
    BEDROCK_DEBUG_ASSERT(tags_clear(page, count));
    // Maximum blocks cannot merge: they are given at once. The others (at most two per order:
    // the rising blocks before the maximum ones and the falling blocks after) are kept and
    // given top-down, each merged first with the block above it when that is its buddy, so that
    // no block of the run is given and then taken again by a merge.
    Block edges[2 * kOrderCount];
    unsigned edge_count = 0;
    for_each_aligned_block(page, page + count, [&](uint64_t block, unsigned order, bool) {
        set_allocated(block, order, false);
        set_run_continues_after(block, order, false);
        if (order == kMaxOrder) {
            give_merged({block, order});
        } else {
            BEDROCK_DEBUG_ASSERT(edge_count < 2 * kOrderCount);
            edges[edge_count++] = {block, order};
        }
    });
    Block pending{kNoPage, 0};
    for (unsigned i = edge_count; i-- > 0;) {
        Block block = edges[i];
        if (pending.page != kNoPage) {
            const bool buddies = pending.order == block.order &&
                                 block.page % pages_of(block.order + 1) == 0 &&
                                 pending.page == block.page + pages_of(block.order);
            if (buddies) {
                ++block.order;
            } else {
                give_merged(pending);
            }
        }
        pending = merge_with_free_buddies(block, page);
    }
    if (pending.page != kNoPage) {
        give_merged(pending);
    }
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
