// SPDX-License-Identifier: MIT
// The slow paths of the CPU page lists (pages/cpu_page_lists.h): refilling an empty list and
// draining a full one, kCpuListBatch blocks at a time, taking a CPU's lists back whole (its own,
// or another's while that CPU may run its fast paths), and their part of check(). The fast paths
// are in page_frame_allocator.cpp.
//
// Everything here runs under the allocator's lock (lock order: interrupts masked -> the
// allocator's lock; nothing here waits for anything else). Refill and drain-and-push run with
// interrupts masked on the CPU whose lists they change (their caller's), so they change them
// with plain stores; drain_cpu_locked() marks each list it takes (kListTaken), so the owner's
// fast paths leave it alone meanwhile.
#include "pages/cpu_page_lists.h"

#include "pages/region.h"

namespace bedrock {

using pages::claim_page_state;
using pages::CpuPageList;
using pages::list_count;
using pages::page_state;
using pages::pages_of;
using pages::PageState;
using pages::set_list_count;
using pages::set_page_state;
using pages::state_byte;

PhysAddr PageFrameAllocator::refill_and_take(unsigned cpu, unsigned order) {
    LockGuard guard(m_lock);
    Region& region = *m_cpu.region;
    CpuPageList& list = m_cpu.lists[cpu].order[order];
    BEDROCK_DEBUG_ASSERT(list_count(list) == 0);
    // kCpuListBatch blocks split off the region's smallest free blocks (the lowest of their
    // order), each marked allocated (so it never merges) and Cached; the caller gets the last.
    const uint32_t usable_orders = ~((1u << order) - 1);
    uint32_t count = 0;
    while (count < kCpuListBatch && (region.nonempty_orders & usable_orders) != 0) {
        const auto found =
            static_cast<unsigned>(__builtin_ctz(region.nonempty_orders & usable_orders));
        const uint64_t page = region.lowest_free(found);
        region.take_split(page, found, order);
        region.set_allocated(page, order, true);
        list.pages[count++] = static_cast<uint32_t>(page - m_cpu.first_page);
        set_page_state(m_cpu.states, page - m_cpu.first_page, state_byte(PageState::Cached, order));
    }
    if (count != 0) {
        const uint32_t index = list.pages[count - 1];
        set_list_count(list, count - 1);
        set_page_state(m_cpu.states, index, state_byte(PageState::Allocated, order));
        return (m_cpu.first_page + index) << kPageShift;
    }
    // The region has no block this large: another region's, as allocate_locked() finds it (freed
    // under the lock, it never comes to a list), then the same after taking back CPU page lists.
    return attempt_taking_lists_locked(kNoLimit,
                                       [this, order] { return allocate_locked(order, kNoLimit); });
}

void PageFrameAllocator::give_back_locked(uint32_t index, unsigned order) {
    BEDROCK_DEBUG_ASSERT(pages::page_state(m_cpu.states, index) ==
                         state_byte(PageState::Cached, order));
    set_page_state(m_cpu.states, index, state_byte(PageState::None, 0));
    RunBlocks block(m_cpu.first_page + index);
    block.add(block.first, order);
    note_unreported(m_unreported_pages, pages_of(order));
    m_cpu.region->free_run(block, m_unreported_pages);
}

void PageFrameAllocator::drain_batch_and_push(unsigned cpu, unsigned order, uint32_t index) {
    LockGuard guard(m_lock);
    CpuPageList& list = m_cpu.lists[cpu].order[order];
    uint32_t count = list_count(list);
    // Full, unless another CPU took the list back since the fast path looked: then it has room.
    if (count == kCpuListBlocks) {
        // The oldest kCpuListBatch go back; the rest move down.
        for (uint32_t i = 0; i < kCpuListBatch; ++i) {
            give_back_locked(list.pages[i], order);
        }
        for (uint32_t i = kCpuListBatch; i < count; ++i) {
            list.pages[i - kCpuListBatch] = list.pages[i];
        }
        count -= kCpuListBatch;
    }
    // `index` goes on top (the fast path claimed it: its state is Cached already).
    BEDROCK_DEBUG_ASSERT(pages::page_state(m_cpu.states, index) ==
                         state_byte(PageState::Cached, order));
    list.pages[count] = index;
    set_list_count(list, count + 1);
}

bool PageFrameAllocator::drain_cpu_locked(unsigned cpu) {
    // Any listed block may be what keeps a request from being served: itself (a CPU-list
    // order), the pages the free blocks lack, or the gap that keeps its free neighbours from
    // merging into a block or run large enough. A CPU's lists hold at most kCpuListOrders *
    // kCpuListBlocks blocks, each given back with its merges.
    if (cpu >= platform::kMaxCpus) {
        return false;
    }
    bool drained = false;
    for (unsigned order = 0; order < kCpuListOrders; ++order) {
        CpuPageList& list = m_cpu.lists[cpu].order[order];
        if (list_count(list) == 0) {
            continue; // a block the owner pushes meanwhile stays there: it was not here yet
        }
        // From the taken mark on, the owner's commits fail (it then waits for the lock), and
        // the entries below the count are ours; the release store of 0 gives the list back.
        const uint32_t count = __atomic_fetch_or(&list.count, pages::kListTaken, __ATOMIC_ACQ_REL);
        BEDROCK_DEBUG_ASSERT(count <= kCpuListBlocks);
        for (uint32_t i = 0; i < count; ++i) {
            give_back_locked(list.pages[i], order);
        }
        __atomic_store_n(&list.count, 0u, __ATOMIC_RELEASE);
        drained = drained || count != 0;
    }
    return drained;
}

bool PageFrameAllocator::claim_cpu_state(uint64_t page) {
    const uint64_t index = page - m_cpu.first_page;
    if (index >= m_cpu.page_count) {
        return true;
    }
    // Only Allocated -> Cached happens without the lock (free_to_cpu_list()); None stays None.
    const uint8_t state = page_state(m_cpu.states, index);
    if (state == state_byte(PageState::None, 0)) {
        return true;
    }
    return (state & state_byte(PageState::Cached, 0)) == 0 &&
           claim_page_state(m_cpu.states, index, state, state_byte(PageState::None, 0));
}

PageFrameCheck PageFrameAllocator::check_cpu_lists_locked() const {
    if (m_cpu.lists == nullptr) {
        return PageFrameCheck{};
    }
    const auto fail = [](const char* failure, uint64_t page) {
        return PageFrameCheck{false, failure, page << kPageShift};
    };
    const Region& region = *m_cpu.region;
    // Each listed block: a block of the list's order in the region, allocated in the bitmaps,
    // no part of a run, untagged, and Cached; then every Cached byte must have been counted.
    uint64_t listed = 0;
    for (unsigned cpu = 0; cpu < platform::kMaxCpus; ++cpu) {
        for (unsigned order = 0; order < kCpuListOrders; ++order) {
            const CpuPageList& list = m_cpu.lists[cpu].order[order];
            if ((__atomic_load_n(&list.count, __ATOMIC_RELAXED) & pages::kListTaken) != 0) {
                return fail("a CPU page list is left marked taken", region.first_page);
            }
            if (list_count(list) > kCpuListBlocks) {
                return fail("a CPU page list holds more than its bound", region.first_page);
            }
            for (uint32_t i = 0; i < list_count(list); ++i) {
                const uint64_t page = region.first_page + list.pages[i];
                if (!region.holds(page, order) || page % pages_of(order) != 0) {
                    return fail("a CPU page list holds a block outside its region", page);
                }
                if (pages::page_state(m_cpu.states, page - region.first_page) !=
                    state_byte(PageState::Cached, order)) {
                    return fail("a block on a CPU page list is not marked Cached", page);
                }
                if (!region.is_allocated(page, order) || region.run_continues_after(page, order) ||
                    region.continues_a_run(page)) {
                    return fail("a block on a CPU page list is not a whole block of its order",
                                page);
                }
                if (!region.tags_clear(page, pages_of(order))) {
                    return fail("a page on a CPU page list has a tag other than 0", page);
                }
                ++listed;
            }
        }
    }
    uint64_t cached = 0;
    for (uint64_t index = 0; index < region.page_count; ++index) {
        const uint8_t state = pages::page_state(m_cpu.states, index);
        const auto order = static_cast<unsigned>(state & 0xf);
        const uint64_t page = region.first_page + index;
        if (state == state_byte(PageState::None, 0)) {
            continue;
        }
        if (order >= kCpuListOrders || !region.holds(page, order) ||
            !region.is_allocated(page, order) || region.run_continues_after(page, order) ||
            region.continues_a_run(page)) {
            return fail("a page state names no whole allocated block of its order", page);
        }
        if (state == state_byte(PageState::Cached, order)) {
            ++cached;
        } else if (state != state_byte(PageState::Allocated, order)) {
            return fail("a page state is not None, Allocated or Cached", page);
        }
    }
    if (cached != listed) {
        return fail("a block marked Cached is on no CPU page list, or on two", region.first_page);
    }
    return PageFrameCheck{};
}

} // namespace bedrock
