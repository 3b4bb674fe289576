// SPDX-License-Identifier: MIT
// ErrorReport: what Bedrock tells the platform (or a test's hook) when it detects misuse of an
// allocator, as plain data, and the one text format every platform prints it in.
//
// A report always has a kind, a component, the address at fault and one sentence of detail.
// Reports about a heap block also carry the block (start and size), an offset whose meaning
// depends on the kind (see ErrorKind), and the call traces of the block's allocation and free
// when checked mode recorded them.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace bedrock {

// What kind of misuse or inconsistency a report describes.
enum class ErrorKind : uint8_t {
    // Page frame allocator.
    FreeOutsideManagedMemory, // address not inside any range the allocator manages
    FreeMisaligned,           // address not aligned to the block size of the given order
    FreeWrongOrder,           // the block is allocated, but with another order
    ReserveConflict,          // reserve_range() asked for pages that are already allocated
    // Both allocators.
    DoubleFree, // the block (or part of it) is already free
    // Heap: pointers passed to free/realloc/usable_size that are not a live block.
    NotAllocated,      // no block was ever allocated there (stack, global, freed pages, ...)
    InteriorPointer,   // inside a block, not at its start; offset = address - block
    MisalignedPointer, // not aligned to kHeapMinAlignment, so no block can start there
    ForeignHeap,       // a block of another heap
    // Heap, checked mode: damage found in red zones, poison or guard pages.
    BufferOverflow,  // written past the end; offset = bytes past the end that were hit
    BufferUnderflow, // written before the start; offset = bytes before the start that were hit
    UseAfterFree,    // a freed block was written or touched; offset = where, from its start
    CorruptMetadata, // the heap's own bookkeeping is damaged (a wild write)
    HeapInUse,       // heap_destroy() of a heap with live blocks; size = how many
    // Page frame allocator, appended to keep the values above.
    RangeRefused, // init() or add_range() refused its ranges; address, size = the range at fault
    // Heap, checked mode, appended likewise.
    DeallocationMismatch, // freed by another family of calls than allocated it (free() of a
                          // block from operator new, delete of one from new[] or malloc, ...)
    SizeMismatch,         // a sized delete named another size than the block's; size = the
                          // block's, offset = the size named
    // C interface, appended likewise.
    NullHandle, // a null heap or page frame allocator handle; detail = the function called
};

[[nodiscard]] const char* to_string(ErrorKind kind);

// Call sites, innermost first: frames[0] is the call into Bedrock's API. Unused entries are null.
// Each is a return address minus one - an address inside the call instruction - so that
// llvm-symbolizer / addr2line on the ELF name the line of the call itself.
inline constexpr unsigned kCallTraceDepth = 4;
[[nodiscard]] inline const void* call_site_of(const void* return_address) {
    return return_address != nullptr ? static_cast<const char*>(return_address) - 1 : nullptr;
}

struct CallTrace {
    const void* frames[kCallTraceDepth];

    [[nodiscard]] bool empty() const { return frames[0] == nullptr; }
    [[nodiscard]] bool operator==(const CallTrace& other) const {
        for (unsigned i = 0; i < kCallTraceDepth; ++i) {
            if (frames[i] != other.frames[i]) {
                return false;
            }
        }
        return true;
    }
};

// A structured report of one detected error.
struct ErrorReport {
    ErrorKind kind;
    const char* component; // "pfa", "heap", ...
    uint64_t address;      // the address the caller passed, or where damage/access was found
    uint64_t size;         // pfa: order, page count or bytes; heap: the block's size
    const void* call_site; // the call into Bedrock that found it (call_site_of its return
                           // address), or the faulting instruction; null if unknown
    const char* detail;    // one sentence explaining what was found, never null
    // Heap blocks (0 / empty when no block is involved or nothing was recorded):
    uint64_t block;      // the block's start
    uint64_t offset;     // see ErrorKind
    CallTrace allocated; // where the block was allocated (checked mode)
    CallTrace freed;     // where it was freed (checked mode; use after free, double free)
};

// Receives one line of text (no trailing newline).
using LineWriter = void (*)(void* context, const char* line);

// Writes `report` as one to five lines (the first always; the others where their fields are known),
// each starting "bedrock: ":
//   bedrock: <component>: <kind> at 0x<address>: <detail>
//   bedrock:   block 0x<block>, <size> bytes, offset <offset>      (heap blocks)
//   bedrock:   size <size>                                          (other reports with a size)
//   bedrock:   detected at 0x<call site: the call into Bedrock, or the faulting pc>
//   bedrock:   allocated at 0x<frame> 0x<frame> ...
//   bedrock:   freed at 0x<frame> ...
// A null `write` writes nothing.
void write_error_report(const ErrorReport& report, LineWriter write, void* context);

} // namespace bedrock
