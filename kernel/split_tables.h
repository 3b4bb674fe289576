// SplitTables: the fixed reserve of page-table pages that splitting a block of the live identity
// map takes (PageTable::set_present, for guard pages), so that changing page access never
// allocates. A page is handed out once and never returned (splits are permanent).
// Invariant: pages [0, m_used) are handed out; the rest are zero (.bss).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/phys_range.h"

namespace bedrock::kernel {

class SplitTables {
public:
    // Each split of a 2 MiB block (or 1 GiB block on AArch64) costs one page. 32 pages cover
    // guard-page pools spread over 32 distinct 2 MiB blocks, far more than the tests use.
    static constexpr size_t kPages = 32;

    // A zeroed page (its physical address: the kernel image is identity-mapped), or 0 when all
    // are used.
    [[nodiscard]] PhysAddr take() {
        if (m_used == kPages) {
            return 0;
        }
        return reinterpret_cast<uintptr_t>(m_pages[m_used++]);
    }
    [[nodiscard]] size_t left() const { return kPages - m_used; }

private:
    alignas(kPageSize) uint8_t m_pages[kPages][kPageSize] = {};
    size_t m_used = 0;
};

// The kernel's one reserve.
SplitTables& split_tables();

} // namespace bedrock::kernel
