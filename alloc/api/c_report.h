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

[[nodiscard]] inline bedrock_error_report to_c(const ErrorReport& report) {
    bedrock_error_report converted{};
    converted.kind = static_cast<bedrock_error_kind>(report.kind);
    converted.component = report.component;
    converted.address = report.address;
    converted.size = report.size;
    converted.call_site = report.call_site;
    converted.detail = report.detail;
    converted.block = report.block;
    converted.offset = report.offset;
    for (unsigned i = 0; i < kCallTraceDepth; ++i) {
        converted.allocated[i] = report.allocated.frames[i];
        converted.freed[i] = report.freed.frames[i];
    }
    return converted;
}

[[nodiscard]] inline ErrorReport from_c(const bedrock_error_report& report) {
    ErrorReport converted{};
    converted.kind = static_cast<ErrorKind>(report.kind);
    converted.component = report.component;
    converted.address = report.address;
    converted.size = report.size;
    converted.call_site = report.call_site;
    converted.detail = report.detail;
    converted.block = report.block;
    converted.offset = report.offset;
    for (unsigned i = 0; i < kCallTraceDepth; ++i) {
        converted.allocated.frames[i] = report.allocated[i];
        converted.freed.frames[i] = report.freed[i];
    }
    return converted;
}

} // namespace bedrock::c_interface
