// SPDX-License-Identifier: MIT
// BootPageSource: hands out zeroed pages for page tables before any allocator exists.
//
// It bumps upward through the usable ranges, taking only pages below a limit (memory that is
// already mapped, so the tables can be written through the identity map). Every page it hands
// out lies in one of at most kMaxTakenRanges contiguous runs, which the kernel then adds to the
// reserved ranges, so the page frame allocator never receives them.
// Invariant: taken pages ⊆ usable ranges below `limit`; no page is handed out twice.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/phys_range.h"
#include "kernel/boot_info.h"

namespace bedrock::kernel {

class BootPageSource {
public:
    // `usable` must be the page-aligned, sorted output of compute_usable_ranges(); the source
    // keeps a pointer to it, so it must outlive the source.
    BootPageSource(const PhysRange* usable, size_t count, uint64_t limit);

    // Returns the physical address of a zeroed page. Panics if no page below the limit is left.
    [[nodiscard]] PhysAddr allocate_zeroed_page();

    // The runs handed out so far, to be reserved.
    [[nodiscard]] const RangeList<4>& taken() const { return m_taken; }

private:
    const PhysRange* m_usable;
    size_t m_count;
    uint64_t m_limit;
    size_t m_range = 0;    // index of the usable range being consumed
    uint64_t m_offset = 0; // bytes of it already handed out
    RangeList<4> m_taken;
};

} // namespace bedrock::kernel
