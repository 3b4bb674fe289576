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

// A pointer inside `header`'s block, not at its start: a block already freed (quarantined, or a
// guarded one whose page is inaccessible) says so and carries the free's trace too.
[[nodiscard]] inline ErrorReport interior_report(const CheckedBlock& header, uintptr_t address,
                                                 const void* call_site) {
    const bool freed = header.state == BlockState::Quarantined;
    const bool guarded = !is_in_band(header);
    const char* detail =
        freed ? (guarded ? "points inside a guarded block already freed, not at its start"
                         : "points inside a block already freed (still in quarantine), not at "
                           "its start")
              : (guarded ? "points inside a guarded block, not at its start"
                         : "points inside a block, not at its start");
    ErrorReport report =
        block_report(ErrorKind::InteriorPointer, address, header,
                     address - reinterpret_cast<uintptr_t>(header.block), detail, call_site);
    if (freed) {
        report.freed = header.freed;
    }
    return report;
}

// A free of `header`'s live block by `freed_by`, a family of calls other than the one that
// allocated it (header.family): the detail names both. The block is freed all the same.
[[nodiscard]] inline ErrorReport mismatch_report(const CheckedBlock& header, CallFamily freed_by,
                                                 const void* call_site) {
    constexpr unsigned kFamilies = 3;
    // [allocated by][freed by]; the diagonal is no mismatch and never reported.
    constexpr const char* kDetails[kFamilies][kFamilies] = {
        {"", "allocated by the malloc family, freed by operator delete",
         "allocated by the malloc family, freed by operator delete[]"},
        {"allocated by operator new, freed by free() or realloc()", "",
         "allocated by operator new, freed by operator delete[]"},
        {"allocated by operator new[], freed by free() or realloc()",
         "allocated by operator new[], freed by operator delete", ""},
    };
    ErrorReport report = block_report(
        ErrorKind::DeallocationMismatch, reinterpret_cast<uintptr_t>(header.block), header, 0,
        kDetails[static_cast<unsigned>(header.family)][static_cast<unsigned>(freed_by)], call_site);
    report.freed = header.freed;
    return report;
}

} // namespace bedrock::heap
