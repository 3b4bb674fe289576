// Helpers shared by the heap's host tests: a memory region for region heaps, access to the
// error reports the host platform recorded, and the test seed.
#pragma once

#include <stdint.h>
#include <stdlib.h>

#include <utility>

#include "bedrock/platform.h"
#include "host_reports.h"

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

inline void clear_reports() {
    test_reports().clear();
}
inline size_t report_count() {
    return test_reports().size();
}
inline const ErrorReport& report(size_t index) {
    return test_reports().at(index);
}

// The seed for randomized tests: BEDROCK_TEST_SEED from the environment, else `fallback`.
inline uint64_t seed_from_environment(uint64_t fallback) {
    const char* text = getenv("BEDROCK_TEST_SEED");
    return text != nullptr ? strtoull(text, nullptr, 0) : fallback;
}

} // namespace bedrock::test
