// SPDX-License-Identifier: MIT
// Starting libbedrock-malloc.so's heap on the first allocation, and what it registers with libc
// once it runs. The first caller reserves the memory (Bedrock::hosted's start()), applies the
// environment's options (options.h) and publishes the heap; callers from other threads meanwhile
// spin until it is published (or has failed). Starting allocates nothing and calls nothing that
// allocates, so a first malloc from inside libc's own start-up is safe. Then, with the heap
// published (their own allocations land in it), the fork handler is registered and the exit
// reports (the quarantine's check in checked mode, the leak report, the statistics: run from the
// preload's destructor, after the program's own) are asked for; for the last two, a copy of
// stderr is kept, so that a program closing stderr at exit does not lose them.
// Each line of those reports is one write(2) (write_line_to_stderr), so the reports of processes
// exiting at once interleave by whole lines. With guard pages on (BEDROCK_GUARD with a check
// level), the SIGSEGV handler that reports their faults is installed before the heap is
// published (fault_handler.cpp).
// States: kNotStarted -> kStarting -> kStarted | kFailed, each reached once, in this order;
// g_heap != null <=> kStarted.
//
// fork(): the prepare handler takes every lock of the heap, then the reservation's growth lock
// and the page frame allocator's (heap_lock_all(), hosted::lock_memory_for_fork(): the lock
// order), so no other thread is inside a locked part of Bedrock, nor growing it, at the fork;
// the parent and child handlers release them in reverse, and the child's first gives back the
// CPU slots of the threads it does not have. A child of a threaded program may allocate, free
// and grow. The masks the locks return live in g_fork_locks between prepare and release
// (written and read by the forking thread).
// glibc runs the prepare handlers last registered first, and the parent and child handlers first
// registered first, so the preload's must be registered before any other: a program's handler
// that allocates then runs before the heap is locked and after it is released. A program (a
// constructor) may register its handlers before its first allocation, so before the heap
// exists: the preload's __register_atfork (what pthread_atfork calls, through the PLT) starts
// the heap, which registers the preload's handlers, before it passes a registration on to
// glibc's. Before, such a prepare handler that allocated waited for ever for a heap lock the
// preload's had taken.
#include "preload/preload_heap.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "bedrock/heap_checks.h"
#include "bedrock/hosted.h"
#include "preload/options.h"

namespace bedrock::preload {

std::atomic<Heap*> g_heap{nullptr};

namespace {

enum State : int { kNotStarted, kStarting, kStarted, kFailed };
std::atomic<int> g_state{kNotStarted};

void report_leaks_at_exit() {
    Heap* started = g_heap.load(std::memory_order_acquire);
    if (started != nullptr) {
        static_cast<void>(heap_report_leaks(*started, write_line_to_stderr, nullptr));
    }
}

// Checked mode: the blocks still in quarantine are verified as they leave it, so a write after
// free into one that no later allocation pushed out is reported before the program ends.
void verify_quarantine_at_exit() {
    Heap* started = g_heap.load(std::memory_order_acquire);
    if (started != nullptr) {
        heap_flush_quarantine(*started);
    }
}

// "bedrock: stats: ..." on stderr: the heap's pages (now and at peak) against its live bytes,
// its slabs, and the page frame allocator's pages, for finding where a resident set goes.
// The exit reports start_heap() asked for, as a set of bits.
enum ExitReport : unsigned {
    kVerifyQuarantine = 1, // checked mode: the blocks still in quarantine verified
    kLeakReport = 2,
    kStatisticsReport = 4,
};
std::atomic<unsigned> g_exit_reports{0};

void report_statistics_at_exit() {
    Heap* started = g_heap.load(std::memory_order_acquire);
    if (started == nullptr) {
        return;
    }
    const HeapStatistics stats = heap_statistics(*started);
    uint64_t slab_bytes = 0; // the slabs' blocks, without their headers
    uint64_t slab_live_bytes = 0;
    uint64_t slab_live_blocks = 0;
    for (const SizeClassStatistics& size_class : stats.classes) {
        slab_bytes += size_class.slabs * size_class.blocks_per_slab * size_class.block_size;
        slab_live_bytes += size_class.blocks_in_use * size_class.block_size;
        slab_live_blocks += size_class.blocks_in_use;
    }
    // Checked mode's live blocks in the arenas: what the live totals hold beyond the slabs',
    // medium and large figures (which leave checked blocks out, but for checked large runs).
    const auto rest = [](uint64_t total, uint64_t counted) {
        return total > counted ? total - counted : 0;
    };
    const uint64_t checked_bytes = rest(stats.bytes_in_use, slab_live_bytes + stats.medium_bytes +
                                                                stats.large_pages * kPageSize);
    const uint64_t checked_blocks =
        rest(stats.blocks_in_use, slab_live_blocks + stats.medium_blocks + stats.large_blocks);
    PageFrameAllocator& frames = hosted::page_frames();
    char line[384];
    __builtin_snprintf(line, sizeof(line),
                       "bedrock: stats: heap pages held %llu KiB (peak %llu KiB), live %llu KiB "
                       "in %llu blocks; slabs %llu KiB for %llu KiB live; medium %llu KiB; "
                       "large %llu KiB; checked %llu KiB in %llu blocks; pfa managed %llu KiB, "
                       "free %llu KiB, metadata %llu KiB",
                       static_cast<unsigned long long>(stats.pages_held * 4),
                       static_cast<unsigned long long>(stats.peak_pages_held * 4),
                       static_cast<unsigned long long>(stats.bytes_in_use >> 10),
                       static_cast<unsigned long long>(stats.blocks_in_use),
                       static_cast<unsigned long long>(slab_bytes >> 10),
                       static_cast<unsigned long long>(slab_live_bytes >> 10),
                       static_cast<unsigned long long>(stats.medium_bytes >> 10),
                       static_cast<unsigned long long>(stats.large_pages * 4),
                       static_cast<unsigned long long>(checked_bytes >> 10),
                       static_cast<unsigned long long>(checked_blocks),
                       static_cast<unsigned long long>(frames.managed_pages() * 4),
                       static_cast<unsigned long long>(frames.free_pages() * 4),
                       static_cast<unsigned long long>(frames.metadata_bytes() >> 10));
    write_line_to_stderr(nullptr, line);
}

// The exit reports, from the preload's own destructor: glibc runs it after the program's atexit
// handlers and destructors and those of every library loaded after the preload (destructors run
// in reverse of their constructors', and the preload's ran first), so a block one of those frees
// is not reported as leaked, nor is a write after free into it missed. (From atexit(), they ran
// before any ELF destructor: registered at the heap's start, after glibc's own handler that runs
// the destructors.)
[[gnu::destructor]] void report_at_exit() {
    const unsigned reports = g_exit_reports.load(std::memory_order_acquire);
    if ((reports & kStatisticsReport) != 0) {
        report_statistics_at_exit();
    }
    if ((reports & kLeakReport) != 0) {
        report_leaks_at_exit();
    }
    if ((reports & kVerifyQuarantine) != 0) {
        verify_quarantine_at_exit();
    }
}

hosted::ForkLocks g_fork_locks = {};

void prepare_fork() {
    heap_lock_all(*g_heap.load(std::memory_order_acquire));
    g_fork_locks = hosted::lock_memory_for_fork();
}

void release_after_fork() {
    hosted::unlock_memory_after_fork(g_fork_locks);
    heap_unlock_all(*g_heap.load(std::memory_order_acquire));
}

void child_after_fork() {
    hosted::release_cpu_slots_after_fork();
    hosted::forget_kept_stderr_after_fork();
    release_after_fork();
}

// Whether guard pages are on.
bool configure(Heap& started, const Options& options) {
    // Memory freed inside the heap leaves the resident set without a malloc_trim() call.
    static_cast<void>(heap_set_unused_interval(started, kUnusedIntervalBytes));
    if (options.check != CheckLevel::Off && !heap_set_check_level(started, options.check)) {
        hosted::write_to_stderr("bedrock: BEDROCK_CHECK: checked mode is compiled out\n");
    }
    if (options.guard_interval == 0) {
        return false;
    }
    // Each slot costs two host pages: on 64 KiB pages kGuardSlots of them would not fit the one
    // arena the pool must lie in, so the pool takes the most of kGuardSlots, half of it, ...
    // (at least one chunk's 7) that the heap grants.
    for (uint32_t slots = kGuardSlots; slots >= kLeastGuardSlots; slots /= 2) {
        if (heap_enable_guard_pages(started, GuardPageOptions{slots, options.guard_interval})) {
            return true;
        }
    }
    hosted::write_to_stderr("bedrock: BEDROCK_GUARD: guard pages are not available\n");
    return false;
}

} // namespace

void write_line_to_stderr(void*, const char* line) {
    char buffer[512];
    const size_t length = strnlen(line, sizeof(buffer) - 2);
    memcpy(buffer, line, length);
    buffer[length] = '\n';
    buffer[length + 1] = '\0';
    hosted::write_to_stderr(buffer);
}

Heap* start_heap() {
    int expected = kNotStarted;
    if (!g_state.compare_exchange_strong(expected, kStarting, std::memory_order_acquire)) {
        while ((expected = g_state.load(std::memory_order_acquire)) == kStarting) {
            sched_yield();
        }
        return g_heap.load(std::memory_order_acquire);
    }
    const Options options = read_options();
    Heap* started = hosted::start(options.reservation_bytes);
    if (started == nullptr) {
        g_state.store(kFailed, std::memory_order_release);
        return nullptr;
    }
    if (configure(*started, options)) {
        install_fault_handler();
    }
    g_heap.store(started, std::memory_order_release);
    g_state.store(kStarted, std::memory_order_release);
    // Both may allocate: the heap is published, so those allocations are ordinary ones.
    pthread_atfork(prepare_fork, release_after_fork, child_after_fork);
    if (options.leaks || options.statistics) {
        // A program may close stderr before the exit reports run.
        hosted::keep_stderr_for_reports();
    }
    g_exit_reports.store((options.check != CheckLevel::Off ? kVerifyQuarantine : 0u) |
                             (options.leaks ? kLeakReport : 0u) |
                             (options.statistics ? kStatisticsReport : 0u),
                         std::memory_order_release);
    return started;
}

} // namespace bedrock::preload

// glibc's __register_atfork, behind every pthread_atfork (libc_nonshared.a's calls it through
// the PLT): the heap first (its start registers the preload's handlers, coming back here with
// the heap published), then glibc's own.
extern "C" __attribute__((visibility("default"))) int
__register_atfork(void (*prepare)(), void (*parent)(), void (*child)(), void* dso_handle) {
    using Register = int (*)(void (*)(), void (*)(), void (*)(), void*);
    static_cast<void>(bedrock::preload::heap());
    const auto next = reinterpret_cast<Register>(dlsym(RTLD_NEXT, "__register_atfork"));
    return next != nullptr ? next(prepare, parent, child, dso_handle) : ENOMEM;
}
