// The flattened device tree (what QEMU virt passes on AArch64), turned into BootInfo.
//
// RAM: every (address, size) pair of `reg` in every top-level node whose device_type is
// "memory" (or whose name is "memory" / "memory@..."), decoded with the root's #address-cells
// and #size-cells (defaults 2 and 1).
// Reserved: the blob itself, every entry of the memory reservation block, and the `reg` of
// every child of /reserved-memory (decoded with /reserved-memory's own cells).
// Command line: /chosen/bootargs, copied.
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
