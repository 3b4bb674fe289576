// SPDX-License-Identifier: MIT
// The calling host thread's CPU slot (cpu_slots.cpp owns the slots): what current_cpu() returns
// on the host, readable inline by hosted_cpu_hooks.h and out of line by cpu_slots.cpp.
// Invariant: t_slot is kUnassigned until the thread's first call, then its slot (< kMaxCpus) or
// kNoCpuSlot, for the rest of the thread's life.
#pragma once

namespace bedrock::platform::hosted_slots {

inline constexpr unsigned kUnassigned = ~0u;

// A plain thread-local (no constructor, no destructor), so reading it neither allocates nor
// registers anything: the first current_cpu() may come from inside the preload's own first
// malloc, where an allocation would recurse. Initial-exec: the preload library is loaded at
// start-up, never by dlopen().
[[gnu::tls_model("initial-exec")]] extern constinit thread_local unsigned t_slot;

// Gives the calling thread a slot (its first call) and returns it.
[[gnu::noinline]] unsigned take_slot();

// take_slot() for the inline hook: once per thread, but a call there would make every malloc and
// free that inlines the hook save the registers the call may clobber, on every call. With clang
// on x86-64 it saves every register it changes (XMM included) instead, so its callers keep their
// values in any register across it.
#if defined(__clang__) && defined(__x86_64__)
[[gnu::noinline, gnu::no_caller_saved_registers]] unsigned take_slot_keeping_registers();
#else
[[gnu::always_inline]] inline unsigned take_slot_keeping_registers() {
    return take_slot();
}
#endif

[[gnu::always_inline]] inline unsigned calling_thread_slot() {
    const unsigned slot = t_slot;
    return slot != kUnassigned ? slot : take_slot_keeping_registers();
}

} // namespace bedrock::platform::hosted_slots
