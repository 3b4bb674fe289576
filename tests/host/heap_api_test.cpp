// SPDX-License-Identifier: MIT
// The heap's API edges (bedrock/heap.h, bedrock/malloc.h): every documented edge of malloc,
// free, calloc, realloc, the aligned allocators and malloc_usable_size; misuse reports; wrong
// heap detection; the slab reserve policy; statistics and the report.
#include <gtest/gtest.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "bedrock/bedrock.h"
#include "bedrock/heap.h"
#include "bedrock/malloc.h"
#include "bedrock/platform.h"
#include "heap/cpu_cache.h"
#include "heap_test_support.h"
#include "max_cpus_support.h"

namespace bedrock {
namespace {

bool is_aligned(const void* block, size_t alignment) {
    return (reinterpret_cast<uintptr_t>(block) & (alignment - 1)) == 0;
}

// Every page the page frame allocator of `frames` can still give, one at a time (its reclaim
// hooks included), for the caller to give back.
std::vector<PhysAddr> take_every_page(test::Frames& frames) {
    std::vector<PhysAddr> pages;
    for (PhysAddr page; (page = frames.allocator().allocate(0)) != kNoPage;) {
        pages.push_back(page);
    }
    return pages;
}

// A region heap of `bytes` set as the default heap for the C API; everything is checked and
// given back at the end of each test.
class HeapApiTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_region = test::Region(16 << 20);
        m_heap = heap_create_in_region(m_region.data(), m_region.size());
        ASSERT_NE(m_heap, nullptr);
        set_default_heap(m_heap);
        test::clear_reports();
    }
    void TearDown() override {
        set_default_heap(nullptr);
        EXPECT_TRUE(heap_check(*m_heap));
        EXPECT_TRUE(heap_destroy(*m_heap));
    }

    test::Region m_region;
    Heap* m_heap = nullptr;
};

TEST_F(HeapApiTest, MallocZeroGivesUniqueFreeableBlocks) {
    void* first = bedrock_malloc(0);
    void* second = bedrock_malloc(0);
    ASSERT_NE(first, nullptr);
    ASSERT_NE(second, nullptr);
    EXPECT_NE(first, second);
    EXPECT_EQ(bedrock_malloc_usable_size(first), kHeapMinAlignment);
    bedrock_free(first);
    bedrock_free(second);
    EXPECT_EQ(test::report_count(), 0u);
}

TEST_F(HeapApiTest, FreeNullDoesNothing) {
    const HeapStatistics before = heap_statistics(*m_heap);
    bedrock_free(nullptr);
    heap_free(*m_heap, nullptr);
    EXPECT_EQ(heap_statistics(*m_heap).blocks_in_use, before.blocks_in_use);
    EXPECT_EQ(test::report_count(), 0u);
}

TEST_F(HeapApiTest, UsableSizeCoversEverySmallSizeWithBoundedWaste) {
    EXPECT_EQ(bedrock_malloc_usable_size(nullptr), 0u);
    for (size_t size = 1; size <= 3 * kMaxSmallBlock; size += (size < 1024 ? 1 : 61)) {
        void* block = bedrock_malloc(size);
        ASSERT_NE(block, nullptr) << size;
        const size_t usable = bedrock_malloc_usable_size(block);
        EXPECT_GE(usable, size);
        EXPECT_TRUE(is_aligned(block, kHeapMinAlignment));
        if (size > 128 && size <= kMaxSmallBlock) {
            EXPECT_LT(usable - size, usable / 5) << size; // size_class.h's bound
        } else if (size > kMaxSmallBlock) {
            EXPECT_LT(usable - size, 48u) << size; // a medium block: 16-byte steps, no split
                                                   // remainder below a minimum block
        }
        bedrock_free(block);
    }
}

TEST_F(HeapApiTest, CallocZeroesReusedMemoryAndRejectsOverflow) {
    for (size_t size : {size_t{24}, size_t{1000}, size_t{5000}, size_t{100000}}) {
        void* dirty = bedrock_malloc(size);
        ASSERT_NE(dirty, nullptr);
        memset(dirty, 0xA5, size);
        bedrock_free(dirty);
        auto* zeroed = static_cast<unsigned char*>(bedrock_calloc(size / 8, 8));
        ASSERT_NE(zeroed, nullptr);
        EXPECT_EQ(zeroed, dirty) << "the test needs the freed block back to prove zeroing";
        for (size_t i = 0; i < size / 8 * 8; ++i) {
            ASSERT_EQ(zeroed[i], 0) << "byte " << i << " of " << size;
        }
        bedrock_free(zeroed);
    }
    EXPECT_EQ(bedrock_calloc(SIZE_MAX / 2, 3), nullptr);
    EXPECT_EQ(bedrock_calloc(size_t{1} << 32, size_t{1} << 32), nullptr);
    void* empty = bedrock_calloc(0, 16);
    EXPECT_NE(empty, nullptr);
    bedrock_free(empty);
}

TEST_F(HeapApiTest, ReallocEdges) {
    // NULL behaves as malloc.
    auto* block = static_cast<unsigned char*>(bedrock_realloc(nullptr, 100));
    ASSERT_NE(block, nullptr);
    for (int i = 0; i < 100; ++i) {
        block[i] = static_cast<unsigned char>(i);
    }
    // In place while it fits and at least half stays used.
    EXPECT_EQ(bedrock_realloc(block, 110), block);
    EXPECT_EQ(bedrock_realloc(block, 70), block);
    // Growth moves and keeps the contents.
    auto* grown = static_cast<unsigned char*>(bedrock_realloc(block, 50000));
    ASSERT_NE(grown, nullptr);
    for (int i = 0; i < 70; ++i) {
        ASSERT_EQ(grown[i], i);
    }
    // Shrinking far below half moves to a smaller block, keeping the prefix.
    auto* shrunk = static_cast<unsigned char*>(bedrock_realloc(grown, 10));
    ASSERT_NE(shrunk, nullptr);
    EXPECT_NE(shrunk, grown);
    EXPECT_LE(bedrock_malloc_usable_size(shrunk), 16u);
    for (int i = 0; i < 10; ++i) {
        ASSERT_EQ(shrunk[i], i);
    }
    // Failure returns NULL and leaves the block intact.
    EXPECT_EQ(bedrock_realloc(shrunk, size_t{1} << 40), nullptr);
    for (int i = 0; i < 10; ++i) {
        ASSERT_EQ(shrunk[i], i);
    }
    // Size 0 gives a minimum block; the old one is freed or reused.
    void* minimum = bedrock_realloc(shrunk, 0);
    ASSERT_NE(minimum, nullptr);
    EXPECT_EQ(bedrock_malloc_usable_size(minimum), kHeapMinAlignment);
    void* large = bedrock_malloc(100000);
    ASSERT_NE(large, nullptr);
    void* from_large = bedrock_realloc(large, 0);
    ASSERT_NE(from_large, nullptr);
    EXPECT_NE(from_large, large);
    bedrock_free(minimum);
    bedrock_free(from_large);
    EXPECT_EQ(heap_statistics(*m_heap).blocks_in_use, 0u);
    EXPECT_EQ(test::report_count(), 0u);
}

TEST_F(HeapApiTest, AlignedAllocatorsHonourEveryPowerOfTwo) {
    for (size_t alignment = 1; alignment <= (size_t{1} << 20); alignment <<= 1) {
        for (size_t size : {size_t{0}, size_t{1}, size_t{100}, size_t{5000}, size_t{70000}}) {
            void* block = bedrock_memalign(alignment, size);
            ASSERT_NE(block, nullptr) << alignment << " " << size;
            EXPECT_TRUE(is_aligned(block, alignment)) << alignment << " " << size;
            EXPECT_GE(bedrock_malloc_usable_size(block), size);
            memset(block, 0x5A, size);
            void* other = bedrock_aligned_alloc(alignment, size);
            ASSERT_NE(other, nullptr);
            EXPECT_TRUE(is_aligned(other, alignment));
            void* posix = nullptr;
            EXPECT_EQ(bedrock_posix_memalign(
                          &posix, alignment < sizeof(void*) ? sizeof(void*) : alignment, size),
                      0);
            EXPECT_TRUE(is_aligned(posix, alignment));
            bedrock_free(block);
            bedrock_free(other);
            bedrock_free(posix);
        }
    }
    EXPECT_EQ(bedrock_memalign(48, 10), nullptr);
    EXPECT_EQ(bedrock_aligned_alloc(3, 10), nullptr);
    EXPECT_EQ(heap_statistics(*m_heap).blocks_in_use, 0u);
}

TEST_F(HeapApiTest, PosixMemalignResults) {
    void* untouched = &untouched;
    void* out = untouched;
    for (size_t bad : {size_t{0}, size_t{1}, size_t{4}, size_t{12}, size_t{24}, size_t{48}}) {
        EXPECT_EQ(bedrock_posix_memalign(&out, bad, 16), BEDROCK_EINVAL) << bad;
        EXPECT_EQ(out, untouched);
    }
    EXPECT_EQ(bedrock_posix_memalign(&out, 64, size_t{1} << 40), BEDROCK_ENOMEM);
    EXPECT_EQ(out, untouched);
    ASSERT_EQ(bedrock_posix_memalign(&out, sizeof(void*), 0), 0);
    EXPECT_NE(out, untouched);
    bedrock_free(out);
}

TEST_F(HeapApiTest, ReallocGrowsAMediumBlockInPlaceWhenTheNextBlockIsFree) {
    auto* block = static_cast<unsigned char*>(bedrock_malloc(5000));
    ASSERT_NE(block, nullptr);
    memset(block, 0x5a, 5000);
    auto* grown = static_cast<unsigned char*>(bedrock_realloc(block, 50000));
    EXPECT_EQ(grown, block) << "the rest of the arena follows it";
    EXPECT_GE(bedrock_malloc_usable_size(grown), 50000u);
    for (size_t i = 0; i < 5000; ++i) {
        ASSERT_EQ(grown[i], 0x5a) << i;
    }
    EXPECT_EQ(heap_statistics(*m_heap).bytes_in_use, bedrock_malloc_usable_size(grown));
    void* blocker = bedrock_malloc(5000); // right after it: the next growth must move
    auto* moved = static_cast<unsigned char*>(bedrock_realloc(grown, 100000));
    ASSERT_NE(moved, nullptr);
    EXPECT_NE(moved, grown);
    EXPECT_EQ(moved[4999], 0x5a);
    EXPECT_TRUE(heap_check(*m_heap));
    bedrock_free(moved);
    bedrock_free(blocker);
    EXPECT_EQ(test::report_count(), 0u);
}

// A size within a granule of SIZE_MAX rounds to 0: growing in place must refuse it, not take
// it for a size the block already holds.
TEST_F(HeapApiTest, ReallocOfAMediumBlockRefusesSizesNearSizeMax) {
    for (size_t below = 0; below < 2 * kHeapMinAlignment; ++below) {
        auto* block = static_cast<unsigned char*>(bedrock_malloc(5000));
        ASSERT_NE(block, nullptr);
        memset(block, 0x5a, 5000);
        EXPECT_EQ(bedrock_realloc(block, SIZE_MAX - below), nullptr) << below;
        EXPECT_EQ(bedrock_malloc_usable_size(block), 5008u);
        EXPECT_EQ(block[4999], 0x5a);
        bedrock_free(block);
    }
    EXPECT_EQ(test::report_count(), 0u);
}

// A medium block freed twice: the report names the block and its size, as for small and large
// blocks (it named neither).
TEST_F(HeapApiTest, AMediumDoubleFreeReportsTheBlock) {
    void* before = bedrock_malloc(5000);
    void* block = bedrock_malloc(5000);
    void* after = bedrock_malloc(5000); // taken neighbours: the free block is the block alone
    ASSERT_NE(block, nullptr);
    bedrock_free(block);
    bedrock_free(block);
    ASSERT_EQ(test::report_count(), 1u);
    const ErrorReport& report = test::report(0);
    EXPECT_EQ(report.kind, ErrorKind::DoubleFree);
    EXPECT_EQ(report.block, reinterpret_cast<uintptr_t>(block));
    EXPECT_EQ(report.size, 5008u);
    EXPECT_TRUE(heap_check(*m_heap));
    bedrock_free(before);
    bedrock_free(after);
}

TEST_F(HeapApiTest, VallocAndPvalloc) {
    void* v = bedrock_valloc(100);
    ASSERT_NE(v, nullptr);
    EXPECT_TRUE(is_aligned(v, 4096));
    void* p = bedrock_pvalloc(4097);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(is_aligned(p, 4096));
    EXPECT_GE(bedrock_malloc_usable_size(p), 8192u);
    void* zero = bedrock_pvalloc(0);
    ASSERT_NE(zero, nullptr);
    EXPECT_GE(bedrock_malloc_usable_size(zero), 4096u);
    EXPECT_EQ(bedrock_pvalloc(SIZE_MAX - 10), nullptr);
    bedrock_free(v);
    bedrock_free(p);
    bedrock_free(zero);
}

// bytes_requested counts each allocation's size; a realloc counts only when it moves the block,
// at its size with the room it adds to grow (a quarter), as heap.h says.
TEST_F(HeapApiTest, BytesRequestedCountsAReallocOnlyWhenItMoves) {
    const uint64_t before = heap_statistics(*m_heap).bytes_requested;
    void* block = heap_allocate(*m_heap, 3000);
    ASSERT_NE(block, nullptr);
    EXPECT_EQ(heap_statistics(*m_heap).bytes_requested, before + 3000);
    ASSERT_EQ(heap_reallocate(*m_heap, block, 2000), block) << "shrinks in place";
    EXPECT_EQ(heap_statistics(*m_heap).bytes_requested, before + 3000);
    void* keep = heap_allocate(*m_heap, 100); // after it: the growth below moves
    void* moved = heap_reallocate(*m_heap, block, 40000);
    ASSERT_NE(moved, nullptr);
    EXPECT_EQ(heap_statistics(*m_heap).bytes_requested, before + 3000 + 100 + 40000 + 10000);
    heap_free(*m_heap, moved);
    heap_free(*m_heap, keep);
}

TEST_F(HeapApiTest, WithoutDefaultHeapEverythingFailsCleanly) {
    set_default_heap(nullptr);
    EXPECT_EQ(bedrock_malloc(10), nullptr);
    EXPECT_EQ(bedrock_calloc(1, 10), nullptr);
    EXPECT_EQ(bedrock_realloc(nullptr, 10), nullptr);
    void* out = nullptr;
    EXPECT_EQ(bedrock_posix_memalign(&out, 64, 10), BEDROCK_ENOMEM);
    EXPECT_EQ(bedrock_posix_memalign(&out, 3, 10), BEDROCK_EINVAL) << "refused anyway";
    EXPECT_EQ(out, nullptr);
    bedrock_free(nullptr);
}

TEST_F(HeapApiTest, DoubleFreeAndInteriorPointersAreReportedAndIgnored) {
    auto* small = static_cast<unsigned char*>(bedrock_malloc(64));
    auto* large = static_cast<unsigned char*>(bedrock_malloc(100000));
    void* keep = bedrock_malloc(64); // keeps the slab alive after `small` is freed
    ASSERT_TRUE(small && large && keep);
    bedrock_free(small + 16);
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::InteriorPointer);
    EXPECT_EQ(test::report(0).address, reinterpret_cast<uintptr_t>(small + 16));
    EXPECT_EQ(test::report(0).block, reinterpret_cast<uintptr_t>(small));
    EXPECT_EQ(test::report(0).offset, 16u);
    bedrock_free(large + 4096);
    ASSERT_EQ(test::report_count(), 2u);
    EXPECT_EQ(test::report(1).kind, ErrorKind::InteriorPointer);
    EXPECT_EQ(test::report(1).block, reinterpret_cast<uintptr_t>(large));
    bedrock_free(small);
    bedrock_free(small);
    ASSERT_EQ(test::report_count(), 3u);
    EXPECT_EQ(test::report(2).kind, ErrorKind::DoubleFree);
    EXPECT_STREQ(test::report(2).component, "heap");
    EXPECT_EQ(bedrock_realloc(small + 1, 10), nullptr);
    EXPECT_EQ(test::report_count(), 4u);
    bedrock_free(large);
    bedrock_free(keep);
    EXPECT_EQ(heap_statistics(*m_heap).blocks_in_use, 0u);
}

// A second free after a write after free erased the first free's mark caches the block twice
// (README: double frees); heap_check() finds that (it held), and a drain then gives the block
// back once and reports the second as the double free it was.
TEST_F(HeapApiTest, ABlockCachedTwiceFailsTheCheck) {
    void* keep = heap_allocate(*m_heap, 64); // keeps the slab alive
    auto* block = static_cast<uintptr_t*>(heap_allocate(*m_heap, 64));
    ASSERT_TRUE(keep != nullptr && block != nullptr);
    heap_free(*m_heap, block);
    block[1] = 0; // the write after free, over the free mark
    heap_free(*m_heap, block);
    EXPECT_EQ(test::report_count(), 0u) << "no mark: told from a live block's free by none";
    EXPECT_FALSE(heap_check(*m_heap));
    ASSERT_GE(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::CorruptMetadata) << test::report(0).detail;
    if constexpr (kHeapChecksCompiled) {
        EXPECT_NE(test::report(0).call_site, nullptr) << "heap_check()'s report names its caller";
    }
    test::clear_reports();
    heap_drain_cpu(*m_heap, platform::current_cpu());
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::DoubleFree) << test::report(0).detail;
    test::clear_reports();
    heap_free(*m_heap, keep);
    EXPECT_EQ(heap_statistics(*m_heap).blocks_in_use, 0u);
}

TEST_F(HeapApiTest, FreeingIntoTheWrongHeapIsReportedAndChangesNothing) {
    test::Region other_region(2 << 20);
    Heap* other = heap_create_in_region(other_region.data(), other_region.size());
    ASSERT_NE(other, nullptr);
    for (size_t size : {size_t{32}, size_t{50000}}) {
        test::clear_reports();
        void* block = heap_allocate(*other, size);
        ASSERT_NE(block, nullptr);
        bedrock_free(block); // the default heap is m_heap
        ASSERT_EQ(test::report_count(), 1u);
        EXPECT_EQ(test::report(0).kind, ErrorKind::ForeignHeap);
        EXPECT_EQ(heap_usable_size(*other, block) >= size, true);
        EXPECT_EQ(heap_statistics(*other).blocks_in_use, 1u);
        heap_free(*other, block);
    }
    EXPECT_TRUE(heap_check(*other));
    EXPECT_TRUE(heap_destroy(*other));
}

TEST_F(HeapApiTest, SlabBoundaryLoopDoesNotThrashAndEmptySlabsGoBack) {
    // Fill exactly one slab of the largest class, then malloc/free across its boundary.
    constexpr unsigned kClass = kHeapSizeClassCount - 1;
    std::vector<void*> blocks;
    blocks.push_back(bedrock_malloc(kMaxSmallBlock));
    const uint32_t per_slab = heap_statistics(*m_heap).classes[kClass].blocks_per_slab;
    ASSERT_EQ(heap_statistics(*m_heap).classes[kClass].block_size, kMaxSmallBlock);
    while (blocks.size() < per_slab) {
        blocks.push_back(bedrock_malloc(kMaxSmallBlock));
    }
    EXPECT_EQ(heap_statistics(*m_heap).classes[kClass].slabs, 1u);
    for (int i = 0; i < 1000; ++i) {
        void* block = bedrock_malloc(kMaxSmallBlock);
        ASSERT_NE(block, nullptr);
        bedrock_free(block);
    }
    EXPECT_EQ(heap_statistics(*m_heap).classes[kClass].slabs, 2u); // the full one and one more
    // Many slabs, all freed: only the reserve and one empty partial slab stay; trim gives them
    // back too.
    for (int i = 0; i < 5 * static_cast<int>(per_slab); ++i) {
        blocks.push_back(bedrock_malloc(kMaxSmallBlock - 100));
    }
    for (void* block : blocks) {
        bedrock_free(block);
    }
    // The blocks this CPU's cache keeps pin a slab each at most; once it gives them back, only
    // the reserve and one empty partial slab stay.
    EXPECT_LE(heap_statistics(*m_heap).classes[kClass].slabs,
              2u + heap::cpu_cache_capacity(kClass));
    heap_drain_cpu(*m_heap, bedrock::platform::current_cpu());
    EXPECT_LE(heap_statistics(*m_heap).classes[kClass].slabs, 2u);
    heap_trim(*m_heap);
    EXPECT_EQ(heap_statistics(*m_heap).classes[kClass].slabs, 0u);
    // Everything merged back: one block can take the whole arena again.
    void* whole = bedrock_malloc(m_region.size() - m_region.size() / 64); // less the bitmap
    EXPECT_NE(whole, nullptr);
    bedrock_free(whole);
}

// A malloc on a destroyed heap is reported and allocates nothing: it wrote a new CPU cache and
// arena blocks into the region the caller owned again (and over a page frame allocator took
// pages no heap would ever give back). At every check level it was destroyed at: a heap
// destroyed at level report went on serving checked blocks.
TEST(HeapLifecycleTest, AMallocOnADestroyedHeapIsReportedAndWritesNothing) {
    for (const CheckLevel level : {CheckLevel::Off, CheckLevel::Report}) {
        test::Region region(1 << 20);
        Heap* heap = heap_create_in_region(region.data(), region.size());
        ASSERT_NE(heap, nullptr);
        ASSERT_TRUE(heap_set_check_level(*heap, level));
        heap_free(*heap, heap_allocate(*heap, 64));
        ASSERT_TRUE(heap_destroy(*heap));
        const std::vector<unsigned char> before(region.data(), region.data() + region.size());
        test::clear_reports();
        EXPECT_EQ(heap_allocate(*heap, 64), nullptr);
        EXPECT_EQ(heap_allocate(*heap, 5000), nullptr);
        EXPECT_EQ(heap_allocate(*heap, 64, 4096), nullptr);
        ASSERT_EQ(test::report_count(), 3u);
        for (size_t i = 0; i < 3; ++i) {
            EXPECT_EQ(test::report(i).kind, ErrorKind::UseAfterFree);
            EXPECT_EQ(test::report(i).address, reinterpret_cast<uintptr_t>(heap));
        }
        EXPECT_TRUE(std::equal(before.begin(), before.end(), region.data()))
            << "the destroyed heap's memory was written";
        EXPECT_FALSE(heap_check(*heap));
        test::clear_reports();
    }
}

// The report of a malloc on a destroyed heap names the application's call, at every check level
// and for every kind of block: a medium or aligned one named a site inside Bedrock's own entry
// point (its slow path captured its own frame), a small one the caller.
[[gnu::noinline]] void* allocate_from_here(Heap& heap, size_t size, size_t alignment) {
    void* block = heap_allocate(heap, size, alignment);
    asm volatile("" ::: "memory"); // the call stays a call, not a tail call
    return block;
}

TEST(HeapLifecycleTest, AMallocOnADestroyedHeapIsReportedAtItsCaller) {
    const auto here = reinterpret_cast<uintptr_t>(&allocate_from_here);
    for (const CheckLevel level : {CheckLevel::Off, CheckLevel::Report}) {
        test::Region region(1 << 20);
        Heap* heap = heap_create_in_region(region.data(), region.size());
        ASSERT_NE(heap, nullptr);
        ASSERT_TRUE(heap_set_check_level(*heap, level));
        ASSERT_TRUE(heap_destroy(*heap));
        for (const auto& [size, alignment] :
             {std::pair<size_t, size_t>{64, 0}, {5000, 0}, {8, 64}, {2 << 20, 0}}) {
            test::clear_reports();
            EXPECT_EQ(allocate_from_here(*heap, size, alignment), nullptr);
            ASSERT_EQ(test::report_count(), 1u);
            const auto site = reinterpret_cast<uintptr_t>(test::report(0).call_site);
            EXPECT_LT(site - here, 256u) << "size " << size << ", alignment " << alignment;
        }
        test::clear_reports();
    }
}

// heap_check() reports the core invariant it finds broken (corrupt-metadata, naming it), and in
// checked mode still runs checked mode's check, which reports the damage it finds in its own
// headers and red zones.
TEST(HeapCheckTest, ABrokenCoreInvariantIsReportedAndCheckedModeStillNamesTheOverflow) {
    // Damaged heaps cannot be destroyed: their regions stay theirs for the process's life
    // (a live region heap is on the list of region heaps every later heap_create_in_region()
    // reads).
    alignas(64) static unsigned char regions[2][1 << 20];
    for (const CheckLevel level : {CheckLevel::Off, CheckLevel::Report}) {
        unsigned char* region = regions[level == CheckLevel::Off ? 0 : 1];
        Heap* heap = heap_create_in_region(region, sizeof(regions[0]));
        ASSERT_NE(heap, nullptr);
        ASSERT_TRUE(heap_set_check_level(*heap, level));
        auto* first = static_cast<unsigned char*>(heap_allocate(*heap, 5000));
        auto* second = static_cast<unsigned char*>(heap_allocate(*heap, 5000));
        ASSERT_NE(first, nullptr);
        ASSERT_NE(second, nullptr);
        ASSERT_TRUE(heap_check(*heap));
        // An overflow of `first` across everything up to and over `second`'s inline header
        // (the 16 bytes before its block in the arena, checked mode's header before that).
        const size_t reach = static_cast<size_t>(second - first);
        ASSERT_GT(reach, 5000u);
        test::clear_reports();
        memset(first, 0xA5, reach);
        EXPECT_FALSE(heap_check(*heap));
        bool core_named = false;
        bool checked_named = false;
        for (size_t i = 0; i < test::report_count(); ++i) {
            const ErrorReport& report = test::report(i);
            const bool from_checked_mode =
                report.kind == ErrorKind::BufferOverflow ||
                (report.detail != nullptr && strstr(report.detail, "checked-mode") != nullptr);
            checked_named = checked_named || from_checked_mode;
            core_named =
                core_named || (!from_checked_mode && report.kind == ErrorKind::CorruptMetadata &&
                               report.detail != nullptr && report.detail[0] != 0);
        }
        EXPECT_TRUE(core_named) << "level " << static_cast<int>(level);
        EXPECT_EQ(checked_named, level != CheckLevel::Off) << "level " << static_cast<int>(level);
        test::clear_reports();
    }
}

TEST(HeapFramesTest, LargeBlocksAreWholePagesAndReturnThemOnFree) {
    test::Frames frames(64 << 20);
    ASSERT_TRUE(frames.initialized());
    const uint64_t free_at_start = frames.free_pages();
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    const HeapStatistics created = heap_statistics(*heap);
    EXPECT_EQ(created.pages_held, free_at_start - frames.free_pages()); // the state's pages
    void* block = heap_allocate(*heap, 3 << 20);
    ASSERT_NE(block, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(block) % 4096, 0u);
    const HeapStatistics held = heap_statistics(*heap);
    EXPECT_EQ(held.large_blocks, 1u);
    EXPECT_EQ(held.large_pages, (3u << 20) / 4096); // no header page: the tags describe it
    EXPECT_EQ(heap_usable_size(*heap, block), size_t{3} << 20);
    EXPECT_EQ(held.pages_held, created.pages_held + held.large_pages);
    EXPECT_TRUE(heap_check(*heap));
    heap_free(*heap, block);
    EXPECT_EQ(heap_statistics(*heap).pages_held, created.pages_held);
    EXPECT_EQ(heap_statistics(*heap).large_blocks, 0u);
    EXPECT_TRUE(heap_destroy(*heap));
    EXPECT_EQ(frames.free_pages(), free_at_start);
    EXPECT_TRUE(frames.allocator().check().ok);
}

// A block grown a page at a time, with a block allocated after each growth: each move gives a
// quarter more room than asked, so the block moves O(log) times, not at almost every step.
// Returns how many times it moved; the contents are checked throughout.
size_t moves_growing_page_by_page(Heap& heap, size_t from, size_t to, size_t blocker_size) {
    std::vector<void*> blockers;
    auto* block = static_cast<unsigned char*>(heap_allocate(heap, from));
    EXPECT_NE(block, nullptr);
    memset(block, 0x3c, from);
    size_t moves = 0;
    for (size_t size = from + 4096; size <= to && block != nullptr; size += 4096) {
        auto* grown = static_cast<unsigned char*>(heap_reallocate(heap, block, size));
        EXPECT_NE(grown, nullptr) << size;
        if (grown == nullptr) {
            break;
        }
        moves += grown != block ? 1 : 0;
        EXPECT_GE(heap_usable_size(heap, grown), size);
        EXPECT_EQ(grown[size - 4097], 0x3c) << size;
        memset(grown + size - 4096, 0x3c, 4096);
        block = grown;
        blockers.push_back(heap_allocate(heap, blocker_size));
    }
    heap_free(heap, block);
    for (void* blocker : blockers) {
        heap_free(heap, blocker);
    }
    return moves;
}

TEST(HeapFramesTest, ReallocGrowingALargeBlockMovesItLogarithmicallyOften) {
    test::Frames frames(256 << 20);
    ASSERT_TRUE(frames.initialized());
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    // 1 MiB to 64 MiB in 16,128 steps: a large block (a page run) grows in place while the
    // pages after it are free, and moves with a quarter more room when they are not: about 20
    // moves at most.
    const size_t moves = moves_growing_page_by_page(*heap, 1 << 20, 64 << 20, 64);
    EXPECT_LE(moves, 40u) << "16,127 when a moved block got exactly the size asked for";
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
    EXPECT_TRUE(frames.allocator().check().ok);
}

// realloc() grows a large block (a page run) in place into the free pages right after it: the
// same pointer, the contents kept, the usable size and the heap's pages grown; a page in use
// right after it makes it move instead (a quarter more room). heap_check() and the page frame
// allocator's check() hold throughout, and every page comes back.
TEST(HeapFramesTest, ReallocGrowsALargeBlockInPlaceIntoFreePages) {
    test::Frames frames(256 << 20);
    ASSERT_TRUE(frames.initialized());
    const uint64_t free_at_start = frames.free_pages();
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    size_t size = size_t{2} << 20;
    auto* block = static_cast<unsigned char*>(heap_allocate(*heap, size));
    ASSERT_NE(block, nullptr);
    memset(block, 0x5a, size);
    const uint64_t pages_before = heap_statistics(*heap).pages_held;
    for (int step = 0; step < 8; ++step) {
        const size_t grown_size = size + 300000;
        auto* grown = static_cast<unsigned char*>(heap_reallocate(*heap, block, grown_size));
        ASSERT_EQ(grown, block) << "step " << step;
        EXPECT_EQ(heap_usable_size(*heap, block), align_up(grown_size, size_t{kPageSize}));
        EXPECT_EQ(block[size - 1], 0x5a);
        memset(block + size, 0x5a, grown_size - size);
        size = grown_size;
        EXPECT_TRUE(heap_check(*heap));
        EXPECT_TRUE(frames.allocator().check().ok) << frames.allocator().check().failure;
    }
    EXPECT_EQ(heap_statistics(*heap).pages_held,
              pages_before + (align_up(size, size_t{kPageSize}) - (size_t{2} << 20)) / kPageSize);
    EXPECT_EQ(heap_statistics(*heap).large_blocks, 1u);
    // The page right after it in use: it moves, contents and all.
    const PhysAddr after = frames.allocator().phys_of(block) + align_up(size, size_t{kPageSize});
    ASSERT_TRUE(frames.allocator().reserve_range({after, kPageSize}));
    auto* moved = static_cast<unsigned char*>(heap_reallocate(*heap, block, size + 4096));
    ASSERT_NE(moved, nullptr);
    EXPECT_NE(moved, block);
    for (size_t at = 0; at < size; at += 4093) {
        ASSERT_EQ(moved[at], 0x5a) << at;
    }
    heap_free(*heap, moved);
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
    EXPECT_EQ(frames.free_pages(), free_at_start - 1); // the reserved page
    EXPECT_TRUE(frames.allocator().check().ok);
}

// realloc() shrinks a large block (a page run) that stays large in place: the same pointer, the
// contents kept, the usable size and the heap's pages cut to the pages the new size needs, the
// rest free in the page frame allocator (a stale pointer into them is no block); a shrink within
// its last page changes nothing, and one to a medium size moves it. heap_check() and the page
// frame allocator's check() hold throughout, and every page comes back.
TEST(HeapFramesTest, ReallocShrinksALargeBlockInPlaceGivingItsTailPagesBack) {
    test::Frames frames(256 << 20);
    ASSERT_TRUE(frames.initialized());
    const uint64_t free_at_start = frames.free_pages();
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    size_t size = size_t{30} << 20;
    auto* block = static_cast<unsigned char*>(heap_allocate(*heap, size));
    ASSERT_NE(block, nullptr);
    memset(block, 0x6b, size);
    const uint64_t pages_before = heap_statistics(*heap).pages_held;
    const uint64_t free_before = frames.free_pages();
    for (const size_t shrunk_size :
         {size_t{20} << 20, (size_t{20} << 20) - 100, (size_t{12} << 20) + 1, size_t{1} << 21}) {
        auto* shrunk = static_cast<unsigned char*>(heap_reallocate(*heap, block, shrunk_size));
        ASSERT_EQ(shrunk, block) << shrunk_size;
        EXPECT_EQ(heap_usable_size(*heap, block), align_up(shrunk_size, size_t{kPageSize}));
        EXPECT_EQ(block[0], 0x6b);
        EXPECT_EQ(block[shrunk_size - 1], 0x6b);
        const uint64_t given_back = (size - align_up(shrunk_size, size_t{kPageSize})) / kPageSize;
        EXPECT_EQ(heap_statistics(*heap).pages_held,
                  pages_before - (size_t{30} << 20) / kPageSize +
                      align_up(shrunk_size, size_t{kPageSize}) / kPageSize)
            << shrunk_size;
        EXPECT_EQ(heap_statistics(*heap).large_pages,
                  align_up(shrunk_size, size_t{kPageSize}) / kPageSize);
        EXPECT_EQ(frames.free_pages(),
                  free_before +
                      ((size_t{30} << 20) - align_up(shrunk_size, size_t{kPageSize})) / kPageSize)
            << shrunk_size << " (" << given_back << " more pages given back)";
        size = align_up(shrunk_size, size_t{kPageSize});
        EXPECT_TRUE(heap_check(*heap));
        EXPECT_TRUE(frames.allocator().check().ok) << frames.allocator().check().failure;
    }
    // A stale pointer into the pages given back is no block of the heap.
    test::clear_reports();
    heap_free(*heap, block + (size_t{4} << 20));
    ASSERT_EQ(test::reports().size(), 1u);
    EXPECT_EQ(test::reports()[0].kind, ErrorKind::NotAllocated);
    test::clear_reports();
    // To a medium size: it moves, its contents kept.
    auto* moved = static_cast<unsigned char*>(heap_reallocate(*heap, block, 5000));
    ASSERT_NE(moved, nullptr);
    EXPECT_NE(moved, block);
    EXPECT_EQ(moved[4999], 0x6b);
    EXPECT_EQ(heap_statistics(*heap).large_blocks, 0u);
    heap_free(*heap, moved);
    EXPECT_TRUE(test::reports().empty());
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
    EXPECT_EQ(frames.free_pages(), free_at_start);
    EXPECT_TRUE(frames.allocator().check().ok);
}

// realloc() shrinks a medium block that stays above the small sizes in place, on both kinds of
// heap: the same pointer, the contents kept, the usable size and the heap's medium bytes cut to
// the new size, the rest a free block that a later malloc takes (merged with a free block after
// it when there is one); a shrink that leaves too little for a free block before a taken one
// keeps the block as it is. heap_check() holds throughout.
TEST(HeapReallocTest, AMediumBlockShrinksInPlaceItsRestFree) {
    test::Frames frames(64 << 20);
    ASSERT_TRUE(frames.initialized());
    test::Region region(4 << 20);
    Heap* heaps[] = {heap_create(frames.allocator()),
                     heap_create_in_region(region.data(), region.size())};
    for (Heap* heap : heaps) {
        ASSERT_NE(heap, nullptr);
        auto* block = static_cast<unsigned char*>(heap_allocate(*heap, 600 << 10));
        auto* after = heap_allocate(*heap, 100 << 10); // taken: nothing merges with the rest
        ASSERT_NE(block, nullptr);
        ASSERT_NE(after, nullptr);
        memset(block, 0x7e, 600 << 10);
        // 16 bytes less leave no room for a free block before the taken one: nothing changes.
        ASSERT_EQ(heap_reallocate(*heap, block, (600 << 10) - 16), block);
        EXPECT_EQ(heap_usable_size(*heap, block), size_t{600} << 10);
        const uint64_t medium_before = heap_statistics(*heap).medium_bytes;
        ASSERT_EQ(heap_reallocate(*heap, block, 400 << 10), block);
        EXPECT_EQ(heap_usable_size(*heap, block), size_t{400} << 10);
        EXPECT_EQ(block[(400 << 10) - 1], 0x7e);
        EXPECT_EQ(heap_statistics(*heap).medium_bytes, medium_before - (200 << 10));
        EXPECT_TRUE(heap_check(*heap));
        // The rest is free where it lies: the smallest free block that holds 100 KiB.
        void* in_rest = heap_allocate(*heap, 100 << 10);
        EXPECT_EQ(in_rest, block + (400 << 10) + 16);
        heap_free(*heap, in_rest);
        // Shrunk again, the rest joins the free block after it.
        ASSERT_EQ(heap_reallocate(*heap, block, (400 << 10) - 32), block);
        EXPECT_EQ(heap_usable_size(*heap, block), (size_t{400} << 10) - 32);
        EXPECT_EQ(block[(400 << 10) - 33], 0x7e);
        EXPECT_TRUE(heap_check(*heap));
        heap_free(*heap, after);
        heap_free(*heap, block);
        EXPECT_EQ(heap_statistics(*heap).medium_bytes, 0u);
        EXPECT_TRUE(heap_check(*heap));
        EXPECT_TRUE(heap_destroy(*heap));
    }
    EXPECT_TRUE(frames.allocator().check().ok);
}

// A block larger than a maximum block (1 GiB) needs no 1 GiB boundary to start at: in 3 GiB of
// memory, whose first maximum block holds the allocator's metadata and the heap's state, a
// 2.5 GiB block is had (it starts before the free maximum blocks); its first and last bytes are
// written, and it goes back whole.
TEST(HeapFramesTest, ABlockBeyondOneGiBStartsWhereverItFits) {
    test::Frames frames(size_t{3} << 30);
    ASSERT_TRUE(frames.initialized());
    const uint64_t free_at_start = frames.free_pages();
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    const size_t size = (size_t{5} << 30) / 2;
    auto* block = static_cast<unsigned char*>(heap_allocate(*heap, size));
    ASSERT_NE(block, nullptr);
    block[0] = 1;
    block[size - 1] = 2;
    EXPECT_GE(heap_usable_size(*heap, block), size);
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(frames.allocator().check().ok) << frames.allocator().check().failure;
    heap_free(*heap, block);
    EXPECT_TRUE(heap_destroy(*heap));
    EXPECT_EQ(frames.free_pages(), free_at_start);
    EXPECT_TRUE(frames.allocator().check().ok);
}

// A page allocation that finds no free block takes back what heaps over the allocator hold
// idle (their empty slabs and spare arena: the reclaim hook heap_create() sets) before it fails;
// the heap then works on as before. Without the hook, the pages a heap held with nothing live
// stayed out of reach of every other user of the allocator until heap_trim().
TEST(HeapFramesTest, APageAllocationTakesBackWhatHeapsHoldIdle) {
    test::Frames frames(64 << 20);
    ASSERT_TRUE(frames.initialized());
    const uint64_t free_at_start = frames.free_pages();
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    const uint64_t state_pages = heap_statistics(*heap).pages_held;
    std::vector<void*> blocks;
    for (size_t bytes = 0; bytes < (size_t{40} << 20); bytes += 1024) {
        blocks.push_back(heap_allocate(*heap, 1024));
        ASSERT_NE(blocks.back(), nullptr);
    }
    for (void* block : blocks) {
        heap_free(*heap, block);
    }
    const uint64_t idle = heap_statistics(*heap).pages_held - state_pages;
    ASSERT_GT(idle, 0u) << "the heap holds arenas with nothing live in them";
    const uint64_t free_before = frames.free_pages();
    std::vector<PhysAddr> pages = take_every_page(frames);
    const uint64_t held_after = heap_statistics(*heap).pages_held - state_pages;
    EXPECT_GT(pages.size(), free_before) << "pages came back from the heap";
    EXPECT_EQ(pages.size(), free_before + idle - held_after);
    EXPECT_TRUE(heap_check(*heap));
    for (const PhysAddr page : pages) {
        frames.allocator().free(page, 0);
    }
    void* block = heap_allocate(*heap, 1024);
    EXPECT_NE(block, nullptr);
    heap_free(*heap, block);
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
    EXPECT_EQ(frames.free_pages(), free_at_start);
    EXPECT_TRUE(frames.allocator().check().ok);
}

// With every page taken, a heap's growth fails inside its own locks and the page frame
// allocator's reclaim hook comes back into that heap: it must take no lock it would wait for.
// The mallocs fail cleanly and succeed once pages are free again.
TEST(HeapFramesTest, AHeapThatCannotGrowReclaimsWithoutWaitingForItsOwnLocks) {
    test::Frames frames(16 << 20);
    ASSERT_TRUE(frames.initialized());
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    std::vector<PhysAddr> pages = take_every_page(frames);
    EXPECT_EQ(heap_allocate(*heap, 64), nullptr);
    EXPECT_EQ(heap_allocate(*heap, 100000), nullptr);
    EXPECT_EQ(heap_allocate(*heap, 3 << 20), nullptr);
    for (const PhysAddr page : pages) {
        frames.allocator().free(page, 0);
    }
    for (const size_t size : {size_t{64}, size_t{100000}, size_t{3} << 20}) {
        void* block = heap_allocate(*heap, size);
        EXPECT_NE(block, nullptr) << size;
        heap_free(*heap, block);
    }
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
}

// A malloc whose alignment has no multiple in the heap's memory with room after it fails without
// taking back what the heap holds idle (that could serve it no better): the heap keeps its pages
// and the reclaim count stays 0. One that memory could serve once idle pages come
// back still reclaims.
TEST(HeapFramesTest, AnAlignmentNoMultipleOfWhichLiesInMemoryFailsWithoutAReclaim) {
    test::Frames frames(16 << 20);
    ASSERT_TRUE(frames.initialized());
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    heap_free(*heap, heap_allocate(*heap, 64));
    const HeapStatistics before = heap_statistics(*heap);
    for (const int shift : {40, 48, 62}) {
        EXPECT_EQ(heap_allocate(*heap, 64, size_t{1} << shift), nullptr) << shift;
        EXPECT_EQ(heap_allocate(*heap, 3 << 20, size_t{1} << shift), nullptr) << shift;
    }
    const HeapStatistics after = heap_statistics(*heap);
    EXPECT_EQ(after.reclaims, 0u);
    EXPECT_EQ(after.pages_held, before.pages_held) << "idle pages were given back";
    std::vector<PhysAddr> pages = take_every_page(frames);
    EXPECT_EQ(heap_allocate(*heap, 3 << 20, size_t{1} << 20), nullptr);
    EXPECT_EQ(heap_statistics(*heap).reclaims, 1u) << "a malloc memory could serve reclaims";
    for (const PhysAddr page : pages) {
        frames.allocator().free(page, 0);
    }
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
}

// The same in a region heap: an alignment with no multiple in its region (or none with room
// for the block before the region's end) fails without a reclaim.
TEST(HeapRegionTest, AnAlignmentNoMultipleOfWhichLiesInTheRegionFailsWithoutAReclaim) {
    alignas(4096) static unsigned char region[256 << 10];
    Heap* heap = heap_create_in_region(region, sizeof region);
    ASSERT_NE(heap, nullptr);
    heap_free(*heap, heap_allocate(*heap, 64));
    EXPECT_EQ(heap_allocate(*heap, 64, size_t{1} << 44), nullptr);
    EXPECT_EQ(heap_allocate(*heap, 100000, size_t{1} << 44), nullptr);
    EXPECT_EQ(heap_statistics(*heap).reclaims, 0u);
    EXPECT_EQ(heap_allocate(*heap, 1 << 20), nullptr);
    EXPECT_EQ(heap_statistics(*heap).reclaims, 0u) << "larger than the region";
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
}

// With one page left in the page frame allocator, a heap grows by an arena of that page alone
// for a request that the page's free block can serve, aligned ones included, and returns null
// (asking for more) for one it cannot: never an arena its take() then fails in (which stopped
// the heap on an assertion: an aligned block of 3,666 bytes at 256 made an arena of one page,
// 16 to 30 bytes short of what the fit needs free for it).
TEST(HeapFramesTest, AHeapWithOnePageLeftGrowsOnlyByArenasItsRequestFits) {
    test::Frames frames(16 << 20);
    ASSERT_TRUE(frames.initialized());
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    std::vector<PhysAddr> pages = take_every_page(frames);
    frames.allocator().free(pages.back(), 0);
    pages.pop_back();
    test::clear_reports();
    int served = 0;
    for (size_t alignment = 16; alignment <= 2048; alignment *= 2) {
        for (size_t size = 2600; size <= 4096; size += 2) {
            auto* block = static_cast<unsigned char*>(heap_allocate(*heap, size, alignment));
            if (block != nullptr) {
                ++served;
                EXPECT_EQ(reinterpret_cast<uintptr_t>(block) % alignment, 0u);
                EXPECT_GE(heap_usable_size(*heap, block), size);
                block[size - 1] = 1;
                heap_free(*heap, block);
            }
            heap_trim(*heap); // the one-page arena goes back: the next request grows again
            ASSERT_EQ(frames.free_pages(), 1u) << size << " at " << alignment;
        }
    }
    EXPECT_GT(served, 0);
    EXPECT_EQ(test::report_count(), 0u);
    for (const PhysAddr page : pages) {
        frames.allocator().free(page, 0);
    }
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
}

// Two runs freed at the same start, one after the other: a double free names the last one's
// length (the runs freed are remembered in a ring, searched newest first).
TEST(HeapFramesTest, ADoubleFreeOfALargeRunNamesTheLastRunFreedThere) {
    test::Frames frames(64 << 20);
    ASSERT_TRUE(frames.initialized());
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    test::clear_reports();
    void* first = heap_allocate(*heap, size_t{3} << 20);
    ASSERT_NE(first, nullptr);
    heap_free(*heap, first);
    void* second = heap_allocate(*heap, size_t{4} << 20);
    ASSERT_EQ(second, first) << "the same start";
    const size_t run_bytes = heap_usable_size(*heap, second);
    heap_free(*heap, second);
    heap_free(*heap, second);
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::DoubleFree);
    EXPECT_EQ(test::report(0).size, run_bytes);
    EXPECT_TRUE(heap_destroy(*heap));
}

// A freed large run's pages go back to the page frame allocator untagged, yet a stale pointer to
// it is a double free, not memory of no heap - for free, usable_size and realloc alike - while
// no heap holds its pages; once the heap takes them again they are a live block.
TEST(HeapFramesTest, AStalePointerToAFreedLargeRunIsADoubleFree) {
    test::Frames frames(64 << 20);
    ASSERT_TRUE(frames.initialized());
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    test::clear_reports();
    for (const size_t size : {(size_t{1} << 20) + 1, size_t{4} << 20}) {
        auto* block = static_cast<unsigned char*>(heap_allocate(*heap, size));
        ASSERT_NE(block, nullptr);
        const uint64_t run_bytes = heap_usable_size(*heap, block);
        heap_free(*heap, block);
        heap_free(*heap, block);
        EXPECT_EQ(heap_usable_size(*heap, block), 0u);
        EXPECT_EQ(heap_reallocate(*heap, block, 10), nullptr);
        ASSERT_EQ(test::report_count(), 3u) << size;
        for (size_t i = 0; i < 3; ++i) {
            EXPECT_EQ(test::report(i).kind, ErrorKind::DoubleFree) << size << " report " << i;
            EXPECT_EQ(test::report(i).address, reinterpret_cast<uintptr_t>(block));
            EXPECT_EQ(test::report(i).block, reinterpret_cast<uintptr_t>(block));
            EXPECT_EQ(test::report(i).size, run_bytes);
        }
        test::clear_reports();
        heap_free(*heap, block + 4096); // inside the freed run, never a block's start
        ASSERT_EQ(test::report_count(), 1u);
        EXPECT_EQ(test::report(0).kind, ErrorKind::NotAllocated);
        test::clear_reports();
    }
    // Taken again (the same pages), the run is a live block once more.
    void* again = heap_allocate(*heap, size_t{4} << 20);
    ASSERT_NE(again, nullptr);
    heap_free(*heap, again);
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
    EXPECT_TRUE(frames.allocator().check().ok);
}

// heap_trim() tells the platform of the whole pages inside the arenas' free blocks (a hosted
// process gives them back to its kernel), and of nothing in a live block or a free block's links.
TEST(HeapFramesTest, TrimTellsThePlatformOfTheFreePagesInsideArenas) {
    test::Frames frames(64 << 20);
    ASSERT_TRUE(frames.initialized());
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    constexpr size_t kBytes = 600 << 10; // medium: in an arena
    auto* below = static_cast<unsigned char*>(heap_allocate(*heap, kBytes));
    auto* freed = static_cast<unsigned char*>(heap_allocate(*heap, kBytes));
    auto* above = static_cast<unsigned char*>(heap_allocate(*heap, kBytes));
    ASSERT_TRUE(below != nullptr && freed != nullptr && above != nullptr);
    memset(below, 0x5a, kBytes);
    memset(above, 0x5a, kBytes);
    heap_free(*heap, freed);
    test::clear_unused_pages();
    heap_trim(*heap);
    const auto overlaps = [](const test::UnusedPages& range, const unsigned char* block,
                             size_t bytes) {
        const auto start = static_cast<unsigned char*>(range.start);
        return start < block + bytes && block < start + range.bytes;
    };
    bool inside_freed = false;
    for (const test::UnusedPages& range : test::unused_pages()) {
        EXPECT_EQ(reinterpret_cast<uintptr_t>(range.start) % kPageSize, 0u);
        EXPECT_EQ(range.bytes % kPageSize, 0u);
        EXPECT_FALSE(overlaps(range, below, heap_usable_size(*heap, below)));
        EXPECT_FALSE(overlaps(range, above, heap_usable_size(*heap, above)));
        if (overlaps(range, freed, kBytes)) {
            // The block may have merged with free space around it, never with its live neighbours;
            // its links (at its start) stay.
            EXPECT_GE(static_cast<unsigned char*>(range.start), freed + 32);
            EXPECT_GE(range.bytes, kBytes - 2 * kPageSize);
            inside_freed = true;
        }
    }
    EXPECT_TRUE(inside_freed);
    EXPECT_TRUE(heap_check(*heap));
    for (size_t i = 0; i < kBytes; ++i) {
        ASSERT_TRUE(below[i] == 0x5a && above[i] == 0x5a) << i;
    }
    // The pages told of stay the heap's: a block over them is taken and written as any other.
    void* again = heap_allocate(*heap, 2 * kBytes);
    ASSERT_NE(again, nullptr);
    memset(again, 0x77, 2 * kBytes);
    EXPECT_TRUE(heap_check(*heap));
    heap_free(*heap, again);
    heap_free(*heap, below);
    heap_free(*heap, above);
    EXPECT_TRUE(heap_destroy(*heap));
}

// With an unused interval, the free that gives back that many bytes tells the platform of the
// free pages beyond those taken (nothing in a live block); a block told of and not written since
// is not told of again.
TEST(HeapFramesTest, FreesPastTheUnusedIntervalTellThePlatformOfFreePagesOnce) {
    test::Frames frames(64 << 20);
    ASSERT_TRUE(frames.initialized());
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    constexpr size_t kBlocks = 8;
    constexpr size_t kBytes = 512 << 10; // medium: in an arena
    unsigned char* blocks[kBlocks];
    // Each block followed by a live one, so no arena empties and goes back (its free bytes would
    // leave the count); small, so that the free bytes beyond those taken cover every freed block.
    constexpr size_t kKeptBytes = 16 << 10;
    unsigned char* kept[kBlocks];
    for (size_t i = 0; i < kBlocks; ++i) {
        blocks[i] = static_cast<unsigned char*>(heap_allocate(*heap, kBytes));
        kept[i] = static_cast<unsigned char*>(heap_allocate(*heap, kKeptBytes));
        ASSERT_TRUE(blocks[i] != nullptr && kept[i] != nullptr);
        memset(kept[i], 0x5a, kKeptBytes);
    }
    const auto allocate_all = [&] {
        for (unsigned char*& block : blocks) {
            block = static_cast<unsigned char*>(heap_allocate(*heap, kBytes));
            ASSERT_NE(block, nullptr);
            memset(block, 0x33, kBytes);
        }
    };
    const auto overlaps = [](const test::UnusedPages& range, const unsigned char* block,
                             size_t bytes) {
        const auto start = static_cast<unsigned char*>(range.start);
        return start < block + bytes && block < start + range.bytes;
    };
    const auto freed_region_told = [&] {
        for (const test::UnusedPages& range : test::unused_pages()) {
            for (const unsigned char* block : blocks) {
                if (overlaps(range, block, kBytes)) {
                    return true;
                }
            }
        }
        return false;
    };

    // By default nothing is told of but when asked.
    test::clear_unused_pages();
    for (unsigned char* block : blocks) {
        heap_free(*heap, block);
    }
    EXPECT_EQ(test::unused_calls(), 0u);
    EXPECT_TRUE(heap_tell_unused(*heap));
    EXPECT_TRUE(freed_region_told());

    // Every free gives back the interval: the free blocks beyond the bytes taken (and the
    // interval) are told of, the ones holding the freed blocks among them.
    allocate_all();
    ASSERT_TRUE(heap_set_unused_interval(*heap, 1));
    test::clear_unused_pages();
    for (unsigned char* block : blocks) {
        heap_free(*heap, block);
    }
    EXPECT_TRUE(freed_region_told());
    for (const test::UnusedPages& range : test::unused_pages()) {
        EXPECT_EQ(reinterpret_cast<uintptr_t>(range.start) % kPageSize, 0u);
        EXPECT_EQ(range.bytes % kPageSize, 0u);
        for (const unsigned char* live : kept) {
            EXPECT_FALSE(overlaps(range, live, heap_usable_size(*heap, live)));
        }
    }

    // A block taken from told memory and freed: only the free block it goes back into is told
    // of again, not the others (told, and not written since).
    auto* taken = static_cast<unsigned char*>(heap_allocate(*heap, kBytes / 2));
    ASSERT_NE(taken, nullptr);
    memset(taken, 0x77, kBytes / 2);
    test::clear_unused_pages();
    heap_free(*heap, taken);
    ASSERT_EQ(test::unused_calls(), 1u);
    EXPECT_TRUE(overlaps(test::unused_pages()[0], taken, kBytes / 2));

    for (const unsigned char* live : kept) {
        for (size_t i = 0; i < kKeptBytes; ++i) {
            ASSERT_EQ(live[i], 0x5a) << i;
        }
    }
    EXPECT_TRUE(heap_check(*heap));
    for (unsigned char* live : kept) {
        heap_free(*heap, live);
    }
    EXPECT_TRUE(heap_set_unused_interval(*heap, 0));
    EXPECT_TRUE(heap_destroy(*heap));
}

// An interval beyond any memory keeps every free page: the bytes kept (taken plus the interval)
// do not wrap around to nothing.
TEST(HeapFramesTest, AnIntervalBeyondAnyMemoryTellsOfNothing) {
    test::Frames frames(64 << 20);
    ASSERT_TRUE(frames.initialized());
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    void* kept = heap_allocate(*heap, 64 << 10);
    void* freed = heap_allocate(*heap, 512 << 10);
    ASSERT_TRUE(kept != nullptr && freed != nullptr);
    ASSERT_TRUE(heap_set_unused_interval(*heap, ~size_t{0}));
    test::clear_unused_pages();
    heap_free(*heap, freed);
    EXPECT_TRUE(heap_tell_unused(*heap));
    EXPECT_EQ(test::unused_calls(), 0u);
    heap_free(*heap, kept);
    EXPECT_TRUE(heap_destroy(*heap));
}

// A region heap tells of no unused pages: its memory is not the platform's to drop.
TEST_F(HeapApiTest, ARegionHeapTellsOfNoUnusedPages) {
    void* block = bedrock_malloc(200 << 10);
    ASSERT_NE(block, nullptr);
    bedrock_free(block);
    const uint64_t calls = test::unused_calls();
    EXPECT_FALSE(heap_set_unused_interval(*m_heap, 1));
    EXPECT_FALSE(heap_tell_unused(*m_heap));
    EXPECT_EQ(test::unused_calls(), calls);
}

// A region's memory is not the platform's to drop: trim tells it of nothing.
TEST_F(HeapApiTest, TrimOfARegionHeapTellsThePlatformOfNothing) {
    void* block = bedrock_malloc(200 << 10);
    ASSERT_NE(block, nullptr);
    bedrock_free(block);
    const uint64_t calls = test::unused_calls();
    heap_trim(*m_heap);
    EXPECT_EQ(test::unused_calls(), calls);
}

TEST_F(HeapApiTest, ExhaustionReturnsNullAndEverythingComesBack) {
    std::vector<void*> blocks;
    for (size_t size = 40000;; size = size * 3 / 2 % 300000 + 100) {
        void* block = bedrock_malloc(size);
        if (block == nullptr) {
            break;
        }
        blocks.push_back(block);
    }
    while (void* block = bedrock_malloc(16)) {
        blocks.push_back(block);
    }
    EXPECT_GT(blocks.size(), 100u);
    EXPECT_TRUE(heap_check(*m_heap));
    for (void* block : blocks) {
        bedrock_free(block);
    }
    heap_trim(*m_heap);
    EXPECT_EQ(heap_statistics(*m_heap).blocks_in_use, 0u);
    EXPECT_EQ(heap_statistics(*m_heap).medium_blocks, 0u);
    void* whole = bedrock_malloc(m_region.size() - m_region.size() / 64); // less the bitmap
    EXPECT_NE(whole, nullptr);
    bedrock_free(whole);
    EXPECT_EQ(test::report_count(), 0u);
}

TEST_F(HeapApiTest, StatisticsAndReport) {
    void* a = bedrock_malloc(100);   // 112-byte class
    void* b = bedrock_malloc(20000); // large
    HeapStatistics s = heap_statistics(*m_heap);
    EXPECT_EQ(s.bytes_requested, 20100u);
    EXPECT_EQ(s.blocks_in_use, 2u);
    EXPECT_EQ(s.bytes_in_use, 112u + bedrock_malloc_usable_size(b));
    EXPECT_EQ(s.classes[6].block_size, 112u);
    EXPECT_EQ(s.classes[6].blocks_in_use, 1u);
    EXPECT_EQ(s.classes[6].allocations, 1u);
    EXPECT_EQ(s.medium_allocations, 1u);
    EXPECT_EQ(s.medium_blocks, 1u);
    std::string text;
    heap_report(
        *m_heap,
        [](void* context, const char* line) {
            *static_cast<std::string*>(context) += line + std::string("\n");
        },
        &text);
    EXPECT_NE(text.find("2 blocks, " + std::to_string(s.bytes_in_use) + " bytes in use"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("   112      1       1       1            1"), std::string::npos) << text;
    bedrock_free(a);
    bedrock_free(b);
    s = heap_statistics(*m_heap);
    EXPECT_EQ(s.blocks_in_use, 0u);
    EXPECT_EQ(s.classes[6].peak_blocks_in_use, 1u);
}

// heap_report() writes every figure whole, however large: a long-lived heap's figures (here
// 49 digits in the pages, medium and large figures) used to cut the end of the one line that
// held them all (a line holds 159 characters).
TEST(HeapReportTest, LargeFiguresAreWrittenWhole) {
    const PhysRange range{PhysAddr{64} << 30, uint64_t{64} << 30};
    test::SimulatedMemory memory({range});
    PageFrameAllocator frames;
    ASSERT_TRUE(frames.init(&range, 1, CpuPageLists::Off, 0, RangeContents::Zeroed));
    Heap* heap = heap_create(frames);
    ASSERT_NE(heap, nullptr);
    std::vector<void*> blocks;
    for (int i = 0; i < 12000; ++i) { // 5 digits of medium blocks, 11 of their bytes
        blocks.push_back(heap_allocate(*heap, size_t{1} << 20));
        ASSERT_NE(blocks.back(), nullptr);
    }
    for (int i = 0; i < 10; ++i) { // 2 digits of large blocks, 8 of their pages
        blocks.push_back(heap_allocate(*heap, size_t{4} << 30));
        ASSERT_NE(blocks.back(), nullptr);
    }
    for (int i = 0; i < 100000; ++i) { // 6 digits of large allocations (aligned: a run each)
        void* block = heap_allocate(*heap, 16, size_t{128} << 10);
        ASSERT_NE(block, nullptr);
        heap_free(*heap, block);
    }
    const HeapStatistics s = heap_statistics(*heap);
    std::vector<std::string> lines;
    heap_report(
        *heap,
        [](void* context, const char* line) {
            static_cast<std::vector<std::string>*>(context)->push_back(line);
        },
        &lines);
    std::string text;
    for (const std::string& line : lines) {
        EXPECT_LT(line.size(), 159u) << line; // shorter than a full line: nothing was cut
        text += line + "\n";
    }
    for (const std::string& expected :
         {"pages held " + std::to_string(s.pages_held) + " (peak " +
              std::to_string(s.peak_pages_held) + ")",
          "medium blocks " + std::to_string(s.medium_blocks) + ", " +
              std::to_string(s.medium_bytes) + " bytes",
          "large blocks " + std::to_string(s.large_blocks) + " in " +
              std::to_string(s.large_pages) + " pages, " + std::to_string(s.large_allocations) +
              " allocated since creation; " + std::to_string(s.reclaims) + " reclaims"}) {
        EXPECT_NE(text.find(expected), std::string::npos) << expected << "\n" << text;
    }
    for (void* block : blocks) {
        heap_free(*heap, block);
    }
    EXPECT_TRUE(heap_destroy(*heap));
    EXPECT_EQ(frames.free_pages(), frames.managed_pages());
}

// The C interface's error hook: a hook struct whose report function is null is no hook (the
// platform's report_error gets the reports), as a null struct is; it used to be called.
TEST_F(HeapApiTest, ACErrorHookWithoutAReportFunctionIsNoHook) {
    auto* heap = reinterpret_cast<bedrock_heap*>(m_heap);
    int counted = 0;
    const bedrock_error_hook counting = {
        [](void* context, const bedrock_error_report*) { ++*static_cast<int*>(context); },
        &counted};
    const bedrock_error_hook empty = {nullptr, &counted};
    unsigned char outside[32];
    void* not_ours = outside + (16 - reinterpret_cast<uintptr_t>(outside) % 16);
    bedrock_heap_set_error_hook(heap, &counting);
    bedrock_heap_free(heap, not_ours);
    EXPECT_EQ(counted, 1);
    EXPECT_EQ(test::report_count(), 0u);
    bedrock_heap_set_error_hook(heap, &empty);
    bedrock_heap_free(heap, not_ours);
    EXPECT_EQ(counted, 1);
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::NotAllocated);
    bedrock_heap_set_error_hook(heap, nullptr);
    test::clear_reports();
}

// The report writers take a null writer as "write nothing", as heap_report_leaks() does; they
// used to call it.
TEST_F(HeapApiTest, ReportsToANullWriterWriteNothing) {
    void* block = bedrock_malloc(100);
    heap_report(*m_heap, nullptr, nullptr);
    bedrock_heap_report(reinterpret_cast<bedrock_heap*>(m_heap), nullptr, nullptr);
    const ErrorReport report{
        ErrorKind::DoubleFree, "heap", 0x1000, 16, nullptr, "a detail", 0x1000, 0, {}, {}};
    write_error_report(report, nullptr, nullptr);
    const bedrock_error_report c_report = {
        BEDROCK_ERROR_DOUBLE_FREE, "heap", 0x1000, 16, nullptr, "a detail", 0x1000, 0, {}, {}};
    bedrock_write_error_report(&c_report, nullptr, nullptr);
    bedrock_free(block);
    EXPECT_EQ(test::report_count(), 0u);
}

TEST_F(HeapApiTest, DestroyRefusesWhileBlocksAreLive) {
    test::Region region(1 << 20);
    Heap* heap = heap_create_in_region(region.data(), region.size());
    ASSERT_NE(heap, nullptr);
    void* block = heap_allocate(*heap, 10);
    EXPECT_FALSE(heap_destroy(*heap));
    EXPECT_EQ(test::report_count(), 1u);
    heap_free(*heap, block);
    EXPECT_TRUE(heap_destroy(*heap));
}

// A region heap over memory a live region heap manages would overwrite that heap's state or
// hand out its blocks twice: refused, unless the region lies inside one of that heap's live
// blocks (a heap of one's own in a block one allocated). The live heap stays intact.
TEST_F(HeapApiTest, ARegionHeapOverAnotherLiveHeapsMemoryIsRefused) {
    test::Region memory(2 << 20);
    unsigned char* region = memory.data() + (64 << 10);
    const size_t bytes = 1 << 20;
    Heap* heap = heap_create_in_region(region, bytes);
    ASSERT_NE(heap, nullptr);
    void* live = heap_allocate(*heap, 100);
    EXPECT_EQ(heap_create_in_region(region, bytes), nullptr);                   // the same region
    EXPECT_EQ(heap_create_in_region(region + 4096, 64 << 10), nullptr);         // inside it
    EXPECT_EQ(heap_create_in_region(region - 4096, 64 << 10), nullptr);         // over its front
    EXPECT_EQ(heap_create_in_region(region + bytes - 4096, 64 << 10), nullptr); // over its end
    EXPECT_EQ(heap_create_in_region(memory.data(), 2 << 20), nullptr);          // around it
    auto* block = static_cast<unsigned char*>(heap_allocate(*heap, 256 << 10));
    ASSERT_NE(block, nullptr);
    EXPECT_EQ(heap_create_in_region(block + 1024, 256 << 10), nullptr); // past the block's end
    Heap* inner = heap_create_in_region(block + 1024, 128 << 10);       // inside a live block
    ASSERT_NE(inner, nullptr);
    void* inner_block = heap_allocate(*inner, 64);
    EXPECT_NE(inner_block, nullptr);
    heap_free(*inner, inner_block);
    EXPECT_TRUE(heap_destroy(*inner));
    heap_free(*heap, block);
    heap_free(*heap, live);
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
}

// A heap destroyed twice: the second call is reported and changes nothing (it unlinked the heap
// from the list of live heaps again), and the region makes a heap again.
TEST_F(HeapApiTest, DestroyingAHeapTwiceIsReported) {
    test::Region region(1 << 20);
    Heap* heap = heap_create_in_region(region.data(), region.size());
    ASSERT_NE(heap, nullptr);
    EXPECT_TRUE(heap_destroy(*heap));
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_FALSE(heap_destroy(*heap));
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::DoubleFree);
    EXPECT_TRUE(heap_check(*m_heap));
    Heap* again = heap_create_in_region(region.data(), region.size());
    ASSERT_NE(again, nullptr);
    EXPECT_TRUE(heap_destroy(*again));
}

// Memory that never held a heap: heap_destroy() on it is not-allocated, never a double free (a
// destroyed heap's magic is its own, not the 0 that fresh memory holds), and so is a malloc on
// zeroed memory (no CPU cache: the malloc reaches the magic's check). Nothing is written.
TEST_F(HeapApiTest, CallsOnMemoryThatHoldsNoHeapAreNotAllocated) {
    for (const unsigned char fill : {0x00, 0x5a}) {
        alignas(64) unsigned char memory[64 << 10];
        memset(memory, fill, sizeof(memory));
        auto& none = *reinterpret_cast<Heap*>(memory);
        test::clear_reports();
        EXPECT_FALSE(heap_destroy(none));
        if (fill == 0) {
            EXPECT_EQ(heap_allocate(none, 5000), nullptr);
            EXPECT_EQ(heap_allocate(none, 16), nullptr);
        }
        ASSERT_EQ(test::report_count(), fill == 0 ? 3u : 1u) << int{fill};
        for (size_t i = 0; i < test::report_count(); ++i) {
            EXPECT_EQ(test::report(i).kind, ErrorKind::NotAllocated) << test::report(i).detail;
        }
        for (const unsigned char byte : memory) {
            ASSERT_EQ(byte, fill);
        }
    }
}

// A block of a heap made inside another heap's block, freed into the outer heap: foreign-heap
// (not an interior pointer of the outer heap's block), and both heaps stay intact.
TEST_F(HeapApiTest, ABlockOfANestedHeapFreedIntoTheOuterHeapIsForeign) {
    test::expect_a_nested_heaps_blocks_are_foreign(*m_heap, 256 << 10);
}

// Regions of 16, 32 and 64 KiB work; with more than 64 CPU slots each is larger by what the
// heap's state grows (its CPU cache pointers), so that the arena is as large as with 64.
TEST_F(HeapApiTest, RegionTooSmallIsRefusedAndSmallRegionsWork) {
    constexpr size_t kStateGrowth = test::kHeapStateBytesBeyondDefault;
    test::Region region((64 << 10) + kStateGrowth);
    EXPECT_EQ(heap_create_in_region(region.data(), 100), nullptr);
    EXPECT_EQ(heap_create_in_region(nullptr, 1 << 20), nullptr);
    for (size_t arena : {size_t{16} << 10, size_t{32} << 10, size_t{64} << 10}) {
        const size_t bytes = arena + kStateGrowth;
        Heap* heap = heap_create_in_region(region.data(), bytes);
        ASSERT_NE(heap, nullptr) << bytes;
        void* block = heap_allocate(*heap, 16);
        EXPECT_NE(block, nullptr) << bytes;
        heap_free(*heap, block);
        EXPECT_TRUE(heap_check(*heap));
        EXPECT_TRUE(heap_destroy(*heap));
    }
}

// The fewest bytes heap_create_in_region() accepts at a 64-byte aligned start, found in mapped
// memory (it depends on BEDROCK_MAX_CPUS: 8,480 with 64).
size_t smallest_region_bytes() {
    test::Region region(64 << 10);
    size_t refused = 0;
    size_t accepted = region.size();
    while (refused + 1 < accepted) {
        const size_t bytes = (refused + accepted) / 2;
        if (Heap* heap = heap_create_in_region(region.data(), bytes)) {
            EXPECT_TRUE(heap_destroy(*heap));
            accepted = bytes;
        } else {
            refused = bytes;
        }
    }
    return accepted;
}

// A region near the top of the address space too small for the state and a slab is refused
// without a write, as anywhere else (the state's end used to wrap past the top and pass the size
// check; the memory here is not mapped, so a write would fault). A region that ends exactly at
// the top is no wrapping range, but this one is too small as well.
TEST_F(HeapApiTest, ATooSmallRegionAtTheTopOfTheAddressSpaceIsRefused) {
    const size_t too_small = smallest_region_bytes() - 1;
    if (platform::kMaxCpus == 64) {
        EXPECT_EQ(too_small, size_t{8479}) << "the README's 8,480 bytes";
    }
    const uintptr_t top = ~uintptr_t{0};
    EXPECT_EQ(heap_create_in_region(reinterpret_cast<void*>(top - too_small), too_small), nullptr);
    EXPECT_EQ(heap_create_in_region(reinterpret_cast<void*>(top - too_small), too_small + 1),
              nullptr);
    EXPECT_EQ(heap_create_in_region(reinterpret_cast<void*>(top - 100), 50), nullptr);
    EXPECT_EQ(heap_create_in_region(reinterpret_cast<void*>(top - too_small - 7), too_small - 1),
              nullptr);
    EXPECT_EQ(test::report_count(), 0u);
}

// The largest block `heap` serves now (a binary search that frees what it gets).
size_t largest_block(Heap& heap, size_t limit) {
    size_t served = 0;
    size_t refused = limit;
    while (served + 16 < refused) {
        const size_t size = (served + refused) / 2 / 16 * 16;
        if (void* block = heap_allocate(heap, size)) {
            served = size;
            heap_free(heap, block);
        } else {
            refused = size;
        }
    }
    return served;
}

// A malloc that finds no memory first takes back what the heap holds idle (the empty slabs each
// class keeps, the blocks the calling CPU's cache holds): after one malloc and free in every
// size class, with nothing live, the largest block is what it was in the fresh heap (less the
// calling CPU's cache storage, made by the first small call in a heap that has CPU caches).
// Without that, a 64 KiB region served 60 KiB fresh and 6.6 KiB after. With more than 64 CPU
// slots each region is larger by what the heap's state grows, so that its arena is as large.
TEST_F(HeapApiTest, AMallocTakesBackIdleSlabsBeforeItFails) {
    for (const size_t arena : {size_t{64} << 10, size_t{256} << 10}) {
        const size_t bytes = arena + test::kHeapStateBytesBeyondDefault;
        test::Region region(bytes);
        Heap* heap = heap_create_in_region(region.data(), bytes);
        ASSERT_NE(heap, nullptr);
        (void)heap_prepare_cpu(*heap); // false without CPU caches (below 128 KiB)
        const size_t fresh = largest_block(*heap, bytes);
        for (size_t size = 16; size <= heap::kMaxSmallSize; size += 16) {
            void* block = heap_allocate(*heap, size);
            ASSERT_NE(block, nullptr) << size;
            heap_free(*heap, block);
        }
        EXPECT_NE(heap_statistics(*heap).classes[0].slabs, 0u) << "the classes keep empty slabs";
        EXPECT_EQ(largest_block(*heap, bytes), fresh) << bytes;
        // Small blocks of one class then another, each filling the heap in turn.
        for (const size_t size : {size_t{16}, size_t{1024}, size_t{48}}) {
            std::vector<void*> blocks;
            while (void* block = heap_allocate(*heap, size)) {
                blocks.push_back(block);
            }
            EXPECT_GT(blocks.size() * size, fresh / 2) << bytes << " " << size;
            for (void* block : blocks) {
                heap_free(*heap, block);
            }
        }
        EXPECT_TRUE(heap_check(*heap));
        EXPECT_TRUE(heap_destroy(*heap));
    }
    EXPECT_EQ(test::report_count(), 0u);
}

// A region heap_create_in_region() accepts serves a malloc of every small size at once (it used
// to accept regions from 3,824 bytes whose arena could not hold a single slab). The smallest is
// at most 9 KiB, and the sizes tried reach 16 KiB, plus what the heap's state grows with more
// than 64 CPU slots.
TEST_F(HeapApiTest, EveryAcceptedRegionServesEverySmallSize) {
    constexpr size_t kStateGrowth = test::kHeapStateBytesBeyondDefault;
    test::Region region((16 << 10) + kStateGrowth);
    size_t smallest = 0;
    for (size_t bytes = 1024; bytes <= region.size(); bytes += 16) {
        Heap* heap = heap_create_in_region(region.data(), bytes);
        if (heap == nullptr) {
            EXPECT_EQ(smallest, 0u) << "refused " << bytes << " after accepting " << smallest;
            continue;
        }
        smallest = smallest == 0 ? bytes : smallest;
        for (size_t size = 1; size <= heap::kMaxSmallSize; size += 15) {
            void* block = heap_allocate(*heap, size);
            ASSERT_NE(block, nullptr) << "region " << bytes << ", malloc " << size;
            heap_free(*heap, block);
        }
        EXPECT_TRUE(heap_destroy(*heap));
    }
    EXPECT_NE(smallest, 0u);
    EXPECT_LE(smallest, (9u << 10) + kStateGrowth);
    EXPECT_EQ(test::report_count(), 0u);
}

// A region heap gives a block at an alignment near or beyond its region's size where a multiple
// of it lies in free memory with room: in regions of 16 KiB to 16 MiB placed a quarter of their
// size past a multiple of twice their size, so that the next multiple of their size lies three
// quarters in (past the heap's own state), a block of 64 bytes aligned to the region's size
// lands there, and one aligned to twice it (no multiple inside) is refused, nothing changed;
// heap_check() holds. A size whose first three quarters cannot hold the heap's state and a slab
// (16 KiB with thousands of CPU slots, whose cache pointers the state holds) has no such place.
TEST(HeapRegionAlignmentTest, AnAlignmentNearTheRegionsSizeIsServedWhereAMultipleFits) {
    const size_t smallest = smallest_region_bytes();
    for (const size_t bytes :
         {size_t{16} << 10, size_t{64} << 10, size_t{1} << 20, size_t{16} << 20}) {
        if (smallest > bytes / 4 * 3) {
            EXPECT_NE(platform::kMaxCpus, test::kDefaultMaxCpus) << bytes;
            continue;
        }
        std::vector<unsigned char> memory(8 * bytes);
        const uintptr_t base = align_up(reinterpret_cast<uintptr_t>(memory.data()), 2 * bytes);
        auto* start = reinterpret_cast<unsigned char*>(base + bytes / 4);
        Heap* heap = heap_create_in_region(start, bytes);
        ASSERT_NE(heap, nullptr) << bytes;
        EXPECT_EQ(heap_allocate(*heap, 64, 2 * bytes), nullptr) << bytes;
        void* block = heap_allocate(*heap, 64, bytes);
        EXPECT_EQ(reinterpret_cast<uintptr_t>(block), base + bytes) << bytes;
        EXPECT_TRUE(heap_check(*heap));
        heap_free(*heap, block);
        EXPECT_EQ(heap_statistics(*heap).blocks_in_use, 0u);
        EXPECT_TRUE(heap_check(*heap));
        EXPECT_TRUE(heap_destroy(*heap));
    }
}

// The same for alignments just below the region's size, once a small block has put a slab and
// the CPU's cache at the arena's front: no free block holds the size plus the whole alignment, so
// the good-fit search fails, but the one free block still holds the multiple with room after it
// (399,682 bytes and more here), which each multiple tried finds.
TEST(HeapRegionAlignmentTest, AnAlignmentJustBelowTheRegionsSizeIsServedWhereAMultipleFits) {
    struct Case {
        size_t offset; // of the region past a multiple of the alignment
        size_t bytes;
        size_t size;
        size_t alignment;
    };
    const Case cases[] = {{0x5e6d7, 537195, 0, 512 << 10},
                          {0x5e6d7, 537195, 16, 512 << 10},
                          {0x734b8, 2129248, 70000, 2 << 20},
                          {0x1e182a, 4236003, 16, 4 << 20},
                          {0x1e182a, 4236003, 16, 2 << 20}};
    for (const Case& test : cases) {
        std::vector<unsigned char> memory(2 * test.alignment + test.offset + test.bytes);
        const uintptr_t base =
            align_up(reinterpret_cast<uintptr_t>(memory.data()), uintptr_t{test.alignment});
        Heap* heap = heap_create_in_region(reinterpret_cast<void*>(base + test.offset), test.bytes);
        ASSERT_NE(heap, nullptr) << test.bytes;
        heap_free(*heap, heap_allocate(*heap, 100)); // a slab and the CPU's cache
        void* block = heap_allocate(*heap, test.size, test.alignment);
        ASSERT_NE(block, nullptr) << test.bytes << " bytes, alignment " << test.alignment;
        EXPECT_EQ(reinterpret_cast<uintptr_t>(block) % test.alignment, 0u);
        EXPECT_TRUE(heap_check(*heap));
        heap_free(*heap, block);
        EXPECT_TRUE(heap_check(*heap));
        EXPECT_TRUE(heap_destroy(*heap));
    }
    EXPECT_EQ(test::report_count(), 0u);
}

// 32 KiB, plus what the heap's state grows with more than 64 CPU slots.
TEST_F(HeapApiTest, A32KiBRegionHoldsAtLeast384BlocksOf64Bytes) {
    alignas(4096) static unsigned char arena[(32 << 10) + test::kHeapStateBytesBeyondDefault];
    Heap* heap = heap_create_in_region(arena, sizeof(arena));
    ASSERT_NE(heap, nullptr);
    std::vector<void*> blocks;
    while (void* block = heap_allocate(*heap, 64)) {
        blocks.push_back(block);
    }
    EXPECT_GE(blocks.size(), 384u);
    EXPECT_TRUE(heap_check(*heap));
    for (void* block : blocks) {
        heap_free(*heap, block);
    }
    EXPECT_TRUE(heap_destroy(*heap));
    EXPECT_EQ(test::report_count(), 0u);
}

} // namespace
} // namespace bedrock
