// SPDX-License-Identifier: MIT
// Multiboot2 boot-information parsing; see multiboot2.h.
//
// Layout: u32 total_size, u32 reserved, then tags {u32 type, u32 size, payload}, each starting
// 8-byte aligned, ending with a tag of type 0. The memory-map tag's payload is u32 entry_size,
// u32 entry_version, then entries of entry_size bytes (>= 24). A module tag's payload is
// u32 mod_start, u32 mod_end, then the module's command line.
#include "kernel/multiboot2.h"

#include "kernel/boot_protocol_support.h"

namespace bedrock::kernel {
namespace {

constexpr uint64_t kLowMemory = uint64_t{1} << 20;
constexpr uint32_t kE820Ram = 1;
constexpr uint32_t kHeaderSize = 8;
constexpr uint32_t kMemoryMapHeaderSize = 16; // tag header + entry_size + entry_version

uint32_t read_u32(const uint8_t* bytes) {
    uint32_t value = 0;
    for (int i = 3; i >= 0; --i) {
        value = (value << 8) | bytes[i];
    }
    return value;
}

BootParseResult parse_memory_map(const uint8_t* tag, uint32_t size, BootInfo& boot) {
    if (size < kMemoryMapHeaderSize) {
        return {"multiboot2 memory-map tag is too short"};
    }
    const uint32_t entry_size = read_u32(tag + 8);
    if (entry_size < sizeof(Multiboot2MemoryMapEntry) || entry_size % 8 != 0) {
        return {"multiboot2 memory-map entry size is invalid"};
    }
    for (uint32_t offset = kMemoryMapHeaderSize; size - offset >= entry_size;
         offset += entry_size) {
        const auto& entry = *reinterpret_cast<const Multiboot2MemoryMapEntry*>(tag + offset);
        if (entry.type == kE820Ram) {
            if (auto result = add_ram(boot, entry.address, entry.length); !result.ok()) {
                return result;
            }
        }
    }
    return {};
}

BootParseResult parse_module(const uint8_t* tag, uint32_t size, BootInfo& boot) {
    if (size < kHeaderSize + sizeof(Multiboot2Module)) {
        return {"multiboot2 module tag is too short"};
    }
    const auto& module = *reinterpret_cast<const Multiboot2Module*>(tag + kHeaderSize);
    if (module.end < module.start) {
        return {"multiboot2 module ends before it starts"};
    }
    return add_reserved(boot, module.start, module.end - module.start);
}

} // namespace

BootParseResult parse_multiboot2(uint64_t information, BootInfo& boot) {
    if (information == 0 || information % 8 != 0) {
        return {"multiboot2 information pointer is null or misaligned"};
    }
    const auto* base = reinterpret_cast<const uint8_t*>(static_cast<uintptr_t>(information));
    const uint32_t total_size = read_u32(base);
    if (total_size < kHeaderSize + kHeaderSize || total_size > kMultiboot2MaxSize) {
        return {"multiboot2 information has an implausible total size"};
    }
    boot.firmware = "multiboot2";

    bool memory_map_seen = false;
    bool end_seen = false;
    uint32_t offset = kHeaderSize;
    while (total_size - offset >= kHeaderSize) {
        const uint32_t type = read_u32(base + offset);
        const uint32_t size = read_u32(base + offset + 4);
        if (size < kHeaderSize || size > total_size - offset) {
            return {"multiboot2 tag size runs past the end of the structure"};
        }
        if (type == kMultiboot2TagEnd) {
            end_seen = true;
            break;
        }
        if (type == kMultiboot2TagCommandLine) {
            copy_command_line(reinterpret_cast<const char*>(base + offset + kHeaderSize),
                              size - kHeaderSize, boot);
        } else if (type == kMultiboot2TagMemoryMap) {
            if (auto result = parse_memory_map(base + offset, size, boot); !result.ok()) {
                return result;
            }
            memory_map_seen = true;
        } else if (type == kMultiboot2TagAcpiNew ||
                   (type == kMultiboot2TagAcpiOld && boot.acpi_rsdp == 0)) {
            boot.acpi_rsdp = information + offset + kHeaderSize;
        } else if (type == kMultiboot2TagModule) {
            if (auto result = parse_module(base + offset, size, boot); !result.ok()) {
                return result;
            }
        }
        const uint32_t padded = (size + 7) & ~7u;
        if (padded > total_size - offset) {
            break;
        }
        offset += padded;
    }
    if (!end_seen) {
        return {"multiboot2 information has no end tag"};
    }
    if (!memory_map_seen) {
        return {"multiboot2 information has no memory-map tag"};
    }
    BootParseResult result = add_reserved(boot, 0, kLowMemory);
    return result.ok() ? add_reserved(boot, information, total_size) : result;
}

} // namespace bedrock::kernel
