// SPDX-License-Identifier: MIT
// The host implementation of bedrock/platform.h, for unit tests and benchmarks.
//
// Physical memory is simulated: a SimulatedMemory maps one host buffer per physical range
// (anywhere in the 64-bit physical space, up to its very top) and phys_to_virt translates, like
// a kernel's direct map: virtual == physical modulo 1 GiB, so a block's physical alignment (up
// to a maximum-order block) is also its virtual alignment (unless a test asks for a skew). Each
// thread remembers the window it hit last, so a test or benchmark over one range translates in
// O(1). Reports from report_error are recorded for the tests to assert; panic and assertion_failed
// abort (tests use death tests); set_page_access is mprotect; pages_unused calls are recorded and
// their pages overwritten (their contents may be dropped). Thread safety: phys_to_virt may be
// called from several threads; creating and destroying SimulatedMemory objects and the report
// functions are for one thread at a time.
#pragma once

#include <vector>

#include "bedrock/platform.h"

namespace bedrock::test {

class SimulatedMemory {
public:
    // Maps zero-filled host memory (lazily committed) for each range. With `skew`, each range's
    // virtual address is that many bytes above the one that keeps its alignment: a direct map
    // that does not keep the alignment of blocks (skew % 1 GiB != 0).
    explicit SimulatedMemory(std::vector<PhysRange> ranges, uint64_t skew = 0);
    ~SimulatedMemory();
    SimulatedMemory(const SimulatedMemory&) = delete;
    SimulatedMemory& operator=(const SimulatedMemory&) = delete;

    [[nodiscard]] const std::vector<PhysRange>& ranges() const { return m_ranges; }

private:
    std::vector<PhysRange> m_ranges;
};

// The calls of platform::pages_unused() since the last clear_unused_pages() (the first 65536
// of them; unused_calls() counts them all). For one thread at a time, like the reports.
struct UnusedPages {
    void* start;
    size_t bytes;
};
std::vector<UnusedPages> unused_pages();
uint64_t unused_calls();
void clear_unused_pages();

// Every report since the last clear_reports().
const std::vector<ErrorReport>& reports();
void clear_reports();

} // namespace bedrock::test
