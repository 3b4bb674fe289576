// SPDX-License-Identifier: MIT
// In-kernel tests of the AArch64 CPU layer that the portable tests cannot see: PSCI errors come
// back by name and leave the CPU alone, and every online CPU's TPIDR_EL1 and MPIDR agree with
// its CpuLocal.
#include "arch/aarch64/aarch64.h"
#include "kernel/arch.h"
#include "kernel/smp.h"
#include "kernel/test_registry.h"

namespace {

using bedrock::arch::aarch64::PsciStatus;

bool same_text(const char* a, const char* b) {
    while (*a != '\0' && *a == *b) {
        ++a;
        ++b;
    }
    return *a == *b;
}

struct Agreement {
    uint32_t mismatches = 0;
};

void check_registers(void* context, unsigned index) {
    auto& agreement = *static_cast<Agreement*>(context);
    const bedrock::kernel::CpuLocal* cpu = bedrock::arch::cpu_local();
    const bool agrees = cpu == &bedrock::kernel::this_cpu() && cpu->index == index &&
                        cpu->hardware_id == bedrock::arch::cpu_hardware_id();
    if (!agrees) {
        __atomic_add_fetch(&agreement.mismatches, 1, __ATOMIC_RELAXED);
    }
}

} // namespace

BEDROCK_TEST(aarch64_psci_errors_are_named_and_change_nothing) {
    using namespace bedrock::arch::aarch64;
    const uint64_t entry = 0x40000000; // never run: each call must be refused
    if (psci_available()) {
        // The calling CPU is on; an affinity no CPU has is an invalid parameter.
        BEDROCK_EXPECT(psci_cpu_on(bedrock::arch::cpu_hardware_id(), entry, 0) ==
                       PsciStatus::AlreadyOn);
        BEDROCK_EXPECT(psci_cpu_on(0xFF'00FF'FFFF, entry, 0) == PsciStatus::InvalidParameters);
    } else {
        // No /psci (entered at EL3, virt,secure=on): every call is refused without a call.
        BEDROCK_EXPECT(psci_cpu_on(bedrock::arch::cpu_hardware_id(), entry, 0) ==
                       PsciStatus::NotSupported);
    }
    BEDROCK_EXPECT(same_text(psci_status_name(PsciStatus::AlreadyOn), "ALREADY_ON"));
    BEDROCK_EXPECT(
        same_text(psci_status_name(PsciStatus::InvalidParameters), "INVALID_PARAMETERS"));
    // start_cpu() reports the refusal and returns false; the CPU keeps running here.
    bedrock::kernel::CpuLocal again = bedrock::kernel::this_cpu();
    BEDROCK_EXPECT(!bedrock::arch::start_cpu(again));
}

BEDROCK_TEST(aarch64_every_cpu_reads_its_own_cpu_local_and_mpidr) {
    Agreement agreement;
    bedrock::kernel::run_on_every_cpu(check_registers, &agreement);
    BEDROCK_EXPECT_EQ(agreement.mismatches, 0);
}
