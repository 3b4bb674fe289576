// SPDX-License-Identifier: MIT
// Allocator bring-up for the test kernel (the page frame allocator, then the default heap on
// it), and their boot reports. The report's first line has a
// fixed form that tools parse:
//   pfa: managed <N> pages, metadata <M> bytes (<R>%)
// Bring-up also lets the fault path ask the heap about guard-page faults.
#include "kernel/allocators.h"

#include "bedrock/heap.h"
#include "bedrock/heap_checks.h"

#include "kernel/arch.h"
#include "kernel/console.h"
#include "kernel/fault.h"
#include "kernel/format.h"
#include "kernel/trap.h"

namespace bedrock::kernel {
namespace {

constinit PageFrameAllocator g_page_frame_allocator;

void print_page_frame_report(const PageFrameAllocator& pfa, uint64_t startup_nanoseconds) {
    const uint64_t managed_bytes = pfa.managed_pages() * kPageSize;
    // The ratio in thousandths of a percent, printed with three decimals.
    const uint64_t milli_percent =
        managed_bytes == 0 ? 0 : pfa.metadata_bytes() * 100000 / managed_bytes;
    print("pfa: managed %lu pages, metadata %lu bytes (%lu.%03lu%%)\n", pfa.managed_pages(),
          pfa.metadata_bytes(), milli_percent / 1000, milli_percent % 1000);
    print("pfa: started in %lu us, %zu regions, largest free block order %d\n",
          startup_nanoseconds / 1000, pfa.region_count(), pfa.largest_free_order());
    for (size_t i = 0; i < pfa.region_count(); ++i) {
        const PhysRange range = pfa.region_range(i);
        print("pfa: region [0x%016lx - 0x%016lx] %lu free pages\n", range.base, range.last(),
              pfa.region_free_pages(i));
    }
    const FreeBlockCounts counts = pfa.free_blocks();
    print("pfa: free blocks per order:");
    for (unsigned order = 0; order < kOrderCount; ++order) {
        print(" %u:%lu", order, counts.blocks[order]);
    }
    print("\npfa: free pages %lu (below 16 MiB %lu, below 4 GiB %lu)\n", pfa.free_pages(),
          pfa.free_pages_below(kZoneDmaLimit), pfa.free_pages_below(kZoneDma32Limit));
}

// The FaultExplainer: a fault at a data address in a guard-page pool becomes the heap's report.
bool explain_heap_fault(const FaultReport& fault) {
    if (!fault.address_valid) {
        return false;
    }
    constexpr bedrock::MemoryAccess kAccess[] = {
        bedrock::MemoryAccess::Unknown, bedrock::MemoryAccess::Read, bedrock::MemoryAccess::Write,
        bedrock::MemoryAccess::Execute};
    return heap_explain_fault(fault.address, kAccess[static_cast<unsigned>(fault.access)],
                              reinterpret_cast<const void*>(fault.pc));
}

void print_heap_line(void*, const char* line) {
    print("%s\n", line);
}

// A small demonstration workload on the default heap, so the boot report shows size classes
// and a large block in use; everything is freed again before the tests run.
void print_heap_report_with_sample(Heap& heap) {
    constexpr size_t kSizes[] = {16, 24, 48, 100, 256, 700, 1024, 4000, 8192, 20000, 300000};
    void* blocks[sizeof(kSizes) / sizeof(kSizes[0])][4] = {};
    for (size_t i = 0; i < sizeof(kSizes) / sizeof(kSizes[0]); ++i) {
        for (void*& block : blocks[i]) {
            block = heap_allocate(heap, kSizes[i]);
        }
    }
    print("heap: report with a sample of %zu blocks live:\n", sizeof(blocks) / sizeof(void*));
    heap_report(heap, print_heap_line, nullptr);
    for (auto& row : blocks) {
        for (void* block : row) {
            heap_free(heap, block);
        }
    }
}

// Applies the command line's heap options to the default heap and says what it did.
void configure_default_heap(Heap& heap, const HeapBootOptions& options) {
    static constexpr const char* kLevelNames[] = {"off", "report", "abort"};
    constexpr uint32_t kGuardSlots = 63;
    describe_heap_boot_option_errors(options, print_heap_line, nullptr);
    if (options.level == CheckLevel::Off) {
        return;
    }
    if (!heap_set_check_level(heap, options.level)) {
        print("heap: checked mode is compiled out (BEDROCK_CHECKED=OFF): level stays off\n");
        return;
    }
    print("heap: checked mode, level %s\n", kLevelNames[static_cast<unsigned>(options.level)]);
    if (options.guard_sample_interval == 0) {
        return;
    }
    if (heap_enable_guard_pages(heap,
                                GuardPageOptions{kGuardSlots, options.guard_sample_interval})) {
        print("heap: guard pages for 1 in every %u checked allocations (%u slots)\n",
              options.guard_sample_interval, kGuardSlots);
    } else {
        print("heap: guard pages unavailable (no pages for the pool, or page access cannot "
              "change)\n");
    }
}

} // namespace

PageFrameAllocator& page_frame_allocator() {
    return g_page_frame_allocator;
}

void bring_up_allocators(const PhysRange* usable, size_t count, const HeapBootOptions& options) {
    const uint64_t start = arch::nanoseconds();
    if (!g_page_frame_allocator.init(usable, count)) {
        panic("pfa: cannot start: it refused the memory map (the report above says why)");
    }
    const uint64_t elapsed = arch::nanoseconds() - start;
    print_page_frame_report(g_page_frame_allocator, elapsed);
    const PageFrameCheck check = g_page_frame_allocator.check();
    if (!check.ok) {
        panic("pfa: check failed after start-up: %s at 0x%lx", check.failure, check.address);
    }
    Heap* heap = heap_create(g_page_frame_allocator);
    if (heap == nullptr) {
        panic("heap: cannot create the default heap: the page frame allocator is empty");
    }
    configure_default_heap(*heap, options);
    set_default_heap(heap);
    set_fault_explainer(explain_heap_fault);
    print_heap_report_with_sample(*heap);
}

} // namespace bedrock::kernel
