// SPDX-License-Identifier: MIT
// The platform interface: everything Bedrock's portable core needs from the machine it runs on.
//
// Each target implements these functions once, at link time (no virtual calls, no registration):
// the test kernel in kernel/platform.cpp (on top of arch/<arch>), the host tests in
// tests/support/host_platform.cpp. A kernel that adopts Bedrock implements this header and
// nothing else. Two hooks have defaults a platform may leave alone: page_granularity() and
// stack_extent().
//
// Contract for every hook:
//   - never allocates from Bedrock (they may be called while an allocator lock is held: which
//     ones are, each hook says);
//   - may be called with interrupts disabled;
//   - must not call back into the allocator that invoked it.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/config.h"
#include "bedrock/error_report.h"
#include "bedrock/phys_range.h"

namespace bedrock::platform {

// The virtual address at which physical address `phys` can be accessed (the direct map).
// Called only for addresses inside ranges handed to an allocator. O(1). It must map each range
// contiguously and keep the alignment of its blocks: phys_to_virt(p) - p a multiple of the
// largest naturally aligned block inside the range, at most 1 GiB (an identity map, or a direct
// map at a 1 GiB-aligned offset); PageFrameAllocator::init() and add_range() refuse a range
// mapped otherwise.
[[nodiscard]] void* phys_to_virt(PhysAddr phys);

// Receives every misuse Bedrock detects. May return: the allocator then leaves its state as
// it was before the faulty call and returns a failure to the caller.
void report_error(const ErrorReport& report);

// Checked mode at level Abort, after the report: stops the system (a kernel panic). Never returns.
[[noreturn]] void panic(const char* message);

// The size of the pages the platform maps, protects and drops: what set_page_access() acts on,
// what valloc() and pvalloc() align to, and the unit in which pages_unused() can drop memory. A
// power of two, at least kPageSize, the same on every call. A kernel whose MMU maps kPageSize
// pages need not define it: Bedrock's own (weak) definition returns kPageSize. A hosted process
// returns its kernel's page size (4 KiB on x86-64, often 16 KiB or 64 KiB on AArch64, 64 KiB on
// POWER). O(1), never allocates.
[[nodiscard]] size_t page_granularity();

// The stack a frame record lies on, for checked mode's call traces: [low, high), memory that
// holds `frame` (an address on the calling thread's or CPU's stack) and can all be read (the
// stack itself, or the whole mapping around it). A call trace follows the chain of frame records
// only while each record lies inside it, so a value that code built without frame pointers left
// in the frame register cannot make the walk read unmapped memory. {0, 0}: not known; the trace
// then holds the entry point's call site only. Bedrock's own (weak) definition returns {0, 0}.
// Called on every checked-mode allocation and free, with the heap's checked-mode lock held:
// never allocates from Bedrock, never blocks; a hosted process may look its stacks up once per
// thread and remember them.
struct StackExtent {
    uintptr_t low;
    uintptr_t high;
};
[[nodiscard]] StackExtent stack_extent(const void* frame);

// Guard pages: makes the page_granularity() bytes at `page` (aligned to page_granularity(),
// inside memory the heap got from its page source, so inside the direct map) inaccessible
// (`accessible` false: any load or store faults) or accessible again. Returns false, changing
// nothing, if the platform cannot do it; the heap then runs without guard pages. Called without
// allocator locks held, and never from two CPUs at once (Bedrock serialises its calls).
[[nodiscard]] bool set_page_access(void* page, bool accessible);

// Giving pages back: the page frame allocator calls this when a free leaves a free block of at
// least kUnusedOrder (1 MiB, bedrock/page_frame_allocator.h) after merging, for all of that
// block's pages, heap_trim() for the whole pages inside the free blocks of a heap over a page
// frame allocator, and heap_tell_unused() (and a heap's unused interval) for those inside its
// free blocks of 256 KiB or more and for an arena it gives back: [start, start + bytes), aligned
// to kPageSize, in the direct map. Their
// contents are no longer needed, and the platform may drop them (a hosted process: madvise
// MADV_DONTNEED, reading zeroes afterwards) or account them; a platform whose pages are larger
// (page_granularity()) drops only its whole pages inside the range, never a byte outside it
// (the rest of a page it shares may be live). The pages stay the allocator's and stay mapped: they
// may be handed out again at any moment after the call returns, and are then written without notice
// (no matching "reused" call). Bedrock writes nothing else into them meanwhile. Called with the
// page frame allocator's lock or the heap's arenas lock held (and interrupts as the lock leaves
// them): never allocates, never calls into Bedrock, takes no lock of Bedrock's; may do nothing. The
// same pages may be reported again (as part of a larger merged block, or by another heap_trim())
// without having been handed out in between. Time: the platform's; O(bytes / page) at most is
// expected.
void pages_unused(void* start, size_t bytes);

// An internal invariant does not hold (a Bedrock bug or memory corruption), or, with
// `expression` equal to kOperatorNewOutOfMemory, a throwing operator new found no memory (after
// the new-handler) where exceptions are off. Never returns.
[[noreturn]] void assertion_failed(const char* expression, const char* file, int line);
inline constexpr char kOperatorNewOutOfMemory[] = "operator new: out of memory";

// CPUs and interrupts: what the per-CPU caches and the interrupt-safe locks need.
//
// The most CPUs Bedrock keeps per-CPU state for: BEDROCK_MAX_CPUS, chosen when Bedrock is built
// (CMake cache variable of the same name, bedrock/config.h; 64 unless set). A compile-time size:
// per-CPU arrays are part of each heap's state (8 bytes per CPU) and of each page frame
// allocator's metadata with CPU page lists (256 bytes per CPU). Firmware on one core may build
// with 1; a kernel for larger machines with its CPU count.
inline constexpr unsigned kMaxCpus = BEDROCK_MAX_CPUS;
static_assert(kMaxCpus >= 1 && kMaxCpus <= 4096, "BEDROCK_MAX_CPUS: 1 to 4096");
// What current_cpu() returns for a caller with no CPU slot of its own (a host thread beyond
// kMaxCpus live threads): Bedrock then takes its locked, shared path. A kernel never returns it.
inline constexpr unsigned kNoCpuSlot = kMaxCpus;

// The calling CPU's interrupt mask, as disable_interrupts() found it.
using InterruptState = uintptr_t;

// The three hooks below run on every malloc and free. A platform may define them inline, so
// that the fast paths make no call (a GS- or TPIDR-relative load, a thread-local, a no-op): it
// builds Bedrock with BEDROCK_PLATFORM_CPU_HOOKS set to a header of its own (CMake cache
// variable of the same name) that defines all three, with these signatures and contracts, as
// inline functions in namespace bedrock::platform (platform.h includes it last). Without it they
// are ordinary functions, as the others.
#if !defined(BEDROCK_PLATFORM_CPU_HOOKS)
// The index of the calling CPU, below kMaxCpus (or kNoCpuSlot), stable from
// disable_interrupts() to the matching restore_interrupts(): the caller cannot move to another
// CPU in between, and no other code runs with the same index meanwhile. O(1), lock-free.
[[nodiscard]] unsigned current_cpu();

// Masks interrupts (and with them preemption) on the calling CPU and returns the previous
// state; restore_interrupts(previous) puts that state back. Pairs nest. A platform whose callers
// never run Bedrock from interrupt handlers and are never preempted inside it (the host tests)
// may make both no-ops. O(1).
[[nodiscard]] InterruptState disable_interrupts();
void restore_interrupts(InterruptState previous);
#endif

// Called by a waiter on a held Bedrock lock (bedrock/spinlock.h) after every kLockSpinsBeforeWait
// looks at it, interrupts masked; the waiter then looks again. Where locks mask interrupts and
// with them preemption (a kernel), the holder is running on another CPU: return at once. Where a
// holder can be preempted (threads of a hosted process, whose disable_interrupts() masks
// nothing), give the CPU up (sched_yield()): otherwise a waiter may spin out its whole time
// slice while the holder waits to run. Must not call Bedrock.
void lock_wait();

} // namespace bedrock::platform

#if defined(BEDROCK_PLATFORM_CPU_HOOKS)
#include BEDROCK_PLATFORM_CPU_HOOKS
#endif
