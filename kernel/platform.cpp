// SPDX-License-Identifier: MIT
// The test kernel's implementation of Bedrock's platform interface (bedrock/platform.h).
// The kernel identity-maps all RAM, so phys->virt is the identity; reports are printed in
// Bedrock's format (bedrock/error_report.h), marked "expected: " while a test expects them, and
// recorded in the ErrorLog that tests inspect; page access changes the identity map
// (arch::set_page_present); CPU index and interrupt masking come from the arch (kernel/smp.h's
// CpuLocal, arch::disable_interrupts). A failed assertion panics, except a throwing operator
// new out of memory during an in-kernel test, which ends that test (end_running_test()).
#include "bedrock/platform.h"

#include "bedrock/memory_routines.h"

#include "kernel/arch.h"
#include "kernel/console.h"
#include "kernel/error_log.h"
#include "kernel/smp.h"
#include "kernel/test_registry.h"

namespace bedrock {
namespace kernel {

ErrorLog& error_log() {
    static constinit ErrorLog log;
    return log;
}

} // namespace kernel

namespace platform {
namespace {

// The largest kernel stack: the boot CPU's (BOOT_STACK_SIZE in arch/<arch>/boot.S); a
// secondary CPU's is 16 KiB (smp.cpp).
constexpr uintptr_t kLargestKernelStack = uintptr_t{64} << 10;

// Whether assertion_failed() was called for a throwing operator new that found no memory (its
// other use is a failed invariant, which must end the run).
bool is_operator_new_out_of_memory(const char* expression) {
    return bedrock_strlen(expression) == sizeof(kOperatorNewOutOfMemory) - 1 &&
           bedrock_memcmp(expression, kOperatorNewOutOfMemory, sizeof(kOperatorNewOutOfMemory)) ==
               0;
}

void print_line(void*, const char* line) {
    kernel::print("%s\n", line);
}

// A report a test provokes on purpose (kernel/error_log.h) is marked, so a passing boot log
// does not read like a failing one.
void print_expected_line(void*, const char* line) {
    kernel::print("expected: %s\n", line);
}

} // namespace

void* phys_to_virt(PhysAddr phys) {
    return reinterpret_cast<void*>(static_cast<uintptr_t>(phys));
}

void report_error(const ErrorReport& report) {
    write_error_report(report, kernel::error_log().expecting() ? print_expected_line : print_line,
                       nullptr);
    kernel::error_log().record(report);
}

void panic(const char* message) {
    kernel::panic("%s", message);
}

bool set_page_access(void* page, bool accessible) {
    return arch::set_page_present(reinterpret_cast<uintptr_t>(page), accessible);
}

void assertion_failed(const char* expression, const char* file, int line) {
    if (is_operator_new_out_of_memory(expression)) {
        // Nothing is held or half done: a test may end here, and the run go on.
        kernel::end_running_test(file, line, expression);
    }
    kernel::panic("assertion failed: %s at %s:%d", expression, file, line);
}

unsigned current_cpu() {
    const kernel::CpuLocal* cpu = arch::cpu_local();
    return cpu != nullptr ? cpu->index : 0;
}

// The calling CPU's kernel stack from `frame` up to its top: a call trace reads only above the
// frame it starts at. Code running on another stack (none in this kernel calls the heap) gets
// the call site only.
StackExtent stack_extent(const void* frame) {
    const kernel::CpuLocal* cpu = arch::cpu_local();
    const auto low = reinterpret_cast<uintptr_t>(frame);
    if (cpu == nullptr || low >= cpu->stack_top || cpu->stack_top - low > kLargestKernelStack) {
        return StackExtent{0, 0};
    }
    return StackExtent{low, cpu->stack_top};
}

InterruptState disable_interrupts() {
    return arch::disable_interrupts();
}

void restore_interrupts(InterruptState previous) {
    arch::restore_interrupts(previous);
}

void lock_wait() {
    // Locks mask interrupts, so a holder is never preempted: it is running on another CPU.
}

void pages_unused(void*, size_t) {
    // The test kernel identity-maps all RAM and keeps it mapped: nothing to give back.
}

} // namespace platform
} // namespace bedrock
