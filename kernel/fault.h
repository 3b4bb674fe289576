// SPDX-License-Identifier: MIT
// FaultReport: a CPU exception, described portably. The arch exception handlers fill one and
// call report_fault(), which prints it in one format on every architecture and ends the run:
// a fault never hangs and never returns to the faulting code.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace bedrock::kernel {

// What the faulting instruction was doing, when the CPU says (x86-64: page faults; AArch64:
// data and instruction aborts).
enum class FaultAccess { Unknown, Read, Write, Execute };

struct FaultReport {
    const char* description; // "page fault", "synchronous abort: data abort", ...
    uint64_t vector;         // x86-64 vector number; AArch64 vector table slot
    uint64_t syndrome;       // x86-64 error code; AArch64 ESR_EL1
    uint64_t address;        // faulting data address (CR2 / FAR_EL1), when meaningful
    bool address_valid;
    FaultAccess access;
    bool resumable; // false: the CPU state is lost (x86-64 double fault); never caught
    uint64_t pc;    // RIP / ELR_EL1
    uint64_t sp;
    const char* const* register_names; // register_count names, printed with registers
    const uint64_t* registers;
    size_t register_count;
};

// Lets the fault explainer (trap.h) speak first, prints "fault: <description> ..." with every
// field and register, then exits with failure - or, inside run_catching_traps(), resumes there.
[[noreturn]] void report_fault(const FaultReport& fault);

} // namespace bedrock::kernel
