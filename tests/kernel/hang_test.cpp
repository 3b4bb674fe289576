// SPDX-License-Identifier: MIT
// Built only into bedrock-kernel-hang, booted with two CPUs: the boot CPU and CPU 1 each spin
// for ever in a function of their own, interrupts masked. The expected outcome is the QEMU test
// harness's hang report (cmake/qemu_deadline.sh): at its deadline it names each CPU and where
// it spins, never a pass, a failure verdict or a bare time-out.
#include "bedrock/spinlock.h"
#include "kernel/smp.h"
#include "kernel/test_registry.h"

namespace {

[[noreturn, gnu::noinline]] void spin_for_ever_on_the_boot_cpu() {
    for (;;) {
        bedrock::SpinLock::relax();
    }
}

[[noreturn, gnu::noinline]] void spin_for_ever_on_cpu_1() {
    for (;;) {
        bedrock::SpinLock::relax();
    }
}

void spin_for_ever(void*, unsigned index) {
    if (index == 0) {
        spin_for_ever_on_the_boot_cpu();
    }
    if (index == 1) {
        spin_for_ever_on_cpu_1();
    }
}

} // namespace

BEDROCK_TEST(hang_on_two_cpus) {
    BEDROCK_REQUIRE(bedrock::kernel::online_cpu_count() >= 2);
    bedrock::kernel::run_on_every_cpu(spin_for_ever, nullptr);
    BEDROCK_EXPECT(false); // not reached
}
