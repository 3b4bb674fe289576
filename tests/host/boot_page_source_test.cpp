// SPDX-License-Identifier: MIT
// Host tests of the page-table page source (kernel/boot_page_source.h): which usable pages it
// hands out, in how many runs, and what it says when it has none. Physical memory is simulated
// (support/host_platform.h), so the pages it zeroes are host memory.
#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <vector>

#include "kernel/boot_page_source.h"
#include "support/host_platform.h"

namespace bedrock::kernel {
namespace {

constexpr PhysAddr kRamBase = 0x40000000;
constexpr uint64_t kRamBytes = uint64_t{16} << 20;
constexpr uint64_t kNoLimit = ~uint64_t{0} & ~(kPageSize - 1);

PhysRange pages_at(uint64_t first_page, uint64_t pages) {
    return PhysRange{kRamBase + first_page * kPageSize, pages * kPageSize};
}

// Takes `count` pages, expecting each to succeed; fills simulated RAM with junk first so the
// zeroing shows.
std::vector<PhysAddr> take_pages(BootPageSource& source, size_t count) {
    std::vector<PhysAddr> pages;
    for (size_t i = 0; i < count; ++i) {
        const BootPage page = source.take_zeroed_page();
        EXPECT_EQ(page.shortage, BootPageShortage::None) << "page " << i;
        if (page.shortage != BootPageShortage::None) {
            break;
        }
        pages.push_back(page.address);
    }
    return pages;
}

bool inside(const std::vector<PhysRange>& ranges, PhysAddr page) {
    for (const PhysRange& range : ranges) {
        if (range.contains(page) && range.last() - page >= kPageSize - 1) {
            return true;
        }
    }
    return false;
}

// The source's invariants over what it handed out: each page zeroed, inside a usable range,
// below the limit, not page 0, handed out once; taken() covers exactly those pages.
void expect_invariants(const BootPageSource& source, const std::vector<PhysRange>& usable,
                       const std::vector<PhysAddr>& pages, uint64_t limit) {
    std::set<PhysAddr> distinct(pages.begin(), pages.end());
    EXPECT_EQ(distinct.size(), pages.size()) << "a page was handed out twice";
    uint64_t taken_pages = 0;
    for (const PhysRange& run : source.taken()) {
        taken_pages += run.page_count();
    }
    EXPECT_EQ(taken_pages, pages.size());
    EXPECT_LE(source.taken().count(), BootPageSource::kMaxTakenRuns);
    static const unsigned char zeroes[kPageSize] = {};
    for (const PhysAddr page : pages) {
        EXPECT_NE(page, 0u);
        EXPECT_LT(page, limit);
        EXPECT_TRUE(inside(usable, page)) << std::hex << page;
        bool in_a_run = false;
        for (const PhysRange& run : source.taken()) {
            in_a_run = in_a_run || run.contains(page);
        }
        EXPECT_TRUE(in_a_run) << std::hex << page;
        EXPECT_EQ(std::memcmp(platform::phys_to_virt(page), zeroes, kPageSize), 0)
            << std::hex << page;
    }
}

class BootPageSourceTest : public ::testing::Test {
protected:
    BootPageSourceTest() : m_memory({PhysRange{kRamBase, kRamBytes}}) {
        std::memset(platform::phys_to_virt(kRamBase), 0xA5, kRamBytes);
    }

private:
    test::SimulatedMemory m_memory;
};

// The layout that made boots fail: a small range and six one-page holes below the kernel, and
// RAM enough above them. The tables go to the roomy range, in one run.
TEST_F(BootPageSourceTest, OnePageHolesNearTheKernelCostNoRuns) {
    std::vector<PhysRange> usable = {pages_at(0, 16)};
    for (uint64_t i = 0; i < 6; ++i) {
        usable.push_back(pages_at(17 + 2 * i, 1));
    }
    usable.push_back(pages_at(64, 1024));
    BootPageSource source(usable.data(), usable.size(), kNoLimit);
    const std::vector<PhysAddr> pages = take_pages(source, 200);
    ASSERT_EQ(pages.size(), 200u);
    expect_invariants(source, usable, pages, kNoLimit);
    ASSERT_EQ(source.taken().count(), 1u);
    EXPECT_EQ(source.taken().data()[0], pages_at(64, 200));
}

// Roomy ranges are used in address order, each from its bottom, before any small one.
TEST_F(BootPageSourceTest, RoomyRangesAreUsedUpInAddressOrderFirst) {
    const uint64_t roomy = BootPageSource::kRoomyRangePages;
    const std::vector<PhysRange> usable = {pages_at(0, roomy - 1), pages_at(roomy, roomy),
                                           pages_at(2 * roomy + 1, 1),
                                           pages_at(2 * roomy + 3, 2 * roomy)};
    BootPageSource source(usable.data(), usable.size(), kNoLimit);
    const std::vector<PhysAddr> pages = take_pages(source, roomy + 2);
    ASSERT_EQ(pages.size(), roomy + 2);
    expect_invariants(source, usable, pages, kNoLimit);
    EXPECT_EQ(pages.front(), usable[1].base);
    ASSERT_EQ(source.taken().count(), 2u);
    EXPECT_EQ(source.taken().data()[0], usable[1]);
    EXPECT_EQ(source.taken().data()[1], pages_at(2 * roomy + 3, 2));
}

// Once every roomy range is used up, the small ones serve, in address order, a run each.
TEST_F(BootPageSourceTest, SmallRangesServeOnceTheRoomyOnesAreUsedUp) {
    const uint64_t roomy = BootPageSource::kRoomyRangePages;
    const std::vector<PhysRange> usable = {pages_at(0, 3), pages_at(4, 1), pages_at(6, roomy)};
    BootPageSource source(usable.data(), usable.size(), kNoLimit);
    const std::vector<PhysAddr> pages = take_pages(source, roomy + 4);
    ASSERT_EQ(pages.size(), roomy + 4);
    expect_invariants(source, usable, pages, kNoLimit);
    EXPECT_EQ(pages[roomy], usable[0].base);
    EXPECT_EQ(pages[roomy + 3], usable[1].base);
    EXPECT_EQ(source.taken().count(), 3u);
    EXPECT_EQ(source.take_zeroed_page().shortage, BootPageShortage::NoPageBelowLimit);
}

// Only pages below the limit are handed out: a range across it counts as the part below.
TEST_F(BootPageSourceTest, PagesStayBelowTheLimit) {
    const std::vector<PhysRange> usable = {pages_at(0, 1024)};
    const uint64_t limit = pages_at(100, 1).base;
    BootPageSource source(usable.data(), usable.size(), limit);
    const std::vector<PhysAddr> pages = take_pages(source, 100);
    ASSERT_EQ(pages.size(), 100u);
    expect_invariants(source, usable, pages, limit);
    const BootPage none = source.take_zeroed_page();
    EXPECT_EQ(none.shortage, BootPageShortage::NoPageBelowLimit);
    EXPECT_EQ(source.take_zeroed_page().shortage, BootPageShortage::NoPageBelowLimit);
    EXPECT_EQ(source.taken().data()[0], pages_at(0, 100));
}

// The runs fill up only when nothing but scattered pages is left: the page that would start one
// run too many is refused, and nothing is handed out.
TEST_F(BootPageSourceTest, ScatteredPagesBeyondTheRunLimitAreRefused) {
    std::vector<PhysRange> usable;
    for (uint64_t i = 0; i <= BootPageSource::kMaxTakenRuns; ++i) {
        usable.push_back(pages_at(2 * i, 1));
    }
    BootPageSource source(usable.data(), usable.size(), kNoLimit);
    const std::vector<PhysAddr> pages = take_pages(source, BootPageSource::kMaxTakenRuns);
    ASSERT_EQ(pages.size(), BootPageSource::kMaxTakenRuns);
    const BootPage refused = source.take_zeroed_page();
    EXPECT_EQ(refused.shortage, BootPageShortage::TooManyRuns);
    EXPECT_EQ(refused.address, 0u);
    expect_invariants(source, usable, pages, kNoLimit);
    EXPECT_EQ(source.taken().count(), BootPageSource::kMaxTakenRuns);
}

// Physical page 0 stays unmapped, so it is never a table page.
TEST(BootPageSource, PhysicalPageZeroIsNeverHandedOut) {
    test::SimulatedMemory memory({PhysRange{0, 4 * kPageSize}});
    const std::vector<PhysRange> usable = {PhysRange{0, 4 * kPageSize}};
    BootPageSource source(usable.data(), usable.size(), kNoLimit);
    const std::vector<PhysAddr> pages = take_pages(source, 3);
    ASSERT_EQ(pages.size(), 3u);
    expect_invariants(source, usable, pages, kNoLimit);
    EXPECT_EQ(pages.front(), kPageSize);
    EXPECT_EQ(source.take_zeroed_page().shortage, BootPageShortage::NoPageBelowLimit);
}

} // namespace
} // namespace bedrock::kernel
