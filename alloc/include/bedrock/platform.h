// The platform interface: everything Bedrock's portable core needs from the machine it runs on.
//
// Each target implements these functions once, at link time (no virtual calls, no registration):
// the test kernel in kernel/platform.cpp (on top of arch/<arch>), the host tests in
// tests/support/host_platform.cpp. A kernel that adopts Bedrock implements this header and
// nothing else.
//
// Contract for every hook:
//   - never allocates from Bedrock (they may be called while an allocator lock is held);
//   - may be called with interrupts disabled;
//   - must not call back into the allocator that invoked it.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/phys_range.h"

namespace bedrock {

// What kind of misuse or inconsistency a report describes.
enum class ErrorKind : uint8_t {
    // Page frame allocator.
    FreeOutsideManagedMemory, // address not inside any range the allocator manages
    FreeMisaligned,           // address not aligned to the block size of the given order
    DoubleFree,               // the block (or part of it) is already free
    FreeWrongOrder,           // the block is allocated, but with another order
    ReserveConflict,          // reserve_range() asked for pages that are already allocated
    // Heap (later): invalid pointers, red-zone damage, use after free, foreign heap.
    InvalidPointer,
    ForeignHeap,
    CorruptMetadata,
};

// A structured report of one detected error. Plain data: the platform formats it.
struct ErrorReport {
    ErrorKind kind;
    const char* component; // "pfa", "heap", ...
    uint64_t address;      // the address the caller passed
    uint64_t size;         // pfa: order, page count (free_pages) or bytes (reserve); heap: bytes
    const void* call_site; // return address of the API call that was misused, or null
    const char* detail;    // one sentence explaining what was found, never null
};

[[nodiscard]] const char* to_string(ErrorKind kind);

namespace platform {

// The virtual address at which physical address `phys` can be accessed (the direct map).
// Called only for addresses inside ranges handed to an allocator. O(1).
[[nodiscard]] void* phys_to_virt(PhysAddr phys);

// Receives every misuse Bedrock detects. May return: the allocator then leaves its state as
// it was before the faulty call and returns a failure to the caller.
void report_error(const ErrorReport& report);

// An internal invariant does not hold (a Bedrock bug or memory corruption). Never returns.
[[noreturn]] void assertion_failed(const char* expression, const char* file, int line);

} // namespace platform
} // namespace bedrock
