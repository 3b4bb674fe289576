// SPDX-License-Identifier: MIT
// The local APIC (xAPIC, memory-mapped) of each x86-64 CPU: what SMP bring-up and the timer
// need. The 8259 PICs are remapped to vectors 0x20-0x2F and masked once on the boot CPU, so no
// legacy interrupt ever arrives on an exception vector once interrupts are enabled.
//
// Invariants: local_apic_base() is the same on every CPU (the firmware's, read from
// IA32_APIC_BASE on the boot CPU) and mapped (uncached) in both the early and the final page
// tables; an interrupt vector's handler sends end_of_interrupt() before it returns.
//
// A CPU without a local APIC (CPUID leaf 1 EDX bit 9 clear: none, or the firmware disabled it,
// e.g. QEMU's -cpu qemu64,-apic) leaves local_apic_base() 0: then the id reads as 0, enabling,
// the IPIs, the timer and end_of_interrupt() do nothing, and nothing is mapped for it.
#pragma once

#include <stdint.h>

namespace bedrock::arch::x86_64 {

// Interrupt vectors this kernel uses beside the 32 exceptions.
inline constexpr uint8_t kTimerVector = 0x40;
inline constexpr uint8_t kWakeVector = 0x41; // arch::send_event()'s IPI
inline constexpr uint8_t kSpuriousVector = 0xFF;
inline constexpr uint8_t kNmiVector = 2; // the CPU's own; TLB shootdowns arrive as NMIs

// The physical address of the local APIC's register page; 0 without a local APIC.
[[nodiscard]] uint64_t local_apic_base();
[[nodiscard]] bool has_local_apic();

// Boot CPU, once, before any other APIC function: reads the APIC base (if CPUID reports a local
// APIC), masks the PICs.
void init_interrupt_controllers();
// Every CPU: software-enables its local APIC (spurious vector kSpuriousVector), accepts every
// priority, and masks its timer.
void enable_local_apic();
// The calling CPU's local APIC id (0 without a local APIC).
[[nodiscard]] uint32_t local_apic_id();

// Sends INIT, then STARTUP twice with `start_page` (the trampoline's physical page number,
// below 0x100), with the delays the Intel SDM's MP initialization protocol asks for (10 ms
// after INIT, 200 us after each STARTUP). Returns false if an IPI was not accepted for
// delivery within a millisecond.
[[nodiscard]] bool send_init_startup(uint32_t apic_id, uint8_t start_page);

// Sends kWakeVector to the CPU `apic_id` (never as a broadcast: see kernel/smp.h
// for_each_other_online_cpu()); false if it was not accepted for delivery within a millisecond.
[[nodiscard]] bool send_wake(uint32_t apic_id);
// Sends an NMI to the CPU `apic_id`; false if it was not accepted for delivery within a
// millisecond.
[[nodiscard]] bool send_nmi(uint32_t apic_id);

// The calling CPU's timer: one interrupt on kTimerVector after 1/`hz` s (the count rate is
// measured once, against the TSC, at the first call); rearm_local_timer() starts the same count
// again (the timer interrupt calls it after its tick, so the interrupted code gets a whole period
// however long the tick took), unless stop_local_timer() masked it and stopped the count.
void start_local_timer(uint32_t hz);
void rearm_local_timer();
void stop_local_timer();
void end_of_interrupt();

} // namespace bedrock::arch::x86_64
