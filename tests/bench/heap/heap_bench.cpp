// SPDX-License-Identifier: MIT
// The heap benchmark: Bedrock's heap against glibc malloc, jemalloc, tcmalloc and mimalloc on
// the same workloads, with time per operation and peak footprint / peak live bytes.
//
// Every allocator but glibc replaces malloc when linked, so each (allocator, workload) pair
// runs in a child process of its own: the same source is built once per peer, linked against
// that peer (see CMakeLists.txt), and run as `<binary> --run <allocator> <workload>`. A fresh
// process also gives each run a clean peak RSS. The driver (this program without --run) starts
// the children and prints one table, or CSV with --csv.
//
// Footprint: Bedrock's peak pages held (taken from its page source) times the page size; for
// the peers, the growth of the peak RSS over the RSS before the workload.
//
// With --summary the driver prints the `key value` lines of ./bench.sh --summary that compare
// times with the peers (medians of 5 alternating runs): the 16-byte pair against mimalloc and
// glibc, and the larson-like threaded workload against mimalloc and glibc.
//
// With --checked the driver prints the cost of checked mode instead: Bedrock compiled without
// it (heap_bench_unchecked), compiled in at level off, at level report, and at level report
// with guard pages on every 64th allocation; time ratios are against level off.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bedrock/heap.h"
#include "bedrock/heap_checks.h"
#include "bedrock/malloc.h"
#include "bedrock/page_frame_allocator.h"

namespace {

struct Allocator {
    void* (*allocate)(size_t);
    void (*release)(void*);
    void* (*reallocate)(void*, size_t);
};

// The peers' functions through the standard names of whatever this binary links.
void* system_malloc(size_t size) {
    return malloc(size);
}
void system_free(void* block) {
    free(block);
}
void* system_realloc(void* block, size_t size) {
    return realloc(block, size);
}

struct Result {
    double ns_per_op = 0;
    uint64_t peak_live = 0;
};

// Tracks the live bytes a workload holds, and their peak.
struct Live {
    uint64_t bytes = 0;
    uint64_t peak = 0;
    void add(size_t size) {
        bytes += size;
        peak = bytes > peak ? bytes : peak;
    }
    void remove(size_t size) { bytes -= size; }
};

double now_ns() {
    timespec time;
    clock_gettime(CLOCK_MONOTONIC, &time);
    return static_cast<double>(time.tv_sec) * 1e9 + static_cast<double>(time.tv_nsec);
}

// Touches a block the way a caller would (first and last byte), so no allocator gets credit
// for never touching memory.
void touch(void* block, size_t size) {
    auto* bytes = static_cast<volatile unsigned char*>(block);
    bytes[0] = 1;
    bytes[size - 1] = 1;
}

// Kept out of line so callgrind can count exactly this loop (--toggle-collect).
__attribute__((noinline)) void fixed_pairs(const Allocator& a, size_t size, size_t count) {
    for (size_t i = 0; i < count; ++i) {
        void* block = a.allocate(size);
        touch(block, size);
        a.release(block);
    }
}

// `count` pairs timed after count / 10 for warming up (bench.sh's callgrind pass counts both).
Result run_fixed(const Allocator& a, size_t size, size_t count) {
    if (count == 0) {
        count = size >= 65536 ? 200000 : 2000000;
    }
    fixed_pairs(a, size, count / 10);
    const double start = now_ns();
    fixed_pairs(a, size, count);
    return Result{(now_ns() - start) / static_cast<double>(count), size};
}

size_t mixed_size(std::mt19937_64& random) {
    const unsigned bucket = static_cast<unsigned>(random() % 100);
    if (bucket < 70) {
        return 8 + random() % 249;
    }
    if (bucket < 95) {
        return 257 + random() % 3840;
    }
    return 4097 + random() % 61440;
}

// Producer/consumer through a FIFO: blocks are freed in the order they were made, 20000 live.
Result run_mix(const Allocator& a) {
    constexpr size_t kLive = 20000;
    constexpr size_t kOps = 2000000;
    std::mt19937_64 random(42);
    std::vector<std::pair<void*, size_t>> ring(kLive, {nullptr, 0});
    Live live;
    const double start = now_ns();
    for (size_t i = 0; i < kOps; ++i) {
        auto& slot = ring[i % kLive];
        if (slot.first != nullptr) {
            a.release(slot.first);
            live.remove(slot.second);
        }
        const size_t size = mixed_size(random);
        slot = {a.allocate(size), size};
        touch(slot.first, size);
        live.add(size);
    }
    const double elapsed = now_ns() - start;
    for (auto& slot : ring) {
        a.release(slot.first);
    }
    return Result{elapsed / kOps, live.peak};
}

// Grows blocks from 16 bytes to 1 MiB by an eighth at a time, like a growing buffer.
Result run_realloc(const Allocator& a) {
    constexpr int kRounds = 300;
    size_t ops = 0;
    Live live;
    const double start = now_ns();
    for (int round = 0; round < kRounds; ++round) {
        void* block = nullptr;
        for (size_t size = 16; size <= (1 << 20); size += size / 8 + 16) {
            block = a.reallocate(block, size);
            touch(block, size);
            live.bytes = size;
            live.peak = size > live.peak ? size : live.peak;
            ++ops;
        }
        a.release(block);
    }
    return Result{(now_ns() - start) / static_cast<double>(ops), live.peak};
}

// A synthetic trace with a realistic lifetime mix: most blocks die within a few operations,
// some live for thousands, a few for the whole run; sizes mostly small with a tail of large
// ones (buffers). About 30 MB live at the peak.
Result run_trace(const Allocator& a) {
    constexpr size_t kOps = 3000000;
    std::mt19937_64 random(7);
    std::multimap<size_t, std::pair<void*, size_t>> deaths; // op index -> block
    Live live;
    const double start = now_ns();
    for (size_t i = 0; i < kOps; ++i) {
        const unsigned kind = static_cast<unsigned>(random() % 100);
        const size_t lifetime = kind < 70   ? 1 + random() % 16
                                : kind < 95 ? 100 + random() % 5000
                                            : kOps;
        const unsigned large = static_cast<unsigned>(random() % 1000);
        const size_t size = large < 5 ? 65536 + random() % (1 << 20) : mixed_size(random);
        void* block = a.allocate(size);
        touch(block, size);
        live.add(size);
        deaths.emplace(i + lifetime, std::make_pair(block, size));
        while (!deaths.empty() && deaths.begin()->first <= i) {
            a.release(deaths.begin()->second.first);
            live.remove(deaths.begin()->second.second);
            deaths.erase(deaths.begin());
        }
    }
    const double elapsed = now_ns() - start;
    for (auto& [death, block] : deaths) {
        a.release(block.first);
    }
    return Result{elapsed / kOps, live.peak};
}

// Larson-like cross-thread churn: `threads` threads, each working on one of `threads` arrays of
// kSlots blocks; each step frees a random slot's block and puts a new one of 16-1024 bytes
// there. After every round the arrays move on to the next thread, so most frees are of blocks
// another thread allocated. The time is per step over all threads (lower is more throughput).
Result run_threads(const Allocator& a, unsigned threads) {
    constexpr size_t kSlots = 2000;
    constexpr unsigned kRounds = 40;
    constexpr size_t kStepsPerRound = 20000;
    std::vector<std::vector<void*>> arrays(threads, std::vector<void*>(kSlots, nullptr));
    std::atomic<unsigned> arrived{0};
    std::atomic<unsigned> generation{0};
    auto barrier = [&] {
        const unsigned seen = generation.load();
        if (arrived.fetch_add(1) + 1 == threads) {
            arrived.store(0);
            generation.fetch_add(1);
        } else {
            while (generation.load() == seen) {
                std::this_thread::yield();
            }
        }
    };
    auto work = [&](unsigned self) {
        std::mt19937_64 random(self + 1);
        for (unsigned round = 0; round < kRounds; ++round) {
            std::vector<void*>& blocks = arrays[(self + round) % threads];
            for (size_t step = 0; step < kStepsPerRound; ++step) {
                void*& slot = blocks[random() % kSlots];
                a.release(slot);
                const size_t size = 16 + random() % 1009;
                slot = a.allocate(size);
                touch(slot, size);
            }
            barrier();
        }
    };
    const double start = now_ns();
    std::vector<std::thread> workers;
    for (unsigned t = 0; t < threads; ++t) {
        workers.emplace_back(work, t);
    }
    for (std::thread& worker : workers) {
        worker.join();
    }
    const double elapsed = now_ns() - start;
    for (auto& blocks : arrays) {
        for (void* block : blocks) {
            a.release(block);
        }
    }
    return Result{elapsed / (double{kRounds} * kStepsPerRound * threads), 0};
}

Result run_workload(const Allocator& a, const std::string& workload, size_t pairs) {
    if (workload.rfind("threads-", 0) == 0) {
        return run_threads(a, static_cast<unsigned>(strtoul(workload.c_str() + 8, nullptr, 10)));
    }
    if (workload.rfind("fixed-", 0) == 0) {
        return run_fixed(a, strtoull(workload.c_str() + 6, nullptr, 10), pairs);
    }
    if (workload == "mix") {
        return run_mix(a);
    }
    if (workload == "realloc") {
        return run_realloc(a);
    }
    return run_trace(a);
}

uint64_t resident_bytes() {
    FILE* statm = fopen("/proc/self/statm", "r");
    unsigned long long size = 0;
    unsigned long long resident = 0;
    if (statm == nullptr || fscanf(statm, "%llu %llu", &size, &resident) != 2) {
        resident = 0;
    }
    if (statm != nullptr) {
        fclose(statm);
    }
    return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

// Bedrock's heap over a region of reserved address space (pages appear when touched).
// Bedrock's heap over a page frame allocator that manages 4 GiB of reserved address space
// (the bench platform's phys_to_virt is the identity, so the "physical" range is the mapping).
// The footprint is then what the issue asks: pages taken from the page frame allocator.
bedrock::Heap* make_bedrock_heap() {
    constexpr size_t kRegion = size_t{4} << 30;
    void* region = mmap(nullptr, kRegion, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (region == MAP_FAILED) {
        return nullptr;
    }
    static bedrock::PageFrameAllocator frames;
    const bedrock::PhysRange range{reinterpret_cast<uintptr_t>(region), kRegion};
    if (!frames.init(&range, 1)) {
        return nullptr;
    }
    return bedrock::heap_create(frames);
}

int run_child(const std::string& allocator, const std::string& workload, size_t pairs) {
    Allocator a{system_malloc, system_free, system_realloc};
    bedrock::Heap* heap = nullptr;
    if (allocator.rfind("bedrock", 0) == 0) {
        heap = make_bedrock_heap();
        if (heap == nullptr) {
            fprintf(stderr, "cannot set up Bedrock's heap\n");
            return 1;
        }
        const bool guarded = allocator == "bedrock-guard";
        if ((allocator == "bedrock-report" || guarded) &&
            !bedrock::heap_set_check_level(*heap, bedrock::CheckLevel::Report)) {
            fprintf(stderr, "checked mode is compiled out\n");
            return 1;
        }
        if (guarded &&
            !bedrock::heap_enable_guard_pages(*heap, bedrock::GuardPageOptions{256, 64})) {
            fprintf(stderr, "cannot enable guard pages\n");
            return 1;
        }
        bedrock::set_default_heap(heap);
        a = Allocator{bedrock_malloc, bedrock_free, bedrock_realloc};
    }
    const uint64_t rss_before = resident_bytes();
    const Result result = run_workload(a, workload, pairs);
    uint64_t footprint;
    if (heap != nullptr) {
        footprint = bedrock::heap_statistics(*heap).peak_pages_held * 4096;
    } else {
        rusage usage;
        getrusage(RUSAGE_SELF, &usage);
        const uint64_t peak = static_cast<uint64_t>(usage.ru_maxrss) * 1024;
        footprint = peak > rss_before ? peak - rss_before : 0;
    }
    printf("%s,%s,%.2f,%llu,%llu\n", workload.c_str(), allocator.c_str(), result.ns_per_op,
           static_cast<unsigned long long>(footprint),
           static_cast<unsigned long long>(result.peak_live));
    return 0;
}

struct Row {
    double ns = 0;
    double footprint_ratio = 0;
};

// ns per operation of `binary --run run_as workload` in a child, or a negative value on failure.
double child_ns(const std::string& directory, const std::string& binary, const std::string& run_as,
                const std::string& workload) {
    const std::string command = directory + binary + " --run " + run_as + " " + workload;
    FILE* child = popen(command.c_str(), "r");
    char line[256] = {};
    const bool read = child != nullptr && fgets(line, sizeof(line), child) != nullptr;
    if (child != nullptr) {
        pclose(child);
    }
    double ns = -1;
    return read && sscanf(line, "%*[^,],%*[^,],%lf", &ns) == 1 ? ns : -1;
}

// The --summary keys: Bedrock's time over each peer's, medians of 5 runs taken in turn.
int run_summary(const char* self) {
    const std::string directory = std::string(self).substr(0, std::string(self).rfind('/') + 1);
    struct Key {
        const char* name;
        const char* workload;
        const char* peer_binary;
        const char* peer;
        bool throughput; // the key is the peer's time over Bedrock's (throughput ratio)
    };
    const Key keys[] = {
        {"heap.pair_time_vs_mimalloc.16", "fixed-16", "heap_bench_mimalloc", "mimalloc", false},
        {"heap.pair_time_vs_glibc.16", "fixed-16", "heap_bench", "glibc", false},
        {"heap.threads.2.vs_mimalloc", "threads-2", "heap_bench_mimalloc", "mimalloc", true},
        {"heap.threads.8.vs_mimalloc", "threads-8", "heap_bench_mimalloc", "mimalloc", true},
        {"heap.threads.8.vs_glibc", "threads-8", "heap_bench", "glibc", true},
    };
    constexpr int kRuns = 5;
    for (const Key& key : keys) {
        std::vector<double> ratios;
        for (int run = 0; run < kRuns; ++run) {
            const double bedrock = child_ns(directory, "heap_bench", "bedrock", key.workload);
            const double peer = child_ns(directory, key.peer_binary, key.peer, key.workload);
            if (bedrock <= 0 || peer <= 0) {
                fprintf(stderr, "failed: %s\n", key.name);
                return 1;
            }
            ratios.push_back(key.throughput ? peer / bedrock : bedrock / peer);
        }
        std::sort(ratios.begin(), ratios.end());
        printf("%s %.2f\n", key.name, ratios[kRuns / 2]);
    }
    return 0;
}

int run_driver(const char* self, bool csv, bool checked) {
    const std::string directory = std::string(self).substr(0, std::string(self).rfind('/') + 1);
    // (name in the table, binary, name the child runs as)
    struct Variant {
        std::string name;
        std::string binary;
        std::string run_as;
    };
    const std::vector<Variant> peers = {{"bedrock", "heap_bench", "bedrock"},
                                        {"glibc", "heap_bench", "glibc"},
                                        {"jemalloc", "heap_bench_jemalloc", "jemalloc"},
                                        {"tcmalloc", "heap_bench_tcmalloc", "tcmalloc"},
                                        {"mimalloc", "heap_bench_mimalloc", "mimalloc"}};
    const std::vector<Variant> levels = {{"compiled-out", "heap_bench_unchecked", "bedrock"},
                                         {"off", "heap_bench", "bedrock"},
                                         {"report", "heap_bench", "bedrock-report"},
                                         {"report+guard", "heap_bench", "bedrock-guard"}};
    const std::vector<Variant>& allocators = checked ? levels : peers;
    const std::string reference = checked ? "off" : "bedrock";
    const std::vector<std::string> workloads =
        checked ? std::vector<std::string>{"fixed-16", "fixed-256", "fixed-4096", "mix", "trace"}
                : std::vector<std::string>{"fixed-16",   "fixed-64",    "fixed-256", "fixed-1024",
                                           "fixed-4096", "fixed-65536", "mix",       "realloc",
                                           "trace",      "threads-2",   "threads-8"};
    if (csv) {
        printf("workload,allocator,ns_per_op,footprint_ratio\n");
    } else if (checked) {
        printf("%-12s %-13s %9s %10s   %s\n", "workload", "checking", "ns/op", "footprint",
               "time / level off's");
    } else {
        printf("%-12s %-9s %9s %10s   %s\n", "workload", "allocator", "ns/op", "footprint",
               "bedrock time / this allocator's");
    }
    for (const std::string& workload : workloads) {
        std::map<std::string, Row> rows;
        for (const auto& [name, binary, run_as] : allocators) {
            const std::string command = directory + binary + " --run " + run_as + " " + workload;
            FILE* child = popen(command.c_str(), "r");
            char line[256] = {};
            if (child == nullptr || fgets(line, sizeof(line), child) == nullptr) {
                fprintf(stderr, "failed: %s\n", command.c_str());
                if (child != nullptr) {
                    pclose(child);
                }
                return 1;
            }
            pclose(child);
            char work[64];
            char alloc[64];
            double ns;
            unsigned long long footprint;
            unsigned long long live;
            if (sscanf(line, "%63[^,],%63[^,],%lf,%llu,%llu", work, alloc, &ns, &footprint,
                       &live) != 5) {
                fprintf(stderr, "unexpected output from %s: %s\n", command.c_str(), line);
                return 1;
            }
            rows[name] =
                Row{ns, live > 0 ? static_cast<double>(footprint) / static_cast<double>(live) : 0};
            if (csv) {
                printf("%s,%s,%.2f,%.3f\n", workload.c_str(), name.c_str(), ns,
                       rows[name].footprint_ratio);
            }
        }
        if (csv) {
            continue;
        }
        for (const auto& [name, binary, run_as] : allocators) {
            const Row& row = rows[name];
            printf(checked ? "%-12s %-13s %9.2f %10.3f" : "%-12s %-9s %9.2f %10.3f",
                   workload.c_str(), name.c_str(), row.ns, row.footprint_ratio);
            if (checked && name != reference) {
                printf("   %.2fx", row.ns / rows[reference].ns);
            } else if (!checked && name != reference) {
                printf("   %.2fx", rows[reference].ns / row.ns);
            }
            printf("\n");
        }
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    // --run <allocator> <workload> [pairs for the fixed-size workloads]
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "--run") == 0) {
        return run_child(argv[2], argv[3], argc == 5 ? strtoull(argv[4], nullptr, 10) : 0);
    }
    if (argc == 2 && strcmp(argv[1], "--summary") == 0) {
        return run_summary(argv[0]);
    }
    const bool csv = argc >= 2 && strcmp(argv[argc - 1], "--csv") == 0;
    const bool checked = argc >= 2 && strcmp(argv[1], "--checked") == 0;
    return run_driver(argv[0], csv, checked);
}
