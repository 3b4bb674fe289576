// SPDX-License-Identifier: MIT
// What the heap's slow halves share across their files: heap.cpp (malloc's and free's slow paths,
// realloc), pointer_reports.cpp (why a pointer is no live block, and the damage a slow path found)
// and heap_maintenance.cpp (draining, trimming, checking). The fast paths (fast_paths.h) call
// none of these. Owns no state; each function takes the locks its part does, in heap_state.h's
// order, and raises its reports with no lock held.
#pragma once

#include <stdint.h>

#include "bedrock/platform.h"
#include "heap/class_cache.h"
#include "heap/heap_state.h"
#include "heap/slab.h"
#include "report/call_trace.h"

namespace bedrock::heap {

// The end of every slow small-block path (heap.cpp): interrupts back to `previous`, then the
// reports of what the path found: damage in the arenas, the slab `corrupt` retired (or null),
// and `failures` a flush met.
void finish_small(Heap& heap, platform::InterruptState previous, const Slab* corrupt,
                  const FlushFailures& failures, Caller caller);

// What drain_calling_cpu() does with the cache's own storage once its blocks are back.
enum class CacheStorage : uint8_t { Keep, GiveBack };

// Gives every block the calling CPU's cache holds back to the classes, and with
// CacheStorage::GiveBack the cache's storage to the arenas (made again on next use).
// O(cached blocks). In heap_maintenance.cpp.
void drain_calling_cpu(Heap& heap, CacheStorage storage, Caller caller);

// In pointer_reports.cpp:
// What `block` is in `slab` (a slab of its class), under the class lock: a handed-out block that
// carries its free mark sits in a CPU cache, so it is free.
[[nodiscard]] SlabLookup classify_slab_block(Heap& heap, const Slab* slab, const void* block);
// Reports a slab retired because its free list was found corrupt (slab.h).
[[gnu::cold]] void report_corrupt_slab(Heap& heap, const Slab* slab);
// Reports what a flush found (cpu_cache.h): a block freed twice on two CPUs at once, or a cached
// block whose free mark was overwritten after free (its slab found from the arenas' metadata
// instead, it went back to it).
[[gnu::cold]] void report_flush(Heap& heap, const FlushFailures& failures, Caller caller);

} // namespace bedrock::heap
