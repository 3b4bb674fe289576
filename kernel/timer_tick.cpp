// SPDX-License-Identifier: MIT
// Each CPU's timer tick (see timer_tick.h).
#include "kernel/timer_tick.h"

#include "bedrock/platform.h"
#include "kernel/boot_info.h"

namespace bedrock::kernel {
namespace {

constinit TimerTick g_ticks[kMaxBootCpus] = {};

} // namespace

void set_timer_tick(TimerTick tick) {
    __atomic_store_n(&g_ticks[platform::current_cpu()], tick, __ATOMIC_RELEASE);
}

bool run_timer_tick() {
    const TimerTick tick = __atomic_load_n(&g_ticks[platform::current_cpu()], __ATOMIC_ACQUIRE);
    if (tick == nullptr) {
        return false;
    }
    tick();
    return true;
}

} // namespace bedrock::kernel
