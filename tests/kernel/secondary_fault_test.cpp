// SPDX-License-Identifier: MIT
// Built only into bedrock-kernel-secondary-fault, booted with two or more CPUs: the second CPU
// reads an address no page table maps while the boot CPU waits for it. The expected outcome is
// the fault report naming cpu 1 and a failing exit from that CPU, never a hang or a pass (with
// one CPU the test fails by itself).
#include <stdint.h>

#include "kernel/smp.h"
#include "kernel/test_registry.h"

namespace {

// As fault_test.cpp: canonical on x86-64, inside TTBR0's range on AArch64, never mapped.
constexpr uintptr_t kUnmappedAddress = 0x0000'4000'0000'0000;

void read_unmapped_on_cpu_1(void*, unsigned index) {
    if (index == 1) {
        static_cast<void>(*reinterpret_cast<const volatile uint64_t*>(kUnmappedAddress));
    }
}

} // namespace

BEDROCK_TEST(fault_on_a_secondary_cpu) {
    BEDROCK_REQUIRE(bedrock::kernel::online_cpu_count() >= 2);
    bedrock::kernel::run_on_every_cpu(read_unmapped_on_cpu_1, nullptr);
    BEDROCK_EXPECT(false); // not reached: CPU 1's fault ends the run
}
