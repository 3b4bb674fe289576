// SPDX-License-Identifier: MIT
// The heap misuses checked mode must catch, as a table shared by the host tests and the
// in-kernel tests (freestanding: Bedrock headers only). Each scenario commits one error on
// purpose and says exactly which report it must produce at a given check level.
//
// Protocol: run(context, expected) allocates from context.heap, records every block it still owns
// in context.blocks (clearing an entry once that block is freed), fills `expected` with the
// report the misuse must produce at context.level, then commits the misuse and returns.
// At level Abort the run stops inside the misuse (the report panics); either way the caller
// then frees what context.blocks still holds, flushes the quarantine and expects every block
// and page back.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/error_report.h"
#include "bedrock/heap_checks.h"

namespace bedrock::test {

// What the report must say. Fields the scenario cannot know in advance are checked by rule:
// the allocation trace's first frame lies in `allocated_in` (when set), and the free trace is
// present exactly when `freed_trace` is set.
struct ExpectedReport {
    ErrorKind kind;
    uintptr_t address;
    uintptr_t block; // 0: none expected
    uint64_t size;
    uint64_t offset;
    const void* allocated_in; // the scenario function that allocated the block, or null
    bool freed_trace;
};

struct MisuseContext {
    Heap& heap;
    Heap& other;      // a second heap (foreign-heap case)
    CheckLevel level; // the level the heap runs at (Off: only some misuses are detected)
    void* blocks[2];
    Heap* block_heap[2];
};

struct MisuseScenario {
    const char* name;
    // Whether the misuse is reported with checking off (invalid frees are; memory damage is not).
    bool detected_when_off;
    // Describes the report in `expected`, then commits the misuse.
    void (*run)(MisuseContext& context, ExpectedReport& expected);
};

extern const MisuseScenario kMisuseScenarios[];
extern const size_t kMisuseScenarioCount;

// Compares `report` with `expected`; returns null if they match, else what differs.
[[nodiscard]] const char* report_mismatch(const ErrorReport& report,
                                          const ExpectedReport& expected);

// The first frame of a trace lies in the function starting at `function` (which is shorter
// than kMaxFunctionBytes).
inline constexpr uintptr_t kMaxFunctionBytes = 2048;
[[nodiscard]] bool frame_is_in(const void* frame, const void* function);

// Frees what `context` still holds (each block in the heap it came from).
void free_leftovers(MisuseContext& context);

} // namespace bedrock::test
