// SPDX-License-Identifier: MIT
// Error kinds' names and the report text format (bedrock/error_report.h).
#include "bedrock/error_report.h"

#include "support/text_line.h"

namespace bedrock {

const char* to_string(ErrorKind kind) {
    switch (kind) {
    case ErrorKind::FreeOutsideManagedMemory:
        return "free-outside-managed-memory";
    case ErrorKind::FreeMisaligned:
        return "free-misaligned";
    case ErrorKind::FreeWrongOrder:
        return "free-wrong-order";
    case ErrorKind::ReserveConflict:
        return "reserve-conflict";
    case ErrorKind::DoubleFree:
        return "double-free";
    case ErrorKind::NotAllocated:
        return "not-allocated";
    case ErrorKind::InteriorPointer:
        return "interior-pointer";
    case ErrorKind::MisalignedPointer:
        return "misaligned-pointer";
    case ErrorKind::ForeignHeap:
        return "foreign-heap";
    case ErrorKind::BufferOverflow:
        return "buffer-overflow";
    case ErrorKind::BufferUnderflow:
        return "buffer-underflow";
    case ErrorKind::UseAfterFree:
        return "use-after-free";
    case ErrorKind::CorruptMetadata:
        return "corrupt-metadata";
    case ErrorKind::HeapInUse:
        return "heap-in-use";
    case ErrorKind::RangeRefused:
        return "range-refused";
    case ErrorKind::DeallocationMismatch:
        return "deallocation-mismatch";
    case ErrorKind::SizeMismatch:
        return "size-mismatch";
    case ErrorKind::NullHandle:
        return "null-handle";
    }
    return "unknown";
}

namespace {

// The first line of a report: its start (component, kind, address: at most 66 characters) as a
// TextLine formats it, then the detail, whole. A TextLine alone (160 characters) cut the longest
// details the heap gives after a 64-bit address; the longest today is 182 characters, so this
// buffer holds every one with room to spare.
struct Headline {
    char text[320];
    size_t length;
};

void append_to_headline(void* context, const char* text) {
    auto& line = *static_cast<Headline*>(context);
    while (*text != '\0' && line.length + 1 < sizeof(line.text)) {
        line.text[line.length++] = *text++;
    }
    line.text[line.length] = '\0';
}

} // namespace

void write_error_report(const ErrorReport& report, LineWriter write, void* context) {
    if (write == nullptr) {
        return;
    }
    Headline headline = {{}, 0};
    TextLine()
        .text("bedrock: ")
        .text(report.component)
        .text(": ")
        .text(to_string(report.kind))
        .text(" at ")
        .hex(report.address)
        .text(": ")
        .write(append_to_headline, &headline);
    append_to_headline(&headline, report.detail);
    write(context, headline.text);
    if (report.block != 0) {
        TextLine()
            .text("bedrock:   block ")
            .hex(report.block)
            .text(", ")
            .number(report.size)
            .text(" bytes, offset ")
            .number(report.offset)
            .write(write, context);
    } else if (report.size != 0) {
        TextLine().text("bedrock:   size ").number(report.size).write(write, context);
    }
    if (report.call_site != nullptr) {
        TextLine().text("bedrock:   detected at ").hex(report.call_site).write(write, context);
    }
    if (!report.allocated.empty()) {
        TextLine().text("bedrock:   allocated at").trace(report.allocated).write(write, context);
    }
    if (!report.freed.empty()) {
        TextLine().text("bedrock:   freed at").trace(report.freed).write(write, context);
    }
}

} // namespace bedrock
