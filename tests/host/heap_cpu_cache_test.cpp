// SPDX-License-Identifier: MIT
// The heap's per-CPU caches (alloc/heap/cpu_cache.h) and its hardened free lists (slab.h): many
// threads (each a CPU on the host) allocating and freeing each other's blocks, drains, trim,
// exact statistics, double frees caught, the invariants checked around every operation of a
// random run, writes after free that corrupt a free block's link or mark, and free marks that
// name their block (a mark copied into another block never makes it look freed). The suites
// whose name holds "Thread" also run under ThreadSanitizer (./test.sh host-tsan).
#include <gtest/gtest.h>

#include <stdint.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "bedrock/heap.h"
#include "bedrock/platform.h"
#include "heap/block_lookup.h"
#include "heap/class_cache.h"
#include "heap/cpu_cache.h"
#include "heap/segregated_fit.h"
#include "heap/slab.h"
#include "heap_test_support.h"
#include "max_cpus_support.h"

namespace bedrock {
namespace {

using heap::cpu_cache_capacity;

uint64_t blocks_in_use(Heap& heap) {
    return heap_statistics(heap).blocks_in_use;
}

uint64_t slabs_held(Heap& heap) {
    uint64_t slabs = 0;
    for (const SizeClassStatistics& cls : heap_statistics(heap).classes) {
        slabs += cls.slabs;
    }
    return slabs;
}

size_t count_reports(ErrorKind kind) {
    size_t count = 0;
    for (size_t i = 0; i < test::report_count(); ++i) {
        count += test::report(i).kind == kind ? 1 : 0;
    }
    return count;
}

class CpuCacheTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_heap = heap_create_in_region(m_region.data(), m_region.size());
        ASSERT_NE(m_heap, nullptr);
        test::clear_reports();
    }
    void TearDown() override {
        EXPECT_TRUE(heap_check(*m_heap));
        EXPECT_TRUE(heap_destroy(*m_heap));
    }

    test::Region m_region{8 << 20};
    Heap* m_heap = nullptr;
};

TEST_F(CpuCacheTest, FreedBlocksAreCachedCountAsFreeAndDrainGivesThemBack) {
    std::vector<void*> blocks;
    for (int i = 0; i < 1000; ++i) {
        blocks.push_back(heap_allocate(*m_heap, 16 + (i % 64) * 16));
    }
    EXPECT_EQ(blocks_in_use(*m_heap), 1000u);
    for (void* block : blocks) {
        heap_free(*m_heap, block);
    }
    // Cached blocks are free for the statistics, though they keep their slabs.
    EXPECT_EQ(blocks_in_use(*m_heap), 0u);
    EXPECT_EQ(heap_statistics(*m_heap).bytes_in_use, 0u);
    EXPECT_TRUE(heap_check(*m_heap));
    heap_drain_cpu(*m_heap, platform::current_cpu());
    EXPECT_TRUE(heap_check(*m_heap));
    heap_trim(*m_heap);
    EXPECT_EQ(slabs_held(*m_heap), 0u);
    EXPECT_EQ(heap_statistics(*m_heap).classes[0].allocations, 16u);
    EXPECT_EQ(test::report_count(), 0u);
}

TEST_F(CpuCacheTest, TrimGivesTheCallersCachedBlocksBack) {
    void* block = heap_allocate(*m_heap, 100);
    heap_free(*m_heap, block);
    EXPECT_GT(slabs_held(*m_heap), 0u);
    heap_trim(*m_heap);
    EXPECT_EQ(slabs_held(*m_heap), 0u);
}

TEST_F(CpuCacheTest, StatisticsStayExact) {
    std::vector<void*> blocks;
    uint64_t requested = 0;
    for (int i = 0; i < 500; ++i) {
        const size_t size = 1 + static_cast<size_t>(i * 37) % 2048;
        requested += size;
        blocks.push_back(heap_allocate(*m_heap, size));
        if (i % 3 == 0) {
            heap_free(*m_heap, blocks[blocks.size() / 2]);
            blocks.erase(blocks.begin() + static_cast<ptrdiff_t>(blocks.size() / 2));
        }
    }
    const HeapStatistics s = heap_statistics(*m_heap);
    uint64_t bytes = 0;
    for (void* block : blocks) {
        bytes += heap_usable_size(*m_heap, block);
    }
    uint64_t allocations = 0;
    for (const SizeClassStatistics& cls : s.classes) {
        allocations += cls.allocations;
    }
    EXPECT_EQ(s.blocks_in_use, blocks.size());
    EXPECT_EQ(s.bytes_in_use, bytes);
    EXPECT_EQ(s.bytes_requested, requested);
    EXPECT_EQ(allocations, 500u);
    for (void* block : blocks) {
        heap_free(*m_heap, block);
    }
    EXPECT_EQ(blocks_in_use(*m_heap), 0u);
}

TEST_F(CpuCacheTest, DoubleFreeOfACachedBlockIsCaughtAtTheCall) {
    void* keep = heap_allocate(*m_heap, 32);
    void* block = heap_allocate(*m_heap, 32);
    heap_free(*m_heap, block);
    heap_free(*m_heap, block);
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::DoubleFree);
    EXPECT_EQ(test::report(0).address, reinterpret_cast<uintptr_t>(block));
    // Only once in the cache: two mallocs get two different blocks.
    void* first = heap_allocate(*m_heap, 32);
    void* second = heap_allocate(*m_heap, 32);
    EXPECT_NE(first, second);
    EXPECT_EQ(heap_usable_size(*m_heap, block), 32u); // live again, as `first`
    heap_free(*m_heap, first);
    heap_free(*m_heap, second);
    heap_free(*m_heap, keep);
    EXPECT_EQ(test::report_count(), 1u);
}

TEST_F(CpuCacheTest, DoubleFreeAfterTheBlockWasFlushedIsCaught) {
    void* block = heap_allocate(*m_heap, 48);
    void* keep = heap_allocate(*m_heap, 48);
    heap_free(*m_heap, block);
    heap_drain_cpu(*m_heap, platform::current_cpu()); // now on its slab's free list
    heap_free(*m_heap, block);
    EXPECT_EQ(heap_usable_size(*m_heap, block), 0u);
    ASSERT_EQ(test::report_count(), 2u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::DoubleFree);
    EXPECT_EQ(test::report(1).kind, ErrorKind::DoubleFree);
    heap_free(*m_heap, keep);
}

// A free whose magazine is full gives its block straight to its slab, and no free gives a slab
// back: the slabs the frees empty stay with the class, counted in its statistics, until a refill
// gives one back or heap_trim gives them all (class_cache.h).
TEST_F(CpuCacheTest, FreesBeyondAFullMagazineGoToTheirSlabsWhichTheClassKeeps) {
    constexpr unsigned kClass = 3; // 64 bytes
    std::vector<void*> blocks;
    for (unsigned i = 0; i < 10 * cpu_cache_capacity(kClass); ++i) {
        blocks.push_back(heap_allocate(*m_heap, 64));
    }
    const uint64_t slabs = heap_statistics(*m_heap).classes[kClass].slabs;
    ASSERT_GT(slabs, 4u);
    for (void* block : blocks) {
        heap_free(*m_heap, block);
        ASSERT_TRUE(heap_check(*m_heap));
    }
    EXPECT_EQ(blocks_in_use(*m_heap), 0u);
    EXPECT_EQ(heap_statistics(*m_heap).classes[kClass].slabs, slabs);
    // Empty the magazine: the one refill that follows gives one excess slab back.
    blocks.clear();
    for (unsigned i = 0; i <= cpu_cache_capacity(kClass); ++i) {
        blocks.push_back(heap_allocate(*m_heap, 64));
    }
    EXPECT_EQ(heap_statistics(*m_heap).classes[kClass].slabs, slabs - 1);
    for (void* block : blocks) {
        heap_free(*m_heap, block);
    }
    heap_trim(*m_heap);
    EXPECT_EQ(heap_statistics(*m_heap).classes[kClass].slabs, 0u);
    EXPECT_EQ(test::report_count(), 0u);
}

// A flush makes no arena call: a slab it empties beyond the reserve stays as excess, counted in
// the class's slabs; each refill that needs no new slab gives one back (and takes one block
// then), and a trim the rest. So no free pays for a lookup, a flush and a merge together (the
// worst free, ./bench.sh --summary).
TEST(ClassCacheFlushTest, AFlushKeepsTheSlabsItEmptiesUntilARefillOrATrim) {
    constexpr unsigned kClass = heap::kSizeClassCount - 1; // two blocks per slab
    constexpr heap::SlabLayout kLayout = heap::slab_layout(kClass);
    static_assert(kLayout.block_count == 2 && heap::kReserveSlabs == 1);
    constexpr uintptr_t kSecret = uintptr_t{0x5eed} << 48;
    test::Region region{1 << 20};
    std::vector<uint64_t> storage(heap::SegregatedFit::storage_bytes(region.size()) / 8 + 1);
    heap::Arenas arenas;
    ASSERT_TRUE(arenas.init_region(storage.data(), region.data(), region.size(), nullptr, kSecret));
    heap::ClassCache cls;
    cls.init(kClass);
    // Four slabs, each taken whole by two refills (a new slab gives its first block alone); the
    // blocks then carry their free marks, as a CPU cache holds them.
    void* blocks[8];
    heap::Slab* corrupt = nullptr;
    for (unsigned slab = 0; slab < 4; ++slab) {
        void* more[2];
        for (unsigned i = 0; i < 2; ++i) {
            const heap::ClassCache::Batch batch =
                cls.allocate_batch(arenas, more, 2, kSecret, corrupt);
            ASSERT_NE(batch.block, nullptr);
            ASSERT_EQ(batch.cached, 0u);
            blocks[2 * slab + i] = batch.block;
        }
        auto* base = static_cast<unsigned char*>(blocks[2 * slab]) - kLayout.first_offset;
        for (unsigned i = 0; i < 2; ++i) {
            void* block = blocks[2 * slab + i];
            static_cast<heap::FreeBlock*>(block)->mark =
                heap::free_mark(reinterpret_cast<heap::Slab*>(base), block, kSecret);
        }
    }
    ASSERT_EQ(cls.statistics().slabs, 4u);
    heap::FlushFailures failures;
    cls.free_batch(blocks, 8, kSecret, arenas, failures);
    EXPECT_EQ(failures.count, 0u);
    EXPECT_EQ(cls.statistics().slabs, 4u) << "one empty slab on the partial list, three reserved";
    EXPECT_EQ(cls.statistics().blocks_in_use, 0u);
    EXPECT_EQ(arenas.slabs_given(), 0u);
    EXPECT_TRUE(cls.check(kSecret));
    // Each refill from the partial slab gives one excess slab back, until the reserve keeps one.
    for (unsigned i = 0; i < 3; ++i) {
        void* more[2];
        const heap::ClassCache::Batch batch = cls.allocate_batch(arenas, more, 2, kSecret, corrupt);
        ASSERT_NE(batch.block, nullptr);
        EXPECT_EQ(arenas.slabs_given(), i < 2 ? i + 1 : 2u);
        EXPECT_TRUE(cls.check(kSecret));
    }
    EXPECT_EQ(cls.statistics().slabs, 2u) << "two full slabs, the reserve empty";
    cls.trim(arenas);
    EXPECT_EQ(cls.statistics().slabs, 2u) << "slabs with live blocks stay";
}

// A free mark names its block, not just the block's place in its slab: blocks at one offset in
// slabs whose addresses share their low bits (a page apart here) have marks of their own, and
// each mark gives back its slab.
TEST(FreeMarkTest, BlocksAtOneOffsetInSlabsPlacedAlikeHaveMarksOfTheirOwn) {
    constexpr uintptr_t kSecret = uintptr_t{0x5eed} << 48 | uintptr_t{1} << 63;
    std::vector<uintptr_t> marks;
    for (uintptr_t slab = uintptr_t{0x7f12} << 32; marks.size() < 256; slab += 4096) {
        for (const uintptr_t offset : {uintptr_t{64}, uintptr_t{1024}}) {
            const auto* block = reinterpret_cast<const void*>(slab + offset);
            const uintptr_t mark = heap::free_mark_at(slab, slab >> 12, block, kSecret);
            EXPECT_EQ(heap::slab_named_by_mark(mark, block, kSecret), slab);
            EXPECT_NE(mark, 0u);
            marks.push_back(mark);
        }
    }
    std::sort(marks.begin(), marks.end());
    EXPECT_EQ(std::unique(marks.begin(), marks.end()), marks.end());
}

// Medium blocks and large runs reallocated down to small blocks: the copy brings along whatever
// the old block's memory held, free marks of slabs that once stood there included. Each small
// block must still be a live block of its own (found live, freed once without a report).
TEST(FreeMarkTest, SmallBlocksFilledFromOldSlabMemoryStayLive) {
    test::Frames frames(256 << 20);
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    test::clear_reports();
    const uint64_t seed = test::seed_from_environment(1);
    std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
    std::mt19937_64 random(seed);
    std::vector<void*> live(200, nullptr);
    int taken_for_free = 0; // small blocks found already free right after their realloc
    for (int step = 0; step < 1000000; ++step) {
        void*& slot = live[random() % live.size()];
        if (slot != nullptr && random() % 4 == 0 && heap_usable_size(*heap, slot) > 2048) {
            slot = heap_reallocate(*heap, slot, 1 + random() % 2048);
            ASSERT_NE(slot, nullptr);
            taken_for_free += heap_usable_size(*heap, slot) == 0 ? 1 : 0;
            continue;
        }
        heap_free(*heap, slot);
        const size_t alignment = random() % 4 == 0 ? size_t{16} << random() % 10 : 16;
        const size_t size = random() % 3 == 0
                                ? 2049 + random() % (random() % 8 == 0 ? 3 << 20 : 8192)
                                : 1 + random() % 2048;
        slot = heap_allocate(*heap, size, alignment);
    }
    EXPECT_EQ(taken_for_free, 0);
    EXPECT_EQ(test::report_count(), 0u);
    for (void* block : live) {
        heap_free(*heap, block);
    }
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
}

// No free mark outlives its slab's incarnation: blocks of a slab carved where a slab given back
// stood have marks of their own, so a mark left in the old slab's memory (which a realloc may
// copy through medium blocks into the very block it names) never makes a live block of the new
// slab look freed. (Before, such a block's free was reported as a double free and the block lost,
// about once a minute with four threads reallocating blocks of every kind on a region heap.)
TEST(FreeMarkTest, ASlabCarvedWhereAnotherStoodHasMarksOfItsOwn) {
    for (unsigned index = 0; index < heap::kSizeClassCount; index += 5) {
        const heap::SlabLayout& layout = heap::kSlabLayouts[index];
        constexpr uintptr_t kSecret = uintptr_t{0x5eed} << 48 | uintptr_t{1} << 63;
        test::Region region{1 << 20};
        std::vector<uint64_t> storage(heap::SegregatedFit::storage_bytes(region.size()) / 8 + 1);
        heap::Arenas arenas;
        ASSERT_TRUE(
            arenas.init_region(storage.data(), region.data(), region.size(), nullptr, kSecret));
        heap::ClassCache cls;
        cls.init(index);
        // Three slabs' worth of blocks, taken as a CPU cache takes them, given back with their
        // marks, the slabs then given back by a trim and carved again at the same places.
        const auto take_slabs = [&](std::vector<void*>& blocks) {
            heap::Slab* corrupt = nullptr;
            while (blocks.size() < 3 * size_t{layout.block_count}) {
                void* more[8];
                const heap::ClassCache::Batch batch =
                    cls.allocate_batch(arenas, more, 8, kSecret, corrupt);
                ASSERT_NE(batch.block, nullptr);
                blocks.push_back(batch.block);
                blocks.insert(blocks.end(), more, more + batch.cached);
            }
        };
        const auto mark_of = [&](void* block) {
            const auto* slab = static_cast<const heap::Slab*>(
                arenas.taken_block_holding(block, heap::BlockUse::Slab, heap::kMaxSlabBytes));
            EXPECT_NE(slab, nullptr);
            return slab != nullptr ? heap::free_mark(slab, block, kSecret) : 0;
        };
        std::vector<void*> blocks;
        take_slabs(blocks);
        std::map<void*, uintptr_t> old_marks;
        for (void* block : blocks) {
            old_marks[block] = mark_of(block);
            static_cast<heap::FreeBlock*>(block)->mark = old_marks[block];
        }
        heap::FlushFailures failures;
        cls.free_batch(blocks.data(), static_cast<uint32_t>(blocks.size()), kSecret, arenas,
                       failures);
        ASSERT_EQ(failures.count, 0u);
        cls.trim(arenas);
        ASSERT_EQ(cls.statistics().slabs, 0u);
        std::vector<void*> again;
        take_slabs(again);
        size_t same_places = 0;
        for (void* block : again) {
            const auto old = old_marks.find(block);
            if (old == old_marks.end()) {
                continue;
            }
            ++same_places;
            EXPECT_NE(mark_of(block), old->second) << "class " << index << ", block " << block;
        }
        EXPECT_GT(same_places, 0u) << "class " << index << ": no slab carved at an old place";
    }
}

// Write after free on a slab: eight blocks of `size` bytes freed onto their slab's free list
// (through a drain), then each one's encoded link overwritten with `target`, an address outside
// the slab. Returns a ninth block, still live, that keeps the slab in use.
void* overwrite_slab_links_after_free(Heap& heap, size_t size, const void* target) {
    std::vector<void*> blocks;
    for (int i = 0; i < 8; ++i) {
        blocks.push_back(heap_allocate(heap, size));
    }
    void* keep = heap_allocate(heap, size);
    for (void* block : blocks) {
        heap_free(heap, block);
    }
    heap_drain_cpu(heap, platform::current_cpu()); // onto the slab's free list
    for (void* block : blocks) {
        static_cast<uintptr_t*>(block)[0] = reinterpret_cast<uintptr_t>(target); // the link
    }
    return keep;
}

// Write after free: a free block's encoded link overwritten with an address outside its slab.
TEST_F(CpuCacheTest, CorruptFreeListLinkIsReportedAndNeverFollowed) {
    constexpr size_t kSize = 128;
    static unsigned char target[kSize];
    void* keep = overwrite_slab_links_after_free(*m_heap, kSize, target);
    std::vector<void*> again;
    for (int i = 0; i < 64; ++i) {
        void* block = heap_allocate(*m_heap, kSize);
        ASSERT_NE(block, nullptr);
        EXPECT_NE(block, static_cast<void*>(target));
        // Every block handed out is a block of this heap's memory, one of its slab blocks.
        EXPECT_GE(static_cast<unsigned char*>(block), m_region.data());
        EXPECT_LT(static_cast<unsigned char*>(block), m_region.data() + m_region.size());
        again.push_back(block);
    }
    EXPECT_GE(count_reports(ErrorKind::CorruptMetadata), 1u);
    EXPECT_TRUE(heap_check(*m_heap)); // the damaged slab was taken out of use
    test::clear_reports();
    for (void* block : again) {
        heap_free(*m_heap, block);
    }
    heap_free(*m_heap, keep);
    EXPECT_EQ(test::report_count(), 0u);
}

// A heap over a page frame allocator destroyed after a write after free retired one of its
// slabs: the retired slab's blocks count as in use no more, so the destruction goes on and gives
// every arena back whole, the retired slab with it: no page is lost.
TEST(CpuCacheCorruptionTest, DestroyAfterARetiredSlabLosesNoPage) {
    test::Frames frames(16 << 20);
    const uint64_t free_pages = frames.free_pages();
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    test::clear_reports();
    constexpr size_t kSize = 128;
    static unsigned char target[kSize];
    void* keep = overwrite_slab_links_after_free(*heap, kSize, target);
    std::vector<void*> again;
    for (int i = 0; i < 64; ++i) {
        again.push_back(heap_allocate(*heap, kSize));
    }
    EXPECT_GE(test::report_count(), 1u);
    test::clear_reports();
    for (void* block : again) {
        heap_free(*heap, block);
    }
    heap_free(*heap, keep); // a block of the retired slab: dropped with it
    EXPECT_EQ(heap_statistics(*heap).blocks_in_use, 0u);
    EXPECT_TRUE(heap_destroy(*heap));
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_EQ(frames.free_pages(), free_pages);
}

// Write after free on medium blocks (the segregated fit's lists, segregated_fit.h): each freed
// block's list links overwritten with a pointer outside the heap, into a live block, or garbage.
// Every later malloc returns memory of the heap that no live block holds, the damage is reported
// once per rebuild, and the heap checks clean.
void overwrite_medium_links_after_free(Heap& heap, unsigned char* begin, unsigned char* end) {
    constexpr size_t kSize = 5000;
    static unsigned char target[kSize];
    std::vector<void*> freed;
    std::vector<void*> live;
    for (int i = 0; i < 12; ++i) {
        freed.push_back(heap_allocate(heap, kSize));
        live.push_back(heap_allocate(heap, kSize)); // keeps the freed ones apart
    }
    for (void* block : freed) {
        heap_free(heap, block);
    }
    test::clear_reports();
    for (size_t i = 0; i < freed.size(); ++i) {
        auto* links = static_cast<uintptr_t*>(freed[i]);
        const uintptr_t forged[] = {reinterpret_cast<uintptr_t>(target) - 16,
                                    reinterpret_cast<uintptr_t>(live[0]) - 16, 0x5a5a5a5a5a5a5a50u};
        links[0] = forged[i % 3];
        links[1] = forged[(i + 1) % 3];
    }
    // 4,864 bytes: the smallest size of the list the freed blocks (5,008 usable bytes) are on,
    // so the good-fit search takes them first.
    constexpr size_t kRetake = 4864;
    std::vector<void*> again;
    for (int i = 0; i < 24; ++i) {
        auto* block = static_cast<unsigned char*>(heap_allocate(heap, kRetake));
        ASSERT_NE(block, nullptr);
        EXPECT_GE(block, begin);
        EXPECT_LT(block, end);
        for (void* other : live) { // no overlap with a live block
            auto* start = static_cast<unsigned char*>(other);
            EXPECT_TRUE(block + kRetake <= start || start + kSize <= block);
        }
        again.push_back(block);
    }
    EXPECT_GE(count_reports(ErrorKind::CorruptMetadata), 1u);
    EXPECT_TRUE(heap_check(heap));
    test::clear_reports();
    for (void* block : again) {
        heap_free(heap, block);
    }
    for (void* block : live) {
        heap_free(heap, block);
    }
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_check(heap));
}

TEST_F(CpuCacheTest, CorruptMediumFreeListLinkIsReportedAndNeverFollowed) {
    overwrite_medium_links_after_free(*m_heap, m_region.data(), m_region.data() + m_region.size());
}

TEST(CpuCacheCorruptionTest, CorruptMediumFreeListLinkOverFramesIsNeverFollowed) {
    test::Frames frames(16 << 20);
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    test::clear_reports();
    auto* begin = static_cast<unsigned char*>(platform::phys_to_virt(PhysAddr{4} << 30));
    overwrite_medium_links_after_free(*heap, begin, begin + (16 << 20));
    EXPECT_TRUE(heap_destroy(*heap));
}

// Write after free: a cached block's free mark overwritten; the flush reports it and gives the
// block back to the slab the arenas' metadata names (not the one the mark names), so nothing is
// lost: the block is handed out again and the heap, over a region or a page frame allocator,
// can be destroyed, every page back.
void expect_an_overwritten_cached_block_goes_back_to_its_slab(Heap& heap) {
    test::clear_reports();
    void* keep = heap_allocate(heap, 64);
    void* block = heap_allocate(heap, 64);
    heap_free(heap, block);
    static_cast<uintptr_t*>(block)[1] = 0x1234;
    heap_drain_cpu(heap, platform::current_cpu());
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::CorruptMetadata);
    EXPECT_EQ(test::report(0).address, reinterpret_cast<uintptr_t>(block));
    EXPECT_TRUE(heap_check(heap));
    EXPECT_EQ(heap_statistics(heap).blocks_in_use, 1u); // `keep` alone
    heap_free(heap, keep);
    EXPECT_EQ(heap_statistics(heap).blocks_in_use, 0u);
    std::vector<void*> again;
    for (int i = 0; i < 200; ++i) {
        again.push_back(heap_allocate(heap, 64));
    }
    EXPECT_NE(std::find(again.begin(), again.end(), block), again.end());
    for (void* other : again) {
        heap_free(heap, other);
    }
    EXPECT_EQ(test::report_count(), 1u);
    EXPECT_TRUE(heap_check(heap));
    test::clear_reports();
}

TEST(CpuCacheCorruptionTest, OverwrittenCachedBlockGoesBackToItsSlabInARegion) {
    test::Region region{1 << 20};
    Heap* heap = heap_create_in_region(region.data(), region.size());
    ASSERT_NE(heap, nullptr);
    expect_an_overwritten_cached_block_goes_back_to_its_slab(*heap);
    EXPECT_TRUE(heap_destroy(*heap));
}

TEST(CpuCacheCorruptionTest, OverwrittenCachedBlockGoesBackToItsSlabOverFrames) {
    test::Frames frames(16 << 20);
    const uint64_t free_pages = frames.free_pages();
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    expect_an_overwritten_cached_block_goes_back_to_its_slab(*heap);
    EXPECT_TRUE(heap_destroy(*heap));
    EXPECT_EQ(frames.free_pages(), free_pages);
}

// Write after free found only as the heap is destroyed (its drain flushes the cached block):
// reported, and the destruction gives every page back.
TEST(CpuCacheCorruptionTest, OverwrittenCachedBlockFoundByDestroyLosesNoPage) {
    test::Frames frames(16 << 20);
    const uint64_t free_pages = frames.free_pages();
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    test::clear_reports();
    void* block = heap_allocate(*heap, 32);
    heap_free(*heap, block);
    memset(block, 0xff, 32);
    EXPECT_TRUE(heap_destroy(*heap));
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::CorruptMetadata);
    EXPECT_EQ(frames.free_pages(), free_pages);
    test::clear_reports();
}

// A slab hint places only the blocks inside its slab, and only while no slab has been given back
// since it was noted. A block of another slab in the same granule is not placed by it: the
// hinted slab may be leaving the heap on another CPU right then (its count read before it moved),
// so its header must not be read for a block it does not hold. The two slabs that meet a granule
// are both hinted; a third slab on the same set replaces the older.
TEST(SlabHintTest, AHintHoldsOnlyInsideItsSlabAndWhileNoSlabWasGivenBack) {
    auto cache = std::make_unique<heap::CpuCache>();
    cache->init();
    constexpr uint32_t kSlabBytes = 2048;
    constexpr uintptr_t kGranule = uintptr_t{1} << heap::kSlabHintGranuleShift;
    const uintptr_t begin = uintptr_t{0x12345} << kPageShift | 0x40;
    auto* slab = reinterpret_cast<heap::Slab*>(begin); // never read
    const uintptr_t address = begin + 0x80;
    EXPECT_EQ(cache->hinted_slab(address, 0), nullptr) << "empty";
    EXPECT_EQ(cache->hinted_slab(0, 0), nullptr) << "empty, at address 0";
    cache->hint_slab(address, slab, kSlabBytes, 5);
    EXPECT_EQ(cache->hinted_slab(address, 5), slab);
    EXPECT_EQ(cache->hinted_slab(address + 0x100, 5), slab) << "the same slab";
    EXPECT_EQ(cache->hinted_slab(address, 6), nullptr) << "a slab was given back since";
    EXPECT_EQ(cache->hinted_slab(begin - 0x10, 5), nullptr) << "the slab before, same granule";
    EXPECT_EQ(cache->hinted_slab(begin + kSlabBytes, 5), nullptr)
        << "the next slab, in a granule not hinted";
    EXPECT_EQ(cache->hinted_slab(address + kGranule * cache->slab_hint_sets(), 5), nullptr)
        << "another granule on the same set";

    // The slab before, in the same granule: both are hinted.
    auto* before = reinterpret_cast<heap::Slab*>(begin - kSlabBytes);
    cache->hint_slab(begin - 0x10, before, kSlabBytes, 5);
    EXPECT_EQ(cache->hinted_slab(begin - 0x10, 5), before);
    EXPECT_EQ(cache->hinted_slab(address, 5), slab) << "two slabs meet a granule";
    // A third slab on the same set (another granule) replaces the older, `slab`.
    const uintptr_t same_set = address + kGranule * cache->slab_hint_sets();
    auto* third = reinterpret_cast<heap::Slab*>(same_set - 0x40);
    cache->hint_slab(same_set, third, kSlabBytes, 5);
    EXPECT_EQ(cache->hinted_slab(same_set, 5), third);
    EXPECT_EQ(cache->hinted_slab(begin - 0x10, 5), before) << "the later of the two stays";
    EXPECT_EQ(cache->hinted_slab(address, 5), nullptr) << "replaced";
    // A hint noted at a later count empties the rest of its set.
    cache->hint_slab(address, slab, kSlabBytes, 7);
    EXPECT_EQ(cache->hinted_slab(address, 7), slab);
    EXPECT_EQ(cache->hinted_slab(begin - 0x10, 7), nullptr) << "noted at an older count";
    EXPECT_EQ(cache->hinted_slab(same_set, 7), nullptr) << "noted at an older count";
}

// A CPU's cache starts with kSlabHintSetsAtFirst sets of slab hints; each free the hints miss
// makes kSlabHintSetsPerWidening more ready, and the hints use them once a power of two of them
// is. A granule that shared a set with another then has a set of its own.
TEST(SlabHintTest, TheSetsWidenAsFreesMissThem) {
    auto cache = std::make_unique<heap::CpuCache>();
    cache->init();
    constexpr uint32_t kSlabBytes = 2048;
    constexpr uintptr_t kGranule = uintptr_t{1} << heap::kSlabHintGranuleShift;
    const uintptr_t first = uintptr_t{0x12345} << kPageShift;
    // Where the sets not yet ready lie, what would place every block from `first` on (at count
    // 5) in a slab at `first`: never read as hints.
    for (unsigned set = cache->slab_hints_ready; set < heap::kSlabHintSets; ++set) {
        cache->slab_hints[set] =
            heap::SlabHintSet{{reinterpret_cast<heap::Slab*>(first), nullptr}, {UINT32_MAX, 0}, 5};
    }
    EXPECT_EQ(cache->slab_hint_sets(), heap::kSlabHintSetsAtFirst);
    for (uintptr_t granule = 0; granule < heap::kSlabHintSets; ++granule) {
        EXPECT_EQ(cache->hinted_slab(first + granule * kGranule, 5), nullptr);
    }
    // Three slabs whose granules share a set of the first sets: the third replaces the first.
    const auto note_three = [&] {
        for (uintptr_t slab = 0; slab < 3; ++slab) {
            const uintptr_t address = first + slab * kGranule * heap::kSlabHintSetsAtFirst;
            cache->hint_slab(address, reinterpret_cast<heap::Slab*>(address), kSlabBytes, 5);
        }
    };
    const auto hinted = [&] {
        unsigned found = 0;
        for (uintptr_t slab = 0; slab < 3; ++slab) {
            const uintptr_t address = first + slab * kGranule * heap::kSlabHintSetsAtFirst;
            found += cache->hinted_slab(address, 5) == reinterpret_cast<heap::Slab*>(address);
        }
        return found;
    };
    note_three();
    EXPECT_EQ(hinted(), 2u);

    unsigned widenings = 0;
    while (cache->slab_hint_sets() < heap::kSlabHintSets) {
        const unsigned ready = cache->slab_hints_ready;
        cache->widen_slab_hints();
        ++widenings;
        ASSERT_EQ(cache->slab_hints_ready, ready + heap::kSlabHintSetsPerWidening);
        EXPECT_LT(cache->slab_hint_mask, cache->slab_hints_ready);
        EXPECT_TRUE(is_power_of_two(cache->slab_hint_sets()));
    }
    EXPECT_EQ(widenings,
              (heap::kSlabHintSets - heap::kSlabHintSetsAtFirst) / heap::kSlabHintSetsPerWidening);
    cache->widen_slab_hints();
    EXPECT_EQ(cache->slab_hints_ready, heap::kSlabHintSets) << "no further";
    for (uintptr_t granule = 1; granule < heap::kSlabHintSets; ++granule) {
        if (granule % heap::kSlabHintSetsAtFirst != 0) {
            EXPECT_EQ(cache->hinted_slab(first + granule * kGranule, 5), nullptr)
                << "every set was emptied before it was used";
        }
    }
    note_three();
    EXPECT_EQ(hinted(), 3u) << "each on a set of its own";
}

// An arena hint places only the addresses inside its arena, and only while no arena has been
// given back since it was noted; it is kept at the entry of the address's kMinArenaBytes span.
TEST(ArenaHintTest, AHintHoldsOnlyInsideItsArenaAndWhileNoArenaWasGivenBack) {
    auto cache = std::make_unique<heap::CpuCache>();
    for (heap::ArenaHint& hint : cache->arena_hints) {
        hint = heap::ArenaHint{{0, 0}, 0};
    }
    const heap::ArenaBounds arena{uintptr_t{0x40} * heap::kMinArenaBytes, 2 * heap::kMinArenaBytes};
    const uintptr_t address = arena.base + 0x1230;
    EXPECT_EQ(cache->hinted_arena(address, 0).bytes, 0u) << "empty";
    EXPECT_EQ(cache->hinted_arena(0, 0).bytes, 0u) << "empty, at address 0";
    cache->hint_arena(address, arena, 3);
    EXPECT_EQ(cache->hinted_arena(address, 3).base, arena.base);
    EXPECT_EQ(cache->hinted_arena(address + 0x100, 3).bytes, arena.bytes) << "the same span";
    EXPECT_EQ(cache->hinted_arena(address, 4).bytes, 0u) << "an arena was given back since";
    EXPECT_EQ(cache->hinted_arena(arena.base - 16, 3).bytes, 0u) << "below the arena";
    EXPECT_EQ(cache->hinted_arena(address + heap::kMinArenaBytes, 3).bytes, 0u)
        << "the arena's next span: its own entry, not noted";
    const uintptr_t same_entry = address + heap::kArenaHints * heap::kMinArenaBytes;
    EXPECT_EQ(cache->hinted_arena(same_entry, 3).bytes, 0u) << "beyond the arena, same entry";
    cache->hint_arena(same_entry, heap::ArenaBounds{same_entry - 0x1230, heap::kMinArenaBytes}, 3);
    EXPECT_EQ(cache->hinted_arena(address, 3).bytes, 0u) << "replaced";
}

// heap_check() verifies the calling CPU's hints: a current arena hint that names no arena of the
// heap, or a current slab hint whose slab does not end where it says, fails the check.
TEST(ArenaHintTest, HeapCheckFailsOnAHintThatNamesNoArenaOrSlab) {
    test::Frames frames(16 << 20);
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    void* small = heap_allocate(*heap, 48);
    heap_free(*heap, small); // missing the empty slab hints: its slab and its arena hinted
    ASSERT_TRUE(heap_check(*heap));
    heap::CpuCache* cache = heap->cpus.mine(platform::current_cpu());
    ASSERT_NE(cache, nullptr);
    const auto at = reinterpret_cast<uintptr_t>(small);
    heap::ArenaHint& hint = cache->arena_hints[(at / heap::kMinArenaBytes) % heap::kArenaHints];
    ASSERT_NE(hint.bounds.bytes, 0u);
    const heap::ArenaHint kept = hint;
    hint.bounds.bytes /= 2;
    test::clear_reports();
    EXPECT_FALSE(heap_check(*heap));
    hint = kept;
    heap::SlabHintSet& slab_hints =
        cache->slab_hints[cache->slab_hint_set(reinterpret_cast<uintptr_t>(small))];
    ASSERT_NE(slab_hints.slabs[0], nullptr);
    const heap::SlabHintSet kept_slabs = slab_hints;
    slab_hints.bytes[0] += 16;
    EXPECT_FALSE(heap_check(*heap));
    slab_hints = kept_slabs;
    test::clear_reports();
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
}

// A heap's arenas given back and their pages taken by another heap as arenas of the same bounds:
// a free on the first heap of a small block the second handed out there (a stale pointer, whose
// arena the first heap's CPU hinted) is reported as the other heap's and changes neither heap.
// Followed, the stale hint would place the block in the second heap's slab and cache it.
TEST(ArenaHintTest, APointerIntoAnArenaGivenBackIsNotPlacedByItsStaleHint) {
    test::Frames frames(64 << 20);
    Heap* first = heap_create(frames.allocator());
    ASSERT_NE(first, nullptr);
    std::vector<void*> blocks;
    for (int i = 0; i < 48; ++i) {
        blocks.push_back(heap_allocate(*first, 100 * 1024));
        ASSERT_NE(blocks.back(), nullptr);
    }
    // The CPU's cache, made last: its storage keeps only the arena it lands in, not the first.
    ASSERT_TRUE(heap_prepare_cpu(*first));
    // The arenas as a free of a slab's block in each would have hinted them; an arena the frees
    // empty goes back (all but the spare and the one the CPU's cache lives in), making its hint
    // stale. No trim: that would give the cache back too, and its hints with it.
    heap::CpuCache* cache = first->cpus.mine(platform::current_cpu());
    ASSERT_NE(cache, nullptr);
    for (void* block : blocks) {
        const auto at = reinterpret_cast<uintptr_t>(block);
        cache->hint_arena(at, heap::arena_holding(*first, block), first->arenas.arenas_given());
    }
    for (void* block : blocks) {
        heap_free(*first, block);
    }
    ASSERT_GT(first->arenas.arenas_given(), 0u);
    ASSERT_TRUE(heap_check(*first));
    const HeapStatistics first_before = heap_statistics(*first);

    Heap* second = heap_create(frames.allocator());
    ASSERT_NE(second, nullptr);
    std::vector<void*> taken;
    void* inside = nullptr; // a small block of the second heap in an arena the first one hinted
    for (int i = 0; i < 20000 && inside == nullptr; ++i) {
        // First a block only an arena of 512 KiB holds, as the first arena the first heap gave
        // back; then small blocks.
        const size_t size = i == 0 ? 300 * 1024 : 48;
        void* block = heap_allocate(*second, size);
        ASSERT_NE(block, nullptr);
        std::memset(block, 0x5c, size);
        taken.push_back(block);
        const auto at = reinterpret_cast<uintptr_t>(block);
        const heap::ArenaHint& hint =
            cache->arena_hints[(at / heap::kMinArenaBytes) % heap::kArenaHints];
        const heap::ArenaBounds arena = heap::arena_holding(*second, block);
        if (size == 48 && hint.bounds.base == arena.base && hint.bounds.bytes == arena.bytes) {
            inside = block;
        }
    }
    ASSERT_NE(inside, nullptr) << "the second heap never took an arena the first one hinted";
    const HeapStatistics second_before = heap_statistics(*second);
    test::clear_reports();
    heap_free(*first, inside);
    EXPECT_EQ(count_reports(ErrorKind::ForeignHeap), 1u);
    EXPECT_EQ(test::report_count(), 1u);
    EXPECT_TRUE(heap_check(*first));
    EXPECT_TRUE(heap_check(*second));
    EXPECT_EQ(heap_statistics(*first).blocks_in_use, first_before.blocks_in_use);
    EXPECT_EQ(heap_statistics(*second).blocks_in_use, second_before.blocks_in_use);
    test::clear_reports();
    for (void* block : taken) {
        heap_free(*second, block);
    }
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_destroy(*second));
    EXPECT_TRUE(heap_destroy(*first));
}

// Slabs given back and their memory taken again by other classes and medium blocks: the frees
// that follow (whose pages the CPU hinted before) still find the right slab, and a double free
// is still caught.
TEST_F(CpuCacheTest, FreesStayExactWhenHintedSlabsAreGivenBackAndTheirMemoryReused) {
    for (int round = 0; round < 4; ++round) {
        std::vector<void*> blocks;
        const size_t size = round % 2 == 0 ? 48 : 1024;
        for (int i = 0; i < 300; ++i) {
            blocks.push_back(heap_allocate(*m_heap, size));
            std::memset(blocks.back(), 0xa5, size);
        }
        void* medium = heap_allocate(*m_heap, 3000 + 1000 * static_cast<size_t>(round));
        ASSERT_NE(medium, nullptr);
        std::memset(medium, 0x5a, 3000);
        for (void* block : blocks) {
            heap_free(*m_heap, block);
            ASSERT_TRUE(heap_check(*m_heap));
        }
        heap_free(*m_heap, medium);
        EXPECT_EQ(blocks_in_use(*m_heap), 0u);
        heap_drain_cpu(*m_heap, platform::current_cpu());
        heap_trim(*m_heap); // the slabs go back: every hint is stale now
        EXPECT_EQ(slabs_held(*m_heap), 0u);
        ASSERT_TRUE(heap_check(*m_heap));
    }
    void* block = heap_allocate(*m_heap, 48);
    heap_free(*m_heap, block);
    EXPECT_EQ(test::report_count(), 0u);
    heap_free(*m_heap, block);
    EXPECT_EQ(count_reports(ErrorKind::DoubleFree), 1u);
    test::clear_reports();
}

TEST_F(CpuCacheTest, EveryOperationOfARandomRunKeepsTheInvariants) {
    const uint64_t seed = test::seed_from_environment(20261201);
    std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
    std::mt19937_64 random(seed);
    std::vector<std::pair<unsigned char*, size_t>> live;
    for (int step = 0; step < 3000; ++step) {
        const unsigned action = static_cast<unsigned>(random() % 10);
        if (action < 5 || live.empty()) {
            const size_t size = random() % 4 == 0 ? random() % 8192 : random() % 512;
            auto* block = static_cast<unsigned char*>(heap_allocate(*m_heap, size));
            ASSERT_NE(block, nullptr);
            std::fill(block, block + size, static_cast<unsigned char>(step));
            live.emplace_back(block, size);
        } else if (action < 9) {
            const size_t index = random() % live.size();
            const auto [block, size] = live[index];
            for (size_t i = 0; i < size; ++i) {
                ASSERT_EQ(block[i], block[0]) << "seed " << seed;
            }
            heap_free(*m_heap, block);
            live[index] = live.back();
            live.pop_back();
        } else if (random() % 2 == 0) {
            heap_drain_cpu(*m_heap, platform::current_cpu());
        } else {
            heap_trim(*m_heap);
        }
        ASSERT_TRUE(heap_check(*m_heap)) << "seed " << seed << " step " << step;
        ASSERT_EQ(blocks_in_use(*m_heap), live.size()) << "seed " << seed;
    }
    for (const auto& [block, size] : live) {
        heap_free(*m_heap, block);
    }
    EXPECT_EQ(test::report_count(), 0u);
}

// A region heap too small for per-CPU caches still works, and a 32 KiB one (plus what the heap's
// state grows with more than 64 CPU slots) still holds 384 blocks of 64 bytes.
TEST(CpuCacheSmallRegionTest, SmallRegionHeapsGoWithout) {
    test::Region region((32 << 10) + test::kHeapStateBytesBeyondDefault);
    ASSERT_LT(region.size(), heap::CpuCaches::kMinRegionBytes);
    Heap* heap = heap_create_in_region(region.data(), region.size());
    ASSERT_NE(heap, nullptr);
    std::vector<void*> blocks;
    while (void* block = heap_allocate(*heap, 64)) {
        blocks.push_back(block);
    }
    EXPECT_GE(blocks.size(), 384u);
    for (void* block : blocks) {
        heap_free(*heap, block);
    }
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
}

// With CPU caches on a build for more than one CPU, a slab's header and bitmap fill the end of a
// cache line of their own, which the free() of every CPU reads: no block lies in it, so no other
// CPU's malloc or free writes it (slab.h: SlabPlacement::OwnLine), and block 0 starts the next
// line. Without CPU caches (a small region), the header starts the slab's medium block.
TEST(SlabPlacementTest, AHeaderLineHoldsNoBlockWhereOtherCpusFree) {
    for (const size_t bytes : {size_t{8} << 20, size_t{112} << 10}) {
        test::Region region(bytes + test::kHeapStateBytesBeyondDefault);
        Heap* heap = heap_create_in_region(region.data(), region.size());
        ASSERT_NE(heap, nullptr);
        ASSERT_EQ(heap->cpus.enabled(), bytes >= heap::CpuCaches::kMinRegionBytes);
        const bool own_line = heap->cpus.enabled() && platform::kMaxCpus > 1;
        EXPECT_EQ(heap->arenas.slab_placement(),
                  own_line ? heap::SlabPlacement::OwnLine : heap::SlabPlacement::Packed);
        std::vector<void*> blocks;
        std::set<uintptr_t> leads;
        for (unsigned index = 0; index < heap::kSizeClassCount; ++index) {
            const size_t size = heap::class_size(index);
            // Three slabs of the class where the region has room: leads of every length.
            const uint32_t count =
                bytes > (1 << 20) ? 3 * heap::kSlabLayouts[index].block_count : 1;
            for (uint32_t i = 0; i < count; ++i) {
                void* block = heap_allocate(*heap, size);
                ASSERT_NE(block, nullptr);
                blocks.push_back(block);
                void* medium = heap->arenas.taken_block_holding(block, heap::BlockUse::Slab,
                                                                heap::kMaxSlabReach);
                ASSERT_NE(medium, nullptr);
                const heap::Slab* slab = heap::slab_in_block(medium, heap->arenas.slab_placement());
                ASSERT_TRUE(heap::slab_handed_out(slab, block));
                const auto at = reinterpret_cast<uintptr_t>(slab);
                EXPECT_EQ(at - reinterpret_cast<uintptr_t>(medium), slab->lead);
                EXPECT_EQ(heap::block_of_slab(slab), medium);
                if (own_line) {
                    EXPECT_EQ(at % heap::kCacheLineBytes, 16u);
                    EXPECT_LE(slab->lead, heap::kMaxSlabLead);
                    EXPECT_EQ(heap::slab_detail::first_block(slab) % heap::kCacheLineBytes, 0u);
                    EXPECT_GE(reinterpret_cast<uintptr_t>(block),
                              align_up(at, uintptr_t{heap::kCacheLineBytes}))
                        << "no block in the header's line";
                } else {
                    EXPECT_EQ(slab->lead, 0u);
                }
                leads.insert(slab->lead);
            }
        }
        if (own_line) {
            EXPECT_GT(leads.size(), 1u) << "slabs at more than one offset in their lines";
        }
        EXPECT_TRUE(heap_check(*heap));
        for (void* block : blocks) {
            heap_free(*heap, block);
        }
        heap_trim(*heap);
        EXPECT_TRUE(heap_check(*heap));
        EXPECT_EQ(test::report_count(), 0u);
        EXPECT_TRUE(heap_destroy(*heap));
    }
}

// Threads (CPUs on the host) allocate and hand their blocks to other threads, which free them:
// every free of another CPU's block goes through the freeing CPU's cache.
class CpuCacheThreadTest : public ::testing::TestWithParam<bool> {};

TEST_P(CpuCacheThreadTest, CrossThreadFreesKeepTheHeapExact) {
    const bool over_frames = GetParam();
    test::Frames frames(64 << 20);
    test::Region region(32 << 20);
    Heap* heap = over_frames ? heap_create(frames.allocator())
                             : heap_create_in_region(region.data(), region.size());
    ASSERT_NE(heap, nullptr);
    test::clear_reports();
    constexpr unsigned kThreads = 8; // more than the machine's cores
    constexpr int kRounds = 4000;
    std::mutex mutex;
    std::vector<std::vector<unsigned char*>> mailboxes(kThreads);
    std::atomic<int> wrong{0};
    auto work = [&](unsigned self) {
        std::mt19937_64 random(self);
        std::vector<unsigned char*> mine;
        for (int round = 0; round < kRounds; ++round) {
            const size_t size = 1 + random() % (random() % 8 == 0 ? 4096 : 256);
            auto* block = static_cast<unsigned char*>(heap_allocate(*heap, size));
            if (block == nullptr) {
                wrong.fetch_add(1);
                continue;
            }
            block[0] = static_cast<unsigned char>(self);
            block[size - 1] = static_cast<unsigned char>(self);
            {
                std::lock_guard<std::mutex> guard(mutex);
                mailboxes[(self + 1 + random() % (kThreads - 1)) % kThreads].push_back(block);
                mine.swap(mailboxes[self]);
            }
            for (unsigned char* other : mine) {
                heap_free(*heap, other);
            }
            mine.clear();
        }
    };
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < kThreads; ++t) {
        threads.emplace_back(work, t);
    }
    for (std::thread& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(wrong.load(), 0);
    uint64_t left = 0;
    for (auto& mailbox : mailboxes) {
        left += mailbox.size();
    }
    EXPECT_EQ(heap_statistics(*heap).blocks_in_use, left);
    EXPECT_TRUE(heap_check(*heap));
    for (auto& mailbox : mailboxes) {
        for (unsigned char* block : mailbox) {
            heap_free(*heap, block);
        }
    }
    const HeapStatistics s = heap_statistics(*heap);
    EXPECT_EQ(s.blocks_in_use, 0u);
    uint64_t allocations = s.medium_allocations + s.large_allocations;
    for (const SizeClassStatistics& cls : s.classes) {
        allocations += cls.allocations;
    }
    EXPECT_EQ(allocations, uint64_t{kThreads} * kRounds);
    // The exited threads' caches still hold blocks; drain every CPU (all are idle now).
    for (unsigned cpu = 0; cpu < platform::kMaxCpus; ++cpu) {
        heap_drain_cpu(*heap, cpu);
    }
    heap_trim(*heap);
    EXPECT_EQ(slabs_held(*heap), 0u);
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_destroy(*heap));
}

// Threads allocate and free blocks of every kind while another takes every page the page
// frame allocator has left and gives them back, round after round: each of its failed page
// allocations makes the heap give back what it holds idle (the reclaim hook), taking no lock it
// would wait for, while the others allocate - so the heap's own growth, failing inside its
// locks, reclaims too. Nothing is lost or reported, and the heap stays exact.
TEST(HeapReclaimThreadTest, PageAllocationsTakeIdlePagesBackWhileThreadsAllocate) {
    test::Frames frames(16 << 20);
    const uint64_t free_at_start = frames.free_pages();
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    test::clear_reports();
    constexpr unsigned kThreads = 4;
    constexpr int kSteps = 20000;
    std::atomic<bool> done{false};
    auto work = [&](unsigned self) {
        std::mt19937_64 random(self);
        std::vector<unsigned char*> live(64, nullptr);
        for (int step = 0; step < kSteps; ++step) {
            unsigned char*& slot = live[random() % live.size()];
            heap_free(*heap, slot);
            const size_t size = 1 + random() % (random() % 16 == 0 ? 65536 : 2048);
            slot = static_cast<unsigned char*>(heap_allocate(*heap, size));
            if (slot != nullptr) { // null while the page taker holds every page
                slot[0] = static_cast<unsigned char>(self);
                slot[size - 1] = static_cast<unsigned char>(self);
            }
        }
        for (unsigned char* block : live) {
            heap_free(*heap, block);
        }
    };
    auto take_pages = [&] {
        std::vector<PhysAddr> pages;
        while (!done.load()) {
            for (PhysAddr page; (page = frames.allocator().allocate(0)) != kNoPage;) {
                pages.push_back(page);
            }
            for (const PhysAddr page : pages) {
                frames.allocator().free(page, 0);
            }
            pages.clear();
        }
    };
    std::thread taker(take_pages);
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < kThreads; ++t) {
        threads.emplace_back(work, t);
    }
    for (std::thread& thread : threads) {
        thread.join();
    }
    done.store(true);
    taker.join();
    EXPECT_EQ(heap_statistics(*heap).blocks_in_use, 0u);
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_destroy(*heap));
    for (unsigned cpu = 0; cpu < platform::kMaxCpus; ++cpu) {
        frames.allocator().drain_cpu(cpu);
    }
    EXPECT_EQ(frames.free_pages(), free_at_start);
    EXPECT_TRUE(frames.allocator().check().ok);
}

TEST_P(CpuCacheThreadTest, DoubleFreeAcrossThreadsIsCaught) {
    const bool over_frames = GetParam();
    test::Frames frames(16 << 20);
    test::Region region(1 << 20);
    Heap* heap = over_frames ? heap_create(frames.allocator())
                             : heap_create_in_region(region.data(), region.size());
    ASSERT_NE(heap, nullptr);
    void* keep = heap_allocate(*heap, 80);
    void* block = heap_allocate(*heap, 80);
    std::thread([&] { heap_free(*heap, block); }).join(); // cached by that thread's CPU
    test::clear_reports();
    heap_free(*heap, block);
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::DoubleFree);
    heap_free(*heap, keep);
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
}

INSTANTIATE_TEST_SUITE_P(Heaps, CpuCacheThreadTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                             return info.param ? std::string("Frames") : std::string("Region");
                         });

} // namespace
} // namespace bedrock
