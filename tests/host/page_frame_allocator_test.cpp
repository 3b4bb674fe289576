// SPDX-License-Identifier: MIT
// Host tests of the buddy page frame allocator over simulated physical memory maps.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "bedrock/page_frame_allocator.h"
#include "bedrock/platform.h"
#include "heap/page_tags.h"
#include "max_cpus_support.h"
#include "pages/metadata_pad.h"
#include "support/host_platform.h"

namespace bedrock {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;

// One allocator over simulated memory, with its start-up state remembered.
struct Fixture {
    explicit Fixture(std::vector<PhysRange> ranges, CpuPageLists lists = CpuPageLists::On)
        : memory(ranges) {
        test::clear_reports();
        initialized = pfa.init(ranges.data(), ranges.size(), lists);
        if (initialized) {
            initial_free = pfa.free_pages();
            initial_largest = pfa.largest_free_order();
        }
    }
    // The start-up state, once the calling thread's CPU page lists are drained.
    void expect_pristine() {
        EXPECT_TRUE(pfa.check().ok) << pfa.check().failure;
        EXPECT_EQ(pfa.free_pages(), initial_free);
        pfa.drain_cpu(platform::current_cpu());
        EXPECT_TRUE(pfa.check().ok) << pfa.check().failure;
        EXPECT_EQ(pfa.free_pages(), initial_free);
        EXPECT_EQ(pfa.largest_free_order(), initial_largest);
    }
    // A free of the run at `run` with `count` pages, a length it no longer has, is refused as a
    // wrong count and reported once.
    void expect_old_length_refused(PhysAddr run, uint64_t count) {
        test::clear_reports();
        pfa.free_pages(run, count);
        ASSERT_EQ(test::reports().size(), 1u);
        EXPECT_EQ(test::reports()[0].kind, ErrorKind::FreeWrongOrder);
        test::clear_reports();
    }
    test::SimulatedMemory memory;
    PageFrameAllocator pfa;
    bool initialized = false;
    uint64_t initial_free = 0;
    int initial_largest = -1;
};

uint64_t seed_from_environment(uint64_t fallback) {
    const char* text = std::getenv("BEDROCK_TEST_SEED");
    const uint64_t seed = text != nullptr ? std::strtoull(text, nullptr, 0) : fallback;
    std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
    return seed;
}

TEST(PageFrameAllocator, OneRangeIsManagedAndSmallMetadata) {
    // Without CPU page lists; with them, their fixed 16 KiB and a byte per page (0.024 %) come
    // on top: under 0.1 % from about 256 MiB. With more than 64 CPU slots the extra slots' lists
    // (256 bytes each) come on top of that budget.
    for (const CpuPageLists lists : {CpuPageLists::Off, CpuPageLists::On}) {
        const uint64_t bytes = lists == CpuPageLists::Off ? 64 * kMiB : 256 * kMiB;
        Fixture f({{kGiB, bytes}}, lists);
        ASSERT_TRUE(f.initialized);
        EXPECT_TRUE(f.pfa.check().ok);
        EXPECT_EQ(f.pfa.managed_pages() * kPageSize + f.pfa.metadata_bytes(), bytes);
        const uint64_t extra_lists =
            lists == CpuPageLists::On ? test::kPageListsBytesBeyondDefault : 0;
        EXPECT_LE((f.pfa.metadata_bytes() - extra_lists) * 1000, bytes); // <= 0.1 %
        EXPECT_EQ(f.pfa.free_pages(), f.pfa.managed_pages());
    }
}

TEST(PageFrameAllocator, BlocksAreNaturallyAlignedAndInsideRam) {
    Fixture f({{0x100000, 0x7F00000}});
    ASSERT_TRUE(f.initialized);
    for (unsigned order = 0; order <= 14; ++order) {
        const PhysAddr block = f.pfa.allocate(order);
        ASSERT_NE(block, kNoPage) << order;
        EXPECT_EQ(block % (kPageSize << order), 0u);
        EXPECT_GE(block, 0x100000u);
        EXPECT_LE(block + (kPageSize << order), 0x8000000u);
        f.pfa.free(block, order);
    }
    f.expect_pristine();
}

TEST(PageFrameAllocator, OrderAboveMaximumFails) {
    Fixture f({{0, 16 * kMiB}});
    EXPECT_EQ(f.pfa.allocate(kMaxOrder + 1), kNoPage);
}

TEST(PageFrameAllocator, GigabyteBlockFromAlignedRange) {
    Fixture f({{4 * kGiB, 2 * kGiB}});
    ASSERT_TRUE(f.initialized);
    EXPECT_EQ(f.pfa.largest_free_order(), static_cast<int>(kMaxOrder));
    const PhysAddr block = f.pfa.allocate(kMaxOrder);
    ASSERT_NE(block, kNoPage);
    EXPECT_EQ(block % kGiB, 0u);
    f.pfa.free(block, kMaxOrder);
    f.expect_pristine();
}

TEST(PageFrameAllocator, ManySmallRangesHolesAndOddEdges) {
    std::vector<PhysRange> ranges;
    for (uint64_t i = 0; i < 40; ++i) {
        ranges.push_back({0x200000 + i * 0x13000, (1 + i % 7) * kPageSize});
    }
    ranges.push_back({0x5000000 + 0x3000, 3 * kMiB + 0x5000});
    Fixture f(ranges);
    ASSERT_TRUE(f.initialized);
    EXPECT_TRUE(f.pfa.check().ok);
    // Exhaust with order 0: exactly the managed pages come out, all distinct.
    std::vector<PhysAddr> pages;
    for (PhysAddr p; (p = f.pfa.allocate(0)) != kNoPage;) {
        pages.push_back(p);
    }
    EXPECT_EQ(pages.size(), f.pfa.managed_pages());
    EXPECT_EQ(f.pfa.free_pages(), 0u);
    EXPECT_EQ(f.pfa.largest_free_order(), -1);
    for (PhysAddr p : pages) {
        f.pfa.free(p, 0);
    }
    f.expect_pristine();
}

TEST(PageFrameAllocator, RangesAbove4GiBAndAtTheTopOfTheAddressSpace) {
    const PhysAddr top = ~uint64_t{0} - 8 * kMiB + 1;
    Fixture f({{16 * kMiB, 8 * kMiB}, {0x8000000000, 8 * kMiB}, {top, 8 * kMiB}});
    ASSERT_TRUE(f.initialized);
    std::vector<PhysAddr> blocks;
    for (PhysAddr p; (p = f.pfa.allocate(9)) != kNoPage;) {
        blocks.push_back(p);
    }
    bool saw_top = false;
    for (PhysAddr p : blocks) {
        saw_top = saw_top || p >= top;
        EXPECT_EQ(p % (kPageSize << 9), 0u);
    }
    EXPECT_TRUE(saw_top);
    for (PhysAddr p : blocks) {
        f.pfa.free(p, 9);
    }
    f.expect_pristine();
}

// The very last page of the 64-bit physical address space is allocatable like any other.
TEST(PageFrameAllocator, EveryPageUpToTheTopOfTheAddressSpaceIsHandedOut) {
    const PhysAddr top = ~uint64_t{0} - 2 * kMiB + 1;
    Fixture f({{top, 2 * kMiB}});
    ASSERT_TRUE(f.initialized);
    std::vector<PhysAddr> pages;
    for (PhysAddr p; (p = f.pfa.allocate(0)) != kNoPage;) {
        pages.push_back(p);
    }
    EXPECT_EQ(pages.size(), f.pfa.managed_pages());
    EXPECT_NE(std::find(pages.begin(), pages.end(), ~uint64_t{0} - kPageSize + 1), pages.end());
    EXPECT_EQ(f.pfa.allocate_below(0, kNoLimit), kNoPage);
    for (PhysAddr p : pages) {
        f.pfa.free(p, 0);
    }
    const PhysAddr last = f.pfa.allocate_pages(1, kPageSize, kNoLimit);
    EXPECT_NE(last, kNoPage);
    f.pfa.free_pages(last, 1);
    f.expect_pristine();
}

// The metadata goes where it breaks up no largest block when some range has room for it, else
// where it breaks up no 1 GiB block.
TEST(PageFrameAllocator, MetadataLeavesTheLargestBlocksWhole) {
    Fixture spare({{kGiB, 2 * kGiB + 64 * kMiB}});
    ASSERT_TRUE(spare.initialized);
    EXPECT_EQ(spare.pfa.free_blocks().blocks[kMaxOrder], 2u);
    EXPECT_GE(spare.pfa.metadata_range().base, 3 * kGiB);
    // Two aligned gigabytes and nothing else: one of them has to give way.
    Fixture tight({{4 * kGiB, 2 * kGiB}});
    ASSERT_TRUE(tight.initialized);
    EXPECT_EQ(tight.pfa.free_blocks().blocks[kMaxOrder], 1u);
    EXPECT_EQ(tight.pfa.metadata_range().base, 4 * kGiB);
    // A range whose largest block is smaller than 1 GiB takes it before a gigabyte gives way,
    // even when the metadata breaks up that range's own largest block.
    Fixture beside({{12 * kGiB, 64 * kMiB}, {16 * kGiB, 2 * kGiB + 12 * 1024}});
    ASSERT_TRUE(beside.initialized);
    EXPECT_EQ(beside.pfa.free_blocks().blocks[kMaxOrder], 2u);
    EXPECT_EQ(beside.pfa.metadata_range().base, 12 * kGiB);
}

TEST(PageFrameAllocator, OnePageRangeBesideALargerOne) {
    Fixture f({{0x10000, kPageSize}, {kGiB, 4 * kMiB}});
    ASSERT_TRUE(f.initialized);
    EXPECT_EQ(f.pfa.region_count(), 2u);
    EXPECT_EQ(f.pfa.region_free_pages(0), 1u);
    EXPECT_EQ(f.pfa.allocate_below(0, 0x20000), 0x10000u);
    EXPECT_EQ(f.pfa.allocate_below(0, 0x20000), kNoPage);
    f.pfa.free(0x10000, 0);
    f.expect_pristine();
}

// The region introspection answers an empty range and no free pages for an index that names no
// region (it used to read past the descriptors, or through a null pointer before init()).
TEST(PageFrameAllocator, RegionIntrospectionOfNoRegionIsEmpty) {
    PageFrameAllocator before_init;
    EXPECT_EQ(before_init.region_count(), 0u);
    EXPECT_EQ(before_init.region_range(0), PhysRange{});
    EXPECT_EQ(before_init.region_free_pages(0), 0u);
    Fixture f({{kGiB, 8 * kMiB}, {2 * kGiB, 8 * kMiB}}, CpuPageLists::Off);
    ASSERT_TRUE(f.initialized);
    ASSERT_EQ(f.pfa.region_count(), 2u);
    EXPECT_TRUE((PhysRange{2 * kGiB, 8 * kMiB}.contains(f.pfa.region_range(1).base)));
    EXPECT_NE(f.pfa.region_free_pages(1), 0u);
    for (const size_t index : {size_t{2}, size_t{1000}, ~size_t{0}}) {
        EXPECT_EQ(f.pfa.region_range(index), PhysRange{}) << index;
        EXPECT_EQ(f.pfa.region_free_pages(index), 0u) << index;
    }
    f.expect_pristine();
}

// init()'s refusals: each reported once as range-refused, naming the range at fault and why.
void expect_init_refused(bool initialised, PhysRange range, const char* why) {
    EXPECT_FALSE(initialised) << why;
    ASSERT_EQ(test::reports().size(), 1u) << why;
    const ErrorReport& report = test::reports()[0];
    EXPECT_EQ(report.kind, ErrorKind::RangeRefused) << why;
    EXPECT_STREQ(to_string(report.kind), "range-refused");
    EXPECT_EQ(report.address, range.base) << why;
    EXPECT_EQ(report.size, range.size) << why;
    EXPECT_NE(strstr(report.detail, why), nullptr) << report.detail;
    test::clear_reports();
}

TEST(PageFrameAllocator, TooLittleMemoryForMetadataFailsCleanly) {
    test::clear_reports();
    Fixture f({{0x10000, kPageSize}});
    EXPECT_FALSE(f.initialized);
    ASSERT_EQ(test::reports().size(), 1u);
    EXPECT_EQ(test::reports()[0].kind, ErrorKind::RangeRefused);
    EXPECT_NE(strstr(test::reports()[0].detail, "no range can hold the allocator's metadata"),
              nullptr);
    // The metadata's bytes, whole pages: at least the range's one page (a range must be longer
    // than the metadata), and at least every CPU slot's page lists (more than a page with 64).
    EXPECT_EQ(test::reports()[0].size % kPageSize, 0u);
    EXPECT_GE(test::reports()[0].size, kPageSize);
    EXPECT_GE(test::reports()[0].size, platform::kMaxCpus * test::kCpuPageListsBytesPerCpu);
    test::clear_reports();
}

TEST(PageFrameAllocator, MalformedRangesAreRefusedAndReported) {
    test::SimulatedMemory memory({{0, 8 * kMiB}});
    PageFrameAllocator pfa;
    test::clear_reports();
    const PhysRange unaligned[] = {{0x800, 4 * kMiB}};
    expect_init_refused(pfa.init(unaligned, 1), unaligned[0], "not page-aligned");
    const PhysRange overlapping[] = {{0, 4 * kMiB}, {2 * kMiB, 4 * kMiB}};
    expect_init_refused(pfa.init(overlapping, 2), overlapping[1], "inside or below the range");
    const PhysRange unsorted[] = {{4 * kMiB, 4 * kMiB}, {0, 4 * kMiB}};
    expect_init_refused(pfa.init(unsorted, 2), unsorted[1], "inside or below the range");
    const PhysRange empty[] = {{0, 0}};
    expect_init_refused(pfa.init(empty, 1), empty[0], "an empty range");
    const PhysRange wrapping[] = {{~uint64_t{0} - 4 * kMiB + 1, 8 * kMiB}};
    expect_init_refused(pfa.init(wrapping, 1), wrapping[0], "wraps past the top");
    expect_init_refused(pfa.init(nullptr, 1), {}, "no usable range given");
    const PhysRange good[] = {{0, 8 * kMiB}};
    expect_init_refused(pfa.init(good, 0), {}, "no usable range given");
    expect_init_refused(pfa.init(good, 1, CpuPageLists::On, 5000), {}, "spare regions");
    EXPECT_TRUE(pfa.init(good, 1));
    EXPECT_TRUE(test::reports().empty());
    expect_init_refused(pfa.init(good, 1), {}, "a second time");
    EXPECT_TRUE(pfa.check().ok) << pfa.check().failure;
    EXPECT_EQ(pfa.free_pages(), pfa.managed_pages());
}

// A direct map that does not keep the alignment of a range's blocks (virtual - physical not a
// multiple of its largest aligned block) is refused, reported with why: a heap over it used to
// take its arenas' blocks for another heap's and hand out large runs misaligned. A range whose
// largest block the offset does keep is taken.
TEST(PageFrameAllocator, ADirectMapThatBreaksBlockAlignmentIsRefused) {
    const PhysRange range{4 * kGiB, 64 * kMiB};
    test::SimulatedMemory skewed({range}, 32 * 1024);
    PageFrameAllocator pfa;
    test::clear_reports();
    expect_init_refused(pfa.init(&range, 1), range, "does not keep the alignment");
    EXPECT_EQ(pfa.region_count(), 0u);
    // One window, so that the added range lies above the first one virtually too.
    test::SimulatedMemory window({{5 * kGiB, 128 * kMiB}}, 32 * 1024);
    const PhysRange small[] = {{5 * kGiB, 8 * kPageSize}}; // its largest block: 32 KiB
    EXPECT_TRUE(pfa.init(small, 1, CpuPageLists::Off, 1));
    EXPECT_TRUE(test::reports().empty());
    const PhysRange added{5 * kGiB + 64 * kMiB, 64 * kMiB};
    EXPECT_FALSE(pfa.add_range(added));
    ASSERT_EQ(test::reports().size(), 1u);
    EXPECT_EQ(test::reports()[0].kind, ErrorKind::RangeRefused);
    EXPECT_NE(strstr(test::reports()[0].detail, "does not keep the alignment"), nullptr);
    test::clear_reports();
    EXPECT_EQ(pfa.region_count(), 1u);
    EXPECT_TRUE(pfa.check().ok) << pfa.check().failure;
}

TEST(PageFrameAllocator, ZonesSplitAt16MiBAnd4GiB) {
    Fixture f({{kMiB, 6 * kGiB}});
    ASSERT_TRUE(f.initialized);
    EXPECT_EQ(f.pfa.region_count(), 3u);
    const PhysAddr dma = f.pfa.allocate_below(2, kZoneDmaLimit);
    ASSERT_NE(dma, kNoPage);
    EXPECT_LT(dma + 4 * kPageSize, kZoneDmaLimit + 1);
    const PhysAddr dma32 = f.pfa.allocate_below(10, kZoneDma32Limit);
    ASSERT_NE(dma32, kNoPage);
    EXPECT_LE(dma32 + (kPageSize << 10), kZoneDma32Limit);
    // Unconstrained allocations prefer high memory.
    const PhysAddr high = f.pfa.allocate(0);
    EXPECT_GE(high, kZoneDma32Limit);
    f.pfa.free(dma, 2);
    f.pfa.free(dma32, 10);
    f.pfa.free(high, 0);
    f.expect_pristine();
}

TEST(PageFrameAllocator, LimitInsideARegionIsHonoured) {
    Fixture f({{32 * kMiB, 32 * kMiB}});
    ASSERT_TRUE(f.initialized);
    const PhysAddr limit = 40 * kMiB + 0x5000;
    std::vector<PhysAddr> got;
    for (PhysAddr p; (p = f.pfa.allocate_below(0, limit)) != kNoPage;) {
        EXPECT_LE(p + kPageSize, limit);
        got.push_back(p);
    }
    EXPECT_FALSE(got.empty());
    for (PhysAddr p : got) {
        f.pfa.free(p, 0);
    }
    f.expect_pristine();
}

TEST(PageFrameAllocator, NonPowerOfTwoRunsReturnTheirTail) {
    Fixture f({{64 * kMiB, 16 * kMiB}});
    ASSERT_TRUE(f.initialized);
    const uint64_t before = f.pfa.free_pages();
    const PhysAddr run = f.pfa.allocate_pages(5);
    ASSERT_NE(run, kNoPage);
    EXPECT_EQ(f.pfa.free_pages(), before - 5);
    EXPECT_TRUE(f.pfa.check().ok);
    f.pfa.free_pages(run, 5);
    f.expect_pristine();
}

// extend_pages() grows a run into the free pages right after it: every length from a page to
// past a maximum block, from runs that are whole blocks (off a CPU page list too) or not; the
// grown run is then one run (freed whole with its new count, refused with its old one), and
// check() holds throughout. A page in use after it, a run that is none, a shrink, and the end of
// the region refuse it, changing nothing and reporting nothing.
TEST(PageFrameAllocator, ExtendPagesGrowsARunIntoTheFreePagesAfterIt) {
    Fixture f({{64 * kMiB, 16 * kMiB}});
    ASSERT_TRUE(f.initialized);
    constexpr uint64_t kMaxBlockPages = uint64_t{1} << kMaxOrder;
    const uint64_t region_pages = 16 * kMiB / kPageSize;
    for (const uint64_t count : {uint64_t{1}, uint64_t{3}, uint64_t{4}, uint64_t{8}}) {
        for (const uint64_t grown : {count + 1, count + 5, uint64_t{64}, uint64_t{1000},
                                     kMaxBlockPages < region_pages ? kMaxBlockPages + 3 : 2000}) {
            if (grown <= count) {
                continue;
            }
            const PhysAddr run = f.pfa.allocate_pages(count, kMiB);
            ASSERT_NE(run, kNoPage);
            const uint64_t free_before = f.pfa.free_pages();
            ASSERT_TRUE(f.pfa.extend_pages(run, count, grown))
                << count << " " << grown << " at " << run;
            EXPECT_EQ(f.pfa.free_pages(), free_before - (grown - count)) << count << " " << grown;
            EXPECT_TRUE(f.pfa.check().ok) << f.pfa.check().failure;
            f.expect_old_length_refused(run, count);
            f.pfa.free_pages(run, grown);
            EXPECT_TRUE(test::reports().empty());
            f.expect_pristine();
        }
    }
    // Refusals: nothing changes.
    const PhysAddr run = f.pfa.allocate_pages(3, kMiB);
    const PhysAddr after = f.pfa.allocate_pages(1, kPageSize, kNoLimit);
    ASSERT_NE(run, kNoPage);
    ASSERT_TRUE(f.pfa.reserve_range({run + 5 * kPageSize, kPageSize}));
    const uint64_t free_before = f.pfa.free_pages();
    test::clear_reports();
    EXPECT_TRUE(f.pfa.extend_pages(run, 3, 5));              // up to the reserved page
    EXPECT_FALSE(f.pfa.extend_pages(run, 5, 6));             // the reserved page
    EXPECT_FALSE(f.pfa.extend_pages(run, 5, 5));             // no growth
    EXPECT_FALSE(f.pfa.extend_pages(run, 5, 4));             // a shrink
    EXPECT_FALSE(f.pfa.extend_pages(run, 3, 8));             // not the run's count any more
    EXPECT_FALSE(f.pfa.extend_pages(run + kPageSize, 4, 8)); // not a run's start
    EXPECT_FALSE(f.pfa.extend_pages(64 * kMiB + 16 * kMiB - kPageSize, 1, 2)); // past the region
    EXPECT_FALSE(f.pfa.extend_pages(run, 5, ~size_t{0}));
    EXPECT_TRUE(test::reports().empty());
    EXPECT_EQ(f.pfa.free_pages(), free_before - 2);
    EXPECT_TRUE(f.pfa.check().ok) << f.pfa.check().failure;
    f.pfa.free_pages(run, 5);
    f.pfa.free_pages(after, 1);
    EXPECT_TRUE(test::reports().empty());
    EXPECT_TRUE(f.pfa.check().ok) << f.pfa.check().failure;
}

// shrink_pages() frees a run's tail: every length from a page to past a maximum block, cut
// anywhere; the run left is then one run (freed whole with its new count, refused with its old
// one), its tail free again (allocated anew), and check() holds throughout. A count of 0 or not
// below the run's, a run that is none, and a wrong count refuse it, changing nothing and
// reporting nothing.
TEST(PageFrameAllocator, ShrinkPagesFreesARunsTail) {
    Fixture f({{64 * kMiB, 16 * kMiB}});
    ASSERT_TRUE(f.initialized);
    constexpr uint64_t kMaxBlockPages = uint64_t{1} << kMaxOrder;
    const uint64_t region_pages = 16 * kMiB / kPageSize;
    const uint64_t longest = kMaxBlockPages < region_pages ? kMaxBlockPages + 3 : 2000;
    for (const uint64_t count : {uint64_t{2}, uint64_t{3}, uint64_t{8}, uint64_t{1000}, longest}) {
        for (const uint64_t kept : {uint64_t{1}, uint64_t{2}, count / 2, count - 1}) {
            if (kept == 0 || kept >= count) {
                continue;
            }
            const uint64_t free_before = f.pfa.free_pages();
            const PhysAddr run = f.pfa.allocate_pages(count);
            ASSERT_NE(run, kNoPage);
            ASSERT_TRUE(f.pfa.shrink_pages(run, count, kept)) << count << " " << kept;
            EXPECT_EQ(f.pfa.free_pages(), free_before - kept) << count << " " << kept;
            EXPECT_TRUE(f.pfa.check().ok) << f.pfa.check().failure;
            const PhysAddr tail = f.pfa.allocate_pages(count - kept, kPageSize, kNoLimit);
            EXPECT_NE(tail, kNoPage) << "the tail's pages in a row are free";
            f.expect_old_length_refused(run, count);
            f.pfa.free_pages(run, kept);
            f.pfa.free_pages(tail, count - kept);
            EXPECT_TRUE(test::reports().empty());
            f.expect_pristine();
        }
    }
    const PhysAddr run = f.pfa.allocate_pages(6);
    ASSERT_NE(run, kNoPage);
    const uint64_t free_before = f.pfa.free_pages();
    test::clear_reports();
    EXPECT_FALSE(f.pfa.shrink_pages(run, 6, 0));             // nothing left
    EXPECT_FALSE(f.pfa.shrink_pages(run, 6, 6));             // no shrink
    EXPECT_FALSE(f.pfa.shrink_pages(run, 6, 7));             // a growth
    EXPECT_FALSE(f.pfa.shrink_pages(run, 5, 2));             // not the run's count
    EXPECT_FALSE(f.pfa.shrink_pages(run + kPageSize, 5, 2)); // not a run's start
    EXPECT_FALSE(f.pfa.shrink_pages(64 * kMiB + 16 * kMiB - kPageSize, 2, 1)); // free pages
    EXPECT_TRUE(test::reports().empty());
    EXPECT_EQ(f.pfa.free_pages(), free_before);
    EXPECT_TRUE(f.pfa.check().ok) << f.pfa.check().failure;
    f.pfa.free_pages(run, 6);
    f.expect_pristine();
}

// Runs of random lengths grown or shrunk by random amounts where they can be, freed in random
// order, with check() after every call: every shape a grown or cut run's blocks can take
// (orders rising from an unaligned start, then falling), and every page comes back.
TEST(PageFrameAllocator, ExtendedAndShrunkRunsOfEveryShapeComeBackWhole) {
    Fixture f({{64 * kMiB, 16 * kMiB}});
    ASSERT_TRUE(f.initialized);
    std::mt19937_64 random(seed_from_environment(11));
    struct Run {
        PhysAddr address;
        uint64_t count;
    };
    std::vector<Run> runs;
    uint64_t grown = 0;
    uint64_t shrunk = 0;
    for (int step = 0; step < 3000; ++step) {
        const unsigned action = random() % 5;
        if (action == 2 && !runs.empty()) {
            Run& run = runs[random() % runs.size()];
            const uint64_t kept = 1 + random() % run.count;
            if (f.pfa.shrink_pages(run.address, run.count, kept)) {
                run.count = kept;
                ++shrunk;
            }
        } else if (action == 0 && !runs.empty()) {
            const size_t index = random() % runs.size();
            f.pfa.free_pages(runs[index].address, runs[index].count);
            runs[index] = runs.back();
            runs.pop_back();
        } else if (action == 1 && !runs.empty()) {
            Run& run = runs[random() % runs.size()];
            const uint64_t more = 1 + random() % (random() % 8 == 0 ? 600 : 20);
            if (f.pfa.extend_pages(run.address, run.count, run.count + more)) {
                run.count += more;
                ++grown;
            }
        } else {
            const uint64_t count = 1 + random() % 40;
            const PhysAddr address = f.pfa.allocate_pages(count);
            if (address != kNoPage) {
                runs.push_back({address, count});
            }
        }
        ASSERT_TRUE(test::reports().empty());
        ASSERT_TRUE(f.pfa.check().ok) << f.pfa.check().failure << " at step " << step;
    }
    EXPECT_GT(grown, 100u);
    EXPECT_GT(shrunk, 100u);
    for (const Run& run : runs) {
        f.pfa.free_pages(run.address, run.count);
    }
    EXPECT_TRUE(test::reports().empty());
    f.expect_pristine();
}

TEST(PageFrameAllocator, AlignmentLargerThanTheSize) {
    Fixture f({{64 * kMiB, 16 * kMiB}});
    ASSERT_TRUE(f.initialized);
    const PhysAddr run = f.pfa.allocate_pages(3, 2 * kMiB);
    ASSERT_NE(run, kNoPage);
    EXPECT_EQ(run % (2 * kMiB), 0u);
    EXPECT_EQ(f.pfa.free_pages(), f.initial_free - 3);
    EXPECT_EQ(f.pfa.allocate_pages(1, 3 * kPageSize), kNoPage); // not a power of two
    EXPECT_EQ(f.pfa.allocate_pages(0), kNoPage);
    const PhysAddr page = f.pfa.allocate_pages(1, 0); // 0: a page
    ASSERT_NE(page, kNoPage);
    EXPECT_EQ(page % kPageSize, 0u);
    f.pfa.free_pages(page, 1);
    f.pfa.free_pages(run, 3);
    f.expect_pristine();
}

TEST(PageFrameAllocator, ReserveRangeTakesFreePagesOnly) {
    Fixture f({{64 * kMiB, 16 * kMiB}});
    ASSERT_TRUE(f.initialized);
    const PhysAddr block = f.pfa.allocate(0);
    const PhysRange firmware_table{70 * kMiB + 0x123, 3 * kPageSize};
    ASSERT_TRUE(f.pfa.reserve_range(firmware_table));
    EXPECT_EQ(f.pfa.free_pages(), f.initial_free - 1 - 4); // 0x123 + 3 pages touches 4 pages
    EXPECT_TRUE(f.pfa.check().ok);
    // Reserving an allocated page is refused and changes nothing.
    const uint64_t free_before = f.pfa.free_pages();
    EXPECT_FALSE(f.pfa.reserve_range({block, kPageSize}));
    ASSERT_EQ(test::reports().size(), 1u);
    EXPECT_EQ(test::reports()[0].kind, ErrorKind::ReserveConflict);
    EXPECT_EQ(f.pfa.free_pages(), free_before);
    // The same range again, and one overlapping it, change only the pages not yet reserved.
    EXPECT_TRUE(f.pfa.reserve_range(firmware_table));
    EXPECT_EQ(f.pfa.free_pages(), free_before);
    EXPECT_TRUE(f.pfa.reserve_range({70 * kMiB + 3 * kPageSize, 2 * kPageSize}));
    EXPECT_EQ(f.pfa.free_pages(), free_before - 1);
    EXPECT_EQ(f.pfa.reserved_pages(), 5u);
    // Freeing a reserved page is misuse and changes nothing.
    test::clear_reports();
    f.pfa.free(70 * kMiB, 0);
    ASSERT_EQ(test::reports().size(), 1u);
    EXPECT_EQ(test::reports()[0].kind, ErrorKind::FreeOutsideManagedMemory);
    EXPECT_EQ(f.pfa.reserved_pages(), 5u);
    test::clear_reports();
    // Ranges outside managed memory are ignored.
    EXPECT_TRUE(f.pfa.reserve_range({0, kPageSize}));
    EXPECT_TRUE(f.pfa.check().ok);
    // A range that wraps past the top of the address space (a length read from a damaged
    // table) is refused, not taken as empty: it would cover the allocated page.
    EXPECT_FALSE(f.pfa.reserve_range({block, ~uint64_t{0}}));
    EXPECT_FALSE(f.pfa.reserve_range({~uint64_t{0} - kPageSize + 1, 2 * kPageSize}));
    EXPECT_EQ(f.pfa.reserved_pages(), 5u);
    EXPECT_EQ(f.pfa.free_pages(), free_before - 1);
    EXPECT_EQ(test::reports().size(), 0u);
    f.pfa.free(block, 0);
}

// Nothing of the allocator's lives in a free page: random bytes written over every free page
// (a write after free of every block at once) change nothing it does or reports, and allocated
// memory is never written.
TEST(PageFrameAllocator, ScribblingOverEveryFreePageChangesNothing) {
    const PhysRange range{kGiB, 64 * kMiB};
    Fixture f({range});
    ASSERT_TRUE(f.initialized);
    const uint64_t seed = seed_from_environment(std::random_device{}());
    std::mt19937_64 random(seed);
    struct Held {
        PhysAddr address;
        uint64_t count;
    };
    std::vector<Held> held;
    const auto stamp_of = [](PhysAddr page) { return page * 0x9E3779B97F4A7C15u; };
    const auto page_word = [](PhysAddr page) {
        return static_cast<uint64_t*>(platform::phys_to_virt(page));
    };
    // A random mix of blocks and runs, some freed again: free blocks of many orders, some on
    // the CPU page lists. Each held page is stamped.
    const auto churn = [&](int operations) {
        for (int i = 0; i < operations; ++i) {
            if (held.empty() || random() % 3 != 0) {
                const uint64_t count = 1 + random() % (random() % 4 == 0 ? 600 : 8);
                const PhysAddr address = f.pfa.allocate_pages(count);
                if (address != kNoPage) {
                    held.push_back({address, count});
                    for (uint64_t page = 0; page < count; ++page) {
                        const PhysAddr at = address + page * kPageSize;
                        *page_word(at) = stamp_of(at);
                    }
                }
            } else {
                const size_t index = random() % held.size();
                f.pfa.free_pages(held[index].address, held[index].count);
                held[index] = held.back();
                held.pop_back();
            }
        }
    };
    churn(2000);
    // Every managed page not held: random bytes, every word of it.
    std::vector<bool> is_held(range.page_count(), false);
    for (const Held& h : held) {
        for (uint64_t page = 0; page < h.count; ++page) {
            is_held[(h.address - range.base) / kPageSize + page] = true;
        }
    }
    uint64_t scribbled = 0;
    for (size_t r = 0; r < f.pfa.region_count(); ++r) {
        const PhysRange region = f.pfa.region_range(r);
        for (PhysAddr page = region.base; page < region.base + region.size; page += kPageSize) {
            if (!is_held[(page - range.base) / kPageSize]) {
                uint64_t* words = page_word(page);
                for (size_t w = 0; w < kPageSize / sizeof(uint64_t); ++w) {
                    words[w] = random();
                }
                ++scribbled;
            }
        }
    }
    EXPECT_EQ(scribbled, f.pfa.free_pages());
    EXPECT_TRUE(f.pfa.check().ok) << f.pfa.check().failure << ", seed " << seed;
    churn(2000);
    EXPECT_TRUE(f.pfa.check().ok) << f.pfa.check().failure << ", seed " << seed;
    for (const Held& h : held) {
        for (uint64_t page = 0; page < h.count; ++page) {
            const PhysAddr at = h.address + page * kPageSize;
            ASSERT_EQ(*page_word(at), stamp_of(at))
                << "an allocated page was written, seed " << seed;
        }
        f.pfa.free_pages(h.address, h.count);
    }
    EXPECT_TRUE(test::reports().empty()) << "seed " << seed;
    f.expect_pristine();
}

// ---- Page tags ----------------------------------------------------------------------------

// The tag of every page of every region is found from any byte of the page, pages have
// distinct consecutive tags, and addresses outside the regions (holes, metadata) have none.
TEST(PageFrameAllocatorTags, LookupOverManyRangesWithHoles) {
    std::vector<PhysRange> ranges;
    for (uint64_t i = 0; i < 44; ++i) {
        ranges.push_back({0x200000 + i * 0x40000, (1 + i % 9) * kPageSize});
    }
    ranges.push_back({kGiB, 8 * kMiB});
    Fixture f(ranges);
    ASSERT_TRUE(f.initialized);
    ASSERT_GE(f.pfa.region_count(), 45u);
    std::vector<uint16_t*> seen;
    for (size_t r = 0; r < f.pfa.region_count(); ++r) {
        const PhysRange region = f.pfa.region_range(r);
        auto* first = static_cast<char*>(platform::phys_to_virt(region.base));
        uint16_t* const first_tag = f.pfa.page_tag(first);
        ASSERT_NE(first_tag, nullptr) << r;
        for (uint64_t page = 0; page < region.page_count(); ++page) {
            EXPECT_EQ(f.pfa.page_tag(first + page * kPageSize), first_tag + page);
            EXPECT_EQ(f.pfa.page_tag(first + page * kPageSize + kPageSize - 1), first_tag + page);
            EXPECT_EQ(*(first_tag + page), 0u);
            seen.push_back(first_tag + page);
        }
        // The bytes just outside each region's window belong to no region here: every range
        // has its own mapping with unmapped holes between them.
        EXPECT_EQ(f.pfa.page_tag(first - 1), nullptr) << r;
        EXPECT_EQ(f.pfa.page_tag(first + region.size), nullptr) << r;
    }
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end());
    EXPECT_EQ(seen.size(), f.pfa.managed_pages());
    // The metadata's own pages, null and the top of the address space have no tag.
    EXPECT_EQ(f.pfa.page_tag(platform::phys_to_virt(f.pfa.metadata_range().base)), nullptr);
    EXPECT_EQ(f.pfa.page_tag(nullptr), nullptr);
    EXPECT_EQ(f.pfa.page_tag(reinterpret_cast<void*>(~uintptr_t{0})), nullptr);
    EXPECT_TRUE(f.pfa.check().ok);
}

// A lookup in a hole reads nothing there: an inaccessible mapping between the windows.
TEST(PageFrameAllocatorTags, LookupInAHoleReadsNothingThere) {
    Fixture f({{kGiB, 4 * kMiB}, {2 * kGiB, 4 * kMiB}});
    ASSERT_TRUE(f.initialized);
    void* hole = mmap(nullptr, 16 * kPageSize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(hole, MAP_FAILED);
    for (uint64_t offset = 0; offset < 16 * kPageSize; offset += kPageSize / 2) {
        EXPECT_EQ(f.pfa.page_tag(static_cast<char*>(hole) + offset), nullptr);
    }
    munmap(hole, 16 * kPageSize);
}

TEST(PageFrameAllocatorTags, NoTagsBeforeInit) {
    const PageFrameAllocator pfa;
    int local = 0;
    EXPECT_EQ(pfa.page_tag(&local), nullptr);
}

// Tags belong to whoever allocated the page; check() finds a free page with a tag.
TEST(PageFrameAllocatorTags, OwnerWritesTagsAndFreesWithZero) {
    Fixture f({{64 * kMiB, 16 * kMiB}});
    ASSERT_TRUE(f.initialized);
    const PhysAddr run = f.pfa.allocate_pages(3);
    ASSERT_NE(run, kNoPage);
    for (uint64_t page = 0; page < 3; ++page) {
        uint16_t* tag = f.pfa.page_tag(platform::phys_to_virt(run + page * kPageSize));
        ASSERT_NE(tag, nullptr);
        *tag = static_cast<uint16_t>(0x100 + page);
    }
    EXPECT_TRUE(f.pfa.check().ok);
    EXPECT_EQ(*f.pfa.page_tag(platform::phys_to_virt(run + 2 * kPageSize)), 0x102u);
    // A free page with a tag breaks the invariant check() names.
    uint16_t* free_tag = f.pfa.page_tag(platform::phys_to_virt(run + 4 * kPageSize));
    ASSERT_NE(free_tag, nullptr);
    *free_tag = 7;
    const PageFrameCheck broken = f.pfa.check();
    EXPECT_FALSE(broken.ok);
    EXPECT_STREQ(broken.failure, "a free page has a tag other than 0");
    EXPECT_EQ(broken.address, run + 4 * kPageSize);
    *free_tag = 0;
    for (uint64_t page = 0; page < 3; ++page) {
        *f.pfa.page_tag(platform::phys_to_virt(run + page * kPageSize)) = 0;
    }
    f.pfa.free_pages(run, 3);
    f.expect_pristine();
    // Reserved pages keep their tag (0) and are still looked up.
    ASSERT_TRUE(f.pfa.reserve_range({70 * kMiB, kPageSize}));
    EXPECT_NE(f.pfa.page_tag(platform::phys_to_virt(70 * kMiB)), nullptr);
    EXPECT_TRUE(f.pfa.check().ok);
}

// heap::fill_tags (the heap's writer of run tags) writes exactly the tags it is given, from every
// alignment of the first one and for every count around its head, four-tag and sixteen-tag steps.
TEST(PageFrameAllocatorTags, FillTagsWritesExactlyItsRange) {
    alignas(8) uint16_t tags[96];
    for (uint64_t first = 0; first < 8; ++first) {
        for (uint64_t count = 0; first + count + 4 <= 96; ++count) {
            std::fill(std::begin(tags), std::end(tags), uint16_t{0xAAAA});
            heap::fill_tags(tags + first, count, 0x1234);
            for (uint64_t i = 0; i < 96; ++i) {
                const bool inside = i >= first && i < first + count;
                ASSERT_EQ(tags[i], inside ? 0x1234u : 0xAAAAu)
                    << "first " << first << " count " << count << " tag " << i;
            }
        }
    }
}

// All page metadata (bitmaps + tags + descriptors) <= 0.1 % of managed RAM on the layout QEMU
// gives an x86-64 guest with -m 6G (E820), after the kernel image and firmware tables are cut.
TEST(PageFrameAllocatorTags, MetadataBudgetOnQemu6GiBLayout) {
    Fixture f({{0, 0x9f000},
               {0x100000, 0x200000},              // below the kernel image
               {0x600000, 0xbffe0000 - 0x600000}, // up to the ACPI tables
               {0x100000000, 0x1c0000000 - 0x100000000}});
    ASSERT_TRUE(f.initialized);
    const uint64_t managed_bytes = f.pfa.managed_pages() * kPageSize;
    std::printf("6 GiB layout: managed %llu bytes, metadata %llu bytes (%.4f %%), %zu regions\n",
                static_cast<unsigned long long>(managed_bytes),
                static_cast<unsigned long long>(f.pfa.metadata_bytes()),
                100.0 * static_cast<double>(f.pfa.metadata_bytes()) /
                    static_cast<double>(managed_bytes),
                f.pfa.region_count());
    EXPECT_LE(f.pfa.metadata_bytes() * 1000, managed_bytes);
    EXPECT_TRUE(f.pfa.check().ok);
}

// ---- Runs beyond one maximum block --------------------------------------------------------

constexpr uint64_t kMaxBlockPages = uint64_t{1} << kMaxOrder;
constexpr uint64_t kGiBPages = kGiB / kPageSize;

// [4 GiB, 10.5 GiB): six free maximum blocks, then half a GiB that holds the metadata at its
// top.
struct LongRunFixture : Fixture {
    LongRunFixture() : Fixture({{4 * kGiB, 6 * kGiB + kGiB / 2}}) {}
    void expect_rejected_free(PhysAddr address, uint64_t count) {
        test::clear_reports();
        const uint64_t free_before = pfa.free_pages();
        pfa.free_pages(address, count);
        ASSERT_EQ(test::reports().size(), 1u);
        EXPECT_EQ(test::reports()[0].kind, ErrorKind::FreeWrongOrder);
        EXPECT_EQ(pfa.free_pages(), free_before);
        EXPECT_TRUE(pfa.check().ok) << pfa.check().failure;
        test::clear_reports();
    }
};

TEST(PageFrameAllocatorLongRuns, ThreeAndFiveGiBRunsAndOneThatCannotFit) {
    LongRunFixture f;
    ASSERT_TRUE(f.initialized);
    ASSERT_EQ(f.pfa.free_blocks().blocks[kMaxOrder], 6u);
    const PhysAddr three = f.pfa.allocate_pages(3 * kGiBPages);
    ASSERT_NE(three, kNoPage);
    EXPECT_EQ(three % kGiB, 0u);
    EXPECT_EQ(f.pfa.free_pages(), f.initial_free - 3 * kGiBPages);
    EXPECT_TRUE(f.pfa.check().ok) << f.pfa.check().failure;
    // Three maximum blocks are left: five GiB cannot fit, and nothing changes.
    const FreeBlockCounts blocks = f.pfa.free_blocks();
    EXPECT_EQ(f.pfa.allocate_pages(5 * kGiBPages), kNoPage);
    EXPECT_EQ(f.pfa.free_pages(), f.initial_free - 3 * kGiBPages);
    for (unsigned k = 0; k < kOrderCount; ++k) {
        EXPECT_EQ(f.pfa.free_blocks().blocks[k], blocks.blocks[k]);
    }
    EXPECT_TRUE(f.pfa.check().ok);
    // Freed whole or not at all.
    f.expect_rejected_free(three, 2 * kGiBPages);
    f.expect_rejected_free(three, 3 * kGiBPages + 1);
    f.expect_rejected_free(three + kGiB, 2 * kGiBPages);
    test::clear_reports();
    f.pfa.free(three, kMaxOrder);
    EXPECT_EQ(test::reports().size(), 1u);
    test::clear_reports();
    f.pfa.free_pages(three, 3 * kGiBPages);
    EXPECT_TRUE(test::reports().empty());
    f.expect_pristine();

    const PhysAddr five = f.pfa.allocate_pages(5 * kGiBPages);
    ASSERT_NE(five, kNoPage);
    EXPECT_EQ(five % kGiB, 0u);
    EXPECT_TRUE(f.pfa.check().ok) << f.pfa.check().failure;
    f.pfa.free_pages(five, 5 * kGiBPages);
    f.expect_pristine();

    // More than is free: refused before any search, and so is more than all RAM.
    EXPECT_EQ(f.pfa.allocate_pages(7 * kGiBPages), kNoPage);
    EXPECT_EQ(f.pfa.allocate_pages(~size_t{0}), kNoPage);
    f.expect_pristine();
}

// A run's tail after its maximum blocks comes from whatever free blocks follow: here the
// region's last half GiB, which holds no maximum block.
TEST(PageFrameAllocatorLongRuns, TailBeyondTheLastMaximumBlock) {
    LongRunFixture f;
    ASSERT_TRUE(f.initialized);
    const uint64_t count = 6 * kGiBPages + 1000;
    const PhysAddr run = f.pfa.allocate_pages(count);
    ASSERT_EQ(run, 4 * kGiB);
    EXPECT_EQ(f.pfa.free_pages(), f.initial_free - count);
    EXPECT_TRUE(f.pfa.check().ok) << f.pfa.check().failure;
    f.expect_rejected_free(run, 6 * kGiBPages);
    f.pfa.free_pages(run, count);
    f.expect_pristine();
}

// A region starting 256 MiB past a maximum-block boundary, [4.25 GiB, 7 GiB): a run longer than
// its free maximum blocks (5 and 6 GiB) and the free pages after them (none) starts before them,
// with a head of free pages; an aligned one at a multiple of its alignment; each comes back
// whole, check() holding. More than is free in a row is refused, nothing changed.
TEST(PageFrameAllocatorLongRuns, ARunStartsBeforeItsMaximumBlocksWhenItMust) {
    Fixture f({{4 * kGiB + 256 * kMiB, 3 * kGiB - 256 * kMiB}});
    ASSERT_TRUE(f.initialized);
    const uint64_t count = 2 * kGiBPages + 100 * kMiB / kPageSize;
    for (const uint64_t alignment : {kPageSize, 64 * kMiB}) {
        const PhysAddr run = f.pfa.allocate_pages(count, alignment);
        ASSERT_NE(run, kNoPage) << alignment;
        EXPECT_LT(run, 5 * kGiB);
        EXPECT_GE(run, 4 * kGiB + 256 * kMiB);
        EXPECT_EQ(run % alignment, 0u);
        EXPECT_LE(run + count * kPageSize, 7 * kGiB);
        EXPECT_EQ(f.pfa.free_pages(), f.initial_free - count);
        EXPECT_TRUE(f.pfa.check().ok) << f.pfa.check().failure;
        f.pfa.free_pages(run, count);
        EXPECT_TRUE(test::reports().empty());
        f.expect_pristine();
    }
    EXPECT_EQ(f.pfa.allocate_pages(f.initial_free + 1), kNoPage);
    f.expect_pristine();
}

// A run beyond a maximum block under a limit that the least head's start would pass: it starts
// lower, with more of the free pages before the stretch, and ends at or below the limit.
TEST(PageFrameAllocatorLongRuns, ALimitMovesTheRunDownIntoItsHead) {
    Fixture f({{4 * kGiB + 256 * kMiB, 2 * kGiB + 64 * kMiB}});
    ASSERT_TRUE(f.initialized);
    const PhysAddr limit = 5 * kGiB + 800 * kMiB;
    const PhysAddr run = f.pfa.allocate_pages(kGiBPages + 1, 2 * kMiB, limit);
    ASSERT_NE(run, kNoPage);
    EXPECT_LE(run + (kGiBPages + 1) * kPageSize, limit);
    EXPECT_EQ(run % (2 * kMiB), 0u);
    EXPECT_TRUE(f.pfa.check().ok) << f.pfa.check().failure;
    f.pfa.free_pages(run, kGiBPages + 1);
    f.expect_pristine();
}

// A reserved page inside the fourth maximum block of [4 GiB, 10.5 GiB): a run from 4 GiB can end
// just before it, and one page longer cannot; that one starts after the reserved page instead,
// with the free pages before the stretch of maximum blocks above it (a head) and every free page
// after them. Then the longest run below fits exactly at 4 GiB, and nothing longer than a
// maximum block is left.
TEST(PageFrameAllocatorLongRuns, TailStopsAtAPageInUse) {
    LongRunFixture f;
    ASSERT_TRUE(f.initialized);
    const PhysAddr reserved = 7 * kGiB + 2000 * kPageSize;
    ASSERT_TRUE(f.pfa.reserve_range({reserved, kPageSize}));
    const uint64_t fits_below = 3 * kGiBPages + 2000;
    const PhysAddr high = f.pfa.allocate_pages(fits_below + 1);
    EXPECT_GT(high, reserved);
    EXPECT_LT(high, 8 * kGiB);
    EXPECT_TRUE(f.pfa.check().ok) << f.pfa.check().failure;
    const PhysAddr low = f.pfa.allocate_pages(fits_below);
    EXPECT_EQ(low, 4 * kGiB);
    EXPECT_TRUE(f.pfa.check().ok) << f.pfa.check().failure;
    EXPECT_EQ(f.pfa.allocate_pages(kGiBPages + 1), kNoPage);
    f.pfa.free_pages(low, fits_below);
    f.pfa.free_pages(high, fits_below + 1);
    EXPECT_TRUE(test::reports().empty());
    EXPECT_TRUE(f.pfa.check().ok);
    EXPECT_EQ(f.pfa.free_pages(), f.initial_free - 1);
}

// Long runs among blocks and short runs, with check() after every operation: the tail search
// runs over fragmented memory, and every run comes back whole.
TEST(PageFrameAllocatorLongRuns, RandomMixCheckedAfterEveryOperation) {
    LongRunFixture f;
    ASSERT_TRUE(f.initialized);
    std::mt19937_64 random(seed_from_environment(0x10e6));
    struct Live {
        PhysAddr address;
        uint64_t pages;
        int order; // -1 for a run
    };
    std::vector<Live> live;
    uint64_t long_runs = 0;
    for (int step = 0; step < 400; ++step) {
        const uint64_t choice = random() % 10;
        if (choice < 4 && !live.empty()) {
            const size_t index = random() % live.size();
            const Live block = live[index];
            live.erase(live.begin() + static_cast<long>(index));
            if (block.order < 0) {
                f.pfa.free_pages(block.address, block.pages);
            } else {
                f.pfa.free(block.address, static_cast<unsigned>(block.order));
            }
        } else if (choice < 7) {
            const auto order = static_cast<unsigned>(random() % (kMaxOrder + 1));
            const PhysAddr block = f.pfa.allocate(order);
            if (block != kNoPage) {
                live.push_back({block, uint64_t{1} << order, static_cast<int>(order)});
            }
        } else {
            const uint64_t count = 1 + random() % (3 * kGiBPages);
            const uint64_t free_before = f.pfa.free_pages();
            const PhysAddr run = f.pfa.allocate_pages(count);
            if (run != kNoPage) {
                EXPECT_EQ(f.pfa.free_pages(), free_before - count);
                long_runs += count > kMaxBlockPages ? 1 : 0;
                live.push_back({run, count, -1});
            } else {
                EXPECT_EQ(f.pfa.free_pages(), free_before);
            }
        }
        const PageFrameCheck check = f.pfa.check();
        ASSERT_TRUE(check.ok) << "step " << step << ": " << check.failure << " at 0x" << std::hex
                              << check.address;
    }
    std::printf("%llu runs beyond one maximum block\n", static_cast<unsigned long long>(long_runs));
    EXPECT_GT(long_runs, 0u);
    for (const Live& block : live) {
        if (block.order < 0) {
            f.pfa.free_pages(block.address, block.pages);
        } else {
            f.pfa.free(block.address, static_cast<unsigned>(block.order));
        }
    }
    EXPECT_TRUE(test::reports().empty());
    f.expect_pristine();
}

// Alignment and limits hold for long runs too: 2 GiB-aligned, the run starts at 4 GiB (a
// multiple of the alignment, beyond a maximum block); 1 GiB-aligned and ending by 5 GiB, none
// fits.
TEST(PageFrameAllocatorLongRuns, AlignmentAndLimit) {
    LongRunFixture f;
    ASSERT_TRUE(f.initialized);
    const PhysAddr two_aligned = f.pfa.allocate_pages(2 * kGiBPages, 2 * kGiB);
    ASSERT_EQ(two_aligned, 4 * kGiB);
    EXPECT_TRUE(f.pfa.check().ok) << f.pfa.check().failure;
    f.pfa.free_pages(two_aligned, 2 * kGiBPages);
    f.expect_pristine();
    EXPECT_EQ(f.pfa.allocate_pages(2 * kGiBPages, kGiB, 5 * kGiB), kNoPage);
    const PhysAddr run = f.pfa.allocate_pages(2 * kGiBPages + 1, kGiB, 7 * kGiB);
    ASSERT_NE(run, kNoPage);
    EXPECT_EQ(run % kGiB, 0u);
    EXPECT_LE(run + (2 * kGiBPages + 1) * kPageSize, 7 * kGiB);
    EXPECT_TRUE(f.pfa.check().ok) << f.pfa.check().failure;
    f.pfa.free_pages(run, 2 * kGiBPages + 1);
    f.expect_pristine();
}

// Blocks of a long run are maximum blocks in a row: a run of two looks like two blocks but is
// one allocation.
TEST(PageFrameAllocatorLongRuns, ExactlyTwoMaximumBlocks) {
    LongRunFixture f;
    ASSERT_TRUE(f.initialized);
    const PhysAddr run = f.pfa.allocate_pages(2 * kMaxBlockPages);
    ASSERT_NE(run, kNoPage);
    test::clear_reports();
    f.pfa.free(run + kGiB, kMaxOrder); // its second block alone
    ASSERT_EQ(test::reports().size(), 1u);
    EXPECT_EQ(test::reports()[0].kind, ErrorKind::FreeWrongOrder);
    test::clear_reports();
    f.pfa.free_pages(run, 2 * kMaxBlockPages);
    EXPECT_TRUE(test::reports().empty());
    f.expect_pristine();
}

// ---- Runs from any free pages in a row ----------------------------------------------------

// Every page of `f` allocated, as blocks of 2^order pages (what no such block holds stays free).
std::vector<PhysAddr> take_every_block(Fixture& f, unsigned order) {
    std::vector<PhysAddr> blocks;
    for (PhysAddr block; (block = f.pfa.allocate(order)) != kNoPage;) {
        blocks.push_back(block);
    }
    return blocks;
}

// An allocated run of `count` pages: the free pages drop by `count` and check() holds.
void expect_run_taken(Fixture& f, PhysAddr run, uint64_t count, uint64_t free_before) {
    EXPECT_NE(run, kNoPage);
    EXPECT_EQ(f.pfa.free_pages(), free_before - count);
    const PageFrameCheck check = f.pfa.check();
    EXPECT_TRUE(check.ok) << check.failure << " at 0x" << std::hex << check.address;
}

// A refused request: kNoPage, the free pages unchanged (and the free blocks, unless CPU page
// lists were there for it to take back), check() holding.
template <class Request>
void expect_refused(Fixture& f, Request request, const char* what) {
    const uint64_t free_before = f.pfa.free_pages();
    const bool listed = f.pfa.cpu_list_pages() != 0;
    const FreeBlockCounts blocks_before = f.pfa.free_blocks();
    EXPECT_EQ(request(), kNoPage) << what;
    EXPECT_EQ(f.pfa.free_pages(), free_before) << what;
    for (unsigned k = 0; k < kOrderCount && !listed; ++k) {
        EXPECT_EQ(f.pfa.free_blocks().blocks[k], blocks_before.blocks[k]) << what;
    }
    EXPECT_TRUE(f.pfa.check().ok) << what << ": " << f.pfa.check().failure;
}

// Pages 2-5 of every 8 free, the others allocated: no free block of 4 pages anywhere (a free pair
// at 2 and one at 4 are not buddies), yet runs of 3 and 4 pages fit at 2 of each 8 (4 pages
// unaligned, 3 pages 2-page-aligned too, but not 4-page-aligned: from 4 only two are free), with
// a limit they end by, and a run there grows into its last free page; 5 pages fit nowhere. With
// CPU page lists (the freed pages sit on them until the request takes them back) and without.
// Every run comes back whole.
TEST(PageFrameAllocatorAnyRun, ShortRunsFromFreePagesInARow) {
    for (const CpuPageLists lists : {CpuPageLists::On, CpuPageLists::Off}) {
        Fixture f({{64 * kMiB, 4 * kMiB}}, lists);
        ASSERT_TRUE(f.initialized);
        const std::vector<PhysAddr> pages = take_every_block(f, 0);
        std::vector<PhysAddr> kept;
        std::vector<PhysAddr> stretches; // the first page of each free stretch of four
        for (const PhysAddr page : pages) {
            const uint64_t slot = page / kPageSize % 8;
            if (slot >= 2 && slot <= 5) {
                f.pfa.free(page, 0);
                const bool whole =
                    slot == 2 && std::count(pages.begin(), pages.end(), page + 3 * kPageSize) == 1;
                if (whole) {
                    stretches.push_back(page);
                }
            } else {
                kept.push_back(page);
            }
        }
        ASSERT_GE(stretches.size(), 5u);
        std::sort(stretches.begin(), stretches.end());
        uint64_t free_before = f.pfa.free_pages();

        const PhysAddr three = f.pfa.allocate_pages(3);
        EXPECT_EQ(three, stretches[0]);
        expect_run_taken(f, three, 3, free_before);
        free_before = f.pfa.free_pages();
        const PhysAddr four = f.pfa.allocate_pages(4);
        EXPECT_EQ(four, stretches[1]);
        expect_run_taken(f, four, 4, free_before);
        free_before = f.pfa.free_pages();
        const PhysAddr pair_aligned = f.pfa.allocate_pages(3, 2 * kPageSize);
        EXPECT_EQ(pair_aligned, stretches[2]);
        expect_run_taken(f, pair_aligned, 3, free_before);
        expect_refused(
            f, [&] { return f.pfa.allocate_pages(3, 4 * kPageSize); }, "3 pages, 4-page-aligned");
        expect_refused(
            f, [&] { return f.pfa.allocate_pages(5); }, "5 pages");
        expect_refused(
            f, [&] { return f.pfa.allocate_pages(3, kPageSize, stretches[3] + 3 * kPageSize - 1); },
            "3 pages ending one byte past the limit");
        free_before = f.pfa.free_pages();
        const PhysAddr limited = f.pfa.allocate_pages(3, kPageSize, stretches[3] + 3 * kPageSize);
        EXPECT_EQ(limited, stretches[3]);
        expect_run_taken(f, limited, 3, free_before);

        // The run of three grows into the fourth page, and is then one run of four.
        ASSERT_TRUE(f.pfa.extend_pages(three, 3, 4));
        EXPECT_FALSE(f.pfa.extend_pages(three, 4, 5));
        EXPECT_TRUE(f.pfa.check().ok) << f.pfa.check().failure;

        test::clear_reports();
        f.pfa.free_pages(three, 4);
        f.pfa.free_pages(four, 4);
        f.pfa.free_pages(pair_aligned, 3);
        f.pfa.free_pages(limited, 3);
        for (const PhysAddr page : kept) {
            f.pfa.free(page, 0);
        }
        EXPECT_TRUE(test::reports().empty());
        f.expect_pristine();
    }
}

// [4 GiB, 6 GiB) in 128 MiB blocks, all allocated but [4.5 GiB, 5.375 GiB): 896 MiB free in a
// row (a 512 MiB block, then 256 and 128 MiB ones), and no free 1 GiB block. Runs up to those
// 896 MiB fit there, from 4.5 GiB (256 MiB-aligned too, and under a limit they end by); one page
// more fits nowhere; 1 GiB-aligned, only the 384 MiB from 5 GiB are there.
TEST(PageFrameAllocatorAnyRun, RunsNearAGiBWithoutAFreeGiBBlock) {
    Fixture f({{4 * kGiB, 2 * kGiB + 64 * kMiB}});
    ASSERT_TRUE(f.initialized);
    constexpr unsigned k128MiBOrder = 15;
    const std::vector<PhysAddr> blocks = take_every_block(f, k128MiBOrder);
    ASSERT_EQ(blocks.size(), 16u);
    std::vector<PhysAddr> kept;
    for (const PhysAddr block : blocks) {
        if (block >= 4 * kGiB + 512 * kMiB && block < 5 * kGiB + 384 * kMiB) {
            f.pfa.free(block, k128MiBOrder);
        } else {
            kept.push_back(block);
        }
    }
    ASSERT_EQ(f.pfa.free_blocks().blocks[kMaxOrder], 0u);
    const PhysAddr stretch = 4 * kGiB + 512 * kMiB;
    const uint64_t stretch_pages = 896 * kMiB / kPageSize;
    const uint64_t free_before = f.pfa.free_pages();
    struct Case {
        uint64_t count;
        uint64_t alignment;
        PhysAddr limit;
        PhysAddr expected;
    };
    for (const Case& c : {
             Case{600 * kMiB / kPageSize, kPageSize, kNoLimit, stretch},
             Case{stretch_pages, kPageSize, kNoLimit, stretch},
             Case{600 * kMiB / kPageSize, 256 * kMiB, kNoLimit, stretch},
             Case{384 * kMiB / kPageSize, kGiB, kNoLimit, 5 * kGiB},
             Case{600 * kMiB / kPageSize, kPageSize, stretch + 600 * kMiB, stretch},
         }) {
        const PhysAddr run = f.pfa.allocate_pages(c.count, c.alignment, c.limit);
        EXPECT_EQ(run, c.expected) << c.count << " pages, alignment " << c.alignment;
        expect_run_taken(f, run, c.count, free_before);
        f.pfa.free_pages(run, c.count);
        EXPECT_EQ(f.pfa.free_pages(), free_before);
    }
    expect_refused(
        f, [&] { return f.pfa.allocate_pages(stretch_pages + 1); }, "one page more than is free");
    expect_refused(
        f, [&] { return f.pfa.allocate_pages(600 * kMiB / kPageSize, kGiB); }, "600 MiB at 1 GiB");
    expect_refused(
        f,
        [&] {
            return f.pfa.allocate_pages(600 * kMiB / kPageSize, kPageSize,
                                        stretch + 600 * kMiB - 1);
        },
        "600 MiB ending one byte past the limit");
    for (const PhysAddr block : kept) {
        f.pfa.free(block, k128MiBOrder);
    }
    EXPECT_TRUE(test::reports().empty());
    f.expect_pristine();
}

// [4 GiB - 8 MiB, 4 GiB + 8 MiB) is two regions, split at 4 GiB (the metadata goes to the end
// of a third range, at 8 GiB). Two free pages each side of the boundary are four in a row, but a
// run never spans two regions: three pages fit only once a third page below the boundary is
// free, and four never.
TEST(PageFrameAllocatorAnyRun, ARunNeverSpansTwoRegions) {
    Fixture f({{4 * kGiB - 8 * kMiB, 16 * kMiB}, {8 * kGiB, 33 * kMiB}});
    ASSERT_TRUE(f.initialized);
    ASSERT_EQ(f.pfa.region_count(), 3u);
    std::vector<PhysAddr> kept = take_every_block(f, 0);
    const auto give_back = [&](PhysAddr page) {
        const auto it = std::find(kept.begin(), kept.end(), page);
        ASSERT_NE(it, kept.end()) << std::hex << page;
        kept.erase(it);
        f.pfa.free(page, 0);
    };
    for (const PhysAddr page :
         {4 * kGiB - 2 * kPageSize, 4 * kGiB - kPageSize, 4 * kGiB, 4 * kGiB + kPageSize}) {
        give_back(page);
    }
    expect_refused(
        f, [&] { return f.pfa.allocate_pages(3); }, "3 pages across the boundary");
    expect_refused(
        f, [&] { return f.pfa.allocate_pages(4); }, "4 pages across the boundary");
    give_back(4 * kGiB - 3 * kPageSize);
    const uint64_t free_before = f.pfa.free_pages();
    const PhysAddr below = f.pfa.allocate_pages(3);
    EXPECT_EQ(below, 4 * kGiB - 3 * kPageSize);
    expect_run_taken(f, below, 3, free_before);
    f.pfa.free_pages(below, 3);
    expect_refused(
        f, [&] { return f.pfa.allocate_pages(4); }, "4 pages across the boundary");
    for (const PhysAddr page : kept) {
        f.pfa.free(page, 0);
    }
    EXPECT_TRUE(test::reports().empty());
    f.expect_pristine();
}

// [5 GiB, 11 GiB): alignments beyond a maximum block are multiples of it. 4 GiB-aligned, only
// 8 GiB is in RAM: a run of 3 GiB starts there, and then nothing 4 GiB-aligned is free. 2 GiB-
// aligned: a page at 6 GiB, a run beyond a maximum block at 8 GiB, a page at 10 GiB under a limit
// it ends by. Bad requests - an alignment that is not a power of two, no pages, more pages than
// exist - and alignments no RAM has (16 GiB, 2^63 bytes) are refused, changing nothing.
TEST(PageFrameAllocatorAnyRun, AlignmentsBeyondAMaximumBlockAndBadRequests) {
    Fixture f({{5 * kGiB, 6 * kGiB + 64 * kMiB}});
    ASSERT_TRUE(f.initialized);
    uint64_t free_before = f.pfa.free_pages();
    const PhysAddr four_aligned = f.pfa.allocate_pages(3 * kGiBPages, 4 * kGiB);
    EXPECT_EQ(four_aligned, 8 * kGiB);
    expect_run_taken(f, four_aligned, 3 * kGiBPages, free_before);
    expect_refused(
        f, [&] { return f.pfa.allocate_pages(1, 4 * kGiB); }, "a page 4 GiB-aligned");
    f.pfa.free_pages(four_aligned, 3 * kGiBPages);
    f.expect_pristine();

    free_before = f.pfa.free_pages();
    const PhysAddr page = f.pfa.allocate_pages(1, 2 * kGiB);
    EXPECT_EQ(page, 6 * kGiB);
    expect_run_taken(f, page, 1, free_before);
    free_before = f.pfa.free_pages();
    const PhysAddr long_run = f.pfa.allocate_pages(kGiBPages + 5, 2 * kGiB);
    EXPECT_EQ(long_run, 8 * kGiB);
    expect_run_taken(f, long_run, kGiBPages + 5, free_before);
    expect_refused(
        f, [&] { return f.pfa.allocate_pages(1, 2 * kGiB, 10 * kGiB + kPageSize - 1); },
        "a page 2 GiB-aligned ending one byte past the limit");
    free_before = f.pfa.free_pages();
    const PhysAddr limited = f.pfa.allocate_pages(1, 2 * kGiB, 10 * kGiB + kPageSize);
    EXPECT_EQ(limited, 10 * kGiB);
    expect_run_taken(f, limited, 1, free_before);
    f.pfa.free_pages(page, 1);
    f.pfa.free_pages(long_run, kGiBPages + 5);
    f.pfa.free_pages(limited, 1);
    f.expect_pristine();

    expect_refused(
        f, [&] { return f.pfa.allocate_pages(1, 16 * kGiB); }, "16 GiB-aligned: no RAM there");
    expect_refused(
        f, [&] { return f.pfa.allocate_pages(1, uint64_t{1} << 63); }, "2^63-aligned");
    expect_refused(
        f, [&] { return f.pfa.allocate_pages(3, 3 * kPageSize); }, "alignment 3 pages");
    expect_refused(
        f, [&] { return f.pfa.allocate_pages(3, 6 * kGiB); }, "alignment 6 GiB");
    expect_refused(
        f, [&] { return f.pfa.allocate_pages(3, ~uint64_t{0}); }, "alignment 2^64 - 1");
    expect_refused(
        f, [&] { return f.pfa.allocate_pages(0); }, "no pages");
    expect_refused(
        f, [&] { return f.pfa.allocate_pages(0, 2 * kGiB); }, "no pages, 2 GiB-aligned");
    expect_refused(
        f, [&] { return f.pfa.allocate_pages(f.pfa.managed_pages() + 1); }, "more than all RAM");
    expect_refused(
        f, [&] { return f.pfa.allocate_pages(~size_t{0}, 2 * kGiB); }, "SIZE_MAX pages");
    EXPECT_TRUE(test::reports().empty());
    f.expect_pristine();
}

struct BadFreeCase {
    const char* name;
    ErrorKind kind;
};

class PageFrameAllocatorMisuse : public ::testing::Test {
protected:
    PageFrameAllocatorMisuse() : f({{64 * kMiB, 16 * kMiB}}) {}
    // Performs the bad free and asserts exactly one report of `kind` and an unchanged state.
    void expect_rejected(PhysAddr address, unsigned order, ErrorKind kind) {
        test::clear_reports();
        const uint64_t free_before = f.pfa.free_pages();
        const FreeBlockCounts blocks_before = f.pfa.free_blocks();
        f.pfa.free(address, order);
        ASSERT_EQ(test::reports().size(), 1u);
        const ErrorReport& report = test::reports()[0];
        EXPECT_EQ(report.kind, kind) << to_string(report.kind);
        EXPECT_EQ(report.address, address);
        EXPECT_EQ(report.size, order);
        EXPECT_STREQ(report.component, "pfa");
        EXPECT_NE(report.call_site, nullptr);
        EXPECT_EQ(f.pfa.free_pages(), free_before);
        const FreeBlockCounts blocks_after = f.pfa.free_blocks();
        for (unsigned k = 0; k < kOrderCount; ++k) {
            EXPECT_EQ(blocks_after.blocks[k], blocks_before.blocks[k]);
        }
        EXPECT_TRUE(f.pfa.check().ok);
    }
    Fixture f;
};

TEST_F(PageFrameAllocatorMisuse, FreeOutsideManagedMemory) {
    expect_rejected(4 * kGiB, 0, ErrorKind::FreeOutsideManagedMemory);
    expect_rejected(f.pfa.metadata_range().base, 0, ErrorKind::FreeOutsideManagedMemory);
    expect_rejected(~uint64_t{0} - kPageSize + 1, 0, ErrorKind::FreeOutsideManagedMemory);
}

TEST(PageFrameAllocator, FreeOfABlockRunningPastItsRangeIsOutside) {
    Fixture f({{64 * kMiB, 3 * kPageSize}, {kGiB, 4 * kMiB + 64 * kPageSize}});
    ASSERT_TRUE(f.initialized);
    ASSERT_EQ(f.pfa.region_range(0), (PhysRange{64 * kMiB, 3 * kPageSize}));
    f.pfa.free(64 * kMiB + 2 * kPageSize, 1); // [+2, +4) pages: the last page is not RAM
    ASSERT_EQ(test::reports().size(), 1u);
    EXPECT_EQ(test::reports()[0].kind, ErrorKind::FreeOutsideManagedMemory);
    f.expect_pristine();
}

TEST_F(PageFrameAllocatorMisuse, FreeMisaligned) {
    const PhysAddr block = f.pfa.allocate(3);
    expect_rejected(block + kPageSize, 3, ErrorKind::FreeMisaligned);
    expect_rejected(block + 8, 0, ErrorKind::FreeMisaligned);
    f.pfa.free(block, 3);
    f.expect_pristine();
}

TEST_F(PageFrameAllocatorMisuse, DoubleFreeAndNeverAllocated) {
    const PhysAddr block = f.pfa.allocate(2);
    f.pfa.free(block, 2);
    expect_rejected(block, 2, ErrorKind::DoubleFree);
    const PhysAddr held = f.pfa.allocate(4);
    const PhysAddr never = f.pfa.allocate(0);
    f.pfa.free(never, 0);
    expect_rejected(never, 0, ErrorKind::DoubleFree); // free, part of a larger free block now
    expect_rejected(held + 4 * kPageSize, 2, ErrorKind::FreeWrongOrder); // inside a held block
    f.pfa.free(held, 4);
    expect_rejected(held + 4 * kPageSize, 2, ErrorKind::DoubleFree);
    f.expect_pristine();
}

TEST_F(PageFrameAllocatorMisuse, FreeWrongOrder) {
    const PhysAddr block = f.pfa.allocate(3);
    expect_rejected(block, 2, ErrorKind::FreeWrongOrder);
    expect_rejected(block, 4, ErrorKind::FreeWrongOrder);
    expect_rejected(block, kMaxOrder + 1, ErrorKind::FreeWrongOrder);
    f.pfa.free(block, 3);
    f.expect_pristine();
}

TEST_F(PageFrameAllocatorMisuse, BadFreePagesChangesNothing) {
    const PhysAddr run = f.pfa.allocate_pages(5);
    test::clear_reports();
    const uint64_t free_before = f.pfa.free_pages();
    f.pfa.free_pages(run, 6); // one page too many: that page is free
    EXPECT_EQ(test::reports().size(), 1u);
    EXPECT_EQ(f.pfa.free_pages(), free_before);
    // Counts reaching past the memory the run starts in are wrong counts too (they were
    // reported as frees outside managed memory).
    for (const size_t count : {size_t{1} << 20, SIZE_MAX}) {
        test::clear_reports();
        f.pfa.free_pages(run, count);
        ASSERT_EQ(test::reports().size(), 1u) << count;
        EXPECT_EQ(test::reports()[0].kind, ErrorKind::FreeWrongOrder) << count;
        EXPECT_EQ(f.pfa.free_pages(), free_before);
    }
    f.pfa.free_pages(run, 5);
    f.expect_pristine();
}

// A run is freed whole, with the count it was allocated with, or not at all.
TEST_F(PageFrameAllocatorMisuse, RunsAreFreedOnlyWhole) {
    const PhysAddr run = f.pfa.allocate_pages(7); // blocks of 4, 2 and 1 pages
    ASSERT_NE(run, kNoPage);
    const auto expect_free_pages_rejected = [&](PhysAddr address, size_t count) {
        test::clear_reports();
        const uint64_t free_before = f.pfa.free_pages();
        f.pfa.free_pages(address, count);
        ASSERT_EQ(test::reports().size(), 1u);
        EXPECT_EQ(test::reports()[0].kind, ErrorKind::FreeWrongOrder);
        EXPECT_EQ(test::reports()[0].address, address);
        EXPECT_EQ(test::reports()[0].size, count);
        EXPECT_EQ(f.pfa.free_pages(), free_before);
        EXPECT_TRUE(f.pfa.check().ok);
    };
    expect_free_pages_rejected(run, 6);                                 // too short
    expect_free_pages_rejected(run, 4);                                 // only the first block
    expect_free_pages_rejected(run + 4 * kPageSize, 3);                 // not from the start
    expect_free_pages_rejected(run + 6 * kPageSize, 1);                 // the last block alone
    expect_rejected(run, 2, ErrorKind::FreeWrongOrder);                 // a block of the run
    expect_rejected(run + 6 * kPageSize, 0, ErrorKind::FreeWrongOrder); // its last block
    test::clear_reports();
    f.pfa.free_pages(run, 7);
    EXPECT_TRUE(test::reports().empty());
    // A single block may be freed either way.
    const PhysAddr block = f.pfa.allocate_pages(4);
    f.pfa.free(block, 2);
    const PhysAddr other = f.pfa.allocate(3);
    f.pfa.free_pages(other, 8);
    EXPECT_TRUE(test::reports().empty());
    f.expect_pristine();
}

// free_pages() checks the run's blocks in order and reports the first misuse it finds, each with
// its own detail, and changes nothing.
TEST_F(PageFrameAllocatorMisuse, FreePagesReportsTheFirstMisuseAlongTheRun) {
    const PhysAddr run = f.pfa.allocate_pages(7); // blocks of 4, 2 and 1 pages
    ASSERT_NE(run, kNoPage);
    const PhysAddr cached = f.pfa.allocate(0);
    ASSERT_NE(cached, kNoPage);
    f.pfa.free(cached, 0); // on this CPU's page list now
    const auto expect_report = [&](PhysAddr address, size_t count, ErrorKind kind,
                                   const char* detail) {
        test::clear_reports();
        const uint64_t free_before = f.pfa.free_pages();
        f.pfa.free_pages(address, count);
        ASSERT_EQ(test::reports().size(), 1u) << detail;
        EXPECT_EQ(test::reports()[0].kind, kind) << detail;
        EXPECT_STREQ(test::reports()[0].detail, detail);
        EXPECT_EQ(f.pfa.free_pages(), free_before) << detail;
        EXPECT_TRUE(f.pfa.check().ok) << detail;
    };
    // The blocks of 4 and 2 pages are the run's; the 2 is not its last.
    expect_report(run, 6, ErrorKind::FreeWrongOrder,
                  "the run was allocated with another page count");
    // The run's blocks of 2 and 1 pages, but the run starts before them.
    expect_report(run + 4 * kPageSize, 3, ErrorKind::FreeWrongOrder,
                  "the address is inside a run, not at its start");
    // Eight pages from the run's start are one block of 8, where the run's block of 4 starts.
    expect_report(run, 8, ErrorKind::FreeWrongOrder, "the block was allocated with another order");
    expect_report(cached, 1, ErrorKind::DoubleFree, "the block is free (on a CPU page list)");
    f.pfa.free_pages(run, 7);
    expect_report(run, 7, ErrorKind::DoubleFree,
                  "the block is not allocated (already freed, or never allocated)");
    f.expect_pristine();
}

TEST_F(PageFrameAllocatorMisuse, ExhaustionReturnsFailure) {
    std::vector<PhysAddr> blocks;
    for (PhysAddr p; (p = f.pfa.allocate(5)) != kNoPage;) {
        blocks.push_back(p);
    }
    EXPECT_EQ(f.pfa.allocate(5), kNoPage);
    EXPECT_TRUE(test::reports().empty());
    for (PhysAddr p : blocks) {
        f.pfa.free(p, 5);
    }
    f.expect_pristine();
}

// Property test against a reference model: random allocate/free of random orders, runs,
// alignments and address limits, with misuse mixed in; live blocks never overlap, stay inside
// RAM, aligned and below their limit; each misuse is reported once and changes nothing; check()
// holds after every step; freeing everything restores the start-up state exactly.
void run_random_sequence(uint64_t seed, size_t operations) {
    Fixture f({{0x3000, 0x5FD000}, {8 * kMiB + 0x7000, 5 * kMiB}, {5 * kGiB, 2 * kMiB}});
    ASSERT_TRUE(f.initialized);
    std::mt19937_64 random(seed);
    struct Live {
        uint64_t pages;
        bool is_run;
        unsigned order;
    };
    std::map<PhysAddr, Live> live;
    const auto inside_ram = [&](PhysAddr address, uint64_t pages) {
        for (const PhysRange& range : f.memory.ranges()) {
            if (address >= range.base && address + pages * kPageSize - 1 <= range.last()) {
                return true;
            }
        }
        return false;
    };
    const auto free_live = [&](PhysAddr address, const Live& block) {
        if (block.is_run) {
            f.pfa.free_pages(address, block.pages);
        } else {
            f.pfa.free(address, block.order);
        }
    };
    PhysAddr last_freed = kNoPage;
    Live last_freed_block{};
    for (size_t step = 0; step < operations; ++step) {
        const uint64_t choice = random() % 100;
        const bool can_free_again = last_freed != kNoPage && live.count(last_freed) == 0;
        if (choice < 3 && (can_free_again || !live.empty())) {
            // Misuse: free a block again, or a live one with another order or count.
            const uint64_t free_before = f.pfa.free_pages();
            const size_t reports_before = test::reports().size();
            if (can_free_again && (live.empty() || random() % 2 == 0)) {
                free_live(last_freed, last_freed_block);
            } else {
                auto it = live.begin();
                std::advance(it, static_cast<long>(random() % live.size()));
                Live wrong = it->second;
                wrong.pages += 1;
                wrong.order = wrong.order == kMaxOrder ? 0 : wrong.order + 1;
                free_live(it->first, wrong);
            }
            ASSERT_EQ(test::reports().size(), reports_before + 1) << "step " << step;
            ASSERT_EQ(f.pfa.free_pages(), free_before) << "step " << step;
        } else if (live.empty() || choice < 55) {
            Live block{};
            PhysAddr address;
            uint64_t alignment = kPageSize;
            PhysAddr limit = kNoLimit;
            if (random() % 3 == 0) {
                limit = random() % (12 * kMiB);
            }
            if (random() % 4 == 0) {
                block = {1 + random() % 37, true, 0};
                alignment = kPageSize << (random() % 8);
                address = f.pfa.allocate_pages(block.pages, alignment, limit);
            } else {
                const auto order = static_cast<unsigned>(random() % 7);
                block = {uint64_t{1} << order, false, order};
                alignment = kPageSize << order;
                address =
                    limit == kNoLimit ? f.pfa.allocate(order) : f.pfa.allocate_below(order, limit);
            }
            if (address == kNoPage) {
                continue;
            }
            ASSERT_EQ(address % alignment, 0u);
            ASSERT_LE(address + block.pages * kPageSize, limit);
            ASSERT_TRUE(inside_ram(address, block.pages)) << std::hex << address;
            const auto next = live.lower_bound(address);
            if (next != live.end()) {
                ASSERT_LE(address + block.pages * kPageSize, next->first);
            }
            if (next != live.begin()) {
                const auto previous = std::prev(next);
                ASSERT_LE(previous->first + previous->second.pages * kPageSize, address);
            }
            live[address] = block;
        } else {
            auto it = live.begin();
            std::advance(it, static_cast<long>(random() % live.size()));
            free_live(it->first, it->second);
            last_freed = it->first;
            last_freed_block = it->second;
            live.erase(it);
        }
        const PageFrameCheck check = f.pfa.check();
        ASSERT_TRUE(check.ok) << "step " << step << ": " << check.failure;
    }
    test::clear_reports();
    for (const auto& [address, block] : live) {
        free_live(address, block);
    }
    EXPECT_TRUE(test::reports().empty());
    f.expect_pristine();
}

// Several threads allocate and free at once. Every page of a block carries its owner's stamp,
// checked before the block is freed, so a page handed to two threads is caught; afterwards the
// state is exactly the start-up one.
TEST(PageFrameAllocatorThreads, ConcurrentAllocateAndFreeNeverShareAPage) {
    Fixture f({{kGiB, 64 * kMiB}, {5 * kGiB, 8 * kMiB}});
    ASSERT_TRUE(f.initialized);
    const uint64_t seed = seed_from_environment(7);
    constexpr unsigned kThreads = 4;
    std::atomic<uint64_t> damaged{0};
    const auto stamp_of = [](unsigned thread, PhysAddr page) { return page ^ (thread + 1); };
    const auto for_each_page = [](PhysAddr block, unsigned order, auto visit) {
        for (uint64_t i = 0; i < (uint64_t{1} << order); ++i) {
            visit(*static_cast<volatile uint64_t*>(platform::phys_to_virt(block + i * kPageSize)),
                  block + i * kPageSize);
        }
    };
    std::vector<std::thread> threads;
    for (unsigned thread = 0; thread < kThreads; ++thread) {
        threads.emplace_back([&, thread] {
            std::mt19937_64 random(seed + thread);
            std::vector<std::pair<PhysAddr, unsigned>> held;
            const auto free_held = [&](size_t index) {
                const auto [block, order] = held[index];
                for_each_page(block, order, [&](volatile uint64_t& word, PhysAddr page) {
                    damaged += word != stamp_of(thread, page) ? 1 : 0;
                });
                f.pfa.free(block, order);
                held[index] = held.back();
                held.pop_back();
            };
            for (int step = 0; step < 30000; ++step) {
                if (held.empty() || random() % 2 == 0) {
                    const auto order = static_cast<unsigned>(random() % 5);
                    const PhysAddr block = f.pfa.allocate(order);
                    if (block != kNoPage) {
                        for_each_page(block, order, [&](volatile uint64_t& word, PhysAddr page) {
                            word = stamp_of(thread, page);
                        });
                        held.emplace_back(block, order);
                    }
                } else {
                    free_held(random() % held.size());
                }
            }
            while (!held.empty()) {
                free_held(held.size() - 1);
            }
        });
    }
    for (std::thread& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(damaged.load(), 0u);
    EXPECT_TRUE(test::reports().empty());
    // The threads' CPU slots keep what their lists held when the threads ended.
    for (unsigned cpu = 0; cpu < platform::kMaxCpus; ++cpu) {
        f.pfa.drain_cpu(cpu);
    }
    f.expect_pristine();
}

TEST(PageFrameAllocatorProperty, FixedSeed1) {
    run_random_sequence(1, 200000);
}
TEST(PageFrameAllocatorProperty, FixedSeed2) {
    run_random_sequence(0xbed70c, 200000);
}
TEST(PageFrameAllocatorProperty, EnvironmentSeed) {
    run_random_sequence(seed_from_environment(static_cast<uint64_t>(std::random_device{}())),
                        200000);
}

// The page before a metadata block may be anyone's: a write of up to 64 bytes past its end lands
// on the block's pad, which holds nothing the allocator follows. check() names it (at the block,
// or at an added range's first region), and pages come and go as before. Before, it landed on
// CPU 0's page lists (init()'s block) or a region's free bitmap (add_range()'s).
TEST(PageFrameAllocator, AWritePastThePageBeforeTheMetadataLandsOnItsPad) {
    const PhysRange first{kGiB, 64 * kMiB};
    const PhysRange added{kGiB + 128 * kMiB, 64 * kMiB};
    test::SimulatedMemory memory({{kGiB, 192 * kMiB}});
    PageFrameAllocator pfa;
    EXPECT_TRUE(pfa.check().ok) << "no metadata yet, so no pad to read";
    ASSERT_TRUE(pfa.init(&first, 1, CpuPageLists::On, 1));
    const auto churn = [&pfa] {
        std::vector<std::pair<PhysAddr, unsigned>> blocks;
        for (unsigned i = 0; i < 1000; ++i) {
            const unsigned order = i % 5;
            const PhysAddr block = pfa.allocate(order);
            ASSERT_NE(block, kNoPage);
            blocks.emplace_back(block, order);
        }
        for (const auto& [block, order] : blocks) {
            pfa.free(block, order);
        }
    };
    auto* metadata = static_cast<unsigned char*>(platform::phys_to_virt(pfa.metadata_range().base));
    unsigned char saved[16];
    memcpy(saved, metadata, 16);
    memset(metadata, 0x42, 16);
    churn();
    PageFrameCheck check = pfa.check();
    EXPECT_FALSE(check.ok);
    EXPECT_NE(strstr(check.failure, "the pad in front of the allocator's metadata"), nullptr)
        << check.failure;
    EXPECT_EQ(check.address, pfa.metadata_range().base);
    memcpy(metadata, saved, 16);
    EXPECT_TRUE(pfa.check().ok) << pfa.check().failure;

    // An added range's block: the one page-aligned block of its pages holding a pad.
    ASSERT_TRUE(pfa.add_range(added));
    unsigned char* block = nullptr;
    for (PhysAddr page = added.base; page < added.base + added.size; page += kPageSize) {
        auto* at = static_cast<unsigned char*>(platform::phys_to_virt(page));
        if (pages::metadata_pad_holds(at)) {
            ASSERT_EQ(block, nullptr) << "one metadata block per added range";
            block = at;
        }
    }
    ASSERT_NE(block, nullptr);
    memcpy(saved, block, 16);
    memset(block, 0, 16);
    churn();
    check = pfa.check();
    EXPECT_FALSE(check.ok);
    EXPECT_NE(strstr(check.failure, "an added range's metadata"), nullptr) << check.failure;
    EXPECT_GE(check.address, added.base);
    memcpy(block, saved, 16);
    EXPECT_TRUE(pfa.check().ok) << pfa.check().failure;
}

} // namespace
} // namespace bedrock
