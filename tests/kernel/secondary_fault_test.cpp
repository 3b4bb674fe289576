// Built only into bedrock-kernel-secondary-fault (booted with two or more CPUs): the last CPU
// reads an address no page table maps while the boot CPU waits for it. The expected outcome is
// the fault report naming that CPU, then a failing exit - proof that exception handling works
// on secondaries (vectors, stack, per-CPU register), never a hang or a pass.
#include <stdint.h>

#include "kernel/smp.h"
#include "kernel/test_registry.h"

namespace {

// As in fault_test.cpp: canonical, inside every arch's user half, never mapped.
constexpr uintptr_t kUnmappedAddress = 0x0000'4000'0000'0000;

void read_unmapped_on_the_last_cpu(void*, unsigned index) {
    if (index + 1 == bedrock::kernel::online_cpu_count() && index != 0) {
        const auto* unmapped = reinterpret_cast<const volatile uint64_t*>(kUnmappedAddress);
        static_cast<void>(*unmapped);
    }
}

} // namespace

BEDROCK_TEST(fault_unmapped_read_on_a_secondary_cpu) {
    BEDROCK_EXPECT(bedrock::kernel::online_cpu_count() > 1);
    bedrock::kernel::run_on_every_cpu(read_unmapped_on_the_last_cpu, nullptr);
    BEDROCK_EXPECT(false); // not reached: the secondary's fault ends the run
}
