// SPDX-License-Identifier: MIT
// MP floating pointer search and the configuration table's CPU list; see mp_table.h.
#include "kernel/mp_table.h"

#include "kernel/firmware_bytes.h"

namespace bedrock::kernel {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kBaseMemoryLimit = 640 * kKiB; // where the EBDA and base memory end
constexpr uint64_t kFallbackBaseMemoryKib = 639;
constexpr uint64_t kBiosRomBase = 0xF0000;
constexpr uint64_t kBiosRomSize = 0x10000;

// The floating pointer structure.
constexpr uint64_t kFloatingPointerAlignment = 16;
constexpr uint32_t kFloatingPointerSize = 16;
constexpr uint32_t kTableAddressOffset = 4;
constexpr uint32_t kLengthOffset = 8; // in 16-byte units
constexpr uint32_t kFeature1Offset = 11;

// The configuration table.
constexpr uint32_t kHeaderSize = 44;
constexpr uint32_t kBaseTableLengthOffset = 4;
constexpr uint32_t kEntryCountOffset = 34;
constexpr uint32_t kLocalApicAddressOffset = 36;
constexpr uint8_t kProcessorEntry = 0;
constexpr uint8_t kLastEntryType = 4; // local interrupt assignment
constexpr uint32_t kProcessorEntrySize = 20;
constexpr uint32_t kOtherEntrySize = 8;
constexpr uint32_t kProcessorApicIdOffset = 1;
constexpr uint32_t kProcessorFlagsOffset = 3;
constexpr uint8_t kProcessorEnabled = 1u << 0;

// The size of a base table entry of type `type`; 0 for a type the specification does not define.
uint32_t entry_size(uint8_t type) {
    if (type == kProcessorEntry) {
        return kProcessorEntrySize;
    }
    return type <= kLastEntryType ? kOtherEntrySize : 0;
}

// Null if `count` entries, each sized by its type, fit in the table's `length` bytes after its
// header; else what is wrong with them.
const char* entries_damage(const uint8_t* table, uint32_t length, uint32_t count) {
    constexpr const char* kPastLength = "the MP configuration table's entries run past its length";
    uint32_t offset = kHeaderSize;
    for (uint32_t i = 0; i < count; ++i) {
        if (offset == length) { // not even the entry's type byte is inside the table
            return kPastLength;
        }
        const uint32_t size = entry_size(table[offset]);
        if (size == 0) {
            return "an MP configuration table entry has an unknown type (so no size)";
        }
        if (size > length - offset) {
            return kPastLength;
        }
        offset += size;
    }
    return nullptr;
}

// The CPUs of a default configuration: two, APIC ids 0 and 1.
MpCpus read_default_configuration(uint8_t configuration, BootInfo& boot) {
    if (configuration > kMpLastDefaultConfiguration) {
        return {"the MP floating pointer names an undefined default configuration"};
    }
    boot.cpu_count = 0;
    boot.cpus_left_off = 0;
    add_boot_cpu(boot, 0);
    add_boot_cpu(boot, 1);
    MpCpus cpus;
    cpus.default_configuration = configuration;
    cpus.local_apic_address = kMpDefaultLocalApicAddress;
    return cpus;
}

} // namespace

MpSearchAreas mp_search_areas(uint16_t ebda_segment, uint16_t base_memory_kib) {
    MpSearchAreas result;
    const uint64_t ebda = uint64_t{ebda_segment} << 4;
    if (ebda != 0 && ebda < kBaseMemoryLimit) {
        const uint64_t room = kBaseMemoryLimit - ebda;
        result.areas[result.count++] = {ebda, room < kKiB ? room : kKiB};
    }
    const uint64_t base_kib = base_memory_kib != 0 && base_memory_kib * kKiB <= kBaseMemoryLimit
                                  ? base_memory_kib
                                  : kFallbackBaseMemoryKib;
    result.areas[result.count++] = {(base_kib - 1) * kKiB, kKiB};
    result.areas[result.count++] = {kBiosRomBase, kBiosRomSize};
    return result;
}

bool mp_floating_pointer_valid(uint64_t address) {
    if (address == 0 || kMpReadLimit - kFloatingPointerSize < address) {
        return false;
    }
    const uint8_t* bytes = firmware_bytes_at(address);
    return has_signature(bytes, "_MP_") && bytes[kLengthOffset] == 1 &&
           sums_to_zero(bytes, kFloatingPointerSize);
}

uint64_t mp_find_floating_pointer(const MpSearchAreas& areas) {
    for (size_t i = 0; i < areas.count; ++i) {
        const uint64_t found = find_aligned_structure(
            areas.areas[i].base, areas.areas[i].length, kFloatingPointerAlignment,
            kFloatingPointerSize, mp_floating_pointer_valid);
        if (found != 0) {
            return found;
        }
    }
    return 0;
}

MpCpus mp_read_cpus(uint64_t floating_pointer, BootInfo& boot) {
    if (!mp_floating_pointer_valid(floating_pointer)) {
        return {"no valid MP floating pointer structure"};
    }
    const uint8_t* pointer = firmware_bytes_at(floating_pointer);
    if (const uint8_t configuration = pointer[kFeature1Offset]; configuration != 0) {
        return read_default_configuration(configuration, boot);
    }
    const uint64_t table_address = read_u32(pointer + kTableAddressOffset);
    if (table_address == 0) {
        return {"the MP floating pointer names neither a configuration table nor a default "
                "configuration"};
    }
    if (kMpReadLimit - table_address < kHeaderSize) {
        return {"the MP configuration table runs past 4 GiB"};
    }
    const uint8_t* table = firmware_bytes_at(table_address);
    if (!has_signature(table, "PCMP")) {
        return {"no MP configuration table (\"PCMP\") where the floating pointer points"};
    }
    const uint32_t length = read_u16(table + kBaseTableLengthOffset);
    if (length < kHeaderSize || kMpReadLimit - table_address < length) {
        return {"the MP configuration table's length is out of range"};
    }
    if (!sums_to_zero(table, length)) {
        return {"the MP configuration table's checksum is wrong"};
    }
    const uint32_t count = read_u16(table + kEntryCountOffset);
    if (const char* damage = entries_damage(table, length, count); damage != nullptr) {
        return {damage};
    }
    boot.cpu_count = 0;
    boot.cpus_left_off = 0;
    MpCpus cpus;
    cpus.table = table_address;
    cpus.local_apic_address = read_u32(table + kLocalApicAddressOffset);
    uint32_t offset = kHeaderSize;
    for (uint32_t i = 0; i < count; ++i) {
        const uint8_t* entry = table + offset;
        if (entry[0] == kProcessorEntry) {
            if ((entry[kProcessorFlagsOffset] & kProcessorEnabled) != 0) {
                add_boot_cpu(boot, entry[kProcessorApicIdOffset]);
            } else {
                ++cpus.disabled;
            }
        }
        offset += entry_size(entry[0]);
    }
    return cpus;
}

} // namespace bedrock::kernel
