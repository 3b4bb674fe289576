// SPDX-License-Identifier: MIT
// Host tests of the page frame allocator's CPU page lists (pages/cpu_page_lists.h): the fast
// paths, their bounds, draining, exact counts and limits with pages on the lists, and check().
// Each host thread is a CPU (tests/support/host_cpu.cpp).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "bedrock/page_frame_allocator.h"
#include "bedrock/platform.h"
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

struct Machine {
    explicit Machine(std::vector<PhysRange> ranges) : memory(ranges) {
        test::clear_reports();
        ok = pfa.init(ranges.data(), ranges.size());
        initial_free = pfa.free_pages();
    }
    void expect_checked() const {
        const PageFrameCheck result = pfa.check();
        EXPECT_TRUE(result.ok) << result.failure << " at 0x" << std::hex << result.address;
    }
    test::SimulatedMemory memory;
    PageFrameAllocator pfa;
    bool ok = false;
    uint64_t initial_free = 0;
};

// The lists serve the largest region of the highest zone, not the highest region: here the
// 32 KiB left above a file loaded near the top of RAM. With the lists there, the allocations
// would take its 8 pages and then every one would go to the lock and the region below.
TEST(CpuPageLists, TheListsServeTheLargestRegionOfTheHighestZone) {
    Machine m({{16 * kMiB, 480 * kMiB}, {508 * kMiB, 32 * 1024}});
    ASSERT_TRUE(m.ok);
    std::vector<PhysAddr> pages;
    for (int i = 0; i < 200; ++i) {
        const PhysAddr page = m.pfa.allocate(0);
        ASSERT_NE(page, kNoPage);
        EXPECT_LT(page, 496 * kMiB) << "from the large region, through the lists";
        pages.push_back(page);
    }
    for (const PhysAddr page : pages) {
        m.pfa.free(page, 0);
    }
    EXPECT_EQ(m.pfa.free_pages(), m.initial_free);
    m.expect_checked();
}

// A run that fails only because a few pages sit on the calling CPU's lists inside the one place
// it fits is served after the lists are drained: here the 8 pages a refill split off the lower
// of two 1 GiB blocks, with every page free (the metadata goes to the range below 4 GiB).
TEST(CpuPageLists, ARunKeptApartByListedPagesIsServedAfterTheListsAreDrained) {
    Machine m({{3 * kGiB, 64 * kMiB}, {8 * kGiB, 2 * kGiB + 12 * 1024}});
    ASSERT_TRUE(m.ok);
    const PhysAddr page = m.pfa.allocate(0);
    ASSERT_NE(page, kNoPage);
    m.pfa.free(page, 0);
    ASSERT_NE(m.pfa.cpu_list_pages(), 0u);
    EXPECT_EQ(m.pfa.free_pages(), m.initial_free);
    const uint64_t count = (kGiB >> kPageShift) + 5;
    const PhysAddr run = m.pfa.allocate_pages(count);
    ASSERT_NE(run, kNoPage) << "every page is free";
    EXPECT_EQ(run, 8 * kGiB);
    m.pfa.free_pages(run, count);
    EXPECT_EQ(m.pfa.free_pages(), m.initial_free);
    m.expect_checked();
}

TEST(CpuPageLists, FreedSmallBlocksStayOnTheListAndComeBackFirst) {
    Machine m({{kGiB, 64 * kMiB}});
    ASSERT_TRUE(m.ok);
    for (unsigned order = 0; order < kCpuListOrders; ++order) {
        const PhysAddr block = m.pfa.allocate(order);
        ASSERT_NE(block, kNoPage);
        // The refill took a batch: the rest waits on the list and counts as free.
        EXPECT_EQ(m.pfa.cpu_list_pages() % (uint64_t{1} << order), 0u);
        m.pfa.free(block, order);
        EXPECT_EQ(m.pfa.allocate(order), block) << "the list is a stack";
        m.pfa.free(block, order);
        EXPECT_EQ(m.pfa.free_pages(), m.initial_free);
        m.expect_checked();
    }
    EXPECT_GT(m.pfa.cpu_list_pages(), 0u);
    m.pfa.drain_cpu(platform::current_cpu());
    EXPECT_EQ(m.pfa.cpu_list_pages(), 0u);
    EXPECT_EQ(m.pfa.free_pages(), m.initial_free);
    EXPECT_EQ(m.pfa.free_blocks().blocks[0], 0u) << "everything merged back";
    m.expect_checked();
    EXPECT_TRUE(test::reports().empty());
}

TEST(CpuPageLists, ListsStayWithinTheirBound) {
    Machine m({{kGiB, 64 * kMiB}});
    ASSERT_TRUE(m.ok);
    std::vector<PhysAddr> blocks;
    for (int i = 0; i < 100; ++i) {
        blocks.push_back(m.pfa.allocate(0));
        ASSERT_NE(blocks.back(), kNoPage);
    }
    for (const PhysAddr block : blocks) {
        m.pfa.free(block, 0);
        EXPECT_LE(m.pfa.cpu_list_pages(), kCpuListBlocks);
    }
    EXPECT_EQ(m.pfa.free_pages(), m.initial_free);
    m.expect_checked();
    m.pfa.drain_cpu(platform::current_cpu());
    m.expect_checked();
}

TEST(CpuPageLists, FreePagesAreExactAndLimitsReachListedPages) {
    // One region below 16 MiB: the CPU-list region is the only one, and allocate_below() must
    // reach the pages on this CPU's lists once the free lists run dry.
    Machine m({{0, 16 * kMiB}});
    ASSERT_TRUE(m.ok);
    const uint64_t pages = m.initial_free;
    std::vector<PhysAddr> blocks;
    for (PhysAddr block; (block = m.pfa.allocate(0)) != kNoPage;) {
        blocks.push_back(block);
    }
    ASSERT_EQ(blocks.size(), pages);
    EXPECT_EQ(m.pfa.free_pages(), 0u);
    for (const PhysAddr block : blocks) {
        m.pfa.free(block, 0);
    }
    EXPECT_GT(m.pfa.cpu_list_pages(), 0u);
    EXPECT_EQ(m.pfa.free_pages(), pages);
    EXPECT_EQ(m.pfa.free_pages_below(kZoneDmaLimit), pages);
    EXPECT_EQ(m.pfa.region_free_pages(0), pages);
    m.expect_checked();
    blocks.clear();
    for (PhysAddr block; (block = m.pfa.allocate_below(0, kZoneDmaLimit)) != kNoPage;) {
        blocks.push_back(block);
    }
    EXPECT_EQ(blocks.size(), pages) << "pages on the list were left out";
    for (const PhysAddr block : blocks) {
        m.pfa.free(block, 0);
    }
    // A failed request of a larger order drains the lists only when the free lists hold too
    // few pages: here they hold enough, so the largest block is whole once drain_cpu() runs.
    m.pfa.drain_cpu(platform::current_cpu());
    EXPECT_EQ(m.pfa.free_pages(), pages);
    EXPECT_NE(m.pfa.allocate(static_cast<unsigned>(m.pfa.largest_free_order())), kNoPage);
    m.expect_checked();
    EXPECT_TRUE(test::reports().empty());
}

TEST(CpuPageLists, DoubleFreeOfAListedBlockIsReportedAndChangesNothing) {
    Machine m({{kGiB, 64 * kMiB}});
    ASSERT_TRUE(m.ok);
    const PhysAddr block = m.pfa.allocate(1);
    m.pfa.free(block, 1);
    const uint64_t listed = m.pfa.cpu_list_pages();
    m.pfa.free(block, 1);
    m.pfa.free_pages(block, 2);
    m.pfa.free(block, 0);
    ASSERT_EQ(test::reports().size(), 3u);
    EXPECT_EQ(test::reports()[0].kind, ErrorKind::DoubleFree);
    EXPECT_EQ(test::reports()[1].kind, ErrorKind::DoubleFree);
    EXPECT_EQ(test::reports()[2].kind, ErrorKind::DoubleFree);
    EXPECT_EQ(m.pfa.cpu_list_pages(), listed);
    EXPECT_EQ(m.pfa.free_pages(), m.initial_free);
    m.expect_checked();
}

TEST(CpuPageLists, RunsAndBlocksAllocatedUnderTheLockAreFreedUnderIt) {
    Machine m({{kGiB, 64 * kMiB}});
    ASSERT_TRUE(m.ok);
    const PhysAddr run = m.pfa.allocate_pages(3);
    const PhysAddr below = m.pfa.allocate_below(2, 2 * kGiB);
    const PhysAddr block = m.pfa.allocate_pages(4); // a whole block: the lists
    ASSERT_NE(run, kNoPage);
    ASSERT_NE(below, kNoPage);
    ASSERT_NE(block, kNoPage);
    m.pfa.free(run, 1); // part of a run
    ASSERT_EQ(test::reports().size(), 1u);
    EXPECT_EQ(test::reports()[0].kind, ErrorKind::FreeWrongOrder);
    m.pfa.free_pages(run, 3);
    m.pfa.free(below, 2);
    m.pfa.free_pages(block, 4);
    EXPECT_EQ(test::reports().size(), 1u);
    EXPECT_EQ(m.pfa.free_pages(), m.initial_free);
    m.expect_checked();
}

TEST(CpuPageLists, WithoutListsEveryCallTakesTheLock) {
    test::SimulatedMemory memory({{kGiB, 64 * kMiB}});
    const PhysRange range{kGiB, 64 * kMiB};
    PageFrameAllocator pfa;
    ASSERT_TRUE(pfa.init(&range, 1, CpuPageLists::Off));
    const uint64_t free = pfa.free_pages();
    const PhysAddr block = pfa.allocate(0);
    pfa.free(block, 0);
    EXPECT_EQ(pfa.cpu_list_pages(), 0u);
    EXPECT_EQ(pfa.free_pages(), free);
    EXPECT_EQ(pfa.free_blocks().blocks[0], 0u);
    pfa.drain_cpu(platform::current_cpu()); // nothing to do
    EXPECT_TRUE(pfa.check().ok);
}

TEST(CpuPageLists, OfflineCpuIsDrainedByAnother) {
    Machine m({{kGiB, 64 * kMiB}});
    ASSERT_TRUE(m.ok);
    unsigned other = platform::kNoCpuSlot;
    std::thread cpu([&] {
        other = platform::current_cpu();
        std::vector<PhysAddr> blocks;
        for (int i = 0; i < 20; ++i) {
            blocks.push_back(m.pfa.allocate(static_cast<unsigned>(i % 4)));
        }
        for (size_t i = 0; i < blocks.size(); ++i) {
            m.pfa.free(blocks[i], static_cast<unsigned>(i % 4));
        }
    });
    cpu.join(); // the thread's CPU slot is offline now, its lists still full
    ASSERT_LT(other, platform::kMaxCpus);
    EXPECT_GT(m.pfa.cpu_list_pages(), 0u);
    EXPECT_EQ(m.pfa.free_pages(), m.initial_free);
    m.expect_checked();
    m.pfa.drain_cpu(other);
    m.pfa.drain_cpu(platform::current_cpu());
    EXPECT_EQ(m.pfa.cpu_list_pages(), 0u);
    EXPECT_EQ(m.pfa.free_blocks().blocks[0], 0u);
    m.expect_checked();
}

// Eight CPUs allocate and free small and larger blocks, and hand blocks to each other (a block
// freed on another CPU than its own); afterwards every CPU drains its lists and everything is
// back.
TEST(CpuPageListsThreads, ManyCpusHandBlocksAround) {
    Machine m({{kGiB, 64 * kMiB}, {5 * kGiB, 32 * kMiB}});
    ASSERT_TRUE(m.ok);
    const uint64_t seed = seed_from_environment(11);
    constexpr unsigned kThreads = 8;
    std::mutex shared_lock;
    std::vector<std::pair<PhysAddr, unsigned>> shared; // handed over between CPUs
    std::atomic<uint64_t> damaged{0};
    std::vector<std::thread> threads;
    for (unsigned thread = 0; thread < kThreads; ++thread) {
        threads.emplace_back([&, thread] {
            std::mt19937_64 random(seed + thread);
            std::vector<std::pair<PhysAddr, unsigned>> held;
            const auto stamp = [&](PhysAddr block, unsigned order) {
                *static_cast<volatile uint64_t*>(platform::phys_to_virt(block)) = block ^ order;
            };
            const auto release = [&](PhysAddr block, unsigned order) {
                damaged += *static_cast<volatile uint64_t*>(platform::phys_to_virt(block)) !=
                                   (block ^ order)
                               ? 1
                               : 0;
                if (order == 2 && random() % 2 == 0) {
                    m.pfa.free_pages(block, 4);
                } else {
                    m.pfa.free(block, order);
                }
            };
            for (int step = 0; step < 20000; ++step) {
                const uint64_t choice = random() % 8;
                if (choice < 4 || held.empty()) {
                    const auto order = static_cast<unsigned>(
                        random() % 100 < 90 ? random() % 4 : 4 + random() % 3);
                    const PhysAddr block = m.pfa.allocate(order);
                    if (block != kNoPage) {
                        stamp(block, order);
                        held.emplace_back(block, order);
                    }
                } else if (choice < 7) {
                    const size_t index = random() % held.size();
                    release(held[index].first, held[index].second);
                    held[index] = held.back();
                    held.pop_back();
                } else {
                    std::lock_guard<std::mutex> guard(shared_lock);
                    if (!shared.empty() && random() % 2 == 0) {
                        held.push_back(shared.back());
                        shared.pop_back();
                    } else {
                        shared.push_back(held.back());
                        held.pop_back();
                    }
                }
            }
            for (const auto& [block, order] : held) {
                release(block, order);
            }
            {
                std::lock_guard<std::mutex> guard(shared_lock);
                for (const auto& [block, order] : shared) {
                    release(block, order);
                }
                shared.clear();
            }
            m.pfa.drain_cpu(platform::current_cpu());
        });
    }
    for (std::thread& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(damaged.load(), 0u);
    EXPECT_TRUE(test::reports().empty());
    EXPECT_EQ(m.pfa.cpu_list_pages(), 0u);
    EXPECT_EQ(m.pfa.free_pages(), m.initial_free);
    m.expect_checked();
}

} // namespace
} // namespace bedrock
