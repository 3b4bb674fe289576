// SPDX-License-Identifier: MIT
// heap_lock_all() / heap_unlock_all() and PageFrameAllocator::lock_all() / unlock_all(), the
// calls a fork handler makes (bedrock/heap.h): taking and releasing every lock leaves each heap
// whole, and a thread that needs a lock meanwhile waits until the release, then proceeds.
#include <gtest/gtest.h>

#include <stdint.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "bedrock/heap.h"
#include "bedrock/heap_checks.h"
#include "bedrock/platform.h"
#include "heap_test_support.h"

namespace bedrock {
namespace {

// Blocks of every kind the heap holds: small (through the CPU cache), medium and large.
std::vector<void*> allocate_mix(Heap& heap) {
    std::vector<void*> blocks;
    for (size_t size :
         {size_t{1}, size_t{48}, size_t{2000}, size_t{5000}, size_t{200000}, size_t{3} << 20}) {
        void* block = heap_allocate(heap, size);
        EXPECT_NE(block, nullptr) << "size " << size;
        blocks.push_back(block);
    }
    return blocks;
}

// Locks and unlocks as a fork handler does (heap first, then its page frame allocator).
void lock_and_unlock(Heap& heap, PageFrameAllocator& frames) {
    heap_lock_all(heap);
    const platform::InterruptState previous = frames.lock_all();
    frames.unlock_all(previous);
    heap_unlock_all(heap);
}

TEST(HeapForkLocks, LockAllThenUnlockAllLeavesEveryHeapChecked) {
    test::clear_reports();
    test::Frames frames(64 << 20);
    ASSERT_TRUE(frames.initialized());
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    test::Region region(1 << 20);
    Heap* region_heap = heap_create_in_region(region.data(), region.size());
    ASSERT_NE(region_heap, nullptr);

    std::vector<void*> blocks = allocate_mix(*heap);
    void* region_block = heap_allocate(*region_heap, 3000);
    ASSERT_NE(region_block, nullptr);
    EXPECT_TRUE(heap_check(*heap));

    lock_and_unlock(*heap, frames.allocator());
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(frames.allocator().check().ok);
    heap_lock_all(*region_heap);
    heap_unlock_all(*region_heap);
    EXPECT_TRUE(heap_check(*region_heap));

    // Checked mode's locks too: a checked block lives across the lock and unlock.
    ASSERT_TRUE(heap_set_check_level(*heap, CheckLevel::Report));
    void* checked = heap_allocate(*heap, 100);
    ASSERT_NE(checked, nullptr);
    lock_and_unlock(*heap, frames.allocator());
    EXPECT_TRUE(heap_check(*heap));
    heap_free(*heap, checked);
    ASSERT_TRUE(heap_set_check_level(*heap, CheckLevel::Off));

    // Everything still works after the release.
    for (void* block : blocks) {
        heap_free(*heap, block);
    }
    blocks = allocate_mix(*heap);
    for (void* block : blocks) {
        heap_free(*heap, block);
    }
    heap_free(*region_heap, region_block);
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_check(*region_heap));
    EXPECT_TRUE(heap_destroy(*region_heap));
    heap_trim(*heap);
    EXPECT_TRUE(heap_destroy(*heap));
    EXPECT_EQ(test::report_count(), 0u);
}

TEST(HeapForkLocks, AThreadBlockedOnAllocationWhileLockedProceedsAfterUnlock) {
    test::clear_reports();
    test::Frames frames(64 << 20);
    ASSERT_TRUE(frames.initialized());
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);

    heap_lock_all(*heap);
    const platform::InterruptState previous = frames.allocator().lock_all();
    std::atomic<bool> done{false};
    void* medium = nullptr;
    void* small = nullptr;
    // A new thread: its CPU cache is empty, so even the small block needs its class's lock.
    std::thread blocked([&] {
        small = heap_allocate(*heap, 64);
        medium = heap_allocate(*heap, 10000);
        done.store(true);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_FALSE(done.load()) << "an allocation finished while every lock was held";
    frames.allocator().unlock_all(previous);
    heap_unlock_all(*heap);
    blocked.join();

    EXPECT_TRUE(done.load());
    ASSERT_NE(small, nullptr);
    ASSERT_NE(medium, nullptr);
    EXPECT_TRUE(heap_check(*heap));
    heap_free(*heap, small);
    heap_free(*heap, medium);
    EXPECT_TRUE(heap_check(*heap));
    for (unsigned cpu = 0; cpu < platform::kMaxCpus; ++cpu) {
        heap_drain_cpu(*heap, cpu);
    }
    EXPECT_TRUE(heap_destroy(*heap));
    EXPECT_EQ(test::report_count(), 0u);
}

} // namespace
} // namespace bedrock
