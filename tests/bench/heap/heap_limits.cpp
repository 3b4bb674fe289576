// SPDX-License-Identifier: MIT
// heap_limits: the figures that say how well Bedrock's heap uses small memories and how long a
// single call can take, as `key value` lines. bench.sh runs it (./bench.sh --summary prints
// only those lines; ./bench.sh prints them with how each was obtained).
//
//   heap_limits [--summary] [--quick] [--explain] [--trails DIR] [section...]
//     sections    efficiency trace worst region pfa (default: all, in that order)
//     --summary   the key lines only
//     --quick     shorter worst-case and extent traces, for development: not comparable figures
//     --explain   worst: each worst call's instructions per function (call_profile.h)
//     --trails    worst, with --explain: also each worst call's instructions in the order they
//                 ran, a line per source line, in DIR/TRACE.SOURCE.KIND.txt
//
// Sections and their keys:
//   efficiency  heap.efficiency.{small,wide}.{region,pfa}: in a fresh 128 MiB arena, allocate
//               sizes uniform in [8 B, 64 KiB] (small) or [8 B, 1 MiB] (wide), freeing a random
//               live block after every 2 or 3 allocations (chosen at random), until the first
//               allocation fails; live requested bytes / arena bytes, mean over 5 fixed seeds
//   trace       heap.trace.extent: a 64 MiB region heap, 10 000 live slots, 1e6 steps of one
//               random free and one allocation of 8 B-64 KiB; (highest block end - region
//               start) / peak live requested bytes
//   worst       heap.worst_instructions.{malloc,free,malloc_refill,free_return,cpu_setup,
//               malloc_reclaim}: the longest single call, counted exactly (worst_case.h,
//               instruction_counter.h)
//   region      heap.smallest_region_bytes, heap.blocks64_in_32KiB
//   pfa         pfa.metadata_percent: a page frame allocator over QEMU's -m 6G x86-64 map
//
// Every heap runs in a child process of its own (isolated.h). A figure that cannot be measured
// (no heap, a crash) is printed as 0, with the reason on stderr.
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "arena.h"
#include "bedrock/heap.h"
#include "bedrock/page_frame_allocator.h"
#include "instruction_counter.h"
#include "isolated.h"
#include "simulated_memory.h"
#include "worst_case.h"

namespace {

using bench::Arena;
using bench::kKiB;
using bench::kMiB;
using bench::Source;

struct Options {
    bool summary = false;
    bool quick = false;
    bool explain = false;
    const char* trails = nullptr; // --trails DIR
};
Options g_options;

// A line of explanation: full output only.
__attribute__((format(printf, 1, 2))) void note(const char* format, ...) {
    if (g_options.summary) {
        return;
    }
    va_list arguments;
    va_start(arguments, format);
    printf("  ");
    vprintf(format, arguments);
    printf("\n");
    va_end(arguments);
}

// Why a figure is 0: always shown, on stderr, so that --summary's stdout stays key lines.
__attribute__((format(printf, 1, 2))) void problem(const char* format, ...) {
    fflush(stdout);
    va_list arguments;
    va_start(arguments, format);
    fprintf(stderr, "heap_limits: ");
    vfprintf(stderr, format, arguments);
    fprintf(stderr, "\n");
    va_end(arguments);
}

__attribute__((format(printf, 2, 3))) void figure(const char* key, const char* format, ...) {
    va_list arguments;
    va_start(arguments, format);
    printf("%s ", key);
    vprintf(format, arguments);
    printf("\n");
    va_end(arguments);
    fflush(stdout);
}

void heading(const char* text) {
    if (!g_options.summary) {
        printf("%s\n", text);
    }
}

double now_seconds() {
    timespec time;
    clock_gettime(CLOCK_MONOTONIC, &time);
    return static_cast<double>(time.tv_sec) + static_cast<double>(time.tv_nsec) * 1e-9;
}

using Random = std::mt19937_64;

// Uniform in [low, high], the same on every standard library.
uint64_t uniform(Random& random, uint64_t low, uint64_t high) {
    return low + random() % (high - low + 1);
}

// --- efficiency ---------------------------------------------------------------------------

constexpr size_t kEfficiencyArena = 128 * kMiB;
constexpr uint64_t kSeeds[] = {1, 2, 3, 4, 5};

struct FillResult {
    double ratio = 0;
    uint64_t arena_bytes = 0;
    uint64_t live_bytes = 0;
    uint64_t live_blocks = 0;
    uint64_t failed_size = 0; // the allocation that failed
    char failure[96] = {};
};

FillResult fill_until_failure(Source source, size_t largest, uint64_t seed) {
    FillResult result;
    const Arena arena(source, kEfficiencyArena);
    if (arena.heap() == nullptr) {
        snprintf(result.failure, sizeof(result.failure), "%s", arena.failure());
        return result;
    }
    bedrock::Heap& heap = *arena.heap();
    Random random(seed);
    std::vector<std::pair<void*, size_t>> live;
    uint64_t live_bytes = 0;
    uint64_t until_free = uniform(random, 2, 3);
    for (;;) {
        const size_t size = uniform(random, 8, largest);
        void* block = bedrock::heap_allocate(heap, size);
        if (block == nullptr) {
            result.failed_size = size;
            break;
        }
        live.emplace_back(block, size);
        live_bytes += size;
        if (live_bytes > arena.bytes()) {
            snprintf(result.failure, sizeof(result.failure),
                     "the heap handed out more bytes than its arena holds");
            return result;
        }
        if (--until_free == 0) {
            const size_t victim = uniform(random, 0, live.size() - 1);
            bedrock::heap_free(heap, live[victim].first);
            live_bytes -= live[victim].second;
            live[victim] = live.back();
            live.pop_back();
            until_free = uniform(random, 2, 3);
        }
    }
    result.arena_bytes = arena.bytes();
    result.live_bytes = live_bytes;
    result.live_blocks = live.size();
    result.ratio = static_cast<double>(live_bytes) / static_cast<double>(arena.bytes());
    return result;
}

void section_efficiency() {
    struct Case {
        const char* key;
        const char* sizes;
        size_t largest;
        Source source;
    };
    const Case cases[] = {
        {"heap.efficiency.small.region", "8 B-64 KiB", 64 * kKiB, Source::Region},
        {"heap.efficiency.small.pfa", "8 B-64 KiB", 64 * kKiB, Source::Frames},
        {"heap.efficiency.wide.region", "8 B-1 MiB", kMiB, Source::Region},
        {"heap.efficiency.wide.pfa", "8 B-1 MiB", kMiB, Source::Frames},
    };
    std::string seeds;
    for (const uint64_t seed : kSeeds) {
        seeds += " " + std::to_string(seed);
    }
    heading(("heap efficiency: live requested bytes / arena bytes at the first failed allocation "
             "(128 MiB arenas, a free after every 2 or 3 allocations; seeds" +
             seeds + ")")
                .c_str());
    for (const Case& c : cases) {
        double sum = 0;
        bool ok = true;
        std::string ratios;
        uint64_t arena_bytes = 0;
        for (const uint64_t seed : kSeeds) {
            char what[128];
            snprintf(what, sizeof(what), "efficiency %s over a %s, seed %llu", c.sizes,
                     to_string(c.source), static_cast<unsigned long long>(seed));
            const std::optional<FillResult> result = bench::run_isolated<FillResult>(
                what, [&] { return fill_until_failure(c.source, c.largest, seed); });
            if (!result || result->failure[0] != '\0') {
                if (result) {
                    problem("%s: %s", what, result->failure);
                }
                ok = false;
                break;
            }
            sum += result->ratio;
            arena_bytes = result->arena_bytes;
            char ratio[32];
            snprintf(ratio, sizeof(ratio), " %.4f", result->ratio);
            ratios += ratio;
        }
        if (!ok) {
            figure(c.key, "0");
            continue;
        }
        note("%s over a %s (%llu bytes):%s", c.sizes, to_string(c.source),
             static_cast<unsigned long long>(arena_bytes), ratios.c_str());
        figure(c.key, "%.4f", sum / static_cast<double>(std::size(kSeeds)));
    }
}

// --- trace extent -------------------------------------------------------------------------

struct ExtentResult {
    uint64_t extent = 0; // highest block end - region start
    uint64_t peak_live = 0;
    uint64_t mallocs = 0;
    uint64_t failed = 0;
    char failure[96] = {};
};

ExtentResult run_extent_trace(uint64_t steps) {
    constexpr size_t kSlots = 10000;
    ExtentResult result;
    const Arena arena(Source::Region, 64 * kMiB);
    if (arena.heap() == nullptr) {
        snprintf(result.failure, sizeof(result.failure), "%s", arena.failure());
        return result;
    }
    bedrock::Heap& heap = *arena.heap();
    Random random(1);
    std::vector<std::pair<void*, size_t>> slots(kSlots, {nullptr, 0});
    uint64_t live = 0;
    auto allocate = [&](std::pair<void*, size_t>& slot) {
        const size_t size = uniform(random, 8, 64 * kKiB);
        void* block = bedrock::heap_allocate(heap, size);
        ++result.mallocs;
        if (block == nullptr) {
            ++result.failed;
            slot = {nullptr, 0};
            return;
        }
        slot = {block, size};
        live += size;
        result.peak_live = live > result.peak_live ? live : result.peak_live;
        const uint64_t end = reinterpret_cast<uintptr_t>(block) + size - arena.start();
        result.extent = end > result.extent ? end : result.extent;
    };
    for (auto& slot : slots) {
        allocate(slot);
    }
    for (uint64_t step = 0; step < steps; ++step) {
        auto& slot = slots[uniform(random, 0, kSlots - 1)];
        if (slot.first != nullptr) {
            bedrock::heap_free(heap, slot.first);
            live -= slot.second;
        }
        allocate(slot);
    }
    return result;
}

void section_trace() {
    const uint64_t steps = g_options.quick ? 100000 : 1000000;
    heading("heap trace extent: a 64 MiB region heap, 10000 live slots of 8 B-64 KiB, one random "
            "free + malloc per step (seed 1)");
    const std::optional<ExtentResult> result =
        bench::run_isolated<ExtentResult>("trace extent", [&] { return run_extent_trace(steps); });
    if (!result || result->failure[0] != '\0' || result->peak_live == 0) {
        if (result) {
            problem("trace extent: %s",
                    result->failure[0] != '\0' ? result->failure : "no allocation succeeded");
        }
        figure("heap.trace.extent", "0");
        return;
    }
    note("%llu steps: highest block end %llu bytes past the region start, peak live %llu bytes; "
         "%.2f %% of %llu mallocs failed",
         static_cast<unsigned long long>(steps), static_cast<unsigned long long>(result->extent),
         static_cast<unsigned long long>(result->peak_live),
         100.0 * static_cast<double>(result->failed) / static_cast<double>(result->mallocs),
         static_cast<unsigned long long>(result->mallocs));
    figure("heap.trace.extent", "%.4f",
           static_cast<double>(result->extent) / static_cast<double>(result->peak_live));
}

// --- worst-case instructions --------------------------------------------------------------

// Smaller than the other arenas: a region heap's page runs are found first-fit, so its long
// calls grow with the region, and every instruction costs a trap.
constexpr size_t kWorstCaseArena = 32 * kMiB;

void section_worst() {
    using bench::CallKind;
    const char* const keys[bench::kCallKinds] = {
        "heap.worst_instructions.malloc",        "heap.worst_instructions.free",
        "heap.worst_instructions.malloc_refill", "heap.worst_instructions.free_return",
        "heap.worst_instructions.cpu_setup",     "heap.worst_instructions.malloc_reclaim"};
    heading("heap worst case: instructions of the longest single heap_allocate / heap_free "
            "(trap-flag single-stepping, exact; 32 MiB arenas; a call = its first "
            "instruction to its return)");
    if (!bench::instruction_counter_works()) {
        problem("worst case: instructions cannot be counted here (needs x86-64 Linux)");
        for (const char* key : keys) {
            figure(key, "0");
        }
        return;
    }
    bench::WorstCall worst[bench::kCallKinds];
    bool ok = true;
    for (const Source source : {Source::Region, Source::Frames}) {
        for (const char* trace : bench::kWorstCaseTraces) {
            char what[96];
            snprintf(what, sizeof(what), "worst case, trace %s over a %s", trace,
                     to_string(source));
            const double start = now_seconds();
            const std::optional<bench::WorstCaseRun> run =
                bench::run_isolated<bench::WorstCaseRun>(what, [&] {
                    return bench::run_worst_case_trace(
                        trace, source, kWorstCaseArena,
                        g_options.quick ? bench::TraceLength::Quick : bench::TraceLength::Full,
                        g_options.explain ? bench::Profile::Explain : bench::Profile::Off,
                        g_options.trails);
                });
            if (!run || run->failure[0] != '\0') {
                if (run) {
                    problem("%s: %s", what, run->failure);
                }
                ok = false;
                continue;
            }
            note("%-9s over a %-20s %7llu calls, %10llu instructions, worst malloc %llu, free "
                 "%llu, malloc_refill %llu, free_return %llu, cpu_setup %llu, malloc_reclaim %llu "
                 "(%.1f s)",
                 trace, to_string(source), static_cast<unsigned long long>(run->calls),
                 static_cast<unsigned long long>(run->instructions),
                 static_cast<unsigned long long>(run->worst[0].instructions),
                 static_cast<unsigned long long>(run->worst[1].instructions),
                 static_cast<unsigned long long>(run->worst[2].instructions),
                 static_cast<unsigned long long>(run->worst[3].instructions),
                 static_cast<unsigned long long>(run->worst[4].instructions),
                 static_cast<unsigned long long>(run->worst[5].instructions),
                 now_seconds() - start);
            for (size_t kind = 0; kind < bench::kCallKinds; ++kind) {
                const bench::WorstCall& candidate = run->worst[kind];
                if (candidate.instructions > worst[kind].instructions) {
                    worst[kind] = candidate;
                    char where[sizeof(candidate.what)];
                    snprintf(where, sizeof(where), "%s", candidate.what);
                    snprintf(worst[kind].what, sizeof(worst[kind].what), "%s over a %s", where,
                             to_string(source));
                }
            }
        }
    }
    for (size_t kind = 0; kind < bench::kCallKinds; ++kind) {
        if (worst[kind].instructions > 0) {
            note("%s: %s%s", keys[kind], worst[kind].what,
                 worst[kind].complete ? "" : " (counting stopped at the cap: at least this)");
            if (worst[kind].profile[0] != '\0') {
                note("    %s", worst[kind].profile);
            }
        }
    }
    if (!ok) {
        problem("worst case: some traces did not run; the figures cover the others");
    }
    for (size_t kind = 0; kind < bench::kCallKinds; ++kind) {
        figure(keys[kind], "%llu", static_cast<unsigned long long>(worst[kind].instructions));
    }
}

// --- region limits ------------------------------------------------------------------------

struct SmallestRegion {
    uint64_t bytes = 0;          // 0: none up to kLargestTried
    uint64_t failures_above = 0; // sizes within 4 KiB above `bytes` that do not work
    char failure[96] = {};
};

constexpr size_t kLargestTried = 16 * kMiB;

// A heap over [start, start + bytes) that can allocate 16 bytes.
bool region_works(unsigned char* start, size_t bytes) {
    bedrock::Heap* heap = bedrock::heap_create_in_region(start, bytes);
    if (heap == nullptr) {
        return false;
    }
    // Destroyed, so that the next try may build a new heap over the same memory.
    void* block = bedrock::heap_allocate(*heap, 16);
    bedrock::heap_free(*heap, block);
    return bedrock::heap_destroy(*heap) && block != nullptr;
}

SmallestRegion find_smallest_region() {
    SmallestRegion result;
    const bench::Buffer buffer(kLargestTried, 16);
    if (!buffer.ok()) {
        snprintf(result.failure, sizeof(result.failure), "mmap failed");
        return result;
    }
    if (!region_works(buffer.start(), kLargestTried)) {
        snprintf(result.failure, sizeof(result.failure), "no region up to %zu bytes works",
                 kLargestTried);
        return result;
    }
    // Binary search over multiples of 16: `low` fails (or is 0), `high` works.
    size_t low = 0;
    size_t high = kLargestTried / 16;
    while (high - low > 1) {
        const size_t middle = low + (high - low) / 2;
        if (region_works(buffer.start(), middle * 16)) {
            high = middle;
        } else {
            low = middle;
        }
    }
    // The search assumes that a larger region never fails where a smaller one works: check
    // every size below the answer, and the 256 sizes above it.
    size_t smallest = high * 16;
    for (size_t bytes = 16; bytes < smallest; bytes += 16) {
        if (region_works(buffer.start(), bytes)) {
            smallest = bytes;
            break;
        }
    }
    for (size_t bytes = smallest + 16; bytes <= smallest + 4 * kKiB; bytes += 16) {
        result.failures_above += region_works(buffer.start(), bytes) ? 0 : 1;
    }
    result.bytes = smallest;
    return result;
}

struct BlocksResult {
    uint64_t blocks = 0;
    char failure[96] = {};
};

BlocksResult count_blocks64() {
    BlocksResult result;
    const bench::Buffer buffer(32 * kKiB, 4 * kKiB);
    if (!buffer.ok()) {
        snprintf(result.failure, sizeof(result.failure), "mmap failed");
        return result;
    }
    bedrock::Heap* heap = bedrock::heap_create_in_region(buffer.start(), 32 * kKiB);
    if (heap == nullptr) {
        snprintf(result.failure, sizeof(result.failure), "heap_create_in_region failed on 32 KiB");
        return result;
    }
    // A 32 KiB region holds at most 512 such blocks: a count beyond that is a heap bug.
    while (result.blocks <= 32 * kKiB / 64 && bedrock::heap_allocate(*heap, 64) != nullptr) {
        ++result.blocks;
    }
    return result;
}

void section_region() {
    heading("heap region limits: the smallest region (16-byte aligned buffer, not 32) with a "
            "16-byte block; 64-byte blocks in a 32 KiB region (4 KiB-aligned buffer, not 8)");
    const std::optional<SmallestRegion> smallest =
        bench::run_isolated<SmallestRegion>("smallest region", find_smallest_region);
    if (!smallest || smallest->failure[0] != '\0') {
        if (smallest) {
            problem("smallest region: %s", smallest->failure);
        }
        figure("heap.smallest_region_bytes", "0");
    } else {
        note("smallest region %llu bytes; every smaller size fails; %llu of the 256 sizes up to "
             "4 KiB above it fail",
             static_cast<unsigned long long>(smallest->bytes),
             static_cast<unsigned long long>(smallest->failures_above));
        figure("heap.smallest_region_bytes", "%llu",
               static_cast<unsigned long long>(smallest->bytes));
    }
    const std::optional<BlocksResult> blocks =
        bench::run_isolated<BlocksResult>("64-byte blocks in 32 KiB", count_blocks64);
    if (blocks && blocks->failure[0] != '\0') {
        problem("64-byte blocks in 32 KiB: %s", blocks->failure);
    }
    figure("heap.blocks64_in_32KiB", "%llu",
           static_cast<unsigned long long>(blocks ? blocks->blocks : 0));
}

// --- page frame allocator metadata --------------------------------------------------------

struct MetadataResult {
    uint64_t managed_pages = 0;
    uint64_t metadata_bytes = 0;
    uint64_t regions = 0;
    char failure[96] = {};
};

MetadataResult measure_metadata() {
    // QEMU -m 6G on x86-64 (pc): 640 KiB less the EBDA, 3 GiB below the PCI hole, 3 GiB from
    // 4 GiB; the first range shrunk to whole pages, as kernel/memory_map.cpp does.
    const bedrock::PhysRange usable[] = {
        {0, 0x9f000}, {0x100000, 0xbffe0000 - 0x100000}, {0x100000000, 0xc0000000}};
    MetadataResult result;
    const bench::SimulatedMemory memory(0x1c0000000);
    if (!memory.ok()) {
        snprintf(result.failure, sizeof(result.failure), "mmap failed");
        return result;
    }
    bedrock::PageFrameAllocator frames;
    if (!frames.init(usable, std::size(usable))) {
        snprintf(result.failure, sizeof(result.failure), "PageFrameAllocator::init failed");
        return result;
    }
    result.managed_pages = frames.managed_pages();
    result.metadata_bytes = frames.metadata_bytes();
    result.regions = frames.region_count();
    return result;
}

void section_pfa() {
    heading("page frame allocator metadata: QEMU -m 6G x86-64 map (usable [0, 0x9f000), "
            "[0x100000, 0xbffe0000), [0x100000000, 0x1c0000000))");
    const std::optional<MetadataResult> result =
        bench::run_isolated<MetadataResult>("pfa metadata", measure_metadata);
    if (!result || result->failure[0] != '\0' || result->managed_pages == 0) {
        if (result) {
            problem("pfa metadata: %s",
                    result->failure[0] != '\0' ? result->failure : "no managed pages");
        }
        figure("pfa.metadata_percent", "0");
        return;
    }
    note("%llu pages managed in %llu regions, %llu bytes of metadata",
         static_cast<unsigned long long>(result->managed_pages),
         static_cast<unsigned long long>(result->regions),
         static_cast<unsigned long long>(result->metadata_bytes));
    figure("pfa.metadata_percent", "%.3f",
           static_cast<double>(result->metadata_bytes) * 100.0 /
               static_cast<double>(result->managed_pages * bedrock::kPageSize));
}

struct Section {
    const char* name;
    void (*run)();
};

constexpr Section kSections[] = {{"efficiency", section_efficiency},
                                 {"trace", section_trace},
                                 {"worst", section_worst},
                                 {"region", section_region},
                                 {"pfa", section_pfa}};

int usage() {
    fprintf(stderr,
            "usage: heap_limits [--summary] [--quick] [--explain] [--trails DIR] [section...]\n"
            "  sections:");
    for (const Section& section : kSections) {
        fprintf(stderr, " %s", section.name);
    }
    fprintf(stderr, "\n");
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    std::vector<const Section*> chosen;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--summary") == 0) {
            g_options.summary = true;
            continue;
        }
        if (strcmp(argv[i], "--quick") == 0) {
            g_options.quick = true;
            continue;
        }
        if (strcmp(argv[i], "--explain") == 0) {
            g_options.explain = true;
            continue;
        }
        if (strcmp(argv[i], "--trails") == 0 && i + 1 < argc) {
            g_options.trails = argv[++i];
            continue;
        }
        const Section* found = nullptr;
        for (const Section& section : kSections) {
            found = strcmp(argv[i], section.name) == 0 ? &section : found;
        }
        if (found == nullptr) {
            return usage();
        }
        chosen.push_back(found);
    }
    if (chosen.empty()) {
        for (const Section& section : kSections) {
            chosen.push_back(&section);
        }
    }
    for (const Section* section : chosen) {
        const double start = now_seconds();
        section->run();
        note("(%s: %.1f s)", section->name, now_seconds() - start);
    }
    return 0;
}
