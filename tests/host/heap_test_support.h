// SPDX-License-Identifier: MIT
// Helpers shared by the heap's host tests: a memory region for region heaps, a page frame
// allocator over simulated physical memory, access to the error reports the host platform
// recorded, and the test seed.
#pragma once

#include <stdint.h>
#include <stdlib.h>

#include <utility>

#include "bedrock/page_frame_allocator.h"
#include "bedrock/platform.h"
#include "support/host_platform.h"

namespace bedrock::test {

// An owned, 64-byte aligned buffer from the host's allocator, for heap_create_in_region().
class Region {
public:
    Region() = default;
    explicit Region(size_t size)
        : m_data(static_cast<unsigned char*>(aligned_alloc(64, size))), m_size(size) {}
    Region(Region&& other) noexcept
        : m_data(std::exchange(other.m_data, nullptr)), m_size(other.m_size) {}
    Region& operator=(Region&& other) noexcept {
        std::swap(m_data, other.m_data);
        std::swap(m_size, other.m_size);
        return *this;
    }
    ~Region() { free(m_data); }

    [[nodiscard]] unsigned char* data() const { return m_data; }
    [[nodiscard]] size_t size() const { return m_size; }

private:
    unsigned char* m_data = nullptr;
    size_t m_size = 0;
};

// A page frame allocator over `bytes` of simulated physical memory at 4 GiB.
class Frames {
public:
    explicit Frames(uint64_t bytes) : m_memory({{kBase, bytes}}) {
        const PhysRange range{kBase, bytes};
        m_initialized = m_allocator.init(&range, 1);
    }
    [[nodiscard]] PageFrameAllocator& allocator() { return m_allocator; }
    [[nodiscard]] uint64_t free_pages() const { return m_allocator.free_pages(); }
    [[nodiscard]] bool initialized() const { return m_initialized; }

private:
    static constexpr PhysAddr kBase = PhysAddr{4} << 30;
    SimulatedMemory m_memory;
    PageFrameAllocator m_allocator;
    bool m_initialized = false;
};

inline size_t report_count() {
    return reports().size();
}
inline const ErrorReport& report(size_t index) {
    return reports().at(index);
}

// The seed for randomized tests: BEDROCK_TEST_SEED from the environment, else `fallback`.
inline uint64_t seed_from_environment(uint64_t fallback) {
    const char* text = getenv("BEDROCK_TEST_SEED");
    return text != nullptr ? strtoull(text, nullptr, 0) : fallback;
}

} // namespace bedrock::test
