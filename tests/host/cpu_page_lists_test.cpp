// SPDX-License-Identifier: MIT
// Host tests of the page frame allocator's CPU page lists (pages/cpu_page_lists.h): the fast
// paths, their bounds, draining, exact counts and limits with pages on the lists, requests that
// need the pages other CPUs hold on theirs, and check().
// Each host thread is a CPU (hosted/cpu_slots.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "bedrock/hosted_cpu_slot.h"
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

// Whether the calling thread holds the only CPU slot there is (BEDROCK_MAX_CPUS 1, taken by an
// earlier test in this process): no other thread can then be a CPU with page lists.
bool calling_thread_holds_the_only_slot() {
    return platform::kMaxCpus == 1 && platform::hosted_slots::t_slot == 0;
}

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
    // What the lists may hold: the large region's free pages, those listed included.
    EXPECT_EQ(m.pfa.cpu_list_region_free_pages(), m.pfa.region_free_pages(0));
    for (const PhysAddr page : pages) {
        m.pfa.free(page, 0);
    }
    EXPECT_GT(m.pfa.cpu_list_pages(), 0u);
    EXPECT_EQ(m.pfa.cpu_list_region_free_pages(), m.pfa.region_free_pages(0));
    EXPECT_LT(m.pfa.cpu_list_region_free_pages(), m.initial_free);
    EXPECT_EQ(m.pfa.free_pages(), m.initial_free);
    m.expect_checked();
}

// Nor the largest region of the highest zone when that zone holds a sliver of the RAM: here
// 864 KiB above 16 MiB (a 17 MiB machine) and 8 KiB above 4 GiB. With the lists there, they
// held at most the sliver's pages, and nearly every allocation went to the lock.
TEST(CpuPageLists, TheListsServeTheBulkOfTheRamNotAZoneWithASliver) {
    for (const std::vector<PhysRange>& ranges :
         {std::vector<PhysRange>{{kMiB, 15 * kMiB}, {16 * kMiB, 864 * 1024}},
          std::vector<PhysRange>{{kGiB, 3 * kGiB}, {4 * kGiB, 8 * 1024}}}) {
        Machine m(ranges);
        ASSERT_TRUE(m.ok);
        const PhysAddr bulk_end = ranges[0].base + ranges[0].size;
        std::vector<PhysAddr> pages;
        for (int i = 0; i < 400; ++i) {
            const PhysAddr page = m.pfa.allocate(0);
            ASSERT_NE(page, kNoPage);
            EXPECT_LT(page, bulk_end) << "from the bulk of the RAM, through the lists";
            pages.push_back(page);
        }
        for (const PhysAddr page : pages) {
            m.pfa.free(page, 0);
        }
        EXPECT_GT(m.pfa.cpu_list_pages(), 0u) << "the frees went to the calling CPU's list";
        EXPECT_EQ(m.pfa.free_pages(), m.initial_free);
        m.expect_checked();
    }
}

// A run that fails only because a few pages sit on the calling CPU's lists inside the one place
// it fits is served after the lists are drained: here the 8 pages a refill split off the lower
// of two 1 GiB blocks, with every page free (the metadata goes to the range below 4 GiB), and a
// run of both blocks.
TEST(CpuPageLists, ARunKeptApartByListedPagesIsServedAfterTheListsAreDrained) {
    Machine m({{3 * kGiB, 64 * kMiB}, {8 * kGiB, 2 * kGiB + 12 * 1024}});
    ASSERT_TRUE(m.ok);
    const PhysAddr page = m.pfa.allocate(0);
    ASSERT_NE(page, kNoPage);
    m.pfa.free(page, 0);
    ASSERT_NE(m.pfa.cpu_list_pages(), 0u);
    EXPECT_EQ(m.pfa.free_pages(), m.initial_free);
    const uint64_t count = 2 * (kGiB >> kPageShift);
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

// How the second of two racing frees of one block goes: through its own CPU's page list, or
// through the lock (a caller with no CPU slot).
enum class SecondFree : uint8_t { OwnCpuList, Locked };

// `rounds` times: a block allocated, then freed by two threads at once, each then allocating a
// page; checks that one free was reported every round and that no page was handed out twice.
void expect_racing_double_frees_reported(SecondFree second, int rounds) {
    auto machine = std::make_unique<Machine>(std::vector<PhysRange>{{kGiB, 64 * kMiB}});
    ASSERT_TRUE(machine->ok);
    PageFrameAllocator& pfa = machine->pfa;
    int handed_out_twice = 0;
    size_t reports = 0;
    for (int round = 0; round < rounds; ++round) {
        const PhysAddr block = pfa.allocate(0);
        ASSERT_NE(block, kNoPage);
        std::atomic<int> ready{0};
        std::atomic<int> freed{0};
        PhysAddr taken[2] = {kNoPage, kNoPage};
        auto free_and_take = [&](int thread) {
            if (thread == 1 && second == SecondFree::Locked) {
                platform::hosted_slots::t_slot = platform::kNoCpuSlot; // no slot: the lock
            }
            static_cast<void>(platform::current_cpu()); // its CPU slot, before the race
            ready.fetch_add(1);
            while (ready.load() < 2) {
            }
            pfa.free(block, 0);
            freed.fetch_add(1);
            while (freed.load() < 2) {
            }
            taken[thread] = pfa.allocate(0); // the top of its own list, or from the lock
        };
        std::thread first(free_and_take, 0);
        std::thread other(free_and_take, 1);
        first.join();
        other.join();
        handed_out_twice += taken[0] == taken[1] ? 1 : 0;
        reports += test::reports().size();
        for (const ErrorReport& report : test::reports()) {
            EXPECT_EQ(report.kind, ErrorKind::DoubleFree);
        }
        test::clear_reports();
        pfa.free(taken[0], 0);
        if (taken[1] != taken[0]) {
            pfa.free(taken[1], 0);
        }
        for (unsigned cpu = 0; cpu < platform::kMaxCpus; ++cpu) {
            pfa.drain_cpu(cpu);
        }
    }
    EXPECT_EQ(handed_out_twice, 0);
    EXPECT_EQ(reports, static_cast<size_t>(rounds)) << "every round's second free is reported";
    machine->expect_checked();
    EXPECT_EQ(pfa.free_pages(), machine->initial_free);
}

// Two CPUs freeing the same listed block at once (a double free racing with itself): one push
// wins and the other is reported, so the block is on one list and is handed out once. When the
// state check and the push were not one atomic step, both pushed it (both threads then got the
// same page from their lists, with no report) within a few hundred rounds.
TEST(CpuPageLists, ADoubleFreeRacingOnTwoCpusListsTheBlockOnce) {
    expect_racing_double_frees_reported(SecondFree::OwnCpuList, 500);
}

// The same race between a CPU with a slot, whose free claims the block for its list, and a
// caller with none (a thread beyond the CPU slots), whose free goes to the lock: one free wins and
// the other is reported. The locked free cleared the block's state with a plain store after its
// checks, so a push in between listed a block it then gave to the free blocks too: with debug
// assertions off, 23 of 1,000 rounds handed the page out twice.
TEST(CpuPageLists, ADoubleFreeRacingWithALockedFreeIsReportedOnce) {
    expect_racing_double_frees_reported(SecondFree::Locked, 1000);
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

// A free of a listed block, or of a page inside one, is a double free, as it is without lists.
TEST(CpuPageLists, DoubleFreeOfAListedBlockIsReportedAndChangesNothing) {
    Machine m({{kGiB, 64 * kMiB}});
    ASSERT_TRUE(m.ok);
    const PhysAddr block = m.pfa.allocate(1);
    const PhysAddr four = m.pfa.allocate(2);
    m.pfa.free(block, 1);
    m.pfa.free(four, 2);
    const uint64_t listed = m.pfa.cpu_list_pages();
    m.pfa.free(block, 1);
    m.pfa.free_pages(block, 2);
    m.pfa.free(block, 0);
    // Its second page, inside the listed block (whose state only its first page has): free too,
    // not inside an allocated block, as it is without lists.
    m.pfa.free(block + kPageSize, 0);
    m.pfa.free_pages(block + kPageSize, 1);
    // Each page inside a listed block of four.
    for (uint64_t page = 1; page < 4; ++page) {
        m.pfa.free(four + page * kPageSize, 0);
    }
    m.pfa.free_pages(four + 2 * kPageSize, 2);
    ASSERT_EQ(test::reports().size(), 9u);
    for (const ErrorReport& report : test::reports()) {
        EXPECT_EQ(report.kind, ErrorKind::DoubleFree) << report.detail;
    }
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
    EXPECT_EQ(pfa.cpu_list_region_free_pages(), 0u);
    EXPECT_EQ(pfa.free_pages(), free);
    EXPECT_EQ(pfa.free_blocks().blocks[0], 0u);
    pfa.drain_cpu(platform::current_cpu()); // nothing to do
    EXPECT_TRUE(pfa.check().ok);
}

TEST(CpuPageLists, OfflineCpuIsDrainedByAnother) {
    if (calling_thread_holds_the_only_slot()) {
        GTEST_SKIP() << "this thread holds the only CPU slot: no other CPU can have page lists";
    }
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

// Another CPU that stays online (its thread keeps its CPU slot) and runs what it is given, one
// piece of work at a time, while the test's own CPU waits.
class OnlineCpu {
public:
    OnlineCpu() : m_thread([this] { serve(); }) {}
    ~OnlineCpu() {
        run(nullptr);
        m_thread.join();
    }
    OnlineCpu(const OnlineCpu&) = delete;
    OnlineCpu& operator=(const OnlineCpu&) = delete;

    // Runs `work` on this CPU and returns once it has (null: the thread ends).
    void run(std::function<void()> work) {
        std::unique_lock<std::mutex> guard(m_lock);
        m_work = std::move(work);
        m_stop = m_work == nullptr;
        m_pending = true;
        m_changed.notify_all();
        m_changed.wait(guard, [&] { return !m_pending; });
    }
    // Its CPU slot.
    unsigned cpu() {
        unsigned slot = platform::kNoCpuSlot;
        run([&] { slot = platform::current_cpu(); });
        return slot;
    }

private:
    void serve() {
        std::unique_lock<std::mutex> guard(m_lock);
        for (;;) {
            m_changed.wait(guard, [&] { return m_pending; });
            if (m_stop) {
                m_pending = false;
                m_changed.notify_all();
                return;
            }
            m_work();
            m_pending = false;
            m_changed.notify_all();
        }
    }
    std::mutex m_lock;
    std::condition_variable m_changed;
    std::function<void()> m_work;
    bool m_pending = false;
    bool m_stop = false;
    std::thread m_thread;
};

// Allocates `count` blocks of each CPU-list order and frees them on the calling CPU: its lists
// then hold what the refills split off (8 blocks of each order: 120 pages).
void fill_calling_cpu_lists(PageFrameAllocator& pfa, unsigned count) {
    for (unsigned order = 0; order < kCpuListOrders; ++order) {
        std::vector<PhysAddr> blocks;
        for (unsigned i = 0; i < count; ++i) {
            blocks.push_back(pfa.allocate(order));
            ASSERT_NE(blocks.back(), kNoPage);
        }
        for (const PhysAddr block : blocks) {
            pfa.free(block, order);
        }
    }
}

// A 2 MiB block whose only place is broken up by the 8 pages another, online, CPU split off it
// for its list: each kind of request for it (a block, a run, a block below a limit) takes that
// CPU's list back and is served, from the CPU that needs it, with the totals exact throughout.
TEST(CpuPageLists, ARequestTakesBackThePagesAnotherCpuHolds) {
    if (platform::kMaxCpus < 2) {
        GTEST_SKIP() << "one CPU slot: no other CPU has page lists";
    }
    Machine m({{kGiB, 64 * kMiB}});
    ASSERT_TRUE(m.ok);
    OnlineCpu other;
    ASSERT_LT(other.cpu(), platform::kMaxCpus);
    // Everything but one 2 MiB block, taken by this CPU (whose lists then hold nothing).
    std::vector<std::pair<PhysAddr, unsigned>> held;
    for (unsigned order = kMaxOrder + 1; order-- > 0;) {
        for (PhysAddr block; (block = m.pfa.allocate(order)) != kNoPage;) {
            held.emplace_back(block, order);
        }
    }
    ASSERT_EQ(m.pfa.free_pages(), 0u);
    // One block of 2 MiB or more goes back, and all of it but 2 MiB is taken again.
    const auto big =
        std::find_if(held.begin(), held.end(), [](const auto& block) { return block.second >= 9; });
    ASSERT_NE(big, held.end());
    const auto [freed, freed_order] = *big;
    held.erase(big);
    m.pfa.free(freed, freed_order);
    for (uint64_t i = 1; i < uint64_t{1} << (freed_order - 9); ++i) {
        held.emplace_back(m.pfa.allocate(9), 9);
        ASSERT_NE(held.back().first, kNoPage);
    }
    ASSERT_EQ(m.pfa.free_pages(), 512u);
    const PhysAddr only = m.pfa.allocate_pages(1, 2 * kMiB);
    ASSERT_NE(only, kNoPage);
    m.pfa.free_pages(only, 1);
    struct Request {
        std::function<PhysAddr()> allocate;
        uint64_t pages;
    };
    const Request requests[] = {
        {[&] { return m.pfa.allocate(9); }, 512},
        {[&] { return m.pfa.allocate_pages(512); }, 512},
        {[&] { return m.pfa.allocate_below(9, 2 * kGiB); }, 512},
        {[&] { return m.pfa.allocate_pages(300, 2 * kMiB); }, 300},
    };
    for (const Request& request : requests) {
        // The other CPU's page of order 0 splits the one free block: 8 pages go to its list.
        other.run([&] {
            const PhysAddr page = m.pfa.allocate(0);
            EXPECT_NE(page, kNoPage);
            m.pfa.free(page, 0);
        });
        ASSERT_EQ(m.pfa.cpu_list_pages(), 8u);
        ASSERT_EQ(m.pfa.largest_free_order(), 8);
        EXPECT_EQ(m.pfa.free_pages(), 512u);
        m.expect_checked();
        const PhysAddr block = request.allocate();
        ASSERT_EQ(block, only) << "the pages are free, on another CPU's list";
        EXPECT_EQ(m.pfa.cpu_list_pages(), 0u);
        EXPECT_EQ(m.pfa.free_pages(), 512u - request.pages);
        m.expect_checked();
        m.pfa.free_pages(only, request.pages);
        EXPECT_EQ(m.pfa.free_pages(), 512u);
    }
    for (const auto& [block, order] : held) {
        m.pfa.free(block, order);
    }
    EXPECT_EQ(m.pfa.free_pages(), m.initial_free);
    m.expect_checked();
}

// Small blocks: with four other CPUs online (as many as there are CPU slots beside this CPU's,
// if fewer), each holding 120 pages on its lists, one CPU still gets every free page, one at a
// time (a small machine with many CPUs).
TEST(CpuPageLists, EveryFreePageIsReachableFromOneCpu) {
    if (platform::kMaxCpus < 2) {
        GTEST_SKIP() << "one CPU slot: no other CPU has page lists";
    }
    Machine m({{kGiB, 4 * kMiB}});
    ASSERT_TRUE(m.ok);
    ASSERT_LT(platform::current_cpu(), platform::kMaxCpus); // this CPU's slot, before the others
    const unsigned other_count = std::min(4u, platform::kMaxCpus - 1);
    std::vector<std::unique_ptr<OnlineCpu>> others;
    for (unsigned i = 0; i < other_count; ++i) {
        others.push_back(std::make_unique<OnlineCpu>());
        ASSERT_LT(others.back()->cpu(), platform::kMaxCpus);
        others.back()->run([&] { fill_calling_cpu_lists(m.pfa, 8); });
    }
    ASSERT_EQ(m.pfa.cpu_list_pages(), uint64_t{other_count} * 120);
    EXPECT_EQ(m.pfa.free_pages(), m.initial_free);
    m.expect_checked();
    std::vector<PhysAddr> pages;
    for (PhysAddr page; (page = m.pfa.allocate(0)) != kNoPage;) {
        pages.push_back(page);
    }
    EXPECT_EQ(pages.size(), m.initial_free) << "free pages were left on other CPUs' lists";
    EXPECT_EQ(m.pfa.free_pages(), 0u);
    EXPECT_EQ(m.pfa.cpu_list_pages(), 0u);
    m.expect_checked();
    for (const PhysAddr page : pages) {
        m.pfa.free(page, 0);
    }
    EXPECT_EQ(m.pfa.free_pages(), m.initial_free);
    m.expect_checked();
    // Taking another online CPU's lists back by hand works the same way.
    others[0]->run([&] { fill_calling_cpu_lists(m.pfa, 8); });
    const uint64_t listed = m.pfa.cpu_list_pages();
    m.pfa.drain_cpu(others[0]->cpu());
    EXPECT_EQ(m.pfa.cpu_list_pages(), listed - 120);
    EXPECT_EQ(m.pfa.free_pages(), m.initial_free);
    m.expect_checked();
    EXPECT_TRUE(test::reports().empty());
}

// reserve_range() takes back every CPU's lists: pages on an online CPU's list are free.
TEST(CpuPageLists, ReserveRangeTakesPagesOffAnotherCpusList) {
    if (calling_thread_holds_the_only_slot()) {
        GTEST_SKIP() << "this thread holds the only CPU slot: no other CPU can have page lists";
    }
    Machine m({{kGiB, 64 * kMiB}});
    ASSERT_TRUE(m.ok);
    OnlineCpu other;
    PhysAddr page = kNoPage;
    other.run([&] {
        page = m.pfa.allocate(0);
        m.pfa.free(page, 0);
    });
    ASSERT_NE(page, kNoPage);
    ASSERT_GT(m.pfa.cpu_list_pages(), 0u);
    EXPECT_TRUE(m.pfa.reserve_range({page, kPageSize}));
    EXPECT_TRUE(test::reports().empty());
    EXPECT_EQ(m.pfa.reserved_pages(), 1u);
    EXPECT_EQ(m.pfa.free_pages(), m.initial_free - 1);
    m.expect_checked();
}

// Three CPUs run allocate/free pairs of every CPU-list order on their lists (8 blocks each,
// 120 pages per CPU) while a fourth takes every page there is, round after round, and now and
// then takes one of their lists back by hand. When its last request fails it has taken each
// list back: what it could not get is what the others held or pushed after their turn, at most
// two blocks of order 3 each (without taking lists back, their 120 pages each). No block is
// handed out twice, and everything comes back.
TEST(CpuPageListsThreads, ListsAreTakenBackWhileTheirCpusUseThem) {
    Machine m({{kGiB, 8 * kMiB}});
    ASSERT_TRUE(m.ok);
    const uint64_t seed = seed_from_environment(5);
    constexpr unsigned kWorkers = 3;
    constexpr int kRounds = 12;
    std::atomic<unsigned> ready{0};
    std::atomic<bool> done{false};
    std::atomic<uint64_t> damaged{0};
    std::atomic<unsigned> slots[kWorkers];
    const auto stamp = [](PhysAddr block, uint64_t owner) {
        __atomic_store_n(static_cast<uint64_t*>(platform::phys_to_virt(block)), block ^ owner,
                         __ATOMIC_RELAXED);
    };
    const auto intact = [](PhysAddr block, uint64_t owner) {
        return __atomic_load_n(static_cast<uint64_t*>(platform::phys_to_virt(block)),
                               __ATOMIC_RELAXED) == (block ^ owner);
    };
    std::vector<std::thread> workers;
    for (unsigned worker = 0; worker < kWorkers; ++worker) {
        workers.emplace_back([&, worker] {
            slots[worker] = platform::current_cpu();
            fill_calling_cpu_lists(m.pfa, 8);
            ready.fetch_add(1);
            std::mt19937_64 random(seed + worker);
            while (!done.load(std::memory_order_relaxed)) {
                const auto order = static_cast<unsigned>(random() % kCpuListOrders);
                const PhysAddr block = m.pfa.allocate(order);
                if (block != kNoPage) {
                    stamp(block, worker + 1);
                    damaged += intact(block, worker + 1) ? 0 : 1;
                    m.pfa.free(block, order);
                }
            }
        });
    }
    while (ready.load() != kWorkers) {
        std::this_thread::yield();
    }
    std::mt19937_64 random(seed);
    uint64_t shortest = m.initial_free;
    for (int round = 0; round < kRounds; ++round) {
        std::vector<PhysAddr> pages;
        for (PhysAddr page; (page = m.pfa.allocate(0)) != kNoPage;) {
            stamp(page, 0);
            pages.push_back(page);
        }
        shortest = std::min<uint64_t>(shortest, pages.size());
        for (const PhysAddr page : pages) {
            damaged += intact(page, 0) ? 0 : 1;
            m.pfa.free(page, 0);
        }
        m.pfa.drain_cpu(slots[random() % kWorkers]);
    }
    done.store(true);
    for (std::thread& worker : workers) {
        worker.join();
    }
    EXPECT_GE(shortest, m.initial_free - kWorkers * 2 * (uint64_t{1} << (kCpuListOrders - 1)))
        << "free pages were left on other CPUs' lists";
    EXPECT_EQ(damaged.load(), 0u) << "a block was handed out twice";
    EXPECT_TRUE(test::reports().empty());
    EXPECT_EQ(m.pfa.free_pages(), m.initial_free);
    m.expect_checked();
    for (unsigned worker = 0; worker < kWorkers; ++worker) {
        m.pfa.drain_cpu(slots[worker]); // their threads are gone: the slots are offline
    }
    m.pfa.drain_cpu(platform::current_cpu());
    EXPECT_EQ(m.pfa.cpu_list_pages(), 0u);
    EXPECT_EQ(m.pfa.free_pages(), m.initial_free);
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
