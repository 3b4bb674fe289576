// SPDX-License-Identifier: MIT
// Checked mode's reports about a block it tracks, built in one place so that every report of a
// kind carries the same fields (bedrock/error_report.h says what each field means per kind).
#pragma once

#include <stdint.h>

#include "bedrock/error_report.h"
#include "checked/checked_block.h"

namespace bedrock::heap {

// A report about a checked block: its size, its allocation trace, and its free trace for a use
// after free or a double free.
[[nodiscard]] inline ErrorReport block_report(ErrorKind kind, uintptr_t address,
                                              const CheckedBlock& header, uint64_t offset,
                                              const char* detail, const void* call_site) {
    const bool freed = kind == ErrorKind::UseAfterFree || kind == ErrorKind::DoubleFree;
    return ErrorReport{kind,
                       "heap",
                       address,
                       header.size,
                       call_site,
                       detail,
                       reinterpret_cast<uintptr_t>(header.block),
                       offset,
                       header.allocated,
                       freed ? header.freed : CallTrace{}};
}

} // namespace bedrock::heap
