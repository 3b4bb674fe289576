// SPDX-License-Identifier: MIT
// Boot-time page source for page tables; see boot_page_source.h.
#include "kernel/boot_page_source.h"

#include "bedrock/memory_routines.h"
#include "bedrock/platform.h"
#include "kernel/console.h"

namespace bedrock::kernel {

BootPageSource::BootPageSource(const PhysRange* usable, size_t count, uint64_t limit)
    : m_usable(usable), m_count(count), m_limit(limit) {}

PhysAddr BootPageSource::allocate_zeroed_page() {
    // Physical page 0 is never handed out: it stays unmapped so null dereferences fault.
    for (; m_range < m_count; ++m_range, m_offset = 0) {
        const PhysRange& range = m_usable[m_range];
        if (range.base == 0 && m_offset == 0) {
            m_offset = kPageSize;
        }
        if (m_offset >= range.size || range.base + m_offset >= m_limit ||
            m_limit - (range.base + m_offset) < kPageSize) {
            continue;
        }
        const PhysAddr page = range.base + m_offset;
        m_offset += kPageSize;
        // Extend the last taken run when contiguous, otherwise start a new one.
        const size_t runs = m_taken.count();
        PhysRange* last = runs > 0 ? m_taken.data() + runs - 1 : nullptr;
        if (last != nullptr && last->base + last->size == page) {
            last->size += kPageSize;
        } else if (!m_taken.add(page, kPageSize)) {
            panic("boot page source: more than %zu separate runs of page-table pages",
                  m_taken.capacity());
        }
        bedrock_memset(platform::phys_to_virt(page), 0, kPageSize);
        return page;
    }
    panic("boot page source: no usable page below 0x%lx left for page tables", m_limit);
}

} // namespace bedrock::kernel
