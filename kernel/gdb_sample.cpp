// SPDX-License-Identifier: MIT
// The GDB sample; see gdb_sample.h. Its lines, in order:
//   gdb-sample: heap <address> bytes_in_use <n> blocks_in_use <n> pages_held <n>
//   gdb-sample: class <block size> slabs <n> in_use <n>       (each class holding slabs)
//   gdb-sample: pfa managed_pages <n> free_pages <n>
//   gdb-sample: region_heap <address> bytes_in_use <n> blocks_in_use <n> pages_held <n>
//   gdb-sample: block <name> <address>                        (each field of GdbSample)
#include "kernel/gdb_sample.h"

#include <stddef.h>

#include "bedrock/heap.h"
#include "kernel/allocators.h"
#include "kernel/console.h"

namespace bedrock::kernel {

GdbSample g_gdb_sample;

namespace {

constexpr size_t kSmallBlocks = 5;
constexpr size_t kMediumBlocks = 3;
constexpr size_t kRegionBytes = 64 * 1024;

alignas(16) unsigned char g_region[kRegionBytes];

// Whether `word` is one of the space-separated words of `text`.
bool has_word(const char* text, const char* word) {
    for (const char* start = text; *start != '\0';) {
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
        while (*start == ' ') {
            ++start;
        }
    }
    return false;
}

void print_totals(const char* name, Heap& heap) {
    const HeapStatistics statistics = heap_statistics(heap);
    print("gdb-sample: %s %p bytes_in_use %lu blocks_in_use %lu pages_held %lu\n", name,
          static_cast<void*>(&heap), statistics.bytes_in_use, statistics.blocks_in_use,
          statistics.pages_held);
}

void print_figures(Heap& heap, Heap& region_heap) {
    print_totals("heap", heap);
    const HeapStatistics statistics = heap_statistics(heap);
    for (const SizeClassStatistics& cls : statistics.classes) {
        if (cls.slabs != 0) {
            print("gdb-sample: class %u slabs %lu in_use %lu\n", cls.block_size, cls.slabs,
                  cls.blocks_in_use);
        }
    }
    const PageFrameAllocator& frames = page_frame_allocator();
    print("gdb-sample: pfa managed_pages %lu free_pages %lu\n", frames.managed_pages(),
          frames.free_pages());
    print_totals("region_heap", region_heap);
    const struct {
        const char* name;
        const void* address;
    } blocks[] = {{"live", g_gdb_sample.live},          {"cached", g_gdb_sample.cached},
                  {"medium", g_gdb_sample.medium},      {"freed_medium", g_gdb_sample.freed_medium},
                  {"large", g_gdb_sample.large},        {"not_heap", g_gdb_sample.not_heap},
                  {"region", g_gdb_sample.region_block}};
    for (const auto& block : blocks) {
        print("gdb-sample: block %s %p\n", block.name, block.address);
    }
}

} // namespace

void run_gdb_sample(const char* command_line) {
    Heap* heap = default_heap();
    if (!has_word(command_line, kGdbSampleOption) || heap == nullptr) {
        return;
    }
    Heap* region_heap = heap_create_in_region(g_region, kRegionBytes);
    if (region_heap == nullptr) {
        panic("gdb-sample: cannot create a heap over a %zu-byte region", kRegionBytes);
    }
    void* small[kSmallBlocks];
    void* medium[kMediumBlocks];
    for (void*& block : small) {
        block = heap_allocate(*heap, 48);
    }
    for (void*& block : medium) {
        block = heap_allocate(*heap, 5000);
    }
    void* large = heap_allocate(*heap, size_t{2} << 20);
    heap_free(*heap, small[kSmallBlocks - 1]);
    heap_free(*heap, medium[1]);
    g_gdb_sample =
        GdbSample{small[0], small[kSmallBlocks - 1], medium[0],   medium[1],
                  large,    &g_gdb_sample,           region_heap, heap_allocate(*region_heap, 100)};
    print_figures(*heap, *region_heap);
    bedrock_gdb_sample_stop();
    for (size_t i = 0; i + 1 < kSmallBlocks; ++i) {
        heap_free(*heap, small[i]);
    }
    heap_free(*heap, medium[0]);
    heap_free(*heap, medium[2]);
    heap_free(*heap, large);
    heap_free(*region_heap, g_gdb_sample.region_block);
    if (!heap_destroy(*region_heap)) {
        panic("gdb-sample: the region heap still holds blocks");
    }
    g_gdb_sample = GdbSample{};
}

} // namespace bedrock::kernel

extern "C" [[gnu::noinline]] void bedrock_gdb_sample_stop() {
    __asm__ volatile("" ::: "memory");
}
