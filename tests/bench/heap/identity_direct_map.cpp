// SPDX-License-Identifier: MIT
// platform::phys_to_virt for heap_bench: its page frame allocator manages a range of the
// process's own address space, so a "physical" address is the virtual one.
#include "bedrock/platform.h"

namespace bedrock::platform {

void* phys_to_virt(PhysAddr phys) {
    return reinterpret_cast<void*>(static_cast<uintptr_t>(phys));
}

} // namespace bedrock::platform
