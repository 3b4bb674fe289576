// SPDX-License-Identifier: MIT
// The flattened device tree (what QEMU virt passes on AArch64), turned into BootInfo.
//
// Available: a node without `status`, or whose status is "okay" or "ok"; every other node
// ("disabled", "fail", ...) is skipped below, as Linux skips it.
// RAM: every (address, size) pair of `reg` in every available top-level node whose device_type
// is "memory" (or whose name is "memory" / "memory@..."), decoded with the root's #address-cells
// and #size-cells (defaults 2 and 1).
// Reserved: the blob itself, every entry of the memory reservation block, and the `reg` of
// every available child of /reserved-memory (decoded with /reserved-memory's own cells, or the
// root's where it has none). A `reg` read as ranges (RAM, reserved) that is not a whole number
// of (address, size) entries is an error naming its node (BootParseResult::node).
// No-map: the `reg` of every such child that has the `no-map` property (the firmware forbids
// any mapping of it, even one only reached speculatively); reserved as well. The blob is read
// only before the kernel's map is built, so a no-map range over the blob itself is left as is.
// Command line: /chosen/bootargs, copied.
// CPUs: every available child of /cpus whose device_type is "cpu", by the first address of its
// `reg` (the MPIDR affinity, decoded with /cpus' #address-cells, 1 or 2), in blob order; beyond
// kMaxBootCpus they are counted in cpus_left_off. PSCI: /psci's `method` ("hvc" or "smc") and
// CPU_ON's function id: CPU_ON64 (0xC4000003) when `compatible` lists "arm,psci-0.2" or
// "arm,psci-1.0", else the node's `cpu_on` (PSCI 0.1); without both the conduit stays None.
// Interrupt controller: the available top-level node compatible with "arm,cortex-a15-gic",
// "arm,gic-400" (GICv2: `reg` = distributor, CPU interface) or "arm,gic-v3" (distributor, then
// `#redistributor-regions` redistributor regions, 1 without the property; the first
// kMaxPerCpuRegions kept, the rest counted in per_cpu_left_off). Timer: the available top-level
// node compatible with "arm,armv8-timer"; its second `interrupts` triple (GIC binding: type,
// number, flags) is the non-secure EL1 physical timer.
//
// The blob is untrusted: the header's sizes and offsets are checked against totalsize, and no
// read leaves the structure, strings or reservation blocks. A malformed blob is an error,
// never a wild read.
#pragma once

#include <stdint.h>

#include "kernel/boot_info.h"
#include "kernel/boot_parse_result.h"

namespace bedrock::kernel {

inline constexpr uint32_t kDeviceTreeMagic = 0xd00dfeed;

// Parses the blob at `blob` (a physical address; the kernel runs identity-mapped), whose
// header claims `totalsize` bytes. `available` bounds what may be read (use the totalsize for a
// trusted pointer, or a buffer's size in tests).
[[nodiscard]] BootParseResult parse_device_tree(uint64_t blob, uint64_t available, BootInfo& boot);

} // namespace bedrock::kernel
