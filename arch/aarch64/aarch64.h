// SPDX-License-Identifier: MIT
// What the AArch64 arch layer's files share among themselves (not part of kernel/arch.h): PSCI
// calls (psci.cpp), the GIC (gic.cpp), the timer interrupt (timer.cpp) and the page table's
// split window, translation check and no-map ranges (paging.cpp). aarch64_entry configures them
// from BootInfo before kernel_main, on the boot CPU.
#pragma once

#include <stdint.h>

#include "bedrock/phys_range.h"
#include "kernel/boot_info.h"

// 1 when boot.S was entered at EL3 and the kernel runs in Secure EL1, else 0; written by boot.S
// before any C++ runs.
extern "C" uint32_t aarch64_secure_el1;

namespace bedrock::arch::aarch64 {

// virt's on-chip devices (GIC, UART, RTC, GPIO, ...), mapped Device-nGnRnE by boot.S's early map
// and by map_memory(); the kernel uses the UART and the GIC.
inline constexpr PhysRange kDeviceWindow{0x08000000, 0x08000000};

// Whether a translation fault at `address` (FAR_EL1) fell in the window of a live block split
// (kernel/page_table.h's break-before-make): true once the address translates again, so the
// faulting access can be retried; false for a real fault (no split ran or runs, and the address
// does not translate). Waits while a split has a block unmapped. Safe in the exception handler.
[[nodiscard]] bool fault_in_split_window(uint64_t address);
// Whether `address` translates now (a stage 1 EL1 read walk, AT S1E1R; PAR_EL1.F clear).
[[nodiscard]] bool translates(uint64_t address);
// The device tree's no-map ranges, which map_memory() left out of the map (BootInfo::no_map).
[[nodiscard]] const kernel::RangeList<kernel::kMaxFirmwareRanges>& no_map_ranges();

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
// Whether the device tree gave a PSCI conduit (without one, psci_cpu_on() says NotSupported).
[[nodiscard]] bool psci_available();
// The code's name as the specification spells it ("ALREADY_ON").
[[nodiscard]] const char* psci_status_name(PsciStatus status);

// The GIC the device tree describes (GICv2 or GICv3). init_gic() initialises the distributor
// (every shared interrupt disabled) and the calling CPU's interface; each other CPU calls
// init_gic_cpu_interface() before it unmasks interrupts. Each CPU interface is set up with the
// wake interrupt enabled. Both do nothing without a GIC; the other functions need one
// (gic_ready(); gic_missing_reason() says why not).
void init_gic(const kernel::InterruptController& controller);
void init_gic_cpu_interface();
[[nodiscard]] bool gic_ready();
[[nodiscard]] const char* gic_missing_reason();
// GICv3 redistributor regions outside kDeviceWindow (page-aligned), which map_memory() maps as
// Device memory and then announces with gic_regions_mapped(): until then they are not searched.
[[nodiscard]] const kernel::RangeList<kernel::kMaxPerCpuRegions>&
gic_regions_beyond_device_window();
void gic_regions_mapped();
// Whether the CPU with MPIDR affinity `mpidr` can use the GIC: true without a GIC or on GICv2;
// on GICv3, whether a region holds its redistributor. For the boot CPU, before it starts `mpidr`.
[[nodiscard]] bool gic_serves_cpu(uint64_t mpidr);
// Enables or disables a private interrupt (SGI or PPI, INTID 0-31) on the calling CPU.
void enable_private_interrupt(uint32_t intid);
void disable_private_interrupt(uint32_t intid);
// The pending interrupt with the highest priority, acknowledged (now active): its INTID
// (kSpuriousInterrupt and up: none) and what end_of_interrupt() must hand back (GICv2 adds the
// sending CPU of a software interrupt).
struct Acknowledged {
    uint32_t intid;
    uint32_t raw;
};
inline constexpr uint32_t kSpuriousInterrupt = 1020; // 1020-1023 are special INTIDs
[[nodiscard]] Acknowledged acknowledge_interrupt();
void end_of_interrupt(Acknowledged interrupt);
// The software interrupt (SGI) that wakes idle CPUs (arch::send_event()); its handler does
// nothing, it only ends a wfi.
inline constexpr uint32_t kWakeInterrupt = 0;
void send_wake_to_other_cpus();

// Remembers the timer's INTID (BootInfo::timer_interrupt).
void init_timer(const kernel::BootInfo& boot);
// The IRQ handler (exception_vectors.S, interrupts masked): acknowledges the pending interrupt;
// for the timer rearms it and calls its tick; for the wake interrupt does nothing; then signals
// the end of the interrupt. Anything else is unexpected and panics.
extern "C" void aarch64_irq();

} // namespace bedrock::arch::aarch64
