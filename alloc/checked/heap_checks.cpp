// SPDX-License-Identifier: MIT
// The checked-mode API (bedrock/heap_checks.h) over the checked layer, but for the check level and
// the error hook (heap_maintenance.cpp: the core keeps those). Built only with
// BEDROCK_CHECKED; heap/checks_compiled_out.cpp stands in for it otherwise.
#include "bedrock/heap_checks.h"

#include "heap/heap_entry.h"
#include "heap/heap_state.h"
#include "support/bits.h"

namespace bedrock {

void heap_set_quarantine_limit(Heap& heap, size_t bytes) {
    heap.checked.blocks.set_quarantine_limit(heap, bytes, BEDROCK_HEAP_CALLER());
}

void heap_flush_quarantine(Heap& heap) {
    heap.checked.blocks.flush(heap, BEDROCK_HEAP_CALLER());
}

uint64_t heap_checkpoint(Heap& heap) {
    return heap.checked.blocks.checkpoint();
}

LeakSummary heap_leaks_since(Heap& heap, uint64_t checkpoint) {
    return heap.checked.blocks.leaks(checkpoint, nullptr, nullptr);
}

LeakSummary heap_report_leaks(Heap& heap, LineWriter write, void* context, uint64_t checkpoint) {
    return heap.checked.blocks.leaks(checkpoint, write, context);
}

bool heap_enable_guard_pages(Heap& heap, GuardPageOptions options) {
    return heap.checked.guards.enable(heap, options);
}

void* heap_allocate_guarded(Heap& heap, size_t size, size_t alignment) {
    const heap::Caller caller = BEDROCK_HEAP_CALLER();
    if (alignment != 0 && !is_power_of_two(alignment)) {
        return nullptr;
    }
    if (heap::refuse_if_not_live(heap, caller)) {
        return nullptr;
    }
    const size_t align = alignment < kHeapMinAlignment ? kHeapMinAlignment : alignment;
    if (void* block = heap.checked.guards.allocate(heap, size, align, caller)) {
        return block;
    }
    return heap.checked.allocate(heap, size, alignment, caller);
}

bool heap_explain_fault(uintptr_t address, MemoryAccess access, const void* pc) {
    return heap::GuardedPool::explain_any(address, access, pc);
}

} // namespace bedrock
