// SPDX-License-Identifier: MIT
// SMP in the test kernel: the CPUs the firmware describes, each one's per-CPU data, starting the
// secondaries, and running work on every CPU at once (for the SMP tests and benchmarks).
//
// Boot: kernel_main() calls start_secondary_cpus() once the final page tables are live and the
// allocators are up. For each CPU in BootInfo::cpus other than the boot CPU it sets up a
// CpuLocal (index, hardware id, stack) and calls arch::start_cpu(); the arch's secondary entry
// brings the CPU into the same state as the boot CPU (stack, per-CPU register, exception
// handling, final page tables) and calls secondary_cpu_main(), which marks the CPU online and
// waits for work (idle in arch::wait_for_event(), woken by run_on_every_cpu()'s
// arch::send_event()). A CPU that does not check in within a timeout is reported by its
// hardware id and left out (should it come up later, it parks: CpuState::Abandoned); nothing
// waits forever. Then "smp: <N> CPUs online" is printed (N = 1 without secondaries).
//
// Invariants: cpu(i).index == i for i < online_cpu_count(); index 0 is the boot CPU; an index
// is never reused; this_cpu() on a CPU returns the CpuLocal whose index platform::current_cpu()
// reports there.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/platform.h"
#include "kernel/boot_info.h"

namespace bedrock::kernel {

// A started CPU's life: Starting -> Online (the CPU itself, in secondary_cpu_main()) or
// Starting -> Abandoned (the boot CPU, when the check-in time ran out; a CPU that arrives later
// then parks for good instead of running as a CPU nobody counts).
enum class CpuState : uint32_t { Starting, Online, Abandoned };

// One CPU's own data. The arch points the CPU's per-CPU register at it (x86-64: GS base,
// AArch64: TPIDR_EL1); `self` comes first so the arch can read the pointer back in one load.
struct CpuLocal {
    CpuLocal* self = nullptr;
    unsigned index = 0;        // dense, 0 = boot CPU; platform::current_cpu()
    uint64_t hardware_id = 0;  // x86-64: local APIC id; AArch64: MPIDR affinity bits
    uintptr_t stack_top = 0;   // the top of the CPU's kernel stack (16-byte aligned)
    uint32_t state = 0;        // CpuState, changed by compare-and-swap only (see smp.cpp)
    void* arch_data = nullptr; // the arch's per-CPU state (GDT/TSS on x86-64), if any
};

// Starts every CPU BootInfo::cpus lists besides the boot CPU and prints the online count.
void start_secondary_cpus(const BootInfo& boot);

// CPUs online (1 before start_secondary_cpus()).
[[nodiscard]] unsigned online_cpu_count();
// The calling CPU's data (the boot CPU's before start_secondary_cpus()).
[[nodiscard]] CpuLocal& this_cpu();
// Calls visit(cpu, context) for every online CPU but the calling one: the CPUs an arch may send an
// interrupt to. A CPU the kernel never started (one the firmware does not describe, or left
// parked or waiting for its start-up IPI) is not among them: an interrupt meant for the kernel's
// CPUs must never reach it (QEMU's microvm runs such a CPU from its reset vector, into the
// firmware and the kernel's own entry, on any interrupt). O(CPUs started).
void for_each_other_online_cpu(void (*visit)(const CpuLocal& cpu, void* context), void* context);

// Runs work(context, index) on every online CPU at once (the caller's included, as index 0 when
// called on the boot CPU) and returns when every CPU has returned from it. Boot CPU only; not
// nestable.
void run_on_every_cpu(void (*work)(void* context, unsigned index), void* context);

// The arch's secondary entry calls this on the new CPU, once it is set up. Never returns.
[[noreturn]] void secondary_cpu_main(CpuLocal& cpu);

} // namespace bedrock::kernel
