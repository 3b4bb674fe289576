// What the AArch64 arch layer's files share among themselves (not part of kernel/arch.h): PSCI
// calls (psci.cpp), the GIC (gic.cpp) and the timer interrupt (timer.cpp). aarch64_entry
// configures them from BootInfo before kernel_main, on the boot CPU.
#pragma once

#include <stdint.h>

#include "bedrock/phys_range.h"
#include "kernel/boot_info.h"

namespace bedrock::arch::aarch64 {

// virt's on-chip devices (GIC, UART, RTC, GPIO, ...), mapped Device-nGnRnE by boot.S's early map
// and by map_memory(); the kernel uses the UART and the GIC.
inline constexpr PhysRange kDeviceWindow{0x08000000, 0x08000000};

// PSCI (Arm DEN 0022) return codes.
enum class PsciStatus : int64_t {
    Success = 0,
    NotSupported = -1,
    InvalidParameters = -2,
    Denied = -3,
    AlreadyOn = -4,
    OnPending = -5,
    InternalFailure = -6,
    NotPresent = -7,
    Disabled = -8,
    InvalidAddress = -9,
};

// Remembers the conduit and CPU_ON's function id (BootInfo::psci_conduit, psci_cpu_on).
void init_psci(const kernel::BootInfo& boot);
// CPU_ON: starts the CPU whose MPIDR affinity is `target` at physical address `entry` with
// x0 = `context`. NotSupported without a usable PSCI.
[[nodiscard]] PsciStatus psci_cpu_on(uint64_t target, uint64_t entry, uint64_t context);
// The code's name as the specification spells it ("ALREADY_ON").
[[nodiscard]] const char* psci_status_name(PsciStatus status);

// The GIC the device tree describes (GICv2 or GICv3). init_gic() initialises the distributor
// (every shared interrupt disabled) and the calling CPU's interface; each other CPU calls
// init_gic_cpu_interface() before it unmasks interrupts. Both do nothing without a GIC; the
// other functions panic then (gic_ready() says which).
void init_gic(const kernel::InterruptController& controller);
void init_gic_cpu_interface();
[[nodiscard]] bool gic_ready();
[[nodiscard]] const char* gic_missing_reason();
// Enables or disables a private interrupt (PPI, INTID 16-31) on the calling CPU.
void enable_private_interrupt(uint32_t intid);
void disable_private_interrupt(uint32_t intid);
// The pending interrupt with the highest priority (acknowledged, now active), or kSpurious.
inline constexpr uint32_t kSpuriousInterrupt = 1023;
[[nodiscard]] uint32_t acknowledge_interrupt();
void end_of_interrupt(uint32_t intid);

// Remembers the timer's INTID (BootInfo::timer_interrupt).
void init_timer(const kernel::BootInfo& boot);
// The IRQ handler (exception_vectors.S, interrupts masked): acknowledges each pending interrupt,
// rearms the timer and calls its tick, signals the end of the interrupt. Anything other than the
// timer is unexpected and panics.
extern "C" void aarch64_irq();

} // namespace bedrock::arch::aarch64
