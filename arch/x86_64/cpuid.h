// SPDX-License-Identifier: MIT
// CPUID, the x86 CPU's description of itself (features, address sizes): one leaf's four
// registers, read the same way wherever the kernel asks.
#pragma once

#include <stdint.h>

namespace bedrock::arch::x86_64 {

struct CpuidLeaf {
    uint32_t eax;
    uint32_t ebx;
    uint32_t ecx;
    uint32_t edx;
};

inline CpuidLeaf cpuid(uint32_t leaf, uint32_t subleaf = 0) {
    CpuidLeaf result{leaf, 0, subleaf, 0};
    __asm__ volatile("cpuid"
                     : "+a"(result.eax), "=b"(result.ebx), "+c"(result.ecx), "=d"(result.edx));
    return result;
}

} // namespace bedrock::arch::x86_64
