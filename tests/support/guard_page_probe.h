// SPDX-License-Identifier: MIT
// Touching memory that may lie behind a guard page, for the tests of checked mode's guard pages
// (host and hosted): a SIGSEGV handler asks Bedrock to explain the fault (heap_explain_fault)
// and jumps back to the test, which learns whether the access faulted and whether Bedrock
// recognised the address. One probe at a time (the handler's state is global).
#pragma once

#include <setjmp.h>
#include <signal.h>

#include <cstdint>

#include "bedrock/heap_checks.h"

namespace bedrock::test {

struct ProbeResult {
    bool faulted;   // the access raised SIGSEGV
    bool explained; // heap_explain_fault() took the address as a guard-page pool's
};

inline sigjmp_buf g_probe_return;
inline bool g_probe_explained = false;
inline MemoryAccess g_probe_access = MemoryAccess::Unknown;

inline void explain_probe_fault(int, siginfo_t* info, void*) {
    g_probe_explained =
        heap_explain_fault(reinterpret_cast<uintptr_t>(info->si_addr), g_probe_access, nullptr);
    siglongjmp(g_probe_return, 1);
}

// Reads (`access` Read or Unknown) or writes (Write) the byte at `address`; `access` is also what
// the fault is explained as.
inline ProbeResult probe(volatile unsigned char* address, MemoryAccess access) {
    struct sigaction action = {}, previous = {};
    action.sa_sigaction = explain_probe_fault;
    action.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &action, &previous);
    g_probe_explained = false;
    g_probe_access = access;
    bool faulted = true;
    if (sigsetjmp(g_probe_return, 1) == 0) {
        if (access == MemoryAccess::Write) {
            *address = 1;
        } else {
            static_cast<void>(*address);
        }
        faulted = false;
    }
    sigaction(SIGSEGV, &previous, nullptr);
    return ProbeResult{faulted, g_probe_explained};
}

} // namespace bedrock::test
