// SPDX-License-Identifier: MIT
// The randomized differential test: hundreds of thousands of operations over all sizes and
// alignments, checked against HeapModel (heap_model.h), on a region heap and on a heap over
// the page frame allocator; fixed seeds plus BEDROCK_TEST_SEED from the environment. At the end
// everything is freed and every page must be back where it came from.
#include <gtest/gtest.h>

#include <stdint.h>

#include <random>

#include "bedrock/heap.h"
#include "heap_model.h"
#include "heap_test_support.h"

namespace bedrock {
namespace {

constexpr size_t kOperations = 200000;
constexpr size_t kSlots = 3000;

// Mostly small blocks, some of every larger kind, a few beyond a megabyte.
size_t random_size(std::mt19937_64& random) {
    const unsigned bucket = static_cast<unsigned>(random() % 1000);
    if (bucket < 600) {
        return random() % 257;
    }
    if (bucket < 950) {
        return random() % (kMaxSmallBlock + 1);
    }
    if (bucket < 997) {
        return kMaxSmallBlock + random() % (256 << 10);
    }
    return random() % (3 << 20);
}

// 1 .. 1 MiB, small alignments most often.
size_t random_alignment(std::mt19937_64& random) {
    const unsigned bucket = static_cast<unsigned>(random() % 100);
    const unsigned shift =
        bucket < 80 ? static_cast<unsigned>(random() % 13) : static_cast<unsigned>(random() % 21);
    return size_t{1} << shift;
}

// Runs the operation mix; returns the model's error, empty on success.
std::string run_mix(Heap& heap, uint64_t seed, size_t operations, size_t check_every = 5000) {
    std::mt19937_64 random(seed);
    test::HeapModel model(heap, kSlots);
    for (size_t i = 0; i < operations; ++i) {
        const auto op = static_cast<test::HeapOp>(random() % 5);
        const size_t slot = random();
        const size_t size = random_size(random);
        const size_t alignment = random_alignment(random);
        if (!model.apply(op, slot, size, alignment)) {
            return "operation " + std::to_string(i) + ": " + model.error();
        }
        if (i % check_every == 0 && !heap_check(heap)) {
            return "heap_check() fails after operation " + std::to_string(i);
        }
    }
    return model.free_all() ? std::string() : model.error();
}

class HeapRandomTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(HeapRandomTest, RegionHeapMatchesTheModel) {
    const uint64_t seed = test::seed_from_environment(GetParam());
    std::printf("seed %llu (set BEDROCK_TEST_SEED to repeat)\n",
                static_cast<unsigned long long>(seed));
    test::Region region(96 << 20);
    Heap* heap = heap_create_in_region(region.data(), region.size());
    ASSERT_NE(heap, nullptr);
    test::clear_reports();
    EXPECT_EQ(run_mix(*heap, seed, kOperations), "") << "seed " << seed;
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_destroy(*heap));
    set_default_heap(nullptr);
}

TEST_P(HeapRandomTest, FramesHeapReturnsEveryPage) {
    const uint64_t seed = test::seed_from_environment(GetParam());
    std::printf("seed %llu (set BEDROCK_TEST_SEED to repeat)\n",
                static_cast<unsigned long long>(seed));
    test::Frames frames(256 << 20);
    const uint64_t free_before = frames.free_pages();
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    test::clear_reports();
    EXPECT_EQ(run_mix(*heap, seed, kOperations), "") << "seed " << seed;
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_destroy(*heap));
    set_default_heap(nullptr);
    EXPECT_EQ(frames.free_pages(), free_before) << "pages lost";
}

// A small region, so allocations fail often: failures must leave the heap consistent.
TEST_P(HeapRandomTest, ExhaustedRegionHeapStaysConsistent) {
    const uint64_t seed = test::seed_from_environment(GetParam()) + 1;
    std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
    test::Region region(4 << 20);
    Heap* heap = heap_create_in_region(region.data(), region.size());
    ASSERT_NE(heap, nullptr);
    std::mt19937_64 random(seed);
    test::HeapModel model(*heap, kSlots);
    for (size_t i = 0; i < kOperations / 4; ++i) {
        const auto op = static_cast<test::HeapOp>(random() % 4); // no frees: fill up
        ASSERT_TRUE(model.apply(op, random(), random_size(random), random_alignment(random)))
            << model.error();
    }
    EXPECT_GT(model.failed_allocations(), 0u);
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(model.free_all()) << model.error();
    EXPECT_TRUE(heap_destroy(*heap));
    set_default_heap(nullptr);
}

// As o1heap's tests do: the invariants hold around every single operation.
TEST_P(HeapRandomTest, EveryOperationKeepsTheInvariants) {
    const uint64_t seed = test::seed_from_environment(GetParam());
    test::Region region(4 << 20);
    Heap* region_heap = heap_create_in_region(region.data(), region.size());
    ASSERT_NE(region_heap, nullptr);
    EXPECT_EQ(run_mix(*region_heap, seed, 4000, 1), "") << "seed " << seed;
    EXPECT_TRUE(heap_destroy(*region_heap));
    test::Frames frames(64 << 20);
    Heap* frames_heap = heap_create(frames.allocator());
    ASSERT_NE(frames_heap, nullptr);
    EXPECT_EQ(run_mix(*frames_heap, seed, 4000, 1), "") << "seed " << seed;
    EXPECT_TRUE(heap_destroy(*frames_heap));
    // Free pages told unused at every free (the test platform overwrites them): nothing live,
    // no free block's links.
    Heap* telling_heap = heap_create(frames.allocator());
    ASSERT_NE(telling_heap, nullptr);
    ASSERT_TRUE(heap_set_unused_interval(*telling_heap, 1));
    EXPECT_EQ(run_mix(*telling_heap, seed, 4000, 1), "") << "seed " << seed;
    EXPECT_TRUE(heap_destroy(*telling_heap));
    EXPECT_TRUE(frames.allocator().check().ok);
}

INSTANTIATE_TEST_SUITE_P(Seeds, HeapRandomTest, ::testing::Values(1, 2, 0x5eed));

} // namespace
} // namespace bedrock
