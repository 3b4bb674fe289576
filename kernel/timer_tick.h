// SPDX-License-Identifier: MIT
// Each CPU's timer tick: the function its periodic timer interrupt calls (kernel/arch.h
// start_timer()), kept by CPU index for both arches' timer interrupt handlers.
//
// Invariant: CPU i's tick is written only by CPU i (starting or stopping its own timer) and read
// only by CPU i's timer interrupt. stop_timer() clears it before it masks the timer, so an
// interrupt the timer raised before (pending while the CPU had interrupts masked) finds no tick
// and runs nothing (kernel/arch.h: no tick runs after stop_timer()).
#pragma once

namespace bedrock::kernel {

using TimerTick = void (*)();

// Sets the calling CPU's tick, or clears it (null).
void set_timer_tick(TimerTick tick);

// For the arch's timer interrupt: runs the calling CPU's tick, if it has one, and returns whether
// it did (the arch starts the timer's next period only then).
[[nodiscard]] bool run_timer_tick();

} // namespace bedrock::kernel
