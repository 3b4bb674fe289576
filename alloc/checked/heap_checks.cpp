// The checked-mode API (bedrock/heap_checks.h) over CheckedBlocks and GuardedPool. With
// checking compiled out these accept only what changes nothing and reach no checked-mode code,
// so the linker drops it.
#include "bedrock/heap_checks.h"

#include "heap/heap_entry.h"
#include "heap/heap_state.h"

namespace bedrock {

bool heap_set_check_level(Heap& heap, CheckLevel level) {
    if (!kHeapChecksCompiled && level != CheckLevel::Off) {
        return false;
    }
    heap.errors.set_level(level);
    return true;
}

CheckLevel heap_check_level(Heap& heap) {
    return heap.errors.level();
}

void heap_set_error_hook(Heap& heap, HeapErrorHook hook, void* context) {
    heap.errors.set_hook(hook, context);
}

void heap_set_quarantine_limit(Heap& heap, size_t bytes) {
    if constexpr (kHeapChecksCompiled) {
        heap.checked.set_quarantine_limit(heap, bytes, BEDROCK_HEAP_CALLER());
    }
}

void heap_flush_quarantine(Heap& heap) {
    if constexpr (kHeapChecksCompiled) {
        heap.checked.flush(heap, BEDROCK_HEAP_CALLER());
    }
}

uint64_t heap_checkpoint(Heap& heap) {
    if constexpr (kHeapChecksCompiled) {
        return heap.checked.checkpoint();
    }
    return 0;
}

LeakSummary heap_leaks_since(Heap& heap, uint64_t checkpoint) {
    if constexpr (kHeapChecksCompiled) {
        return heap.checked.leaks(checkpoint, nullptr, nullptr);
    }
    return LeakSummary{};
}

LeakSummary heap_report_leaks(Heap& heap, LineWriter write, void* context, uint64_t checkpoint) {
    if constexpr (kHeapChecksCompiled) {
        return heap.checked.leaks(checkpoint, write, context);
    }
    return LeakSummary{};
}

bool heap_enable_guard_pages(Heap& heap, GuardPageOptions options) {
    if constexpr (kHeapChecksCompiled) {
        return heap.guards.enable(heap, options);
    }
    return false;
}

void* heap_allocate_guarded(Heap& heap, size_t size, size_t alignment) {
    const heap::Caller caller = BEDROCK_HEAP_CALLER();
    if constexpr (kHeapChecksCompiled) {
        if ((alignment & (alignment - 1)) == 0) {
            const size_t align = alignment < kHeapMinAlignment ? kHeapMinAlignment : alignment;
            if (void* block = heap.guards.allocate(heap, size, align, caller)) {
                return block;
            }
            return heap.checked.allocate(heap, size, alignment, caller);
        }
    }
    return heap::allocate(heap, size, alignment, caller);
}

bool heap_explain_fault(uintptr_t address, MemoryAccess access, const void* pc) {
    if constexpr (kHeapChecksCompiled) {
        return heap::GuardedPool::explain_any(address, access, pc);
    }
    return false;
}

} // namespace bedrock
