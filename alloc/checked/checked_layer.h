// SPDX-License-Identifier: MIT
// CheckedLayer: checked mode as one layer over the heap core (heap/core.h) - the checked
// blocks (red zones, poison, quarantine, call traces, leaks: checked_blocks.h) and the
// guard-page pool (guarded_pool.h). The core calls it from exactly two places: allocate() at a
// check level other than Off, and free() of a block whose core use is Checked or Guard (plus
// the statistics, heap_check() and heap_destroy()). It takes and gives core blocks through
// heap/core.h and reaches nothing else of the core.
//
// Owns its two parts. Lock order: CheckedBlocks' lock and the pool's lock are each taken alone,
// never while calling the core; only lock_all() (for fork(): heap_lock_all) holds both, then
// the pool's global locks, before any lock of the core.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "checked/checked_blocks.h"
#include "checked/guarded_pool.h"
#include "heap/block_ref.h"
#include "report/call_trace.h"

namespace bedrock {
class Heap;
}

namespace bedrock::heap {

class CheckedLayer {
public:
    void init() { blocks.init(); }

    // A checked block (guarded when the pool samples it), or null when out of memory or
    // `alignment` is not a power of two.
    [[nodiscard]] void* allocate(Heap& heap, size_t size, size_t alignment, Caller caller);
    // free() of `pointer`, which the core found in `core` (Checked, Guard or CheckedRun).
    void free(Heap& heap, const BlockRef& core, void* pointer, Caller caller);
    // The size asked for of the live checked block at `pointer` (found in `core`), or false
    // after reporting why it is not one.
    [[nodiscard]] bool find_usable_size(Heap& heap, const BlockRef& core, const void* pointer,
                                        Caller caller, size_t& size);
    // For a sized delete naming `named` bytes: reports size-mismatch if `pointer` (found in
    // `core`) is a live checked block asked for with another size; says nothing otherwise.
    void check_named_size(Heap& heap, const BlockRef& core, const void* pointer, size_t named,
                          Caller caller);
    // Whether [start, end), which the core found in `core` (Checked or Guard), lies inside the
    // bytes of a live checked block: the one region of checked memory a region heap may be made
    // in (not its header, red zones or guard pages, nor a block in the quarantine). Reports
    // nothing.
    [[nodiscard]] bool live_block_holds(const BlockRef& core, uintptr_t start, uintptr_t end);
    // For a pointer whose core block (starting at `core_start`, in the arenas) has an overwritten
    // core header: takes the live in-band checked block at `pointer` out of checked mode (off
    // the live list, never quarantined: the core retires its memory), if it is one. Reports
    // nothing; returns whether it did.
    [[nodiscard]] bool drop_overwritten(unsigned char* core_start, const void* pointer) {
        return blocks.drop_live(*reinterpret_cast<CheckedBlock*>(core_start), pointer);
    }
    // Empties the quarantine (heap_destroy) and turns guard pages off.
    void flush(Heap& heap, Caller caller) { blocks.flush(heap, caller); }
    void disable(Heap& heap) { guards.disable(heap); }
    [[nodiscard]] bool check(Heap& heap) { return blocks.check(heap); }
    // heap_lock_all()'s hold on both parts' locks, for fork() (bedrock/heap.h). Precondition:
    // interrupts are masked, so every lock returns the same mask, which unlock_all() takes.
    [[nodiscard]] platform::InterruptState lock_all() {
        static_cast<void>(blocks.lock_all());
        return guards.lock_all();
    }
    void unlock_all(platform::InterruptState previous) {
        guards.unlock_all(previous);
        blocks.unlock_all(previous);
    }

    struct Totals {
        uint64_t quarantined_blocks;
        uint64_t quarantined_bytes;
        uint64_t guarded_blocks; // live guarded blocks
        uint64_t guarded_bytes;  // the slot pages they occupy, one each
    };
    [[nodiscard]] Totals totals();

    CheckedBlocks blocks;
    GuardedPool guards;
};

} // namespace bedrock::heap
