// SPDX-License-Identifier: MIT
// The portable half of fault handling: one report format for both architectures. The first line
// names the CPU that faulted (its index, kernel/smp.h; 0 before SMP bring-up).
#include "kernel/fault.h"

#include "kernel/arch.h"
#include "kernel/console.h"
#include "kernel/smp.h"
#include "kernel/trap.h"

namespace bedrock::kernel {
namespace {

constexpr const char* kAccessNames[] = {"", "read ", "write ", "execute "};

} // namespace

void report_fault(const FaultReport& fault) {
    if (FaultExplainer explainer = fault_explainer(); explainer != nullptr) {
        static_cast<void>(explainer(fault));
    }
    const CpuLocal* cpu = arch::cpu_local();
    print("\nfault: %s (vector %lu, syndrome 0x%lx) on cpu %u\n", fault.description, fault.vector,
          fault.syndrome, cpu != nullptr ? cpu->index : 0);
    if (fault.address_valid) {
        print("fault: %saccess at address 0x%016lx\n",
              kAccessNames[static_cast<unsigned>(fault.access)], fault.address);
    }
    print("fault: pc 0x%016lx sp 0x%016lx\n", fault.pc, fault.sp);
    for (size_t i = 0; i < fault.register_count; ++i) {
        print("  %-4s 0x%016lx%s", fault.register_names[i], fault.registers[i],
              i % 4 == 3 || i + 1 == fault.register_count ? "\n" : "  ");
    }
    // A catch resumes on the CPU that armed it (catching_traps() asks for the calling CPU): a
    // fault on any other CPU meanwhile must end the run, not jump onto the armed CPU's stack.
    if (fault.resumable && catching_traps()) {
        print("fault: caught by the test, resuming\n");
        resume_if_catching(TrapKind::Fault, fault.description, &fault);
    }
    print("fault: stopping with failure\n");
    arch::exit(arch::ExitStatus::Failure);
}

} // namespace bedrock::kernel
