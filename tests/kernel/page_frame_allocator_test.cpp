// SPDX-License-Identifier: MIT
// In-kernel tests of the page frame allocator on real physical memory (identity-mapped).
// Every test leaves the allocator exactly as it found it, and checks that it did.
//
// Writing a pattern into every page: each page gets its own address-derived value in eight
// words spread over the page (every 512 bytes). That touches every page of RAM while keeping the
// 6 GiB boot within seconds under QEMU's emulation.
#include <stdint.h>

#include "bedrock/page_frame_allocator.h"
#include "bedrock/platform.h"
#include "kernel/allocators.h"
#include "kernel/console.h"
#include "kernel/error_log.h"
#include "kernel/smp.h"
#include "kernel/test_registry.h"
#include "test_random.h"

namespace bedrock::kernel {
namespace {

constexpr uint64_t kPatternStride = 512;
constexpr uint64_t kPatternSalt = 0x9E3779B97F4A7C15;

// Allocated blocks are chained through their own first page: {next block, order}.
struct BlockLink {
    PhysAddr next;
    uint64_t order;
};

BlockLink& link(PhysAddr block) {
    return *static_cast<BlockLink*>(platform::phys_to_virt(block));
}

uint64_t pattern(PhysAddr address) {
    return (address ^ kPatternSalt) * 0x100000001B3;
}

void write_patterns(PhysAddr block, unsigned order) {
    const uint64_t bytes = kPageSize << order;
    for (uint64_t offset = sizeof(BlockLink); offset < bytes; offset += kPatternStride) {
        *static_cast<volatile uint64_t*>(platform::phys_to_virt(block + offset)) =
            pattern(block + offset);
    }
}

bool verify_patterns(PhysAddr block, unsigned order) {
    const uint64_t bytes = kPageSize << order;
    for (uint64_t offset = sizeof(BlockLink); offset < bytes; offset += kPatternStride) {
        if (*static_cast<volatile uint64_t*>(platform::phys_to_virt(block + offset)) !=
            pattern(block + offset)) {
            return false;
        }
    }
    return true;
}

struct Snapshot {
    uint64_t free_pages;
    int largest;
    FreeBlockCounts blocks;
};

// The free blocks with every CPU's page lists given back to them: free_blocks() and
// largest_free_order() see the free blocks alone, and a request that takes other CPUs' lists
// back (the tests run on one CPU) merges their blocks.
Snapshot snapshot(PageFrameAllocator& pfa) {
    for (unsigned cpu = 0; cpu < online_cpu_count(); ++cpu) {
        pfa.drain_cpu(cpu);
    }
    return {pfa.free_pages(), pfa.largest_free_order(), pfa.free_blocks()};
}

bool same(const Snapshot& a, const Snapshot& b) {
    for (unsigned k = 0; k < kOrderCount; ++k) {
        if (a.blocks.blocks[k] != b.blocks.blocks[k]) {
            return false;
        }
    }
    return a.free_pages == b.free_pages && a.largest == b.largest;
}

} // namespace
} // namespace bedrock::kernel

using namespace bedrock;
using namespace bedrock::kernel;

BEDROCK_TEST(pfa_exhaust_write_verify_free_all) {
    PageFrameAllocator& pfa = page_frame_allocator();
    const Snapshot before = snapshot(pfa);
    // Take everything, largest blocks first, chaining the blocks through themselves.
    PhysAddr chain = kNoPage;
    uint64_t pages = 0;
    for (unsigned order = kMaxOrder + 1; order-- > 0;) {
        for (PhysAddr block; (block = pfa.allocate(order)) != kNoPage;) {
            link(block) = BlockLink{chain, order};
            chain = block;
            pages += uint64_t{1} << order;
            write_patterns(block, order);
        }
    }
    BEDROCK_EXPECT_EQ(pages, before.free_pages);
    BEDROCK_EXPECT_EQ(pfa.free_pages(), 0);
    BEDROCK_EXPECT(pfa.allocate(0) == kNoPage);
    BEDROCK_EXPECT(pfa.check().ok);
    bool intact = true;
    for (PhysAddr block = chain; block != kNoPage; block = link(block).next) {
        intact = intact && verify_patterns(block, static_cast<unsigned>(link(block).order));
    }
    BEDROCK_EXPECT(intact);
    while (chain != kNoPage) {
        const BlockLink current = link(chain);
        pfa.free(chain, static_cast<unsigned>(current.order));
        chain = current.next;
    }
    BEDROCK_EXPECT(pfa.check().ok);
    BEDROCK_EXPECT(same(snapshot(pfa), before));
}

BEDROCK_TEST(pfa_random_orders_and_runs) {
    PageFrameAllocator& pfa = page_frame_allocator();
    const Snapshot before = snapshot(pfa);
    constexpr size_t kSlots = 512;
    struct Slot {
        PhysAddr address;
        uint64_t count; // pages of a run, or 0 for a block of `order`
        unsigned order;
    };
    static Slot slots[kSlots];
    for (Slot& slot : slots) {
        slot = {kNoPage, 0, 0};
    }
    TestRandom random(0xbed70c);
    bool patterns_intact = true;
    for (int step = 0; step < 20000; ++step) {
        Slot& slot = slots[random.next() % kSlots];
        if (slot.address != kNoPage) {
            const unsigned order = slot.count != 0 ? 0 : slot.order;
            patterns_intact = patterns_intact && verify_patterns(slot.address, order);
            if (slot.count != 0) {
                pfa.free_pages(slot.address, slot.count);
            } else {
                pfa.free(slot.address, slot.order);
            }
            slot.address = kNoPage;
        } else if (random.next() % 4 == 0) {
            slot.count = 1 + random.next() % 21;
            slot.address = pfa.allocate_pages(slot.count, kPageSize << (random.next() % 6));
            if (slot.address != kNoPage) {
                write_patterns(slot.address, 0);
            }
        } else {
            slot.count = 0;
            slot.order = static_cast<unsigned>(random.next() % 9);
            slot.address = pfa.allocate(slot.order);
            if (slot.address != kNoPage) {
                write_patterns(slot.address, slot.order);
            }
        }
        if (step % 1024 == 0 && !pfa.check().ok) {
            BEDROCK_EXPECT(pfa.check().ok);
            break;
        }
    }
    for (Slot& slot : slots) {
        if (slot.address != kNoPage) {
            if (slot.count != 0) {
                pfa.free_pages(slot.address, slot.count);
            } else {
                pfa.free(slot.address, slot.order);
            }
            slot.address = kNoPage;
        }
    }
    BEDROCK_EXPECT(patterns_intact);
    BEDROCK_EXPECT(pfa.check().ok);
    BEDROCK_EXPECT(same(snapshot(pfa), before));
}

BEDROCK_TEST(pfa_low_address_constraint) {
    PageFrameAllocator& pfa = page_frame_allocator();
    const Snapshot before = snapshot(pfa);
    const PhysAddr limits[] = {kZoneDmaLimit, kZoneDma32Limit};
    for (const PhysAddr limit : limits) {
        const uint64_t available = pfa.free_pages_below(limit);
        PhysAddr chain = kNoPage;
        uint64_t pages = 0;
        bool all_below = true;
        for (PhysAddr block; (block = pfa.allocate_below(0, limit)) != kNoPage;) {
            all_below = all_below && block + kPageSize <= limit;
            link(block) = BlockLink{chain, 0};
            chain = block;
            ++pages;
        }
        BEDROCK_EXPECT(all_below);
        BEDROCK_EXPECT_EQ(pages, available);
        BEDROCK_EXPECT_EQ(pfa.free_pages_below(limit), 0);
        while (chain != kNoPage) {
            const PhysAddr next = link(chain).next;
            pfa.free(chain, 0);
            chain = next;
        }
    }
    BEDROCK_EXPECT(same(snapshot(pfa), before));
}

// A limit that is no zone limit cuts the lowest region in two: only its lower part serves.
BEDROCK_TEST(pfa_limit_inside_a_region) {
    PageFrameAllocator& pfa = page_frame_allocator();
    const Snapshot before = snapshot(pfa);
    const PhysRange lowest = pfa.region_range(0);
    const PhysAddr limit = lowest.base + (lowest.size / 2 & ~(kPageSize - 1)) + 0x3000;
    PhysAddr chain = kNoPage;
    uint64_t pages = 0;
    bool all_below = true;
    for (PhysAddr block; (block = pfa.allocate_below(0, limit)) != kNoPage;) {
        all_below = all_below && block >= lowest.base && block + kPageSize <= limit;
        link(block) = BlockLink{chain, 0};
        chain = block;
        ++pages;
    }
    BEDROCK_EXPECT(all_below);
    BEDROCK_EXPECT(pages > 0);
    BEDROCK_EXPECT(pfa.allocate_pages(1, kPageSize, limit) == kNoPage);
    BEDROCK_EXPECT(pfa.check().ok);
    while (chain != kNoPage) {
        const PhysAddr next = link(chain).next;
        pfa.free(chain, 0);
        chain = next;
    }
    BEDROCK_EXPECT(same(snapshot(pfa), before));
}

BEDROCK_TEST(pfa_misuse_is_reported_and_changes_nothing) {
    PageFrameAllocator& pfa = page_frame_allocator();
    const PhysAddr block = pfa.allocate(2);
    BEDROCK_REQUIRE(block != kNoPage);
    const Snapshot before = snapshot(pfa);
    error_log().clear();
    pfa.free(block, 3);                      // wrong order
    pfa.free(block + kPageSize, 2);          // misaligned
    pfa.free(PhysAddr{0x7000'0000'0000}, 0); // not managed
    pfa.free(block, 2);                      // correct
    pfa.free(block, 2);                      // double free
    BEDROCK_EXPECT_EQ(error_log().count(), 4);
    BEDROCK_EXPECT(error_log()[0].kind == ErrorKind::FreeWrongOrder);
    BEDROCK_EXPECT(error_log()[1].kind == ErrorKind::FreeMisaligned);
    BEDROCK_EXPECT(error_log()[2].kind == ErrorKind::FreeOutsideManagedMemory);
    BEDROCK_EXPECT(error_log()[3].kind == ErrorKind::DoubleFree);
    BEDROCK_EXPECT_EQ(error_log()[3].address, block);
    BEDROCK_EXPECT_EQ(pfa.free_pages(), before.free_pages + 4);
    BEDROCK_EXPECT(pfa.check().ok);

    // A run of 3 pages (blocks of 2 and 1) is freed whole or not at all.
    const PhysAddr run = pfa.allocate_pages(3);
    BEDROCK_REQUIRE(run != kNoPage);
    const uint64_t free_with_run = pfa.free_pages();
    error_log().clear();
    pfa.free(run, 1);                       // its first block alone
    pfa.free_pages(run, 2);                 // too short
    pfa.free_pages(run + 2 * kPageSize, 1); // its last block alone
    BEDROCK_EXPECT_EQ(error_log().count(), 3);
    BEDROCK_EXPECT(error_log()[0].kind == ErrorKind::FreeWrongOrder);
    BEDROCK_EXPECT(error_log()[1].kind == ErrorKind::FreeWrongOrder);
    BEDROCK_EXPECT(error_log()[2].kind == ErrorKind::FreeWrongOrder);
    BEDROCK_EXPECT_EQ(pfa.free_pages(), free_with_run);
    pfa.free_pages(run, 3);
    BEDROCK_EXPECT_EQ(error_log().count(), 3);
    BEDROCK_EXPECT_EQ(pfa.free_pages(), free_with_run + 3);
    BEDROCK_EXPECT(pfa.check().ok);
    error_log().clear();
}

// Page tags: every page of a run has its own tag, found from any byte of the page; the owner
// writes them and clears them before freeing. Gaps between regions and the metadata have none.
BEDROCK_TEST(pfa_page_tags) {
    PageFrameAllocator& pfa = page_frame_allocator();
    const Snapshot before = snapshot(pfa);
    const PhysAddr run = pfa.allocate_pages(3);
    BEDROCK_REQUIRE(run != kNoPage);
    uint16_t* const first = pfa.page_tag(platform::phys_to_virt(run));
    BEDROCK_REQUIRE(first != nullptr);
    bool consecutive = true;
    for (uint64_t page = 0; page < 3; ++page) {
        auto* bytes = static_cast<const char*>(platform::phys_to_virt(run + page * kPageSize));
        consecutive = consecutive && pfa.page_tag(bytes) == first + page &&
                      pfa.page_tag(bytes + kPageSize - 1) == first + page && first[page] == 0;
        first[page] = static_cast<uint16_t>(0xbe00 + page);
    }
    BEDROCK_EXPECT(consecutive);
    BEDROCK_EXPECT(pfa.check().ok);
    for (uint64_t page = 0; page < 3; ++page) {
        first[page] = 0;
    }
    pfa.free_pages(run, 3);
    BEDROCK_EXPECT(pfa.page_tag(platform::phys_to_virt(pfa.metadata_range().base)) == nullptr);
    // The byte after each region, where the next region does not start there.
    bool gaps_untagged = true;
    for (size_t i = 0; i + 1 < pfa.region_count(); ++i) {
        const PhysRange region = pfa.region_range(i);
        if (region.last() + 1 != pfa.region_range(i + 1).base) {
            auto* after = static_cast<const char*>(platform::phys_to_virt(region.last())) + 1;
            gaps_untagged = gaps_untagged && pfa.page_tag(after) == nullptr;
        }
    }
    BEDROCK_EXPECT(gaps_untagged);
    BEDROCK_EXPECT(pfa.check().ok);
    BEDROCK_EXPECT(same(snapshot(pfa), before));
}

// Whether the `count` pages from `run` lie inside one region of `pfa`.
bool inside_one_region(const PageFrameAllocator& pfa, PhysAddr run, uint64_t count) {
    for (size_t i = 0; i < pfa.region_count(); ++i) {
        const PhysRange region = pfa.region_range(i);
        if (region.contains(run) && count <= (region.last() - run) / kPageSize + 1) {
            return true;
        }
    }
    return false;
}

// Runs of more than one maximum block (1 GiB): one of them and a tail, and exactly two, where the
// machine has that much contiguous free memory (the 4 GiB and 6 GiB boots, and sizes like 3071
// MiB, where the run starts below a maximum block, not on one); elsewhere a clean failure that
// changes nothing.
BEDROCK_TEST(pfa_run_beyond_a_maximum_block) {
    PageFrameAllocator& pfa = page_frame_allocator();
    const Snapshot before = snapshot(pfa);
    const uint64_t counts[] = {(uint64_t{1} << kMaxOrder) + 5, uint64_t{2} << kMaxOrder};
    for (const uint64_t count : counts) {
        const PhysAddr run = pfa.allocate_pages(count);
        if (run == kNoPage) {
            print("    no room for a run of %lu pages\n", count);
            BEDROCK_EXPECT(same(snapshot(pfa), before));
            continue;
        }
        print("    run of %lu pages at 0x%lx\n", count, run);
        BEDROCK_EXPECT_EQ(run % kPageSize, 0);
        BEDROCK_EXPECT(inside_one_region(pfa, run, count));
        BEDROCK_EXPECT_EQ(pfa.free_pages(), before.free_pages - count);
        write_patterns(run, 0);
        write_patterns(run + (count - 1) * kPageSize, 0);
        BEDROCK_EXPECT(verify_patterns(run, 0));
        BEDROCK_EXPECT(verify_patterns(run + (count - 1) * kPageSize, 0));
        BEDROCK_EXPECT(pfa.check().ok);
        pfa.free_pages(run, count);
        BEDROCK_EXPECT(same(snapshot(pfa), before));
    }
    BEDROCK_EXPECT(pfa.allocate_pages(pfa.managed_pages() + 1) == kNoPage);
    BEDROCK_EXPECT(pfa.check().ok);
    BEDROCK_EXPECT(same(snapshot(pfa), before));
}

// The CPU page lists: small blocks freed on this CPU stay on its lists (counted as free) and
// come back first; the lists stay within their bound, check() accepts them, and drain_cpu()
// gives everything back.
BEDROCK_TEST(pfa_cpu_page_lists) {
    PageFrameAllocator& pfa = page_frame_allocator();
    const Snapshot before = snapshot(pfa);
    constexpr unsigned kBlocks = 40;
    PhysAddr blocks[kBlocks];
    unsigned held = 0;
    while (held < kBlocks && (blocks[held] = pfa.allocate(held % kCpuListOrders)) != kNoPage) {
        ++held;
    }
    BEDROCK_EXPECT_EQ(held, kBlocks); // only what was allocated is freed
    for (unsigned i = 0; i < held; ++i) {
        pfa.free(blocks[i], i % kCpuListOrders);
    }
    BEDROCK_REQUIRE(held == kBlocks);
    BEDROCK_EXPECT_EQ(pfa.free_pages(), before.free_pages);
    BEDROCK_EXPECT(pfa.cpu_list_pages() <= kCpuListBlocks * ((1u << kCpuListOrders) - 1));
    const unsigned last_order = (kBlocks - 1) % kCpuListOrders;
    const PhysAddr again = pfa.allocate(last_order);
    BEDROCK_EXPECT(again == blocks[kBlocks - 1]);
    if (again != kNoPage) {
        pfa.free(again, last_order);
    }
    BEDROCK_EXPECT(pfa.check().ok);
    BEDROCK_EXPECT(same(snapshot(pfa), before));
    BEDROCK_EXPECT_EQ(pfa.cpu_list_pages(), 0);
}
