// SPDX-License-Identifier: MIT
// SimulatedMemory and platform::phys_to_virt over it (see simulated_memory.h).
#include "simulated_memory.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "bedrock/platform.h"

namespace bench {
namespace {

constexpr uint64_t kDirectMapAlignment = uint64_t{1} << 30;

// virtual = physical + g_offset while a SimulatedMemory exists; 0 otherwise.
uintptr_t g_offset = 0;

} // namespace

SimulatedMemory::SimulatedMemory(uint64_t span) : m_span(span) {
    if (g_offset != 0) {
        fprintf(stderr, "SimulatedMemory: only one at a time\n");
        abort();
    }
    const size_t bytes = span + kDirectMapAlignment;
    void* mapping = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mapping == MAP_FAILED) {
        perror("SimulatedMemory: mmap");
        return;
    }
    m_mapping = mapping;
    m_mapping_bytes = bytes;
    const auto start = reinterpret_cast<uintptr_t>(mapping);
    g_offset = (start + kDirectMapAlignment - 1) & ~uintptr_t{kDirectMapAlignment - 1};
}

SimulatedMemory::~SimulatedMemory() {
    if (m_mapping != nullptr) {
        munmap(m_mapping, m_mapping_bytes);
        g_offset = 0;
    }
}

} // namespace bench

namespace bedrock::platform {

// A load and an add, like a kernel's direct map (the worst-case instruction counts include it).
void* phys_to_virt(PhysAddr phys) {
    return reinterpret_cast<void*>(bench::g_offset + static_cast<uintptr_t>(phys));
}

} // namespace bedrock::platform
