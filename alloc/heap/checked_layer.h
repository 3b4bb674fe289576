// SPDX-License-Identifier: MIT
// The one place the core names checked mode: with BEDROCK_CHECKED the layer itself
// (checked/checked_layer.h), without it a stand-in of the same shape whose functions are never
// called (every call sits behind `if constexpr (kHeapChecksCompiled)`), so the checked/ folder
// is not built at all.
#pragma once

#include "bedrock/heap_checks.h"

#if BEDROCK_CHECKED
#include "checked/checked_layer.h"
#else
#include <stddef.h>
#include <stdint.h>

#include "bedrock/platform.h"
#include "heap/block_ref.h"
#include "report/call_trace.h"

namespace bedrock {
class Heap;
}

namespace bedrock::heap {

class CheckedLayer {
public:
    struct Totals {
        uint64_t quarantined_blocks;
        uint64_t quarantined_bytes;
        uint64_t guarded_blocks;
        uint64_t guarded_bytes;
    };
    void init() {}
    void* allocate(Heap&, size_t, size_t, Caller) { return nullptr; }
    void free(Heap&, const BlockRef&, void*, Caller) {}
    bool find_usable_size(Heap&, const BlockRef&, const void*, Caller, size_t&) { return false; }
    void check_named_size(Heap&, const BlockRef&, const void*, size_t, Caller) {}
    bool live_block_holds(const BlockRef&, uintptr_t, uintptr_t) { return false; }
    bool drop_overwritten(unsigned char*, const void*) { return false; }
    void flush(Heap&, Caller) {}
    void disable(Heap&) {}
    bool check(Heap&) { return true; }
    Totals totals() { return {}; }
    platform::InterruptState lock_all() { return 0; }
    void unlock_all(platform::InterruptState) {}
};

} // namespace bedrock::heap
#endif
