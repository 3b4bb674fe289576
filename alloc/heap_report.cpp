// Heap statistics: the snapshot (each lock taken in turn, so totals are consistent per class,
// not across classes) and the printable report. Formats numbers itself: no printf here.
#include "bedrock/heap.h"
#include "heap_state.h"

namespace bedrock {
namespace {

// A line being built in a fixed buffer; text beyond the buffer is cut off.
class Line {
public:
    Line& text(const char* text) {
        while (*text != '\0' && m_length + 1 < sizeof(m_buffer)) {
            m_buffer[m_length++] = *text++;
        }
        m_buffer[m_length] = '\0';
        return *this;
    }
    // `value` in decimal, right-aligned in `width` columns.
    Line& number(uint64_t value, unsigned width = 0) {
        char digits[21];
        unsigned count = 0;
        do {
            digits[count++] = static_cast<char>('0' + value % 10);
            value /= 10;
        } while (value != 0);
        for (unsigned pad = count; pad < width; ++pad) {
            text(" ");
        }
        char reversed[21];
        for (unsigned i = 0; i < count; ++i) {
            reversed[i] = digits[count - 1 - i];
        }
        reversed[count] = '\0';
        return text(reversed);
    }
    void write(HeapReportWriter writer, void* context) const { writer(context, m_buffer); }

private:
    char m_buffer[128] = {};
    size_t m_length = 0;
};

} // namespace

HeapStatistics heap_statistics(Heap& heap) {
    HeapStatistics statistics = {};
    for (unsigned index = 0; index < heap::kSizeClassCount; ++index) {
        const SizeClassStatistics cls = heap.classes[index].statistics();
        statistics.classes[index] = cls;
        statistics.bytes_requested += cls.bytes_requested;
        statistics.bytes_in_use += cls.blocks_in_use * cls.block_size;
        statistics.blocks_in_use += cls.blocks_in_use;
    }
    const heap::LargeBlocks::Totals large = heap.large.totals();
    statistics.bytes_requested += large.bytes_requested;
    statistics.bytes_in_use += large.bytes_in_use;
    statistics.blocks_in_use += large.blocks;
    statistics.large_blocks = large.blocks;
    statistics.large_pages = large.pages;
    statistics.large_allocations = large.allocations;
    statistics.pages_held = heap.source.pages_held();
    statistics.peak_pages_held = heap.source.peak_pages_held();
    return statistics;
}

void heap_report(Heap& heap, HeapReportWriter write, void* context) {
    const HeapStatistics s = heap_statistics(heap);
    Line()
        .text("heap: ")
        .number(s.blocks_in_use)
        .text(" blocks, ")
        .number(s.bytes_in_use)
        .text(" bytes in use; ")
        .number(s.bytes_requested)
        .text(" bytes requested since creation")
        .write(write, context);
    Line()
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
    Line().text("heap:  class  slabs  in use    peak  allocations").write(write, context);
    for (const SizeClassStatistics& cls : s.classes) {
        if (cls.allocations == 0 && cls.slabs == 0) {
            continue;
        }
        Line()
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
