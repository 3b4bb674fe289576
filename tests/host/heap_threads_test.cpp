// SPDX-License-Identifier: MIT
// The heap used by many CPUs at once (each thread a CPU on the host), the way a hostile user
// would: blocks of every kind (small, medium up to 1 MiB, large runs, aligned) allocated on one
// thread and freed or reallocated on another, the heap's maintenance calls (drain, trim, tells,
// check level changes) made while others allocate, heaps created and destroyed over one page
// frame allocator while its pages are taken and given directly, memory exhausted by every
// thread at once, misuse from one thread while the others run, frees into the wrong heap
// racing the right heap's destruction, and double frees racing their arena's give-back. After each,
// nothing is lost (the statistics and the page frame allocator's free pages are exact) and nothing
// is reported but the misuse. The suites' names hold "Thread", so ./test.sh host-tsan runs them
// under ThreadSanitizer. BEDROCK_STRESS_MS stretches each run (default: a second or two).
#include <gtest/gtest.h>

#include <stdint.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <tuple>
#include <vector>

#include "bedrock/heap.h"
#include "bedrock/heap_checks.h"
#include "bedrock/page_frame_allocator.h"
#include "bedrock/platform.h"
#include "heap/heap_entry.h"
#include "heap_test_support.h"
#include "report/call_trace.h"

namespace bedrock {
namespace {

using Clock = std::chrono::steady_clock;

// How long each stress runs: BEDROCK_STRESS_MS, else `fallback` milliseconds.
Clock::duration stress_time(long fallback) {
    const char* text = getenv("BEDROCK_STRESS_MS");
    return std::chrono::milliseconds(text != nullptr ? strtol(text, nullptr, 0) : fallback);
}

// The seed of every random choice here: BEDROCK_TEST_SEED, else 1; printed once.
uint64_t stress_seed() {
    static const uint64_t seed = [] {
        const uint64_t value = test::seed_from_environment(1);
        std::printf("seed %llu\n", static_cast<unsigned long long>(value));
        return value;
    }();
    return seed;
}

// Reports raised through a heap's error hook, from any thread.
class SharedReports {
public:
    static void record(void* context, const ErrorReport& report) {
        auto* self = static_cast<SharedReports*>(context);
        std::lock_guard<std::mutex> guard(self->m_mutex);
        self->m_reports.push_back(report);
    }
    std::vector<ErrorReport> take() {
        std::lock_guard<std::mutex> guard(m_mutex);
        return std::exchange(m_reports, {});
    }

private:
    std::mutex m_mutex;
    std::vector<ErrorReport> m_reports;
};

void expect_no_reports(SharedReports& reports) {
    for (const ErrorReport& report : reports.take()) {
        ADD_FAILURE() << to_string(report.kind) << " at " << report.address << ": "
                      << report.detail;
    }
}

// Once every heap over `frames` is destroyed: every CPU's page lists drained, `free_at_start`
// pages free again, and the page frame allocator's invariants hold.
void expect_every_page_back(test::Frames& frames, uint64_t free_at_start) {
    PageFrameAllocator& allocator = frames.allocator();
    for (unsigned cpu = 0; cpu < platform::kMaxCpus; ++cpu) {
        allocator.drain_cpu(cpu);
    }
    EXPECT_EQ(frames.free_pages(), free_at_start);
    const PageFrameCheck check = allocator.check();
    EXPECT_TRUE(check.ok) << check.failure << " at " << check.address;
}

// A block some thread allocated, with what it asked for and the byte it wrote at both ends.
struct Block {
    unsigned char* data;
    size_t size;
    unsigned char mark;
};

// One of every kind of block, at random: small, medium (up to 1 MiB), large (a page run over a
// page frame allocator), and aligned (16 B to 2 MiB).
struct BlockRequest {
    size_t size;
    size_t alignment;
};
BlockRequest random_request(std::mt19937_64& random, bool large_too) {
    switch (random() % 16) {
    case 0:
        return {2049 + random() % ((1 << 20) - 2048), 16};
    case 1:
    case 2:
        return {2049 + random() % 30000, 16};
    case 3:
        return large_too ? BlockRequest{(1 << 20) + 1 + random() % (3 << 20), 16}
                         : BlockRequest{random() % 100000, 16};
    case 4:
        return {random() % 5000, size_t{16} << (random() % (large_too ? 18 : 13))};
    default:
        return {random() % 2049, 16};
    }
}

bool write_ends(Block& block, unsigned char mark) {
    block.mark = mark;
    if (block.data == nullptr) {
        return false;
    }
    if (block.size != 0) {
        block.data[0] = mark;
        block.data[block.size - 1] = mark;
    }
    return true;
}
bool ends_intact(const Block& block) {
    return block.size == 0 ||
           (block.data[0] == block.mark && block.data[block.size - 1] == block.mark);
}

void drain_every_cpu(Heap& heap) {
    for (unsigned cpu = 0; cpu < platform::kMaxCpus; ++cpu) {
        heap_drain_cpu(heap, cpu);
    }
}

// Mailboxes: blocks handed from thread to thread.
class Mailboxes {
public:
    explicit Mailboxes(unsigned threads) : m_boxes(threads) {}
    // Posts `block` to thread `to`, unless `to` has kBacklog blocks waiting already (it is
    // not running): the caller keeps the block then.
    [[nodiscard]] bool post(unsigned to, const Block& block) {
        std::lock_guard<std::mutex> guard(m_mutex);
        if (m_boxes[to].size() >= kBacklog) {
            return false;
        }
        m_boxes[to].push_back(block);
        return true;
    }
    void repost(unsigned to, const Block& block) {
        std::lock_guard<std::mutex> guard(m_mutex);
        m_boxes[to].push_back(block);
    }
    std::vector<Block> take(unsigned self) {
        std::lock_guard<std::mutex> guard(m_mutex);
        return std::exchange(m_boxes[self], {});
    }
    std::vector<Block> take_all() {
        std::vector<Block> all;
        for (unsigned t = 0; t < m_boxes.size(); ++t) {
            for (const Block& block : take(t)) {
                all.push_back(block);
            }
        }
        return all;
    }

private:
    static constexpr size_t kBacklog = 16;
    std::mutex m_mutex;
    std::vector<std::vector<Block>> m_boxes;
};

// Producers allocate blocks of every kind and post them to other threads, which check them,
// reallocate some (a block another CPU allocated, grown or shrunk), keep some and free the
// rest. Between phases every thread waits while the heap is checked and its statistics are
// compared with the blocks live; at the end everything is freed and every page goes back.
class ProducerConsumerThreadTest : public ::testing::TestWithParam<bool> {};

TEST_P(ProducerConsumerThreadTest, EveryKindOfBlockCrossesThreadsAndTheHeapStaysExact) {
    const bool over_frames = GetParam();
    test::Frames frames(512 << 20);
    test::Region region(256 << 20);
    const uint64_t free_at_start = frames.free_pages();
    Heap* heap = over_frames ? heap_create(frames.allocator())
                             : heap_create_in_region(region.data(), region.size());
    ASSERT_NE(heap, nullptr);
    const uint64_t pages_at_start = heap_statistics(*heap).pages_held;
    SharedReports reports;
    heap_set_error_hook(*heap, &SharedReports::record, &reports);
    constexpr unsigned kThreads = 4;
    constexpr int kPhases = 6;
    const Clock::duration phase_time = stress_time(1500) / kPhases;
    Mailboxes mailboxes(kThreads);
    std::vector<std::vector<Block>> kept(kThreads);
    std::atomic<int> failures{0};
    std::atomic<int> damaged{0};
    std::barrier phase_end(kThreads + 1);
    std::barrier phase_start(kThreads + 1);
    auto work = [&](unsigned self) {
        std::mt19937_64 random(stress_seed() * 131 + self);
        for (int phase = 0; phase < kPhases; ++phase) {
            const Clock::time_point end = Clock::now() + phase_time;
            while (Clock::now() < end) {
                const BlockRequest request = random_request(random, over_frames);
                Block block{static_cast<unsigned char*>(
                                heap_allocate(*heap, request.size, request.alignment)),
                            request.size, 0};
                if (!write_ends(block, static_cast<unsigned char>(random()))) {
                    failures.fetch_add(1);
                    continue;
                }
                if (reinterpret_cast<uintptr_t>(block.data) % request.alignment != 0) {
                    failures.fetch_add(1);
                }
                std::vector<Block> mine_now = mailboxes.take(self);
                if (!mailboxes.post((self + 1 + static_cast<unsigned>(random() % (kThreads - 1))) %
                                        kThreads,
                                    block)) {
                    mine_now.push_back(block);
                }
                for (Block& mine : mine_now) {
                    damaged.fetch_add(ends_intact(mine) ? 0 : 1);
                    switch (random() % 8) {
                    case 0: { // reallocate another CPU's block
                        const size_t size = random_request(random, over_frames).size;
                        const unsigned char first = mine.size != 0 ? mine.data[0] : mine.mark;
                        auto* moved =
                            static_cast<unsigned char*>(heap_reallocate(*heap, mine.data, size));
                        if (moved == nullptr) {
                            failures.fetch_add(size != 0 ? 1 : 0);
                            heap_free(*heap, mine.data);
                            break;
                        }
                        if (size != 0 && mine.size != 0 && moved[0] != first) {
                            damaged.fetch_add(1);
                        }
                        mine.data = moved;
                        mine.size = size;
                        write_ends(mine, static_cast<unsigned char>(random()));
                        kept[self].push_back(mine);
                        break;
                    }
                    case 1:
                        kept[self].push_back(mine);
                        break;
                    default:
                        heap_free(*heap, mine.data);
                    }
                }
                if (kept[self].size() > 64) { // the oldest kept block goes
                    heap_free(*heap, kept[self].front().data);
                    kept[self].erase(kept[self].begin());
                }
            }
            phase_end.arrive_and_wait();
            phase_start.arrive_and_wait();
        }
    };
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < kThreads; ++t) {
        threads.emplace_back(work, t);
    }
    for (int phase = 0; phase < kPhases; ++phase) {
        phase_end.arrive_and_wait();
        // Every thread waits: the heap is checked and its figures match the blocks live.
        EXPECT_TRUE(heap_check(*heap)) << "phase " << phase;
        const std::vector<Block> posted = mailboxes.take_all();
        std::vector<Block> live = posted;
        for (const auto& blocks : kept) {
            live.insert(live.end(), blocks.begin(), blocks.end());
        }
        uint64_t bytes = 0;
        for (const Block& block : live) {
            bytes += heap_usable_size(*heap, block.data);
        }
        const HeapStatistics s = heap_statistics(*heap);
        EXPECT_EQ(s.blocks_in_use, live.size()) << "phase " << phase;
        EXPECT_EQ(s.bytes_in_use, bytes) << "phase " << phase;
        for (const Block& block : posted) { // their next owner: thread 0
            mailboxes.repost(0, block);
        }
        phase_start.arrive_and_wait();
    }
    for (std::thread& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(damaged.load(), 0);
    for (const Block& block : mailboxes.take_all()) {
        heap_free(*heap, block.data);
    }
    for (const auto& blocks : kept) {
        for (const Block& block : blocks) {
            heap_free(*heap, block.data);
        }
    }
    drain_every_cpu(*heap);
    heap_trim(*heap);
    const HeapStatistics s = heap_statistics(*heap);
    EXPECT_EQ(s.blocks_in_use, 0u);
    EXPECT_EQ(s.bytes_in_use, 0u);
    EXPECT_EQ(s.medium_blocks, 0u);
    EXPECT_EQ(s.large_blocks, 0u);
    if (over_frames) {
        EXPECT_EQ(s.pages_held, pages_at_start);
    }
    EXPECT_TRUE(heap_check(*heap));
    expect_no_reports(reports);
    EXPECT_TRUE(heap_destroy(*heap));
    EXPECT_EQ(frames.free_pages(), free_at_start);
    EXPECT_TRUE(frames.allocator().check().ok);
}

INSTANTIATE_TEST_SUITE_P(Heaps, ProducerConsumerThreadTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                             return info.param ? std::string("Frames") : std::string("Region");
                         });

// A worker that churns a heap: keeps `slots` blocks of every kind live, replaces one at random
// per step, and hands a freed slot's block to another thread to free (or reallocate, then free)
// now and then; checks each block's ends before it goes. Counts allocations that failed and blocks
// found damaged.
struct Churn {
    Heap& heap;
    Mailboxes& mailboxes;
    unsigned threads;
    bool large_too;
    std::atomic<int>& failures;
    std::atomic<int>& damaged;

    void free_checked(const Block& block) {
        damaged.fetch_add(ends_intact(block) ? 0 : 1);
        heap_free(heap, block.data);
    }
    // Reallocates another CPU's block (moving it, or checked, or not: whatever the level is
    // now), checks that its first byte came along, then frees it.
    void reallocate_and_free(Block block, std::mt19937_64& random) {
        damaged.fetch_add(ends_intact(block) ? 0 : 1);
        const size_t size = 1 + random_request(random, large_too).size;
        auto* moved = static_cast<unsigned char*>(heap_reallocate(heap, block.data, size));
        if (moved == nullptr) {
            failures.fetch_add(1);
            heap_free(heap, block.data);
            return;
        }
        damaged.fetch_add(block.size == 0 || moved[0] == block.mark ? 0 : 1);
        heap_free(heap, moved);
    }
    // Steps until `stop` is set; everything it holds is freed before it returns.
    void run(unsigned self, const std::atomic<bool>& stop, size_t slots = 32) {
        std::mt19937_64 random(stress_seed() * 977 + self);
        std::vector<Block> live(slots, Block{nullptr, 0, 0});
        while (!stop.load(std::memory_order_relaxed)) {
            Block& slot = live[random() % live.size()];
            if (slot.data != nullptr) {
                const unsigned to =
                    (self + 1 + static_cast<unsigned>(random() % (threads - 1))) % threads;
                if (random() % 2 != 0 || !mailboxes.post(to, slot)) {
                    free_checked(slot);
                }
            }
            const BlockRequest request = random_request(random, large_too);
            slot = Block{
                static_cast<unsigned char*>(heap_allocate(heap, request.size, request.alignment)),
                request.size, 0};
            if (!write_ends(slot, static_cast<unsigned char>(random()))) {
                failures.fetch_add(1);
            }
            for (const Block& block : mailboxes.take(self)) {
                if (random() % 4 == 0) {
                    reallocate_and_free(block, random);
                } else {
                    free_checked(block);
                }
            }
        }
        for (const Block& block : live) {
            if (block.data != nullptr) {
                free_checked(block);
            }
        }
    }
};

// One thread drains its own CPU, trims, tells the unused pages, changes the unused interval and
// the check level (off <-> report), the quarantine's limit, prepares its CPU, reads the
// statistics and the report and checks the heap, while the others allocate and free blocks of
// every kind, each other's included: blocks allocated checked are freed after the level went
// off and the other way round, on other CPUs. Nothing is reported, nothing is damaged, and at
// the end every block and page is back.
class MaintenanceThreadTest : public ::testing::TestWithParam<bool> {};

TEST_P(MaintenanceThreadTest, MaintenanceCallsRaceAllocationsAndLoseNothing) {
    const bool over_frames = GetParam();
    test::Frames frames(512 << 20);
    test::Region region(128 << 20);
    const uint64_t free_at_start = frames.free_pages();
    Heap* heap = over_frames ? heap_create(frames.allocator())
                             : heap_create_in_region(region.data(), region.size());
    ASSERT_NE(heap, nullptr);
    if (over_frames) { // guarded blocks too: every 16th checked allocation while Report
        ASSERT_TRUE(heap_enable_guard_pages(*heap, GuardPageOptions{28, 16}));
    }
    const uint64_t pages_at_start = heap_statistics(*heap).pages_held;
    SharedReports reports;
    heap_set_error_hook(*heap, &SharedReports::record, &reports);
    constexpr unsigned kThreads = 3;
    Mailboxes mailboxes(kThreads);
    std::atomic<int> failures{0};
    std::atomic<int> damaged{0};
    std::atomic<bool> stop{false};
    std::atomic<int> failed_checks{0};
    Churn churn{*heap, mailboxes, kThreads, over_frames, failures, damaged};
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] { churn.run(t, stop); });
    }
    std::thread maintainer([&] {
        std::mt19937_64 random(stress_seed());
        const Clock::time_point end = Clock::now() + stress_time(2000);
        std::vector<char> text;
        while (Clock::now() < end) {
            switch (random() % 10) {
            case 0:
                heap_drain_cpu(*heap, platform::current_cpu());
                break;
            case 1:
                heap_trim(*heap);
                break;
            case 2:
                EXPECT_EQ(heap_tell_unused(*heap), over_frames);
                break;
            case 3: {
                const size_t intervals[] = {0, 4096, 256 << 10, 16 << 20};
                EXPECT_EQ(heap_set_unused_interval(*heap, intervals[random() % 4]), over_frames);
                break;
            }
            case 4:
                EXPECT_TRUE(heap_set_check_level(*heap, heap_check_level(*heap) == CheckLevel::Off
                                                            ? CheckLevel::Report
                                                            : CheckLevel::Off));
                break;
            case 5:
                heap_set_quarantine_limit(*heap, random() % 2 == 0 ? 0 : size_t{1} << 20);
                break;
            case 6:
                static_cast<void>(heap_prepare_cpu(*heap));
                break;
            case 7:
                static_cast<void>(heap_statistics(*heap));
                heap_report(
                    *heap, [](void* context, const char*) { ++*static_cast<int*>(context); },
                    &*std::make_unique<int>(0));
                break;
            case 8:
                failed_checks.fetch_add(heap_check(*heap) ? 0 : 1);
                break;
            default:
                heap_flush_quarantine(*heap);
            }
            std::this_thread::yield();
        }
        stop.store(true);
    });
    maintainer.join();
    for (std::thread& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(damaged.load(), 0);
    EXPECT_EQ(failed_checks.load(), 0);
    for (const Block& block : mailboxes.take_all()) {
        heap_free(*heap, block.data);
    }
    ASSERT_TRUE(heap_set_check_level(*heap, CheckLevel::Off));
    heap_flush_quarantine(*heap);
    drain_every_cpu(*heap);
    heap_trim(*heap);
    const HeapStatistics s = heap_statistics(*heap);
    EXPECT_EQ(s.blocks_in_use, 0u);
    EXPECT_EQ(s.bytes_in_use, 0u);
    EXPECT_EQ(s.quarantined_blocks, 0u);
    if (over_frames) {
        EXPECT_EQ(s.pages_held, pages_at_start);
    }
    EXPECT_TRUE(heap_check(*heap));
    expect_no_reports(reports);
    EXPECT_TRUE(heap_destroy(*heap));
    EXPECT_EQ(frames.free_pages(), free_at_start);
}

INSTANTIATE_TEST_SUITE_P(Heaps, MaintenanceThreadTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                             return info.param ? std::string("Frames") : std::string("Region");
                         });

// Checked mode's quarantine limit changed by one thread while others free checked blocks into
// the quarantine (and past it): each free reads the limit it evicts down to under the
// quarantine's lock (ThreadSanitizer finds a read outside it), and at the end the quarantine
// holds no more than its last limit.
TEST(QuarantineThreadTest, TheLimitChangesWhileOtherThreadsFreeCheckedBlocks) {
    test::Frames frames(256 << 20);
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    ASSERT_TRUE(heap_set_check_level(*heap, CheckLevel::Report));
    SharedReports reports;
    heap_set_error_hook(*heap, &SharedReports::record, &reports);
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < 2; ++t) {
        threads.emplace_back([&, t] {
            std::mt19937_64 random(stress_seed() * 3 + t);
            while (!stop.load()) {
                void* block = heap_allocate(*heap, random() % 20000);
                EXPECT_NE(block, nullptr);
                heap_free(*heap, block);
            }
        });
    }
    std::mt19937_64 random(stress_seed());
    constexpr size_t kLimits[] = {0, 4096, 64 << 10, 1 << 20};
    const Clock::time_point end = Clock::now() + stress_time(1000);
    while (Clock::now() < end) {
        heap_set_quarantine_limit(*heap, kLimits[random() % 4]);
    }
    heap_set_quarantine_limit(*heap, 64 << 10);
    stop.store(true);
    for (std::thread& thread : threads) {
        thread.join();
    }
    // At most the limit, plus one block bigger than the limit waiting apart.
    EXPECT_LE(heap_statistics(*heap).quarantined_bytes, (64u << 10) + (20000u + 4096u));
    heap_flush_quarantine(*heap);
    EXPECT_EQ(heap_statistics(*heap).quarantined_blocks, 0u);
    EXPECT_TRUE(heap_check(*heap));
    expect_no_reports(reports);
    EXPECT_TRUE(heap_destroy(*heap));
}

// heap_check() and heap_statistics() on one thread, which allocates and frees blocks of every
// small class in turn (a full magazine gives its blocks back to their slabs, emptying them, while
// its slab hints name them), while the others trim (each trim gives empty slabs back to the
// arenas, and the thread's cache storage with them, whose memory the next medium blocks take and
// fill): every check holds and every figure stays within what the threads hold. A check that read
// a slab leaving its class before the count of slabs given back moved, or another CPU's cache
// storage after it was given back, reported damage or read garbage figures.
TEST(ObserverThreadTest, ChecksAndStatisticsRaceTrimsThatGiveSlabsAndCachesBack) {
    test::Frames frames(64 << 20);
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    SharedReports reports;
    heap_set_error_hook(*heap, &SharedReports::record, &reports);
    constexpr unsigned kTrimmers = 2;
    constexpr size_t kBlocks = 64;
    constexpr size_t kMedium = 16 << 10;
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < kTrimmers; ++t) {
        threads.emplace_back([&] {
            while (!stop.load()) {
                heap_free(*heap, heap_allocate(*heap, 32)); // a cache for the trim to give back
                heap_trim(*heap);
                void* medium[4];
                for (void*& block : medium) {
                    block = heap_allocate(*heap, kMedium);
                    std::memset(block, 0xff, kMedium);
                }
                for (void* block : medium) {
                    heap_free(*heap, block);
                }
            }
        });
    }
    const Clock::time_point end = Clock::now() + stress_time(2000);
    unsigned checks = 0;
    unsigned failed = 0;
    uint64_t most_blocks = 0;
    void* blocks[kBlocks];
    while (Clock::now() < end) {
        const size_t size = 16 + (checks * 97) % 2032;
        for (void*& block : blocks) {
            block = heap_allocate(*heap, size);
        }
        for (void* block : blocks) {
            heap_free(*heap, block);
        }
        failed += heap_check(*heap) ? 0 : 1;
        ++checks;
        most_blocks = std::max(most_blocks, heap_statistics(*heap).blocks_in_use);
    }
    stop.store(true);
    for (std::thread& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(failed, 0u) << "of " << checks << " checks";
    EXPECT_LE(most_blocks, kBlocks + kTrimmers * 8);
    EXPECT_TRUE(heap_check(*heap));
    expect_no_reports(reports);
    EXPECT_TRUE(heap_destroy(*heap));
}

// While one thread fills its cache and trims (each trim flushes the cache back to the classes),
// another holds one live block and reads the statistics, and asks heap_destroy() now and then:
// no read says no block is live, and every destroy is refused. A flush that lowered the class's
// count before the magazine's had a read between the two subtract the flushed blocks twice
// (1 to 5 reads in about 10,000 said 0 here, in each of three runs), and heap_destroy() could
// succeed with the live block, giving its slab back.
TEST(ObserverThreadTest, ALiveBlockIsNeverCountedFreeWhileAnotherCpuFlushes) {
    test::Frames frames(64 << 20);
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    SharedReports reports;
    heap_set_error_hook(*heap, &SharedReports::record, &reports);
    void* live = heap_allocate(*heap, 64);
    ASSERT_NE(live, nullptr);
    std::atomic<bool> stop{false};
    std::thread trimmer([&] {
        while (!stop.load()) {
            void* blocks[16];
            for (void*& block : blocks) {
                block = heap_allocate(*heap, 64);
            }
            for (void* block : blocks) {
                heap_free(*heap, block);
            }
            heap_trim(*heap);
        }
    });
    const Clock::time_point end = Clock::now() + stress_time(1500);
    uint64_t reads = 0;
    uint64_t none_live = 0;
    uint64_t destroyed = 0;
    while (Clock::now() < end && destroyed == 0) {
        none_live += heap_statistics(*heap).blocks_in_use == 0 ? 1 : 0;
        if (++reads % 64 == 0) {
            destroyed += heap_destroy(*heap) ? 1 : 0;
        }
    }
    stop.store(true);
    trimmer.join();
    EXPECT_EQ(none_live, 0u) << "of " << reads << " reads";
    ASSERT_EQ(destroyed, 0u) << "heap_destroy() succeeded with a live block";
    for (const auto& report : reports.take()) {
        EXPECT_EQ(report.kind, ErrorKind::HeapInUse) << report.detail;
    }
    heap_free(*heap, live);
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
}

// Over one page frame allocator: two threads churn a long-lived heap, two others create heaps,
// use them (another thread frees half their blocks) and destroy them (some with nothing ever
// allocated), and make region heaps in blocks of the long-lived heap, refused destruction while
// blocks are live and destroyed after; two take and give pages
// directly (blocks of every order, runs of odd counts and alignments), and the main thread
// reserves ranges it has just seen free. Every heap goes away whole, no page is lost, and
// the allocator's invariants hold.
TEST(HeapLifecycleThreadTest, HeapsComeAndGoOverOneAllocatorWhileOthersUseIt) {
    test::Frames frames(256 << 20);
    const uint64_t free_at_start = frames.free_pages();
    PageFrameAllocator& allocator = frames.allocator();
    Heap* lasting = heap_create(allocator);
    ASSERT_NE(lasting, nullptr);
    SharedReports reports;
    heap_set_error_hook(*lasting, &SharedReports::record, &reports);
    test::clear_reports();
    constexpr unsigned kChurners = 2;
    Mailboxes mailboxes(kChurners);
    std::atomic<int> failures{0};
    std::atomic<int> damaged{0};
    std::atomic<bool> stop{false};
    std::atomic<int> refused{0};
    SharedReports in_use_reports;
    std::atomic<size_t> inner_heaps{0};
    Churn churn{*lasting, mailboxes, kChurners, true, failures, damaged};
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < kChurners; ++t) {
        threads.emplace_back([&, t] { churn.run(t, stop); });
    }
    for (unsigned t = 0; t < 2; ++t) {
        threads.emplace_back([&, t] {
            std::mt19937_64 random(stress_seed() * 7 + t);
            while (!stop.load()) {
                Heap* heap = heap_create(allocator);
                if (heap == nullptr) {
                    failures.fetch_add(1);
                    continue;
                }
                heap_set_error_hook(*heap, &SharedReports::record, &reports);
                std::vector<void*> blocks;
                for (unsigned i = random() % 3 == 0 ? 0 : random() % 64; i != 0; --i) {
                    const BlockRequest request = random_request(random, true);
                    blocks.push_back(heap_allocate(*heap, request.size, request.alignment));
                    failures.fetch_add(blocks.back() == nullptr ? 1 : 0);
                }
                // Half of them freed by a thread of its own: its CPU caches them, and
                // heap_destroy() drains that CPU (whose slot a later thread may hold by then).
                std::thread([&] {
                    for (size_t i = 0; i < blocks.size(); i += 2) {
                        heap_free(*heap, blocks[i]);
                    }
                }).join();
                for (size_t i = 1; i < blocks.size(); i += 2) {
                    heap_free(*heap, blocks[i]);
                }
                refused.fetch_add(heap_destroy(*heap) ? 0 : 1);
                // A region heap in a block of the heap the churners use, made, used and
                // destroyed while they allocate and free around it.
                const size_t bytes = 64 << 10 << random() % 4;
                void* block = heap_allocate(*lasting, bytes);
                Heap* inner = block != nullptr ? heap_create_in_region(block, bytes) : nullptr;
                if (inner == nullptr) {
                    failures.fetch_add(1);
                    heap_free(*lasting, block);
                    continue;
                }
                heap_set_error_hook(*inner, &SharedReports::record, &in_use_reports);
                blocks.clear();
                for (unsigned i = 1 + random() % 200; i != 0; --i) {
                    blocks.push_back(heap_allocate(*inner, random() % 3000));
                }
                inner_heaps.fetch_add(1);
                refused.fetch_add(heap_destroy(*inner) ? 1 : 0); // blocks are live: heap-in-use
                for (void* inner_block : blocks) {
                    heap_free(*inner, inner_block);
                }
                refused.fetch_add(heap_destroy(*inner) ? 0 : 1);
                heap_free(*lasting, block);
            }
        });
    }
    for (unsigned t = 0; t < 2; ++t) {
        threads.emplace_back([&, t] {
            std::mt19937_64 random(stress_seed() * 11 + t);
            struct Taken {
                PhysAddr address;
                size_t count;
            };
            std::vector<Taken> taken;
            while (!stop.load()) {
                if (taken.size() < 64) {
                    // A buddy block of some order (perhaps from this CPU's page list), or a run of
                    // 2^k or an odd count of pages at some alignment.
                    const unsigned order = static_cast<unsigned>(random() % 7);
                    const size_t count = random() % 3 == 0   ? size_t{1} << order
                                         : random() % 2 == 0 ? size_t{1} << random() % 8
                                                             : 1 + 2 * (random() % 20);
                    const PhysAddr address =
                        count == size_t{1} << order && random() % 2 == 0 ? allocator.allocate(order)
                        : random() % 2 == 0
                            ? allocator.allocate_pages(count, uint64_t{kPageSize} << random() % 5)
                            : allocator.allocate_pages(count);
                    if (address != kNoPage) {
                        taken.push_back({address, count});
                    }
                }
                if (random() % 64 == 0) { // any CPU's page lists, that CPU running or not
                    allocator.drain_cpu(static_cast<unsigned>(random() % platform::kMaxCpus));
                }
                if (!taken.empty() && random() % 3 == 0) {
                    const size_t index = random() % taken.size();
                    allocator.free_pages(taken[index].address, taken[index].count);
                    taken.erase(taken.begin() + static_cast<long>(index));
                }
            }
            for (const Taken& run : taken) {
                allocator.free_pages(run.address, run.count);
            }
        });
    }
    uint64_t reserved = 0;
    const Clock::time_point end = Clock::now() + stress_time(2000);
    while (Clock::now() < end) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        const PhysAddr address = allocator.allocate_pages(3);
        if (address == kNoPage) {
            continue;
        }
        allocator.free_pages(address, 3);
        // Someone may have taken them again since: then the reservation is refused whole.
        if (allocator.reserve_range(PhysRange{address, 3 * kPageSize})) {
            reserved += 3;
        }
    }
    stop.store(true);
    for (std::thread& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(damaged.load(), 0);
    EXPECT_EQ(refused.load(), 0);
    EXPECT_GT(reserved, 0u);
    for (size_t i = 0; i < test::report_count(); ++i) {
        EXPECT_EQ(test::report(i).kind, ErrorKind::ReserveConflict);
    }
    for (const Block& block : mailboxes.take_all()) {
        heap_free(*lasting, block.data);
    }
    const std::vector<ErrorReport> in_use = in_use_reports.take();
    EXPECT_EQ(in_use.size(), inner_heaps.load());
    for (const ErrorReport& report : in_use) {
        EXPECT_EQ(report.kind, ErrorKind::HeapInUse);
    }
    EXPECT_GT(inner_heaps.load(), 0u);
    expect_no_reports(reports);
    EXPECT_TRUE(heap_destroy(*lasting));
    for (unsigned cpu = 0; cpu < platform::kMaxCpus; ++cpu) {
        allocator.drain_cpu(cpu);
    }
    EXPECT_EQ(frames.free_pages(), free_at_start - reserved);
    EXPECT_EQ(allocator.reserved_pages(), reserved);
    EXPECT_TRUE(allocator.check().ok);
}

// One thread makes a heap, allocates a block of some kind in it, shows the block to another
// thread, then frees it and destroys the heap, over and over; the other thread frees whatever
// block it sees into a second heap, which has none of its own. Each of those frees is reported
// (another heap's block, or memory of no heap once the first is gone) and frees nothing, however
// it meets the block's heap going away; region heaps alike, in the first heap's own block.
TEST(ForeignFreeThreadTest, FreesIntoAnotherHeapRaceTheBlocksHeapGoingAway) {
    test::Frames frames(256 << 20);
    const uint64_t free_at_start = frames.free_pages();
    Heap* bystander = heap_create(frames.allocator());
    ASSERT_NE(bystander, nullptr);
    SharedReports reports;
    heap_set_error_hook(*bystander, &SharedReports::record, &reports);
    std::atomic<unsigned char*> shown{nullptr};
    std::atomic<bool> stop{false};
    std::atomic<int> failures{0};
    std::atomic<uint64_t> foreign_frees{0};
    std::thread freer([&] {
        while (!stop.load()) {
            if (unsigned char* block = shown.load()) {
                heap_free(*bystander, block);
                foreign_frees.fetch_add(1);
            }
        }
    });
    std::mt19937_64 random(stress_seed());
    const Clock::time_point end = Clock::now() + stress_time(1500);
    while (Clock::now() < end) {
        Heap* heap = heap_create(frames.allocator());
        if (heap == nullptr) {
            failures.fetch_add(1);
            continue;
        }
        const BlockRequest request = random_request(random, true);
        auto* block = static_cast<unsigned char*>(
            heap_allocate(*heap, request.size + 64 * 1024, request.alignment));
        if (block == nullptr) {
            failures.fetch_add(1);
            continue;
        }
        // A region heap in that block, with a block of its own shown too.
        Heap* inner = heap_create_in_region(block, request.size + 64 * 1024);
        unsigned char* inner_block =
            inner != nullptr ? static_cast<unsigned char*>(heap_allocate(*inner, 100)) : nullptr;
        failures.fetch_add(inner_block == nullptr ? 1 : 0);
        for (unsigned char* seen : {block, inner_block}) {
            shown.store(seen);
            for (int i = 0; i < 200; ++i) {
                std::this_thread::yield();
            }
        }
        heap_free(*inner, inner_block);
        EXPECT_TRUE(heap_destroy(*inner));
        shown.store(block);
        heap_free(*heap, block);
        EXPECT_TRUE(heap_destroy(*heap));
        shown.store(nullptr);
    }
    stop.store(true);
    freer.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_GT(foreign_frees.load(), 0u);
    const std::vector<ErrorReport> seen = reports.take();
    EXPECT_EQ(seen.size(), foreign_frees.load());
    for (const ErrorReport& report : seen) {
        EXPECT_TRUE(report.kind == ErrorKind::ForeignHeap ||
                    report.kind == ErrorKind::NotAllocated || report.kind == ErrorKind::DoubleFree)
            << to_string(report.kind) << ": " << report.detail;
    }
    EXPECT_EQ(heap_statistics(*bystander).blocks_in_use, 0u);
    EXPECT_TRUE(heap_check(*bystander));
    EXPECT_TRUE(heap_destroy(*bystander));
    EXPECT_EQ(frames.free_pages(), free_at_start);
}

// Every thread allocates blocks of every kind until even a 16-byte block fails, then every
// thread frees another thread's blocks, round after round: no thread waits for ever, each
// round's blocks add up to at least three quarters of the first round's bytes (nothing freed
// stays out of reach), the heap is exact between rounds, and at the end every page is back.
class ExhaustionThreadTest : public ::testing::TestWithParam<bool> {};

TEST_P(ExhaustionThreadTest, ThreadsExhaustTheHeapTogetherAndGiveEverythingBack) {
    const bool over_frames = GetParam();
    test::Frames frames(48 << 20);
    test::Region region(16 << 20);
    const uint64_t free_at_start = frames.free_pages();
    Heap* heap = over_frames ? heap_create(frames.allocator())
                             : heap_create_in_region(region.data(), region.size());
    ASSERT_NE(heap, nullptr);
    SharedReports reports;
    heap_set_error_hook(*heap, &SharedReports::record, &reports);
    constexpr unsigned kThreads = 4;
    // Four rounds, or one per 100 ms asked for by BEDROCK_STRESS_MS.
    const int rounds = std::max(
        4,
        static_cast<int>(
            std::chrono::duration_cast<std::chrono::milliseconds>(stress_time(0)).count() / 100));
    std::vector<std::vector<Block>> held(kThreads);
    std::vector<std::atomic<uint64_t>> reached(static_cast<size_t>(rounds));
    std::atomic<int> damaged{0};
    std::barrier full(kThreads);
    std::barrier empty(kThreads + 1);
    auto work = [&](unsigned self) {
        std::mt19937_64 random(stress_seed() * 5 + self);
        for (int round = 0; round < rounds; ++round) {
            int small_failures = 0;
            while (small_failures < 3) {
                BlockRequest request = random_request(random, over_frames);
                if (random() % 4 == 0) {
                    request = BlockRequest{16, 16};
                }
                Block block{static_cast<unsigned char*>(
                                heap_allocate(*heap, request.size, request.alignment)),
                            request.size, 0};
                if (write_ends(block, static_cast<unsigned char>(random()))) {
                    held[self].push_back(block);
                    reached[static_cast<size_t>(round)].fetch_add(request.size);
                } else if (request.size <= 16) {
                    ++small_failures;
                }
            }
            full.arrive_and_wait();
            // Every thread is full: each frees the next thread's blocks.
            for (const Block& block : held[(self + 1) % kThreads]) {
                damaged.fetch_add(ends_intact(block) ? 0 : 1);
                heap_free(*heap, block.data);
            }
            full.arrive_and_wait();
            held[(self + 1) % kThreads].clear();
            empty.arrive_and_wait();
            empty.arrive_and_wait();
        }
    };
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < kThreads; ++t) {
        threads.emplace_back(work, t);
    }
    for (int round = 0; round < rounds; ++round) {
        empty.arrive_and_wait();
        // Everything freed.
        const HeapStatistics s = heap_statistics(*heap);
        EXPECT_EQ(s.blocks_in_use, 0u) << "round " << round;
        EXPECT_TRUE(heap_check(*heap)) << "round " << round;
        EXPECT_GE(reached[static_cast<size_t>(round)].load() * 4, reached[0].load() * 3)
            << "round " << round;
        empty.arrive_and_wait();
    }
    for (std::thread& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(damaged.load(), 0);
    drain_every_cpu(*heap);
    heap_trim(*heap);
    EXPECT_EQ(heap_statistics(*heap).blocks_in_use, 0u);
    EXPECT_TRUE(heap_check(*heap));
    expect_no_reports(reports);
    EXPECT_TRUE(heap_destroy(*heap));
    EXPECT_EQ(frames.free_pages(), free_at_start);
    EXPECT_TRUE(frames.allocator().check().ok);
}

INSTANTIATE_TEST_SUITE_P(Heaps, ExhaustionThreadTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                             return info.param ? std::string("Frames") : std::string("Region");
                         });

// While threads use a heap normally, one thread frees, reallocates and sizes pointers that are
// no live block of it: a stack address, a global, interior and misaligned pointers into its own
// live blocks of every kind (checked or not), another heap's blocks, and small blocks it freed
// already. Each is reported once, with its kind; the others see nothing, and the heap stays
// exact.
class MisuseThreadTest : public ::testing::TestWithParam<CheckLevel> {};

unsigned char g_global_bytes[64];

TEST_P(MisuseThreadTest, MisuseOnOneThreadIsReportedAndChangesNothingForTheOthers) {
    const CheckLevel level = GetParam();
    test::Frames frames(512 << 20);
    const uint64_t free_at_start = frames.free_pages();
    Heap* heap = heap_create(frames.allocator());
    Heap* other = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    ASSERT_NE(other, nullptr);
    ASSERT_TRUE(heap_set_check_level(*heap, level));
    SharedReports reports;
    heap_set_error_hook(*heap, &SharedReports::record, &reports);
    constexpr unsigned kThreads = 3;
    Mailboxes mailboxes(kThreads);
    std::atomic<int> failures{0};
    std::atomic<int> damaged{0};
    std::atomic<bool> stop{false};
    Churn churn{*heap, mailboxes, kThreads, true, failures, damaged};
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] { churn.run(t, stop); });
    }
    uint64_t misuses = 0;
    uint64_t expected_kinds[16] = {};
    auto expect = [&](ErrorKind kind) {
        ++misuses;
        ++expected_kinds[static_cast<unsigned>(kind) % 16];
    };
    std::mt19937_64 random(stress_seed());
    const Clock::time_point end = Clock::now() + stress_time(2000);
    unsigned char stack_bytes[64];
    const size_t sizes[] = {48, 700, 2048, 5000, 300000, 3 << 20};
    while (Clock::now() < end) {
        const size_t size = sizes[random() % 6];
        auto* mine = static_cast<unsigned char*>(heap_allocate(*heap, size));
        auto* foreign = static_cast<unsigned char*>(heap_allocate(*other, size));
        ASSERT_NE(mine, nullptr);
        ASSERT_NE(foreign, nullptr);
        heap_free(*heap, stack_bytes + 16);
        expect(ErrorKind::NotAllocated);
        heap_free(*heap, g_global_bytes + 16 - reinterpret_cast<uintptr_t>(g_global_bytes) % 16);
        expect(ErrorKind::NotAllocated);
        heap_free(*heap, mine + 32);
        expect(ErrorKind::InteriorPointer);
        EXPECT_EQ(heap_reallocate(*heap, mine + 16, 100), nullptr);
        expect(ErrorKind::InteriorPointer);
        EXPECT_EQ(heap_usable_size(*heap, mine + 16), 0u);
        expect(ErrorKind::InteriorPointer);
        heap_free(*heap, mine + 8);
        expect(ErrorKind::MisalignedPointer);
        heap_free(*heap, foreign);
        expect(ErrorKind::ForeignHeap);
        mine[0] = 1;
        mine[size - 1] = 2;
        heap_free(*heap, mine);
        heap_free(*other, foreign);
        if (level == CheckLevel::Off && size <= kMaxSmallBlock) {
            // The block went onto this CPU's magazine, where its malloc left room: no other CPU
            // can have it. (A medium block, a large run or a checked block in the quarantine
            // may be handed out to another thread as soon as it is freed: freeing it again
            // would free that thread's block.)
            heap_free(*heap, mine);
            expect(ErrorKind::DoubleFree);
        }
    }
    stop.store(true);
    for (std::thread& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(damaged.load(), 0);
    const std::vector<ErrorReport> seen = reports.take();
    EXPECT_EQ(seen.size(), misuses);
    uint64_t seen_kinds[16] = {};
    for (const ErrorReport& report : seen) {
        ++seen_kinds[static_cast<unsigned>(report.kind) % 16];
    }
    for (unsigned kind = 0; kind < 16; ++kind) {
        EXPECT_EQ(seen_kinds[kind], expected_kinds[kind])
            << to_string(static_cast<ErrorKind>(kind));
    }
    for (const Block& block : mailboxes.take_all()) {
        heap_free(*heap, block.data);
    }
    heap_flush_quarantine(*heap);
    drain_every_cpu(*heap);
    EXPECT_EQ(heap_statistics(*heap).blocks_in_use, 0u);
    EXPECT_TRUE(heap_check(*heap));
    expect_no_reports(reports);
    EXPECT_TRUE(heap_destroy(*heap));
    EXPECT_TRUE(heap_destroy(*other));
    EXPECT_EQ(frames.free_pages(), free_at_start);
}

INSTANTIATE_TEST_SUITE_P(Levels, MisuseThreadTest,
                         ::testing::Values(CheckLevel::Off, CheckLevel::Report),
                         [](const ::testing::TestParamInfo<CheckLevel>& info) {
                             return info.param == CheckLevel::Off ? std::string("Off")
                                                                  : std::string("Report");
                         });

// A large block the thread growing it publishes for the thread that frees stale pointers into
// it: its start and pages (0: none yet), and whether a realloc() of it is under way.
struct GrowingRun {
    std::atomic<uintptr_t> start{0};
    std::atomic<uint64_t> pages{0};
    std::atomic<bool> growing{false};
};

// Whether a report of a pointer into pages that once held a large run of a heap holding only
// large runs is one of the three it can be: inside a block (and the block the report names holds
// the pointer), in pages no heap holds, or another heap's.
bool is_stale_run_report(const ErrorReport& report) {
    switch (report.kind) {
    case ErrorKind::InteriorPointer:
        return report.block % kPageSize == 0 && report.block < report.address &&
               report.address - report.block < report.size;
    case ErrorKind::NotAllocated:
    case ErrorKind::ForeignHeap:
        return true;
    default:
        return false;
    }
}

// Large blocks grown in place by realloc() step by step on two threads (across the 8,192 pages
// where a run's second length tag changes, and from 1 MiB up by random steps), while another
// thread allocates and frees large and medium blocks of a second heap and pages of every order
// and odd runs straight from the page frame allocator, right after the growing runs (CPU page
// lists included, drained now and then), and a fourth frees, sizes and reallocates pointers into
// the growing runs, stale ones included (the heap of the growing runs holds nothing but large
// runs, so no such pointer is a block's start). Every realloc() keeps the block's bytes, each
// stale pointer is reported once as what it is (an interior pointer inside the block the report
// names), nothing else is reported, and every page comes back.
TEST(LargeRunGrowthThreadTest, RunsGrowInPlaceWhileNeighboursComeAndGoAndStalePointersAreFreed) {
    test::Frames frames(512 << 20);
    ASSERT_TRUE(frames.initialized());
    PageFrameAllocator& allocator = frames.allocator();
    const uint64_t free_at_start = frames.free_pages();
    Heap* runs = heap_create(allocator);
    Heap* others = heap_create(allocator);
    ASSERT_NE(runs, nullptr);
    ASSERT_NE(others, nullptr);
    SharedReports run_reports;
    SharedReports other_reports;
    heap_set_error_hook(*runs, &SharedReports::record, &run_reports);
    heap_set_error_hook(*others, &SharedReports::record, &other_reports);
    constexpr unsigned kGrowers = 2;
    constexpr size_t kLengthTagPages = size_t{1} << 13; // where LargeLengthHigh changes
    GrowingRun published[kGrowers];
    std::atomic<int> failures{0};
    std::atomic<int> damaged{0};
    std::atomic<uint64_t> grown_in_place{0};
    std::atomic<uint64_t> misuses{0};
    std::atomic<uint64_t> misuses_while_growing{0};
    std::atomic<bool> stop{false};
    std::barrier start(kGrowers + 3);
    const Clock::duration run_time = stress_time(2000);

    auto grow = [&](unsigned self) {
        std::mt19937_64 random(stress_seed() * 7919 + self);
        GrowingRun& mine = published[self];
        start.arrive_and_wait();
        for (unsigned cycle = 0; !stop.load(std::memory_order_relaxed); ++cycle) {
            // Odd cycles straddle the second length tag; even ones grow from 1 MiB by steps.
            const bool straddle = cycle % 2 != 0;
            size_t size = straddle ? (kLengthTagPages - 2) * kPageSize - 100 : (1 << 20) + 1;
            const size_t last = straddle ? (kLengthTagPages + 2) * kPageSize : size_t{24} << 20;
            auto* block = static_cast<unsigned char*>(heap_allocate(*runs, size));
            if (block == nullptr) {
                failures.fetch_add(1);
                continue;
            }
            auto mark = static_cast<unsigned char>(random());
            block[0] = mark;
            block[size - 1] = mark;
            mine.pages.store(size / kPageSize + 1);
            mine.start.store(reinterpret_cast<uintptr_t>(block));
            while (size < last && !stop.load(std::memory_order_relaxed)) {
                const size_t bigger =
                    straddle ? last : size + kPageSize * (1 + random() % 512) - random() % 64;
                mine.growing.store(true);
                auto* moved = static_cast<unsigned char*>(heap_reallocate(*runs, block, bigger));
                mine.growing.store(false);
                if (moved == nullptr) {
                    failures.fetch_add(1);
                    break;
                }
                damaged.fetch_add(moved[0] == mark && moved[size - 1] == mark ? 0 : 1);
                grown_in_place.fetch_add(moved == block ? 1 : 0);
                block = moved;
                size = bigger;
                mark = static_cast<unsigned char>(random());
                block[0] = mark;
                block[size - 1] = mark;
                mine.pages.store(size / kPageSize + 1);
                mine.start.store(reinterpret_cast<uintptr_t>(block)); // the old one is stale now
            }
            damaged.fetch_add(block[0] == mark && block[size - 1] == mark ? 0 : 1);
            heap_free(*runs, block); // stale from now on, still published
        }
    };

    auto neighbour = [&] {
        std::mt19937_64 random(stress_seed() * 31);
        std::vector<std::pair<PhysAddr, size_t>> pages;
        std::vector<void*> blocks;
        start.arrive_and_wait();
        while (!stop.load(std::memory_order_relaxed)) {
            switch (random() % 4) {
            case 0: { // a block of order 0 to 3: the CPU page lists
                const auto order = static_cast<unsigned>(random() % 4);
                const PhysAddr page = allocator.allocate(order);
                if (page != kNoPage) {
                    pages.emplace_back(page, size_t{1} << order);
                }
                break;
            }
            case 1: { // an odd run
                const size_t count = 1 + random() % 700;
                const PhysAddr run = allocator.allocate_pages(count);
                if (run != kNoPage) {
                    pages.emplace_back(run, count);
                }
                break;
            }
            case 2:
                blocks.push_back(heap_allocate(*others, random() % 2 != 0
                                                            ? (1 << 20) + 1 + random() % (3 << 20)
                                                            : 2049 + random() % 100000));
                failures.fetch_add(blocks.back() == nullptr ? 1 : 0);
                break;
            default:
                if (random() % 64 == 0) {
                    allocator.drain_cpu(static_cast<unsigned>(random() % 8));
                }
                break;
            }
            if (pages.size() > 24) {
                const size_t index = random() % pages.size();
                allocator.free_pages(pages[index].first, pages[index].second);
                pages.erase(pages.begin() + static_cast<ptrdiff_t>(index));
            }
            if (blocks.size() > 12) {
                const size_t index = random() % blocks.size();
                heap_free(*others, blocks[index]);
                blocks.erase(blocks.begin() + static_cast<ptrdiff_t>(index));
            }
        }
        for (const auto& [page, count] : pages) {
            allocator.free_pages(page, count);
        }
        for (void* block : blocks) {
            heap_free(*others, block);
        }
    };

    auto stale_pointers = [&] {
        std::mt19937_64 random(stress_seed() * 131);
        start.arrive_and_wait();
        while (!stop.load(std::memory_order_relaxed)) {
            GrowingRun& run = published[random() % kGrowers];
            const uintptr_t first = run.start.load();
            const uint64_t pages = run.pages.load();
            if (first == 0) {
                continue;
            }
            // Its length pages most of the time: what a lookup reads while the run grows.
            const uint64_t page = random() % 2 != 0 ? 1 + random() % 2 : random() % (pages + 4);
            auto* pointer = reinterpret_cast<unsigned char*>(first + page * kPageSize + 16 +
                                                             (random() % 200) * 16);
            const bool growing = run.growing.load();
            switch (random() % 4) {
            case 0:
                failures.fetch_add(heap_usable_size(*runs, pointer) == 0 ? 0 : 1);
                break;
            case 1:
                failures.fetch_add(heap_reallocate(*runs, pointer, 100) == nullptr ? 0 : 1);
                break;
            default:
                heap_free(*runs, pointer);
            }
            misuses.fetch_add(1);
            misuses_while_growing.fetch_add(growing && run.growing.load() ? 1 : 0);
        }
    };

    std::vector<std::thread> threads;
    for (unsigned t = 0; t < kGrowers; ++t) {
        threads.emplace_back(grow, t);
    }
    threads.emplace_back(neighbour);
    threads.emplace_back(stale_pointers);
    start.arrive_and_wait();
    std::this_thread::sleep_for(run_time);
    stop.store(true);
    for (std::thread& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(damaged.load(), 0);
    EXPECT_GT(grown_in_place.load(), 0u);
    EXPECT_GT(misuses_while_growing.load(), 0u) << "the threads never overlapped";
    const std::vector<ErrorReport> seen = run_reports.take();
    EXPECT_EQ(seen.size(), misuses.load());
    int wrong = 0;
    for (const ErrorReport& report : seen) {
        if (!is_stale_run_report(report) && wrong++ < 10) {
            ADD_FAILURE() << to_string(report.kind) << " at " << report.address << " block "
                          << report.block << " size " << report.size << ": " << report.detail;
        }
    }
    EXPECT_EQ(wrong, 0);
    expect_no_reports(other_reports);
    EXPECT_EQ(heap_statistics(*runs).large_blocks, 0u);
    EXPECT_TRUE(heap_check(*runs));
    EXPECT_TRUE(heap_check(*others));
    EXPECT_TRUE(heap_destroy(*runs));
    EXPECT_TRUE(heap_destroy(*others));
    expect_every_page_back(frames, free_at_start);
}

// After frees of stale pointers racing their blocks' next owners: every report one such a free
// may get (double-free; not-allocated, in pages no heap holds or being freed; interior-pointer,
// into the block there now), none from the page frame allocator (no page freed twice), and the
// heap exact, destroyed and every page back.
void expect_stale_frees_reported_and_nothing_lost(Heap* heap, const std::vector<ErrorReport>& seen,
                                                  test::Frames& frames, uint64_t free_at_start) {
    for (const ErrorReport& report : seen) {
        if (report.kind != ErrorKind::DoubleFree && report.kind != ErrorKind::NotAllocated &&
            report.kind != ErrorKind::InteriorPointer) {
            ADD_FAILURE() << to_string(report.kind) << " at " << report.address << ": "
                          << report.detail;
        }
    }
    EXPECT_EQ(test::report_count(), 0u)
        << "the page frame allocator found a wrong free: "
        << (test::report_count() != 0 ? test::report(0).detail : "");
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_EQ(heap_statistics(*heap).blocks_in_use, 0u);
    EXPECT_TRUE(heap_destroy(*heap));
    expect_every_page_back(frames, free_at_start);
    test::clear_reports();
}

// A large run freed twice, the second free racing the run's next owner: one thread allocates
// large blocks of random lengths (which keep starting at the same few pages) and frees them,
// another frees whatever block the first allocated last, again and again - a double free, or the
// free of a block that is live again, which no heap can tell from its owner's. Either way each
// free frees a whole run or is reported (double-free, or not-allocated in pages being freed),
// and no page is lost or freed twice: the free that raced the run's tags being written or
// rewritten frees the run as it is, not as the free found it.
TEST(LargeRunGrowthThreadTest, DoubleFreesOfARunRacingItsNextOwnerLoseNoPages) {
    test::Frames frames(256 << 20);
    PageFrameAllocator& allocator = frames.allocator();
    const uint64_t free_at_start = frames.free_pages();
    Heap* heap = heap_create(allocator);
    ASSERT_NE(heap, nullptr);
    SharedReports reports;
    heap_set_error_hook(*heap, &SharedReports::record, &reports);
    test::clear_reports();
    std::atomic<uintptr_t> last{0};
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> double_frees{0};
    std::atomic<int> failures{0};
    std::barrier start(3);
    std::thread owner([&] {
        std::mt19937_64 random(stress_seed() * 11);
        start.arrive_and_wait();
        while (!stop.load(std::memory_order_relaxed)) {
            const size_t size = (size_t{1} << 20) + 1 + random() % (size_t{15} << 20);
            auto* block = static_cast<unsigned char*>(heap_allocate(*heap, size));
            if (block == nullptr) {
                failures.fetch_add(1);
                continue;
            }
            last.store(reinterpret_cast<uintptr_t>(block));
            if (random() % 2 != 0) {
                auto* grown = static_cast<unsigned char*>(
                    heap_reallocate(*heap, block, size + (size_t{1} << 20)));
                if (grown == nullptr) {
                    continue; // reported: the other thread freed it
                }
                block = grown;
                last.store(reinterpret_cast<uintptr_t>(block));
            }
            heap_free(*heap, block);
        }
    });
    std::thread second([&] {
        start.arrive_and_wait();
        while (!stop.load(std::memory_order_relaxed)) {
            const uintptr_t block = last.load();
            if (block != 0) {
                heap_free(*heap, reinterpret_cast<void*>(block));
                double_frees.fetch_add(1);
            }
        }
    });
    start.arrive_and_wait();
    std::this_thread::sleep_for(stress_time(1000));
    stop.store(true);
    owner.join();
    second.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_GT(double_frees.load(), 0u);
    expect_stale_frees_reported_and_nothing_lost(heap, reports.take(), frames, free_at_start);
}

// A medium block freed twice, the second free racing the free that empties its arena and a
// trim that gives the arena back: one thread allocates medium blocks (alone in their arena) and
// frees them, another frees whatever block the first allocated last, again and again, and a
// third trims, so that arenas keep going back to the page frame allocator and coming again.
// Each free frees a block or is reported (double-free, not-allocated in pages no heap holds or
// being given back, or interior-pointer into the owner's next block), nothing else, and no page
// is lost. (A free that passes its lookup just
// before its arena goes reaches the lock with an arena no longer the heap's: the window is a few
// instructions wide, so HeapOwnershipTest.AnArenaGivenBackBeforeTheLockIsNeverRead makes it.)
TEST(ArenaGiveBackThreadTest, DoubleFreesOfMediumBlocksRacingTheirArenasGiveBackLoseNothing) {
    test::Frames frames(256 << 20);
    const uint64_t free_at_start = frames.free_pages();
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    SharedReports reports;
    heap_set_error_hook(*heap, &SharedReports::record, &reports);
    test::clear_reports();
    std::atomic<uintptr_t> last{0};
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> double_frees{0};
    std::atomic<uint64_t> trims{0};
    std::atomic<uint64_t> rounds{0};
    std::atomic<int> failures{0};
    std::barrier start(4);
    std::thread owner([&] {
        std::mt19937_64 random(stress_seed() * 13);
        start.arrive_and_wait();
        while (!stop.load(std::memory_order_relaxed)) {
            const size_t size = 4096 + random() % (512 << 10);
            void* block = heap_allocate(*heap, size);
            if (block == nullptr) {
                failures.fetch_add(1);
                continue;
            }
            last.store(reinterpret_cast<uintptr_t>(block));
            heap_free(*heap, block);
            rounds.fetch_add(1);
        }
    });
    std::thread second([&] {
        start.arrive_and_wait();
        while (!stop.load(std::memory_order_relaxed)) {
            const uintptr_t block = last.load();
            if (block != 0) {
                heap_free(*heap, reinterpret_cast<void*>(block));
                double_frees.fetch_add(1);
            }
        }
    });
    std::thread trimmer([&] {
        start.arrive_and_wait();
        // Once per round of the owner's: trims back to back could keep it from its locks.
        uint64_t trimmed_at = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            const uint64_t round = rounds.load();
            if (round == trimmed_at) {
                std::this_thread::yield();
                continue;
            }
            trimmed_at = round;
            heap_trim(*heap);
            trims.fetch_add(1);
        }
    });
    start.arrive_and_wait();
    std::this_thread::sleep_for(stress_time(1000));
    stop.store(true);
    owner.join();
    second.join();
    trimmer.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_GT(double_frees.load(), 0u);
    EXPECT_GT(trims.load(), 0u);
    const std::vector<ErrorReport> seen = reports.take();
    std::printf("%llu rounds, %llu double frees, %llu trims, %zu reports\n",
                static_cast<unsigned long long>(rounds.load()),
                static_cast<unsigned long long>(double_frees.load()),
                static_cast<unsigned long long>(trims.load()), seen.size());
    expect_stale_frees_reported_and_nothing_lost(heap, seen, frames, free_at_start);
}

// A Caller of this test's frame from `family`: what operator new and delete pass down.
[[gnu::always_inline]] inline heap::Caller caller_from(heap::CallFamily family) {
    return heap::Caller::of(__builtin_frame_address(0), family);
}

// What a thread expects one of its calls to report: the kind, the block and its size.
struct ExpectedReport {
    ErrorKind kind;
    uint64_t block;
    uint64_t size;
    bool operator<(const ExpectedReport& other) const {
        return std::tie(kind, block, size) < std::tie(other.kind, other.block, other.size);
    }
    bool operator==(const ExpectedReport& other) const = default;
};

// Checked mode with a small quarantine: three threads allocate blocks of every kind (small,
// medium, a large run, and every fourth small one guarded) from one family of calls (malloc's,
// operator new's, operator new[]'s), name a wrong size for some of them as a sized delete would,
// and free them from a family chosen at random, while a fourth changes the quarantine's limit and
// flushes it, so that each free's eviction races the others' frees and allocations. Each wrong
// family is reported once as a deallocation mismatch of its block and size, each wrong size once as
// a size mismatch, nothing else is reported, and the heap gives every page back.
TEST(CheckedFamilyThreadTest, FreesFromAnotherFamilyRaceTheQuarantinesEviction) {
    using heap::CallFamily;
    test::Frames frames(512 << 20);
    const uint64_t free_at_start = frames.free_pages();
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    ASSERT_TRUE(heap_set_check_level(*heap, CheckLevel::Report));
    ASSERT_TRUE(heap_enable_guard_pages(*heap, GuardPageOptions{64, 4}));
    heap_set_quarantine_limit(*heap, 64 << 10);
    SharedReports reports;
    heap_set_error_hook(*heap, &SharedReports::record, &reports);
    constexpr unsigned kThreads = 3;
    constexpr CallFamily kFamilies[] = {CallFamily::Malloc, CallFamily::New, CallFamily::NewArray};
    std::vector<std::vector<ExpectedReport>> expected(kThreads);
    std::atomic<int> failures{0};
    std::atomic<uint64_t> frees{0};
    std::atomic<bool> stop{false};
    std::barrier start(kThreads + 1);
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            std::mt19937_64 random(stress_seed() * 613 + t);
            std::vector<std::pair<void*, size_t>> live;
            std::vector<CallFamily> families;
            start.arrive_and_wait();
            while (!stop.load(std::memory_order_relaxed)) {
                const size_t sizes[] = {24, 3000, 300000, size_t{2} << 20};
                const size_t size = sizes[random() % 4] + random() % 64;
                const CallFamily family = kFamilies[random() % 3];
                void* block = heap::allocate(*heap, size, 0, caller_from(family));
                if (block == nullptr) {
                    failures.fetch_add(1);
                    continue;
                }
                live.emplace_back(block, size);
                families.push_back(family);
                if (live.size() < 8) {
                    continue;
                }
                const size_t index = random() % live.size();
                const auto [victim, victim_size] = live[index];
                const CallFamily allocated_by = families[index];
                live.erase(live.begin() + static_cast<ptrdiff_t>(index));
                families.erase(families.begin() + static_cast<ptrdiff_t>(index));
                if (random() % 4 == 0) {
                    heap::check_named_size(*heap, victim, victim_size, caller_from(allocated_by));
                    heap::check_named_size(*heap, victim, victim_size + 16,
                                           caller_from(allocated_by));
                    expected[t].push_back({ErrorKind::SizeMismatch,
                                           reinterpret_cast<uintptr_t>(victim), victim_size});
                }
                const CallFamily freed_by = kFamilies[random() % 3];
                heap::free(*heap, victim, caller_from(freed_by));
                frees.fetch_add(1);
                if (freed_by != allocated_by) {
                    expected[t].push_back({ErrorKind::DeallocationMismatch,
                                           reinterpret_cast<uintptr_t>(victim), victim_size});
                }
            }
            for (size_t i = 0; i < live.size(); ++i) {
                heap::free(*heap, live[i].first, caller_from(families[i]));
            }
        });
    }
    std::mt19937_64 random(stress_seed());
    start.arrive_and_wait();
    // At least the stress time, and on until the threads have freed enough blocks for the
    // races to have happened (a loaded machine or ThreadSanitizer slows them down many times),
    // within a limit that only a stuck heap reaches.
    const Clock::time_point end = Clock::now() + stress_time(1500);
    const Clock::time_point limit = end + std::chrono::seconds(60);
    constexpr uint64_t kLeastFrees = 1000;
    constexpr size_t kLimits[] = {0, 4096, 64 << 10, 1 << 20, 8 << 20};
    while (Clock::now() < limit && (Clock::now() < end || frees.load() <= kLeastFrees)) {
        heap_set_quarantine_limit(*heap, kLimits[random() % 5]);
        if (random() % 16 == 0) {
            heap_flush_quarantine(*heap);
        }
        std::this_thread::yield();
    }
    stop.store(true);
    for (std::thread& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(failures.load(), 0);
    EXPECT_GT(frees.load(), kLeastFrees)
        << "the threads freed too few blocks in a minute past the stress time";
    std::vector<ExpectedReport> wanted;
    for (const auto& mine : expected) {
        wanted.insert(wanted.end(), mine.begin(), mine.end());
    }
    std::vector<ExpectedReport> seen;
    for (const ErrorReport& report : reports.take()) {
        seen.push_back({report.kind, report.block, report.size});
        if (report.kind != ErrorKind::DeallocationMismatch &&
            report.kind != ErrorKind::SizeMismatch) {
            ADD_FAILURE() << to_string(report.kind) << " at " << report.address << ": "
                          << report.detail;
        }
    }
    std::sort(wanted.begin(), wanted.end());
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen.size(), wanted.size());
    EXPECT_TRUE(seen == wanted);
    heap_flush_quarantine(*heap);
    EXPECT_EQ(heap_statistics(*heap).blocks_in_use, 0u);
    EXPECT_TRUE(heap_check(*heap));
    expect_no_reports(reports);
    EXPECT_TRUE(heap_destroy(*heap));
    EXPECT_EQ(frames.free_pages(), free_at_start);
}

// Runs beyond one maximum block (1 GiB) starting wherever their pages are free in a row: two
// threads take and give runs of 1 to 1.5 GiB (straight from the page frame allocator, and as
// large blocks of a heap), while another takes and gives pages of every order and odd runs
// (the CPU page lists too) that break the free stretches up. No page is lost or given twice,
// and the allocator's invariants hold.
TEST(BeyondOneGibThreadTest, RunsBeyondAGibComeAndGoAmongSmallOnes) {
    test::Frames frames(uint64_t{3} << 30);
    ASSERT_TRUE(frames.initialized());
    PageFrameAllocator& allocator = frames.allocator();
    const uint64_t free_at_start = frames.free_pages();
    Heap* heap = heap_create(allocator);
    ASSERT_NE(heap, nullptr);
    SharedReports reports;
    heap_set_error_hook(*heap, &SharedReports::record, &reports);
    std::atomic<uint64_t> taken{0};
    std::atomic<bool> stop{false};
    std::barrier start(4);
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < 2; ++t) {
        threads.emplace_back([&, t] {
            std::mt19937_64 random(stress_seed() * 17 + t);
            start.arrive_and_wait();
            while (!stop.load(std::memory_order_relaxed)) {
                const size_t pages = (size_t{1} << 18) + 1 + random() % (size_t{1} << 17);
                if (random() % 2 == 0) {
                    const PhysAddr run = allocator.allocate_pages(pages);
                    if (run != kNoPage) {
                        taken.fetch_add(1);
                        std::this_thread::yield();
                        allocator.free_pages(run, pages);
                    }
                } else {
                    auto* block = static_cast<unsigned char*>(heap_allocate(*heap, pages * 4096));
                    if (block != nullptr) {
                        taken.fetch_add(1);
                        block[0] = 1;
                        block[pages * 4096 - 1] = 2;
                        std::this_thread::yield();
                        heap_free(*heap, block);
                    }
                }
            }
        });
    }
    threads.emplace_back([&] {
        std::mt19937_64 random(stress_seed() * 19);
        std::vector<std::pair<PhysAddr, size_t>> pages;
        start.arrive_and_wait();
        while (!stop.load(std::memory_order_relaxed)) {
            const size_t count =
                random() % 2 == 0 ? size_t{1} << (random() % 4) : 1 + random() % 5000;
            const PhysAddr run = allocator.allocate_pages(count);
            if (run != kNoPage) {
                pages.emplace_back(run, count);
            }
            if (pages.size() > 64 || (run == kNoPage && !pages.empty())) {
                const size_t index = random() % pages.size();
                allocator.free_pages(pages[index].first, pages[index].second);
                pages.erase(pages.begin() + static_cast<ptrdiff_t>(index));
            }
        }
        for (const auto& [run, count] : pages) {
            allocator.free_pages(run, count);
        }
    });
    start.arrive_and_wait();
    std::this_thread::sleep_for(stress_time(1500));
    stop.store(true);
    for (std::thread& thread : threads) {
        thread.join();
    }
    EXPECT_GT(taken.load(), 0u);
    expect_no_reports(reports);
    EXPECT_EQ(heap_statistics(*heap).large_blocks, 0u);
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
    expect_every_page_back(frames, free_at_start);
}

// heap_enable_guard_pages() while another CPU asks for guarded blocks and writes them: a block
// handed out is one whose slot page stays accessible (before, the pool was published before its
// pages were made inaccessible, and a block taken meanwhile had its page taken away: a segfault
// at the write or the free), and a second enable() at the same moment is refused (before, both
// succeeded and linked the pool into the global list twice: heap_explain_fault() then looped for
// ever). Every page comes back.
TEST(GuardPoolThreadTest, EnablingRacesGuardedAllocationsAndASecondEnable) {
    for (int round = 0; round < 40; ++round) {
        test::Frames frames(64 << 20);
        ASSERT_TRUE(frames.initialized());
        const uint64_t free_at_start = frames.free_pages();
        Heap* heap = heap_create(frames.allocator());
        ASSERT_NE(heap, nullptr);
        ASSERT_TRUE(heap_set_check_level(*heap, CheckLevel::Report));
        std::atomic<int> ready{0};
        std::atomic<bool> stop{false};
        std::atomic<int> enabled{0};
        std::thread user([&] {
            std::vector<unsigned char*> live;
            ready.fetch_add(1);
            while (!stop.load()) {
                auto* block = static_cast<unsigned char*>(heap_allocate_guarded(*heap, 64));
                ASSERT_NE(block, nullptr);
                memset(block, 0x11, 64); // faults if its slot page was made inaccessible
                live.push_back(block);
                if (live.size() > 4) {
                    heap_free(*heap, live.front());
                    live.erase(live.begin());
                }
            }
            for (unsigned char* block : live) {
                heap_free(*heap, block);
            }
        });
        std::thread second([&] {
            ready.fetch_add(1);
            while (ready.load() < 3) {
            }
            enabled += heap_enable_guard_pages(*heap, GuardPageOptions{70, 0}) ? 1 : 0;
        });
        ready.fetch_add(1);
        while (ready.load() < 3) {
        }
        enabled += heap_enable_guard_pages(*heap, GuardPageOptions{70, 0}) ? 1 : 0;
        second.join();
        stop.store(true);
        user.join();
        EXPECT_EQ(enabled.load(), 1) << "round " << round;
        static int elsewhere;
        EXPECT_FALSE(heap_explain_fault(reinterpret_cast<uintptr_t>(&elsewhere), MemoryAccess::Read,
                                        nullptr))
            << "returns, naming no pool";
        EXPECT_EQ(test::report_count(), 0u);
        EXPECT_TRUE(heap_check(*heap));
        EXPECT_TRUE(heap_destroy(*heap));
        expect_every_page_back(frames, free_at_start);
        if (HasFailure()) {
            break;
        }
    }
}

} // namespace
} // namespace bedrock
