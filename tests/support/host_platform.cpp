// SPDX-License-Identifier: MIT
// Host platform: simulated physical memory windows and recorded error reports.
// Invariants: windows never overlap; host - base == skew modulo kDirectMapAlignment for each
// window (the mapping reserves that much more address space and uses the part that keeps the
// alignment, shifted by the window's skew: 0 unless a test asks for a direct map that does not
// keep it).
#include "support/host_platform.h"

#include <pthread.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace bedrock {
namespace {

constexpr uint64_t kDirectMapAlignment = uint64_t{1} << 30;

struct Window {
    PhysRange range;
    unsigned char* host; // where range.base is mapped
    void* mapping;       // the whole host mapping
    uint64_t mapping_bytes;
};

std::vector<Window>& windows() {
    static std::vector<Window> list;
    return list;
}

thread_local size_t g_last_window = 0;

// What platform::pages_unused() leaves in the pages it is told of.
constexpr int kUnusedPoison = 0xdb;
constexpr size_t kPoisonedEndBytes = size_t{1} << 20;

// Fills whole pages with kUnusedPoison, one relaxed atomic store per word (see pages_unused()).
void poison(unsigned char* start, size_t bytes) {
    constexpr uint64_t kWord = 0x0101'0101'0101'0101u * kUnusedPoison;
    auto* words = reinterpret_cast<uint64_t*>(start);
    for (size_t i = 0; i < bytes / sizeof(uint64_t); ++i) {
        __atomic_store_n(&words[i], kWord, __ATOMIC_RELAXED);
    }
}

// The latest platform::pages_unused() calls (the first kUnusedSlots since the last clear).
constexpr uint64_t kUnusedSlots = 1 << 16;
test::UnusedPages g_unused[kUnusedSlots];
std::atomic<uint64_t> g_unused_calls{0};

std::vector<ErrorReport>& recorded() {
    static std::vector<ErrorReport> list;
    return list;
}

} // namespace

namespace test {

std::vector<UnusedPages> unused_pages() {
    const uint64_t calls = g_unused_calls.load(std::memory_order_relaxed);
    return {g_unused, g_unused + (calls < kUnusedSlots ? calls : kUnusedSlots)};
}

uint64_t unused_calls() {
    return g_unused_calls.load(std::memory_order_relaxed);
}

void clear_unused_pages() {
    g_unused_calls.store(0, std::memory_order_relaxed);
}

SimulatedMemory::SimulatedMemory(std::vector<PhysRange> ranges, uint64_t skew)
    : m_ranges(std::move(ranges)) {
    for (const PhysRange& range : m_ranges) {
        for (const Window& window : windows()) {
            if (range.base <= window.range.last() && window.range.base <= range.last()) {
                std::fprintf(stderr, "SimulatedMemory: ranges overlap at 0x%llx\n",
                             static_cast<unsigned long long>(range.base));
                std::abort();
            }
        }
        const uint64_t bytes = range.size + kDirectMapAlignment + skew;
        void* mapping = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (mapping == MAP_FAILED) {
            std::perror("SimulatedMemory: mmap");
            std::abort();
        }
        const auto start = reinterpret_cast<uintptr_t>(mapping);
        const uint64_t skip = ((range.base - start) & (kDirectMapAlignment - 1)) + skew;
        windows().push_back(
            Window{range, static_cast<unsigned char*>(mapping) + skip, mapping, bytes});
    }
}

SimulatedMemory::~SimulatedMemory() {
    for (const PhysRange& range : m_ranges) {
        for (size_t i = 0; i < windows().size(); ++i) {
            if (windows()[i].range == range) {
                munmap(windows()[i].mapping, windows()[i].mapping_bytes);
                windows().erase(windows().begin() + static_cast<long>(i));
                break;
            }
        }
    }
    g_last_window = 0;
}

const std::vector<ErrorReport>& reports() {
    return recorded();
}
void clear_reports() {
    recorded().clear();
}

} // namespace test

namespace platform {

void* phys_to_virt(PhysAddr phys) {
    auto& list = windows();
    if (g_last_window < list.size() && list[g_last_window].range.contains(phys)) {
        const Window& w = list[g_last_window];
        return w.host + (phys - w.range.base);
    }
    for (size_t i = 0; i < list.size(); ++i) {
        if (list[i].range.contains(phys)) {
            g_last_window = i;
            return list[i].host + (phys - list[i].range.base);
        }
    }
    std::fprintf(stderr, "phys_to_virt: 0x%llx is not simulated memory\n",
                 static_cast<unsigned long long>(phys));
    std::abort();
}

void report_error(const ErrorReport& report) {
    recorded().push_back(report);
}

void panic(const char* message) {
    std::fprintf(stderr, "panic: %s\n", message);
    std::abort();
}

bool set_page_access(void* page, bool accessible) {
    return mprotect(page, 4096, accessible ? PROT_READ | PROT_WRITE : PROT_NONE) == 0;
}

void assertion_failed(const char* expression, const char* file, int line) {
    std::fprintf(stderr, "assertion failed: %s at %s:%d\n", expression, file, line);
    std::abort();
}

StackExtent stack_extent(const void* frame) {
    // The calling thread's stack, looked up once per thread (the tests allocate from glibc's
    // heap, so pthread_getattr_np() may); a frame elsewhere (a stack of a test's own) is not known.
    thread_local const StackExtent stack = [] {
        pthread_attr_t attributes;
        if (pthread_getattr_np(pthread_self(), &attributes) != 0) {
            return StackExtent{0, 0};
        }
        void* low = nullptr;
        size_t size = 0;
        const bool known = pthread_attr_getstack(&attributes, &low, &size) == 0;
        pthread_attr_destroy(&attributes);
        const auto base = reinterpret_cast<uintptr_t>(low);
        return known ? StackExtent{base, base + size} : StackExtent{0, 0};
    }();
    const auto at = reinterpret_cast<uintptr_t>(frame);
    return at >= stack.low && at < stack.high ? stack : StackExtent{0, 0};
}

void pages_unused(void* start, size_t bytes) {
    // Called with an allocator lock held, perhaps from several threads: no allocation here.
    const uint64_t slot = g_unused_calls.fetch_add(1, std::memory_order_relaxed);
    if (slot < kUnusedSlots) {
        g_unused[slot] = test::UnusedPages{start, bytes};
    }
    // The contents may be dropped: overwritten, so a test finds anything of the allocator's or
    // a live block's that was in the range. Of a large range only its ends (where a range told
    // of wrongly most likely meets something live), so that tests telling of gibibytes do not
    // write them all. Word by word, each store atomic, as the hardware drops a page: a heap's
    // lookup without its lock may load a word of an arena given back meanwhile (its answer is
    // re-checked under the lock), and such a load must see old or new contents, not race.
    auto* bytes_start = static_cast<unsigned char*>(start);
    if (bytes <= 2 * kPoisonedEndBytes) {
        poison(bytes_start, bytes);
    } else {
        poison(bytes_start, kPoisonedEndBytes);
        poison(bytes_start + bytes - kPoisonedEndBytes, kPoisonedEndBytes);
    }
}

} // namespace platform
} // namespace bedrock
