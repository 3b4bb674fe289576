// SPDX-License-Identifier: MIT
// The boot benchmark; see boot_bench.h. Every figure is a median-free plain average over a fixed
// count (or a fixed window): the point is a repeatable number under -icount, not statistics.
#include "kernel/boot_bench.h"

#include <stddef.h>
#include <stdint.h>

#include "bedrock/malloc.h"
#include "bedrock/page_frame_allocator.h"
#include "kernel/allocators.h"
#include "kernel/arch.h"
#include "kernel/console.h"
#include "kernel/smp.h"

namespace bedrock::kernel {
namespace {

constexpr unsigned kWarmUpPairs = 1000;
constexpr unsigned kPairs = 20000;
constexpr uint64_t kScalingWindow = 200 * 1000 * 1000; // nanoseconds per phase
constexpr size_t kScalingBlocks = 8;                   // held at once per CPU

// Keeps the compiler from dropping or merging a call whose result is otherwise unused.
void keep(const void* pointer) {
    __asm__ volatile("" : : "r"(pointer) : "memory");
}

bool has_word(const char* text, const char* word) {
    for (const char* start = text; *start != '\0';) {
        while (*start == ' ') {
            ++start;
        }
        size_t i = 0;
        while (word[i] != '\0' && start[i] == word[i]) {
            ++i;
        }
        if (word[i] == '\0' && (start[i] == ' ' || start[i] == '\0')) {
            return true;
        }
        while (*start != ' ' && *start != '\0') {
            ++start;
        }
    }
    return false;
}

uint64_t heap_pair_nanoseconds() {
    for (unsigned i = 0; i < kWarmUpPairs; ++i) {
        void* block = bedrock_malloc(64);
        keep(block);
        bedrock_free(block);
    }
    const uint64_t start = arch::nanoseconds();
    for (unsigned i = 0; i < kPairs; ++i) {
        void* block = bedrock_malloc(64);
        keep(block);
        bedrock_free(block);
    }
    return (arch::nanoseconds() - start) / kPairs;
}

// Nanoseconds per order-0 allocate+free pair, or 0 when the allocator has no free page to time
// (a machine so small that the default heap holds every page): nothing is freed that was not
// allocated.
uint64_t page_pair_nanoseconds() {
    PageFrameAllocator& frames = page_frame_allocator();
    const PhysAddr probe = frames.allocate(0);
    if (probe == kNoPage) {
        return 0;
    }
    frames.free(probe, 0);
    for (unsigned i = 0; i < kWarmUpPairs; ++i) {
        const PhysAddr page = frames.allocate(0);
        if (page != kNoPage) {
            frames.free(page, 0);
        }
    }
    const uint64_t start = arch::nanoseconds();
    for (unsigned i = 0; i < kPairs; ++i) {
        const PhysAddr page = frames.allocate(0);
        keep(&page);
        if (page != kNoPage) {
            frames.free(page, 0);
        }
    }
    return (arch::nanoseconds() - start) / kPairs;
}

struct alignas(64) ScalingCount {
    uint64_t pairs;
};

// Small-block pairs on this CPU's own blocks (sizes 16..512 in turn, kScalingBlocks live) for
// kScalingWindow; the count goes to counts[cpu].
void scaling_work(void* context, unsigned cpu) {
    auto* counts = static_cast<ScalingCount*>(context);
    void* blocks[kScalingBlocks] = {};
    uint64_t pairs = 0;
    const uint64_t end = arch::nanoseconds() + kScalingWindow;
    while (arch::nanoseconds() < end) {
        for (size_t i = 0; i < kScalingBlocks; ++i) {
            bedrock_free(blocks[i]);
            blocks[i] = bedrock_malloc(16 + (pairs + i) % 32 * 16);
            ++pairs;
        }
    }
    for (void* block : blocks) {
        bedrock_free(block);
    }
    counts[cpu].pairs = pairs;
}

void run_scaling() {
    static ScalingCount counts[kMaxBootCpus];
    const unsigned cpus = online_cpu_count();
    scaling_work(counts, 0);
    const uint64_t one = counts[0].pairs * 1000000000 / kScalingWindow;
    run_on_every_cpu(scaling_work, counts);
    uint64_t all = 0;
    for (unsigned cpu = 0; cpu < cpus; ++cpu) {
        all += counts[cpu].pairs * 1000000000 / kScalingWindow;
    }
    const uint64_t hundredths = one != 0 ? all * 100 / one : 0;
    print("bench: smp.ops_per_second.1 %lu\n", one);
    print("bench: smp.ops_per_second.%u %lu\n", cpus, all);
    print("bench: smp.scaling.%u %lu.%02lu\n", cpus, hundredths / 100, hundredths % 100);
}

} // namespace

void run_boot_benchmark(const char* command_line) {
    print("bench: heap.pair_ns.64 %lu\n", heap_pair_nanoseconds());
    const uint64_t page_pair = page_pair_nanoseconds();
    if (page_pair != 0) {
        print("bench: pfa.pair_ns.order0 %lu\n", page_pair);
    } else {
        print("bench: pfa.pair_ns.order0 not measured: no free page\n");
    }
    if (has_word(command_line, kBootBenchOption) && online_cpu_count() > 1) {
        run_scaling();
    }
}

} // namespace bedrock::kernel
