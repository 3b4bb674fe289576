// AArch64 CPUs and interrupts (kernel/arch.h): the DAIF mask. Single-CPU so far: per-CPU data,
// starting secondaries and the timer come with the SMP bring-up.
#include "kernel/arch.h"

namespace bedrock::arch {

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
    return 0;
}

void set_cpu_local(kernel::CpuLocal*) {}

kernel::CpuLocal* cpu_local() {
    return nullptr;
}

bool start_cpu(kernel::CpuLocal&) {
    return false;
}

bool start_timer(uint32_t, void (*)()) {
    return false; // no timer interrupt yet
}

void stop_timer() {}

// wfe returns at once if an event (sev) arrived since the last wfe, so none is lost.
void wait_for_event() {
    asm volatile("wfe" : : : "memory");
}

void send_event() {
    asm volatile("dsb ish; sev" : : : "memory");
}

} // namespace bedrock::arch
