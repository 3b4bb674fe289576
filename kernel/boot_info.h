// SPDX-License-Identifier: MIT
// BootInfo: what the firmware told the kernel about memory, in one portable form.
//
// Each arch fills `ram` with every RAM range the firmware describes (E820 type 1 entries, device
// tree /memory nodes) and `reserved` with every range that is RAM but must not be handed to the
// allocators (boot structures, the device tree, firmware-owned low memory). The kernel adds its
// own image (linker symbols) itself. Ranges may be unsorted, overlapping and unaligned.
//
// Invariant: count() <= Capacity. add() refuses a range beyond capacity and reports it, so a
// firmware map larger than the kernel's tables fails with a clear message.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/phys_range.h"

namespace bedrock::kernel {

template <size_t Capacity>
class RangeList {
public:
    // Adds [base, base + size). Empty ranges are ignored; a range whose end would pass 2^64 is
    // clipped to end there. Returns false (and adds nothing) when the list is full.
    [[nodiscard]] bool add(uint64_t base, uint64_t size) {
        if (size == 0) {
            return true;
        }
        if (m_count == Capacity) {
            return false;
        }
        const uint64_t room = ~uint64_t{0} - base; // bytes after base, minus one
        m_ranges[m_count++] = PhysRange{base, size - 1 > room ? room + 1 : size};
        return true;
    }
    void clear() { m_count = 0; }

    [[nodiscard]] const PhysRange* begin() const { return m_ranges; }
    [[nodiscard]] const PhysRange* end() const { return m_ranges + m_count; }
    [[nodiscard]] const PhysRange* data() const { return m_ranges; }
    [[nodiscard]] PhysRange* data() { return m_ranges; }
    [[nodiscard]] size_t count() const { return m_count; }
    [[nodiscard]] static constexpr size_t capacity() { return Capacity; }
    void set_count(size_t count) { m_count = count <= Capacity ? count : Capacity; }

private:
    PhysRange m_ranges[Capacity] = {};
    size_t m_count = 0;
};

inline constexpr size_t kMaxFirmwareRanges = 128;

// The most CPUs the test kernel starts (the firmware may describe more: the rest are named in
// the boot log and left off).
inline constexpr size_t kMaxBootCpus = 64;

// How the firmware starts CPUs on AArch64 (PSCI, the device tree's /psci node): the instruction
// that calls it, or None when the device tree names no usable PSCI.
enum class PsciConduit { None, Hvc, Smc };

// The interrupt controller the firmware describes (AArch64: the device tree's GIC node).
enum class InterruptControllerKind { None, GicV2, GicV3 };
struct InterruptController {
    InterruptControllerKind kind = InterruptControllerKind::None;
    PhysRange distributor = {}; // GICD
    PhysRange per_cpu = {};     // GICv2: the CPU interface (GICC); GICv3: the redistributors
};

struct BootInfo {
    const char* firmware = "unknown"; // "pvh", "multiboot2", "device tree"
    const char* command_line = "";
    bool command_line_cut = false; // longer than the kernel's buffer: its end left off
    RangeList<kMaxFirmwareRanges> ram;
    RangeList<kMaxFirmwareRanges> reserved;
    // The CPUs the firmware describes, by hardware id (x86-64: local APIC ids from the ACPI MADT;
    // AArch64: MPIDR affinity from the device tree's /cpus), boot CPU included, in firmware order.
    uint64_t cpu_ids[kMaxBootCpus] = {};
    size_t cpu_count = 0;
    size_t cpus_left_off = 0; // described beyond kMaxBootCpus
    uint64_t acpi_rsdp = 0;   // x86-64: physical address of the ACPI RSDP, 0 if not found
    // AArch64: PSCI's conduit and the function id of CPU_ON (PSCI 0.2+: CPU_ON64; 0.1: the
    // node's cpu_on), from /psci.
    PsciConduit psci_conduit = PsciConduit::None;
    uint32_t psci_cpu_on = 0;
    InterruptController interrupt_controller;
    // AArch64: the INTID of the non-secure EL1 physical timer (/timer's second interrupt), 0 if
    // the device tree lists none.
    uint32_t timer_interrupt = 0;
};

} // namespace bedrock::kernel
