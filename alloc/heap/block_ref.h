// SPDX-License-Identifier: MIT
// BlockRef: what holds an address in a heap, as the ownership lookup (locate(), block_lookup.h)
// found it from allocator metadata alone - an arena's block-start bitmap and block headers, or
// the page tags of a large run - for free(), realloc(), malloc_usable_size() and checked mode.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/error_report.h"
#include "heap/segregated_fit.h"

namespace bedrock::heap {

enum class Holder : uint8_t {
    None,       // no block of this heap: `kind` and `detail` say why
    Slab,       // a slab (start: its header); the address may be any of its blocks
    Medium,     // a medium block of the arenas
    Checked,    // a checked-mode block of the arenas (start: its checked header)
    Guard,      // a checked-mode guard-page chunk of the arenas
    Free,       // a free block of the arenas (start: its start)
    LargeRun,   // a large run (start: its first page)
    CheckedRun, // a large run holding a checked-mode block (start: its checked header)
};

struct BlockRef {
    Holder holder;
    unsigned char* start; // the block or run holding the address
    size_t usable;        // its usable bytes (a run: its pages)
    const Arena* arena;   // arena blocks
    ErrorKind kind;       // None: NotAllocated or ForeignHeap
    const char* detail;   // None: why
};

} // namespace bedrock::heap
