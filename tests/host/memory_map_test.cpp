// SPDX-License-Identifier: MIT
// Host tests of the memory-map arithmetic (kernel/memory_map.cpp): usable = pages(RAM) -
// pages(reserved), sorted, merged and page-aligned.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "kernel/memory_map.h"

namespace bedrock::kernel {
namespace {

constexpr uint64_t kTop = ~uint64_t{0};

std::vector<PhysRange> usable(std::vector<PhysRange> ram, std::vector<PhysRange> reserved) {
    size_t ram_count = ram.size();
    size_t reserved_count = reserved.size();
    std::vector<PhysRange> out(ram.size() + reserved.size() + 1);
    const UsableRanges result = compute_usable_ranges(ram.data(), ram_count, reserved.data(),
                                                      reserved_count, out.data(), out.size());
    EXPECT_FALSE(result.overflow);
    out.resize(result.count);
    return out;
}

void PrintTo(const PhysRange& range, std::ostream* os) {
    *os << std::hex << "{0x" << range.base << ", 0x" << range.size << "}";
}

TEST(MemoryMap, SingleAlignedRangeIsUnchanged) {
    EXPECT_EQ(usable({{0x100000, 0x700000}}, {}), (std::vector<PhysRange>{{0x100000, 0x700000}}));
}

TEST(MemoryMap, UnalignedEdgesShrinkInward) {
    EXPECT_EQ(usable({{0x1001, 0x3000}}, {}), (std::vector<PhysRange>{{0x2000, 0x2000}}));
}

TEST(MemoryMap, RangeSmallerThanAPageVanishes) {
    EXPECT_TRUE(usable({{0x1800, 0x1000}, {0x10, 0x20}}, {}).empty());
}

TEST(MemoryMap, EmptyInputsGiveNothing) {
    EXPECT_TRUE(usable({}, {}).empty());
}

TEST(MemoryMap, ReservedGrowsOutwardToWholePages) {
    EXPECT_EQ(usable({{0, 0x10000}}, {{0x3010, 0x10}}),
              (std::vector<PhysRange>{{0, 0x3000}, {0x4000, 0xC000}}));
}

TEST(MemoryMap, ReservedCoveringEverythingLeavesNothing) {
    EXPECT_TRUE(usable({{0x1000, 0x1000}}, {{0, 0x100000}}).empty());
}

TEST(MemoryMap, OverlappingAndAdjacentRamMerges) {
    EXPECT_EQ(usable({{0x5000, 0x2000}, {0x0, 0x3000}, {0x2000, 0x2000}, {0x4000, 0x1000}}, {}),
              (std::vector<PhysRange>{{0, 0x7000}}));
}

TEST(MemoryMap, UnsortedInputComesOutSorted) {
    EXPECT_EQ(usable({{0x100000000, 0x1000}, {0x1000, 0x1000}}, {}),
              (std::vector<PhysRange>{{0x1000, 0x1000}, {0x100000000, 0x1000}}));
}

TEST(MemoryMap, ReservedAcrossTwoRamRanges) {
    EXPECT_EQ(usable({{0x0, 0x4000}, {0x8000, 0x4000}}, {{0x3000, 0x6000}}),
              (std::vector<PhysRange>{{0x0, 0x3000}, {0x9000, 0x3000}}));
}

TEST(MemoryMap, ManyReservedInsideOneRange) {
    EXPECT_EQ(usable({{0, 0x10000}}, {{0xA000, 0x1000}, {0x2000, 0x1000}, {0x2800, 0x1000}}),
              (std::vector<PhysRange>{{0, 0x2000}, {0x4000, 0x6000}, {0xB000, 0x5000}}));
}

TEST(MemoryMap, ReservedOutsideRamIsIgnored) {
    EXPECT_EQ(usable({{0x10000, 0x1000}}, {{0x0, 0x1000}, {0x20000, 0x1000}}),
              (std::vector<PhysRange>{{0x10000, 0x1000}}));
}

TEST(MemoryMap, EmptyReservedRangeIsIgnored) {
    EXPECT_EQ(usable({{0x10000, 0x2000}}, {{0x10800, 0}}),
              (std::vector<PhysRange>{{0x10000, 0x2000}}));
}

TEST(MemoryMap, RangeEndingAtTopOfAddressSpace) {
    const PhysRange top{kTop - 0x3FFF, 0x4000};
    EXPECT_EQ(usable({top}, {}), (std::vector<PhysRange>{top}));
    EXPECT_EQ(usable({top}, {{kTop - 0xFFF, 0x1000}}),
              (std::vector<PhysRange>{{kTop - 0x3FFF, 0x3000}}));
    // An unaligned start one byte into the last page leaves nothing of that page.
    EXPECT_TRUE(usable({{kTop - 0xFFE, 0xFFF}}, {}).empty());
}

TEST(MemoryMap, AdjacentRangesAtTopMerge) {
    EXPECT_EQ(usable({{kTop - 0xFFF, 0x1000}, {kTop - 0x1FFF, 0x1000}}, {}),
              (std::vector<PhysRange>{{kTop - 0x1FFF, 0x2000}}));
}

TEST(MemoryMap, RangeAbove4GiBWithHole) {
    // Like QEMU -m 6G on pc: 3 GiB low, a hole, 3 GiB from 4 GiB.
    const std::vector<PhysRange> ram{
        {0, 0x9FC00}, {0x100000, 0xBFF00000}, {0x100000000, 0xC0000000}};
    EXPECT_EQ(usable(ram, {{0, 0x100000}}),
              (std::vector<PhysRange>{{0x100000, 0xBFF00000}, {0x100000000, 0xC0000000}}));
}

TEST(MemoryMap, OutputCapacityOverflowIsReported) {
    PhysRange ram[] = {{0, 0x10000}};
    PhysRange reserved[] = {{0x1000, 0x1000}, {0x3000, 0x1000}};
    PhysRange out[2];
    size_t ram_count = 1;
    size_t reserved_count = 2;
    const UsableRanges result =
        compute_usable_ranges(ram, ram_count, reserved, reserved_count, out, 2);
    EXPECT_TRUE(result.overflow);
    EXPECT_EQ(result.count, 2u);
}

TEST(MemoryMap, TotalBytesSaturates) {
    const PhysRange ranges[] = {{0, kTop}, {0, 0x1000}};
    EXPECT_EQ(total_bytes(ranges, 2), kTop);
}

// Property: for random maps, a page is usable exactly when every byte of it is RAM and no
// byte of it is reserved; the output is page-aligned, sorted and merged.
TEST(MemoryMap, RandomMapsAgreeWithByteModel) {
    const unsigned seed = 1234;
    std::printf("seed %u\n", seed);
    std::srand(seed);
    const uint64_t span = 80 * kPageSize;
    const auto random_below = [](uint64_t limit) {
        return static_cast<uint64_t>(std::rand()) % limit;
    };
    for (int round = 0; round < 300; ++round) {
        std::vector<PhysRange> ram;
        std::vector<PhysRange> reserved;
        for (int i = std::rand() % 6; i >= 0; --i) {
            ram.push_back({random_below(64 * kPageSize), 1 + random_below(16 * kPageSize)});
        }
        for (int i = std::rand() % 5; i > 0; --i) {
            reserved.push_back({random_below(64 * kPageSize), 1 + random_below(4 * kPageSize)});
        }
        std::vector<uint8_t> is_ram(span, 0);
        std::vector<uint8_t> is_reserved(span, 0);
        for (const auto& r : ram) {
            std::fill(is_ram.begin() + static_cast<long>(r.base),
                      is_ram.begin() + static_cast<long>(r.base + r.size), 1);
        }
        for (const auto& r : reserved) {
            std::fill(is_reserved.begin() + static_cast<long>(r.base),
                      is_reserved.begin() + static_cast<long>(r.base + r.size), 1);
        }
        const auto result = usable(ram, reserved);
        for (uint64_t page = 0; page < span; page += kPageSize) {
            bool all_ram = true;
            bool any_reserved = false;
            for (uint64_t byte = page; byte < page + kPageSize; ++byte) {
                all_ram = all_ram && is_ram[byte] != 0;
                any_reserved = any_reserved || is_reserved[byte] != 0;
            }
            bool in_result = false;
            for (const auto& r : result) {
                in_result = in_result || r.contains(page);
            }
            ASSERT_EQ(in_result, all_ram && !any_reserved) << "round " << round << " page " << page;
        }
        for (size_t i = 0; i < result.size(); ++i) {
            ASSERT_EQ(result[i].base % kPageSize, 0u);
            ASSERT_EQ(result[i].size % kPageSize, 0u);
            ASSERT_GT(result[i].size, 0u);
            if (i > 0) {
                ASSERT_GT(result[i].base, result[i - 1].last() + 1); // sorted, not touching
            }
        }
    }
}

// RAM the identity map cannot reach is cut off at the limit: a range above it is dropped, one
// across it ends there, the rest keep their order (RAM at 2^64 - 256 MiB was kept and mapped).
TEST(MemoryMap, ClipRangesCutsAtTheLimit) {
    constexpr uint64_t kLimit = uint64_t{1} << 40;
    std::vector<PhysRange> ranges = {{0x40000000, 0x8000000},
                                     {kTop - 0xfffffff, 0x10000000},
                                     {kLimit - 0x1000, 0x3000},
                                     {kLimit, 0x1000},
                                     {0x1000, 0}};
    ranges.resize(clip_ranges(ranges.data(), ranges.size(), kLimit));
    ASSERT_EQ(ranges.size(), 2u);
    EXPECT_EQ(ranges[0].base, 0x40000000u);
    EXPECT_EQ(ranges[0].size, 0x8000000u);
    EXPECT_EQ(ranges[1].base, kLimit - 0x1000);
    EXPECT_EQ(ranges[1].size, 0x1000u);
}

// RAM listed over device memory is cut out byte-exact: a range inside a hole goes, one across a
// hole's edge keeps the part outside, one around a hole becomes two (the upper part added at the
// end), one that touches a hole is kept whole, and ranges ending at 2^64 - 1 work.
TEST(MemoryMap, CutOutRangesRemovesEveryByteOfTheHoles) {
    std::vector<PhysRange> ranges = {{0x09000000, 0x01000000}, // inside the first hole
                                     {0x40000000, 0x08000000}, // around the second hole
                                     {0x07000000, 0x02000000}, // across the first hole's start
                                     {0x0f000000, 0x02000000}, // across the first hole's end
                                     {0x20000000, 0x1000},     // touching the third hole
                                     {kTop - 0xfff, 0x1000}};  // at the top, in the fourth
    const size_t count = ranges.size();
    ranges.resize(count + 1); // room for one split
    const std::vector<PhysRange> holes = {{0x08000000, 0x08000000},
                                          {0x44000000, 0x40000},
                                          {0x20001000, 0x1000},
                                          {kTop - 0x1fff, 0x2000}};
    const CutRanges cut =
        cut_out_ranges(ranges.data(), count, ranges.size(), holes.data(), holes.size());
    EXPECT_FALSE(cut.overflow);
    ranges.resize(cut.count);
    std::sort(ranges.begin(), ranges.end(),
              [](const PhysRange& a, const PhysRange& b) { return a.base < b.base; });
    const std::vector<PhysRange> expected = {{0x07000000, 0x01000000},
                                             {0x10000000, 0x01000000},
                                             {0x20000000, 0x1000},
                                             {0x40000000, 0x04000000},
                                             {0x44040000, 0x03fc0000}};
    ASSERT_EQ(ranges.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
        EXPECT_EQ(ranges[i].base, expected[i].base) << i;
        EXPECT_EQ(ranges[i].size, expected[i].size) << i;
    }
}

// Random disjoint ranges and random holes (overlapping each other, touching, nested) over a small
// address space, near its bottom and near 2^64: the bytes left are exactly the ranges' bytes
// outside every hole, checked byte by byte against a model, and with room for every split
// nothing is reported lost.
TEST(MemoryMap, CutOutRangesMatchesAByteModel) {
    constexpr uint64_t kSpan = 512;
    std::mt19937_64 random(12345);
    for (int round = 0; round < 2000; ++round) {
        const uint64_t base = round % 2 == 0 ? 0 : kTop - (kSpan - 1);
        std::vector<bool> in_range(kSpan, false);
        std::vector<PhysRange> ranges;
        for (uint64_t at = random() % 16; at < kSpan;) {
            const uint64_t size = 1 + random() % 64;
            const uint64_t end = std::min(kSpan, at + size);
            ranges.push_back(PhysRange{base + at, end - at});
            for (uint64_t i = at; i < end; ++i) {
                in_range[i] = true;
            }
            at = end + 1 + random() % 32; // disjoint, never touching
        }
        std::vector<PhysRange> holes(random() % 6);
        std::vector<bool> in_hole(kSpan, false);
        for (PhysRange& hole : holes) {
            const uint64_t at = random() % kSpan;
            const uint64_t size = std::min(kSpan - at, 1 + random() % 96);
            hole = PhysRange{base + at, size};
            for (uint64_t i = at; i < at + size; ++i) {
                in_hole[i] = true;
            }
        }
        const size_t count = ranges.size();
        ranges.resize(count + holes.size()); // each hole splits at most one range
        const CutRanges cut =
            cut_out_ranges(ranges.data(), count, ranges.size(), holes.data(), holes.size());
        ASSERT_FALSE(cut.overflow) << "round " << round;
        ranges.resize(cut.count);
        std::vector<int> covered(kSpan, 0);
        for (const PhysRange& range : ranges) {
            ASSERT_GT(range.size, 0u) << "round " << round;
            for (uint64_t i = range.base - base; i <= range.last() - base; ++i) {
                ++covered[i];
            }
        }
        for (uint64_t i = 0; i < kSpan; ++i) {
            ASSERT_EQ(covered[i], in_range[i] && !in_hole[i] ? 1 : 0)
                << "round " << round << ", byte " << i;
        }
    }
}

// A range split in two with no room for its upper part keeps its lower part and says so.
TEST(MemoryMap, CutOutRangesReportsNoRoomForASplit) {
    PhysRange ranges[1] = {{0x40000000, 0x08000000}};
    const PhysRange hole{0x44000000, 0x1000};
    const CutRanges cut = cut_out_ranges(ranges, 1, 1, &hole, 1);
    EXPECT_TRUE(cut.overflow);
    ASSERT_EQ(cut.count, 1u);
    EXPECT_EQ(ranges[0].base, 0x40000000u);
    EXPECT_EQ(ranges[0].size, 0x04000000u);
}

} // namespace
} // namespace bedrock::kernel
