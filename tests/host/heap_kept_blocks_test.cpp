// SPDX-License-Identifier: MIT
// Medium blocks kept for reuse (heap/arenas.h): a freed medium block of up to 16 KiB waits in
// its list's slot for the next malloc of that list. It is free to every caller: not counted live,
// a second free of it is a double free, its size is no one's, no heap is made in it, and it goes
// back to the fit when memory is short or the heap is trimmed. A write past the end of the block
// before it, while it waits, gets its report and nothing placed over it.
#include <gtest/gtest.h>

#include <stdint.h>
#include <string.h>

#include <vector>

#include "bedrock/heap.h"
#include "heap/heap_state.h"
#include "heap/segregated_fit.h"
#include "heap_test_support.h"

namespace bedrock {
namespace {

using heap::Arenas;
using heap::BlockUse;
using heap::SegregatedFit;

class KeptBlockTest : public ::testing::TestWithParam<bool> {
protected:
    void SetUp() override {
        ASSERT_TRUE(either.frames.initialized());
        ASSERT_NE(either.heap, nullptr);
        test::clear_reports();
    }
    static void expect_one_report(ErrorKind kind, const void* at, const char* what) {
        ASSERT_EQ(test::report_count(), 1u) << what;
        EXPECT_EQ(test::report(0).kind, kind) << what << ": " << test::report(0).detail;
        EXPECT_EQ(test::report(0).address, reinterpret_cast<uintptr_t>(at)) << what;
        test::clear_reports();
    }

    test::EitherHeap either{GetParam()};
    Heap& heap = *either.heap;
};

TEST_P(KeptBlockTest, TheNextMallocOfItsListTakesItAndItIsNotLive) {
    auto* block = static_cast<unsigned char*>(heap_allocate(heap, 4096));
    ASSERT_NE(block, nullptr);
    heap_free(heap, block);
    EXPECT_EQ(SegregatedFit::use_of(block), BlockUse::Medium) << "kept as it was";
    HeapStatistics statistics = heap_statistics(heap);
    EXPECT_EQ(statistics.medium_blocks, 0u);
    EXPECT_EQ(statistics.medium_bytes, 0u);
    EXPECT_TRUE(heap_check(heap));
    // A request of the same list that the block holds gets it (4088 bytes round to 4096); one
    // of another list does not.
    void* other_list = heap_allocate(heap, 4000);
    EXPECT_NE(other_list, block);
    EXPECT_EQ(heap_allocate(heap, 4088), block);
    EXPECT_EQ(heap_usable_size(heap, block), 4096u);
    statistics = heap_statistics(heap);
    EXPECT_EQ(statistics.medium_blocks, 2u);
    EXPECT_TRUE(heap_check(heap));
    heap_free(heap, block);
    heap_free(heap, other_list);
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_check(heap));
    EXPECT_TRUE(heap_destroy(heap)) << "kept blocks are not live";
}

TEST_P(KeptBlockTest, ABlockLargerThanTheSlotsTakeGoesToTheFit) {
    auto* block = static_cast<unsigned char*>(heap_allocate(heap, Arenas::kMaxKeptUsable + 16));
    ASSERT_NE(block, nullptr);
    heap_free(heap, block);
    EXPECT_EQ(SegregatedFit::use_of(block), BlockUse::Free);
    EXPECT_TRUE(heap_check(heap));
    EXPECT_TRUE(heap_destroy(heap));
}

// Each slot keeps one block: a second block of the same list, freed while the first waits, goes
// to the fit.
TEST_P(KeptBlockTest, OneBlockPerSlot) {
    auto* first = static_cast<unsigned char*>(heap_allocate(heap, 5000));
    auto* second = static_cast<unsigned char*>(heap_allocate(heap, 5000));
    ASSERT_TRUE(first != nullptr && second != nullptr);
    heap_free(heap, first);
    heap_free(heap, second);
    EXPECT_EQ(SegregatedFit::use_of(first), BlockUse::Medium);
    EXPECT_EQ(SegregatedFit::use_of(second), BlockUse::Free);
    EXPECT_TRUE(heap_check(heap));
    EXPECT_TRUE(heap_destroy(heap));
}

TEST_P(KeptBlockTest, ASecondFreeIsADoubleFreeAndItIsHandedOutOnce) {
    auto* block = static_cast<unsigned char*>(heap_allocate(heap, 8000));
    ASSERT_NE(block, nullptr);
    heap_free(heap, block);
    heap_free(heap, block);
    expect_one_report(ErrorKind::DoubleFree, block, "the second free");
    EXPECT_TRUE(heap_check(heap));
    void* again = heap_allocate(heap, 8000);
    void* next = heap_allocate(heap, 8000);
    EXPECT_EQ(again, block);
    EXPECT_NE(next, block) << "handed out twice";
    heap_free(heap, again);
    heap_free(heap, next);
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_check(heap));
    EXPECT_TRUE(heap_destroy(heap));
}

// Its size belongs to no one: malloc_usable_size() and realloc() of it are reported, and it
// stays kept.
TEST_P(KeptBlockTest, ItsSizeAndReallocAreReportedAsFree) {
    auto* block = static_cast<unsigned char*>(heap_allocate(heap, 8000));
    ASSERT_NE(block, nullptr);
    heap_free(heap, block);
    EXPECT_EQ(heap_usable_size(heap, block), 0u);
    expect_one_report(ErrorKind::DoubleFree, block, "its usable size");
    EXPECT_EQ(heap_reallocate(heap, block, 20000), nullptr);
    expect_one_report(ErrorKind::DoubleFree, block, "its realloc");
    EXPECT_EQ(heap_reallocate(heap, block, 100), nullptr);
    expect_one_report(ErrorKind::DoubleFree, block, "its realloc to less");
    EXPECT_TRUE(heap_check(heap));
    EXPECT_EQ(heap_allocate(heap, 8000), block);
    heap_free(heap, block);
    EXPECT_TRUE(heap_destroy(heap));
}

// A write of 16 bytes past the end of the block before it lands on its header while it waits.
// The malloc that takes it again trusts only the size it was kept with; its next free finds the
// header overwritten, as a live block's: one report at the block, which is taken out of use, no
// block is placed over it, and heap_check() holds. So does heap_trim() while it is kept.
class KeptHeaderTest : public ::testing::TestWithParam<std::tuple<bool, bool, uint8_t>> {};

TEST_P(KeptHeaderTest, OverwrittenWhileKeptIsReportedAndNeverFollowed) {
    const auto [over_frames, trim, fill] = GetParam();
    test::EitherHeap either(over_frames);
    ASSERT_TRUE(either.frames.initialized());
    ASSERT_NE(either.heap, nullptr);
    Heap& heap = *either.heap;
    test::clear_reports();
    auto* before = static_cast<unsigned char*>(heap_allocate(heap, 5000));
    auto* kept = static_cast<unsigned char*>(heap_allocate(heap, 5000));
    ASSERT_TRUE(before != nullptr && kept != nullptr);
    const size_t usable = heap_usable_size(heap, before);
    ASSERT_EQ(before + usable + 16, kept) << "adjacent blocks of a fresh arena";
    heap_free(heap, kept);
    memset(before + usable, fill, 16);
    if (trim) {
        heap_trim(heap);
    } else {
        ASSERT_EQ(heap_allocate(heap, 5000), kept);
        memset(kept, 0x5a, usable);
        EXPECT_EQ(test::report_count(), 0u);
        heap_free(heap, kept);
    }
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::CorruptMetadata) << test::report(0).detail;
    EXPECT_EQ(test::report(0).address, reinterpret_cast<uintptr_t>(kept));
    test::clear_reports();
    EXPECT_TRUE(heap_check(heap));
    std::vector<void*> blocks;
    for (size_t i = 0; i < 64; ++i) {
        const size_t size = 4000 + 500 * i;
        auto* block = static_cast<unsigned char*>(heap_allocate(heap, size));
        ASSERT_NE(block, nullptr);
        EXPECT_TRUE(block + size <= kept - 16 || block >= kept + usable)
            << "a block over the damaged one";
        blocks.push_back(block);
    }
    for (void* block : blocks) {
        heap_free(heap, block);
    }
    heap_free(heap, before);
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_check(heap));
    EXPECT_TRUE(heap_destroy(heap));
}

INSTANTIATE_TEST_SUITE_P(Fills, KeptHeaderTest,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool(),
                                            ::testing::Values(uint8_t{0x00}, uint8_t{0x42},
                                                              uint8_t{0xff})));

// A region heap's malloc that finds no room gets the kept blocks back first: here a kept block
// holds half the region, and a block of another list needs all of it.
TEST(KeptBlockMemoryTest, AMallocShortOfMemoryGetsTheKeptBlocksBack) {
    test::Region region(32 << 10);
    Heap* heap = heap_create_in_region(region.data(), region.size());
    ASSERT_NE(heap, nullptr);
    test::clear_reports();
    // The largest block the region holds, then half of it, kept.
    size_t largest = region.size();
    void* whole = nullptr;
    while (largest > 0 && (whole = heap_allocate(*heap, largest)) == nullptr) {
        largest -= 256;
    }
    ASSERT_NE(whole, nullptr);
    heap_free(*heap, whole);
    auto* half = static_cast<unsigned char*>(heap_allocate(*heap, largest / 2));
    ASSERT_NE(half, nullptr);
    heap_free(*heap, half);
    ASSERT_EQ(SegregatedFit::use_of(half), BlockUse::Medium) << "not kept";
    const uint64_t reclaims = heap_statistics(*heap).reclaims;
    whole = heap_allocate(*heap, largest);
    EXPECT_NE(whole, nullptr);
    EXPECT_EQ(heap_statistics(*heap).reclaims, reclaims + 1);
    heap_free(*heap, whole);
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
}

// heap_trim() gives them back to the fit, where they merge: the region's arena is one free
// block again, and a heap over a page frame allocator gives its arena back.
TEST_P(KeptBlockTest, TrimGivesThemBack) {
    const uint64_t pages_at_start = heap_statistics(heap).pages_held;
    std::vector<unsigned char*> blocks;
    size_t total = 0;
    for (size_t size = 3008; size <= 60000; size = size * 3 / 2 / 16 * 16) {
        blocks.push_back(static_cast<unsigned char*>(heap_allocate(heap, size)));
        ASSERT_NE(blocks.back(), nullptr);
        total += size + 16;
    }
    for (unsigned char* block : blocks) {
        heap_free(heap, block);
    }
    size_t kept = 0;
    for (const unsigned char* block : blocks) {
        kept += SegregatedFit::use_of(block) == BlockUse::Medium ? 1 : 0;
    }
    EXPECT_GE(kept, 2u);
    EXPECT_LE(kept, Arenas::kKeptSlots);
    heap_trim(heap);
    EXPECT_TRUE(heap_check(heap));
    if (GetParam()) {
        EXPECT_EQ(heap_statistics(heap).pages_held, pages_at_start) << "the arena stays";
    } else {
        void* merged = heap_allocate(heap, total);
        EXPECT_EQ(merged, blocks.front()) << "the blocks were not merged";
        heap_free(heap, merged);
    }
    EXPECT_TRUE(heap_destroy(heap));
}

// No region heap is made in a kept block: it is no one's block (in a live one it may be).
TEST(KeptBlockMemoryTest, NoRegionHeapIsMadeInAKeptBlock) {
    test::Region region(1 << 20);
    Heap* outer = heap_create_in_region(region.data(), region.size());
    ASSERT_NE(outer, nullptr);
    test::clear_reports();
    auto* block = static_cast<unsigned char*>(heap_allocate(*outer, 12000));
    ASSERT_NE(block, nullptr);
    Heap* inner = heap_create_in_region(block, 12000);
    ASSERT_NE(inner, nullptr) << "inside a live block";
    ASSERT_TRUE(heap_destroy(*inner));
    heap_free(*outer, block);
    ASSERT_EQ(SegregatedFit::use_of(block), BlockUse::Medium) << "not kept";
    EXPECT_EQ(heap_create_in_region(block, 12000), nullptr);
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_check(*outer));
    EXPECT_TRUE(heap_destroy(*outer));
}

INSTANTIATE_TEST_SUITE_P(BothHeaps, KeptBlockTest, ::testing::Bool());

} // namespace
} // namespace bedrock
