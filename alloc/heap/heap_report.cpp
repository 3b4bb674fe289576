// SPDX-License-Identifier: MIT
// Heap statistics: the snapshot (each lock taken in turn, so totals are consistent per class,
// not across classes; the CPU caches' counters read as they are, so exact while no CPU is
// inside the heap) and the printable report.
#include "bedrock/heap.h"
#include "heap/heap_state.h"
#include "support/text_line.h"

namespace bedrock {

HeapStatistics heap_statistics(Heap& heap) {
    HeapStatistics statistics = {};
    for (unsigned index = 0; index < heap::kSizeClassCount; ++index) {
        // Blocks in CPU caches are free; what the CPUs handed out from them is allocated. A refill
        // raises the class's count (under its lock) before the magazine's, and a flush lowers the
        // magazine's first: the caches are read before and after the class, and the lesser count
        // taken, so a block live throughout is never counted free (a refill or flush between
        // the reads counts its blocks as in use for a moment instead; heap_destroy() relies on
        // it).
        const heap::CpuCaches::ClassTotals before = heap.cpus.totals(index);
        SizeClassStatistics cls = heap.classes[index].statistics();
        const heap::CpuCaches::ClassTotals cpus = heap.cpus.totals(index);
        const uint64_t cached = before.cached < cpus.cached ? before.cached : cpus.cached;
        cls.blocks_in_use -= cached < cls.blocks_in_use ? cached : cls.blocks_in_use;
        cls.allocations += cpus.allocations;
        cls.bytes_requested += cpus.bytes_requested;
        statistics.classes[index] = cls;
        statistics.bytes_requested += cls.bytes_requested;
        statistics.bytes_in_use += cls.blocks_in_use * cls.block_size;
        statistics.blocks_in_use += cls.blocks_in_use;
    }
    const heap::Arenas::UseTotals medium = heap.arenas.totals(heap::BlockUse::Medium);
    const heap::Arenas::UseTotals checked = heap.arenas.totals(heap::BlockUse::Checked);
    const heap::LargeRuns::Totals large = heap.large.totals();
    const heap::CheckedLayer::Totals layer = heap.checked.totals();
    statistics.medium_blocks = medium.blocks;
    statistics.medium_bytes = medium.bytes;
    statistics.medium_allocations = medium.allocations;
    statistics.large_blocks = large.blocks;
    statistics.large_pages = large.pages;
    statistics.large_allocations = large.allocations;
    statistics.reclaims = __atomic_load_n(&heap.reclaims, __ATOMIC_RELAXED);
    statistics.bytes_requested +=
        medium.bytes_requested + checked.bytes_requested + large.bytes_requested;
    // The quarantine's totals and the arenas' are read under different locks: a block allocated
    // after the one read and freed into the quarantine before the other is counted as
    // quarantined and not as held, so the difference is cut at 0 (as the classes' is above).
    const uint64_t bytes_held =
        medium.bytes + checked.bytes + large.pages * kPageSize + layer.guarded_bytes;
    const uint64_t blocks_held =
        medium.blocks + checked.blocks + large.blocks + layer.guarded_blocks;
    statistics.bytes_in_use +=
        bytes_held - (layer.quarantined_bytes < bytes_held ? layer.quarantined_bytes : bytes_held);
    statistics.blocks_in_use +=
        blocks_held -
        (layer.quarantined_blocks < blocks_held ? layer.quarantined_blocks : blocks_held);
    statistics.quarantined_blocks = layer.quarantined_blocks;
    statistics.quarantined_bytes = layer.quarantined_bytes;
    statistics.pages_held = heap.held.pages();
    statistics.peak_pages_held = heap.held.peak();
    return statistics;
}

// Each line holds at most 159 characters (TextLine): at most four figures go on one line, so
// that every figure fits whole even at 20 digits (the longest line: 67 characters of text and
// four figures).
void heap_report(Heap& heap, HeapReportWriter write, void* context) {
    if (write == nullptr) {
        return;
    }
    const HeapStatistics s = heap_statistics(heap);
    TextLine()
        .text("heap: ")
        .number(s.blocks_in_use)
        .text(" blocks, ")
        .number(s.bytes_in_use)
        .text(" bytes in use; ")
        .number(s.bytes_requested)
        .text(" bytes requested since creation")
        .write(write, context);
    TextLine()
        .text("heap: pages held ")
        .number(s.pages_held)
        .text(" (peak ")
        .number(s.peak_pages_held)
        .text("); medium blocks ")
        .number(s.medium_blocks)
        .text(", ")
        .number(s.medium_bytes)
        .text(" bytes")
        .write(write, context);
    TextLine()
        .text("heap: large blocks ")
        .number(s.large_blocks)
        .text(" in ")
        .number(s.large_pages)
        .text(" pages, ")
        .number(s.large_allocations)
        .text(" allocated since creation; ")
        .number(s.reclaims)
        .text(" reclaims")
        .write(write, context);
    if (s.quarantined_blocks != 0) {
        TextLine()
            .text("heap: quarantine ")
            .number(s.quarantined_blocks)
            .text(" freed blocks, ")
            .number(s.quarantined_bytes)
            .text(" bytes")
            .write(write, context);
    }
    TextLine().text("heap:  class  slabs  in use    peak  allocations").write(write, context);
    for (const SizeClassStatistics& cls : s.classes) {
        if (cls.allocations == 0 && cls.slabs == 0) {
            continue;
        }
        TextLine()
            .text("heap: ")
            .number(cls.block_size, 6)
            .number(cls.slabs, 7)
            .number(cls.blocks_in_use, 8)
            .number(cls.peak_blocks_in_use, 8)
            .number(cls.allocations, 13)
            .write(write, context);
    }
}

} // namespace bedrock
