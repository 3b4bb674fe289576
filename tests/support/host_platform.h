// The host implementation of bedrock/platform.h, for unit tests and benchmarks.
//
// Physical memory is simulated: a SimulatedMemory maps one host buffer per physical range
// (anywhere in the 64-bit physical space, up to its very top) and phys_to_virt translates.
// Reports from report_error are recorded for the tests to assert; assertion_failed aborts.
#pragma once

#include <vector>

#include "bedrock/platform.h"

namespace bedrock::test {

class SimulatedMemory {
public:
    // Maps zero-filled host memory (lazily committed) for each range.
    explicit SimulatedMemory(std::vector<PhysRange> ranges);
    ~SimulatedMemory();
    SimulatedMemory(const SimulatedMemory&) = delete;
    SimulatedMemory& operator=(const SimulatedMemory&) = delete;

    [[nodiscard]] const std::vector<PhysRange>& ranges() const { return m_ranges; }

private:
    std::vector<PhysRange> m_ranges;
};

// Every report since the last clear_reports().
const std::vector<ErrorReport>& reports();
void clear_reports();

} // namespace bedrock::test
