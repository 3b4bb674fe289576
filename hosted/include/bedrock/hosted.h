// SPDX-License-Identifier: MIT
// Bedrock::hosted: bedrock/platform.h for a Linux user-space process, so that kernel code built
// on Bedrock (and Bedrock itself, as libbedrock-malloc.so) runs in an ordinary process.
//
// What each hook is here:
//   phys_to_virt       the identity: a "physical" address is the virtual address of a byte of
//                      a reservation made by reserve_memory() (memory_source.cpp)
//   page_granularity   the host's page size, sysconf(_SC_PAGESIZE), read once: 4 KiB on
//                      x86-64, 16 KiB or 64 KiB on many AArch64 and POWER kernels
//                      (memory_source.cpp)
//   set_page_access    mprotect() of the host page (memory_source.cpp)
//   pages_unused       madvise(MADV_DONTNEED) of the whole host pages inside the range: freed
//                      pages leave the resident set (memory_source.cpp)
//   report_error       the report in Bedrock's format (write_error_report) on stderr, written
//                      with write(2), never through stdio or an allocation (reports.cpp)
//   panic, assertion_failed  a last line on stderr, then abort() (reports.cpp)
//   stack_extent       the readable mapping holding the frame, from /proc/self/maps (read with
//                      raw system calls, no allocation), remembered per thread until a frame
//                      lies outside it (reports.cpp)
//   current_cpu        a slot per live thread, kNoCpuSlot beyond kMaxCpus (cpu_slots.cpp)
//   disable_interrupts / restore_interrupts  no-ops: a thread keeps its slot for life, and
//                      signal handlers must not allocate (malloc is not async-signal-safe)
//
// Memory: address space reserved with MAP_NORESERVE, committed page by page as it is first
// touched. The page frame allocator gets a 4 MiB first chunk of it; its grow hook adds the next
// chunks (each twice the last, up to 4 GiB, or what one request needs) when an allocation
// cannot be served or no free 32 MiB block is left, each with its own metadata (about 0.07 %
// of the chunk, zeroed when added). So start-up costs the same for any reservation (about
// 0.1-0.3 ms and 300 KiB resident), and allocations beyond the reservation fail.
//
// Link order: the hooks are defined in the objects that reserve_memory() and start() live in,
// so a program that links Bedrock::hosted calls one of them (as it must, to have memory).
#pragma once

#include <stdint.h>

#include "bedrock/heap.h"
#include "bedrock/page_frame_allocator.h"

namespace bedrock::hosted {

// The reservation start() makes: 64 GiB of address space, of which only what is allocated
// (and the metadata of the chunks grown into) becomes resident.
inline constexpr uint64_t kDefaultReservationBytes = uint64_t{64} << 30;

// Reserves `bytes` (rounded up to whole host pages, at least two of Bedrock's) of address
// space, aligned to a maximum buddy block (1 GiB; a smaller reservation to its size rounded up
// to a power of two) so that its largest buddy blocks are whole, and hands it to `frames` as its
// RAM: its first page holds the growth state, a first chunk of 4 MiB goes to frames.init(), the
// rest to frames.add_range() through the grow hook it sets. Returns false (and writes why on
// stderr) if mmap fails or frames.init() refuses the range. Allocates from no heap; safe before
// libc's constructors have run. Time: the mmap and frames.init() over the first chunk,
// independent of `bytes`.
[[nodiscard]] bool reserve_memory(PageFrameAllocator& frames, uint64_t bytes);

// Reserves `bytes` for a page frame allocator of Bedrock::hosted's own, creates a heap over it and
// makes it the default heap (set_default_heap). Returns the heap, or null (why on stderr). Under
// an address-space limit (RLIMIT_AS), it reserves its fair share of what the limit leaves: the
// first chunk and the next one ahead of it, but no more ahead than half of what the limit leaves
// beside the process's mappings and the first chunk (or, where mmap refuses that much, the
// largest half, quarter, ... of it that mmap grants, down to 1 MiB), aligned to 2 MiB or a host
// page where the slack for the usual alignment does not fit, placed far below the shared
// libraries; growth then extends it, right after its end, when it needs more, by what a request
// needs or its fair share of what the limit then leaves, whichever is more, up to `bytes` in all,
// and only for requests (no free block is kept ahead of them, as without a limit).
// Call it once, before other threads use the default heap; a second call returns null.
[[nodiscard]] Heap* start(uint64_t bytes = kDefaultReservationBytes);

// After the process set its address-space limit (RLIMIT_AS) to `limit_bytes`: start()'s
// reservation, all of which counts against it, PROT_NONE as its part not grown into is (so
// that, over it, no later mmap, thread stack or stack growth of the program succeeds), keeps
// what its page frame allocator has already been given and, ahead of that, its fair share: the
// next chunk less the allocator's free pages, but no more than half of what the limit leaves
// beside the process's mappings (/proc/self/statm) and that; the rest is unmapped (growth maps more
// again only as far as the limit then allows). Chunks already given stay, used or not. Does nothing
// before start(). Raw system calls only, no allocation; O(1) plus the wait for a growth under way
// and page_frames().free_pages().
// (RLIMIT_DATA counts only the part grown into.)
void fit_to_address_limit(uint64_t limit_bytes);
// The page frame allocator start() made its heap over (empty until start() succeeds).
[[nodiscard]] PageFrameAllocator& page_frames();

// For fork() in a threaded program, after heap_lock_all() of start()'s heap (bedrock/heap.h):
// takes the lock of start()'s reservation (its growth) and then page_frames().lock_all(), so
// that no other thread is growing the allocator or inside it at the fork (the grow hook holds
// the reservation's lock around add_range(), with no heap lock taken inside it).
// unlock_memory_after_fork() releases both, in the parent and in the child, before
// heap_unlock_all(). Between the two, call nothing of Bedrock but fork(). O(1) plus the waits.
struct ForkLocks {
    platform::InterruptState reservation;
    platform::InterruptState frames;
};
[[nodiscard]] ForkLocks lock_memory_for_fork();
void unlock_memory_after_fork(ForkLocks held);

// Writes `text` to stderr with write(2): no stdio, no allocation, safe in any state. Once
// keep_stderr_for_reports() ran, only to the file it found at stderr: stderr or the copy, whichever
// still names it, else nowhere.
void write_to_stderr(const char* text);
// Keeps a close-on-exec copy of stderr (the lowest free descriptor from 512, or from half the
// descriptor limit if that is lower, else the lowest free one), so that reports still reach it
// after the program closed stderr (as coreutils' programs do at exit); from then on reports go only
// to that file (never to another the program put at stderr's number, nor anywhere when stderr was
// closed). It holds that file open as long as the process lives (a pipe's
// reader sees no end until then), but not in a child of fork(): see
// forget_kept_stderr_after_fork(). Once per process (later calls do nothing); no allocation; O(1).
void keep_stderr_for_reports();
// In the child of a fork: closes the copy keep_stderr_for_reports() kept, if any. A daemon forks
// and points its own stderr elsewhere; an inherited copy would hold the parent's stderr open for
// the daemon's life (`$(program 2>&1)` and `program 2>&1 | tee` would wait for it). The child's
// reports go to its own stderr, whatever it names, and after it closed that, nowhere.
// Async-signal-safe.
void forget_kept_stderr_after_fork();

// In the child of a fork: gives back the CPU slots of every thread but the caller (they do
// not exist in the child), so the child's new threads find them free.
void release_cpu_slots_after_fork();
// Called on a thread that exits, with the CPU slot it is about to give back (still its own):
// start() sets one that drains the slot's cache of the heap it made (heap_drain_cpu), so the
// blocks a finished thread cached go back to their slabs, not to whichever thread takes the
// slot next. Null: none. A hook must not create threads; it may allocate and free.
using SlotReleaseHook = void (*)(unsigned slot);
void set_slot_release_hook(SlotReleaseHook hook);

} // namespace bedrock::hosted
