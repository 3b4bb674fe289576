// SPDX-License-Identifier: MIT
// The multiboot2 boot information (what GRUB passes in EBX), turned into BootInfo.
//
// RAM: every entry of type 1 in the memory-map tag (type 6). Reserved: the low 1 MiB, the whole
// information structure and every module the loader placed in memory (tag 3). The command line
// (tag 1) is copied. ACPI: BootInfo::acpi_rsdp points at the RSDP copy in the ACPI tag (the
// new one when both are present), inside the reserved structure.
// Every size is checked against the structure's own total_size before it is trusted: a
// malformed structure gives an error, never a read outside it.
#pragma once

#include <stdint.h>

#include "kernel/boot_info.h"
#include "kernel/boot_parse_result.h"

namespace bedrock::kernel {

inline constexpr uint32_t kMultiboot2TagEnd = 0;
inline constexpr uint32_t kMultiboot2TagCommandLine = 1;
inline constexpr uint32_t kMultiboot2TagModule = 3;
inline constexpr uint32_t kMultiboot2TagMemoryMap = 6;
inline constexpr uint32_t kMultiboot2TagAcpiOld = 14; // a copy of the ACPI 1.0 RSDP
inline constexpr uint32_t kMultiboot2TagAcpiNew = 15; // a copy of the ACPI 2.0+ RSDP
// Larger than any real structure; guards against reading far past a corrupt total_size.
inline constexpr uint32_t kMultiboot2MaxSize = 1u << 20;

struct Multiboot2Tag {
    uint32_t type;
    uint32_t size; // header included; tags start 8-byte aligned
};

// The module tag's payload after the tag header; the module's command line follows.
struct Multiboot2Module {
    uint32_t start;
    uint32_t end; // exclusive
};

struct Multiboot2MemoryMapEntry {
    uint64_t address;
    uint64_t length;
    uint32_t type;
    uint32_t reserved;
};
static_assert(sizeof(Multiboot2MemoryMapEntry) == 24);

[[nodiscard]] BootParseResult parse_multiboot2(uint64_t information, BootInfo& boot);

} // namespace bedrock::kernel
