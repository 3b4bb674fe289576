// SPDX-License-Identifier: MIT
// The heap's entry points with the caller made explicit, for the files that implement the public
// APIs (heap.cpp, c_api.cpp, c_bindings.cpp, operator_new.cpp): each public function passes its
// own frame (whose record holds its return address), so checked mode's call traces start at the
// application's call. malloc's and free's fast paths are inline in them (fast_paths.h).
#pragma once

#include <stddef.h>

#include "bedrock/heap.h"
#include "bedrock/heap_checks.h"
#include "heap/fast_paths.h"
#include "report/call_trace.h"

// The Caller of the function this is written in, a call of `family` (CallFamily): the malloc
// family's for BEDROCK_HEAP_CALLER(). Macros: the builtins must be evaluated in the public
// function's own frame. Unknown (and free) when checking is compiled out.
#define BEDROCK_HEAP_CALLER_OF(family)                                                             \
    (::bedrock::kHeapChecksCompiled                                                                \
         ? ::bedrock::heap::Caller::of(__builtin_frame_address(0), ::bedrock::heap::family)        \
         : ::bedrock::heap::Caller::unknown())
#define BEDROCK_HEAP_CALLER() BEDROCK_HEAP_CALLER_OF(CallFamily::Malloc)

namespace bedrock::heap {

// The default heap (bedrock/heap.h's default_heap()), defined in heap.cpp and read inline by the
// public entry points: malloc and free make no call to find it.
extern constinit Heap* g_default_heap;
[[gnu::always_inline]] inline Heap* default_heap_inline() {
    return __atomic_load_n(&g_default_heap, __ATOMIC_ACQUIRE);
}

// For the page frame allocator's reclaim hook (heap_lifecycle.cpp): gives the page frame
// allocator what `heap` holds idle - every class's empty slabs, the medium blocks the arenas keep
// for reuse, the spare arena - taking only locks that are free now (the allocation that failed
// may hold some of them); returns whether pages went back. The calling CPU's cached blocks stay
// (the failed allocation may be this CPU's refill). O(classes + partial slabs).
[[nodiscard]] bool reclaim_without_waiting(Heap& heap);
[[nodiscard]] void* reallocate(Heap& heap, void* block, size_t size, Caller caller);
// For an allocation entry point outside heap.cpp: whether `heap` is no live heap (destroyed, or
// memory that never held one), the call then reported to the platform as heap.cpp's own mallocs
// report it; the caller allocates nothing.
[[nodiscard]] bool refuse_if_not_live(const Heap& heap, Caller caller);
[[nodiscard]] size_t usable_size(Heap& heap, const void* block, Caller caller);

// Whether the pads in front of the heap's state and of each of its arenas hold what they were
// given: each one a write past the end of the memory before it changed is reported (at the
// state, or at the first such arena with their count) and written anew. For heap_check() and
// heap_destroy(). O(arenas).
[[nodiscard]] bool pads_hold(Heap& heap, Caller caller);

// Whether `heap` allocates checked blocks now (a check level other than Off).
[[gnu::always_inline]] inline bool checks_are_on(const Heap& heap) {
    return heap.errors.level() != CheckLevel::Off;
}
// For a sized delete of `block` naming `named` bytes: reports size-mismatch if `block` is a live
// checked block asked for with another size. Says nothing about anything else (the free that
// follows reports a bad pointer). O(1) lookup, as free's.
void check_named_size(Heap& heap, const void* block, size_t named, Caller caller);

} // namespace bedrock::heap
