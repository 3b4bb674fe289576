// Host tests of the buddy page frame allocator over simulated physical memory maps.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <vector>

#include "bedrock/page_frame_allocator.h"
#include "support/host_platform.h"

namespace bedrock {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;

// One allocator over simulated memory, with its start-up state remembered.
struct Fixture {
    explicit Fixture(std::vector<PhysRange> ranges) : memory(ranges) {
        test::clear_reports();
        initialized = pfa.init(ranges.data(), ranges.size());
        if (initialized) {
            initial_free = pfa.free_pages();
            initial_largest = pfa.largest_free_order();
        }
    }
    void expect_pristine() const {
        EXPECT_TRUE(pfa.check().ok) << pfa.check().failure;
        EXPECT_EQ(pfa.free_pages(), initial_free);
        EXPECT_EQ(pfa.largest_free_order(), initial_largest);
    }
    test::SimulatedMemory memory;
    PageFrameAllocator pfa;
    bool initialized = false;
    uint64_t initial_free = 0;
    int initial_largest = -1;
};

uint64_t seed_from_environment(uint64_t fallback) {
    const char* text = std::getenv("BEDROCK_TEST_SEED");
    const uint64_t seed = text != nullptr ? std::strtoull(text, nullptr, 0) : fallback;
    std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
    return seed;
}

TEST(PageFrameAllocator, OneRangeIsManagedAndSmallMetadata) {
    Fixture f({{kGiB, 64 * kMiB}});
    ASSERT_TRUE(f.initialized);
    EXPECT_TRUE(f.pfa.check().ok);
    EXPECT_EQ(f.pfa.managed_pages() * kPageSize + f.pfa.metadata_bytes(), 64 * kMiB);
    EXPECT_LE(f.pfa.metadata_bytes() * 1000, 64 * kMiB); // <= 0.1 %
    EXPECT_EQ(f.pfa.free_pages(), f.pfa.managed_pages());
}

TEST(PageFrameAllocator, BlocksAreNaturallyAlignedAndInsideRam) {
    Fixture f({{0x100000, 0x7F00000}});
    ASSERT_TRUE(f.initialized);
    for (unsigned order = 0; order <= 14; ++order) {
        const PhysAddr block = f.pfa.allocate(order);
        ASSERT_NE(block, kNoPage) << order;
        EXPECT_EQ(block % (kPageSize << order), 0u);
        EXPECT_GE(block, 0x100000u);
        EXPECT_LE(block + (kPageSize << order), 0x8000000u);
        f.pfa.free(block, order);
    }
    f.expect_pristine();
}

TEST(PageFrameAllocator, OrderAboveMaximumFails) {
    Fixture f({{0, 16 * kMiB}});
    EXPECT_EQ(f.pfa.allocate(kMaxOrder + 1), kNoPage);
}

TEST(PageFrameAllocator, GigabyteBlockFromAlignedRange) {
    Fixture f({{4 * kGiB, 2 * kGiB}});
    ASSERT_TRUE(f.initialized);
    EXPECT_EQ(f.pfa.largest_free_order(), static_cast<int>(kMaxOrder));
    const PhysAddr block = f.pfa.allocate(kMaxOrder);
    ASSERT_NE(block, kNoPage);
    EXPECT_EQ(block % kGiB, 0u);
    f.pfa.free(block, kMaxOrder);
    f.expect_pristine();
}

TEST(PageFrameAllocator, ManySmallRangesHolesAndOddEdges) {
    std::vector<PhysRange> ranges;
    for (uint64_t i = 0; i < 40; ++i) {
        ranges.push_back({0x200000 + i * 0x13000, (1 + i % 7) * kPageSize});
    }
    ranges.push_back({0x5000000 + 0x3000, 3 * kMiB + 0x5000});
    Fixture f(ranges);
    ASSERT_TRUE(f.initialized);
    EXPECT_TRUE(f.pfa.check().ok);
    // Exhaust with order 0: exactly the managed pages come out, all distinct.
    std::vector<PhysAddr> pages;
    for (PhysAddr p; (p = f.pfa.allocate(0)) != kNoPage;) {
        pages.push_back(p);
    }
    EXPECT_EQ(pages.size(), f.pfa.managed_pages());
    EXPECT_EQ(f.pfa.free_pages(), 0u);
    EXPECT_EQ(f.pfa.largest_free_order(), -1);
    for (PhysAddr p : pages) {
        f.pfa.free(p, 0);
    }
    f.expect_pristine();
}

TEST(PageFrameAllocator, RangesAbove4GiBAndAtTheTopOfTheAddressSpace) {
    const PhysAddr top = ~uint64_t{0} - 8 * kMiB + 1;
    Fixture f({{16 * kMiB, 8 * kMiB}, {0x8000000000, 8 * kMiB}, {top, 8 * kMiB}});
    ASSERT_TRUE(f.initialized);
    std::vector<PhysAddr> blocks;
    for (PhysAddr p; (p = f.pfa.allocate(9)) != kNoPage;) {
        blocks.push_back(p);
    }
    bool saw_top = false;
    for (PhysAddr p : blocks) {
        saw_top = saw_top || p >= top;
        EXPECT_EQ(p % (kPageSize << 9), 0u);
    }
    EXPECT_TRUE(saw_top);
    for (PhysAddr p : blocks) {
        f.pfa.free(p, 9);
    }
    f.expect_pristine();
}

TEST(PageFrameAllocator, OnePageRangeBesideALargerOne) {
    Fixture f({{0x10000, kPageSize}, {kGiB, 4 * kMiB}});
    ASSERT_TRUE(f.initialized);
    EXPECT_EQ(f.pfa.region_count(), 2u);
    EXPECT_EQ(f.pfa.region_free_pages(0), 1u);
    EXPECT_EQ(f.pfa.allocate_below(0, 0x20000), 0x10000u);
    EXPECT_EQ(f.pfa.allocate_below(0, 0x20000), kNoPage);
    f.pfa.free(0x10000, 0);
    f.expect_pristine();
}

TEST(PageFrameAllocator, TooLittleMemoryForMetadataFailsCleanly) {
    Fixture f({{0x10000, kPageSize}});
    EXPECT_FALSE(f.initialized);
}

TEST(PageFrameAllocator, MalformedRangesAreRefused) {
    test::SimulatedMemory memory({{0, 8 * kMiB}});
    PageFrameAllocator pfa;
    const PhysRange unaligned[] = {{0x800, 4 * kMiB}};
    EXPECT_FALSE(pfa.init(unaligned, 1));
    const PhysRange overlapping[] = {{0, 4 * kMiB}, {2 * kMiB, 4 * kMiB}};
    EXPECT_FALSE(pfa.init(overlapping, 2));
    const PhysRange good[] = {{0, 8 * kMiB}};
    EXPECT_TRUE(pfa.init(good, 1));
    EXPECT_FALSE(pfa.init(good, 1)); // only once
}

TEST(PageFrameAllocator, ZonesSplitAt16MiBAnd4GiB) {
    Fixture f({{kMiB, 6 * kGiB}});
    ASSERT_TRUE(f.initialized);
    EXPECT_EQ(f.pfa.region_count(), 3u);
    const PhysAddr dma = f.pfa.allocate_below(2, kZoneDmaLimit);
    ASSERT_NE(dma, kNoPage);
    EXPECT_LT(dma + 4 * kPageSize, kZoneDmaLimit + 1);
    const PhysAddr dma32 = f.pfa.allocate_below(10, kZoneDma32Limit);
    ASSERT_NE(dma32, kNoPage);
    EXPECT_LE(dma32 + (kPageSize << 10), kZoneDma32Limit);
    // Unconstrained allocations prefer high memory.
    const PhysAddr high = f.pfa.allocate(0);
    EXPECT_GE(high, kZoneDma32Limit);
    f.pfa.free(dma, 2);
    f.pfa.free(dma32, 10);
    f.pfa.free(high, 0);
    f.expect_pristine();
}

TEST(PageFrameAllocator, LimitInsideARegionIsHonoured) {
    Fixture f({{32 * kMiB, 32 * kMiB}});
    ASSERT_TRUE(f.initialized);
    const PhysAddr limit = 40 * kMiB + 0x5000;
    std::vector<PhysAddr> got;
    for (PhysAddr p; (p = f.pfa.allocate_below(0, limit)) != kNoPage;) {
        EXPECT_LE(p + kPageSize, limit);
        got.push_back(p);
    }
    EXPECT_FALSE(got.empty());
    for (PhysAddr p : got) {
        f.pfa.free(p, 0);
    }
    f.expect_pristine();
}

TEST(PageFrameAllocator, NonPowerOfTwoRunsReturnTheirTail) {
    Fixture f({{64 * kMiB, 16 * kMiB}});
    ASSERT_TRUE(f.initialized);
    const uint64_t before = f.pfa.free_pages();
    const PhysAddr run = f.pfa.allocate_pages(5);
    ASSERT_NE(run, kNoPage);
    EXPECT_EQ(f.pfa.free_pages(), before - 5);
    EXPECT_TRUE(f.pfa.check().ok);
    f.pfa.free_pages(run, 5);
    f.expect_pristine();
}

TEST(PageFrameAllocator, AlignmentLargerThanTheSize) {
    Fixture f({{64 * kMiB, 16 * kMiB}});
    ASSERT_TRUE(f.initialized);
    const PhysAddr run = f.pfa.allocate_pages(3, 2 * kMiB);
    ASSERT_NE(run, kNoPage);
    EXPECT_EQ(run % (2 * kMiB), 0u);
    EXPECT_EQ(f.pfa.free_pages(), f.initial_free - 3);
    EXPECT_EQ(f.pfa.allocate_pages(1, 3 * kPageSize), kNoPage); // not a power of two
    EXPECT_EQ(f.pfa.allocate_pages(0), kNoPage);
    f.pfa.free_pages(run, 3);
    f.expect_pristine();
}

TEST(PageFrameAllocator, ReserveRangeTakesFreePagesOnly) {
    Fixture f({{64 * kMiB, 16 * kMiB}});
    ASSERT_TRUE(f.initialized);
    const PhysAddr block = f.pfa.allocate(0);
    const PhysRange firmware_table{70 * kMiB + 0x123, 3 * kPageSize};
    ASSERT_TRUE(f.pfa.reserve_range(firmware_table));
    EXPECT_EQ(f.pfa.free_pages(), f.initial_free - 1 - 4); // 0x123 + 3 pages touches 4 pages
    EXPECT_TRUE(f.pfa.check().ok);
    // Reserving an allocated page is refused and changes nothing.
    const uint64_t free_before = f.pfa.free_pages();
    EXPECT_FALSE(f.pfa.reserve_range({block, kPageSize}));
    ASSERT_EQ(test::reports().size(), 1u);
    EXPECT_EQ(test::reports()[0].kind, ErrorKind::ReserveConflict);
    EXPECT_EQ(f.pfa.free_pages(), free_before);
    // The same range twice is a conflict too (its pages are no longer free).
    EXPECT_FALSE(f.pfa.reserve_range(firmware_table));
    // Ranges outside managed memory are ignored.
    EXPECT_TRUE(f.pfa.reserve_range({0, kPageSize}));
    EXPECT_TRUE(f.pfa.check().ok);
    f.pfa.free(block, 0);
}

struct BadFreeCase {
    const char* name;
    ErrorKind kind;
};

class PageFrameAllocatorMisuse : public ::testing::Test {
protected:
    PageFrameAllocatorMisuse() : f({{64 * kMiB, 16 * kMiB}}) {}
    // Performs the bad free and asserts exactly one report of `kind` and an unchanged state.
    void expect_rejected(PhysAddr address, unsigned order, ErrorKind kind) {
        test::clear_reports();
        const uint64_t free_before = f.pfa.free_pages();
        const FreeBlockCounts blocks_before = f.pfa.free_blocks();
        f.pfa.free(address, order);
        ASSERT_EQ(test::reports().size(), 1u);
        const ErrorReport& report = test::reports()[0];
        EXPECT_EQ(report.kind, kind) << to_string(report.kind);
        EXPECT_EQ(report.address, address);
        EXPECT_EQ(report.size, order);
        EXPECT_STREQ(report.component, "pfa");
        EXPECT_NE(report.call_site, nullptr);
        EXPECT_EQ(f.pfa.free_pages(), free_before);
        const FreeBlockCounts blocks_after = f.pfa.free_blocks();
        for (unsigned k = 0; k < kOrderCount; ++k) {
            EXPECT_EQ(blocks_after.blocks[k], blocks_before.blocks[k]);
        }
        EXPECT_TRUE(f.pfa.check().ok);
    }
    Fixture f;
};

TEST_F(PageFrameAllocatorMisuse, FreeOutsideManagedMemory) {
    expect_rejected(4 * kGiB, 0, ErrorKind::FreeOutsideManagedMemory);
    expect_rejected(64 * kMiB, 0, ErrorKind::FreeOutsideManagedMemory); // the metadata pages
    expect_rejected(80 * kMiB - kPageSize, 1, ErrorKind::FreeOutsideManagedMemory); // runs off
}

TEST_F(PageFrameAllocatorMisuse, FreeMisaligned) {
    const PhysAddr block = f.pfa.allocate(3);
    expect_rejected(block + kPageSize, 3, ErrorKind::FreeMisaligned);
    expect_rejected(block + 8, 0, ErrorKind::FreeMisaligned);
    f.pfa.free(block, 3);
    f.expect_pristine();
}

TEST_F(PageFrameAllocatorMisuse, DoubleFreeAndNeverAllocated) {
    const PhysAddr block = f.pfa.allocate(2);
    f.pfa.free(block, 2);
    expect_rejected(block, 2, ErrorKind::DoubleFree);
    const PhysAddr held = f.pfa.allocate(4);
    expect_rejected(held + 4 * kPageSize, 2, ErrorKind::DoubleFree); // inside an allocated block
    f.pfa.free(held, 4);
    f.expect_pristine();
}

TEST_F(PageFrameAllocatorMisuse, FreeWrongOrder) {
    const PhysAddr block = f.pfa.allocate(3);
    expect_rejected(block, 2, ErrorKind::FreeWrongOrder);
    expect_rejected(block, 4, ErrorKind::FreeWrongOrder);
    expect_rejected(block, kMaxOrder + 1, ErrorKind::FreeWrongOrder);
    f.pfa.free(block, 3);
    f.expect_pristine();
}

TEST_F(PageFrameAllocatorMisuse, BadFreePagesChangesNothing) {
    const PhysAddr run = f.pfa.allocate_pages(5);
    test::clear_reports();
    const uint64_t free_before = f.pfa.free_pages();
    f.pfa.free_pages(run, 6); // one page too many: that page is free
    EXPECT_EQ(test::reports().size(), 1u);
    EXPECT_EQ(f.pfa.free_pages(), free_before);
    f.pfa.free_pages(run, 5);
    f.expect_pristine();
}

TEST_F(PageFrameAllocatorMisuse, ExhaustionReturnsFailure) {
    std::vector<PhysAddr> blocks;
    for (PhysAddr p; (p = f.pfa.allocate(5)) != kNoPage;) {
        blocks.push_back(p);
    }
    EXPECT_EQ(f.pfa.allocate(5), kNoPage);
    EXPECT_TRUE(test::reports().empty());
    for (PhysAddr p : blocks) {
        f.pfa.free(p, 5);
    }
    f.expect_pristine();
}

// Property test against a reference model: random allocate/free of random orders and runs;
// live blocks never overlap, stay inside RAM and aligned; check() holds after every step;
// freeing everything restores the start-up state exactly.
void run_random_sequence(uint64_t seed, size_t operations) {
    Fixture f({{0x3000, 0x5FD000}, {8 * kMiB + 0x7000, 5 * kMiB}, {5 * kGiB, 2 * kMiB}});
    ASSERT_TRUE(f.initialized);
    std::mt19937_64 random(seed);
    struct Live {
        uint64_t pages;
        bool is_run;
        unsigned order;
    };
    std::map<PhysAddr, Live> live;
    const auto inside_ram = [&](PhysAddr address, uint64_t pages) {
        for (const PhysRange& range : f.memory.ranges()) {
            if (address >= range.base && address + pages * kPageSize - 1 <= range.last()) {
                return true;
            }
        }
        return false;
    };
    for (size_t step = 0; step < operations; ++step) {
        const bool do_allocate = live.empty() || random() % 100 < 55;
        if (do_allocate) {
            Live block{};
            PhysAddr address;
            if (random() % 4 == 0) {
                block = {1 + random() % 37, true, 0};
                address = f.pfa.allocate_pages(block.pages);
            } else {
                const auto order = static_cast<unsigned>(random() % 7);
                block = {uint64_t{1} << order, false, order};
                address = f.pfa.allocate(order);
                if (address != kNoPage) {
                    ASSERT_EQ(address % (kPageSize << order), 0u);
                }
            }
            if (address == kNoPage) {
                continue;
            }
            ASSERT_TRUE(inside_ram(address, block.pages)) << std::hex << address;
            const auto next = live.lower_bound(address);
            if (next != live.end()) {
                ASSERT_LE(address + block.pages * kPageSize, next->first);
            }
            if (next != live.begin()) {
                const auto previous = std::prev(next);
                ASSERT_LE(previous->first + previous->second.pages * kPageSize, address);
            }
            live[address] = block;
        } else {
            auto it = live.begin();
            std::advance(it, static_cast<long>(random() % live.size()));
            if (it->second.is_run) {
                f.pfa.free_pages(it->first, it->second.pages);
            } else {
                f.pfa.free(it->first, it->second.order);
            }
            live.erase(it);
        }
        const PageFrameCheck check = f.pfa.check();
        ASSERT_TRUE(check.ok) << "step " << step << ": " << check.failure;
    }
    for (const auto& [address, block] : live) {
        if (block.is_run) {
            f.pfa.free_pages(address, block.pages);
        } else {
            f.pfa.free(address, block.order);
        }
    }
    EXPECT_TRUE(test::reports().empty());
    f.expect_pristine();
}

TEST(PageFrameAllocatorProperty, FixedSeed1) {
    run_random_sequence(1, 200000);
}
TEST(PageFrameAllocatorProperty, FixedSeed2) {
    run_random_sequence(0xbed70c, 200000);
}
TEST(PageFrameAllocatorProperty, EnvironmentSeed) {
    run_random_sequence(seed_from_environment(static_cast<uint64_t>(std::random_device{}())),
                        200000);
}

} // namespace
} // namespace bedrock
