// SPDX-License-Identifier: MIT
// Conversions between bedrock::ErrorReport and the C interface's bedrock_error_report, field by
// field (the layouts may differ), for c_bindings.cpp and c_platform.cpp. Inline, so the C
// platform adapter's archive needs nothing from libbedrock beyond the hooks' callers.
#pragma once

#include "bedrock/bedrock.h"
#include "bedrock/error_report.h"

namespace bedrock::c_interface {

static_assert(BEDROCK_CALL_TRACE_DEPTH == kCallTraceDepth);
static_assert(static_cast<int>(BEDROCK_ERROR_HEAP_IN_USE) ==
              static_cast<int>(ErrorKind::HeapInUse));
static_assert(static_cast<int>(BEDROCK_ERROR_NULL_HANDLE) ==
              static_cast<int>(ErrorKind::NullHandle));

// A report's call trace as an array, in either layout.
inline const void** trace_frames(CallTrace& trace) {
    return trace.frames;
}
inline const void* const* trace_frames(const CallTrace& trace) {
    return trace.frames;
}
inline const void** trace_frames(const void* (&frames)[kCallTraceDepth]) {
    return frames;
}
inline const void* const* trace_frames(const void* const (&frames)[kCallTraceDepth]) {
    return frames;
}

// Copies every field of `from` into `to`, name by name: one template for both directions.
template <class To, class From>
[[nodiscard]] To convert_report(const From& from) {
    To to{};
    to.kind = static_cast<decltype(to.kind)>(from.kind);
    to.component = from.component;
    to.address = from.address;
    to.size = from.size;
    to.call_site = from.call_site;
    to.detail = from.detail;
    to.block = from.block;
    to.offset = from.offset;
    for (unsigned i = 0; i < kCallTraceDepth; ++i) {
        trace_frames(to.allocated)[i] = trace_frames(from.allocated)[i];
        trace_frames(to.freed)[i] = trace_frames(from.freed)[i];
    }
    return to;
}

[[nodiscard]] inline bedrock_error_report to_c(const ErrorReport& report) {
    return convert_report<bedrock_error_report>(report);
}

[[nodiscard]] inline ErrorReport from_c(const bedrock_error_report& report) {
    return convert_report<ErrorReport>(report);
}

} // namespace bedrock::c_interface
