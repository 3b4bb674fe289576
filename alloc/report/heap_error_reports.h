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

// A report of the heap's own metadata found damaged at `address` (`count`: how many places, or
// a size, as the detail says), with no pointer of the caller's to name; `call_site`: the call
// that found it, where known (heap_check()'s caller).
[[nodiscard]] inline ErrorReport metadata_damage_report(uintptr_t address, uint64_t count,
                                                        const char* detail,
                                                        const void* call_site = nullptr) {
    return ErrorReport{
        ErrorKind::CorruptMetadata, "heap", address, count, call_site, detail, 0, 0, {}, {}};
}

} // namespace bedrock::heap
