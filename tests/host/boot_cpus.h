// SPDX-License-Identifier: MIT
// What the firmware parsers' tests expect of BootInfo's CPU list at any BEDROCK_MAX_CPUS: the
// kernel keeps the first kMaxBootCpus CPUs the firmware describes, each once, and counts the rest
// in cpus_left_off (add_boot_cpu() in kernel/boot_info.h). With the default 64 every list these
// tests describe is kept whole; with fewer slots the same tables also check the counting of the
// CPUs left off.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernel/boot_info.h"

namespace bedrock::test {

// The CPU ids `boot` lists, in order.
inline std::vector<uint64_t> boot_cpu_ids(const kernel::BootInfo& boot) {
    return std::vector<uint64_t>(boot.cpu_ids, boot.cpu_ids + boot.cpu_count);
}

// The first kMaxBootCpus of `ids` (CPUs each described once): those the kernel lists.
inline std::vector<uint64_t> first_boot_cpus(const std::vector<uint64_t>& ids) {
    return std::vector<uint64_t>(ids.begin(),
                                 ids.begin() + std::min(ids.size(), kernel::kMaxBootCpus));
}

struct KeptCpus {
    std::vector<uint64_t> ids; // the CPUs listed, in firmware order
    size_t left_off = 0;       // the descriptions beyond kMaxBootCpus
};

// What the kernel keeps of the CPUs `described`, in firmware order (the enabled ones, each
// description once): a CPU listed already is not listed again; once kMaxBootCpus are listed,
// each further description is counted as left off. The kernel keeps no record of the ids it
// leaves off, so a CPU described twice beyond the limit is counted twice.
inline KeptCpus kept_cpus(const std::vector<uint64_t>& described) {
    KeptCpus kept;
    for (const uint64_t id : described) {
        if (std::find(kept.ids.begin(), kept.ids.end(), id) != kept.ids.end()) {
            continue;
        }
        if (kept.ids.size() == kernel::kMaxBootCpus) {
            ++kept.left_off;
        } else {
            kept.ids.push_back(id);
        }
    }
    return kept;
}

// Checks that `boot` lists what the kernel keeps of the CPUs `described` and counts the rest.
inline void expect_boot_cpus(const kernel::BootInfo& boot, const std::vector<uint64_t>& described) {
    const KeptCpus kept = kept_cpus(described);
    EXPECT_EQ(boot_cpu_ids(boot), kept.ids);
    EXPECT_EQ(boot.cpus_left_off, kept.left_off);
}

} // namespace bedrock::test
