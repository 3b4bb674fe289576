// SPDX-License-Identifier: MIT
// Built only into bedrock-kernel-fault: a test that reads an address no page table maps.
// The expected outcome is the fault report and a failing exit, never a hang or a pass.
#include <stdint.h>

#include "kernel/test_registry.h"

namespace {

// 64 TiB: canonical on x86-64, inside TTBR0's 48-bit range on AArch64, far above any RAM the
// tests boot with, and never mapped.
constexpr uintptr_t kUnmappedAddress = 0x0000'4000'0000'0000;

} // namespace

BEDROCK_TEST(fault_unmapped_read) {
    const auto* unmapped = reinterpret_cast<const volatile uint64_t*>(kUnmappedAddress);
    const uint64_t value = *unmapped;
    BEDROCK_EXPECT(value != value); // not reached: the read faults
}
