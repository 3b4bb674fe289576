// SPDX-License-Identifier: MIT
// The interface between the portable test kernel and one architecture (arch/<arch>/).
//
// Each architecture implements every function here exactly once. The boot path is:
//   arch entry (assembly): stack, early identity map covering the kernel image, MMU on
//   -> arch C++ entry: console, exception vectors, firmware memory description -> BootInfo
//   -> kernel::kernel_main(BootInfo&)                               (kernel/main.cpp)
//   -> arch::map_memory(): the final identity map of every RAM range, page tables from
//      the BootPageSource, then tests and the exit.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kernel/boot_info.h"

namespace bedrock::kernel {
class BootPageSource;
struct CpuLocal;
} // namespace bedrock::kernel

namespace bedrock::arch {

// Name printed in the boot banner ("x86_64", "aarch64").
extern const char* const kName;

// Writes bytes to the serial console, polled. Usable from the first line of C++, from fault
// handlers and with interrupts off; never allocates.
void console_write(const char* text, size_t length);

enum class ExitStatus { Success, Failure };

// Ends the QEMU run with a status the test harness can tell apart from QEMU's own failures.
[[noreturn]] void exit(ExitStatus status);

// The callee-saved CPU state at one call of arch_save_context() (kernel/trap.h), which returns
// 0 when it saves and 1 when arch_resume_context() jumps back there; the function that called
// it must still be running then. Assembly, per arch (arch/<arch>/context.S): x86-64 keeps rbx,
// rbp, r12-r15, rsp and the return address; AArch64 x19-x30 and sp (kernel code has no
// floating point).
struct SavedContext {
    uint64_t registers[14];
};

// Nanoseconds since some point during boot, monotonic, from the CPU's own counter (x86-64: the
// TSC calibrated once against a fixed-frequency timer; AArch64: CNTVCT_EL0 / CNTFRQ_EL0).
// For boot-log timings; resolution of a microsecond or better.
[[nodiscard]] uint64_t nanoseconds();

// Physical addresses below this limit are identity-mapped as RAM from boot on, before
// map_memory(); page tables for map_memory() are taken from below it.
[[nodiscard]] uint64_t early_mapped_limit();

// The first physical address the final identity map cannot reach: RAM the firmware lists at or
// above it is cut off there by the kernel (named in the boot log), never mapped or allocated.
// x86-64: the CPU's MAXPHYADDR, at most 2^47 (the identity map's addresses must be canonical
// lower-half ones); AArch64: the CPU's PARange (TCR_EL1.IPS, set from it by boot.S), at most 2^48
// (the 48-bit map).
[[nodiscard]] uint64_t physical_address_limit();

// The ranges map_memory() maps as device memory, known once the arch entry has read the
// firmware's description (before kernel_main()): AArch64 virt's device window and the GICv3
// redistributor regions beyond it; x86-64 the local APIC's page. RAM the firmware lists over
// them is cut out of boot.ram by kernel_main() (named in the boot log): it is never mapped twice
// nor handed out.
inline constexpr size_t kMaxDeviceRanges = 1 + kernel::kMaxPerCpuRegions;
using DeviceRanges = kernel::RangeList<kMaxDeviceRanges>;
[[nodiscard]] DeviceRanges device_ranges();

// Builds the final identity map: every range in boot.ram as Normal write-back memory (except
// physical page 0, left unmapped so that null dereferences fault), plus device_ranges() as
// device memory, and switches to it. Takes table pages from `tables`. Panics (with a message)
// if `tables` runs out.
void map_memory(const kernel::BootInfo& boot, kernel::BootPageSource& tables);

// Makes the 4 KiB page at `address` (page-aligned, RAM that map_memory() mapped) present or
// not present in the identity map, splitting the 2 MiB / 1 GiB block that maps it when needed
// (table pages from a reserve set aside at boot, PageTable::kSplitReserve), and invalidates its
// TLB entries. Returns false, changing nothing, when the address is not mapped RAM or no table
// page is left. Never allocates from Bedrock; safe with interrupts off and from any CPU (live
// changes take the page table's lock).
[[nodiscard]] bool set_page_present(uint64_t address, bool present);

// Maps [address, address + size) (page-aligned RAM that map_memory() mapped) with 4 KiB pages
// where a later set_page_present() nearby would otherwise unmap it for a moment (AArch64's
// break-before-make, kernel/page_table.h): for a secondary CPU's stack, before the CPU starts,
// since an exception's entry pushes onto it. Returns false when the range is not mapped RAM
// (changing nothing) or no table page is left (blocks split by then stay split, mapping the same
// memory the same way). Serialised with set_page_present().
[[nodiscard]] bool map_with_pages(uint64_t address, uint64_t size);

// CPUs and interrupts (kernel/smp.h drives them).

// Masks interrupts on the calling CPU and returns the previous mask; restore_interrupts() puts
// it back; enable_interrupts() unmasks them. Nest as pairs. Safe in handlers.
[[nodiscard]] uintptr_t disable_interrupts();
void restore_interrupts(uintptr_t previous);
void enable_interrupts();

// The calling CPU's hardware id, in BootInfo::cpu_ids' terms.
[[nodiscard]] uint64_t cpu_hardware_id();

// Points the calling CPU's per-CPU register (x86-64: GS base; AArch64: TPIDR_EL1) at `cpu`
// (null: none); cpu_local() reads it back: null before the first set_cpu_local() on that CPU,
// never a fault. cpu_local() is on the allocator's fast paths (platform::current_cpu()): one
// load from the per-CPU register, no lock, no call into the firmware.
void set_cpu_local(kernel::CpuLocal* cpu);
[[nodiscard]] kernel::CpuLocal* cpu_local();

// Starts the CPU `cpu.hardware_id` at the arch's secondary entry, which sets it up like the
// boot CPU (stack cpu.stack_top, per-CPU register, exception handling, final page tables) and
// calls kernel::secondary_cpu_main(cpu). Returns false if the CPU could not be started (the
// firmware refused, or - AArch64 - the GIC has no redistributor for it, which is named first);
// returns without waiting for it to come up. Boot CPU only, one at a time.
[[nodiscard]] bool start_cpu(kernel::CpuLocal& cpu);

// A periodic interrupt on the calling CPU, `hz` times per second (x86-64: the local APIC timer;
// AArch64: the EL1 physical timer through the GIC), whose handler calls `tick` with interrupts
// masked and then starts the next period, so a tick longer than the period stretches it rather
// than starving the interrupted code; stop_timer() stops it on the calling CPU, and no tick runs
// there after it, not even for an interrupt the timer raised before that the CPU has not yet
// taken. start_timer() does not unmask interrupts; it returns false, starting nothing, where the
// arch has no timer interrupt (yet).
[[nodiscard]] bool start_timer(uint32_t hz, void (*tick)());
void stop_timer();

// Idle waiting (kernel/smp.cpp's secondaries between pieces of work): wait_for_event() waits in
// a low-power state - so an idle virtual CPU gives its host thread back - until another CPU
// calls send_event(), an interrupt arrives, or for no reason at all (callers re-check their
// condition in a loop). Call it with interrupts masked; it returns with them masked. An event
// sent after the caller's last check of its condition is never lost. x86-64: `sti; hlt` woken by
// an IPI to each other online CPU (kernel/smp.h for_each_other_online_cpu(): never a broadcast,
// which would reach CPUs the kernel never started); AArch64: `wfi` woken by a GIC software
// interrupt to every other CPU (one the kernel never started is off in PSCI or in the firmware's
// holding loop, which an interrupt does not release), or `wfe` / `sev` where the kernel found no
// GIC.
void wait_for_event();
void send_event();

} // namespace bedrock::arch

extern "C" int arch_save_context(bedrock::arch::SavedContext* context)
    __attribute__((returns_twice));
extern "C" [[noreturn]] void arch_resume_context(bedrock::arch::SavedContext* context);

// The top of the boot CPU's stack (arch/<arch>/boot.S): its CpuLocal::stack_top.
extern "C" char arch_boot_stack_top[];

namespace bedrock::kernel {

// The portable kernel's entry point, called by the arch C++ entry once BootInfo is filled.
[[noreturn]] void kernel_main(BootInfo& boot);

} // namespace bedrock::kernel
