// SPDX-License-Identifier: MIT
// The GIC driver: GICv2 (distributor + memory-mapped CPU interface; QEMU virt's default) and
// GICv3 (distributor with affinity routing + one redistributor per CPU + the system-register CPU
// interface; `-M virt,gic-version=3`), just enough for private interrupts (the timer's PPI).
//
// The boot CPU initialises the distributor once (every shared interrupt disabled and, on GICv3,
// in group 1; distribution on) and its own interface; each secondary initialises its own
// interface (GICv3: wakes its redistributor, puts its SGIs and PPIs in group 1) before it may
// unmask interrupts. Interrupts are signalled as IRQ: GICv2 keeps the reset group 0 with FIQEn
// clear; GICv3 uses group 1 (group 0 would be FIQ there) - Non-secure group 1, or Secure group 1
// when boot.S dropped from EL3 to Secure EL1 (aarch64_secure_el1), where Non-secure group 1 would
// be FIQ too.
// GICv3 redistributors lie in one or more regions (the device tree's #redistributor-regions;
// QEMU virt has a second one at 256 GiB when the first, in the device window, is full): a CPU's
// is found by searching every region for its affinity. A secondary whose redistributor is in no
// region is left out before it is started (start_cpu() asks gic_serves_cpu()).
// Invariants: g_gic is written by the boot CPU only, before any secondary starts; the distributor
// and the GICv2 CPU interface lie in kDeviceWindow (mapped Device-nGnRnE by boot.S and
// map_memory()); each kept redistributor region lies in kDeviceWindow or wholly outside it below
// arch::physical_address_limit(), where map_memory() maps it (gic_regions_beyond_device_window()) -
// and until it has (gic_regions_mapped()), those regions are not searched.
#include "arch/aarch64/aarch64.h"
#include "kernel/arch.h"
#include "kernel/console.h"

namespace bedrock::arch::aarch64 {
namespace {

// Distributor (both versions).
constexpr uintptr_t kDistributorControl = 0x000;
constexpr uintptr_t kDistributorType = 0x004;
constexpr uintptr_t kGroup = 0x080;
constexpr uintptr_t kGroupModifier = 0xD00; // GICv3: with kGroup 0, Secure group 1
constexpr uintptr_t kSetEnable = 0x100;
constexpr uintptr_t kClearEnable = 0x180;
constexpr uintptr_t kClearPending = 0x280;
constexpr uintptr_t kPriority = 0x400;
constexpr uintptr_t kSoftwareInterrupt = 0xF00;      // GICv2 GICD_SGIR
constexpr uint32_t kEveryOtherCpu = 1u << 24;        // GICD_SGIR.TargetListFilter = 0b01
constexpr uint32_t kRegisterWritePending = 1u << 31; // GICv3 GICD_CTLR.RWP
constexpr uint32_t kEnableGroups = 0x3;              // EnableGrp0 | EnableGrp1 (NS: Grp1, Grp1A)
constexpr uint32_t kEnableGroup1Secure = 1u << 2;    // GICv3 GICD_CTLR.EnableGrp1S (Secure view)
constexpr uint32_t kAffinityRouting = 1u << 4;       // GICv3 GICD_CTLR.ARE (NS: ARE_NS)
// GICv2 CPU interface.
constexpr uintptr_t kCpuControl = 0x000;
constexpr uintptr_t kPriorityMask = 0x004;
constexpr uintptr_t kBinaryPoint = 0x008;
constexpr uintptr_t kAcknowledge = 0x00C;
constexpr uintptr_t kEndOfInterrupt = 0x010;
// GICv3 redistributor: RD_base frame, then the SGI_base frame 64 KiB above it.
constexpr uintptr_t kRedistributorControl = 0x000;
constexpr uint32_t kRedistributorWritePending = 1u << 3; // GICR_CTLR.RWP
constexpr uintptr_t kRedistributorTypeLow = 0x008;       // Last (bit 4), VLPIS (bit 1)
constexpr uintptr_t kRedistributorTypeHigh = 0x00C;      // Aff3.Aff2.Aff1.Aff0
constexpr uintptr_t kRedistributorWaker = 0x014;
constexpr uint32_t kProcessorSleep = 1u << 1;
constexpr uint32_t kChildrenAsleep = 1u << 2;
constexpr uintptr_t kSgiFrame = 0x10000;
constexpr uintptr_t kRedistributorStride = 0x20000; // twice that with VLPIS (GICv4)

constexpr uint8_t kPrivatePriority = 0x80;
constexpr uint32_t kLowestPriorityMask = 0xFF;
constexpr uint32_t kInterruptIdMaskV2 = 0x3FF;     // GICC_IAR.InterruptID (CPUID above it)
constexpr uint32_t kInterruptIdMaskV3 = 0xFF'FFFF; // ICC_IAR1_EL1.INTID

struct Gic {
    kernel::InterruptControllerKind kind = kernel::InterruptControllerKind::None;
    uintptr_t distributor = 0;
    uintptr_t cpu_interface = 0; // GICv2
    // GICv3: the redistributor regions kept; those outside kDeviceWindow, page-aligned, also in
    // beyond_device_window.
    PhysRange redistributors[kernel::kMaxPerCpuRegions] = {};
    size_t redistributor_count = 0;
    kernel::RangeList<kernel::kMaxPerCpuRegions> beyond_device_window;
    bool final_map = false; // map_memory() has mapped beyond_device_window
    const char* missing = "the device tree describes no GICv2 or GICv3";
};
constinit Gic g_gic;

volatile uint32_t& reg32(uintptr_t base, uintptr_t offset) {
    return *reinterpret_cast<volatile uint32_t*>(base + offset);
}
volatile uint8_t& reg8(uintptr_t base, uintptr_t offset) {
    return *reinterpret_cast<volatile uint8_t*>(base + offset);
}

bool is_v3() {
    return g_gic.kind == kernel::InterruptControllerKind::GicV3;
}

bool secure() {
    return aarch64_secure_el1 != 0;
}

// GICv3: puts the 32 interrupts of one group register in group 1 of this kernel's security state.
void to_group_1(uintptr_t frame, uintptr_t word_offset) {
    reg32(frame, kGroup + word_offset) = secure() ? 0 : ~0u;
    if (secure()) {
        reg32(frame, kGroupModifier + word_offset) = ~0u;
    }
}

void wait_for_distributor_writes() {
    while ((reg32(g_gic.distributor, kDistributorControl) & kRegisterWritePending) != 0) {
    }
}

bool in_device_window(const PhysRange& range) {
    return range.size != 0 && kDeviceWindow.contains(range.base) &&
           kDeviceWindow.contains(range.last());
}

// GICv3: the redistributor of the CPU with MPIDR affinity `mpidr` (matched by GICR_TYPER's
// affinity), searched in every region mapped now; 0 if none matches. O(frames in the regions).
uintptr_t find_redistributor(uint64_t mpidr) {
    const auto affinity =
        static_cast<uint32_t>(((mpidr >> 8) & 0xFF00'0000) | (mpidr & 0x00FF'FFFF));
    for (size_t i = 0; i < g_gic.redistributor_count; ++i) {
        const PhysRange& region = g_gic.redistributors[i];
        if (!g_gic.final_map && !in_device_window(region)) {
            continue;
        }
        const auto end = static_cast<uintptr_t>(region.base + region.size);
        for (auto frame = static_cast<uintptr_t>(region.base); frame < end;) {
            const uint32_t type = reg32(frame, kRedistributorTypeLow);
            if (reg32(frame, kRedistributorTypeHigh) == affinity) {
                return frame;
            }
            if ((type & (1u << 4)) != 0) {
                break; // GICR_TYPER.Last: the region's last frame
            }
            frame += (type & (1u << 1)) != 0 ? 2 * kRedistributorStride : kRedistributorStride;
        }
    }
    return 0;
}

// GICv3: the calling CPU's redistributor. Panics if there is none: a secondary without one is
// never started (gic_serves_cpu()), so only the boot CPU can lack one.
uintptr_t this_redistributor() {
    const uint64_t mpidr = cpu_hardware_id();
    const uintptr_t frame = find_redistributor(mpidr);
    if (frame == 0) {
        kernel::panic("gic: no GICv3 redistributor for CPU 0x%lx in the regions the device tree "
                      "lists%s; cannot boot",
                      mpidr,
                      g_gic.final_map ? ""
                                      : " within virt's device window (the only ones mapped "
                                        "before the final map)");
    }
    return frame;
}

// The frame that holds the calling CPU's private interrupt registers (enable, priority, group).
uintptr_t private_registers() {
    return is_v3() ? this_redistributor() + kSgiFrame : g_gic.distributor;
}

// GICv3: keeps the redistributor regions the kernel can map - in kDeviceWindow, or wholly
// outside it and below what the identity map reaches (arch::physical_address_limit(); page-aligned
// outward, to be mapped by map_memory()) - and names the others in the boot log.
void keep_redistributor_regions(const kernel::InterruptController& controller) {
    const uint64_t map_limit = physical_address_limit();
    for (size_t i = 0; i < controller.per_cpu_count; ++i) {
        const PhysRange& region = controller.per_cpu[i];
        const uint64_t first = region.base & ~(kPageSize - 1);
        const uint64_t last = region.last() | (kPageSize - 1);
        const bool beyond = region.size != 0 &&
                            (last < kDeviceWindow.base || first > kDeviceWindow.last()) &&
                            last < map_limit;
        if (!in_device_window(region) && !beyond) {
            kernel::print("gic: the GICv3 redistributor region [0x%lx - 0x%lx] straddles virt's "
                          "device window or lies beyond the identity map; left out\n",
                          region.base, region.last());
            continue;
        }
        if (beyond) {
            // Never full: it has room for every region kept (kMaxPerCpuRegions).
            static_cast<void>(g_gic.beyond_device_window.add(first, last - first + 1));
        }
        g_gic.redistributors[g_gic.redistributor_count++] = region;
    }
    if (controller.per_cpu_left_off != 0) {
        kernel::print("gic: the device tree lists %zu more GICv3 redistributor regions than the "
                      "kernel keeps (%zu); left out\n",
                      controller.per_cpu_left_off, kernel::kMaxPerCpuRegions);
    }
}

} // namespace

void init_gic(const kernel::InterruptController& controller) {
    if (controller.kind == kernel::InterruptControllerKind::None) {
        return;
    }
    const bool v3 = controller.kind == kernel::InterruptControllerKind::GicV3;
    if (!in_device_window(controller.distributor) ||
        (!v3 && !in_device_window(controller.per_cpu[0]))) {
        g_gic.missing = "the GIC lies outside virt's device window that the kernel maps";
        return;
    }
    g_gic.kind = controller.kind;
    g_gic.distributor = static_cast<uintptr_t>(controller.distributor.base);
    if (v3) {
        keep_redistributor_regions(controller);
    } else {
        g_gic.cpu_interface = static_cast<uintptr_t>(controller.per_cpu[0].base);
    }
    g_gic.missing = nullptr;
    const uintptr_t distributor = g_gic.distributor;
    reg32(distributor, kDistributorControl) = 0;
    if (is_v3()) {
        wait_for_distributor_writes();
    }
    const uint32_t lines = 32 * ((reg32(distributor, kDistributorType) & 0x1F) + 1);
    for (uint32_t word = 1; word < lines / 32; ++word) { // shared interrupts: 32 and up
        reg32(distributor, kClearEnable + 4 * word) = ~0u;
        reg32(distributor, kClearPending + 4 * word) = ~0u;
        if (is_v3()) {
            to_group_1(distributor, 4 * word);
        }
    }
    if (is_v3()) {
        wait_for_distributor_writes();
        reg32(distributor, kDistributorControl) = kAffinityRouting;
        wait_for_distributor_writes();
        reg32(distributor, kDistributorControl) =
            kAffinityRouting | kEnableGroups | (secure() ? kEnableGroup1Secure : 0);
        wait_for_distributor_writes();
    } else {
        reg32(distributor, kDistributorControl) = kEnableGroups;
    }
    init_gic_cpu_interface();
}

void init_gic_cpu_interface() {
    if (!gic_ready()) {
        return;
    }
    if (!is_v3()) {
        reg32(g_gic.cpu_interface, kPriorityMask) = kLowestPriorityMask;
        reg32(g_gic.cpu_interface, kBinaryPoint) = 0;
        reg32(g_gic.cpu_interface, kCpuControl) = 1; // EnableGrp0 (NS view: Enable), FIQEn clear
        enable_private_interrupt(kWakeInterrupt);
        return;
    }
    const uintptr_t redistributor = this_redistributor();
    const uint32_t waker = reg32(redistributor, kRedistributorWaker);
    reg32(redistributor, kRedistributorWaker) = waker & ~kProcessorSleep;
    while ((reg32(redistributor, kRedistributorWaker) & kChildrenAsleep) != 0) {
    }
    to_group_1(redistributor + kSgiFrame, 0);
    uint64_t sre;
    asm volatile("mrs %0, icc_sre_el1" : "=r"(sre));
    asm volatile("msr icc_sre_el1, %0; isb" : : "r"(sre | 1));
    asm volatile("mrs %0, icc_sre_el1" : "=r"(sre));
    if ((sre & 1) == 0) {
        kernel::panic("gic: the GICv3 system register interface cannot be enabled at EL1");
    }
    asm volatile("msr icc_pmr_el1, %0" : : "r"(uint64_t{kLowestPriorityMask}));
    asm volatile("msr icc_bpr1_el1, xzr");
    asm volatile("msr icc_ctlr_el1, xzr"); // EOImode 0: EOIR also deactivates
    asm volatile("msr icc_igrpen1_el1, %0; isb" : : "r"(uint64_t{1}));
    enable_private_interrupt(kWakeInterrupt);
}

const kernel::RangeList<kernel::kMaxPerCpuRegions>& gic_regions_beyond_device_window() {
    return g_gic.beyond_device_window;
}

void gic_regions_mapped() {
    g_gic.final_map = true;
}

bool gic_serves_cpu(uint64_t mpidr) {
    return !gic_ready() || !is_v3() || find_redistributor(mpidr) != 0;
}

bool gic_ready() {
    return g_gic.missing == nullptr;
}

const char* gic_missing_reason() {
    return g_gic.missing;
}

void enable_private_interrupt(uint32_t intid) {
    const uintptr_t registers = private_registers();
    reg8(registers, kPriority + intid) = kPrivatePriority;
    reg32(registers, kSetEnable) = 1u << intid;
}

void disable_private_interrupt(uint32_t intid) {
    if (!is_v3()) {
        reg32(g_gic.distributor, kClearEnable) = 1u << intid;
        return;
    }
    const uintptr_t redistributor = this_redistributor();
    reg32(redistributor + kSgiFrame, kClearEnable) = 1u << intid;
    while ((reg32(redistributor, kRedistributorControl) & kRedistributorWritePending) != 0) {
    }
}

Acknowledged acknowledge_interrupt() {
    if (is_v3()) {
        uint64_t intid;
        asm volatile("mrs %0, icc_iar1_el1" : "=r"(intid) : : "memory");
        return {static_cast<uint32_t>(intid & kInterruptIdMaskV3), static_cast<uint32_t>(intid)};
    }
    const uint32_t raw = reg32(g_gic.cpu_interface, kAcknowledge);
    return {raw & kInterruptIdMaskV2, raw};
}

void end_of_interrupt(Acknowledged interrupt) {
    if (is_v3()) {
        asm volatile("msr icc_eoir1_el1, %0" : : "r"(uint64_t{interrupt.raw}) : "memory");
        return;
    }
    reg32(g_gic.cpu_interface, kEndOfInterrupt) = interrupt.raw;
}

void send_wake_to_other_cpus() {
    // The caller's stores (the work it announces) must be visible before the interrupt is.
    asm volatile("dsb ish" : : : "memory");
    if (is_v3()) {
        const uint64_t every_other_cpu = uint64_t{1} << 40; // ICC_SGI1R_EL1.IRM
        asm volatile("msr icc_sgi1r_el1, %0; isb"
                     :
                     : "r"(every_other_cpu | (uint64_t{kWakeInterrupt} << 24))
                     : "memory");
        return;
    }
    reg32(g_gic.distributor, kSoftwareInterrupt) = kEveryOtherCpu | kWakeInterrupt;
}

} // namespace bedrock::arch::aarch64
