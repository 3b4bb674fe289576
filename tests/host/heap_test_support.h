// SPDX-License-Identifier: MIT
// Helpers shared by the heap's host tests: a memory region for region heaps, a page frame
// allocator over simulated physical memory, access to the error reports the host platform
// recorded, a fresh heap of either kind, the test seed, and checks more than one suite makes.
#pragma once

#include <stdint.h>
#include <stdlib.h>

#include <gtest/gtest.h>

#include <utility>

#include "bedrock/heap.h"
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

// A fresh heap over a 16 MiB region or, with `over_frames`, over a page frame allocator of 64 MiB.
struct EitherHeap {
    explicit EitherHeap(bool over_frames)
        : region(over_frames ? 0 : 16 << 20), frames(over_frames ? 64 << 20 : 16 << 20),
          heap(over_frames ? heap_create(frames.allocator())
                           : heap_create_in_region(region.data(), region.size())) {}
    Region region;
    Frames frames;
    Heap* heap;
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

// A region heap made in a live block of `outer` (`bytes` of it): its small and medium blocks
// freed into `outer` are each reported foreign-heap (not an interior pointer of the block), both
// heaps stay intact, and the inner heap then frees them and goes. Expects no report before.
inline void expect_a_nested_heaps_blocks_are_foreign(Heap& outer, size_t bytes) {
    auto* block = static_cast<unsigned char*>(heap_allocate(outer, bytes));
    ASSERT_NE(block, nullptr);
    Heap* inner = heap_create_in_region(block, bytes);
    ASSERT_NE(inner, nullptr);
    void* small = heap_allocate(*inner, 64);
    void* medium = heap_allocate(*inner, 8192);
    ASSERT_NE(small, nullptr);
    ASSERT_NE(medium, nullptr);
    heap_free(outer, small);
    heap_free(outer, medium);
    ASSERT_EQ(report_count(), 2u);
    EXPECT_EQ(report(0).kind, ErrorKind::ForeignHeap);
    EXPECT_EQ(report(1).kind, ErrorKind::ForeignHeap);
    EXPECT_TRUE(heap_check(*inner));
    EXPECT_TRUE(heap_check(outer));
    heap_free(*inner, small);
    heap_free(*inner, medium);
    EXPECT_TRUE(heap_destroy(*inner));
    heap_free(outer, block);
    EXPECT_EQ(report_count(), 2u);
}

} // namespace bedrock::test
