// Heap statistics: the snapshot (each lock taken in turn, so totals are consistent per class,
// not across classes) and the printable report.
#include "bedrock/heap.h"
#include "heap/heap_state.h"
#include "support/text_line.h"

namespace bedrock {

HeapStatistics heap_statistics(Heap& heap) {
    HeapStatistics statistics = {};
    for (unsigned index = 0; index < heap::kSizeClassCount; ++index) {
        // Checked-mode slabs of a class count with the class.
        SizeClassStatistics cls = heap.classes[index].statistics();
        const SizeClassStatistics checked = heap.checked_classes[index].statistics();
        cls.slabs += checked.slabs;
        cls.blocks_in_use += checked.blocks_in_use;
        cls.peak_blocks_in_use += checked.peak_blocks_in_use;
        cls.allocations += checked.allocations;
        cls.bytes_requested += checked.bytes_requested;
        statistics.classes[index] = cls;
        statistics.bytes_requested += cls.bytes_requested;
        statistics.bytes_in_use += cls.blocks_in_use * cls.block_size;
        statistics.blocks_in_use += cls.blocks_in_use;
    }
    const heap::LargeBlocks::Totals large = heap.large.totals();
    statistics.bytes_requested += large.bytes_requested;
    statistics.bytes_in_use += large.bytes_in_use;
    statistics.blocks_in_use += large.blocks + heap.guards.live_blocks();
    if constexpr (kHeapChecksCompiled) {
        const heap::CheckedBlocks::QuarantineTotals quarantine = heap.checked.quarantine_totals();
        statistics.quarantined_blocks = quarantine.blocks;
        statistics.quarantined_bytes = quarantine.bytes;
        statistics.blocks_in_use -= quarantine.blocks;
        statistics.bytes_in_use -= quarantine.bytes;
    }
    statistics.large_blocks = large.blocks;
    statistics.large_pages = large.pages;
    statistics.large_allocations = large.allocations;
    statistics.pages_held = heap.source.pages_held();
    statistics.peak_pages_held = heap.source.peak_pages_held();
    return statistics;
}

void heap_report(Heap& heap, HeapReportWriter write, void* context) {
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
        .text("); large blocks ")
        .number(s.large_blocks)
        .text(" in ")
        .number(s.large_pages)
        .text(" pages, ")
        .number(s.large_allocations)
        .text(" allocated since creation")
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
