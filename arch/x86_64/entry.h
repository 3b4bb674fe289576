// SPDX-License-Identifier: MIT
// The x86-64 bring-up steps that x86_64_entry (entry.cpp) runs in order, before kernel_main,
// and the boot.S data the C++ side of the arch layer shares.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kernel/boot_info.h"

extern "C" {
extern char x86_64_boot_stack_guard[];    // the kBootStackGuardSize bytes below the boot stack
extern uint64_t x86_64_tss_descriptor[2]; // the GDT's TSS slot (selector 0x18)
extern uint64_t x86_64_early_pml4[512];   // boot.S's 0-4 GiB identity map (secondaries' way in)
}

namespace bedrock::arch::x86_64 {

inline constexpr uint64_t kBootStackGuardSize = 4096; // one page, as boot.S reserves it
// The page the secondaries' real-mode trampoline runs in (trampoline.S's TRAMPOLINE_BASE).
inline constexpr uint64_t kTrampolinePage = 0x8000;

void init_console();    // COM1, 115200 8N1
void init_exceptions(); // TSS (double-fault stack), IDT for the 32 CPU exception vectors
// The boot CPU's per-CPU register (cpu_local() reads null until set_cpu_local()), the PICs
// masked, its local APIC enabled, the timer and spurious interrupt gates (cpu.cpp).
void init_boot_cpu();
// TSC frequency against the PIT, else the ACPI PM timer of the FADT the RSDP leads to (0: none).
void calibrate_clock(uint64_t acpi_rsdp);
// Fills BootInfo's CPU list from the ACPI MADT (RSDP from the boot protocol, else the BIOS
// areas), or with the boot CPU alone; reserves the secondaries' trampoline page. Before
// map_memory(): it reads firmware tables and the BIOS data area through the early map.
void find_cpus(kernel::BootInfo& boot);

// Per-CPU descriptor tables (exceptions.cpp): a secondary CPU needs this many bytes
// (page-aligned) for its GDT, TSS and double-fault stack.
inline constexpr size_t kCpuDescriptorTablesSize = 5 * 4096;
// On a secondary CPU: builds its GDT and TSS in `tables_memory`, loads them and the IDT.
void init_secondary_exceptions(void* tables_memory);
// After a page-table entry of the identity map lost its present bit (and the calling CPU ran
// invlpg): makes every other online CPU drop its TLB entries, so that its accesses there fault
// too, before it makes another access of its own (cpu.cpp: an NMI each, which the other CPUs
// take even with interrupts masked). Any CPU; returns once every NMI was accepted.
void flush_tlbs_of_other_cpus();
// Installs `handler` (an entry stub's address) for `vector` in the IDT every CPU shares.
void set_interrupt_gate(uint8_t vector, uint64_t handler);

// The root of the final page tables (paging.cpp), once map_memory() has built them.
[[nodiscard]] uint64_t final_page_tables();

} // namespace bedrock::arch::x86_64
