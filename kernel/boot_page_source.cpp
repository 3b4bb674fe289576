// SPDX-License-Identifier: MIT
// Boot-time page source for page tables; see boot_page_source.h.
#include "kernel/boot_page_source.h"

#include "bedrock/memory_routines.h"
#include "bedrock/platform.h"

namespace bedrock::kernel {
namespace {

struct Room {
    PhysAddr first = 0;
    uint64_t pages = 0;
};

// The pages of `range` (page-aligned) the source may hand out: those below `limit`, physical
// page 0 excluded (it stays unmapped so null dereferences fault).
Room room_in(const PhysRange& range, uint64_t limit) {
    const PhysAddr first = range.base == 0 ? kPageSize : range.base;
    if (range.size <= first - range.base || first >= limit) {
        return {};
    }
    const PhysAddr last = range.last() < limit - 1 ? range.last() : limit - 1;
    return Room{first, (last - first + 1) / kPageSize};
}

} // namespace

BootPageSource::BootPageSource(const PhysRange* usable, size_t count, uint64_t limit)
    : m_usable(usable), m_count(count), m_limit(limit) {}

bool BootPageSource::start_next_range() {
    for (;;) {
        for (; m_next_range < m_count; ++m_next_range) {
            const Room room = room_in(m_usable[m_next_range], m_limit);
            // The second pass takes exactly the ranges the first one skipped.
            const bool roomy = room.pages >= kRoomyRangePages;
            if (room.pages > 0 && roomy == (m_pass == Pass::RoomyRanges)) {
                m_next_page = room.first;
                m_pages_left = room.pages;
                ++m_next_range;
                return true;
            }
        }
        if (m_pass == Pass::SmallRanges) {
            return false;
        }
        m_pass = Pass::SmallRanges;
        m_next_range = 0;
    }
}

BootPage BootPageSource::take_zeroed_page() {
    if (m_pages_left == 0 && !start_next_range()) {
        return BootPage{0, BootPageShortage::NoPageBelowLimit};
    }
    // A page next to the last one taken extends its run; any other needs a free run.
    if (!m_taken.add(m_next_page, kPageSize)) {
        return BootPage{0, BootPageShortage::TooManyRuns};
    }
    const PhysAddr page = m_next_page;
    m_next_page += kPageSize;
    --m_pages_left;
    bedrock_memset(platform::phys_to_virt(page), 0, kPageSize);
    return BootPage{page, BootPageShortage::None};
}

} // namespace bedrock::kernel
