// SPDX-License-Identifier: MIT
// ACPI RSDP search and MADT CPU list; see acpi.h.
#include "kernel/acpi.h"

#include "kernel/firmware_bytes.h"

namespace bedrock::kernel {
namespace {

constexpr uint64_t kRsdpAlignment = 16;
constexpr uint32_t kRsdpVersion1Size = 20;
constexpr uint32_t kRsdpVersion2Size = 36;
constexpr uint32_t kHeaderSize = 36;        // every table but the RSDP
constexpr uint32_t kMadtEntriesOffset = 44; // header, local APIC address, flags
constexpr uint8_t kMadtLocalApic = 0;
constexpr uint8_t kMadtLocalX2Apic = 9;
constexpr uint8_t kLocalApicEntrySize = 8;
constexpr uint8_t kLocalX2ApicEntrySize = 16;
constexpr uint32_t kCpuEnabled = 1u << 0;
constexpr uint32_t kCpuOnlineCapable = 1u << 1;

// The table at `address` if its header and checksum are sound and its signature is `signature`,
// with its length; null otherwise, and for one that does not lie wholly below kAcpiReadLimit
// (never read: the early map ends there).
const uint8_t* valid_table(uint64_t address, const char* signature, uint32_t& length) {
    if (address == 0 || kAcpiReadLimit - kHeaderSize < address) {
        return nullptr;
    }
    const uint8_t* table = firmware_bytes_at(address);
    if (!has_signature(table, signature)) {
        return nullptr;
    }
    length = read_u32(table + 4);
    if (length < kHeaderSize || length > kAcpiMaxTableSize || kAcpiReadLimit - address < length ||
        !sums_to_zero(table, length)) {
        return nullptr;
    }
    return table;
}

// The table `signature` among those the root table (RSDT: 4-byte entries, XSDT: 8-byte) lists.
const uint8_t* find_listed(const uint8_t* root, uint32_t root_length, unsigned entry_size,
                           const char* signature, uint32_t& length) {
    for (uint32_t offset = kHeaderSize; root_length - offset >= entry_size; offset += entry_size) {
        const uint64_t address = read_le(root + offset, entry_size);
        if (const uint8_t* table = valid_table(address, signature, length); table != nullptr) {
            return table;
        }
    }
    return nullptr;
}

// The root table the RSDP at `rsdp` (valid) leads to: its XSDT if it has a sound one, else its
// RSDT; null if neither is sound.
const uint8_t* root_table(uint64_t rsdp, uint32_t& length, unsigned& entry_size) {
    const uint8_t* pointer = firmware_bytes_at(rsdp);
    const uint64_t xsdt_address = pointer[15] >= 2 ? read_le(pointer + 24, 8) : 0;
    if (const uint8_t* xsdt = valid_table(xsdt_address, "XSDT", length); xsdt != nullptr) {
        entry_size = 8;
        return xsdt;
    }
    entry_size = 4;
    return valid_table(read_u32(pointer + 16), "RSDT", length);
}

// Adds the CPU of one MADT entry to boot's list if it is enabled; else counts it in
// cpus.online_capable or, with neither flag, in cpus.disabled.
void add_cpu(uint64_t id, uint32_t flags, BootInfo& boot, AcpiCpus& cpus) {
    if ((flags & kCpuEnabled) != 0) {
        add_boot_cpu(boot, id);
    } else if ((flags & kCpuOnlineCapable) != 0) {
        ++cpus.online_capable;
    } else {
        ++cpus.disabled;
    }
}

} // namespace

bool acpi_rsdp_valid(uint64_t rsdp) {
    if (rsdp == 0) {
        return false;
    }
    const uint8_t* bytes = firmware_bytes_at(rsdp);
    if (!has_signature(bytes, "RSD PTR ") || !sums_to_zero(bytes, kRsdpVersion1Size)) {
        return false;
    }
    if (bytes[15] < 2) {
        return true;
    }
    const uint32_t length = read_u32(bytes + 20);
    return length >= kRsdpVersion2Size && length <= kAcpiMaxTableSize &&
           sums_to_zero(bytes, length);
}

uint64_t acpi_find_rsdp(uint64_t area, uint64_t length) {
    return find_aligned_structure(area, length, kRsdpAlignment, kRsdpVersion1Size, acpi_rsdp_valid);
}

AcpiCpus acpi_read_cpus(uint64_t rsdp, BootInfo& boot) {
    if (!acpi_rsdp_valid(rsdp)) {
        return {"no valid ACPI RSDP", 0};
    }
    uint32_t root_length = 0;
    unsigned entry_size = 0;
    const uint8_t* root = root_table(rsdp, root_length, entry_size);
    if (root == nullptr) {
        return {"the ACPI root table (XSDT or RSDT) is missing or damaged", 0};
    }
    uint32_t madt_length = 0;
    const uint8_t* madt = find_listed(root, root_length, entry_size, "APIC", madt_length);
    if (madt == nullptr || madt_length < kMadtEntriesOffset) {
        return {"no valid ACPI MADT", 0};
    }
    boot.cpu_count = 0;
    boot.cpus_left_off = 0;
    AcpiCpus cpus;
    cpus.local_apic_address = read_u32(madt + kHeaderSize);
    uint32_t offset = kMadtEntriesOffset;
    while (madt_length - offset >= 2) {
        const uint8_t* entry = madt + offset;
        const uint8_t type = entry[0];
        const uint8_t length = entry[1];
        if (length < 2 || length > madt_length - offset) {
            break; // a damaged entry: the ones before it stand
        }
        if (type == kMadtLocalApic && length >= kLocalApicEntrySize) {
            add_cpu(entry[3], read_u32(entry + 4), boot, cpus);
        } else if (type == kMadtLocalX2Apic && length >= kLocalX2ApicEntrySize) {
            add_cpu(read_u32(entry + 4), read_u32(entry + 8), boot, cpus);
        }
        offset += length;
    }
    return cpus;
}

AcpiPmTimer acpi_find_pm_timer(uint64_t rsdp) {
    constexpr uint32_t kPmTimerBlock = 76;
    constexpr uint32_t kFlags = 112;
    constexpr uint32_t kTimerValueExtended = 1u << 8;
    constexpr uint32_t kExtendedPmTimerBlock = 208; // a Generic Address Structure, 12 bytes
    constexpr uint8_t kSystemIo = 1;
    if (!acpi_rsdp_valid(rsdp)) {
        return {};
    }
    uint32_t root_length = 0;
    unsigned entry_size = 0;
    const uint8_t* root = root_table(rsdp, root_length, entry_size);
    uint32_t length = 0;
    const uint8_t* fadt =
        root != nullptr ? find_listed(root, root_length, entry_size, "FACP", length) : nullptr;
    if (fadt == nullptr || length < kPmTimerBlock + 4) {
        return {};
    }
    uint64_t port = read_u32(fadt + kPmTimerBlock);
    if (port == 0 && length >= kExtendedPmTimerBlock + 12 &&
        fadt[kExtendedPmTimerBlock] == kSystemIo) {
        port = read_le(fadt + kExtendedPmTimerBlock + 4, 8);
    }
    if (port == 0 || port > 0xFFFF) {
        return {};
    }
    const bool extended =
        length >= kFlags + 4 && (read_u32(fadt + kFlags) & kTimerValueExtended) != 0;
    return {static_cast<uint16_t>(port), extended ? 32u : 24u};
}

} // namespace bedrock::kernel
