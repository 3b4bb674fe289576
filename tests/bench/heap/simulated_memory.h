// SPDX-License-Identifier: MIT
// Simulated physical memory for heap_limits: physical addresses [0, span) as a machine numbers
// them (a page frame allocator over QEMU's memory map starts at address 0), backed by reserved
// address space (MAP_NORESERVE: a page costs memory only once touched). platform::phys_to_virt
// adds one constant offset, a multiple of 1 GiB, so a virtual address keeps the alignment of its
// physical address up to the largest buddy block, which the heap relies on.
//
// At most one SimulatedMemory exists at a time (phys_to_virt reads the current one's offset).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/phys_range.h"

namespace bench {

class SimulatedMemory {
public:
    // Reserves the address space for [0, span). ok() says whether that worked.
    explicit SimulatedMemory(uint64_t span);
    ~SimulatedMemory();
    SimulatedMemory(const SimulatedMemory&) = delete;
    SimulatedMemory& operator=(const SimulatedMemory&) = delete;

    [[nodiscard]] bool ok() const { return m_mapping != nullptr; }
    [[nodiscard]] uint64_t span() const { return m_span; }

private:
    void* m_mapping = nullptr;
    size_t m_mapping_bytes = 0;
    uint64_t m_span = 0;
};

} // namespace bench
