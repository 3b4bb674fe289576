// x86-64 CPUs and interrupts (kernel/arch.h): the interrupt flag. Single-CPU so far: per-CPU
// data, starting secondaries and the timer come with the SMP bring-up.
#include "kernel/arch.h"
#include "kernel/console.h"

namespace bedrock::arch {
namespace {

constexpr uint64_t kInterruptFlag = uint64_t{1} << 9; // RFLAGS.IF

} // namespace

uintptr_t disable_interrupts() {
    uint64_t flags;
    asm volatile("pushfq; popq %0; cli" : "=r"(flags) : : "memory");
    return flags & kInterruptFlag;
}

void restore_interrupts(uintptr_t previous) {
    if ((previous & kInterruptFlag) != 0) {
        asm volatile("sti" : : : "memory");
    }
}

void enable_interrupts() {
    asm volatile("sti" : : : "memory");
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

void start_timer(uint32_t, void (*)()) {
    kernel::panic("x86_64: no timer interrupt yet");
}

void stop_timer() {}

} // namespace bedrock::arch
