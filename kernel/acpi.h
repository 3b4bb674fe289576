// SPDX-License-Identifier: MIT
// ACPI, as far as the test kernel needs it: finding the RSDP, reading the CPUs from the MADT and
// the PM timer's port from the FADT.
//
// The kernel runs identity-mapped, so every table is read at its physical address (the host
// tests build tables in host memory and use host addresses as physical ones). Every table is
// trusted only after its checksum (the bytes of the table sum to 0 mod 256) and its length
// (at least a header, at most kAcpiMaxTableSize) check out; a bad table is skipped, never
// followed.
//
// Layouts (ACPI 6.5): RSDP 20 bytes (revision 0) or 36 (revision >= 2: length, XSDT address,
// extended checksum); every other table a 36-byte header then its body; the RSDT lists tables
// by 32-bit address, the XSDT by 64-bit (unaligned); the MADT ("APIC") body is a 32-bit local
// APIC address, 32-bit flags, then variable-length entries {u8 type, u8 length, ...}.
// CPUs: type 0 (Processor Local APIC: u8 UID, u8 APIC id, u32 flags) and type 9 (Processor
// Local x2APIC: u16 reserved, u32 x2APIC id, u32 flags, u32 UID); a CPU is started when its
// flags say Enabled (bit 0). Online Capable (bit 1, without bit 0) is a CPU that is not there
// at boot but may be added later (a hot-plug slot, as Linux reads it): it is only counted. An
// entry with neither flag is a CPU the OS must not use (QEMU 7.2 lists its slots beyond -smp, up
// to maxcpus, this way): it is counted as disabled. An enabled id listed twice (an xAPIC entry
// and an x2APIC entry for the same CPU) counts once.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kernel/boot_info.h"

namespace bedrock::kernel {

// Tables larger than this are treated as corrupt (the largest real MADTs are a few KiB).
inline constexpr uint32_t kAcpiMaxTableSize = 1u << 20;
// Tables are read only below 4 GiB, where the x86-64 early map reaches (as the MP table's,
// kMpReadLimit): an XSDT entry above it is skipped like a bad table.
inline constexpr uint64_t kAcpiReadLimit = uint64_t{1} << 32;

// The physical address of a valid RSDP ("RSD PTR ", checksums right) on a 16-byte boundary of
// [area, area + length), or 0 if there is none. O(length).
[[nodiscard]] uint64_t acpi_find_rsdp(uint64_t area, uint64_t length);

// Whether `rsdp` points at a valid RSDP.
[[nodiscard]] bool acpi_rsdp_valid(uint64_t rsdp);

struct AcpiCpus {
    const char* error = nullptr; // why no CPU list could be read; null on success
    uint64_t local_apic_address = 0;
    size_t online_capable = 0; // entries for CPUs that may be added later, not started
    size_t disabled = 0;       // entries with neither Enabled nor Online Capable, not started
    [[nodiscard]] bool ok() const { return error == nullptr; }
};

// Reads the MADT that the RSDP at `rsdp` leads to (through the XSDT when the RSDP has one, else
// the RSDT) and fills boot.cpu_ids / cpu_count / cpus_left_off with every enabled CPU in MADT
// order (the first kMaxBootCpus; the rest only counted). On an error
// (no valid RSDP, root table or MADT) leaves the CPU fields unchanged. O(tables + MADT size).
[[nodiscard]] AcpiCpus acpi_read_cpus(uint64_t rsdp, BootInfo& boot);

// The ACPI PM timer: an I/O port whose count rises at kAcpiPmTimerHz, 24 bits wide, or 32 with
// the FADT's TMR_VAL_EXT flag (bit 8 of Flags, offset 112). From the FADT ("FACP") that the RSDP
// leads to: PM_TMR_BLK (offset 76), else X_PM_TMR_BLK (offset 208) if it is in I/O space.
// port 0: no valid RSDP, root table or FADT, or no timer. O(tables).
inline constexpr uint64_t kAcpiPmTimerHz = 3579545;
struct AcpiPmTimer {
    uint16_t port = 0;
    unsigned bits = 24;
};
[[nodiscard]] AcpiPmTimer acpi_find_pm_timer(uint64_t rsdp);

} // namespace bedrock::kernel
