// SPDX-License-Identifier: MIT
// x86-64 CPUs and interrupts (kernel/arch.h): the interrupt flag, per-CPU data through the GS
// base, starting secondary CPUs through the real-mode trampoline (trampoline.S) with
// INIT-STARTUP-STARTUP, and the local APIC timer.
//
// Per-CPU register: IA32_GS_BASE points at the CPU's CpuLocal, whose first word is its own
// address, so cpu_local() is one `mov %gs:0`. Before the first set_cpu_local() on the boot CPU
// the GS base points at g_no_cpu_local, a zero word: cpu_local() then returns null and never
// faults (x86_64_entry sets it before anything else runs).
//
// Starting a CPU (boot CPU only, one at a time, as kernel/smp.cpp does): the trampoline is
// copied to kTrampolinePage once; each start fills its TrampolineData, allocates the CPU's
// descriptor tables from the page frame allocator (CpuLocal::arch_data) and sends the IPIs. The
// new CPU runs x86_64_secondary_entry() on its own stack with the final page tables.
//
// Interrupts: the timer, wake-up and spurious vectors' gates and the boot CPU's local APIC are set
// up by init_boot_cpu(); each secondary enables its own local APIC. Each CPU's tick function is
// kept by kernel/timer_tick.h, run by its own timer interrupt.
//
// TLB shootdown (flush_tlbs_of_other_cpus): an NMI to each other online CPU, whose handler reloads
// CR3, which drops every TLB entry (this kernel maps nothing global). An NMI, not an interrupt
// vector: a CPU spinning with interrupts masked (on a lock, or in a handler) takes no interrupt
// for as long as it spins. The caller returns once every NMI has been accepted by its CPU's
// local APIC, without waiting for the handlers to run: a CPU takes an accepted NMI at its next
// instruction boundary (right after the current NMI handler if it is in one), before any further
// access of its own. A CPU may get one NMI for several flushes, or run one flush for nothing:
// every NMI flushes, so none is missed.
#include <stddef.h>
#include <stdint.h>

#include "arch/x86_64/entry.h"
#include "arch/x86_64/local_apic.h"
#include "bedrock/page_frame_allocator.h"
#include "kernel/allocators.h"
#include "kernel/arch.h"
#include "kernel/console.h"
#include "kernel/smp.h"
#include "kernel/timer_tick.h"

extern "C" {
extern const char x86_64_trampoline_start[];
extern const char x86_64_trampoline_end[];
extern const char x86_64_trampoline_data[];
extern const char x86_64_secondary_start[];
extern const char x86_64_timer_stub[];
extern const char x86_64_spurious_stub[];
extern const char x86_64_wake_stub[];
[[noreturn]] void x86_64_secondary_entry(bedrock::kernel::CpuLocal* cpu);
void x86_64_timer_interrupt();
void x86_64_wake_interrupt();
void x86_64_nmi();
}

namespace bedrock::arch {
namespace {

constexpr uint64_t kInterruptFlag = uint64_t{1} << 9; // RFLAGS.IF
constexpr uint32_t kGsBaseMsr = 0xC0000101;
constexpr uint64_t kMaxXApicId = 0xFE; // 0xFF is the broadcast id

// What trampoline.S reads at x86_64_trampoline_data (its DATA_* offsets).
struct TrampolineData {
    uint64_t early_page_tables;
    uint64_t final_page_tables;
    uint64_t stack_top;
    uint64_t cpu; // CpuLocal*
    uint64_t entry;
    uint32_t apic_id;
    uint32_t reserved;
};
static_assert(sizeof(TrampolineData) == 48);

constinit uint64_t g_no_cpu_local = 0;
constinit bool g_trampoline_copied = false;

void write_msr(uint32_t msr, uint64_t value) {
    __asm__ volatile("wrmsr"
                     :
                     : "c"(msr), "a"(static_cast<uint32_t>(value)),
                       "d"(static_cast<uint32_t>(value >> 32))
                     : "memory");
}

char* trampoline_page() {
    return reinterpret_cast<char*>(static_cast<uintptr_t>(x86_64::kTrampolinePage));
}

} // namespace

void x86_64::init_boot_cpu() {
    set_cpu_local(nullptr);
    init_interrupt_controllers();
    enable_local_apic();
    set_interrupt_gate(kTimerVector, reinterpret_cast<uint64_t>(x86_64_timer_stub));
    set_interrupt_gate(kSpuriousVector, reinterpret_cast<uint64_t>(x86_64_spurious_stub));
    set_interrupt_gate(kWakeVector, reinterpret_cast<uint64_t>(x86_64_wake_stub));
}

uintptr_t disable_interrupts() {
    uint64_t flags;
    __asm__ volatile("pushfq; popq %0; cli" : "=r"(flags) : : "memory");
    return flags & kInterruptFlag;
}

void restore_interrupts(uintptr_t previous) {
    if ((previous & kInterruptFlag) != 0) {
        __asm__ volatile("sti" : : : "memory");
    }
}

void enable_interrupts() {
    __asm__ volatile("sti" : : : "memory");
}

uint64_t cpu_hardware_id() {
    return x86_64::local_apic_id();
}

void set_cpu_local(kernel::CpuLocal* cpu) {
    write_msr(kGsBaseMsr, cpu != nullptr ? reinterpret_cast<uint64_t>(cpu)
                                         : reinterpret_cast<uint64_t>(&g_no_cpu_local));
}

kernel::CpuLocal* cpu_local() {
    kernel::CpuLocal* cpu;
    __asm__ volatile("movq %%gs:0, %0" : "=r"(cpu));
    return cpu;
}

bool start_cpu(kernel::CpuLocal& cpu) {
    if (cpu.hardware_id > kMaxXApicId) {
        kernel::print("smp: CPU 0x%lx has an x2APIC id; this kernel starts xAPIC CPUs only\n",
                      cpu.hardware_id);
        return false;
    }
    constexpr uint64_t kTablePages = x86_64::kCpuDescriptorTablesSize / kPageSize;
    const PhysAddr tables = kernel::page_frame_allocator().allocate_pages(kTablePages);
    if (tables == kNoPage) {
        kernel::print("smp: no memory for the descriptor tables of CPU 0x%lx\n", cpu.hardware_id);
        return false;
    }
    cpu.arch_data = platform::phys_to_virt(tables);
    if (!g_trampoline_copied) {
        __builtin_memcpy(trampoline_page(), x86_64_trampoline_start,
                         static_cast<size_t>(x86_64_trampoline_end - x86_64_trampoline_start));
        g_trampoline_copied = true;
    }
    auto* data = reinterpret_cast<TrampolineData*>(
        trampoline_page() + (x86_64_trampoline_data - x86_64_trampoline_start));
    *data = TrampolineData{reinterpret_cast<uint64_t>(x86_64_early_pml4),
                           x86_64::final_page_tables(),
                           cpu.stack_top,
                           reinterpret_cast<uint64_t>(&cpu),
                           reinterpret_cast<uint64_t>(x86_64_secondary_start),
                           static_cast<uint32_t>(cpu.hardware_id),
                           0};
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!x86_64::send_init_startup(static_cast<uint32_t>(cpu.hardware_id),
                                   static_cast<uint8_t>(x86_64::kTrampolinePage >> 12))) {
        kernel::print("smp: CPU 0x%lx did not accept INIT/STARTUP\n", cpu.hardware_id);
        kernel::page_frame_allocator().free_pages(tables, kTablePages);
        cpu.arch_data = nullptr;
        return false;
    }
    return true;
}

void x86_64::flush_tlbs_of_other_cpus() {
    kernel::for_each_other_online_cpu(
        [](const kernel::CpuLocal& cpu, void*) {
            if (!send_nmi(static_cast<uint32_t>(cpu.hardware_id))) {
                kernel::panic("tlb: CPU %u did not accept the TLB shootdown NMI", cpu.index);
            }
        },
        nullptr);
}

bool start_timer(uint32_t hz, void (*tick)()) {
    if (!x86_64::has_local_apic()) {
        kernel::print("timer: no local APIC (CPUID), so no timer interrupt\n");
        return false;
    }
    kernel::set_timer_tick(tick);
    x86_64::start_local_timer(hz);
    return true;
}

// An interrupt the timer raised before it stopped may still be pending (requested while the CPU
// had interrupts masked): with no tick its handler only sends the EOI.
void stop_timer() {
    kernel::set_timer_tick(nullptr);
    x86_64::stop_local_timer();
}

// `sti` takes effect after the next instruction, so an interrupt pending since the caller's
// last check (with interrupts masked) is taken at the `hlt` and ends it: no wake-up is lost.
void wait_for_event() {
    __asm__ volatile("sti; hlt; cli" : : : "memory");
}

// One IPI per online CPU, not one broadcast: a CPU the kernel never started must not be woken.
void send_event() {
    kernel::for_each_other_online_cpu(
        [](const kernel::CpuLocal& cpu, void*) {
            if (!x86_64::send_wake(static_cast<uint32_t>(cpu.hardware_id))) {
                kernel::panic("smp: CPU %u did not accept the wake IPI", cpu.index);
            }
        },
        nullptr);
}

} // namespace bedrock::arch

extern "C" void x86_64_secondary_entry(bedrock::kernel::CpuLocal* cpu) {
    using namespace bedrock::arch;
    x86_64::init_secondary_exceptions(cpu->arch_data);
    set_cpu_local(cpu);
    x86_64::enable_local_apic();
    bedrock::kernel::secondary_cpu_main(*cpu);
}

// Every NMI is taken for a TLB shootdown (flush_tlbs_of_other_cpus): a flush is harmless.
extern "C" void x86_64_nmi() {
    uint64_t root;
    __asm__ volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(root) : : "memory");
}

extern "C" void x86_64_wake_interrupt() {
    bedrock::arch::x86_64::end_of_interrupt();
}

extern "C" void x86_64_timer_interrupt() {
    using namespace bedrock::arch;
    if (bedrock::kernel::run_timer_tick()) {
        x86_64::rearm_local_timer();
    }
    x86_64::end_of_interrupt();
}
