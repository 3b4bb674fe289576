// SPDX-License-Identifier: MIT
// PVH start_info parsing; see pvh.h.
#include "kernel/pvh.h"

#include "kernel/boot_protocol_support.h"

namespace bedrock::kernel {
namespace {

constexpr uint64_t kLowMemory = uint64_t{1} << 20;
constexpr uint64_t kCommandLineLimit = 4096;

template <class T>
const T* at(uint64_t physical) {
    return reinterpret_cast<const T*>(static_cast<uintptr_t>(physical));
}

} // namespace

BootParseResult parse_pvh(uint64_t start_info_address, BootInfo& boot) {
    if (start_info_address == 0) {
        return {"no PVH start_info (null pointer)"};
    }
    const auto& info = *at<HvmStartInfo>(start_info_address);
    if (info.magic != kPvhStartInfoMagic) {
        // QEMU's PVH option ROM copies the command line into a 4 KiB buffer unchecked: one of
        // over 4 KiB overwrites the start_info that follows it.
        return {"PVH start_info has a bad magic number (under QEMU: a command line over 4 KiB "
                "overwrites it; use a shorter one)"};
    }
    if (info.version < 1 || info.memory_map == 0 || info.memory_map_entries == 0) {
        return {"PVH start_info carries no memory map (version 0 or empty)"};
    }
    boot.firmware = "pvh";
    boot.acpi_rsdp = info.rsdp;

    const auto* entries = at<HvmMemoryMapEntry>(info.memory_map);
    for (uint32_t i = 0; i < info.memory_map_entries; ++i) {
        if (entries[i].type == kE820Ram) {
            if (auto result = add_ram(boot, entries[i].address, entries[i].size); !result.ok()) {
                return result;
            }
        }
    }

    BootParseResult result = add_reserved(boot, 0, kLowMemory);
    if (result.ok()) {
        result = add_reserved(boot, start_info_address, sizeof(HvmStartInfo));
    }
    if (result.ok()) {
        result = add_reserved(boot, info.memory_map,
                              uint64_t{info.memory_map_entries} * sizeof(HvmMemoryMapEntry));
    }
    if (result.ok() && info.module_count != 0 && info.module_list != 0) {
        const auto* modules = at<HvmModule>(info.module_list);
        result =
            add_reserved(boot, info.module_list, uint64_t{info.module_count} * sizeof(HvmModule));
        for (uint32_t i = 0; result.ok() && i < info.module_count; ++i) {
            result = add_reserved(boot, modules[i].address, modules[i].size);
        }
    }
    if (result.ok() && info.command_line != 0) {
        const char* text = at<char>(info.command_line);
        copy_command_line(text, kCommandLineLimit, boot);
        size_t length = 0;
        while (length < kCommandLineLimit && text[length] != '\0') {
            ++length;
        }
        result = add_reserved(boot, info.command_line, length + 1);
    }
    return result;
}

} // namespace bedrock::kernel
