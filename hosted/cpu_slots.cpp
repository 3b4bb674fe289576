// SPDX-License-Identifier: MIT
// The CPU hooks of bedrock/platform.h for a host process (Bedrock::hosted, and the unit tests,
// fuzzing and benchmarks): each thread is a CPU. A thread takes the lowest free slot on its
// first current_cpu() and gives it back when it exits, so no two live threads share a slot; a
// thread that finds every slot taken, or that calls Bedrock after its slot was given back (a
// later thread-exit destructor freeing memory), gets kNoCpuSlot (Bedrock's shared, locked path).
// Before a slot goes back, the release hook (set_slot_release_hook) runs on its thread.
// Invariant: g_slot_taken[i] <=> exactly one live thread's t_slot is i.
// After fork() only the forking thread lives on: release_cpu_slots_after_fork() restores the
// invariant in the child.
// Host threads are never interrupted inside Bedrock (signal handlers must not allocate) and
// keep their slot for life, so the interrupt hooks have nothing to do.
#include <pthread.h>
#include <sched.h>

#include <atomic>

#include "bedrock/hosted.h"
#include "bedrock/hosted_cpu_slot.h"
#include "bedrock/platform.h"

namespace bedrock::platform {
namespace {

std::atomic<bool> g_slot_taken[kMaxCpus];

// The slot goes back when its thread exits through a pthread key's destructor, which glibc keeps
// in the thread itself for the first keys (pthread_setspecific allocates nothing there, unlike
// a thread_local object's exit registration, which calls calloc).
pthread_key_t g_release_key;
bool g_release_key_made = false; // written once, under g_release_key_once
pthread_once_t g_release_key_once = PTHREAD_ONCE_INIT;

std::atomic<hosted::SlotReleaseHook> g_release_hook{nullptr};

void release_slot(void* slot_plus_one) {
    const auto slot = static_cast<unsigned>(reinterpret_cast<uintptr_t>(slot_plus_one) - 1);
    if (const hosted::SlotReleaseHook hook = g_release_hook.load(std::memory_order_acquire)) {
        hook(slot); // the slot is still this thread's
    }
    g_slot_taken[slot].store(false);
    // A later call on this thread (another key's destructor) takes no slot.
    hosted_slots::t_slot = kNoCpuSlot;
}

void create_release_key() {
    g_release_key_made = pthread_key_create(&g_release_key, release_slot) == 0;
}

} // namespace

namespace hosted_slots {

constinit thread_local unsigned t_slot = kUnassigned;

unsigned take_slot() {
    t_slot = kNoCpuSlot;
    pthread_once(&g_release_key_once, create_release_key);
    if (!g_release_key_made) {
        return kNoCpuSlot; // no way to give a slot back: the shared path for this thread
    }
    for (unsigned i = 0; i < kMaxCpus; ++i) {
        bool expected = false;
        if (g_slot_taken[i].compare_exchange_strong(expected, true)) {
            if (pthread_setspecific(g_release_key, reinterpret_cast<void*>(uintptr_t{i} + 1)) !=
                0) {
                g_slot_taken[i].store(false);
                return kNoCpuSlot;
            }
            t_slot = i;
            break;
        }
    }
    return t_slot;
}

#if defined(__clang__) && defined(__x86_64__)
unsigned take_slot_keeping_registers() {
    unsigned slot = take_slot();
    // Not a tail call: the registers are restored after take_slot() returns, not before.
    asm volatile("" : "+r"(slot));
    return slot;
}
#endif

} // namespace hosted_slots

// Out of line unless the build inlines them (BEDROCK_PLATFORM_CPU_HOOKS: hosted_cpu_hooks.h).
#if !defined(BEDROCK_PLATFORM_CPU_HOOKS)
unsigned current_cpu() {
    return hosted_slots::calling_thread_slot();
}

InterruptState disable_interrupts() {
    return 0;
}

void restore_interrupts(InterruptState) {}
#endif

void lock_wait() {
    // A holder is a thread the kernel may have preempted: let it run.
    sched_yield();
}

} // namespace bedrock::platform

namespace bedrock::hosted {

void set_slot_release_hook(SlotReleaseHook hook) {
    platform::g_release_hook.store(hook, std::memory_order_release);
}

void release_cpu_slots_after_fork() {
    const unsigned mine = platform::current_cpu();
    for (unsigned i = 0; i < platform::kMaxCpus; ++i) {
        if (i != mine) {
            platform::g_slot_taken[i].store(false);
        }
    }
}

} // namespace bedrock::hosted
