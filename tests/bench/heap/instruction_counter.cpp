// SPDX-License-Identifier: MIT
// Instruction counting by single-stepping with the trap flag (see instruction_counter.h).
//
// State machine of one count, driven by the SIGTRAP handler (one trap after each instruction):
//   Armed     until the trap whose next instruction is `function`'s first: the call was made;
//             remember the stack pointer there (it points at the return address)
//   Counting  one per trap; the trap after the `ret` that pops that return address (the next
//             instruction is the return address, the stack pointer 8 bytes higher) ends it, and
//             so does the cap: TF is cleared in the saved context, so the program runs on at
//             full speed when the handler returns
//   Done
// The handler itself runs with TF clear (the kernel clears it on signal delivery, and sigreturn
// restores the interrupted context's flags).
#include "instruction_counter.h"

#if defined(__x86_64__) && defined(__linux__)

#include <signal.h>
#include <string.h>
#include <ucontext.h>

namespace bench {
namespace {

constexpr uint64_t kTrapFlag = uint64_t{1} << 8;

enum class Phase : int { Idle, Armed, Counting, Done };

struct CountState {
    uintptr_t function;
    uintptr_t return_address;
    uintptr_t entry_stack;
    uint64_t instructions;
    uint64_t cap;
    uintptr_t* trail;
    uint64_t trail_capacity;
    uintptr_t counted; // the instruction the next trap follows
    Phase phase;
};

// Shared with the signal handler, which interrupts the same thread.
volatile CountState g_state;

void on_trap(int, siginfo_t*, void* context) {
    auto* registers = static_cast<ucontext_t*>(context)->uc_mcontext.gregs;
    const auto rip = static_cast<uintptr_t>(registers[REG_RIP]);
    const auto rsp = static_cast<uintptr_t>(registers[REG_RSP]);
    bool stop = false;
    if (g_state.phase == Phase::Armed) {
        if (rip == g_state.function) {
            g_state.phase = Phase::Counting;
            g_state.counted = rip;
            g_state.entry_stack = rsp;
            g_state.return_address = *reinterpret_cast<const uintptr_t*>(rsp);
        }
    } else if (g_state.phase == Phase::Counting) {
        if (g_state.instructions < g_state.trail_capacity) {
            g_state.trail[g_state.instructions] = g_state.counted;
        }
        g_state.counted = rip;
        g_state.instructions = g_state.instructions + 1;
        if (rip == g_state.return_address && rsp == g_state.entry_stack + 8) {
            g_state.phase = Phase::Done;
            stop = true;
        } else if (g_state.instructions >= g_state.cap) {
            stop = true; // phase stays Counting: incomplete
        }
    } else {
        stop = true; // a stray trap flag
    }
    if (stop) {
        registers[REG_EFL] =
            static_cast<greg_t>(static_cast<uint64_t>(registers[REG_EFL]) & ~kTrapFlag);
    }
}

bool install_handler() {
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_sigaction = on_trap;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    return sigaction(SIGTRAP, &action, nullptr) == 0;
}

// Kept out of line so that the trap flag is set and cleared around an opaque call.
__attribute__((noinline)) void run_with_trap_flag(void (*call)(void*), void* context) {
    asm volatile("pushfq\n\torq $0x100, (%%rsp)\n\tpopfq" ::: "memory", "cc");
    call(context);
    // Normally already clear (the handler clears it when the function returns).
    asm volatile("pushfq\n\tandq $~0x100, (%%rsp)\n\tpopfq" ::: "memory", "cc");
}

// The self-test's function: a fixed, known instruction count (a loop the compiler must keep).
__attribute__((noinline)) void twenty_adds(void* context) {
    auto* value = static_cast<volatile uint64_t*>(context);
    for (int i = 0; i < 20; ++i) {
        *value = *value + 1;
    }
}

void call_twenty_adds(void* context) {
    twenty_adds(context);
}

} // namespace

CallCount count_call(uintptr_t function, void (*call)(void*), void* context, uint64_t cap) {
    g_state.function = function;
    g_state.instructions = 0;
    g_state.cap = cap;
    g_state.phase = Phase::Armed;
    run_with_trap_flag(call, context);
    const bool complete = g_state.phase == Phase::Done;
    g_state.phase = Phase::Idle;
    return CallCount{g_state.instructions, complete};
}

void record_trail(uintptr_t* trail, uint64_t capacity) {
    g_state.trail = trail;
    g_state.trail_capacity = trail != nullptr ? capacity : 0;
}

bool instruction_counter_works() {
    static const bool works = [] {
        if (!install_handler()) {
            return false;
        }
        // Two counts of the same call must agree, and a loop of 20 iterations takes at least
        // 20 instructions.
        volatile uint64_t value = 0;
        const auto function = reinterpret_cast<uintptr_t>(&twenty_adds);
        const CallCount first =
            count_call(function, call_twenty_adds, const_cast<uint64_t*>(&value), 100000);
        const CallCount second =
            count_call(function, call_twenty_adds, const_cast<uint64_t*>(&value), 100000);
        return first.complete && second.complete && first.instructions == second.instructions &&
               first.instructions >= 20 && value == 40;
    }();
    return works;
}

} // namespace bench

#else

namespace bench {

bool instruction_counter_works() {
    return false;
}

CallCount count_call(uintptr_t, void (*)(void*), void*, uint64_t) {
    return CallCount{};
}

void record_trail(uintptr_t*, uint64_t) {}

} // namespace bench

#endif
