// SPDX-License-Identifier: MIT
// The periodic timer interrupt (kernel/arch.h start_timer/stop_timer) on the non-secure EL1
// physical timer (CNTP_*_EL0, a private interrupt of each CPU; INTID 30 on QEMU virt), and the
// IRQ dispatch that serves it.
//
// Each CPU has its own timer and its own tick; the handler rearms the timer relative to now
// (CNTP_TVAL_EL0 = one period) after calling the tick, so the interrupted code gets at least one
// period between ticks however slow a tick is (a tick slower than the period, rearmed before it,
// left the next interrupt pending on return and starved the interrupted code), and the
// level-sensitive timer line is low again before the end of the interrupt. The tick is kept by
// kernel/timer_tick.h. Invariant: g_periods[i] is written only by CPU i (kernel index) with its
// interrupts masked or its timer off.
#include "arch/aarch64/aarch64.h"
#include "bedrock/platform.h"
#include "kernel/arch.h"
#include "kernel/console.h"
#include "kernel/smp.h"
#include "kernel/timer_tick.h"

namespace bedrock::arch {
namespace {

constexpr uint64_t kTimerEnable = 1; // CNTP_CTL_EL0.ENABLE, IMASK clear
constexpr uint32_t kFirstPrivateInterrupt = 16;
constexpr uint32_t kFirstSharedInterrupt = 32;

constinit uint64_t g_periods[kernel::kMaxBootCpus] = {}; // each CPU's, in counter ticks
constinit uint32_t g_timer_intid = 0;

uint64_t& this_cpu_period() {
    return g_periods[platform::current_cpu()];
}

void arm(uint64_t period) {
    asm volatile("msr cntp_tval_el0, %0\n"
                 "msr cntp_ctl_el0, %1\n"
                 "isb"
                 :
                 : "r"(period), "r"(kTimerEnable)
                 : "memory");
}

void disarm() {
    asm volatile("msr cntp_ctl_el0, xzr; isb" : : : "memory");
}

} // namespace

bool start_timer(uint32_t hz, void (*tick)()) {
    if (!aarch64::gic_ready()) {
        kernel::print("timer: no interrupt controller: %s\n", aarch64::gic_missing_reason());
        return false;
    }
    if (g_timer_intid < kFirstPrivateInterrupt || g_timer_intid >= kFirstSharedInterrupt) {
        kernel::print("timer: the device tree's /timer gives no private interrupt for the EL1 "
                      "physical timer (INTID %u)\n",
                      g_timer_intid);
        return false;
    }
    uint64_t frequency;
    asm volatile("mrs %0, cntfrq_el0" : "=r"(frequency));
    if (hz == 0 || frequency / hz == 0) {
        kernel::print("timer: %u Hz is out of range (counter at %lu Hz)\n", hz, frequency);
        return false;
    }
    const uintptr_t interrupts = disable_interrupts();
    kernel::set_timer_tick(tick);
    this_cpu_period() = frequency / hz;
    aarch64::enable_private_interrupt(g_timer_intid);
    arm(this_cpu_period());
    restore_interrupts(interrupts);
    return true;
}

void stop_timer() {
    const uintptr_t interrupts = disable_interrupts();
    disarm();
    if (aarch64::gic_ready() && g_timer_intid != 0) {
        aarch64::disable_private_interrupt(g_timer_intid);
    }
    kernel::set_timer_tick(nullptr);
    restore_interrupts(interrupts);
}

namespace aarch64 {

void init_timer(const kernel::BootInfo& boot) {
    g_timer_intid = boot.timer_interrupt;
}

extern "C" void aarch64_irq() {
    const Acknowledged interrupt = acknowledge_interrupt();
    if (interrupt.intid >= kSpuriousInterrupt) {
        return; // it went away before it was acknowledged
    }
    if (interrupt.intid == g_timer_intid) {
        if (kernel::run_timer_tick()) {
            arm(this_cpu_period());
        } else {
            disarm(); // stopped while it was pending
        }
    } else if (interrupt.intid != kWakeInterrupt) {
        kernel::panic("aarch64: unexpected interrupt %u on CPU 0x%lx", interrupt.intid,
                      cpu_hardware_id());
    }
    end_of_interrupt(interrupt);
}

} // namespace aarch64
} // namespace bedrock::arch
