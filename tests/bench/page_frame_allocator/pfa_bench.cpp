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
//   pfa_bench --run-search                 microseconds of the worst allocate_pages() searches
//                                          for free pages in a row over a fragmented 4 GiB
//                                          region, and the key line bench.sh prints
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
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
// The fragmented machine of --run-search: one region of 4 GiB.
constexpr PhysRange kFragmentedMemory{PhysAddr{16} << 30, PhysAddr{4} << 30};

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

// Every page allocated as an order-0 block, then freed in stretches of 1, 2 and 3 pages with a
// page kept between them (4 allocate_pages() pages in a row fit nowhere, and no free block of
// 4 pages is left), except 4 pages in a row, not a block, 64 pages before the region's end:
// allocate_pages(4) searches the whole region and finds them last.
struct FragmentedRegion {
    FragmentedRegion() : machine(CpuPageLists::Off, kFragmentedMemory) {
        const PhysRange region = machine.pfa.region_range(0);
        if (machine.pfa.region_count() != 1) {
            std::abort();
        }
        std::vector<PhysAddr> pages;
        for (PhysAddr page; (page = machine.pfa.allocate(0)) != kNoPage;) {
            pages.push_back(page);
        }
        std::sort(pages.begin(), pages.end());
        const uint64_t first = region.base / kPageSize;
        const uint64_t last_run = (first + region.size / kPageSize - 64) / 4 * 4 + 1;
        uint64_t stretch = 0; // pages left of the current stretch, then the kept page
        unsigned length = 0;
        for (const PhysAddr address : pages) {
            const uint64_t page = address / kPageSize;
            const bool in_last_run = page >= last_run && page < last_run + 4;
            if (page >= last_run - 1 && page < last_run + 5 && !in_last_run) {
                continue; // kept, around the last run
            }
            if (!in_last_run && stretch == 0) {
                length = length % 3 + 1;
                stretch = length + 1;
            }
            if (in_last_run || --stretch != 0) {
                machine.pfa.free(address, 0);
            }
        }
        if (!machine.pfa.check().ok || machine.pfa.largest_free_order() >= 2) {
            std::abort();
        }
    }
    Machine machine;
};

// The median microseconds of `repeats` calls of search() (each undone by undo()).
template <class Search, class Undo>
double median_microseconds(unsigned repeats, Search search, Undo undo) {
    std::vector<double> times;
    for (unsigned i = 0; i < repeats; ++i) {
        const auto start = std::chrono::steady_clock::now();
        const PhysAddr run = search();
        const auto stop = std::chrono::steady_clock::now();
        benchmark::DoNotOptimize(run);
        times.push_back(std::chrono::duration<double, std::micro>(stop - start).count());
        undo(run);
    }
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

// The searches for free pages in a row that cost the most: through the whole fragmented region,
// finding a run at its end or none.
void run_search_times() {
    FragmentedRegion fragmented;
    PageFrameAllocator& pfa = fragmented.machine.pfa;
    const PhysRange region = pfa.region_range(0);
    constexpr unsigned kRepeats = 21;
    const double found_last = median_microseconds(
        kRepeats, [&] { return pfa.allocate_pages(4); },
        [&](PhysAddr run) {
            if (run < region.base + region.size - 64 * kPageSize) {
                std::abort(); // not the run at the end
            }
            pfa.free_pages(run, 4);
        });
    const double none_short = median_microseconds(
        kRepeats, [&] { return pfa.allocate_pages(5); }, [](PhysAddr) {});
    const double none_long = median_microseconds(
        kRepeats, [&] { return pfa.allocate_pages(100); }, [](PhysAddr) {});
    std::printf("allocate_pages() searching a 4 GiB region fragmented into stretches of 1-3 free "
                "pages: microseconds (median of %u)\n",
                kRepeats);
    std::printf("  4 pages, found 64 pages before the end   %10.1f\n", found_last);
    std::printf("  5 pages, none fits                       %10.1f\n", none_short);
    std::printf("  100 pages, none fits                     %10.1f\n", none_long);
    std::printf("pfa.run_search_us.fragmented_4GiB %.0f\n",
                std::max({found_last, none_short, none_long}));
}

} // namespace

int main(int argc, char** argv) {
    if (argc == 2 && std::strcmp(argv[1], "--run-search") == 0) {
        run_search_times();
        return 0;
    }
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
