// SPDX-License-Identifier: MIT
// Bring-up of Bedrock's allocators in the test kernel, and access to them for the tests.
#pragma once

#include <stddef.h>

#include "bedrock/page_frame_allocator.h"
#include "bedrock/phys_range.h"
#include "kernel/heap_boot_options.h"

namespace bedrock::kernel {

// Hands the usable ranges to the page frame allocator, creates the default heap on it (checked
// as `options` say) and prints both boot reports (managed pages, metadata, start-up time, free
// blocks per order, regions; the heap's statistics). Panics with a message if either cannot be
// brought up (e.g. not enough RAM for the metadata).
void bring_up_allocators(const PhysRange* usable, size_t count, const HeapBootOptions& options);

// The kernel's page frame allocator, owning all usable RAM after bring_up_allocators().
PageFrameAllocator& page_frame_allocator();

} // namespace bedrock::kernel
