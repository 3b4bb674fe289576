// SPDX-License-Identifier: MIT
// The Intel MultiProcessor Specification (1.4) tables, as far as the test kernel needs them: the
// CPUs of an x86 machine whose firmware publishes no ACPI MADT (QEMU's -M pc,acpi=off, where
// SeaBIOS still builds an MP table). The x86-64 kernel reads them only when ACPI gives no CPU
// list.
//
// Like the ACPI tables, every structure is read at its physical address (kernel/firmware_bytes.h)
// and trusted only after its checksum (its bytes sum to 0 mod 256) and its lengths check out. No
// read leaves a structure's checked length, nor reaches kMpReadLimit (4 GiB: every MP address
// is 32-bit, and the early identity map covers 0-4 GiB). A table found damaged is refused whole,
// BootInfo unchanged, with a message that names the damage: entries carry no length of their
// own, so past one of an unknown type nothing can be read, and an entry count that does not fit
// the length means the table was written wrong.
//
// Layouts: the floating pointer structure, 16 bytes on a 16-byte boundary: "_MP_", u32 physical
// address of the configuration table, u8 length in 16-byte units (1), u8 revision, u8 checksum,
// then feature bytes 1-5 (byte 1 nonzero: one of the default configurations, and no table). The
// configuration table: a 44-byte header ("PCMP", u16 base table length, u8 revision, u8 checksum
// at 7, OEM and product ids, OEM table address and size, u16 entry count at 34, u32 local APIC
// address at 36, extended table length and checksum), then the entries, sized by their type
// (the first byte): processor (0) 20 bytes {type, local APIC id, APIC version, flags (bit 0:
// enabled, bit 1: the boot processor), CPU signature, CPUID features, reserved}; bus (1), I/O
// APIC (2), I/O interrupt (3) and local interrupt (4) 8 bytes. The extended table that follows
// the base table is not read. Feature byte 2's IMCR flag is left alone: the kernel masks the
// 8259 PICs and takes no external interrupt, so whether they reach the boot CPU directly or
// through its APIC does not matter.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kernel/boot_info.h"

namespace bedrock::kernel {

inline constexpr uint64_t kMpReadLimit = uint64_t{1} << 32;

// The default configurations (feature byte 1 = 1..7) have two CPUs, local APIC ids 0 and 1, and
// the local APIC at its architectural address.
inline constexpr uint8_t kMpLastDefaultConfiguration = 7;
inline constexpr uint64_t kMpDefaultLocalApicAddress = 0xFEE0'0000;

// Where the specification says the floating pointer lies, in search order: the first KiB of the
// extended BIOS data area, the last KiB of base memory, the BIOS ROM (0xF0000-0xFFFFF).
struct MpSearchArea {
    uint64_t base = 0;
    uint64_t length = 0;
};
struct MpSearchAreas {
    MpSearchArea areas[3] = {};
    size_t count = 0;
};

// The search areas from the BIOS data area's words: the EBDA's real-mode segment (0x40E) and the
// base memory size in KiB (0x413). An EBDA segment of 0 or at or above 640 KiB names no EBDA (it
// is left out); a base memory size of 0 or above 640 KiB is taken as 639 KiB. O(1).
[[nodiscard]] MpSearchAreas mp_search_areas(uint16_t ebda_segment, uint16_t base_memory_kib);

// Whether `address` holds a valid floating pointer structure ("_MP_", length 1, checksum).
[[nodiscard]] bool mp_floating_pointer_valid(uint64_t address);

// The physical address of the first valid floating pointer structure on a 16-byte boundary of
// `areas` (in their order), or 0 if there is none. O(total length).
[[nodiscard]] uint64_t mp_find_floating_pointer(const MpSearchAreas& areas);

struct MpCpus {
    const char* error = nullptr;       // why no CPU list could be read; null on success
    uint8_t default_configuration = 0; // 1..7: the CPUs are the default configuration's
    uint64_t table = 0;                // the configuration table's address; 0 for a default one
    uint64_t local_apic_address = 0;
    size_t disabled = 0; // processor entries without the enabled flag, not started
    [[nodiscard]] bool ok() const { return error == nullptr; }
};

// Reads the CPUs the floating pointer at `floating_pointer` describes, through its configuration
// table or its default configuration, and fills boot.cpu_ids / cpu_count / cpus_left_off with
// every enabled processor in table order (the first kMaxBootCpus; the rest only counted). On an
// error (no valid floating pointer, a damaged table, neither a table nor a default configuration)
// leaves the CPU fields unchanged. O(table length).
[[nodiscard]] MpCpus mp_read_cpus(uint64_t floating_pointer, BootInfo& boot);

} // namespace bedrock::kernel
