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

// Installs the SIGSEGV handler that has heap_explain_fault() report a fault in a guard page
// (fault_handler.cpp), in front of the program's disposition. Called by start_heap() when guard
// pages are on. O(1).
void install_fault_handler();

// A LineWriter (bedrock/error_report.h): `line` and its newline on stderr in one write(2), so
// that lines written at once by several processes (children exiting together under
// BEDROCK_LEAKS) stay whole; a line is cut at 510 bytes. No allocation.
void write_line_to_stderr(void* context, const char* line);

// The heap, started on first use; null only if it could not start (no address space). O(1)
// after the first call.
[[nodiscard]] inline Heap* heap() {
    Heap* started = g_heap.load(std::memory_order_acquire);
    return started != nullptr ? started : start_heap();
}

} // namespace bedrock::preload
