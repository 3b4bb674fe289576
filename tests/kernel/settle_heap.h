// SPDX-License-Identifier: MIT
// settle_heap(): a heap brought down to what its live blocks need, for the in-kernel tests that
// compare its figures before and after work on several CPUs; and the free pages a test that
// exhausts the page frame allocator compares with. Every CPU's cached blocks go back to
// their classes (the other CPUs are idle between run_on_every_cpu() calls, as heap_drain_cpu()
// requires), the quarantine is emptied, and empty slabs and arenas are given back. The pages on
// the CPUs' page lists stay there: they count as free, and a request from any CPU reaches them.
#pragma once

#include "bedrock/heap.h"
#include "bedrock/heap_checks.h"
#include "kernel/allocators.h"
#include "kernel/smp.h"

namespace bedrock::kernel {

inline void settle_heap(Heap& heap) {
    heap_flush_quarantine(heap);
    for (unsigned cpu = 0; cpu < online_cpu_count(); ++cpu) {
        heap_drain_cpu(heap, cpu);
    }
    heap_trim(heap);
}

// The page frame allocator's free pages once the default heap holds nothing idle. A test whose
// page allocations fail takes idle memory back from every heap over the allocator (its reclaim
// hook), so it compares its free pages at the end with these, not with whatever the default
// heap happened to hold idle when it started.
inline uint64_t free_pages_with_default_heap_trimmed() {
    if (Heap* heap = default_heap()) {
        heap_trim(*heap);
    }
    return page_frame_allocator().free_pages();
}

} // namespace bedrock::kernel
