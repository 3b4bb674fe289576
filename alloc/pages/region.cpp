// The out-of-line part of Region (pages/region.h): the free lists, splitting and merging, and
// the block lookups that misuse detection needs. Invariants and diagrams are in region.h.
#include "pages/region.h"

namespace bedrock {

using pages::for_each_aligned_block;
using pages::FreeNode;
using pages::node;
using pages::pages_of;

void PageFrameAllocator::Region::push_free(uint64_t page, unsigned order) {
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

void PageFrameAllocator::Region::remove_free(uint64_t page, unsigned order) {
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

void PageFrameAllocator::Region::insert_coalescing(uint64_t page, unsigned order) {
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

void PageFrameAllocator::Region::split_to(uint64_t page, unsigned order, unsigned wanted) {
    remove_free(page, order);
    while (order > wanted) {
        --order;
        push_free(page + pages_of(order), order);
    }
}

int PageFrameAllocator::Region::block_containing(uint64_t page, bool allocated) const {
    for (unsigned order = 0; order < kOrderCount; ++order) {
        const uint64_t head = page & ~(pages_of(order) - 1);
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

void PageFrameAllocator::Region::mark_run(uint64_t page, uint64_t count) {
    for_each_aligned_block(page, page + count, [&](uint64_t block, unsigned order, bool last) {
        set_allocated(block, order, true);
        set_run_continues_after(block, order, !last);
    });
}

} // namespace bedrock
