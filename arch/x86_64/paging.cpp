// SPDX-License-Identifier: MIT
// The x86-64 memory map: the 4-level page-table format for kernel::PageTable, and
// arch::map_memory(), which replaces boot.S's 0-4 GiB map with one covering exactly the RAM the
// firmware reported (including RAM above 4 GiB), except physical page 0 and the boot stack's
// guard page, and arch::set_page_present() on it. The one device that needs a mapping is the
// local APIC (uncached); the others are reached through port I/O.
#include <stddef.h>
#include <stdint.h>

#include "arch/x86_64/cpuid.h"
#include "arch/x86_64/entry.h"
#include "arch/x86_64/local_apic.h"
#include "kernel/arch.h"
#include "kernel/console.h"
#include "kernel/page_table.h"

namespace bedrock::arch {
namespace {

constexpr uint64_t kPresent = 1 << 0;
constexpr uint64_t kWritable = 1 << 1;
constexpr uint64_t kWriteThrough = 1 << 3;
constexpr uint64_t kCacheDisable = 1 << 4;
constexpr uint64_t kPageSize = 1 << 7; // in a PDPT/PD entry: a 1 GiB / 2 MiB leaf
constexpr uint64_t kAddressMask = 0x000F'FFFF'FFFF'F000;
constexpr uint64_t kEarlyMapLimit = uint64_t{4} << 30; // boot.S maps 0-4 GiB

// Descriptor encoding for kernel::PageTable. 1 GiB leaves are not used: the default qemu64 CPU
// does not have them.
struct X86PageFormat {
    static constexpr bool kGiBBlocks = false;
    // A 2 MiB leaf may be replaced by a table mapping the same memory with the same attributes
    // in one store (then invlpg): either translation is right meanwhile.
    static constexpr bool kBreakBeforeMake = false;
    static uint64_t table(PhysAddr table) { return table | kPresent | kWritable; }
    static uint64_t leaf(PhysAddr phys, unsigned level, kernel::MemoryType type) {
        const uint64_t caching =
            type == kernel::MemoryType::Device ? kWriteThrough | kCacheDisable : 0;
        return phys | kPresent | kWritable | caching | (level < 3 ? kPageSize : 0);
    }
    static bool is_present(uint64_t entry) { return (entry & kPresent) != 0; }
    static bool is_table(uint64_t entry, unsigned level) {
        return level == 0 || (entry & kPageSize) == 0;
    }
    static PhysAddr address(uint64_t entry) { return entry & kAddressMask; }
    static kernel::MemoryType memory_type(uint64_t leaf) {
        return (leaf & kCacheDisable) != 0 ? kernel::MemoryType::Device
                                           : kernel::MemoryType::Normal;
    }
    // Bit 7 is PS in a PDPT/PD leaf but PAT in a page-table entry: cleared for a 4 KiB leaf.
    static uint64_t child_leaf(uint64_t block, unsigned level, PhysAddr phys) {
        return phys | (block & ~kAddressMask & ~(level == 3 ? kPageSize : 0));
    }
    static uint64_t with_present(uint64_t leaf, bool present) {
        return present ? leaf | kPresent : leaf & ~kPresent;
    }
    // invlpg drops every TLB entry for the page, whatever its size, and the paging-structure
    // caches.
    static void invalidate_page(uint64_t address) {
        __asm__ volatile("invlpg (%0)" : : "r"(address) : "memory");
    }
};

// The live identity map, kept for set_page_present() after map_memory() built it.
constinit kernel::PageTable<X86PageFormat> g_identity_map;

// boot.ram with the boot stack's guard page cut out of the range that holds it (the kernel image
// is RAM), so that map_ram() leaves the guard unmapped.
const kernel::BootInfo& ram_without_stack_guard(const kernel::BootInfo& boot) {
    static kernel::BootInfo result;
    const auto guard = reinterpret_cast<uint64_t>(x86_64_boot_stack_guard);
    const uint64_t after_guard = guard + x86_64::kBootStackGuardSize;
    result.ram.clear();
    bool added = true;
    for (const PhysRange& ram : boot.ram) {
        if (!ram.contains(guard)) {
            added = added && result.ram.add(ram.base, ram.size);
            continue;
        }
        added = added && result.ram.add(ram.base, guard - ram.base);
        if (ram.last() >= after_guard) {
            added = added && result.ram.add(after_guard, ram.last() - after_guard + 1);
        }
    }
    if (!added) {
        kernel::panic("page tables: more than %zu RAM ranges once the stack guard page is cut out",
                      result.ram.capacity());
    }
    return result;
}

} // namespace

uint64_t early_mapped_limit() {
    return kEarlyMapLimit;
}

uint64_t physical_address_limit() {
    // CPUID 0x80000008 EAX[7:0]: MAXPHYADDR (36 bits where the leaf is missing).
    constexpr uint32_t kAddressSizes = 0x80000008;
    const unsigned bits = x86_64::cpuid(0x80000000).eax >= kAddressSizes
                              ? x86_64::cpuid(kAddressSizes).eax & 0xFF
                              : 36;
    return uint64_t{1} << (bits < 47 ? bits : 47);
}

DeviceRanges device_ranges() {
    DeviceRanges ranges;
    if (x86_64::has_local_apic()) {
        static_cast<void>(ranges.add(x86_64::local_apic_base(), bedrock::kPageSize));
    }
    return ranges;
}

void map_memory(const kernel::BootInfo& boot, kernel::BootPageSource& tables) {
    g_identity_map.start_building(tables);
    g_identity_map.map_ram(ram_without_stack_guard(boot));
    for (const PhysRange& range : device_ranges()) {
        g_identity_map.map(range, kernel::MemoryType::Device);
    }
    g_identity_map.finish_building();
    __asm__ volatile("mov %0, %%cr3" : : "r"(g_identity_map.root()) : "memory");
}

uint64_t x86_64::final_page_tables() {
    return g_identity_map.root();
}

bool map_with_pages(uint64_t address, uint64_t size) {
    return g_identity_map.split_to_pages_live(address, size);
}

bool set_page_present(uint64_t address, bool present) {
    if (!g_identity_map.set_page_present(address, present)) {
        return false;
    }
    // invlpg cleared this CPU's TLB only; no TLB keeps a not-present entry, so showing a page
    // needs nothing more.
    if (!present) {
        x86_64::flush_tlbs_of_other_cpus();
    }
    return true;
}

} // namespace bedrock::arch
