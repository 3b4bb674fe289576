// SPDX-License-Identifier: MIT
// Checked mode: the heap catches the classic misuses of malloc/free at run time and reports
// each one precisely (bedrock/error_report.h), on bare metal, without any other tool.
//
// What it catches, per block allocated while checking is on:
//   - writes past the end or before the start: red zones with canary bytes around every block,
//     verified on free, on realloc and by heap_check() (BufferOverflow / BufferUnderflow);
//   - reads of memory never written: fresh blocks are filled with kFreshPoison;
//   - use after free: freed blocks are filled with kFreedPoison and held in a bounded FIFO
//     quarantine; when a block leaves it the poison is verified (UseAfterFree, with the offset
//     written and both call traces);
//   - invalid frees, each its own kind: DoubleFree, NotAllocated, InteriorPointer,
//     MisalignedPointer, ForeignHeap (these are also reported with checking off, with less
//     detail: no call traces, and a double free found only while the block stays free);
//   - leaks: every live checked block remembers its size and allocation call trace.
// Guard pages (opt-in, needs platform::set_page_access): sampled or selected blocks end at a
// page boundary followed by an inaccessible page, and freed ones become inaccessible, so the
// faulting instruction itself is caught; heap_explain_fault() turns the fault into a report.
//
// Levels (per heap, run time): Off (blocks are allocated unchecked; blocks allocated while
// checked stay checked until freed), Report (report and carry on: a bad free is ignored, the
// heap stays consistent) and Abort (report, then platform::panic). Reports go to the error
// hook if one is set (tests record them), else to platform::report_error.
// Build time: BEDROCK_CHECKED=0 compiles checking out; heap_set_check_level() then accepts only
// Off and the fast paths carry no trace of it.
//
// Cost per checked block: a 128-byte header, at least 16 bytes of tail red zone, the size
// rounded up to a size class; O(size) time to poison and verify. See the README's benchmark.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/error_report.h"
#include "bedrock/heap.h"

#ifndef BEDROCK_CHECKED
#define BEDROCK_CHECKED 1
#endif

namespace bedrock {

inline constexpr bool kHeapChecksCompiled = BEDROCK_CHECKED != 0;

enum class CheckLevel : uint8_t { Off, Report, Abort };

// Fill patterns. Read as a pointer, each is non-canonical on x86-64 and outside the 48-bit
// address space on AArch64, so dereferencing one faults.
inline constexpr uint8_t kFreshPoison = 0xa5; // allocated, never written
inline constexpr uint8_t kFreedPoison = 0xdd; // freed (in quarantine)
inline constexpr uint8_t kRedZoneFill = 0xfc; // red zones around a block

// Receives every report the heap raises while it is set (instead of platform::report_error).
using HeapErrorHook = void (*)(void* context, const ErrorReport& report);

// Sets the level; returns false (changing nothing) for a value that is none of the three levels,
// or for a level other than Off when checking is compiled out. Blocks allocated afterwards follow
// it; blocks keep the form they were allocated in. Safe at any time; other CPUs see the change
// within a few calls.
bool heap_set_check_level(Heap& heap, CheckLevel level);
[[nodiscard]] CheckLevel heap_check_level(Heap& heap);
// null `hook` restores platform::report_error. Set it while no other CPU uses the heap.
void heap_set_error_hook(Heap& heap, HeapErrorHook hook, void* context);

// The quarantine holds freed checked blocks until their total size exceeds `bytes` (default
// kDefaultQuarantineBytes); the oldest leave first. A block bigger than `bytes` on its own waits
// apart until the next such block is freed, so the memory held is at most `bytes` plus one
// block; an allocation that finds no memory empties the quarantine and tries again. 0 disables
// it (blocks are verified and reused at once). Safe at any time, from any CPU: each free evicts
// down to the limit it finds under the quarantine's lock.
inline constexpr size_t kDefaultQuarantineBytes = size_t{1} << 20;
void heap_set_quarantine_limit(Heap& heap, size_t bytes);
// Verifies and releases every quarantined block (so all memory is back in the heap).
void heap_flush_quarantine(Heap& heap);

// Leaks: live checked blocks. A checkpoint is an allocation sequence number; "since" counts
// blocks allocated after it that are still live.
// A leak report lists the blocks of up to kLeakSitesListed allocation call traces by trace, and
// counts the blocks of any further ones together.
inline constexpr unsigned kLeakSitesListed = 32;
struct LeakSummary {
    uint64_t blocks;
    uint64_t bytes; // sum of the sizes asked for
    // Distinct allocation call traces, up to kLeakSitesListed; kLeakSitesListed + 1 when there
    // are more (told apart without memory beyond the list, so not counted).
    uint64_t sites;
};
[[nodiscard]] uint64_t heap_checkpoint(Heap& heap);
[[nodiscard]] LeakSummary heap_leaks_since(Heap& heap, uint64_t checkpoint);
// Lists every live checked block allocated after `checkpoint` (0: all), grouped by allocation
// call trace with counts and bytes, then a total line. `write` must not use this heap.
LeakSummary heap_report_leaks(Heap& heap, LineWriter write, void* context, uint64_t checkpoint = 0);

// Guard pages. `slots` pages can hold guarded blocks at once (each costs 2 pages, 16 pages per
// 7 slots, each page one of the platform's: platform::page_granularity(), 4 KiB in a kernel, up
// to 64 KiB on a host); with `sample_interval` N > 0 every Nth checked allocation that fits in
// kMaxGuardedSize is guarded, and heap_allocate_guarded() guards one on request. Freed guarded
// blocks stay inaccessible until their slot is reused (oldest first). Returns false if checking
// is compiled out, pages are short, the pool would not fit one arena (over a page frame
// allocator: about 900 slots at most with 4 KiB pages, 200 with 64 KiB), the platform cannot
// change page access, or the heap has a pool (one per heap: a second call, also one made at the
// same time on another CPU, returns false). Safe while other CPUs allocate and free: no block is
// guarded until every page of the pool is in place.
struct GuardPageOptions {
    uint32_t slots;
    uint32_t sample_interval;
};
bool heap_enable_guard_pages(Heap& heap, GuardPageOptions options);
// A guarded block (size <= kMaxGuardedSize), or an ordinary checked block when no slot is
// free or the size does not fit; null when out of memory.
inline constexpr size_t kMaxGuardedSize = 4096; // a 4 KiB page: fits any platform page slot
[[nodiscard]] void* heap_allocate_guarded(Heap& heap, size_t size,
                                          size_t alignment = kHeapMinAlignment);

enum class MemoryAccess : uint8_t { Unknown, Read, Write, Execute };
// Called by a fault handler with the faulting data address: if it lies in a guard-page pool of
// any heap, raises the matching report (BufferOverflow / BufferUnderflow / UseAfterFree with the
// block, offset, access and call traces; never panics itself) and returns true. O(heaps with
// guard pages). Safe in an exception handler: touches only mapped metadata.
bool heap_explain_fault(uintptr_t address, MemoryAccess access, const void* pc);

} // namespace bedrock
