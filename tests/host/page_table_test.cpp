// SPDX-License-Identifier: MIT
// Host tests of which pages PageTable::map_ram() (kernel/page_table.h) maps: every whole page of
// RAM but page 0 and every page holding a byte of a no-map range. The tables live in simulated
// physical memory (support/host_platform.h) and are walked here with a descriptor format of the
// test's own; the RAM they describe is never touched.
#include <gtest/gtest.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>

#include "kernel/page_table.h"
#include "support/host_platform.h"

namespace bedrock::kernel {

// The kernel's panic, which the page table calls on a mapping it cannot make: here it ends the
// test binary, as the host platform's panic does.
void panic(const char* format, ...) {
    std::va_list arguments;
    va_start(arguments, format);
    std::vfprintf(stderr, format, arguments);
    va_end(arguments);
    std::fputc('\n', stderr);
    std::abort();
}

namespace {

constexpr uint64_t kPresent = 1 << 0;
constexpr uint64_t kTableOrPage = 1 << 1;
constexpr uint64_t kDevice = 1 << 2;
constexpr uint64_t kAddressMask = 0x0000'FFFF'FFFF'F000;

// The parts of a descriptor format that building a map uses (see page_table.h).
struct TestFormat {
    static constexpr bool kGiBBlocks = true;
    static constexpr bool kBreakBeforeMake = false;
    static uint64_t table(PhysAddr table) { return table | kPresent | kTableOrPage; }
    static uint64_t leaf(PhysAddr phys, unsigned level, MemoryType type) {
        return phys | kPresent | (level == 3 ? kTableOrPage : 0) |
               (type == MemoryType::Device ? kDevice : 0);
    }
    static bool is_present(uint64_t entry) { return (entry & kPresent) != 0; }
    static bool is_table(uint64_t entry, unsigned level) {
        return level < 3 && (entry & kTableOrPage) != 0;
    }
    static PhysAddr address(uint64_t entry) { return entry & kAddressMask; }
};

using TestPageTable = PageTable<TestFormat>;

// Where the tables come from: simulated memory far from the RAM the tests map.
constexpr PhysRange kTablePages{0x10000000, uint64_t{4} << 20};
constexpr uint64_t kNoLimit = ~uint64_t{0} & ~(kPageSize - 1);

// Whether `address` has a present leaf in the map rooted at `root`, walked as the MMU does.
bool is_mapped(PhysAddr root, uint64_t address) {
    PhysAddr table = root;
    for (unsigned level = 0; level < TestPageTable::kLevels; ++level) {
        const uint64_t index = (address >> (39 - 9 * level)) % TestPageTable::kEntries;
        const uint64_t entry = static_cast<const uint64_t*>(platform::phys_to_virt(table))[index];
        if (!TestFormat::is_present(entry)) {
            return false;
        }
        if (!TestFormat::is_table(entry, level)) {
            return true;
        }
        table = TestFormat::address(entry);
    }
    return false; // not reached: a level-3 entry is a leaf
}

// Builds the map of boot's RAM and checks every page of each RAM range: mapped exactly when it
// is a whole RAM page, not page 0 and holds no byte of a no-map range.
void expect_ram_mapped_around_no_map(const BootInfo& boot) {
    test::SimulatedMemory memory({kTablePages});
    const PhysRange usable[] = {kTablePages};
    BootPageSource tables(usable, 1, kNoLimit);
    TestPageTable map;
    map.start_building(tables);
    map.map_ram(boot);
    for (const PhysRange& ram : boot.ram) {
        for (uint64_t page = ram.base & ~(kPageSize - 1); page <= ram.last(); page += kPageSize) {
            bool expected = page != 0 && ram.contains(page) && ram.last() - page >= kPageSize - 1;
            for (const PhysRange& no_map : boot.no_map) {
                if (no_map.base >> kPageShift <= page >> kPageShift &&
                    no_map.last() >> kPageShift >= page >> kPageShift) {
                    expected = false;
                }
            }
            ASSERT_EQ(is_mapped(map.root(), page), expected) << std::hex << "page 0x" << page;
        }
    }
}

TEST(PageTableMapRam, WithoutNoMapRangesAllRamButPageZeroIsMapped) {
    BootInfo boot;
    ASSERT_TRUE(boot.ram.add(0, uint64_t{8} << 20));
    ASSERT_TRUE(boot.ram.add(0x40000800, uint64_t{6} << 20)); // its first page is partial
    expect_ram_mapped_around_no_map(boot);
}

// Unaligned ranges (a partial page at each end), a whole 2 MiB block, one that runs past the
// end of RAM, and two that share a page, listed in no order.
TEST(PageTableMapRam, EveryPageHoldingAByteOfANoMapRangeIsLeftOut) {
    BootInfo boot;
    ASSERT_TRUE(boot.ram.add(0x40000000, uint64_t{64} << 20));
    ASSERT_TRUE(boot.ram.add(0x100000000, uint64_t{4} << 20));
    ASSERT_TRUE(boot.no_map.add(0x41000000, uint64_t{2} << 20));
    ASSERT_TRUE(boot.no_map.add(0x40201800, 0x3000));
    ASSERT_TRUE(boot.no_map.add(0x43fff000, 0x2000));
    ASSERT_TRUE(boot.no_map.add(0x40007900, 0x100));
    ASSERT_TRUE(boot.no_map.add(0x40007100, 0x100));
    ASSERT_TRUE(boot.no_map.add(0x100000000, 0x1000)); // the first page of the upper range
    expect_ram_mapped_around_no_map(boot);
}

TEST(PageTableMapRam, ANoMapRangeOverAllOfARamRangeLeavesItUnmapped) {
    BootInfo boot;
    ASSERT_TRUE(boot.ram.add(0x40000000, uint64_t{2} << 20));
    ASSERT_TRUE(boot.ram.add(0x50000000, uint64_t{2} << 20));
    ASSERT_TRUE(boot.no_map.add(0x3ffff000, (uint64_t{2} << 20) + 0x2000));
    expect_ram_mapped_around_no_map(boot);
}

} // namespace
} // namespace bedrock::kernel
