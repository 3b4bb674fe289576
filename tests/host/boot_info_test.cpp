// SPDX-License-Identifier: MIT
// Host tests of RangeList (kernel/boot_info.h): ranges that overlap or touch are merged as they
// are added, so only separate ranges count against the capacity.
#include <gtest/gtest.h>

#include <vector>

#include "kernel/boot_info.h"

namespace bedrock::kernel {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

template <size_t Capacity>
std::vector<PhysRange> ranges_of(const RangeList<Capacity>& list) {
    return std::vector<PhysRange>(list.begin(), list.end());
}

// The list's invariant: no two of its ranges overlap or touch.
template <size_t Capacity>
void expect_separate(const RangeList<Capacity>& list) {
    for (const PhysRange& a : list) {
        for (const PhysRange& b : list) {
            if (&a != &b) {
                EXPECT_TRUE(a.last() + 1 < b.base || b.last() + 1 < a.base)
                    << std::hex << a.base << " and " << b.base;
            }
        }
    }
}

// 128 adjacent 1 MiB banks (a machine whose firmware lists each DIMM) are one range, and so are
// many more than the capacity.
TEST(RangeList, AdjacentRangesBeyondTheCapacityMergeIntoOne) {
    RangeList<kMaxFirmwareRanges> list;
    for (uint64_t i = 0; i < 2 * kMaxFirmwareRanges; ++i) {
        ASSERT_TRUE(list.add(0x40000000 + i * kMiB, kMiB)) << "bank " << i;
    }
    EXPECT_EQ(ranges_of(list),
              (std::vector<PhysRange>{{0x40000000, 2 * kMaxFirmwareRanges * kMiB}}));
}

// Overlapping, touching and out-of-order ranges merge; the merged range keeps the place of the
// first range it absorbed, and the others keep their order.
TEST(RangeList, OverlappingAndTouchingRangesMergeInPlace) {
    RangeList<8> list;
    ASSERT_TRUE(list.add(0x10000, 0x1000));
    ASSERT_TRUE(list.add(0x50000, 0x1000));
    ASSERT_TRUE(list.add(0x30000, 0x1000));
    ASSERT_TRUE(list.add(0x8000, 0x9000));   // overlaps the first at its start
    ASSERT_TRUE(list.add(0x11000, 0x1F000)); // touches the first and the third
    EXPECT_EQ(ranges_of(list), (std::vector<PhysRange>{{0x8000, 0x29000}, {0x50000, 0x1000}}));
    ASSERT_TRUE(list.add(0x50800, 0x100)); // inside one: nothing changes
    EXPECT_EQ(ranges_of(list), (std::vector<PhysRange>{{0x8000, 0x29000}, {0x50000, 0x1000}}));
    expect_separate(list);
}

// A full list refuses only a separate range, and changes nothing then; a range that joins one
// already there is still taken.
TEST(RangeList, AFullListRefusesOnlySeparateRanges) {
    RangeList<2> list;
    ASSERT_TRUE(list.add(0x1000, 0x1000));
    ASSERT_TRUE(list.add(0x4000, 0x1000));
    EXPECT_FALSE(list.add(0x8000, 0x1000));
    EXPECT_EQ(ranges_of(list), (std::vector<PhysRange>{{0x1000, 0x1000}, {0x4000, 0x1000}}));
    EXPECT_TRUE(list.add(0x2000, 0x2000)); // bridges both: one range, one slot free
    EXPECT_EQ(ranges_of(list), (std::vector<PhysRange>{{0x1000, 0x4000}}));
    EXPECT_TRUE(list.add(0x8000, 0x1000));
    EXPECT_EQ(list.count(), 2u);
}

// Ranges at both ends of the address space merge without wrapping.
TEST(RangeList, RangesAtTheEndsOfTheAddressSpaceMerge) {
    const uint64_t top_page = ~uint64_t{0} - 0xFFF;
    RangeList<4> list;
    ASSERT_TRUE(list.add(top_page, 0x1000));
    ASSERT_TRUE(list.add(0, 0x1000));
    ASSERT_TRUE(list.add(top_page - 0x1000, 0x1000));
    ASSERT_TRUE(list.add(0x1000, 0x1000));
    EXPECT_EQ(ranges_of(list), (std::vector<PhysRange>{{top_page - 0x1000, 0x2000}, {0, 0x2000}}));
    ASSERT_TRUE(list.add(top_page, 0x10000)); // clipped to end at 2^64
    EXPECT_EQ(list.data()[0].last(), ~uint64_t{0});
    EXPECT_EQ(list.count(), 2u);
}

} // namespace
} // namespace bedrock::kernel
