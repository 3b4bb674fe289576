// SPDX-License-Identifier: MIT
// The PVH boot protocol's hvm_start_info (what QEMU's -kernel passes to an ELF with the
// XEN_ELFNOTE_PHYS32_ENTRY note), turned into BootInfo.
//
// RAM: every E820 entry of type 1 in the memory map (start_info version >= 1).
// Reserved: the low 1 MiB (real-mode IVT, BDA, EBDA, BIOS), start_info itself, the memory map
// array, the command line and the module list.
// Boot structures are read at their physical addresses (the kernel runs identity-mapped); the
// command line is copied, so BootInfo stays valid after the final page tables replace the boot
// ones. ACPI: BootInfo::acpi_rsdp = rsdp_paddr (0 when the loader leaves it
// out: the BIOS areas are searched then, arch/x86_64/entry.cpp).
#pragma once

#include <stdint.h>

#include "kernel/boot_info.h"
#include "kernel/boot_parse_result.h"

namespace bedrock::kernel {

inline constexpr uint32_t kPvhStartInfoMagic = 0x336ec578;
inline constexpr uint32_t kE820Ram = 1;

struct HvmStartInfo {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t module_count;
    uint64_t module_list;
    uint64_t command_line;
    uint64_t rsdp;
    uint64_t memory_map;
    uint32_t memory_map_entries;
    uint32_t reserved;
};
static_assert(sizeof(HvmStartInfo) == 56);

struct HvmMemoryMapEntry {
    uint64_t address;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
};
static_assert(sizeof(HvmMemoryMapEntry) == 24);

struct HvmModule {
    uint64_t address;
    uint64_t size;
    uint64_t command_line;
    uint64_t reserved;
};
static_assert(sizeof(HvmModule) == 32);

[[nodiscard]] BootParseResult parse_pvh(uint64_t start_info, BootInfo& boot);

} // namespace bedrock::kernel
