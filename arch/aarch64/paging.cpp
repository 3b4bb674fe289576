// SPDX-License-Identifier: MIT
// The AArch64 memory map: the VMSAv8-64 descriptor format (4 KiB granule) for
// kernel::PageTable, and arch::map_memory(), which replaces boot.S's early map with one covering
// exactly the RAM in the device tree as Normal memory and virt's device region and the GICv3
// redistributor regions beyond it as Device-nGnRnE, each but for the device tree's no-map ranges,
// and arch::set_page_present() on it. MAIR (set in boot.S): attribute 0 = Device-nGnRnE, attribute
// 1 = Normal write-back.
#include <stdint.h>

#include "arch/aarch64/aarch64.h"
#include "kernel/arch.h"
#include "kernel/page_table.h"

namespace bedrock::arch {
namespace {

constexpr uint64_t kValid = 1 << 0;
constexpr uint64_t kTableOrPage = 1 << 1; // table at levels 0-2, page at level 3
constexpr uint64_t kAttrDevice = 0 << 2;
constexpr uint64_t kAttrNormal = 1 << 2;
constexpr uint64_t kAttrIndexMask = 7 << 2;
constexpr uint64_t kInnerShareable = uint64_t{3} << 8;
constexpr uint64_t kAccessFlag = 1 << 10;
constexpr uint64_t kExecuteNever = (uint64_t{1} << 53) | (uint64_t{1} << 54);
constexpr uint64_t kAddressMask = 0x0000'FFFF'FFFF'F000;

constexpr uint64_t kEarlyMapLimit = 0x80000000; // boot.S maps 1-2 GiB as Normal

struct Aarch64PageFormat {
    static constexpr bool kGiBBlocks = true;
    // A change of block size needs break-before-make (the Arm ARM's rule for changing a
    // block's size), unless FEAT_BBM level 2, which this kernel does not assume.
    static constexpr bool kBreakBeforeMake = true;
    static uint64_t table(PhysAddr table) { return table | kValid | kTableOrPage; }
    static uint64_t leaf(PhysAddr phys, unsigned level, kernel::MemoryType type) {
        const uint64_t attributes = type == kernel::MemoryType::Normal
                                        ? kAttrNormal | kInnerShareable
                                        : kAttrDevice | kExecuteNever;
        return phys | kValid | (level == 3 ? kTableOrPage : 0) | kAccessFlag | attributes;
    }
    static bool is_present(uint64_t entry) { return (entry & kValid) != 0; }
    static bool is_table(uint64_t entry, unsigned level) {
        return level < 3 && (entry & kTableOrPage) != 0;
    }
    static PhysAddr address(uint64_t entry) { return entry & kAddressMask; }
    static kernel::MemoryType memory_type(uint64_t leaf) {
        return (leaf & kAttrIndexMask) == kAttrNormal ? kernel::MemoryType::Normal
                                                      : kernel::MemoryType::Device;
    }
    // A block descriptor has bit 1 clear, a level-3 page descriptor has it set.
    static uint64_t child_leaf(uint64_t block, unsigned level, PhysAddr phys) {
        return phys | (block & ~kAddressMask & ~kTableOrPage) | (level == 3 ? kTableOrPage : 0);
    }
    static uint64_t with_present(uint64_t leaf, bool present) {
        return present ? leaf | kValid : leaf & ~kValid;
    }
    // The descriptor store must reach the walker before the TLBI (dsb ishst); the TLBI (by VA,
    // all ASIDs, every level of the walk) must complete (dsb ish) before the next instruction is
    // fetched or translated (isb).
    static void invalidate_page(uint64_t address) {
        __asm__ volatile("dsb ishst\n"
                         "tlbi vaae1is, %0\n"
                         "dsb ish\n"
                         "isb"
                         :
                         : "r"(address >> 12)
                         : "memory");
    }
};

// The live identity map, kept for set_page_present() after map_memory() built it.
constinit kernel::PageTable<Aarch64PageFormat> g_identity_map;
// The no-map ranges it leaves out (BootInfo::no_map), for the tests to look at.
constinit kernel::RangeList<kernel::kMaxFirmwareRanges> g_no_map;

} // namespace

uint64_t early_mapped_limit() {
    return kEarlyMapLimit;
}

uint64_t physical_address_limit() {
    // ID_AA64MMFR0_EL1.PARange: 32, 36, 40, 42, 44, 48 or 52 bits.
    constexpr unsigned kBits[] = {32, 36, 40, 42, 44, 48, 52};
    uint64_t features;
    __asm__ volatile("mrs %0, id_aa64mmfr0_el1" : "=r"(features));
    const uint64_t range = features & 0xF;
    const unsigned bits = range < sizeof(kBits) / sizeof(kBits[0]) ? kBits[range] : 48;
    return uint64_t{1} << (bits < 48 ? bits : 48);
}

DeviceRanges device_ranges() {
    DeviceRanges ranges;
    // Room for every one: the window and at most kMaxPerCpuRegions regions.
    static_cast<void>(ranges.add(aarch64::kDeviceWindow.base, aarch64::kDeviceWindow.size));
    for (const PhysRange& region : aarch64::gic_regions_beyond_device_window()) {
        static_cast<void>(ranges.add(region.base, region.size));
    }
    return ranges;
}

void map_memory(const kernel::BootInfo& boot, kernel::BootPageSource& tables) {
    g_identity_map.start_building(tables);
    for (const PhysRange& range : device_ranges()) {
        g_identity_map.map_devices(range, boot);
    }
    g_identity_map.map_ram(boot);
    g_no_map = boot.no_map;
    g_identity_map.finish_building();
    // Tables written through the cacheable early map are visible to the walker (walks are
    // inner write-back cacheable, see TCR in boot.S) once the stores complete.
    __asm__ volatile("dsb ishst\n"
                     "msr ttbr0_el1, %0\n"
                     "isb\n"
                     "tlbi vmalle1\n"
                     "dsb ish\n"
                     "isb"
                     :
                     : "r"(g_identity_map.root())
                     : "memory");
    aarch64::gic_regions_mapped();
}

bool set_page_present(uint64_t address, bool present) {
    return g_identity_map.set_page_present(address, present);
}

bool map_with_pages(uint64_t address, uint64_t size) {
    return g_identity_map.split_to_pages_live(address, size);
}

namespace aarch64 {

const kernel::RangeList<kernel::kMaxFirmwareRanges>& no_map_ranges() {
    return g_no_map;
}

bool translates(uint64_t address) {
    uint64_t result;
    __asm__ volatile("at s1e1r, %1\n"
                     "isb\n"
                     "mrs %0, par_el1"
                     : "=r"(result)
                     : "r"(address)
                     : "memory");
    return (result & 1) == 0;
}

bool fault_in_split_window(uint64_t address) {
    for (;;) {
        const uint64_t sequence = g_identity_map.split_sequence();
        if (sequence % 2 != 0) {
            SpinLock::relax(); // a split has a block unmapped: wait for its make
            continue;
        }
        if (translates(address)) {
            return true;
        }
        if (g_identity_map.split_sequence() == sequence) {
            return false; // no split ran meanwhile and the address does not translate
        }
    }
}

} // namespace aarch64

} // namespace bedrock::arch
