// SPDX-License-Identifier: MIT
// settle_heap(): a heap brought down to what its live blocks need, for the in-kernel tests that
// compare its figures before and after work on several CPUs. Every CPU's cached blocks go back to
// their classes (the other CPUs are idle between run_on_every_cpu() calls, as heap_drain_cpu()
// requires), the quarantine is emptied, and empty slabs and arenas are given back.
#pragma once

#include "bedrock/heap.h"
#include "bedrock/heap_checks.h"
#include "kernel/smp.h"

namespace bedrock::kernel {

inline void settle_heap(Heap& heap) {
    heap_flush_quarantine(heap);
    for (unsigned cpu = 0; cpu < online_cpu_count(); ++cpu) {
        heap_drain_cpu(heap, cpu);
    }
    heap_trim(heap);
}

} // namespace bedrock::kernel
