// SPDX-License-Identifier: MIT
// libbedrock-malloc.so's SIGSEGV handler, installed when guard pages are on (BEDROCK_GUARD with
// a check level): a guarded block's overflow into its guard page, or any access to a freed one,
// faults on the instruction itself, and the handler has heap_explain_fault() report the block
// (buffer-overflow / use-after-free with its call traces) before the fault ends the program.
//
// After explaining, the handler puts back the disposition it replaced (the program's handler,
// or SIG_DFL) and returns: the faulting instruction runs again and faults again, now into that
// disposition, so the program dies by SIGSEGV as it would have without the preload, or its own
// handler runs. Later faults go straight to that disposition (threads faulting at the same
// time may each report theirs). A SIGSEGV sent by kill() or sigqueue() (no faulting instruction
// to run again) is raised again once the disposition is back. A program that installs its own
// SIGSEGV handler after the heap started (the heap starts at the first allocation, usually
// before main()) replaces this one, and its faults are not explained: its handler may call
// heap_explain_fault() itself.
//
// What the handler may do: the fault may come anywhere, inside the allocator too (realloc()
// copying from a freed guarded block) with a heap lock held. heap_explain_fault() takes no lock
// (it walks the guard-page pools' list and reads the slot's header, metadata that stays mapped
// for the heap's life) and reports through platform::report_error (reports.cpp: write(2) from
// stack buffers, no allocation, no lock), so it can neither deadlock nor recurse into the heap.
// A header being rewritten by another thread at that moment may give a report with a stale
// field; the fault itself is still delivered. The handler keeps errno.
//
// Stack: SA_ONSTACK, so that a thread with an alternate signal stack (one the program set up,
// e.g. to catch its own stack overflows) runs the handler there. The preload sets up no stack
// of its own: it would be one thread's only, and a program that looks for an existing one
// (sigaltstack) would find it and use a stack it did not size. A stack overflow on a thread
// without one is not delivered to any handler and ends the program by SIGSEGV, as before.
#include <errno.h>
#include <signal.h>
#include <ucontext.h>

#include "bedrock/heap_checks.h"
#include "preload/preload_heap.h"

namespace bedrock::preload {
namespace {

struct sigaction g_replaced = {}; // written once by install_fault_handler(), before it is live

struct Fault {
    MemoryAccess access;
    const void* pc;
};

// What the faulting instruction did and where it is, as far as the machine context says.
Fault fault_of(const void* machine_context) {
    const auto& context = *static_cast<const ucontext_t*>(machine_context);
#if defined(__x86_64__)
    // The page fault's error code: bit 1 set for a write.
    const bool write = (context.uc_mcontext.gregs[REG_ERR] & 2) != 0;
    return Fault{write ? MemoryAccess::Write : MemoryAccess::Read,
                 reinterpret_cast<const void*>(context.uc_mcontext.gregs[REG_RIP])};
#elif defined(__aarch64__)
    return Fault{MemoryAccess::Unknown, reinterpret_cast<const void*>(context.uc_mcontext.pc)};
#else
    static_cast<void>(context);
    return Fault{MemoryAccess::Unknown, nullptr};
#endif
}

void explain_fault(int signal, siginfo_t* info, void* machine_context) {
    const int saved_errno = errno;
    const bool from_the_kernel = info->si_code > 0;
    if (from_the_kernel) {
        const Fault fault = fault_of(machine_context);
        static_cast<void>(
            heap_explain_fault(reinterpret_cast<uintptr_t>(info->si_addr), fault.access, fault.pc));
    }
    sigaction(SIGSEGV, &g_replaced, nullptr);
    if (!from_the_kernel) {
        raise(signal); // pending (blocked in the handler) until the handler returns
    }
    errno = saved_errno;
}

} // namespace

void install_fault_handler() {
    struct sigaction action = {};
    action.sa_sigaction = explain_fault;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &g_replaced); // fails only for a bad signal number or address
}

} // namespace bedrock::preload
