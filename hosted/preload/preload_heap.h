// SPDX-License-Identifier: MIT
// The heap behind libbedrock-malloc.so, started by the first call that needs it (malloc may be
// called by the dynamic linker and by libc before any constructor has run, so there is none).
#pragma once

#include <atomic>

#include "bedrock/heap.h"

namespace bedrock::preload {

extern std::atomic<Heap*> g_heap;

// Starts the heap (preload_heap.cpp); null if that failed. Called by heap() only.
[[nodiscard]] Heap* start_heap();

// The heap, started on first use; null only if it could not start (no address space). O(1)
// after the first call.
[[nodiscard]] inline Heap* heap() {
    Heap* started = g_heap.load(std::memory_order_acquire);
    return started != nullptr ? started : start_heap();
}

} // namespace bedrock::preload
