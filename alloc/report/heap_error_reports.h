// SPDX-License-Identifier: MIT
// The heap's ErrorReports, built in one place so that every report of a kind carries the same
// fields (bedrock/error_report.h says what each field means per kind).
#pragma once

#include <stdint.h>

#include "bedrock/error_report.h"

namespace bedrock::heap {

// A report about a pointer, with the block it points into when known (no call traces: the
// block is unchecked, or none).
[[nodiscard]] inline ErrorReport misuse_report(ErrorKind kind, uintptr_t address,
                                               const char* detail, const void* call_site,
                                               uintptr_t block = 0, uint64_t size = 0) {
    return ErrorReport{kind,      "heap", address, size,
                       call_site, detail, block,   block != 0 ? address - block : 0,
                       {},        {}};
}

} // namespace bedrock::heap
