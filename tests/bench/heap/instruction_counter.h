// SPDX-License-Identifier: MIT
// Exact instruction counts of single function calls, for the worst-case figures of heap_limits.
//
// Method: x86-64 single-stepping inside the process. count_call() sets the trap flag (TF) in
// RFLAGS; from then on the CPU raises a debug trap after every instruction, which Linux delivers
// as SIGTRAP to this process's handler. The handler ignores the instructions before the call
// reaches `function` (the caller's argument set-up), counts every instruction from the first one
// of `function` to the `ret` that leaves it (recognised by the return address and the stack
// pointer, so a tail call out of `function` is followed to the end), then clears TF. The count is
// exact and deterministic: it does not depend on the machine's load, on interrupts or on a
// hardware performance counter (perf_event_open has no PMU in most VMs). A rep-prefixed string
// instruction traps, and so counts, once per iteration. Checked against callgrind: a
// heap_allocate(16) and a heap_free of it count 117 and 139 both ways.
//
// Cost: one signal per instruction, 7-10 microseconds each in a VM (100 000-150 000 instructions
// a second): count only what must be counted.
//
// Everything `function` executes is counted, libc functions it calls included (the heap calls
// memset): link with -z now, or the first call of such a function in a process also counts the
// dynamic linker's lazy binding.
//
// Preconditions: one thread; nothing else in the process uses SIGTRAP; `function` is entered at
// most once per count_call() and executes no system call that blocks.
#pragma once

#include <stdint.h>

namespace bench {

struct CallCount {
    uint64_t instructions = 0; // from the first instruction of the function to its return
    bool complete = false;     // false: the call never reached the function, or passed the cap
};

// Whether counting works here (x86-64 Linux, and a test count gives the expected figure).
// Installs the SIGTRAP handler on first use.
[[nodiscard]] bool instruction_counter_works();

// Counts the instructions that `function` (its entry address) executes while `call(context)`
// runs. A call longer than `cap` instructions is counted up to the cap, then runs uncounted
// (complete = false).
CallCount count_call(uintptr_t function, void (*call)(void* context), void* context, uint64_t cap);

// From now on, count_call() also stores the address of each counted instruction, the first
// `capacity` of a call, in trail[0..] (nullptr: none), for a profile of where a call went.
void record_trail(uintptr_t* trail, uint64_t capacity);

} // namespace bench
