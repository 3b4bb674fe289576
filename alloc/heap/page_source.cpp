// PageSource: pages for a heap from a page frame allocator or a caller-given region (see
// page_source.h for the invariants and lock order).
#include "heap/page_source.h"

#include "bedrock/assert.h"
#include "bedrock/platform.h"
#include "heap/heap_memory.h"

namespace bedrock::heap {
namespace {

constexpr size_t kBitsPerWord = 64;

} // namespace

void PageSource::init_frames(PageFrameAllocator& frames) {
    m_frames = &frames;
    for (size_t i = 0; i < frames.region_count(); ++i) {
        const PhysRange region = frames.region_range(i);
        HeapMemory::add(reinterpret_cast<uintptr_t>(platform::phys_to_virt(region.base)),
                        region.size);
    }
}

void PageSource::init_region(uintptr_t first, size_t pages, uint64_t* bitmap) {
    m_first = first;
    m_pages = pages;
    m_bitmap = bitmap;
    HeapMemory::add(first, pages * kPageSize);
    for (size_t word = 0; word < (pages + kBitsPerWord - 1) / kBitsPerWord; ++word) {
        m_bitmap[word] = 0;
    }
}

void PageSource::count_taken(size_t pages) {
    const uint64_t held = __atomic_add_fetch(&m_held, pages, __ATOMIC_RELAXED);
    uint64_t peak = __atomic_load_n(&m_peak_held, __ATOMIC_RELAXED);
    while (held > peak && !__atomic_compare_exchange_n(&m_peak_held, &peak, held, true,
                                                       __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

bool PageSource::region_run_is_free(size_t first_page, size_t pages) const {
    size_t page = first_page;
    while (page < first_page + pages) {
        const uint64_t word = m_bitmap[page / kBitsPerWord];
        if (page % kBitsPerWord == 0 && page + kBitsPerWord <= first_page + pages) {
            if (word != 0) {
                return false;
            }
            page += kBitsPerWord; // a whole free word at once
            continue;
        }
        if ((word >> (page % kBitsPerWord)) & 1) {
            return false;
        }
        ++page;
    }
    return true;
}

void PageSource::region_mark(size_t first_page, size_t pages, bool taken) {
    for (size_t page = first_page; page < first_page + pages; ++page) {
        const uint64_t bit = uint64_t{1} << (page % kBitsPerWord);
        if (taken) {
            m_bitmap[page / kBitsPerWord] |= bit;
        } else {
            m_bitmap[page / kBitsPerWord] &= ~bit;
        }
    }
}

PageRun PageSource::take(size_t pages, size_t alignment) {
    BEDROCK_DEBUG_ASSERT(pages > 0 && alignment >= kPageSize && (alignment & (alignment - 1)) == 0);
    if (m_frames != nullptr) {
        const PhysAddr phys = m_frames->allocate_pages(pages, alignment);
        if (phys == kNoPage) {
            return PageRun{nullptr, 0};
        }
        void* base = platform::phys_to_virt(phys);
        // The heap finds block metadata by aligning virtual addresses, so the direct map must
        // keep the physical alignment.
        BEDROCK_ASSERT((reinterpret_cast<uintptr_t>(base) & (alignment - 1)) == 0);
        count_taken(pages);
        return PageRun{base, phys};
    }
    if (pages > m_pages) {
        return PageRun{nullptr, 0};
    }
    LockGuard guard(m_lock);
    while (m_lowest_free < m_pages &&
           ((m_bitmap[m_lowest_free / kBitsPerWord] >> (m_lowest_free % kBitsPerWord)) & 1)) {
        ++m_lowest_free;
    }
    const uintptr_t lowest = m_first + m_lowest_free * kPageSize;
    const uintptr_t start = (lowest + alignment - 1) & ~(uintptr_t{alignment} - 1);
    const size_t step = alignment / kPageSize;
    for (size_t page = (start - m_first) / kPageSize; page + pages <= m_pages; page += step) {
        if (region_run_is_free(page, pages)) {
            region_mark(page, pages, true);
            const uintptr_t base = m_first + page * kPageSize;
            count_taken(pages);
            return PageRun{reinterpret_cast<void*>(base), base};
        }
    }
    return PageRun{nullptr, 0};
}

void PageSource::give(const PageRun& run, size_t pages) {
    __atomic_sub_fetch(&m_held, pages, __ATOMIC_RELAXED);
    if (m_frames != nullptr) {
        m_frames->free_pages(run.source_address, pages);
        return;
    }
    LockGuard guard(m_lock);
    const size_t first_page = (run.source_address - m_first) / kPageSize;
    BEDROCK_ASSERT(run.source_address >= m_first && first_page + pages <= m_pages);
    region_mark(first_page, pages, false);
    m_lowest_free = first_page < m_lowest_free ? first_page : m_lowest_free;
}

} // namespace bedrock::heap
