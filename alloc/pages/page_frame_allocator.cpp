// SPDX-License-Identifier: MIT
// The buddy page frame allocator's routing: which region serves an allocation or a free, the
// CPU page lists' fast paths (their slow paths are pages/cpu_page_lists.cpp), the lock, and
// misuse reporting. The contract, metadata layout and invariants are in
// bedrock/page_frame_allocator.h; one region's buddy structure is pages/region.h, the metadata
// carving at init pages/metadata_layout.cpp, the invariant walk pages/page_frame_check.cpp.
//
// Lock: m_lock guards every region and is taken by every public function here but the CPU-list
// fast paths, which touch only the calling CPU's lists with interrupts masked, each committing
// with one compare-and-swap of the list's count (pages/cpu_page_lists.h: how a request that
// cannot be served takes back other CPUs' lists under the lock without waiting for them); it is
// a leaf lock (no platform hook but phys_to_virt, pages_unused and the CPU hooks is called while
// it is held, and nothing is waited for under it). Lock order: interrupts masked -> m_lock; the
// grow and reclaim hooks run with neither (they may take the heaps' locks). Misuse is
// decided under the lock and reported after it is unlocked: report_error never runs with the
// allocator locked. Words: allocate/free for the caller's side, take/give for the free blocks,
// split/merge for buddies (bedrock/page_frame_allocator.h).
#include "bedrock/page_frame_allocator.h"

#include "pages/cpu_page_lists.h"
#include "pages/region.h"

namespace bedrock {

using pages::end_page_below;
using pages::for_each_aligned_block;
using pages::kPageEnd;
using pages::pages_of;
using pages::PageState;
using pages::state_byte;

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
        // The lowest block of the smallest order that serves; when the region straddles the
        // limit, the lowest block of each order in turn until one has its lowest 2^order pages
        // below (no other block of that order can: they all start higher).
        unsigned found = lowest_set_bit(candidates);
        uint64_t page = region.lowest_free(found);
        if (region.end_page() > limit_page) {
            for (uint32_t orders = candidates; page + pages_of(order) > limit_page;) {
                orders &= orders - 1;
                if (orders == 0) {
                    break;
                }
                found = lowest_set_bit(orders);
                page = region.lowest_free(found);
            }
            if (page + pages_of(order) > limit_page) {
                continue;
            }
        }
        region.take_split(page, found, order);
        region.set_allocated(page, order, true);
        note_reserve_locked(region);
        note_reported_or_taken(m_unreported_pages, pages_of(order));
        return page << kPageShift;
    }
    return kNoPage;
}

PhysAddr PageFrameAllocator::allocate_or_drain(unsigned order, PhysAddr limit) {
    LockGuard guard(m_lock);
    return attempt_taking_lists_locked(
        limit, [this, order, limit] { return allocate_locked(order, limit); });
}

void PageFrameAllocator::note_reserve_locked(const Region& region) {
    const unsigned reserve = m_grow_reserve_order;
    if (reserve >= kOrderCount || (region.nonempty_orders >> reserve) != 0) [[likely]] {
        return;
    }
    for (size_t i = 0; i < m_region_count; ++i) {
        if ((m_regions[i].nonempty_orders >> reserve) != 0) {
            return;
        }
    }
    __atomic_store_n(&m_grow_wanted, uint8_t{1}, __ATOMIC_RELAXED);
}

template <class Retry>
PhysAddr PageFrameAllocator::grow_after(PhysAddr address, uint64_t pages, Retry retry) {
    if (address == kNoPage && pages != 0) {
        const ReclaimHook reclaim = __atomic_load_n(&m_reclaim_hook, __ATOMIC_ACQUIRE);
        if (reclaim != nullptr && reclaim(*this)) {
            address = retry();
        }
    }
    const GrowHook hook = __atomic_load_n(&m_grow_hook, __ATOMIC_ACQUIRE);
    if (hook == nullptr) {
        return address;
    }
    if (address != kNoPage) {
        if (__atomic_exchange_n(&m_grow_wanted, uint8_t{0}, __ATOMIC_RELAXED) != 0) {
            static_cast<void>(hook(*this, 2 * pages_of(m_grow_reserve_order), m_grow_context));
        }
        return address;
    }
    for (unsigned attempt = 0; pages != 0 && attempt < kGrowAttempts; ++attempt) {
        if (!hook(*this, pages, m_grow_context)) {
            break;
        }
        address = retry();
        if (address != kNoPage) {
            return address;
        }
    }
    return kNoPage;
}

// The fast path: the top of the calling CPU's list (the count committed with one compare-and-swap:
// another CPU may be taking the list back), one store to the block's state byte.
inline PhysAddr PageFrameAllocator::allocate_once(unsigned order) {
    if (order < kCpuListOrders && m_cpu.lists != nullptr) [[likely]] {
        const platform::InterruptState interrupts = platform::disable_interrupts();
        const unsigned cpu = platform::current_cpu();
        if (cpu < platform::kMaxCpus) [[likely]] {
            pages::CpuPageList& list = m_cpu.lists[cpu].order[order];
            const uint32_t count = pages::list_word(list);
            PhysAddr address;
            // Neither empty nor taken (a taken word is above every count), and still so.
            if (count - 1 < kCpuListBlocks && pages::commit_list_count(list, count, count - 1))
                [[likely]] {
                // The entry is no longer below the count: no other CPU reads it now.
                const uint32_t index = list.pages[count - 1];
                BEDROCK_DEBUG_ASSERT(pages::page_state(m_cpu.states, index) ==
                                     state_byte(PageState::Cached, order));
                pages::set_page_state(m_cpu.states, index, state_byte(PageState::Allocated, order));
                address = m_cpu.base + (uint64_t{index} << kPageShift);
            } else {
                address = refill_and_take(cpu, order);
            }
            platform::restore_interrupts(interrupts);
            return address;
        }
        platform::restore_interrupts(interrupts);
    }
    return allocate_or_drain(order, kNoLimit);
}

PhysAddr PageFrameAllocator::allocate(unsigned order) {
    const PhysAddr address = allocate_once(order);
    if (!needs_growth(address)) [[likely]] {
        return address;
    }
    return grow_after(address, order <= kMaxOrder ? 2 * pages_of(order) : 0,
                      [&] { return allocate_once(order); });
}

PhysAddr PageFrameAllocator::allocate_below(unsigned order, PhysAddr limit) {
    const PhysAddr address = allocate_or_drain(order, limit);
    if (!needs_growth(address)) {
        return address;
    }
    return grow_after(address, order <= kMaxOrder ? 2 * pages_of(order) : 0,
                      [&] { return allocate_or_drain(order, limit); });
}

PhysAddr PageFrameAllocator::allocate_run_locked(uint64_t count, uint64_t alignment,
                                                 PhysAddr limit) {
    const uint64_t limit_page = end_page_below(limit);
    // Highest region first, as for blocks.
    for (size_t i = m_region_count; i-- > 0;) {
        Region& region = m_regions[i];
        if (region.free_pages < count || region.first_page + count > limit_page) {
            continue;
        }
        const uint64_t page = count > pages_of(kMaxOrder) && alignment <= pages_of(kMaxOrder)
                                  ? region.find_long_run(count, alignment, limit_page)
                                  : region.find_lowest_run(count, alignment, limit_page);
        if (page != kPageEnd) {
            region.take_range(page, page + count);
            region.record_run(page, count);
            note_reserve_locked(region);
            note_reported_or_taken(m_unreported_pages, count);
            return page << kPageShift;
        }
    }
    return kNoPage;
}

PhysAddr PageFrameAllocator::allocate_pages(size_t count, uint64_t alignment, PhysAddr limit,
                                            RunSearch search) {
    const PhysAddr address = allocate_pages_once(count, alignment, limit, search);
    if (!needs_growth(address)) {
        return address;
    }
    // What an added range must hold (the grow hook's `pages`): the run itself where any free
    // pages in a row serve it; else twice the block the run is cut from (up to a maximum
    // block), or its maximum blocks plus one, or the alignment when that is larger. 0 (no
    // growth) for a request no memory can serve: invalid, or more than a quarter of the pages a
    // 64-bit physical address space holds (whose rounding up and doubling could wrap).
    const bool valid = count != 0 && count <= (~uint64_t{0} >> (kPageShift + 2)) &&
                       (alignment == 0 || is_power_of_two(alignment));
    const uint64_t alignment_pages = alignment > kPageSize ? alignment / kPageSize : 1;
    const bool any_pages_in_a_row =
        search == RunSearch::AnyFreePages && alignment_pages == 1 && count <= pages_of(kMaxOrder);
    const uint64_t run = !valid ? 0
                         : count > pages_of(kMaxOrder)
                             ? align_up(count, pages_of(kMaxOrder)) + pages_of(kMaxOrder)
                             : pages_of(ceil_log2(count));
    const uint64_t wanted = !valid ? 0
                            : any_pages_in_a_row
                                ? count
                                : 2 * (run > alignment_pages ? run : alignment_pages);
    return grow_after(address, wanted,
                      [&] { return allocate_pages_once(count, alignment, limit, search); });
}

PhysAddr PageFrameAllocator::allocate_pages_once(size_t count, uint64_t alignment, PhysAddr limit,
                                                 RunSearch search) {
    if (count == 0 || count > managed_pages() || (alignment != 0 && !is_power_of_two(alignment))) {
        return kNoPage;
    }
    const uint64_t alignment_pages = alignment > kPageSize ? alignment / kPageSize : 1;
    if (count > pages_of(kMaxOrder) || alignment_pages > pages_of(kMaxOrder)) {
        // No buddy block holds it: free pages in a row.
        LockGuard guard(m_lock);
        return attempt_taking_lists_locked(limit, [this, count, alignment_pages, limit] {
            return allocate_run_locked(count, alignment_pages, limit);
        });
    }
    const unsigned size_order = ceil_log2(count);
    const unsigned alignment_order = floor_log2(alignment_pages);
    const unsigned order = size_order > alignment_order ? size_order : alignment_order;
    if (pages_of(order) == count) {
        // A whole block: as allocate(), CPU page lists included. Unless it must be aligned as a
        // block, free pages in a row serve it too when no free block does.
        const PhysAddr address =
            limit == kNoLimit ? allocate_once(order) : allocate_or_drain(order, limit);
        if (address != kNoPage || alignment_pages == count || search == RunSearch::BuddyBlock) {
            return address;
        }
        LockGuard guard(m_lock);
        return allocate_run_locked(count, alignment_pages, limit);
    }
    LockGuard guard(m_lock);
    const PhysAddr address = attempt_taking_lists_locked(
        limit, [this, order, limit] { return allocate_locked(order, limit); });
    if (address == kNoPage) {
        // No free block holds it, with every CPU's lists taken back: any free pages in a row.
        return search == RunSearch::AnyFreePages
                   ? allocate_run_locked(count, alignment_pages, limit)
                   : kNoPage;
    }
    // Keep exactly `count` pages (recorded as their aligned blocks); the tail is given back. The
    // tail's blocks do not merge: each one's buddy holds kept pages.
    const uint64_t page = address >> kPageShift;
    Region& region = *region_of(page, count);
    region.set_allocated(page, order, false);
    region.record_run(page, count);
    for_each_aligned_block(page + count, page + pages_of(order),
                           [&](uint64_t block, unsigned k, bool) { region.give(block, k); });
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
                                                                  Region*& region,
                                                                  RunBlocks& blocks) const {
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
    if (on_cpu_list(page)) {
        return {ErrorKind::DoubleFree, "the block is free (on a CPU page list)"};
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
    if (!region->is_allocated(page, order)) {
        return region->block_misuse(page, order);
    }
    if (region->run_continues_after(page, order) || region->continues_a_run(page)) {
        return {ErrorKind::FreeWrongOrder,
                "the block is part of a run: free the whole run with free_pages()"};
    }
    blocks.add(page, order);
    return {};
}

PageFrameAllocator::Misuse PageFrameAllocator::free_pages_misuse_locked(PhysAddr address,
                                                                        uint64_t count,
                                                                        Region*& region,
                                                                        RunBlocks& blocks) const {
    if (count == 0) {
        return {ErrorKind::FreeWrongOrder, "a run of zero pages"};
    }
    if (address % kPageSize != 0) {
        return {ErrorKind::FreeMisaligned, "the address is not page-aligned"};
    }
    const uint64_t page = address >> kPageShift;
    region = region_of(page, count);
    if (region == nullptr) {
        // A run that starts in managed memory but would end past its region was freed with a
        // count larger than any run there: a wrong count, whatever the pages after it are.
        if (region_of(page, 1) != nullptr) {
            return {ErrorKind::FreeWrongOrder,
                    "the count reaches past the end of the memory the run starts in"};
        }
        return {ErrorKind::FreeOutsideManagedMemory,
                "the run is not inside memory this allocator manages"};
    }
    // One walk over the run's blocks, in order: the first misuse found is reported; the blocks
    // are noted for free_run().
    const uint64_t end = page + count;
    for (uint64_t block = page; block < end;) {
        const unsigned order = pages::largest_block_order(block, end - block);
        const uint64_t next = block + pages_of(order);
        if (on_cpu_list(block)) {
            return {ErrorKind::DoubleFree, "the block is free (on a CPU page list)"};
        }
        if (!region->is_allocated(block, order)) {
            return region->block_misuse(block, order);
        }
        if (region->run_continues_after(block, order) == (next == end)) {
            return {ErrorKind::FreeWrongOrder, "the run was allocated with another page count"};
        }
        blocks.add(block, order);
        block = next;
    }
    if (region->continues_a_run(page)) {
        return {ErrorKind::FreeWrongOrder, "the address is inside a run, not at its start"};
    }
    return {};
}

bool PageFrameAllocator::on_cpu_list(uint64_t page) const {
    const uint64_t index = page - m_cpu.first_page;
    if (index >= m_cpu.page_count) {
        return false;
    }
    if ((pages::page_state(m_cpu.states, index) & state_byte(PageState::Cached, 0)) != 0) {
        return true; // a listed block's first page
    }
    // Only a block's first page has its state: inside a listed block of a larger order, its
    // first page says so (a page aligned to an order is that order's first page, asked above).
    for (unsigned order = 1; order < kCpuListOrders; ++order) {
        if ((page & (pages_of(order) - 1)) == 0) {
            continue;
        }
        const uint64_t first = (page & ~(pages_of(order) - 1)) - m_cpu.first_page;
        if (first < m_cpu.page_count &&
            pages::page_state(m_cpu.states, first) == state_byte(PageState::Cached, order)) {
            return true;
        }
    }
    return false;
}

// The fast path: a block allocated from a CPU list (its state byte says so, which also proves it
// allocated, of that order and not part of a run) goes on top of the calling CPU's list. Its state
// is claimed first, Allocated -> Cached in one compare-and-swap, so of two frees racing on the
// block (a double free from two CPUs) one pushes it and the other finds it Cached and goes to the
// slow path, which reports the double free; then its entry is written and published with one
// compare-and-swap of the count (which fails if another CPU is taking the list back: the slow
// path then pushes the claimed block).
inline bool PageFrameAllocator::free_to_cpu_list(PhysAddr address, unsigned order) {
    // The page's index in the CPU-list region, rotated so that an address that is not
    // page-aligned (low bits set) becomes huge: one compare tests both (page_count is 0 without
    // lists).
    const uint64_t offset = address - m_cpu.base;
    const uint64_t index = offset >> kPageShift | offset << (64 - kPageShift);
    const uint8_t allocated = state_byte(PageState::Allocated, order);
    if (index >= m_cpu.page_count || pages::page_state(m_cpu.states, index) != allocated) {
        return false;
    }
    const platform::InterruptState interrupts = platform::disable_interrupts();
    const unsigned cpu = platform::current_cpu();
    const bool claimed =
        cpu < platform::kMaxCpus && pages::claim_page_state(m_cpu.states, index, allocated,
                                                            state_byte(PageState::Cached, order));
    if (claimed) [[likely]] {
        BEDROCK_DEBUG_ASSERT(m_cpu.region->tags_clear(address >> kPageShift, pages_of(order)));
        pages::CpuPageList& list = m_cpu.lists[cpu].order[order];
        const uint32_t count = pages::list_word(list);
        bool pushed = false;
        if (count < kCpuListBlocks) [[likely]] { // neither full nor taken
            list.pages[count] = static_cast<uint32_t>(index);
            pushed = pages::commit_list_count(list, count, count + 1);
        }
        if (!pushed) [[unlikely]] {
            drain_batch_and_push(cpu, order, static_cast<uint32_t>(index));
        }
    }
    platform::restore_interrupts(interrupts);
    return claimed;
}

void PageFrameAllocator::free(PhysAddr address, unsigned order) {
    if (order < kCpuListOrders && free_to_cpu_list(address, order)) [[likely]] {
        return;
    }
    free_locked(address, order, FreeOf::Block, call_site_of(__builtin_return_address(0)));
}

void PageFrameAllocator::free_pages(PhysAddr address, size_t count) {
    if (count <= pages_of(kCpuListOrders - 1) && is_power_of_two(count) &&
        free_to_cpu_list(address, floor_log2(count))) [[likely]] {
        return;
    }
    free_locked(address, count, FreeOf::Run, call_site_of(__builtin_return_address(0)));
}

PageFrameAllocator::Region* PageFrameAllocator::live_run_region_locked(PhysAddr address,
                                                                       uint64_t count) {
    Region* region = nullptr;
    RunBlocks blocks(address >> kPageShift);
    return free_pages_misuse_locked(address, count, region, blocks).detail == nullptr ? region
                                                                                      : nullptr;
}

bool PageFrameAllocator::extend_pages(PhysAddr address, size_t count, size_t new_count) {
    if (new_count <= count || new_count > (~uint64_t{0} >> kPageShift)) {
        return false;
    }
    LockGuard guard(m_lock);
    Region* region = live_run_region_locked(address, count);
    const uint64_t page = address >> kPageShift;
    if (region == nullptr || region_of(page, new_count) != region ||
        !region->is_free_range(page + count, page + new_count) || !claim_cpu_state(page)) {
        return false;
    }
    // The run is recorded anew as the greedy blocks of its new length: its old blocks' allocated
    // bits and run marks go (their pages stay taken), the pages after it are taken. A block that
    // came from a CPU page list is part of a run from now on: its state byte went (claimed
    // above: false if a free through a CPU list took it meanwhile).
    region->forget_run(page, count);
    region->take_range(page + count, page + new_count);
    region->record_run(page, new_count);
    note_reserve_locked(*region);
    note_reported_or_taken(m_unreported_pages, new_count - count);
    return true;
}

bool PageFrameAllocator::shrink_pages(PhysAddr address, size_t count, size_t new_count) {
    if (new_count == 0 || new_count >= count) {
        return false;
    }
    LockGuard guard(m_lock);
    Region* region = live_run_region_locked(address, count);
    const uint64_t page = address >> kPageShift;
    if (region == nullptr || !claim_cpu_state(page)) {
        return false;
    }
    // The run is recorded anew as two, its head and its tail (as extend_pages() records it), and
    // the tail freed as a run of its own.
    region->forget_run(page, count);
    region->record_run(page, new_count);
    const uint64_t tail = page + new_count;
    const uint64_t tail_count = count - new_count;
    region->record_run(tail, tail_count);
    RunBlocks tail_blocks(tail);
    Region* tail_region = nullptr;
    [[maybe_unused]] const Misuse recorded =
        free_pages_misuse_locked(tail << kPageShift, tail_count, tail_region, tail_blocks);
    BEDROCK_DEBUG_ASSERT(recorded.detail == nullptr && tail_region == region);
    note_unreported(m_unreported_pages, tail_count);
    region->free_run(tail_blocks, m_unreported_pages);
    return true;
}

void PageFrameAllocator::free_locked(PhysAddr address, uint64_t size, FreeOf what,
                                     const void* call_site) {
    Misuse misuse;
    {
        LockGuard guard(m_lock);
        Region* region = nullptr;
        RunBlocks blocks(address >> kPageShift);
        misuse = what == FreeOf::Block
                     ? free_misuse_locked(address, static_cast<unsigned>(size), region, blocks)
                     : free_pages_misuse_locked(address, size, region, blocks);
        // A free through a CPU list (no lock) may claim the block between the checks and here:
        // then this free is the second.
        if (misuse.detail == nullptr && !claim_cpu_state(address >> kPageShift)) {
            misuse = {ErrorKind::DoubleFree, "the block is free (on a CPU page list)"};
        }
        if (misuse.detail == nullptr) {
            note_unreported(m_unreported_pages,
                            what == FreeOf::Block ? pages_of(static_cast<unsigned>(size)) : size);
            region->free_run(blocks, m_unreported_pages);
            return;
        }
    }
    platform::report_error(
        ErrorReport{misuse.kind, "pfa", address, size, call_site, misuse.detail, 0, 0, {}, {}});
}

void PageFrameAllocator::drain_cpu(unsigned cpu) {
    if (cpu < platform::kMaxCpus && m_cpu.lists != nullptr) {
        LockGuard guard(m_lock);
        static_cast<void>(drain_cpu_locked(cpu));
    }
}

bool PageFrameAllocator::reserve_range(PhysRange range) {
    const void* call_site = call_site_of(__builtin_return_address(0));
    if (range.size == 0) {
        return true;
    }
    if (range.last() < range.base) {
        return false; // it wraps past the top of the address space (PhysRange's invariant)
    }
    const uint64_t first = range.base >> kPageShift;
    const uint64_t end = (range.last() >> kPageShift) + 1;
    {
        LockGuard guard(m_lock);
        // Pages on any CPU's lists are free: every list goes back first (a rare call).
        for (unsigned cpu = 0; m_cpu.lists != nullptr && cpu < platform::kMaxCpus; ++cpu) {
            static_cast<void>(drain_cpu_locked(cpu));
        }
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
                    page = align_down(page, pages) + pages;
                }
            }
        }
        if (!conflict) {
            // Pass 2: take each stretch of free pages (the parts of its blocks outside it are
            // given back) and mark its pages reserved.
            for (size_t i = 0; i < m_region_count; ++i) {
                Region& region = m_regions[i];
                const uint64_t a = first > region.first_page ? first : region.first_page;
                const uint64_t b = end < region.end_page() ? end : region.end_page();
                for (uint64_t page = a; page < b;) {
                    if (region.is_reserved(page)) {
                        ++page;
                        continue;
                    }
                    uint64_t stretch_end = page + 1;
                    while (stretch_end < b && !region.is_reserved(stretch_end)) {
                        ++stretch_end;
                    }
                    region.take_range(page, stretch_end);
                    region.reserved_pages += stretch_end - page;
                    for (; page < stretch_end; ++page) {
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

uint64_t PageFrameAllocator::cpu_list_pages() const {
    uint64_t total = 0;
    for (unsigned cpu = 0; m_cpu.lists != nullptr && cpu < platform::kMaxCpus; ++cpu) {
        for (unsigned order = 0; order < kCpuListOrders; ++order) {
            total += pages::list_count(m_cpu.lists[cpu].order[order]) << order;
        }
    }
    return total;
}

void PageFrameAllocator::tell_unused_pages() {
    LockGuard guard(m_lock);
    for (size_t i = 0; i < m_region_count; ++i) {
        m_regions[i].tell_unused_blocks();
    }
    m_unreported_pages = 0;
}

uint64_t PageFrameAllocator::free_pages() const {
    LockGuard guard(m_lock);
    uint64_t total = cpu_list_pages();
    for (size_t i = 0; i < m_region_count; ++i) {
        total += m_regions[i].free_pages;
    }
    return total;
}

uint64_t PageFrameAllocator::free_pages_of(const Region& region) const {
    return region.free_pages + (&region == m_cpu.region ? cpu_list_pages() : 0);
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
            total += free_pages_of(m_regions[i]);
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
    if (index >= m_region_count) {
        return PhysRange{};
    }
    const Region& region = m_regions[index];
    return PhysRange{region.first_page << kPageShift, region.page_count << kPageShift};
}

uint64_t PageFrameAllocator::cpu_list_region_free_pages() const {
    LockGuard guard(m_lock);
    return m_cpu.region != nullptr ? free_pages_of(*m_cpu.region) : 0;
}

uint64_t PageFrameAllocator::region_free_pages(size_t index) const {
    LockGuard guard(m_lock);
    return index < m_region_count ? free_pages_of(m_regions[index]) : 0;
}

} // namespace bedrock
