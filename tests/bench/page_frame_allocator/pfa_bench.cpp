// SPDX-License-Identifier: MIT
// Page frame allocator benchmark: allocate+free pairs per order, and a random mix of orders
// over 2 GiB of simulated physical memory (so a 1 GiB block is free beside the metadata).
//   pfa_bench [Google Benchmark flags]     wall-clock ns per operation
//   pfa_bench --pairs ORDER N              N allocate+free pairs (for callgrind: the
//                                          instructions of run_pairs() / N); orders below
//                                          kCpuListOrders take the CPU page lists (warm)
//   pfa_bench --cold-pairs ORDER N         the same without CPU page lists: every pair splits
//                                          a 1 GiB block down and merges it back up
//   pfa_bench --mix N                      N random-mix operations (likewise run_mix())
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "bedrock/page_frame_allocator.h"
#include "support/host_platform.h"

namespace {

using namespace bedrock;

constexpr PhysRange kMemory{PhysAddr{1} << 32, PhysAddr{2} << 30};
// Where the machine without CPU page lists lives beside the shared one.
constexpr PhysRange kColdMemory{PhysAddr{8} << 30, PhysAddr{2} << 30};

struct Machine {
    explicit Machine(CpuPageLists lists = CpuPageLists::On, PhysRange range = kMemory)
        : memory({range}) {
        if (!pfa.init(&range, 1, lists)) {
            std::abort();
        }
    }
    test::SimulatedMemory memory;
    PageFrameAllocator pfa;
};

// The one machine the Google Benchmark cases share: simulated ranges may not overlap, so two
// machines over kMemory cannot exist at once.
Machine& shared_machine() {
    static Machine machine;
    return machine;
}

[[gnu::noinline]] void run_pairs(PageFrameAllocator& pfa, unsigned order, size_t pairs) {
    for (size_t i = 0; i < pairs; ++i) {
        const PhysAddr block = pfa.allocate(order);
        benchmark::DoNotOptimize(block);
        pfa.free(block, order);
    }
}

// A steady state of 4096 live blocks: each step frees a random slot and refills it with a
// block of a random order 0..6.
struct Mix {
    explicit Mix(PageFrameAllocator& pfa) : pfa(pfa), slots(4096), random(42) {
        for (auto& slot : slots) {
            slot.order = static_cast<unsigned>(random() % 7);
            slot.address = pfa.allocate(slot.order);
        }
    }
    struct Slot {
        PhysAddr address;
        unsigned order;
    };
    PageFrameAllocator& pfa;
    std::vector<Slot> slots;
    std::mt19937_64 random;
};

[[gnu::noinline]] void run_mix(Mix& mix, size_t operations) {
    for (size_t i = 0; i < operations; ++i) {
        Mix::Slot& slot = mix.slots[mix.random() % mix.slots.size()];
        mix.pfa.free(slot.address, slot.order);
        slot.order = static_cast<unsigned>(mix.random() % 7);
        slot.address = mix.pfa.allocate(slot.order);
    }
}

void BM_AllocateFreePair(benchmark::State& state) {
    const auto order = static_cast<unsigned>(state.range(0));
    for (auto _ : state) {
        run_pairs(shared_machine().pfa, order, 1);
    }
}
BENCHMARK(BM_AllocateFreePair)->DenseRange(0, 10, 2)->Arg(14)->Arg(18);

// Order 0 without CPU page lists: the split and merge path.
void BM_AllocateFreePairCold(benchmark::State& state) {
    static Machine machine(CpuPageLists::Off, kColdMemory);
    for (auto _ : state) {
        run_pairs(machine.pfa, 0, 1);
    }
}
BENCHMARK(BM_AllocateFreePairCold);

void BM_RandomMix(benchmark::State& state) {
    static Mix mix(shared_machine().pfa);
    for (auto _ : state) {
        run_mix(mix, 1);
    }
}
BENCHMARK(BM_RandomMix);

} // namespace

int main(int argc, char** argv) {
    const bool cold = argc == 4 && std::strcmp(argv[1], "--cold-pairs") == 0;
    if (argc == 4 && (cold || std::strcmp(argv[1], "--pairs") == 0)) {
        Machine machine(cold ? CpuPageLists::Off : CpuPageLists::On);
        run_pairs(machine.pfa, static_cast<unsigned>(std::atoi(argv[2])),
                  std::strtoull(argv[3], nullptr, 10));
        return 0;
    }
    if (argc == 3 && std::strcmp(argv[1], "--mix") == 0) {
        Machine machine;
        Mix mix(machine.pfa);
        run_mix(mix, std::strtoull(argv[2], nullptr, 10));
        return 0;
    }
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    return 0;
}
