// SPDX-License-Identifier: MIT
// In-kernel test that the memory the device tree marks no-map is not mapped: no page that holds
// a byte of a no-map range translates (AT S1E1R), while the test's own stack does. Without
// no-map ranges (QEMU's own device tree has none) only the second check has work to do; the
// aarch64.no_map_range_is_not_mapped QEMU test boots with a device tree that has one.
#include "arch/aarch64/aarch64.h"
#include "kernel/console.h"
#include "kernel/test_registry.h"

BEDROCK_TEST(aarch64_no_map_ranges_are_not_mapped) {
    using namespace bedrock;
    uint64_t mapped_pages = 0;
    for (const PhysRange& range : arch::aarch64::no_map_ranges()) {
        // By page number, so a range that ends at the top of the address space ends the loop.
        for (uint64_t page = range.base >> kPageShift; page <= range.last() >> kPageShift; ++page) {
            if (arch::aarch64::translates(page << kPageShift)) {
                if (mapped_pages == 0) {
                    kernel::print("    no-map page 0x%lx translates\n", page << kPageShift);
                }
                ++mapped_pages;
            }
        }
    }
    BEDROCK_EXPECT_EQ(mapped_pages, 0);
    BEDROCK_EXPECT(arch::aarch64::translates(reinterpret_cast<uintptr_t>(&mapped_pages)));
}
