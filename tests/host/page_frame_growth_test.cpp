// SPDX-License-Identifier: MIT
// Host tests of the page frame allocator's growth (add_range, the grow hook) and of giving
// pages back (platform::pages_unused), over simulated physical memory: ranges are added above
// the managed ones and checked with check(); every pages_unused range must lie in free memory
// (never in an allocated block) and be a whole merged free block.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "bedrock/page_frame_allocator.h"
#include "bedrock/platform.h"
#include "max_cpus_support.h"
#include "support/host_platform.h"

namespace bedrock {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;

uint64_t seed_from_environment(uint64_t fallback) {
    const char* text = std::getenv("BEDROCK_TEST_SEED");
    const uint64_t seed = text != nullptr ? std::strtoull(text, nullptr, 0) : fallback;
    std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
    return seed;
}

#define EXPECT_CHECK(pfa)                                                                          \
    do {                                                                                           \
        const PageFrameCheck result = (pfa).check();                                               \
        EXPECT_TRUE(result.ok) << result.failure << " at 0x" << std::hex << result.address;        \
    } while (false)

TEST(PageFrameGrowth, AddRangeManagesMorePages) {
    // One simulated window: an added range must also lie above the others virtually.
    test::SimulatedMemory memory({{kGiB, 128 * kMiB}});
    PageFrameAllocator pfa;
    const PhysRange first{kGiB, 16 * kMiB};
    ASSERT_TRUE(pfa.init(&first, 1, CpuPageLists::On, 4));
    const uint64_t managed = pfa.managed_pages();
    const uint64_t metadata = pfa.metadata_bytes();
    ASSERT_TRUE(pfa.add_range({kGiB + 64 * kMiB, 64 * kMiB}));
    EXPECT_CHECK(pfa);
    EXPECT_EQ(pfa.region_count(), 2u);
    // The added range's metadata is carved from it: ~0.07 % of it, within the 0.1 % budget.
    const uint64_t added_metadata = pfa.metadata_bytes() - metadata;
    EXPECT_GT(added_metadata, 0u);
    EXPECT_LE(added_metadata * 1000, 64 * kMiB + 4096);
    EXPECT_EQ(pfa.managed_pages(), managed + (64 * kMiB - added_metadata) / kPageSize);
    EXPECT_EQ(pfa.free_pages(), pfa.managed_pages());
    // A 32 MiB block only the added range can serve, then everything of it.
    const PhysAddr big = pfa.allocate(13);
    ASSERT_NE(big, kNoPage);
    EXPECT_GE(big, kGiB + 64 * kMiB);
    EXPECT_NE(pfa.page_tag(platform::phys_to_virt(big)), nullptr);
    EXPECT_EQ(pfa.phys_of(platform::phys_to_virt(big)), big);
    EXPECT_CHECK(pfa);
    pfa.free(big, 13);
    EXPECT_CHECK(pfa);
    EXPECT_EQ(pfa.free_pages(), pfa.managed_pages());
}

// Each refusal of the caller's range is reported once, as range-refused naming the range and
// why; running short of spare descriptors is an answer, not a report.
void expect_refused(bool added, PhysRange range, const char* why) {
    EXPECT_FALSE(added) << why;
    ASSERT_EQ(test::reports().size(), 1u) << why;
    const ErrorReport& report = test::reports()[0];
    EXPECT_EQ(report.kind, ErrorKind::RangeRefused) << why;
    EXPECT_EQ(report.address, range.base) << why;
    EXPECT_EQ(report.size, range.size) << why;
    EXPECT_NE(strstr(report.detail, why), nullptr) << report.detail;
    test::clear_reports();
}

TEST(PageFrameGrowth, BadRangesAreRefusedReportedAndChangeNothing) {
    test::SimulatedMemory memory({{kGiB, kGiB + 16 * kMiB}});
    PageFrameAllocator pfa;
    test::clear_reports();
    const PhysRange early{2 * kGiB, 16 * kMiB};
    expect_refused(pfa.add_range(early), early, "before init()");
    const PhysRange first{kGiB + 8 * kMiB, 8 * kMiB};
    ASSERT_TRUE(pfa.init(&first, 1, CpuPageLists::Off, 1));
    const uint64_t managed = pfa.managed_pages();
    const struct {
        PhysRange range;
        const char* why;
    } refused[] = {
        {{kGiB, 4 * kMiB}, "at or below a managed page"},
        {{kGiB + 12 * kMiB, 4 * kMiB}, "at or below a managed page"},
        {{2 * kGiB + 1, 4 * kMiB}, "not page-aligned"},
        {{2 * kGiB, 4 * kMiB + 5}, "not page-aligned"},
        {{2 * kGiB, 4 * kPageSize}, "below add_range()'s smallest"},
        {{~uint64_t{0} - 4 * kMiB + 1, 8 * kMiB}, "wraps past the top"},
        {{2 * kGiB, 0}, "an empty range"},
    };
    for (const auto& bad : refused) {
        expect_refused(pfa.add_range(bad.range), bad.range, bad.why);
    }
    EXPECT_EQ(pfa.managed_pages(), managed);
    EXPECT_EQ(pfa.region_count(), 1u);
    EXPECT_CHECK(pfa);
    ASSERT_TRUE(pfa.add_range({2 * kGiB, 8 * kMiB}));
    EXPECT_FALSE(pfa.add_range({2 * kGiB + 8 * kMiB, 8 * kMiB})) << "no spare descriptor left";
    EXPECT_EQ(pfa.region_count(), 2u);
    EXPECT_CHECK(pfa);
    EXPECT_TRUE(test::reports().empty());
}

// An added range whose metadata went at its top (its end not a multiple of its largest block) is
// managed up to that end: a next range starting right after its last region, over that metadata,
// is refused (it was taken, and its pages handed out over the first one's bitmaps and tags).
TEST(PageFrameGrowth, ARangeOverAnAddedRangesMetadataIsRefused) {
    test::SimulatedMemory memory({{kGiB, 128 * kMiB}});
    PageFrameAllocator pfa;
    const PhysRange first{kGiB, 16 * kMiB};
    ASSERT_TRUE(pfa.init(&first, 1, CpuPageLists::Off, 4));
    const PhysRange added{kGiB + 32 * kMiB, 8 * kMiB + 64 * 1024};
    ASSERT_TRUE(pfa.add_range(added));
    const PhysRange last = pfa.region_range(pfa.region_count() - 1);
    ASSERT_LT(last.base + last.size, added.base + added.size) << "its metadata is at its top";
    test::clear_reports();
    const PhysRange over{last.base + last.size, 64 * kMiB};
    expect_refused(pfa.add_range(over), over, "at or below a managed page");
    const PhysRange after{added.base + added.size, 32 * kMiB};
    EXPECT_TRUE(pfa.add_range(after)) << "right after the added range's metadata";
    std::vector<PhysAddr> pages;
    for (PhysAddr page; (page = pfa.allocate(0)) != kNoPage;) {
        std::memset(platform::phys_to_virt(page), 0xa5, kPageSize);
        pages.push_back(page);
    }
    EXPECT_CHECK(pfa);
    for (const PhysAddr page : pages) {
        pfa.free(page, 0);
    }
    EXPECT_CHECK(pfa);
    EXPECT_TRUE(test::reports().empty());
}

TEST(PageFrameGrowth, AddedRangeAcrossAZoneBoundaryIsSplit) {
    test::SimulatedMemory memory({{8 * kMiB, 12 * kMiB}});
    PageFrameAllocator pfa;
    const PhysRange first{8 * kMiB, 4 * kMiB};
    ASSERT_TRUE(pfa.init(&first, 1, CpuPageLists::Off, 2));
    ASSERT_TRUE(pfa.add_range({12 * kMiB, 8 * kMiB}));
    EXPECT_EQ(pfa.region_count(), 3u);
    // Split at 16 MiB (the range's metadata takes a few pages at the bottom of one piece).
    EXPECT_EQ(pfa.region_range(1).base + pfa.region_range(1).size, 16 * kMiB);
    EXPECT_GE(pfa.region_range(2).base, 16 * kMiB);
    EXPECT_EQ(pfa.region_range(2).base + pfa.region_range(2).size, 20 * kMiB);
    EXPECT_CHECK(pfa);
    const PhysAddr low = pfa.allocate_below(8, kZoneDmaLimit);
    ASSERT_NE(low, kNoPage);
    EXPECT_LT(low, kZoneDmaLimit);
    pfa.free(low, 8);
    EXPECT_CHECK(pfa);
}

// A grow hook that adds the next piece of one simulated range, as the hosted platform does.
struct Growth {
    uint64_t next;
    uint64_t end;
    uint64_t chunk;
    unsigned calls = 0;
    uint64_t last_pages = 0; // what the last call asked for
};

bool grow(PageFrameAllocator& frames, uint64_t pages, void* context) {
    auto& growth = *static_cast<Growth*>(context);
    ++growth.calls;
    growth.last_pages = pages;
    uint64_t bytes = growth.chunk;
    while (bytes < pages * kPageSize + pages * kPageSize / 512 + 2 * kPageSize) {
        bytes *= 2;
    }
    bytes = bytes < growth.end - growth.next ? bytes : growth.end - growth.next;
    if (bytes == 0 || !frames.add_range({growth.next, bytes})) {
        return false;
    }
    growth.next += bytes;
    growth.chunk *= 2;
    return true;
}

TEST(PageFrameGrowth, AllocationsGrowThroughTheHook) {
    test::SimulatedMemory memory({{4 * kGiB, 4 * kGiB}});
    PageFrameAllocator pfa;
    const PhysRange first{4 * kGiB, 2 * kMiB};
    ASSERT_TRUE(pfa.init(&first, 1, CpuPageLists::On, 32));
    Growth growth{4 * kGiB + 2 * kMiB, 8 * kGiB, 4 * kMiB};
    pfa.set_grow_hook(grow, &growth);
    const uint64_t seed = seed_from_environment(std::random_device{}());
    std::mt19937_64 random(seed);
    struct Held {
        PhysAddr address;
        uint64_t count;
    };
    std::vector<Held> held;
    for (int i = 0; i < 3000; ++i) {
        if (held.empty() || random() % 2 != 0) {
            const uint64_t count = 1 + random() % (random() % 16 == 0 ? 4096 : 16);
            const PhysAddr address = pfa.allocate_pages(count);
            ASSERT_NE(address, kNoPage)
                << "count " << count << " after " << growth.calls << " growths";
            held.push_back({address, count});
        } else {
            const size_t index = random() % held.size();
            pfa.free_pages(held[index].address, held[index].count);
            held[index] = held.back();
            held.pop_back();
        }
        if (i % 500 == 0) {
            EXPECT_CHECK(pfa);
        }
    }
    EXPECT_GT(growth.calls, 0u);
    EXPECT_CHECK(pfa);
    // A run larger than any chunk so far, and a block: both grow.
    const PhysAddr run = pfa.allocate_pages(40000);
    ASSERT_NE(run, kNoPage);
    const PhysAddr block = pfa.allocate(15);
    ASSERT_NE(block, kNoPage);
    EXPECT_CHECK(pfa);
    pfa.free_pages(run, 40000);
    pfa.free(block, 15);
    for (const Held& h : held) {
        pfa.free_pages(h.address, h.count);
    }
    pfa.drain_cpu(platform::current_cpu());
    EXPECT_CHECK(pfa);
    EXPECT_EQ(pfa.free_pages(), pfa.managed_pages());
    // <= 0.1 %, apart from the page lists of the CPU slots beyond 64 (256 bytes each).
    EXPECT_LE((pfa.metadata_bytes() - test::kPageListsBytesBeyondDefault) * 1000,
              pfa.managed_pages() * kPageSize);
    EXPECT_TRUE(test::reports().empty());
}

// A run of more pages than any memory holds asks the hook for nothing: its rounding up to whole
// maximum blocks wrapped (SIZE_MAX pages asked for one maximum block, 1 GiB, four times).
TEST(PageFrameGrowth, ARunNoMemoryCanHoldAsksForNoGrowth) {
    test::SimulatedMemory memory({{4 * kGiB, kGiB}});
    PageFrameAllocator pfa;
    const PhysRange first{4 * kGiB, 2 * kMiB};
    ASSERT_TRUE(pfa.init(&first, 1, CpuPageLists::On, 32));
    Growth growth{4 * kGiB + 2 * kMiB, 5 * kGiB, 4 * kMiB};
    pfa.set_grow_hook(grow, &growth);
    for (const size_t count : {SIZE_MAX, SIZE_MAX - 1000, SIZE_MAX >> 1}) {
        EXPECT_EQ(pfa.allocate_pages(count), kNoPage) << count;
    }
    EXPECT_EQ(growth.calls, 0u);
    EXPECT_EQ(growth.next, 4 * kGiB + 2 * kMiB) << "no memory was added";
    EXPECT_CHECK(pfa);
    EXPECT_TRUE(test::reports().empty());
}

// A run aligned beyond a maximum block asks for twice its alignment: 8 GiB-aligned, with only
// [4 GiB, 4 GiB + 2 MiB) managed, the hook adds the rest of [4 GiB, 12 GiB), and the run starts
// at 8 GiB.
TEST(PageFrameGrowth, ARunAlignedBeyondAMaximumBlockGrowsByItsAlignment) {
    test::SimulatedMemory memory({{4 * kGiB, 8 * kGiB}});
    PageFrameAllocator pfa;
    const PhysRange first{4 * kGiB, 2 * kMiB};
    ASSERT_TRUE(pfa.init(&first, 1, CpuPageLists::On, 32));
    Growth growth{4 * kGiB + 2 * kMiB, 12 * kGiB, 4 * kMiB};
    pfa.set_grow_hook(grow, &growth);
    const PhysAddr run = pfa.allocate_pages(3, 8 * kGiB);
    EXPECT_EQ(run, 8 * kGiB);
    EXPECT_EQ(growth.calls, 1u);
    EXPECT_EQ(growth.last_pages, 2 * 8 * kGiB / kPageSize);
    EXPECT_CHECK(pfa);
    pfa.free_pages(run, 3);
    EXPECT_CHECK(pfa);
    EXPECT_EQ(pfa.free_pages(), pfa.managed_pages());
    EXPECT_TRUE(test::reports().empty());
}

// A run that any free pages in a row serve asks the hook for its own pages, so that an owner
// under a limit can serve one of most of what the limit leaves; searched as a buddy block, it
// asks for twice the block (1,024 pages for 700). Both are served from what the hook added.
TEST(PageFrameGrowth, ARunThatAnyFreePagesServeAsksForItsOwnPages) {
    test::SimulatedMemory memory({{4 * kGiB, kGiB}});
    PageFrameAllocator pfa;
    const PhysRange first{4 * kGiB, 2 * kMiB};
    ASSERT_TRUE(pfa.init(&first, 1, CpuPageLists::On, 32));
    Growth growth{4 * kGiB + 2 * kMiB, 5 * kGiB, 64 * 1024};
    pfa.set_grow_hook(grow, &growth);
    const PhysAddr run = pfa.allocate_pages(700);
    ASSERT_NE(run, kNoPage);
    EXPECT_EQ(growth.calls, 1u);
    EXPECT_EQ(growth.last_pages, 700u);
    const PhysAddr block = pfa.allocate_pages(700, kPageSize, kNoLimit, RunSearch::BuddyBlock);
    ASSERT_NE(block, kNoPage);
    EXPECT_EQ(growth.calls, 2u);
    EXPECT_EQ(growth.last_pages, 2 * 1024u);
    EXPECT_CHECK(pfa);
    pfa.free_pages(run, 700);
    pfa.free_pages(block, 700);
    EXPECT_CHECK(pfa);
    EXPECT_EQ(pfa.free_pages(), pfa.managed_pages());
    EXPECT_TRUE(test::reports().empty());
}

TEST(PageFrameGrowth, TheReserveGrowsAheadOfNeed) {
    test::SimulatedMemory memory({{4 * kGiB, kGiB}});
    PageFrameAllocator pfa;
    const PhysRange first{4 * kGiB, 8 * kMiB + 64 * 1024}; // its metadata above the 8 MiB
    ASSERT_TRUE(pfa.init(&first, 1, CpuPageLists::Off, 8));
    Growth growth{4 * kGiB + 8 * kMiB + 64 * 1024, 5 * kGiB, 4 * kMiB};
    pfa.set_grow_hook(grow, &growth, 11); // keep an 8 MiB block free
    EXPECT_EQ(pfa.largest_free_order(), 11);
    // Taking the only 8 MiB block leaves none: the hook adds one before allocate() returns.
    const PhysAddr block = pfa.allocate(11);
    ASSERT_NE(block, kNoPage);
    EXPECT_EQ(growth.calls, 1u);
    EXPECT_GE(pfa.largest_free_order(), 11);
    // Small allocations that leave the reserve alone call nothing.
    pfa.free(pfa.allocate(0), 0);
    EXPECT_EQ(growth.calls, 1u);
    pfa.free(block, 11);
    EXPECT_CHECK(pfa);
}

TEST(PageFrameGrowth, ZeroedRangesNeedNoZeroing) {
    // Simulated memory is fresh anonymous memory: it reads as zeroes, as init() is promised.
    test::SimulatedMemory memory({{kGiB, 256 * kMiB}});
    PageFrameAllocator pfa;
    const PhysRange first{kGiB, 64 * kMiB};
    ASSERT_TRUE(pfa.init(&first, 1, CpuPageLists::On, 2, RangeContents::Zeroed));
    ASSERT_TRUE(pfa.add_range({kGiB + 128 * kMiB, 128 * kMiB}));
    EXPECT_CHECK(pfa);
    std::vector<PhysAddr> blocks;
    for (unsigned order = 0; order <= 12; ++order) {
        blocks.push_back(pfa.allocate(order));
        ASSERT_NE(blocks.back(), kNoPage);
    }
    EXPECT_CHECK(pfa);
    for (unsigned order = 0; order <= 12; ++order) {
        pfa.free(blocks[order], order);
    }
    pfa.drain_cpu(platform::current_cpu());
    EXPECT_CHECK(pfa);
    EXPECT_EQ(pfa.free_pages(), pfa.managed_pages());
}

TEST(PageFrameGrowth, WithoutAHookAnExhaustedAllocatorFails) {
    test::SimulatedMemory memory({{kGiB, 4 * kMiB}});
    PageFrameAllocator pfa;
    const PhysRange first{kGiB, 4 * kMiB};
    ASSERT_TRUE(pfa.init(&first, 1));
    EXPECT_EQ(pfa.allocate_pages(2048), kNoPage);
    EXPECT_EQ(pfa.allocate(12), kNoPage);
    EXPECT_CHECK(pfa);
}

// Every pages_unused range since the last clear: a whole block of kUnusedOrder or more, aligned
// to its size, overlapping no allocated block.
void expect_unused_ranges_free(PageFrameAllocator& pfa, const std::vector<PhysAddr>& allocated,
                               uint64_t allocated_bytes) {
    for (const test::UnusedPages& unused : test::unused_pages()) {
        const auto start = reinterpret_cast<uintptr_t>(unused.start);
        EXPECT_EQ(start % kPageSize, 0u);
        EXPECT_EQ(unused.bytes % kPageSize, 0u);
        EXPECT_GE(unused.bytes, kPageSize << kUnusedOrder);
        EXPECT_EQ(unused.bytes & (unused.bytes - 1), 0u) << "a power of two";
        ASSERT_NE(pfa.page_tag(unused.start), nullptr);
        const PhysAddr phys = pfa.phys_of(unused.start);
        for (const PhysAddr block : allocated) {
            const bool disjoint = phys + unused.bytes <= block || block + allocated_bytes <= phys;
            EXPECT_TRUE(disjoint) << "pages_unused over an allocated block";
        }
    }
}

TEST(PageFrameGiveBack, WholeFreedRunsAreReportedWithTheirRanges) {
    test::SimulatedMemory memory({{kGiB, 256 * kMiB}});
    PageFrameAllocator pfa;
    const PhysRange range{kGiB, 256 * kMiB};
    ASSERT_TRUE(pfa.init(&range, 1, CpuPageLists::Off));
    test::clear_unused_pages();
    // Allocating reports nothing; freeing a 64 MiB block (more than the retained pages) reports
    // it, merged with its free buddies: all of its pages.
    static_assert((uint64_t{1} << 14) > kRetainedUnusedPages);
    const PhysAddr a = pfa.allocate(14);
    const PhysAddr b = pfa.allocate(14);
    ASSERT_NE(a, kNoPage);
    ASSERT_NE(b, kNoPage);
    EXPECT_EQ(test::unused_calls(), 0u);
    pfa.free(a, 14);
    ASSERT_GE(test::unused_calls(), 1u);
    const test::UnusedPages first = test::unused_pages().back();
    // a merged with whatever was free beside it: the report covers all of a.
    const PhysAddr reported = pfa.phys_of(first.start);
    EXPECT_EQ(reported % first.bytes, 0u);
    EXPECT_LE(reported, a);
    EXPECT_GE(reported + first.bytes, a + (kPageSize << 14));
    expect_unused_ranges_free(pfa, {b}, kPageSize << 14);
    EXPECT_CHECK(pfa);
    pfa.free(b, 14);
    EXPECT_CHECK(pfa);
}

// Freed pages up to kRetainedUnusedPages (less what is allocated again) are kept from the
// platform: a 16 MiB block freed and allocated again 100 times is never reported, nor are 32 MiB
// freed at once; the next free beyond them is, and tell_unused_pages() tells every free block
// of kUnusedOrder or more.
TEST(PageFrameGiveBack, RecentlyFreedPagesAreRetainedUpToTheirBound) {
    test::SimulatedMemory memory({{kGiB, 128 * kMiB}});
    PageFrameAllocator pfa;
    const PhysRange range{kGiB, 128 * kMiB};
    ASSERT_TRUE(pfa.init(&range, 1, CpuPageLists::Off));
    test::clear_unused_pages();
    static_assert(kRetainedUnusedPages == 8192); // 32 MiB: the orders below follow from it
    for (int i = 0; i < 100; ++i) {
        const PhysAddr block = pfa.allocate(12);
        ASSERT_NE(block, kNoPage);
        pfa.free(block, 12);
    }
    EXPECT_EQ(test::unused_calls(), 0u) << "a block freed and taken again is retained";
    const PhysAddr a = pfa.allocate(12);
    const PhysAddr b = pfa.allocate(12);
    const PhysAddr c = pfa.allocate(12);
    ASSERT_TRUE(a != kNoPage && b != kNoPage && c != kNoPage);
    pfa.free(a, 12);
    pfa.free(b, 12);
    EXPECT_EQ(test::unused_calls(), 0u) << "32 MiB freed: not beyond the bound";
    pfa.free(c, 12);
    ASSERT_GE(test::unused_calls(), 1u) << "48 MiB freed: beyond it";
    expect_unused_ranges_free(pfa, {}, 0);
    // Everything free, retained pages included, is told on request; a block in use is not.
    const PhysAddr held = pfa.allocate(9);
    ASSERT_NE(held, kNoPage);
    test::clear_unused_pages();
    pfa.tell_unused_pages();
    uint64_t told = 0;
    for (const test::UnusedPages& unused : test::unused_pages()) {
        told += unused.bytes;
    }
    expect_unused_ranges_free(pfa, {held}, kPageSize << 9);
    EXPECT_GE(told, 64 * kMiB) << "most of the 128 MiB";
    EXPECT_CHECK(pfa);
    pfa.free(held, 9);
    EXPECT_CHECK(pfa);
}

TEST(PageFrameGiveBack, SmallFreesBelowTheOrderAreNotReported) {
    test::SimulatedMemory memory({{kGiB, 64 * kMiB}});
    PageFrameAllocator pfa;
    const PhysRange range{kGiB, 64 * kMiB};
    ASSERT_TRUE(pfa.init(&range, 1, CpuPageLists::Off));
    // Fill a 1 MiB block with 4 KiB pages, keep one: no free merges up to kUnusedOrder.
    std::vector<PhysAddr> pages;
    for (int i = 0; i < 256; ++i) {
        pages.push_back(pfa.allocate(0));
    }
    test::clear_unused_pages();
    for (size_t i = 1; i < pages.size(); ++i) {
        pfa.free(pages[i], 0);
    }
    // Whatever was reported holds none of the page still held.
    expect_unused_ranges_free(pfa, {pages[0]}, kPageSize);
    const uint64_t before = test::unused_calls();
    // Ping-pong of a small block: no report.
    for (int i = 0; i < 100; ++i) {
        pfa.free(pfa.allocate(2), 2);
    }
    EXPECT_EQ(test::unused_calls(), before);
    pfa.free(pages[0], 0);
    EXPECT_CHECK(pfa);
}

TEST(PageFrameGiveBack, RandomFreesNeverReportMemoryInUse) {
    test::SimulatedMemory memory({{kGiB, 256 * kMiB}});
    PageFrameAllocator pfa;
    const PhysRange range{kGiB, 256 * kMiB};
    ASSERT_TRUE(pfa.init(&range, 1, CpuPageLists::On));
    const uint64_t seed = seed_from_environment(std::random_device{}());
    std::mt19937_64 random(seed);
    struct Held {
        PhysAddr address;
        uint64_t count;
    };
    std::vector<Held> held;
    for (int i = 0; i < 4000; ++i) {
        test::clear_unused_pages();
        if (held.empty() || random() % 2 == 0) {
            const uint64_t count = 1 + random() % (random() % 4 == 0 ? 2048 : 8);
            const PhysAddr address = pfa.allocate_pages(count);
            if (address != kNoPage) {
                held.push_back({address, count});
            }
        } else {
            const size_t index = random() % held.size();
            pfa.free_pages(held[index].address, held[index].count);
            held[index] = held.back();
            held.pop_back();
        }
        for (const test::UnusedPages& unused : test::unused_pages()) {
            const PhysAddr phys = pfa.phys_of(unused.start);
            for (const Held& h : held) {
                ASSERT_TRUE(phys + unused.bytes <= h.address ||
                            h.address + h.count * kPageSize <= phys)
                    << "pages_unused over pages in use, seed " << seed;
            }
        }
        if (i % 400 == 0) {
            EXPECT_CHECK(pfa);
        }
    }
    for (const Held& h : held) {
        pfa.free_pages(h.address, h.count);
    }
    pfa.drain_cpu(platform::current_cpu());
    EXPECT_CHECK(pfa);
    EXPECT_EQ(pfa.free_pages(), pfa.managed_pages());
}

} // namespace
} // namespace bedrock
