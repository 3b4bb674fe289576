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

[[gnu::always_inline]] inline unsigned calling_thread_slot() {
    const unsigned slot = t_slot;
    return slot != kUnassigned ? slot : take_slot();
}

} // namespace bedrock::platform::hosted_slots
