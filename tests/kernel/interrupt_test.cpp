// SPDX-License-Identifier: MIT
// Allocation from interrupt handlers: a periodic timer interrupt (arch::start_timer, kTimerHz)
// whose handler mallocs and frees blocks of several sizes and a page from the page frame
// allocator, while the interrupted code allocates and frees too, on every worker CPU at once.
// Each worker runs for kRunNanoseconds and then on until its timer has ticked kMinimumTicks
// times and it has allocated kMinimumMainBlocks blocks itself, for at most max_run (20 s and
// 250 ms per worker); one that has not allocated them by kRunNanoseconds slows its timer down
// kStarvedSlowdown times (under -icount QEMU runs the CPUs in turn, and each turn began with a
// tick that took all of it: with -smp 4 and shift=7 a worker allocated 3 blocks of its own
// between 1,042 ticks). The time past kRunNanoseconds is for slow hosts: QEMU
// runs each virtual CPU as a host thread, and with many more CPUs than host cores a CPU may be
// given almost no time within a fixed 150 ms (with -smp 16 on two cores some CPUs took one tick or
// none). Afterwards: every CPU ticked at least kMinimumTicks times, every tick did all its work
// (counts), no block or page was damaged (patterns), the heap's live blocks and bytes and the free
// page count are back.
//
// The interrupted code calls Bedrock directly: its locks and per-CPU paths mask interrupts
// themselves (platform::disable_interrupts()), which is what makes this safe.
//
// Deadlock: a tick that waits for a lock its own CPU holds spins forever with interrupts masked,
// so no code on that CPU can notice. With two or more CPUs the last one is a watchdog: when a
// worker's progress counter stands still for stall_limit (arch::nanoseconds) it reports
// the stuck CPU and ends the run with failure instead of hanging. It sleeps between its looks
// (woken by its own kWatchdogHz timer), leaving the time to the workers: a watchdog spinning on
// the clock starved them (under -icount with -smp 4 on AArch64, CPU 0 ran nothing but its ticks
// for 150 ms). With one CPU, CTest's timeout is the backstop. An arch without a timer interrupt
// yet skips the test, saying so.
#include <stddef.h>
#include <stdint.h>

#include "bedrock/heap.h"
#include "bedrock/heap_checks.h"
#include "bedrock/malloc.h"
#include "bedrock/page_frame_allocator.h"
#include "bedrock/spinlock.h"
#include "block_pattern.h"
#include "kernel/allocators.h"
#include "kernel/arch.h"
#include "kernel/console.h"
#include "kernel/smp.h"
#include "kernel/test_registry.h"
#include "settle_heap.h"
#include "test_random.h"

namespace bedrock::kernel {
namespace {

constexpr uint32_t kTimerHz = 2000;
constexpr uint64_t kMillisecond = 1000 * 1000;
constexpr uint64_t kRunNanoseconds = 150 * kMillisecond;
constexpr uint64_t kMinimumTicks = 8;
// Blocks the interrupted code itself must have allocated, and how much slower a worker that has
// not by kRunNanoseconds runs its timer from then on (see the file comment).
constexpr uint64_t kMinimumMainBlocks = 8;
constexpr uint32_t kStarvedSlowdown = 16;
// A timer that has not ticked kMinimumTicks times by then is too slow or broken: 20 s and 250 ms
// more per worker, as the stall limit below (on a 2-core host, 17 of 127 workers had ticked 2-7
// times in 20 s).
constexpr uint64_t kMaxRunNanoseconds = 20000 * kMillisecond;
constexpr uint64_t kMaxRunPerWorkerNanoseconds = 250 * kMillisecond;
// How long a worker's progress may stand still before the watchdog calls it a deadlock: 5 s and
// 250 ms more per worker, as a spinning CPU may wait for a lock whose holder waits for a host
// core behind every other virtual CPU (63 workers on a 2-core host stood still for 4.6 s and,
// in other runs, more than 5 s; 15 workers for 86 ms).
constexpr uint64_t kStallNanoseconds = 5000 * kMillisecond;
constexpr uint64_t kStallPerWorkerNanoseconds = 250 * kMillisecond;
constexpr uint32_t kWatchdogHz = 100;
constexpr size_t kTickSizes[] = {24, 200, 1500, 5000};
constexpr size_t kTickSizeCount = sizeof(kTickSizes) / sizeof(kTickSizes[0]);
constexpr size_t kLiveBlocks = 32;
constexpr size_t kMaxMainSize = 8192;

// One CPU's counts: written by that CPU only (its main loop and its ticks), read by the watchdog
// and, once the CPU has returned, the boot CPU.
struct alignas(64) CpuRun {
    uint64_t ticks;
    uint64_t tick_blocks;
    uint64_t tick_pages;
    uint64_t main_blocks;
    uint64_t damaged;
    uint64_t failed;
    uint64_t progress; // bumped by every loop iteration and every tick
    uint32_t done;
    uint32_t slowed; // 1: its timer slowed down (starved), 2: and the slower timer did not start
};

struct InterruptRun {
    unsigned cpus;
    unsigned workers; // CPUs 0 .. workers - 1; CPU `workers` (if any) is the watchdog
    bool timer_missing;
    uint64_t max_run;       // nanoseconds a worker runs at most
    uint64_t stall_limit;   // nanoseconds of no progress that the watchdog calls a deadlock
    uint64_t longest_stall; // nanoseconds a worker's progress stood still at most (watchdog)
    CpuRun cpu[kMaxBootCpus];
};

constinit InterruptRun* g_run = nullptr;

void bump(uint64_t& counter) {
    __atomic_store_n(&counter, counter + 1, __ATOMIC_RELAXED);
}

// The timer handler: interrupts are masked while it runs.
void tick() {
    CpuRun& run = g_run->cpu[this_cpu().index];
    bump(run.ticks);
    for (size_t i = 0; i < kTickSizeCount; ++i) {
        void* block = bedrock_malloc(kTickSizes[i]);
        if (block == nullptr) {
            ++run.failed;
            continue;
        }
        BlockPattern::fill(block, kTickSizes[i], run.ticks << 4 | i);
        if (!BlockPattern::intact(block, kTickSizes[i], run.ticks << 4 | i)) {
            ++run.damaged;
        }
        bedrock_free(block);
        ++run.tick_blocks;
    }
    PageFrameAllocator& frames = page_frame_allocator();
    const PhysAddr page = frames.allocate(0);
    if (page == kNoPage) {
        ++run.failed;
    } else {
        void* memory = platform::phys_to_virt(page);
        BlockPattern::fill(memory, kPageSize, ~run.ticks);
        if (!BlockPattern::intact(memory, kPageSize, ~run.ticks)) {
            ++run.damaged;
        }
        frames.free(page, 0);
        ++run.tick_pages;
    }
    bump(run.progress);
}

struct Live {
    void* block;
    size_t size;
    uint64_t tag;
};

// Whether a worker that has run for `elapsed` nanoseconds goes on (its ticks are counted by
// its own timer interrupt, which may arrive between any two instructions).
bool keep_running(const InterruptRun& run, const CpuRun& mine, uint64_t elapsed) {
    return elapsed < kRunNanoseconds ||
           ((__atomic_load_n(&mine.ticks, __ATOMIC_RELAXED) < kMinimumTicks ||
             mine.main_blocks < kMinimumMainBlocks) &&
            elapsed < run.max_run);
}

void worker(InterruptRun& run, unsigned cpu) {
    CpuRun& mine = run.cpu[cpu];
    if (!arch::start_timer(kTimerHz, tick)) {
        __atomic_store_n(&run.timer_missing, true, __ATOMIC_RELAXED);
        __atomic_store_n(&mine.done, 1, __ATOMIC_RELEASE);
        return;
    }
    Live live[kLiveBlocks] = {};
    TestRandom random(0x1e57 + cpu);
    PageFrameAllocator& frames = page_frame_allocator();
    const uint64_t start = arch::nanoseconds();
    arch::enable_interrupts();
    for (uint64_t iteration = 0; keep_running(run, mine, arch::nanoseconds() - start);
         ++iteration) {
        if (mine.slowed == 0 && mine.main_blocks < kMinimumMainBlocks &&
            arch::nanoseconds() - start >= kRunNanoseconds) {
            // Starved by its ticks (the file comment): the timer goes on slower.
            static_cast<void>(arch::disable_interrupts());
            arch::stop_timer();
            mine.slowed = arch::start_timer(kTimerHz / kStarvedSlowdown, tick) ? 1 : 2;
            arch::enable_interrupts();
        }
        Live& slot = live[random.next() % kLiveBlocks];
        if (slot.block != nullptr) {
            if (!BlockPattern::intact(slot.block, slot.size, slot.tag)) {
                ++mine.damaged;
            }
            bedrock_free(slot.block);
            slot = Live{};
        } else {
            const size_t size = 1 + random.next() % kMaxMainSize;
            void* block = bedrock_malloc(size);
            if (block == nullptr) {
                ++mine.failed;
            } else {
                slot = Live{block, size, iteration};
                BlockPattern::fill(block, size, iteration);
                ++mine.main_blocks;
            }
        }
        if (iteration % 8 == 0) {
            const PhysAddr page = frames.allocate(1);
            if (page != kNoPage) {
                frames.free(page, 1);
            }
        }
        bump(mine.progress);
    }
    static_cast<void>(arch::disable_interrupts());
    arch::stop_timer();
    for (Live& slot : live) {
        if (slot.block != nullptr) {
            if (!BlockPattern::intact(slot.block, slot.size, slot.tag)) {
                ++mine.damaged;
            }
            bedrock_free(slot.block);
        }
    }
    __atomic_store_n(&mine.done, 1, __ATOMIC_RELEASE);
}

void watchdog_tick() {}

void watchdog(InterruptRun& run) {
    uint64_t seen[kMaxBootCpus] = {};
    uint64_t changed_at[kMaxBootCpus] = {};
    const bool sleeps = arch::start_timer(kWatchdogHz, watchdog_tick);
    for (bool all_done = false; !all_done;) {
        if (sleeps) {
            arch::wait_for_event();
        }
        all_done = true;
        const uint64_t now = arch::nanoseconds();
        for (unsigned cpu = 0; cpu < run.workers; ++cpu) {
            if (__atomic_load_n(&run.cpu[cpu].done, __ATOMIC_ACQUIRE) != 0) {
                continue;
            }
            all_done = false;
            const uint64_t progress = __atomic_load_n(&run.cpu[cpu].progress, __ATOMIC_RELAXED);
            if (progress != seen[cpu] || changed_at[cpu] == 0) {
                seen[cpu] = progress;
                changed_at[cpu] = now;
            } else if (now - changed_at[cpu] > run.longest_stall) {
                run.longest_stall = now - changed_at[cpu];
            }
            if (now - changed_at[cpu] > run.stall_limit) {
                print("interrupt test: cpu %u made no progress for %lu ms after %lu ticks: "
                      "deadlocked (a handler waiting for a lock the code it interrupted holds)\n",
                      cpu, run.stall_limit / kMillisecond,
                      __atomic_load_n(&run.cpu[cpu].ticks, __ATOMIC_RELAXED));
                arch::exit(arch::ExitStatus::Failure);
            }
        }
    }
    if (sleeps) {
        arch::stop_timer();
    }
}

void interrupt_work(void* context, unsigned cpu) {
    auto& run = *static_cast<InterruptRun*>(context);
    if (cpu < run.workers) {
        worker(run, cpu);
    } else if (cpu == run.workers) {
        watchdog(run);
    }
}

BEDROCK_TEST(interrupt_handlers_allocate_while_the_interrupted_code_does) {
    Heap* heap = default_heap();
    BEDROCK_REQUIRE(heap != nullptr);
    static InterruptRun run;
    run = InterruptRun{};
    run.cpus = online_cpu_count();
    run.workers = run.cpus > 1 ? run.cpus - 1 : 1;
    run.max_run = kMaxRunNanoseconds + run.workers * kMaxRunPerWorkerNanoseconds;
    run.stall_limit = kStallNanoseconds + run.workers * kStallPerWorkerNanoseconds;
    print("  %u worker CPUs, %s, timer %u Hz for %lu ms, %lu ticks and %lu blocks of its own per "
          "CPU (at most %lu ms)\n",
          run.workers, run.cpus > 1 ? "1 watchdog CPU" : "no watchdog", kTimerHz,
          kRunNanoseconds / kMillisecond, kMinimumTicks, kMinimumMainBlocks,
          run.max_run / kMillisecond);
    settle_heap(*heap);
    const HeapStatistics before = heap_statistics(*heap);
    const uint64_t free_before = page_frame_allocator().free_pages();

    g_run = &run;
    run_on_every_cpu(interrupt_work, &run);
    g_run = nullptr;
    if (run.timer_missing) {
        print("  skipped: %s has no timer interrupt yet\n", arch::kName);
        return;
    }

    settle_heap(*heap);
    const HeapStatistics after = heap_statistics(*heap);
    if (run.cpus > 1) {
        print("  watchdog: the longest a worker made no progress was %lu ms (limit %lu ms)\n",
              run.longest_stall / kMillisecond, run.stall_limit / kMillisecond);
    }
    for (unsigned cpu = 0; cpu < run.workers; ++cpu) {
        const CpuRun& mine = run.cpu[cpu];
        print("  cpu %u: %lu ticks, %lu blocks and %lu pages in handlers, %lu blocks outside%s\n",
              cpu, mine.ticks, mine.tick_blocks, mine.tick_pages, mine.main_blocks,
              mine.slowed != 0 ? " (starved: its timer slowed down)" : "");
        BEDROCK_EXPECT(mine.slowed != 2);
        BEDROCK_EXPECT(mine.ticks >= kMinimumTicks);
        BEDROCK_EXPECT(mine.main_blocks >= kMinimumMainBlocks);
        BEDROCK_EXPECT_EQ(mine.tick_blocks, mine.ticks * kTickSizeCount);
        BEDROCK_EXPECT_EQ(mine.tick_pages, mine.ticks);
        BEDROCK_EXPECT_EQ(mine.damaged, 0);
        BEDROCK_EXPECT_EQ(mine.failed, 0);
    }
    BEDROCK_EXPECT_EQ(after.blocks_in_use, before.blocks_in_use);
    BEDROCK_EXPECT_EQ(after.bytes_in_use, before.bytes_in_use);
    BEDROCK_EXPECT_EQ(after.pages_held, before.pages_held);
    BEDROCK_EXPECT_EQ(page_frame_allocator().free_pages(), free_before);
    BEDROCK_EXPECT(heap_check(*heap));
    BEDROCK_EXPECT(page_frame_allocator().check().ok);
}

constinit uint64_t g_stale_ticks = 0;

void count_stale_tick() {
    ++g_stale_ticks;
}

// The calling CPU waits for `nanoseconds`, its interrupts as they are.
void wait_nanoseconds(uint64_t nanoseconds) {
    const uint64_t start = arch::nanoseconds();
    while (arch::nanoseconds() - start < nanoseconds) {
        SpinLock::relax();
    }
}

// A timer stopped while its interrupt is pending (it expired with interrupts masked, as when a
// worker above masks them and stops its timer) must not tick once they are unmasked: that tick
// would run after its test has returned and its data is gone.
BEDROCK_TEST(interrupt_stopped_timer_runs_no_pending_tick) {
    const uintptr_t interrupts = arch::disable_interrupts();
    g_stale_ticks = 0;
    if (!arch::start_timer(kTimerHz, count_stale_tick)) {
        arch::restore_interrupts(interrupts);
        print("  skipped: %s has no timer interrupt yet\n", arch::kName);
        return;
    }
    constexpr uint64_t kPeriods = 20 * (uint64_t{1000} * kMillisecond / kTimerHz);
    wait_nanoseconds(kPeriods); // the timer has expired, its interrupt pending
    arch::stop_timer();
    arch::enable_interrupts();
    wait_nanoseconds(kPeriods);
    static_cast<void>(arch::disable_interrupts());
    arch::restore_interrupts(interrupts);
    BEDROCK_EXPECT_EQ(g_stale_ticks, 0);
}

// heap_statistics() read on a CPU whose timer handler allocates checked blocks and frees them into
// the quarantine, often between the statistics' read of the arenas' totals and of the
// quarantine's: no figure goes below zero (which wrapped blocks_in_use to about 2^64 - 64).
constexpr uint32_t kQuarantineTickHz = 20000;
constexpr uint64_t kStatisticsNanoseconds = 300 * kMillisecond;
constinit Heap* g_quarantine_heap = nullptr;

void quarantine_tick() {
    for (int i = 0; i < 32; ++i) {
        heap_free(*g_quarantine_heap, heap_allocate(*g_quarantine_heap, 64));
    }
}

BEDROCK_TEST(interrupt_checked_statistics_never_go_below_zero) {
    if constexpr (!kHeapChecksCompiled) {
        print("  skipped: checked mode compiled out\n");
        return;
    }
    Heap* heap = heap_create(page_frame_allocator());
    BEDROCK_REQUIRE(heap != nullptr);
    BEDROCK_EXPECT(heap_set_check_level(*heap, CheckLevel::Report));
    heap_set_quarantine_limit(*heap, 16 << 20);
    g_quarantine_heap = heap;
    const uintptr_t interrupts = arch::disable_interrupts();
    if (!arch::start_timer(kQuarantineTickHz, quarantine_tick)) {
        arch::restore_interrupts(interrupts);
        print("  skipped: %s has no timer interrupt yet\n", arch::kName);
        BEDROCK_EXPECT(heap_destroy(*heap));
        return;
    }
    arch::enable_interrupts();
    uint64_t samples = 0;
    uint64_t wrapped = 0;
    const uint64_t start = arch::nanoseconds();
    while (arch::nanoseconds() - start < kStatisticsNanoseconds) {
        const HeapStatistics statistics = heap_statistics(*heap);
        ++samples;
        wrapped += statistics.blocks_in_use > 1000000 || statistics.bytes_in_use > (1u << 30);
    }
    static_cast<void>(arch::disable_interrupts());
    arch::stop_timer();
    arch::restore_interrupts(interrupts);
    print("  %lu samples of the statistics, %lu below zero\n", samples, wrapped);
    BEDROCK_EXPECT(samples > 0);
    BEDROCK_EXPECT_EQ(wrapped, 0);
    heap_flush_quarantine(*heap);
    heap_drain_cpu(*heap, this_cpu().index);
    BEDROCK_EXPECT(heap_destroy(*heap));
    g_quarantine_heap = nullptr;
}

} // namespace
} // namespace bedrock::kernel
