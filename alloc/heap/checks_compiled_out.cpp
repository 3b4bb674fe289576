// SPDX-License-Identifier: MIT
// The checked-mode API (bedrock/heap_checks.h) with checked mode compiled out, but for the check
// level and the error hook (heap_maintenance.cpp)
// (BEDROCK_CHECKED=OFF): every call accepts only what changes nothing, and a guarded
// allocation is a plain one.
#include "bedrock/heap_checks.h"

#include "heap/heap_entry.h"
#include "heap/heap_state.h"

namespace bedrock {

void heap_set_quarantine_limit(Heap&, size_t) {}

void heap_flush_quarantine(Heap&) {}

uint64_t heap_checkpoint(Heap&) {
    return 0;
}

LeakSummary heap_leaks_since(Heap&, uint64_t) {
    return LeakSummary{};
}

LeakSummary heap_report_leaks(Heap&, LineWriter, void*, uint64_t) {
    return LeakSummary{};
}

bool heap_enable_guard_pages(Heap&, GuardPageOptions) {
    return false;
}

void* heap_allocate_guarded(Heap& heap, size_t size, size_t alignment) {
    return heap::allocate(heap, size, alignment, BEDROCK_HEAP_CALLER());
}

bool heap_explain_fault(uintptr_t, MemoryAccess, const void*) {
    return false;
}

} // namespace bedrock
