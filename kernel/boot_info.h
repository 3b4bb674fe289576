// SPDX-License-Identifier: MIT
// BootInfo: what the firmware told the kernel about memory, in one portable form.
//
// Each arch fills `ram` with every RAM range the firmware describes (E820 type 1 entries, device
// tree /memory nodes) and `reserved` with every range that is RAM but must not be handed to the
// allocators (boot structures, the device tree, firmware-owned low memory). `no_map` holds the
// reserved ranges the kernel must not even map (device tree /reserved-memory children marked
// `no-map`): no_map ⊆ reserved. The kernel adds its own image (linker symbols) itself. The
// firmware's ranges may be unsorted, overlapping, adjacent and unaligned; a RangeList merges them
// as they are added.
//
// Invariants: count() <= Capacity; the ranges of a list are separate (no two overlap or touch),
// so count() counts separate ranges. add() merges a range into those it overlaps or touches and
// refuses one that would be a separate range beyond capacity, so a firmware map larger than the
// kernel's tables fails with a clear message. Writers through data() and set_count() (the memory
// map's in-place sort and merge) keep the ranges separate.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/phys_range.h"
#include "bedrock/platform.h"

namespace bedrock::kernel {

template <size_t Capacity>
class RangeList {
public:
    // Adds [base, base + size), merged with every range of the list it overlaps or touches (the
    // merged range keeps the place of the first of them). Empty ranges are ignored; a range whose
    // end would pass 2^64 is clipped to end there. Returns false (and adds nothing) when the range
    // is separate from all others and the list is full. O(count()).
    [[nodiscard]] bool add(uint64_t base, uint64_t size) {
        if (size == 0) {
            return true;
        }
        const uint64_t room = ~uint64_t{0} - base; // bytes after base, minus one
        const PhysRange added{base, size - 1 > room ? room + 1 : size};
        size_t merged = 0;
        while (merged < m_count && !overlap_or_touch(m_ranges[merged], added)) {
            ++merged;
        }
        if (merged == m_count) {
            if (m_count == Capacity) {
                return false;
            }
            m_ranges[m_count++] = added;
            return true;
        }
        // The ranges were separate, so only ranges that meet `added` itself can meet the union.
        m_ranges[merged] = span(m_ranges[merged], added);
        size_t kept = merged + 1;
        for (size_t i = merged + 1; i < m_count; ++i) {
            if (overlap_or_touch(m_ranges[i], added)) {
                m_ranges[merged] = span(m_ranges[merged], m_ranges[i]);
            } else {
                m_ranges[kept++] = m_ranges[i];
            }
        }
        m_count = kept;
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
    static constexpr bool overlap_or_touch(const PhysRange& a, const PhysRange& b) {
        // a reaches b's first byte or the byte before it, and b reaches a's the same way.
        return (b.base == 0 || a.last() >= b.base - 1) && (a.base == 0 || b.last() >= a.base - 1);
    }
    // The smallest range holding both. All 2^64 bytes have no PhysRange: that union loses its
    // last byte.
    static constexpr PhysRange span(const PhysRange& a, const PhysRange& b) {
        const PhysAddr base = a.base < b.base ? a.base : b.base;
        const PhysAddr last = a.last() > b.last() ? a.last() : b.last();
        const uint64_t bytes_minus_one = last - base;
        return PhysRange{base,
                         bytes_minus_one == ~uint64_t{0} ? bytes_minus_one : bytes_minus_one + 1};
    }

    PhysRange m_ranges[Capacity] = {};
    size_t m_count = 0;
};

inline constexpr size_t kMaxFirmwareRanges = 128;

// The most CPUs the test kernel starts: as many as Bedrock keeps per-CPU state for
// (BEDROCK_MAX_CPUS, 64 unless the build sets it). The firmware may describe more: the rest are
// named in the boot log and left off.
inline constexpr size_t kMaxBootCpus = platform::kMaxCpus;

// How the firmware starts CPUs on AArch64 (PSCI, the device tree's /psci node): the instruction
// that calls it, or None when the device tree names no usable PSCI.
enum class PsciConduit { None, Hvc, Smc };

// The interrupt controller the firmware describes (AArch64: the device tree's GIC node).
enum class InterruptControllerKind { None, GicV2, GicV3 };
// The most GICv3 redistributor regions kept (QEMU virt lists at most 2; the binding allows any
// number). Invariant: per_cpu_count <= kMaxPerCpuRegions, and per_cpu_left_off counts the
// regions the firmware listed beyond them.
inline constexpr size_t kMaxPerCpuRegions = 8;
struct InterruptController {
    InterruptControllerKind kind = InterruptControllerKind::None;
    PhysRange distributor = {}; // GICD
    // GICv2: one range, the CPU interface (GICC); GICv3: the redistributor regions (GICR), in
    // the firmware's order, each a run of redistributor frames.
    PhysRange per_cpu[kMaxPerCpuRegions] = {};
    size_t per_cpu_count = 0;
    size_t per_cpu_left_off = 0; // GICv3 regions listed beyond kMaxPerCpuRegions, not kept
};

struct BootInfo {
    const char* firmware = "unknown"; // "pvh", "multiboot2", "device tree"
    const char* command_line = "";
    bool command_line_cut = false; // longer than the kernel's buffer: its end left off
    RangeList<kMaxFirmwareRanges> ram;
    RangeList<kMaxFirmwareRanges> reserved;
    // Reserved ranges left out of the kernel's identity map, whole pages (a page partly inside is
    // not mapped), because the firmware forbids any mapping of them: not even a speculative
    // access may reach them (AArch64: `no-map` children of /reserved-memory). Each is in
    // `reserved` too.
    RangeList<kMaxFirmwareRanges> no_map;
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

// Adds the CPU with hardware id `id` to boot's list, unless it is listed already (firmware that
// describes a CPU twice must not have it started twice); beyond kMaxBootCpus it is counted in
// cpus_left_off. O(CPUs listed).
inline void add_boot_cpu(BootInfo& boot, uint64_t id) {
    for (size_t i = 0; i < boot.cpu_count; ++i) {
        if (boot.cpu_ids[i] == id) {
            return;
        }
    }
    if (boot.cpu_count == kMaxBootCpus) {
        ++boot.cpus_left_off;
        return;
    }
    boot.cpu_ids[boot.cpu_count++] = id;
}

// The CPUs the firmware described, those kept in cpu_ids and those left off beyond them (a CPU
// described twice beyond kMaxBootCpus counts twice: nothing records the ids left off).
inline size_t described_cpu_count(const BootInfo& boot) {
    return boot.cpu_count + boot.cpus_left_off;
}

} // namespace bedrock::kernel
