// SPDX-License-Identifier: MIT
// The CPU hooks of bedrock/platform.h for a host process, inline: the header a host build names
// in BEDROCK_PLATFORM_CPU_HOOKS (the benchmarks and libbedrock-malloc.so), so a malloc or free
// makes no call for them. Each thread is a CPU (cpu_slots.cpp); host threads are never
// interrupted inside Bedrock (signal handlers must not allocate), so masking is a no-op.
// Included by bedrock/platform.h only, after its declarations.
#pragma once

#include "hosted_cpu_slot.h"

namespace bedrock::platform {

[[nodiscard]] inline unsigned current_cpu() {
    return hosted_slots::calling_thread_slot();
}

[[nodiscard]] inline InterruptState disable_interrupts() {
    return 0;
}

inline void restore_interrupts(InterruptState) {}

} // namespace bedrock::platform
