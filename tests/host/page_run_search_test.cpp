// SPDX-License-Identifier: MIT
// Host tests of the search for any free pages in a row (Region::find_lowest_run(), reached
// through PageFrameAllocator::allocate_pages() when no buddy block serves a run): over one region
// fragmented through the public API, every search's answer is compared with a reference that
// walks a model of the free pages page by page (the lowest aligned start whose `count` pages are
// free and end by the limit). The model is the region's pages less every block and run the test
// holds (no CPU page lists, so a free page is in a free block); free_pages() and check() confirm
// it as the test goes.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "bedrock/page_frame_allocator.h"
#include "support/host_platform.h"

namespace bedrock {
namespace {

constexpr uint64_t kNone = ~uint64_t{0};
constexpr uint64_t kMaxBlockPages = uint64_t{1} << kMaxOrder;

uint64_t seed_from_environment(uint64_t fallback) {
    const char* text = std::getenv("BEDROCK_TEST_SEED");
    const uint64_t seed = text != nullptr ? std::strtoull(text, nullptr, 0) : fallback;
    std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
    return seed;
}

unsigned ceil_log2_of(uint64_t value) {
    unsigned order = 0;
    while ((uint64_t{1} << order) < value) {
        ++order;
    }
    return order;
}

// One allocator over one region of `pages` pages at pfn `first` (the metadata is carved from
// its range, so the region is what region_range(0) says), with a model of its free pages.
class FragmentedRegion {
public:
    FragmentedRegion(uint64_t first, uint64_t pages)
        : m_range{first * kPageSize, pages * kPageSize}, m_memory({m_range}) {
        test::clear_reports();
        m_initialized = m_pfa.init(&m_range, 1, CpuPageLists::Off) && m_pfa.region_count() == 1;
        if (m_initialized) {
            const PhysRange region = m_pfa.region_range(0);
            m_first_page = region.base / kPageSize;
            m_free.assign(region.size / kPageSize, true);
            m_initialized = m_pfa.free_pages() == m_free.size();
        }
    }

    [[nodiscard]] bool initialized() const { return m_initialized; }
    [[nodiscard]] uint64_t first_page() const { return m_first_page; }
    [[nodiscard]] uint64_t end_page() const { return m_first_page + m_free.size(); }
    [[nodiscard]] uint64_t page_count() const { return m_free.size(); }
    [[nodiscard]] PageFrameAllocator& pfa() { return m_pfa; }

    // The reference: the lowest start p (a multiple of `alignment` pages) with pages
    // [p, p + count) free and p + count <= limit_page, or kNone.
    [[nodiscard]] uint64_t reference_run(uint64_t count, uint64_t alignment,
                                         uint64_t limit_page) const {
        const uint64_t end = limit_page < end_page() ? limit_page : end_page();
        for (uint64_t p = (m_first_page + alignment - 1) / alignment * alignment; p + count <= end;
             p += alignment) {
            uint64_t free = 0;
            while (free < count && m_free[p - m_first_page + free]) {
                ++free;
            }
            if (free == count) {
                return p;
            }
        }
        return kNone;
    }

    // allocate_pages(count, alignment pages, limit): the run it returned (recorded as held), or
    // kNone; compared with the reference whenever no buddy block can serve the request (then
    // the allocator searches for free pages in a row), else checked to be free, aligned and
    // below the limit.
    uint64_t allocate_and_compare(uint64_t count, uint64_t alignment, uint64_t limit_page) {
        const bool searched = takes_the_run_search(count, alignment);
        const uint64_t expected = reference_run(count, alignment, limit_page);
        const PhysAddr limit = limit_page == kNone ? kNoLimit : limit_page * kPageSize;
        const PhysAddr address = m_pfa.allocate_pages(count, alignment * kPageSize, limit);
        const uint64_t got = address == kNoPage ? kNone : address / kPageSize;
        ++m_searches;
        if (searched) {
            ++m_compared;
            EXPECT_EQ(got, expected) << describe(count, alignment, limit_page);
        } else if (got != kNone) {
            EXPECT_EQ(got % alignment, 0u) << describe(count, alignment, limit_page);
            EXPECT_LE(got + count, limit_page) << describe(count, alignment, limit_page);
            EXPECT_NE(expected, kNone) << describe(count, alignment, limit_page);
        }
        if (got != kNone) {
            EXPECT_TRUE(mark(got, count, false)) << describe(count, alignment, limit_page);
            m_held.push_back({got, count, kRun});
        }
        EXPECT_EQ(m_pfa.free_pages(), free_count());
        return got;
    }

    // Whether allocate_pages(count, alignment pages) cannot be served by a buddy block: no free
    // block of the order that holds the count and the alignment (largest_free_order() below
    // it), or a run or alignment beyond a maximum block. A whole block aligned as one is left
    // to the buddy path alone.
    [[nodiscard]] bool takes_the_run_search(uint64_t count, uint64_t alignment) const {
        if (alignment > kMaxBlockPages) {
            return true;
        }
        if (count > kMaxBlockPages) {
            return false; // Region::find_long_run()
        }
        const unsigned size_order = ceil_log2_of(count);
        const unsigned alignment_order = ceil_log2_of(alignment);
        const unsigned order = size_order > alignment_order ? size_order : alignment_order;
        if ((uint64_t{1} << order) == count && alignment == count) {
            return false;
        }
        return m_pfa.largest_free_order() < static_cast<int>(order);
    }

    // Allocates every free page as an order-0 block, then frees those for which `keep_free`
    // holds (by page number): an exact pattern of free pages, merged as freeing merges them.
    template <class KeepFree>
    void leave_free_only(KeepFree keep_free) {
        for (PhysAddr address; (address = m_pfa.allocate(0)) != kNoPage;) {
            EXPECT_TRUE(mark(address / kPageSize, 1, false));
            m_held.push_back({address / kPageSize, 1, 0});
        }
        ASSERT_EQ(m_pfa.free_pages(), 0u);
        std::vector<Held> kept;
        for (const Held& held : m_held) {
            if (held.count == 1 && keep_free(held.page)) {
                release(held);
            } else {
                kept.push_back(held);
            }
        }
        m_held = kept;
        ASSERT_EQ(m_pfa.free_pages(), free_count());
        ASSERT_TRUE(m_pfa.check().ok) << m_pfa.check().failure;
    }

    // Random blocks and runs (random counts and alignments), then a random part of what is
    // held freed again: a fragmented region whose bitmaps the allocator built itself.
    void fragment(std::mt19937_64& random, unsigned operations) {
        for (unsigned i = 0; i < operations; ++i) {
            if (random() % 2 == 0) {
                const auto order = static_cast<unsigned>(random() % 6);
                const PhysAddr address = m_pfa.allocate(order);
                if (address != kNoPage) {
                    EXPECT_TRUE(mark(address / kPageSize, uint64_t{1} << order, false));
                    m_held.push_back(
                        {address / kPageSize, uint64_t{1} << order, static_cast<int>(order)});
                }
            } else {
                const uint64_t count = 1 + random() % 40;
                const uint64_t alignment = uint64_t{1} << (random() % 5);
                const PhysAddr address = m_pfa.allocate_pages(count, alignment * kPageSize);
                if (address != kNoPage) {
                    EXPECT_TRUE(mark(address / kPageSize, count, false));
                    m_held.push_back({address / kPageSize, count, kRun});
                }
            }
        }
        release_some(random, 2);
        ASSERT_EQ(m_pfa.free_pages(), free_count());
        ASSERT_TRUE(m_pfa.check().ok) << m_pfa.check().failure;
    }

    // Frees about one held block or run in `one_in`.
    void release_some(std::mt19937_64& random, unsigned one_in) {
        std::vector<Held> kept;
        for (const Held& held : m_held) {
            if (random() % one_in == 0) {
                release(held);
            } else {
                kept.push_back(held);
            }
        }
        m_held = kept;
    }

    [[nodiscard]] uint64_t free_count() const {
        uint64_t count = 0;
        for (const bool free : m_free) {
            count += free ? 1 : 0;
        }
        return count;
    }
    [[nodiscard]] uint64_t compared() const { return m_compared; }
    [[nodiscard]] uint64_t searches() const { return m_searches; }

private:
    // A block from allocate() (its order) or a run from allocate_pages() (kRun).
    static constexpr int kRun = -1;
    struct Held {
        uint64_t page;
        uint64_t count;
        int order;
    };

    // Frees it as it was allocated: free() for a block, free_pages() for a run.
    void release(const Held& held) {
        if (held.order == kRun) {
            m_pfa.free_pages(held.page * kPageSize, held.count);
        } else {
            m_pfa.free(held.page * kPageSize, static_cast<unsigned>(held.order));
        }
        EXPECT_TRUE(mark(held.page, held.count, true));
    }

    // Sets pages [page, page + count) free or not; false if one of them was already so, or is
    // outside the region.
    bool mark(uint64_t page, uint64_t count, bool free) {
        if (page < m_first_page || page + count > end_page()) {
            return false;
        }
        bool changed = true;
        for (uint64_t i = page - m_first_page; i < page - m_first_page + count; ++i) {
            changed = changed && m_free[i] != free;
            m_free[i] = free;
        }
        return changed;
    }

    [[nodiscard]] std::string describe(uint64_t count, uint64_t alignment,
                                       uint64_t limit_page) const {
        char text[200];
        std::snprintf(text, sizeof text,
                      "count %llu alignment %llu limit page %llx, region [%llx, %llx) (first page "
                      "%% 64 = %llu)",
                      static_cast<unsigned long long>(count),
                      static_cast<unsigned long long>(alignment),
                      static_cast<unsigned long long>(limit_page),
                      static_cast<unsigned long long>(m_first_page),
                      static_cast<unsigned long long>(end_page()),
                      static_cast<unsigned long long>(m_first_page % 64));
        return text;
    }

    PhysRange m_range;
    test::SimulatedMemory m_memory;
    PageFrameAllocator m_pfa;
    bool m_initialized = false;
    uint64_t m_first_page = 0;
    std::vector<bool> m_free; // by page - first page
    std::vector<Held> m_held;
    uint64_t m_searches = 0;
    uint64_t m_compared = 0;
};

// A pfn in [1 GiB, 3 GiB) (one zone) whose remainder modulo 64 is not 0.
uint64_t unaligned_first_page(std::mt19937_64& random) {
    const uint64_t page = (uint64_t{1} << 18) + random() % (uint64_t{1} << 19);
    return page % 64 == 0 ? page + 1 + random() % 63 : page;
}

// A request: counts from 1 to past a window (and some long ones), alignments from 1 to past
// a window, limits none, inside the region or just past it.
struct Request {
    uint64_t count;
    uint64_t alignment;
    uint64_t limit_page;
};
Request random_request(std::mt19937_64& random, const FragmentedRegion& region) {
    static constexpr uint64_t kCounts[] = {1, 2, 3, 5, 7, 13, 31, 33, 63, 64, 65, 100, 127, 200};
    Request request{};
    switch (random() % 4) {
    case 0:
        request.count = 1 + random() % 8;
        break;
    case 1:
        request.count = kCounts[random() % (sizeof kCounts / sizeof kCounts[0])];
        break;
    case 2:
        request.count = 1 + random() % 300;
        break;
    default:
        request.count = 1 + random() % (1 + region.page_count() / 4);
        break;
    }
    request.alignment = uint64_t{1} << (random() % 9);
    switch (random() % 3) {
    case 0:
        request.limit_page = kNone;
        break;
    case 1:
        request.limit_page = region.first_page() + random() % (region.page_count() + 1);
        break;
    default:
        request.limit_page = region.end_page() + random() % 3;
        break;
    }
    return request;
}

// Many regions (unaligned starts, a few dozen to several thousand pages, two larger), each
// fragmented by random allocations and frees, or left with stretches of 1-3 free pages, or
// random free pages; then random requests, each compared with the reference while the
// allocator has to search, and a random part of the runs freed again between rounds.
TEST(PageRunSearch, MatchesThePageByPageReferenceOnRandomFragmentedRegions) {
    std::mt19937_64 random(seed_from_environment(20261206));
    uint64_t compared = 0;
    for (unsigned trial = 0; trial < 60; ++trial) {
        const uint64_t pages =
            trial < 2 ? 20000 + random() % 20000 : 40 + random() % (trial % 3 == 0 ? 600 : 6000);
        FragmentedRegion region(unaligned_first_page(random), pages);
        ASSERT_TRUE(region.initialized()) << trial;
        switch (trial % 3) {
        case 0:
            region.fragment(random, static_cast<unsigned>(pages / 8));
            break;
        case 1: {
            // Stretches of 1-3 free pages between 1-2 held ones.
            std::vector<bool> pattern;
            while (pattern.size() < region.page_count()) {
                pattern.insert(pattern.end(), 1 + random() % 3, true);
                pattern.insert(pattern.end(), 1 + random() % 2, false);
            }
            region.leave_free_only(
                [&](uint64_t page) { return pattern[page - region.first_page()]; });
            break;
        }
        default: {
            const unsigned one_in = 2 + static_cast<unsigned>(random() % 30);
            region.leave_free_only([&](uint64_t) { return random() % one_in != 0; });
            break;
        }
        }
        for (unsigned round = 0; round < 4; ++round) {
            for (unsigned i = 0; i < 60; ++i) {
                const Request request = random_request(random, region);
                region.allocate_and_compare(request.count, request.alignment, request.limit_page);
            }
            ASSERT_TRUE(region.pfa().check().ok) << region.pfa().check().failure;
            region.release_some(random, 3);
        }
        compared += region.compared();
    }
    std::printf("%llu searches compared with the reference\n",
                static_cast<unsigned long long>(compared));
    EXPECT_GT(compared, 2000u);
}

// The first page at `kOffset` into a period of `kPeriod` pages at or after the region's `first`:
// the run a periodic pattern of free pages holds first.
template <uint64_t kPeriod, uint64_t kOffset>
uint64_t first_in_period(uint64_t first, uint64_t) {
    const uint64_t page = first / kPeriod * kPeriod + kOffset;
    return page >= first ? page : page + kPeriod;
}

// Exact cases, each over a fresh region of 4000 pages whose first page is 37 modulo 64 (or
// straddling a 2 GiB boundary), left with a pattern of free pages that holds no free block the
// request could be cut from: runs at the very start and the very end of the region, limits that
// cut the run or end exactly at it, alignments larger than the count, count 1, runs longer than
// a window and over many windows, alignments beyond a maximum block, and no fit at all.
TEST(PageRunSearch, FindsRunsAtTheEdgesOfTheRegionAndNoneWhenNothingFits) {
    constexpr uint64_t kFirst = (uint64_t{1} << 18) + 64 * 1000 + 37;
    constexpr uint64_t kTwoGiBPages = uint64_t{1} << 19;
    struct Case {
        const char* what;
        uint64_t first;
        bool (*is_free)(uint64_t page, uint64_t first, uint64_t end);
        uint64_t count;
        uint64_t alignment;
        // The limit page: first page + limit if >= 0, end page + limit if < 0; or none.
        int64_t limit;
        uint64_t (*expected)(uint64_t first, uint64_t end);
    };
    constexpr int64_t kNoLimitCase = 1 << 30;
    // Free pages: 3 at the region's start, 3 at its end, and every fifth page between.
    const auto start_and_end = [](uint64_t page, uint64_t first, uint64_t end) {
        return page < first + 3 || page >= end - 3 ||
               (page >= first + 10 && page < end - 10 && page % 5 == 0);
    };
    const auto only_end = [](uint64_t page, uint64_t first, uint64_t end) {
        return page >= end - 3 || (page >= first + 10 && page < end - 10 && page % 5 == 0);
    };
    // Stretches of 7 pages over each multiple of 16 (pages 8j + 3 .. 8j + 9 of every 16).
    const auto sevens = [](uint64_t page, uint64_t, uint64_t) {
        return page % 16 >= 3 && page % 16 < 10;
    };
    // Pages 8j + 3 .. 8j + 5: the middle one a multiple of 4.
    const auto threes = [](uint64_t page, uint64_t, uint64_t) {
        return page % 8 >= 3 && page % 8 < 6;
    };
    // Stretches of 100 pages (14 .. 113 of every 256) and of 1000 pages (1 .. 1000 of every
    // 2048): neither holds a free block of 128, resp. 512, pages.
    const auto hundreds = [](uint64_t page, uint64_t, uint64_t) {
        return page % 256 >= 14 && page % 256 < 114;
    };
    const auto thousands = [](uint64_t page, uint64_t, uint64_t) {
        return page % 2048 >= 1 && page % 2048 < 1001;
    };
    // Free blocks of 128 pages, each followed by a page in use and 50 free pages (of every 512).
    const auto blocks_then_gap = [](uint64_t page, uint64_t, uint64_t) {
        return page % 512 < 128 || (page % 512 >= 129 && page % 512 < 179);
    };
    const auto all = [](uint64_t, uint64_t, uint64_t) { return true; };
    const auto all_but_third_after_boundary = [](uint64_t page, uint64_t, uint64_t) {
        return page % kTwoGiBPages != 2;
    };
    const auto first_of = [](uint64_t first, uint64_t) { return first; };
    const auto none = [](uint64_t, uint64_t) { return kNone; };
    const auto boundary = [](uint64_t first, uint64_t) {
        return (first + kTwoGiBPages - 1) / kTwoGiBPages * kTwoGiBPages;
    };
    const Case cases[] = {
        {"at the very start", kFirst, start_and_end, 3, 1, kNoLimitCase, first_of},
        {"ending exactly at the limit", kFirst, start_and_end, 3, 1, 3, first_of},
        {"cut by the limit at the start", kFirst, start_and_end, 3, 1, 2, none},
        {"at the very end", kFirst, only_end, 3, 1, kNoLimitCase,
         [](uint64_t, uint64_t end) { return end - 3; }},
        {"at the very end, cut by the limit", kFirst, only_end, 3, 1, -1, none},
        {"alignment larger than the count", kFirst, sevens, 2, 8, kNoLimitCase,
         first_in_period<16, 8>},
        {"count 1, aligned", kFirst, threes, 1, 4, kNoLimitCase, first_in_period<8, 4>},
        {"count 1, aligned to no free page", kFirst, threes, 1, 8, kNoLimitCase, none},
        // The region starts 37 pages into a stretch: 77 free pages from its first.
        {"more than a window, from the region's first page", kFirst, hundreds, 65, 1, kNoLimitCase,
         first_of},
        {"a whole stretch over windows", kFirst, hundreds, 100, 1, kNoLimitCase,
         first_in_period<256, 14>},
        {"one more than any stretch", kFirst, hundreds, 101, 1, kNoLimitCase, none},
        {"misaligned in every stretch", kFirst, hundreds, 100, 4, kNoLimitCase, none},
        {"over many windows", kFirst, thousands, 1000, 1, kNoLimitCase, first_in_period<2048, 1>},
        {"aligned inside a long stretch", kFirst, thousands, 400, 512, kNoLimitCase,
         first_in_period<2048, 512>},
        {"an aligned start leaves too few", kFirst, thousands, 999, 64, kNoLimitCase, none},
        {"no fit at all", kFirst, thousands, 1001, 1, kNoLimitCase, none},
        {"a free block larger than a window ends the free pages", kFirst, blocks_then_gap, 130, 1,
         kNoLimitCase, none},
        {"aligned beyond a maximum block", 3 * kTwoGiBPages - 1500, all, 5, kTwoGiBPages,
         kNoLimitCase, boundary},
        {"aligned beyond a maximum block, long", 3 * kTwoGiBPages - 1500, all, 1200, kTwoGiBPages,
         kNoLimitCase, boundary},
        {"aligned beyond a maximum block, cut", 3 * kTwoGiBPages - 1500,
         all_but_third_after_boundary, 3, kTwoGiBPages, kNoLimitCase, none},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.what);
        FragmentedRegion region(c.first, 4000);
        ASSERT_TRUE(region.initialized());
        const uint64_t first = region.first_page();
        const uint64_t end = region.end_page();
        ASSERT_EQ(first, c.first); // the metadata is carved from the top
        region.leave_free_only([&](uint64_t page) { return c.is_free(page, first, end); });
        ASSERT_TRUE(region.takes_the_run_search(c.count, c.alignment));
        const uint64_t limit_page = c.limit == kNoLimitCase ? kNone
                                    : c.limit >= 0          ? first + static_cast<uint64_t>(c.limit)
                                                            : end - static_cast<uint64_t>(-c.limit);
        const uint64_t expected = c.expected(first, end);
        ASSERT_EQ(region.reference_run(c.count, c.alignment, limit_page), expected);
        EXPECT_EQ(region.allocate_and_compare(c.count, c.alignment, limit_page), expected);
        EXPECT_EQ(region.compared(), 1u);
    }
}

} // namespace
} // namespace bedrock
