// SPDX-License-Identifier: MIT
// The worst-case traces and the counting heap they run on (see worst_case.h).
#include "worst_case.h"

#include <stdio.h>
#include <string.h>

#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "call_profile.h"
#include "instruction_counter.h"

namespace bench {
namespace {

using Random = std::mt19937_64;

// A single call longer than this is counted up to here only (about 30 s of single-stepping).
constexpr uint64_t kCallCap = 5'000'000;
// Instructions of a call kept for its profile (Profile::Explain): the first ones only.
constexpr uint64_t kTrailCapacity = 1 << 16;

// Uniform in [low, high], the same on every standard library (std::uniform_int_distribution
// is not); the modulo bias is below 2^-40 for these ranges.
uint64_t uniform(Random& random, uint64_t low, uint64_t high) {
    return low + random() % (high - low + 1);
}

struct AllocateCall {
    bedrock::Heap* heap;
    size_t size;
    size_t alignment;
    void* block;
};

void call_allocate(void* context) {
    auto* call = static_cast<AllocateCall*>(context);
    call->block = bedrock::heap_allocate(*call->heap, call->size, call->alignment);
}

struct FreeCall {
    bedrock::Heap* heap;
    void* block;
};

void call_free(void* context) {
    auto* call = static_cast<FreeCall*>(context);
    bedrock::heap_free(*call->heap, call->block);
}

void call_prepare_cpu(void* context) {
    (void)bedrock::heap_prepare_cpu(*static_cast<bedrock::Heap*>(context));
}

struct Block {
    void* address;
    size_t size;
};

// The heap of one trace: every call counted, the worst of each kind kept in `run`.
class CountingHeap {
public:
    CountingHeap(const Arena& arena, const char* trace, WorstCaseRun& run, Profile profile)
        : m_heap(arena.heap()), m_frames(arena.frames()), m_trace(trace), m_run(run) {
        if (profile == Profile::Explain) {
            m_trail.resize(kTrailCapacity);
            record_trail(m_trail.data(), m_trail.size());
        }
    }
    ~CountingHeap() { record_trail(nullptr, 0); }
    CountingHeap(const CountingHeap&) = delete;
    CountingHeap& operator=(const CountingHeap&) = delete;

    // Writes the profile of each kind's worst call into the run (Profile::Explain), and its
    // trail into `trail_directory` (null: none) as TRACE.SOURCE.KIND.txt.
    void describe_worst(const char* trail_directory, const char* source) {
        static constexpr const char* kKindNames[kCallKinds] = {
            "malloc", "free", "malloc_refill", "free_return", "cpu_setup", "malloc_reclaim"};
        for (size_t kind = 0; kind < kCallKinds; ++kind) {
            if (m_worst_trails[kind].empty()) {
                continue;
            }
            describe_trail(m_worst_trails[kind], m_run.worst[kind].profile,
                           sizeof(m_run.worst[kind].profile));
            if (trail_directory != nullptr) {
                const std::string path = std::string(trail_directory) + "/" + m_trace + "." +
                                         source + "." + kKindNames[kind] + ".txt";
                write_trail(m_worst_trails[kind], path.c_str());
            }
        }
    }

    [[nodiscard]] void* allocate(size_t size, size_t alignment = bedrock::kHeapMinAlignment) {
        const uint64_t pages_before = free_pages();
        const uint64_t reclaims_before = reclaims();
        AllocateCall call{m_heap, size, alignment, nullptr};
        const CallCount count = count_call(reinterpret_cast<uintptr_t>(&bedrock::heap_allocate),
                                           call_allocate, &call, kCallCap);
        const CallKind kind = reclaims() != reclaims_before  ? CallKind::MallocReclaim
                              : free_pages() != pages_before ? CallKind::MallocRefill
                                                             : CallKind::Malloc;
        if (is_worst(kind, count)) {
            char what[96];
            snprintf(what, sizeof(what), "malloc(%zu, alignment %zu) -> %s", size, alignment,
                     call.block != nullptr ? "block" : "null");
            record(kind, count, what);
        }
        return call.block;
    }

    void release(const Block& block) {
        const uint64_t pages_before = free_pages();
        FreeCall call{m_heap, block.address};
        const CallCount count = count_call(reinterpret_cast<uintptr_t>(&bedrock::heap_free),
                                           call_free, &call, kCallCap);
        const CallKind kind = free_pages() != pages_before ? CallKind::FreeReturn : CallKind::Free;
        if (is_worst(kind, count)) {
            char what[96];
            snprintf(what, sizeof(what), "free(block of %zu bytes)", block.size);
            record(kind, count, what);
        }
    }

    // Sets up the calling CPU's cache, counted as its own kind (not a trace call).
    void prepare_cpu() {
        const CallCount count = count_call(reinterpret_cast<uintptr_t>(&bedrock::heap_prepare_cpu),
                                           call_prepare_cpu, m_heap, kCallCap);
        record(CallKind::CpuSetup, count, nullptr);
    }

    [[nodiscard]] uint64_t calls() const { return m_run.calls; }

private:
    [[nodiscard]] uint64_t reclaims() const { return bedrock::heap_statistics(*m_heap).reclaims; }
    [[nodiscard]] uint64_t free_pages() const {
        return m_frames != nullptr ? m_frames->free_pages() : 0;
    }

    // Counts the call in, and says whether it is the worst of its kind so far.
    bool is_worst(CallKind kind, const CallCount& count) {
        ++m_run.calls;
        m_run.instructions += count.instructions;
        const WorstCall& worst = m_run.worst[static_cast<size_t>(kind)];
        return count.instructions > worst.instructions || (!count.complete && worst.complete);
    }

    // `what` == nullptr: the CPU set-up before the trace.
    void record(CallKind kind, const CallCount& count, const char* what) {
        WorstCall& worst = m_run.worst[static_cast<size_t>(kind)];
        worst.instructions = count.instructions;
        worst.complete = count.complete;
        if (what != nullptr) {
            snprintf(worst.what, sizeof(worst.what), "%s, call %llu: %s", m_trace,
                     static_cast<unsigned long long>(m_run.calls), what);
        } else {
            snprintf(worst.what, sizeof(worst.what), "%s: heap_prepare_cpu()", m_trace);
        }
        if (!m_trail.empty()) {
            const uint64_t kept =
                count.instructions < m_trail.size() ? count.instructions : m_trail.size();
            m_worst_trails[static_cast<size_t>(kind)].assign(m_trail.data(), m_trail.data() + kept);
        }
    }

    bedrock::Heap* m_heap;
    bedrock::PageFrameAllocator* m_frames;
    const char* m_trace;
    WorstCaseRun& m_run;
    std::vector<uintptr_t> m_trail;                    // the current call's (Profile::Explain)
    std::vector<uintptr_t> m_worst_trails[kCallKinds]; // each kind's worst call's
};

// The live blocks of a trace.
class LiveBlocks {
public:
    // Null (a failed allocation) is not added.
    void add(void* address, size_t size) {
        if (address != nullptr) {
            m_blocks.push_back(Block{address, size});
        }
    }
    [[nodiscard]] size_t size() const { return m_blocks.size(); }
    [[nodiscard]] bool empty() const { return m_blocks.empty(); }
    [[nodiscard]] const Block& operator[](size_t index) const { return m_blocks[index]; }

    // Removes a random block (the last one takes its place).
    Block take_random(Random& random) {
        const size_t index = uniform(random, 0, m_blocks.size() - 1);
        const Block block = m_blocks[index];
        m_blocks[index] = m_blocks.back();
        m_blocks.pop_back();
        return block;
    }

    void free_all_random(CountingHeap& heap, Random& random) {
        while (!empty()) {
            heap.release(take_random(random));
        }
    }

    void clear() { m_blocks.clear(); }

private:
    std::vector<Block> m_blocks;
};

// Mostly small, with a tail up to 1 MiB: half up to 256 B, 30 % up to 8 KiB, 15 % up to 64 KiB.
size_t any_size(Random& random) {
    const uint64_t bucket = uniform(random, 0, 99);
    if (bucket < 50) {
        return uniform(random, 0, 256);
    }
    if (bucket < 80) {
        return uniform(random, 257, 8 * kKiB);
    }
    if (bucket < 95) {
        return uniform(random, 8 * kKiB + 1, 64 * kKiB);
    }
    return uniform(random, 64 * kKiB + 1, kMiB);
}

void trace_random(CountingHeap& heap, Random& random, bool quick) {
    constexpr size_t kMaxLive = 2000;
    const uint64_t calls = quick ? 1500 : 5000;
    LiveBlocks live;
    bool growing = true;
    while (heap.calls() < calls) {
        const bool allocate = live.empty() || (uniform(random, 0, 3) == 0) != growing;
        if (allocate) {
            const size_t size = any_size(random);
            const size_t alignment = uniform(random, 0, 7) == 0
                                         ? size_t{1} << uniform(random, 5, 20)
                                         : bedrock::kHeapMinAlignment;
            void* block = heap.allocate(size, alignment);
            live.add(block, size);
            if (block == nullptr || live.size() >= kMaxLive) {
                growing = false;
            }
        } else {
            heap.release(live.take_random(random));
            if (live.size() <= kMaxLive / 10) {
                growing = true;
            }
        }
    }
    live.free_all_random(heap, random);
}

void trace_slabs(CountingHeap& heap, Random& random, bool quick) {
    static constexpr size_t kSizes[] = {16, 256, 1000, 4096, 8 * kKiB, 8 * kKiB + 16};
    static constexpr size_t kQuickSizes[] = {256, 8 * kKiB};
    const size_t* sizes = quick ? kQuickSizes : kSizes;
    const size_t count = quick ? std::size(kQuickSizes) : std::size(kSizes);
    LiveBlocks live;
    for (size_t i = 0; i < count; ++i) {
        const size_t size = sizes[i];
        // Two slabs at least (a 64 KiB slab's worth and one more block), whatever a slab's
        // header costs; the first round frees them in random order, the second in allocation
        // order, its mallocs refilling from the empty slabs the first left (a refill gives a
        // slab of the class's excess back: the costliest step of a malloc that calls no page
        // frame allocator, for every class, the smallest one's many blocks included).
        const size_t blocks = 64 * kKiB / size + 1;
        for (int round = 0; round < 2; ++round) {
            for (size_t j = 0; j < blocks; ++j) {
                live.add(heap.allocate(size), size);
            }
            if (round == 0) {
                live.free_all_random(heap, random);
            } else {
                for (size_t j = 0; j < live.size(); ++j) {
                    heap.release(live[j]);
                }
                live.clear();
            }
        }
    }
}

void trace_fragments(CountingHeap& heap, Random& random, bool quick) {
    const size_t count = quick ? 200 : 600;
    std::vector<Block> blocks;
    for (size_t i = 0; i < count; ++i) {
        const size_t size = uniform(random, 16, 16 * kKiB);
        blocks.push_back(Block{heap.allocate(size), size});
    }
    // Holes: every other block.
    for (size_t i = 0; i < count; i += 2) {
        if (blocks[i].address != nullptr) {
            heap.release(blocks[i]);
        }
    }
    // New blocks cut from the holes (or from what is left after them).
    LiveBlocks fresh;
    for (size_t i = 0; i < count / 2; ++i) {
        const size_t size = uniform(random, 16, 8 * kKiB);
        fresh.add(heap.allocate(size), size);
    }
    fresh.free_all_random(heap, random);
    // Each of these has free neighbours on both sides now.
    for (size_t i = 1; i < count; i += 2) {
        if (blocks[i].address != nullptr) {
            heap.release(blocks[i]);
        }
    }
}

void trace_aligned(CountingHeap& heap, Random& random, bool) {
    LiveBlocks live;
    for (unsigned shift = 4; shift <= 20; ++shift) {
        const size_t alignment = size_t{1} << shift;
        const size_t sizes[] = {1,
                                alignment / 2,
                                alignment,
                                alignment + 16,
                                uniform(random, 0, 4 * kKiB),
                                uniform(random, 8 * kKiB, 256 * kKiB)};
        for (const size_t size : sizes) {
            live.add(heap.allocate(size, alignment), size);
            if (uniform(random, 0, 2) == 0 && !live.empty()) {
                heap.release(live.take_random(random));
            }
        }
    }
    live.free_all_random(heap, random);
}

// Requests a full or fragmented heap may have to search for: every power of two up to 2 MiB
// (the small ones may still find room in a slab), a page run just above 1 MiB, and one request
// that no arena holds.
void probe_full_heap(CountingHeap& heap, LiveBlocks& live) {
    for (unsigned shift = 0; shift <= 21; ++shift) {
        live.add(heap.allocate(size_t{1} << shift), size_t{1} << shift);
    }
    live.add(heap.allocate(kMiB + 4 * kKiB), kMiB + 4 * kKiB);
    live.add(heap.allocate(size_t{1} << 40), size_t{1} << 40);
}

void trace_exhaust(CountingHeap& heap, Random& random, bool) {
    std::vector<Block> filled;
    for (;;) {
        const size_t size = uniform(random, 4 * kKiB, kMiB);
        void* block = heap.allocate(size);
        if (block == nullptr) {
            break;
        }
        filled.push_back(Block{block, size});
    }
    LiveBlocks live;
    probe_full_heap(heap, live);
    // A comb: every other block freed, so the free space is many holes none of which is large.
    for (size_t i = 0; i < filled.size(); ++i) {
        if (i % 2 == 0) {
            heap.release(filled[i]);
        } else {
            live.add(filled[i].address, filled[i].size);
        }
    }
    probe_full_heap(heap, live);
    live.free_all_random(heap, random);
}

} // namespace

WorstCaseRun run_worst_case_trace(const char* trace, Source source, size_t arena_bytes,
                                  TraceLength length, Profile profile,
                                  const char* trail_directory) {
    const bool quick = length == TraceLength::Quick;
    WorstCaseRun run;
    const Arena arena(source, arena_bytes);
    if (arena.heap() == nullptr) {
        snprintf(run.failure, sizeof(run.failure), "%s", arena.failure());
        return run;
    }
    CountingHeap heap(arena, trace, run, profile);
    heap.prepare_cpu();
    Random random(1);
    if (strcmp(trace, "random") == 0) {
        trace_random(heap, random, quick);
    } else if (strcmp(trace, "slabs") == 0) {
        trace_slabs(heap, random, quick);
    } else if (strcmp(trace, "fragments") == 0) {
        trace_fragments(heap, random, quick);
    } else if (strcmp(trace, "aligned") == 0) {
        trace_aligned(heap, random, quick);
    } else if (strcmp(trace, "exhaust") == 0) {
        trace_exhaust(heap, random, quick);
    } else {
        snprintf(run.failure, sizeof(run.failure), "no trace named %s", trace);
    }
    heap.describe_worst(trail_directory, source == Source::Region ? "region" : "pfa");
    return run;
}

} // namespace bench
