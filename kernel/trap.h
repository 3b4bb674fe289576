// SPDX-License-Identifier: MIT
// Trap recovery for in-kernel tests: run a piece of code that is expected to panic or to take a
// CPU exception (a guard-page fault, a level-abort report), and get the trap back as a value
// instead of ending the run.
//
// While run_catching_traps() runs its body, kernel::panic() and report_fault() record the trap,
// print it marked as caught, and resume at the point where run_catching_traps() saved the
// CPU's callee-saved state (arch_save_context / arch_resume_context, one small routine per
// architecture); the body's frames are abandoned. Outside it they end the run as always.
// One catch at a time, armed and caught on one CPU (any CPU): a trap on another CPU meanwhile
// ends the run, and arming a second catch anywhere panics.
#pragma once

#include <stddef.h>

#include "kernel/fault.h"

namespace bedrock::kernel {

enum class TrapKind { None, Panic, Fault };

struct Trap {
    TrapKind kind = TrapKind::None;
    char message[192] = {}; // panic: the message (cut to fit); fault: the description
    FaultReport fault = {}; // kind Fault: the report (its register pointers are not kept)
};

// Runs body(context) and returns TrapKind::None if it returns, or the trap that cut it short.
[[nodiscard]] Trap run_catching_traps(void (*body)(void*), void* context);

// While a catch is armed on the calling CPU: records the trap and resumes after the catch (never
// returns). Does nothing otherwise. Called by panic() and report_fault().
void resume_if_catching(TrapKind kind, const char* message, const FaultReport* fault);
// Whether a catch is armed on the calling CPU.
[[nodiscard]] bool catching_traps();

// A hook that may explain a fault before it is reported (the allocator bring-up sets one that
// asks the heap about guard pages); it returns true if it printed an explanation.
using FaultExplainer = bool (*)(const FaultReport& fault);
void set_fault_explainer(FaultExplainer explainer);
[[nodiscard]] FaultExplainer fault_explainer();

} // namespace bedrock::kernel
