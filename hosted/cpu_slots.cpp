// SPDX-License-Identifier: MIT
// The CPU hooks of bedrock/platform.h for a host process (Bedrock::hosted, and the unit tests,
// fuzzing and benchmarks): each thread is a CPU. A thread takes the lowest free slot on its
// first current_cpu() and gives it back when it exits, so no two live threads share a slot; a
// thread that finds every slot taken, or that calls Bedrock after its slot was given back (a
// later thread-exit destructor freeing memory), gets kNoCpuSlot (Bedrock's shared, locked path).
// Before a slot goes back, the release hook (set_slot_release_hook) runs on its thread.
//
// A slot goes back through a pthread key's destructor, registered by the thread's first call.
// A thread whose first call comes from inside glibc's last round of key destructors (another
// key's destructor that allocates, after re-setting its key three times) registers too late:
// no round follows, and its slot would stay taken for ever (64 such threads, and every thread
// after them took the locked path). A C++ thread_local destructor would not help: glibc runs
// those before the key destructors, and registering one calls calloc. So each slot records its
// owner's kernel thread id, and a thread that finds no free slot takes over one whose owner no
// longer exists (tgkill(pid, tid, 0) fails with ESRCH; a tid the kernel gave to a new thread
// of this process meanwhile only keeps the slot taken). The taker adopts the slot as it is: the
// dead thread's cached blocks and pages, free memory of the heap, become its own, since it
// cannot drain them there (current_cpu() runs inside malloc, with heap locks held).
// Invariant: g_slot_owner[i] != 0 <=> slot i is taken: exactly one live thread's t_slot is i,
// the one whose tid it holds, or its owner has exited without giving it back; no live thread
// but its owner has t_slot == i.
// After fork() only the forking thread lives on, with a new tid: release_cpu_slots_after_fork()
// restores the invariant in the child.
// Host threads are never interrupted inside Bedrock (signal handlers must not allocate) and
// keep their slot for life, so the interrupt hooks have nothing to do.
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#include "bedrock/hosted.h"
#include "bedrock/hosted_cpu_slot.h"
#include "bedrock/platform.h"

namespace bedrock::platform {
namespace {

// The kernel thread id of each slot's owner; 0: free.
std::atomic<pid_t> g_slot_owner[kMaxCpus];

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
    g_slot_owner[slot].store(0);
    // A later call on this thread (another key's destructor) takes no slot.
    hosted_slots::t_slot = kNoCpuSlot;
}

void create_release_key() {
    g_release_key_made = pthread_key_create(&g_release_key, release_slot) == 0;
}

pid_t calling_thread_id() {
    return static_cast<pid_t>(syscall(SYS_gettid));
}

// Whether no thread of this process has the id `tid` (its owner exited, and no thread has been
// given the id again).
bool thread_is_gone(pid_t tid) {
    return syscall(SYS_tgkill, getpid(), tid, 0) == -1 && errno == ESRCH;
}

// Takes a free slot for `tid`, or, with none free, the slot of a thread that is gone: the slot,
// or kNoCpuSlot.
unsigned claim_slot(pid_t tid) {
    for (unsigned i = 0; i < kMaxCpus; ++i) {
        pid_t expected = 0;
        if (g_slot_owner[i].compare_exchange_strong(expected, tid)) {
            return i;
        }
    }
    const int saved_errno = errno;
    unsigned claimed = kNoCpuSlot;
    for (unsigned i = 0; i < kMaxCpus && claimed == kNoCpuSlot; ++i) {
        pid_t owner = g_slot_owner[i].load();
        if (owner != 0 && thread_is_gone(owner) &&
            g_slot_owner[i].compare_exchange_strong(owner, tid)) {
            claimed = i;
        }
    }
    errno = saved_errno;
    return claimed;
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
    const unsigned slot = claim_slot(calling_thread_id());
    if (slot == kNoCpuSlot) {
        return kNoCpuSlot;
    }
    if (pthread_setspecific(g_release_key, reinterpret_cast<void*>(uintptr_t{slot} + 1)) != 0) {
        g_slot_owner[slot].store(0);
        return kNoCpuSlot;
    }
    t_slot = slot;
    return slot;
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
            platform::g_slot_owner[i].store(0);
        }
    }
    if (mine < platform::kMaxCpus) {
        platform::g_slot_owner[mine].store(platform::calling_thread_id()); // the child's own id
    }
}

} // namespace bedrock::hosted
