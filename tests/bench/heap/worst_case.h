// SPDX-License-Identifier: MIT
// Worst-case instructions per heap call: traces that drive a fresh heap through its expensive
// paths while instruction_counter.h counts every single heap_allocate and heap_free.
//
// Each call is classed by whether it made the page frame allocator change, seen as a change of
// PageFrameAllocator::free_pages() across the call (a region heap has none: all its calls are
// of the first kind):
//   Malloc, Free              the heap served the call from what it held
//   MallocRefill, FreeReturn  it took pages from, or gave pages back to, the allocator
//   CpuSetup                  heap_prepare_cpu() on the fresh heap, before the trace (a CPU's
//                             cache set-up, which a kernel does as the CPU comes online; the
//                             traces' mallocs and frees then find it made)
//   MallocReclaim             a malloc that found no memory and took back what the heap held
//                             idle before it tried once more (HeapStatistics::reclaims grew)
//
// The traces (each on a fresh arena, in a process of its own; see kWorstCaseTraces). Their
// lengths are set by the cost of single-stepping (100 000-150 000 instructions a second):
//   random     sizes over the whole range (0 B-1 MiB, mostly small), one allocation in eight
//              aligned to 32 B-1 MiB; the live set grows to 2000 blocks (or the first failure)
//              and shrinks to 200, over and over; 5000 calls
//   slabs      per size (16 B-8 KiB and one just above): two slabs' worth of blocks, freed in
//              random order, then (from 256 B) again, freed in allocation order: slab refills
//              and returns
//   fragments  600 blocks of 16 B-16 KiB, every other one freed (holes), new blocks cut from
//              the holes, then the rest freed so that each free has free neighbours on both
//              sides
//   aligned    every alignment from 16 B to 1 MiB with sizes below, at and above it
//   exhaust    blocks of 4 KiB-1 MiB until the first failure; in the full heap, a request of
//              every power of two up to 2 MiB, one just above 1 MiB and one larger than any
//              arena; every other block freed (a comb of holes) and the same requests again;
//              all freed
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "arena.h"

namespace bench {

enum class CallKind { Malloc, Free, MallocRefill, FreeReturn, CpuSetup, MallocReclaim };
inline constexpr size_t kCallKinds = 6;

struct WorstCall {
    uint64_t instructions = 0;
    bool complete = true; // false: counting stopped at the cap, the call took at least this
    char what[160] =
        {}; // which call, e.g. "exhaust, call 301: malloc(65536, alignment 16) -> null"
    char profile[1024] = {}; // with `explain`: its instructions per function (call_profile.h)
};

struct WorstCaseRun {
    WorstCall worst[kCallKinds]; // indexed by CallKind
    uint64_t calls = 0;          // heap calls counted
    uint64_t instructions = 0;   // their sum
    char failure[96] = {};       // empty when the trace ran
};

inline constexpr const char* kWorstCaseTraces[] = {"random", "slabs", "fragments", "aligned",
                                                   "exhaust"};

enum class TraceLength { Full, Quick };
enum class Profile { Off, Explain };

// Runs trace `trace` on a fresh heap of `source` over `arena_bytes`. Quick shortens it (for
// development: the figures are then lower bounds only); Explain profiles each worst call and,
// with a `trail_directory` (else null), also writes each worst call's instructions in the order
// they ran to TRACE.SOURCE.KIND.txt there (call_profile.h). Instruction counting must work
// (instruction_counter_works()).
[[nodiscard]] WorstCaseRun run_worst_case_trace(const char* trace, Source source,
                                                size_t arena_bytes, TraceLength length,
                                                Profile profile, const char* trail_directory);

} // namespace bench
