// SPDX-License-Identifier: MIT
// AArch64 CPUs (kernel/arch.h): the DAIF interrupt mask, MPIDR as the hardware id, TPIDR_EL1 as
// the per-CPU register, starting secondaries with PSCI CPU_ON, and idle waiting (wfi, woken by
// the GIC's wake interrupt).
//
// Starting a CPU: start_cpu() leaves out a CPU the GIC cannot serve (GICv3: no redistributor in
// the device tree's regions), naming it, then publishes the boot CPU's MMU registers in
// aarch64_secondary_mmu (the final page tables: smp starts CPUs after map_memory()), cleans that
// and the CpuLocal to the point of coherency (the new CPU reads them with its MMU and caches off),
// and calls CPU_ON with entry = aarch64_secondary_start (boot.S, identity-mapped: its address is
// physical) and context = &cpu. boot.S brings the CPU to EL1 with the MMU on and calls
// aarch64_secondary_entry(), which sets up its GIC CPU interface and enters the portable kernel.
// Invariant: every CPU runs with the boot CPU's translation regime, so every start writes the same
// values to aarch64_secondary_mmu (boot CPU only, one start at a time, arch.h); a CPU that comes
// up late, after the next start began, still reads the right ones.
#include <stddef.h>
#include <stdint.h>

#include "arch/aarch64/aarch64.h"
#include "kernel/arch.h"
#include "kernel/console.h"
#include "kernel/smp.h"

// What a secondary loads before turning its MMU on (boot.S reads it as four words).
struct SecondaryMmu {
    uint64_t mair;
    uint64_t tcr;
    uint64_t ttbr0;
    uint64_t sctlr;
};
static_assert(sizeof(SecondaryMmu) == 32);
// boot.S reads the stack at this offset with the MMU off (CPU_LOCAL_STACK_TOP).
static_assert(offsetof(bedrock::kernel::CpuLocal, stack_top) == 24);

extern "C" {
constinit SecondaryMmu aarch64_secondary_mmu{};
extern char aarch64_secondary_start[];
[[noreturn]] void aarch64_secondary_entry(bedrock::kernel::CpuLocal& cpu);
}

namespace bedrock::arch {
namespace {

constexpr uint64_t kMpidrAffinity = 0xFF'00FF'FFFF; // Aff3 (39:32), Aff2..Aff0 (23:0)

// Writes the cache lines holding [address, address + size) back to the point of coherency, so a
// CPU with its caches off reads what this one wrote.
void clean_to_point_of_coherency(const void* address, size_t size) {
    uint64_t cache_type;
    asm volatile("mrs %0, ctr_el0" : "=r"(cache_type));
    const uint64_t line = uint64_t{4} << ((cache_type >> 16) & 0xF); // CTR_EL0.DminLine, words
    const auto start = reinterpret_cast<uintptr_t>(address) & ~(line - 1);
    const uintptr_t end = reinterpret_cast<uintptr_t>(address) + size;
    for (uintptr_t at = start; at < end; at += line) {
        asm volatile("dc cvac, %0" : : "r"(at) : "memory");
    }
    asm volatile("dsb ish" : : : "memory");
}

} // namespace

uintptr_t disable_interrupts() {
    uint64_t daif;
    asm volatile("mrs %0, daif; msr daifset, #2" : "=r"(daif) : : "memory");
    return daif;
}

void restore_interrupts(uintptr_t previous) {
    asm volatile("msr daif, %0" : : "r"(uint64_t{previous}) : "memory");
}

void enable_interrupts() {
    asm volatile("msr daifclr, #2" : : : "memory");
}

uint64_t cpu_hardware_id() {
    uint64_t mpidr;
    asm volatile("mrs %0, mpidr_el1" : "=r"(mpidr));
    return mpidr & kMpidrAffinity;
}

void set_cpu_local(kernel::CpuLocal* cpu) {
    asm volatile("msr tpidr_el1, %0" : : "r"(cpu) : "memory");
}

// One register read: boot.S zeroes TPIDR_EL1 on the boot CPU and sets it on secondaries before
// any C++ runs, so this never reads garbage.
kernel::CpuLocal* cpu_local() {
    kernel::CpuLocal* cpu;
    asm volatile("mrs %0, tpidr_el1" : "=r"(cpu));
    return cpu;
}

bool start_cpu(kernel::CpuLocal& cpu) {
    if (!aarch64::gic_serves_cpu(cpu.hardware_id)) {
        kernel::print("gic: CPU 0x%lx has no GICv3 redistributor in the regions the device tree "
                      "lists; left out\n",
                      cpu.hardware_id);
        return false;
    }
    asm volatile("mrs %0, mair_el1" : "=r"(aarch64_secondary_mmu.mair));
    asm volatile("mrs %0, tcr_el1" : "=r"(aarch64_secondary_mmu.tcr));
    asm volatile("mrs %0, ttbr0_el1" : "=r"(aarch64_secondary_mmu.ttbr0));
    asm volatile("mrs %0, sctlr_el1" : "=r"(aarch64_secondary_mmu.sctlr));
    clean_to_point_of_coherency(&aarch64_secondary_mmu, sizeof(aarch64_secondary_mmu));
    clean_to_point_of_coherency(&cpu, sizeof(cpu));
    const aarch64::PsciStatus status =
        aarch64::psci_cpu_on(cpu.hardware_id, reinterpret_cast<uintptr_t>(aarch64_secondary_start),
                             reinterpret_cast<uintptr_t>(&cpu));
    if (status != aarch64::PsciStatus::Success) {
        kernel::print("psci: CPU_ON of CPU 0x%lx failed: %s (%ld)\n", cpu.hardware_id,
                      aarch64::psci_status_name(status), static_cast<int64_t>(status));
        return false;
    }
    return true;
}

// A wfi ends when an interrupt is pending, even one masked here (PSTATE.I): the wake interrupt
// sent after the caller's last check stays pending until taken, so it cannot be lost. Unmasking
// for an instant takes it (the handler only ends it). Without a GIC, wfe/sev: correct, but QEMU
// runs wfe as a yield, so an idle CPU then keeps its host thread busy.
void wait_for_event() {
    if (!aarch64::gic_ready()) {
        asm volatile("wfe" : : : "memory");
        return;
    }
    asm volatile("wfi\n"
                 "msr daifclr, #2\n"
                 "isb\n"
                 "msr daifset, #2"
                 :
                 :
                 : "memory");
}

void send_event() {
    if (!aarch64::gic_ready()) {
        asm volatile("dsb ish; sev" : : : "memory");
        return;
    }
    aarch64::send_wake_to_other_cpus();
}

} // namespace bedrock::arch

extern "C" void aarch64_secondary_entry(bedrock::kernel::CpuLocal& cpu) {
    bedrock::arch::aarch64::init_gic_cpu_interface();
    bedrock::kernel::secondary_cpu_main(cpu);
}
