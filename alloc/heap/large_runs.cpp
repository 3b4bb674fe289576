// SPDX-License-Identifier: MIT
// LargeRuns: page runs with their length and owner in the page tags (see large_runs.h).
#include "heap/large_runs.h"

#include "bedrock/assert.h"
#include "bedrock/platform.h"
#include "heap/page_tags.h"
#include "support/bits.h"

namespace bedrock::heap {
namespace {

// Writes the length tags of a run of `pages` (its pages 1 and 2, page_tags.h).
void write_length_tags(uint16_t* tags, uint64_t pages, uint16_t owner_id, RunUse use) {
    for (uint64_t page = 1; page < kMinLargeRunPages; ++page) {
        __atomic_store_n(&tags[page], large_run_tag(page, pages, owner_id, use), __ATOMIC_RELAXED);
    }
}

} // namespace

void* LargeRuns::take(size_t size, size_t alignment, RunUse use, size_t requested,
                      RunSearch search) {
    if (size > kMaxLargeRunPages * kPageSize - kPageSize) {
        return nullptr;
    }
    const uint64_t pages = pages_for(size);
    const PhysAddr phys = m_frames->allocate_pages(
        pages, alignment < kPageSize ? kPageSize : alignment, kNoLimit, search);
    if (phys == kNoPage) {
        return nullptr;
    }
    void* block = platform::phys_to_virt(phys);
    // The direct map keeps a run's alignment up to a maximum block (bedrock/platform.h); beyond
    // that only where its offset is a multiple of the alignment (an identity map): elsewhere the
    // run goes back.
    if (!is_aligned(reinterpret_cast<uintptr_t>(block), alignment)) {
        m_frames->free_pages(phys, pages);
        return nullptr;
    }
    uint16_t* tags = m_frames->page_tag(block);
    BEDROCK_ASSERT(tags != nullptr);
    BEDROCK_DEBUG_ASSERT(tags + pages - 1 == m_frames->page_tag(static_cast<unsigned char*>(block) +
                                                                (pages - 1) * kPageSize));
    fill_tags(tags + kMinLargeRunPages, pages - kMinLargeRunPages,
              large_run_tag(kMinLargeRunPages, pages, m_owner_id, use));
    write_length_tags(tags, pages, m_owner_id, use);
    m_held->add(pages);
    LockGuard guard(m_lock);
    // The head last, under the lock: a free racing this one (a stale pointer freed twice) finds
    // the run whole or not at all.
    __atomic_store_n(&tags[0], large_run_tag(0, pages, m_owner_id, use), __ATOMIC_RELAXED);
    ++m_totals.blocks;
    ++m_totals.allocations;
    m_totals.pages += pages;
    m_totals.bytes_requested += requested;
    m_totals.checked_blocks += use == RunUse::Checked ? 1 : 0;
    m_totals.checked_pages += use == RunUse::Checked ? pages : 0;
    return block;
}

bool LargeRuns::give(void* block) {
    uint16_t* tags = m_frames->page_tag(block);
    uint64_t pages = 0;
    {
        LockGuard guard(m_lock);
        const uint16_t head = __atomic_load_n(&tags[0], __ATOMIC_RELAXED);
        const PageKind kind = tag_kind(head);
        if ((kind != PageKind::LargeHead && kind != PageKind::LargeCheckedHead) ||
            tag_value(head) != m_owner_id) {
            return false; // freed by another CPU meanwhile
        }
        // Read again under the lock: the length the caller found may be another run's that
        // started here (a pointer freed twice) or half of one grow()'s rewrite.
        pages = run_pages(tags);
        fill_tags(tags, pages, 0);
        const bool checked = kind == PageKind::LargeCheckedHead;
        if (!checked) {
            m_freed[m_next_freed] = FreedRun{reinterpret_cast<uintptr_t>(block), pages};
            m_next_freed = (m_next_freed + 1) % kRememberedFrees;
        }
        --m_totals.blocks;
        m_totals.pages -= pages;
        m_totals.checked_blocks -= checked ? 1 : 0;
        m_totals.checked_pages -= checked ? pages : 0;
    }
    m_held->remove(pages);
    m_frames->free_pages(m_frames->phys_of(block), pages);
    return true;
}

bool LargeRuns::grow(void* block, uint64_t pages, size_t size) {
    if (size > kMaxLargeRunPages * kPageSize - kPageSize || pages_for(size) <= pages) {
        return false;
    }
    const uint64_t grown = pages_for(size);
    uint16_t* tags = m_frames->page_tag(block);
    {
        LockGuard guard(m_lock);
        const uint16_t head = __atomic_load_n(&tags[0], __ATOMIC_RELAXED);
        if (head != large_run_tag(0, pages, m_owner_id, RunUse::Plain) ||
            !m_frames->extend_pages(m_frames->phys_of(block), pages, grown)) {
            return false;
        }
        // The body first, then the length: a reader that sees the new length finds its pages
        // tagged.
        fill_tags(tags + pages, grown - pages,
                  large_run_tag(kMinLargeRunPages, grown, m_owner_id, RunUse::Plain));
        write_length_tags(tags, grown, m_owner_id, RunUse::Plain);
        m_totals.pages += grown - pages;
    }
    m_held->add(grown - pages);
    return true;
}

bool LargeRuns::shrink(void* block, uint64_t pages, size_t size) {
    const uint64_t kept = pages_for(size);
    if (kept >= pages) {
        return false;
    }
    uint16_t* tags = m_frames->page_tag(block);
    {
        LockGuard guard(m_lock);
        const uint16_t head = __atomic_load_n(&tags[0], __ATOMIC_RELAXED);
        if (head != large_run_tag(0, pages, m_owner_id, RunUse::Plain) ||
            run_pages(tags) != pages) {
            return false;
        }
        // The length first, then the pages given back: a reader that sees the old length finds
        // the pages still tagged as this run's until they are free.
        write_length_tags(tags, kept, m_owner_id, RunUse::Plain);
        fill_tags(tags + kept, pages - kept, 0);
        const bool shrunk = m_frames->shrink_pages(m_frames->phys_of(block), pages, kept);
        BEDROCK_ASSERT(shrunk); // the tags named the run: the page frame allocator holds it
        m_totals.pages -= pages - kept;
    }
    m_held->remove(pages - kept);
    return true;
}

uint64_t LargeRuns::freed_pages(const void* block) {
    const auto start = reinterpret_cast<uintptr_t>(block);
    LockGuard guard(m_lock);
    // Newest first: a run freed at the same start as an older one (the pages taken again) names
    // the last free's length.
    for (unsigned back = 1; back <= kRememberedFrees; ++back) {
        const FreedRun& run = m_freed[(m_next_freed + kRememberedFrees - back) % kRememberedFrees];
        if (run.start == start) {
            return run.pages;
        }
    }
    return 0;
}

LargeRuns::Totals LargeRuns::totals() {
    LockGuard guard(m_lock);
    return m_totals;
}

} // namespace bedrock::heap
