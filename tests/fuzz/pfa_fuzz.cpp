// SPDX-License-Identifier: MIT
// libFuzzer harness for the page frame allocator: the input picks a simulated memory layout
// (tests/support/host_platform.h) and whether CPU page lists are on, then a sequence of 8-byte
// operations, correct use and misuse, applied to a PageFrameAllocator and to a reference model
// of it (the live allocations and the reserved pages, as page intervals, and the regions):
//   - allocate(order), allocate_below(order, limit), allocate_pages(count, alignment, limit)
//     with counts from a page to several maximum blocks, alignments up to and past a maximum
//     block (up to 2^63 bytes), limits at zone boundaries, inside regions and unaligned;
//   - extend_pages() of live allocations, by a little or past a maximum block, and with bad
//     arguments (wrong counts, inside a run, over pages in use, past the region, shrinks);
//     shrink_pages() of live allocations to a page or less than their count, and with bad
//     arguments (wrong counts, inside a run, nothing left, growths);
//   - free()/free_pages() of live allocations, reserve_range() (free pages, pages in use,
//     ranges that wrap), drain_cpu() (any slot, and past the last);
//   - misuse: double frees, wrong counts and orders, unaligned, foreign, metadata and reserved
//     addresses.
// After every operation check() holds; an allocation lies inside one region, aligned as asked,
// below its limit, over no live or reserved page, and fails only when no free pages of the model
// could serve it (the oracle the contract gives: a free aligned block for a block, any free pages
// in a row inside one region, starting at a multiple of the alignment, for a run of any length);
// extend_pages() succeeds exactly when
// the model's pages after the run are free (or, failing, after the CPU page lists are drained),
// shrink_pages() exactly for a live run and a smaller count, freeing the rest;
// free_pages() and reserved_pages() match the model; every misuse is reported once (through
// platform::report_error, recorded by the host platform) and changes nothing, and nothing else
// is reported. The first and last page of each allocation carry a stamp, checked when it is
// freed (nothing of the allocator's, nor platform::pages_unused(), may write them). At the end
// everything is freed: every page comes back, and once the CPU page lists are drained the free
// blocks are exactly the maximal aligned blocks of the free pages (merging is complete).
// Any divergence aborts, which libFuzzer records as a crash. BEDROCK_PFA_FUZZ_TRACE=1 prints
// each operation.
//
// Input: byte 0: the layout (% kLayoutCount) and bit 7 CPU page lists off; then 8-byte
// operations: op, selector (2 bytes), parameter byte, value (4 bytes).
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <vector>

#include "bedrock/page_frame_allocator.h"
#include "bedrock/platform.h"
#include "support/host_platform.h"

namespace {

using bedrock::CpuPageLists;
using bedrock::ErrorReport;
using bedrock::FreeBlockCounts;
using bedrock::kMaxOrder;
using bedrock::kNoLimit;
using bedrock::kNoPage;
using bedrock::kOrderCount;
using bedrock::kPageShift;
using bedrock::kPageSize;
using bedrock::PageFrameAllocator;
using bedrock::PhysAddr;
using bedrock::PhysRange;

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kMaxBlockPages = uint64_t{1} << kMaxOrder;
constexpr uint64_t kPageEnd = uint64_t{1} << (64 - kPageShift);

// Layouts: several small ranges with holes; ranges cut by the zone boundaries; regions of
// several GiB starting on and off a maximum-block boundary (long runs, with heads); memory at
// the top of the 64-bit address space.
const std::vector<std::vector<PhysRange>>& layouts() {
    static const std::vector<std::vector<PhysRange>> list = {
        {{0x3000, 0x5FD000}, {8 * kMiB + 0x7000, 5 * kMiB}, {5 * kGiB, 2 * kMiB}},
        {{12 * kMiB, 8 * kMiB}, {4 * kGiB - 12 * kMiB, 24 * kMiB + 0x5000}},
        {{4 * kGiB + 256 * kMiB, 2 * kGiB + 64 * kMiB}},
        {{kGiB, 4 * kMiB}, {4 * kGiB, 2 * kGiB + 512 * kMiB + 0x3000}},
        {{16 * kMiB, 8 * kMiB}, {~uint64_t{0} - 8 * kMiB + 1, 8 * kMiB}},
        {{8 * kGiB + 768 * kMiB + 0x1000, kGiB + 300 * kMiB}, {16 * kGiB, 64 * kPageSize}},
    };
    return list;
}

bool g_trace = false;

[[noreturn]] void fail(const char* what, uint64_t a = 0, uint64_t b = 0) {
    fprintf(stderr, "pfa_fuzz: %s (0x%llx, 0x%llx)\n", what, static_cast<unsigned long long>(a),
            static_cast<unsigned long long>(b));
    abort();
}

uint64_t stamp_of(uint64_t page) {
    return page * 0x9E3779B97F4A7C15u + 0x5bd1e995;
}

uint64_t* word_of(uint64_t page) {
    return static_cast<uint64_t*>(bedrock::platform::phys_to_virt(page << kPageShift));
}

uint64_t floor_log2(uint64_t value) {
    return 63 - static_cast<uint64_t>(__builtin_clzll(value));
}

bool is_power_of_two(uint64_t value) {
    return value != 0 && (value & (value - 1)) == 0;
}

// The reference model: regions, live allocations and reserved pages, by page.
struct Model {
    std::vector<PhysRange> regions;        // in pages: base = first page, size = page count
    std::map<uint64_t, uint64_t> live;     // first page -> pages
    std::map<uint64_t, uint64_t> reserved; // first page -> end page, disjoint, not adjacent
    uint64_t managed = 0;
    uint64_t allocated = 0;
    uint64_t reserved_pages = 0;

    // The region holding [page, page + count), or -1.
    [[nodiscard]] int region_of(uint64_t page, uint64_t count) const {
        for (size_t i = 0; i < regions.size(); ++i) {
            const PhysRange& r = regions[i];
            if (page >= r.base && page - r.base < r.size && count <= r.size - (page - r.base)) {
                return static_cast<int>(i);
            }
        }
        return -1;
    }
    [[nodiscard]] static bool overlaps(const std::map<uint64_t, uint64_t>& map, uint64_t first,
                                       uint64_t end, bool value_is_end) {
        auto it = map.lower_bound(end);
        if (it == map.begin()) {
            return false;
        }
        --it;
        const uint64_t it_end = value_is_end ? it->second : it->first + it->second;
        return it_end > first;
    }
    // Whether any page of [first, end) is allocated or reserved.
    [[nodiscard]] bool busy(uint64_t first, uint64_t end) const {
        return overlaps(live, first, end, false) || overlaps(reserved, first, end, true);
    }
    // The free pages in a row, as intervals [first, end) inside regions, in address order.
    template <class Visit>
    void for_each_free_interval(Visit visit) const {
        std::vector<std::pair<uint64_t, uint64_t>> used;
        for (const auto& [page, count] : live) {
            used.emplace_back(page, page + count);
        }
        for (const auto& [page, end] : reserved) {
            used.emplace_back(page, end);
        }
        std::sort(used.begin(), used.end());
        for (const PhysRange& r : regions) {
            uint64_t at = r.base;
            const uint64_t end = r.base + r.size;
            // The intervals are disjoint: those ending after the region's start come in order (a
            // reserved one may start in the region below).
            auto it = used.begin();
            while (it != used.end() && it->second <= r.base) {
                ++it;
            }
            for (; it != used.end() && it->first < end; ++it) {
                if (it->first > at) {
                    visit(at, it->first);
                }
                at = it->second > at ? it->second : at;
            }
            if (at < end) {
                visit(at, end);
            }
        }
    }
    // Whether a free aligned block of 2^order pages ends at or below limit_page.
    [[nodiscard]] bool can_serve_block(unsigned order, uint64_t limit_page) const {
        if (order > kMaxOrder) {
            return false;
        }
        const uint64_t size = uint64_t{1} << order;
        bool found = false;
        for_each_free_interval([&](uint64_t first, uint64_t end) {
            const uint64_t start = (first + size - 1) & ~(size - 1);
            found = found || (start >= first && start + size <= end && start + size <= limit_page);
        });
        return found;
    }
    // Whether `count` free pages in a row start at a multiple of `alignment` pages and end at
    // or below limit_page.
    [[nodiscard]] bool can_serve_run(uint64_t count, uint64_t alignment,
                                     uint64_t limit_page) const {
        bool found = false;
        for_each_free_interval([&](uint64_t first, uint64_t end) {
            const uint64_t start = (first + alignment - 1) & ~(alignment - 1);
            found = found || (start >= first && start < end && count <= end - start &&
                              start + count <= limit_page);
        });
        return found;
    }
    void reserve(uint64_t first, uint64_t end) {
        // Merge with every interval it overlaps or touches.
        auto it = reserved.upper_bound(first);
        if (it != reserved.begin() && std::prev(it)->second >= first) {
            --it;
        }
        while (it != reserved.end() && it->first <= end) {
            reserved_pages -= it->second - it->first;
            first = it->first < first ? it->first : first;
            end = it->second > end ? it->second : end;
            it = reserved.erase(it);
        }
        reserved[first] = end;
        reserved_pages += end - first;
    }
};

struct Fuzz {
    bedrock::test::SimulatedMemory memory;
    PageFrameAllocator pfa;
    Model model;
    bool lists = true;
    uint64_t step = 0;
    // The most recent frees, for double frees.
    struct Freed {
        uint64_t page;
        uint64_t count;
    };
    std::vector<Freed> freed;

    Fuzz(const std::vector<PhysRange>& ranges, bool with_lists)
        : memory(ranges), lists(with_lists) {}

    [[nodiscard]] unsigned cpu() const { return bedrock::platform::current_cpu(); }

    void expect_no_reports(const char* where) {
        if (!bedrock::test::reports().empty()) {
            const ErrorReport& r = bedrock::test::reports()[0];
            fprintf(stderr, "pfa_fuzz: unexpected report %s (%s) at 0x%llx size 0x%llx\n",
                    bedrock::to_string(r.kind), r.detail,
                    static_cast<unsigned long long>(r.address),
                    static_cast<unsigned long long>(r.size));
            fail(where, step);
        }
    }

    void verify() {
        const bedrock::PageFrameCheck check = pfa.check();
        if (!check.ok) {
            fprintf(stderr, "pfa_fuzz: check() failed at step %llu: %s\n",
                    static_cast<unsigned long long>(step), check.failure);
            fail("check", check.address);
        }
        const uint64_t expected = model.managed - model.allocated - model.reserved_pages;
        if (pfa.free_pages() != expected) {
            fail("free_pages() differs from the model", pfa.free_pages(), expected);
        }
        if (pfa.reserved_pages() != model.reserved_pages) {
            fail("reserved_pages() differs from the model", pfa.reserved_pages(),
                 model.reserved_pages);
        }
        expect_no_reports("after an operation");
    }

    // A new allocation of `count` pages at `address`: inside one region, aligned, below the
    // limit, over nothing live or reserved; stamped and recorded.
    void accept(PhysAddr address, uint64_t count, uint64_t alignment_pages, PhysAddr limit) {
        if (address % kPageSize != 0) {
            fail("allocation not page-aligned", address);
        }
        const uint64_t page = address >> kPageShift;
        if (model.region_of(page, count) < 0) {
            fail("allocation outside one region", address, count);
        }
        if (page % alignment_pages != 0) {
            fail("allocation misaligned", address, alignment_pages);
        }
        if (limit != kNoLimit && page + count > (limit >> kPageShift)) {
            fail("allocation above its limit", address, limit);
        }
        if (model.busy(page, page + count)) {
            fail("allocation overlaps a live allocation or reserved pages", address, count);
        }
        model.live[page] = count;
        model.allocated += count;
        *word_of(page + count - 1) = stamp_of(page + count - 1) ^ count;
        *word_of(page) = stamp_of(page) ^ count;
    }

    void forget(uint64_t page) {
        const uint64_t count = model.live.at(page);
        if (*word_of(page) != (stamp_of(page) ^ count) ||
            *word_of(page + count - 1) != (stamp_of(page + count - 1) ^ count)) {
            fail("an allocated page was written", page << kPageShift, count);
        }
        model.live.erase(page);
        model.allocated -= count;
        if (freed.size() == 16) {
            freed.erase(freed.begin());
        }
        freed.push_back({page, count});
    }

    [[nodiscard]] std::map<uint64_t, uint64_t>::iterator pick_live(uint16_t selector) {
        auto it = model.live.begin();
        std::advance(it, static_cast<long>(selector % model.live.size()));
        return it;
    }

    // A limit: none, a zone boundary, or an address inside or near a region.
    [[nodiscard]] PhysAddr pick_limit(uint16_t selector, uint32_t value) const {
        switch (selector % 8) {
        case 0:
        case 1:
        case 2:
            return kNoLimit;
        case 3:
            return bedrock::kZoneDmaLimit;
        case 4:
            return bedrock::kZoneDma32Limit;
        default: {
            const PhysRange& r = model.regions[(selector / 8) % model.regions.size()];
            const uint64_t page = r.base + value % (r.size + 1);
            const uint64_t unaligned = selector % 8 == 7 ? (value >> 20) & (kPageSize - 1) : 0;
            return page >= kPageEnd ? kNoLimit : (page << kPageShift) + unaligned;
        }
        }
    }

    void allocate_block(unsigned order, PhysAddr limit, bool below) {
        const PhysAddr address = below ? pfa.allocate_below(order, limit) : pfa.allocate(order);
        if (g_trace) {
            fprintf(stderr, "%llu: allocate%s(%u, 0x%llx) = 0x%llx\n",
                    static_cast<unsigned long long>(step), below ? "_below" : "", order,
                    static_cast<unsigned long long>(limit),
                    static_cast<unsigned long long>(address));
        }
        const uint64_t limit_page = limit == kNoLimit ? kPageEnd : limit >> kPageShift;
        if (address == kNoPage) {
            if (model.can_serve_block(order, limit_page)) {
                fail("a block was refused that free pages could serve", order, limit);
            }
            return;
        }
        if (order > kMaxOrder) {
            fail("a block beyond the maximum order", address, order);
        }
        accept(address, uint64_t{1} << order, uint64_t{1} << order, limit);
    }

    void allocate_run(uint64_t count, uint64_t alignment, PhysAddr limit) {
        const PhysAddr address = pfa.allocate_pages(count, alignment, limit);
        if (g_trace) {
            fprintf(stderr, "%llu: allocate_pages(0x%llx, 0x%llx, 0x%llx) = 0x%llx\n",
                    static_cast<unsigned long long>(step), static_cast<unsigned long long>(count),
                    static_cast<unsigned long long>(alignment),
                    static_cast<unsigned long long>(limit),
                    static_cast<unsigned long long>(address));
        }
        const bool valid =
            count != 0 && count < kPageEnd && (alignment == 0 || is_power_of_two(alignment));
        const uint64_t alignment_pages = alignment <= kPageSize ? 1 : alignment / kPageSize;
        const uint64_t limit_page = limit == kNoLimit ? kPageEnd : limit >> kPageShift;
        if (address == kNoPage) {
            if (valid && count <= model.managed &&
                model.can_serve_run(count, alignment_pages, limit_page)) {
                fail("a run was refused that free pages in a row could serve", count, limit);
            }
            return;
        }
        if (!valid) {
            fail("an invalid run was served", count, alignment);
        }
        accept(address, count, alignment_pages, limit);
    }

    // The model's record of a live run of `count` pages at `address` that extend_pages() or
    // shrink_pages() made `new_count` pages long: its old last page's stamp cleared (inside the
    // run now, or free), its new one stamped.
    void resized(PhysAddr address, uint64_t count, uint64_t new_count) {
        const uint64_t page = address >> kPageShift;
        *word_of(page + count - 1) = 0;
        model.live.erase(page);
        model.allocated -= count;
        accept(address, new_count, 1, kNoLimit);
    }

    // Whether the model expects extend_pages(address, count, new_count) to succeed.
    [[nodiscard]] bool extend_expected(PhysAddr address, uint64_t count, uint64_t new_count) const {
        if (address % kPageSize != 0 || new_count <= count || new_count >= kPageEnd) {
            return false;
        }
        const uint64_t page = address >> kPageShift;
        const auto it = model.live.find(page);
        if (it == model.live.end() || it->second != count) {
            return false;
        }
        const int region = model.region_of(page, count);
        return region >= 0 && model.region_of(page, new_count) == region &&
               !model.busy(page + count, page + new_count);
    }

    void extend(PhysAddr address, uint64_t count, uint64_t new_count) {
        const bool expected = extend_expected(address, count, new_count);
        const uint64_t free_before = pfa.free_pages();
        bool extended = pfa.extend_pages(address, count, new_count);
        if (g_trace) {
            fprintf(stderr, "%llu: extend_pages(0x%llx, 0x%llx, 0x%llx) = %d (model %d)\n",
                    static_cast<unsigned long long>(step), static_cast<unsigned long long>(address),
                    static_cast<unsigned long long>(count),
                    static_cast<unsigned long long>(new_count), extended, expected);
        }
        expect_no_reports("extend_pages");
        if (expected && !extended) {
            // Pages on a CPU page list refuse it; once the lists are drained it must succeed.
            if (pfa.cpu_list_pages() == 0) {
                fail("extend_pages refused free pages", address, new_count);
            }
            for (unsigned slot = 0; slot < bedrock::platform::kMaxCpus; ++slot) {
                pfa.drain_cpu(slot);
            }
            extended = pfa.extend_pages(address, count, new_count);
            if (!extended) {
                fail("extend_pages refused free pages with the CPU lists drained", address,
                     new_count);
            }
        }
        if (extended != expected) {
            fail(extended ? "extend_pages took pages it should not" : "extend_pages refused",
                 address, new_count);
        }
        if (!extended) {
            if (pfa.free_pages() != free_before) {
                fail("a refused extend_pages changed the free pages", address, new_count);
            }
            return;
        }
        resized(address, count, new_count);
    }

    // Whether the model expects shrink_pages(address, count, new_count) to succeed.
    [[nodiscard]] bool shrink_expected(PhysAddr address, uint64_t count, uint64_t new_count) const {
        if (address % kPageSize != 0 || new_count == 0 || new_count >= count) {
            return false;
        }
        const auto it = model.live.find(address >> kPageShift);
        return it != model.live.end() && it->second == count;
    }

    void shrink(PhysAddr address, uint64_t count, uint64_t new_count) {
        const bool expected = shrink_expected(address, count, new_count);
        const uint64_t free_before = pfa.free_pages();
        const bool shrunk = pfa.shrink_pages(address, count, new_count);
        if (g_trace) {
            fprintf(stderr, "%llu: shrink_pages(0x%llx, 0x%llx, 0x%llx) = %d (model %d)\n",
                    static_cast<unsigned long long>(step), static_cast<unsigned long long>(address),
                    static_cast<unsigned long long>(count),
                    static_cast<unsigned long long>(new_count), shrunk, expected);
        }
        expect_no_reports("shrink_pages");
        if (shrunk != expected) {
            fail(shrunk ? "shrink_pages freed pages it should not" : "shrink_pages refused",
                 address, new_count);
        }
        if (!shrunk) {
            if (pfa.free_pages() != free_before) {
                fail("a refused shrink_pages changed the free pages", address, new_count);
            }
            return;
        }
        if (pfa.free_pages() != free_before + (count - new_count)) {
            fail("shrink_pages freed another count of pages", address, new_count);
        }
        resized(address, count, new_count);
    }

    // Frees a live allocation the right way (a block may go either way).
    void free_live(uint64_t page, uint64_t count, bool as_block) {
        const PhysAddr address = page << kPageShift;
        const bool is_block =
            is_power_of_two(count) && count <= kMaxBlockPages && page % count == 0;
        if (g_trace) {
            fprintf(stderr, "%llu: free%s(0x%llx, 0x%llx)\n", static_cast<unsigned long long>(step),
                    is_block && as_block ? "" : "_pages", static_cast<unsigned long long>(address),
                    static_cast<unsigned long long>(count));
        }
        forget(page);
        if (is_block && as_block) {
            pfa.free(address, static_cast<unsigned>(floor_log2(count)));
        } else {
            pfa.free_pages(address, count);
        }
        expect_no_reports("a valid free");
    }

    // A free the model says is misuse: exactly one report, nothing changed.
    void misuse(PhysAddr address, uint64_t size, bool as_block) {
        if (address % kPageSize == 0) {
            const auto it = model.live.find(address >> kPageShift);
            if (it != model.live.end()) {
                const uint64_t page = it->first;
                const uint64_t count = it->second;
                const bool is_block =
                    is_power_of_two(count) && count <= kMaxBlockPages && page % count == 0;
                if (as_block ? size <= kMaxOrder && is_block && count == uint64_t{1} << size
                             : size == count) {
                    return; // a valid free after all
                }
            }
        }
        if (g_trace) {
            fprintf(stderr, "%llu: misuse free%s(0x%llx, 0x%llx)\n",
                    static_cast<unsigned long long>(step), as_block ? "" : "_pages",
                    static_cast<unsigned long long>(address),
                    static_cast<unsigned long long>(size));
        }
        const uint64_t free_before = pfa.free_pages();
        const uint64_t listed_before = pfa.cpu_list_pages();
        const FreeBlockCounts blocks_before = pfa.free_blocks();
        if (as_block) {
            pfa.free(address, static_cast<unsigned>(size));
        } else {
            pfa.free_pages(address, size);
        }
        const auto& reports = bedrock::test::reports();
        if (reports.size() != 1) {
            fail(reports.empty() ? "misuse not reported" : "misuse reported more than once",
                 address, size);
        }
        if (reports[0].address != address || reports[0].size != size) {
            fail("misuse reported with another address or size", reports[0].address,
                 reports[0].size);
        }
        bedrock::test::clear_reports();
        const FreeBlockCounts blocks_after = pfa.free_blocks();
        for (unsigned k = 0; k < kOrderCount; ++k) {
            if (blocks_after.blocks[k] != blocks_before.blocks[k]) {
                fail("misuse changed the free blocks", address, k);
            }
        }
        if (pfa.free_pages() != free_before || pfa.cpu_list_pages() != listed_before) {
            fail("misuse changed the free pages", address, size);
        }
    }

    void reserve(PhysRange range) {
        const bool wraps = range.size != 0 && range.last() < range.base;
        bool conflict = false;
        uint64_t first = 0;
        uint64_t end = 0;
        if (range.size != 0 && !wraps) {
            first = range.base >> kPageShift;
            end = (range.last() >> kPageShift) + 1;
            conflict = Model::overlaps(model.live, first, end, false);
        }
        const uint64_t free_before = pfa.free_pages();
        const bool reserved = pfa.reserve_range(range);
        if (g_trace) {
            fprintf(stderr, "%llu: reserve_range(0x%llx, 0x%llx) = %d\n",
                    static_cast<unsigned long long>(step),
                    static_cast<unsigned long long>(range.base),
                    static_cast<unsigned long long>(range.size), reserved);
        }
        if (reserved != (!wraps && !conflict)) {
            fail("reserve_range's answer differs from the model", range.base, range.size);
        }
        if (conflict) {
            const auto& reports = bedrock::test::reports();
            if (reports.size() != 1 || reports[0].kind != bedrock::ErrorKind::ReserveConflict) {
                fail("a reserve conflict not reported once", range.base, range.size);
            }
            bedrock::test::clear_reports();
        }
        expect_no_reports("reserve_range");
        if (!reserved || range.size == 0) {
            if (pfa.free_pages() != free_before) {
                fail("a refused reserve_range changed the free pages", range.base, range.size);
            }
            return;
        }
        for (const PhysRange& r : model.regions) {
            const uint64_t a = first > r.base ? first : r.base;
            const uint64_t b = end < r.base + r.size ? end : r.base + r.size;
            if (a < b) {
                model.reserve(a, b);
            }
        }
    }

    // One operation from 8 bytes.
    void run(const uint8_t* op) {
        const uint8_t kind = op[0] % 12;
        const auto selector = static_cast<uint16_t>(op[1] | op[2] << 8);
        const uint8_t parameter = op[3];
        const uint32_t value = static_cast<uint32_t>(op[4] | op[5] << 8 | op[6] << 16) |
                               static_cast<uint32_t>(op[7]) << 24;
        switch (kind) {
        case 0: // allocate(order): mostly small orders
            allocate_block(parameter & 0x80 ? parameter % (kOrderCount + 1) : parameter % 6,
                           kNoLimit, false);
            break;
        case 1: // allocate_below(order, limit)
            allocate_block(parameter & 0x80 ? parameter % (kOrderCount + 1) : parameter % 6,
                           pick_limit(selector, value), true);
            break;
        case 2:
        case 3: { // allocate_pages(count, alignment, limit)
            uint64_t count;
            switch (parameter % 8) {
            case 0:
            case 1:
                count = 1 + value % 64;
                break;
            case 2:
                count = 1 + value % 4096;
                break;
            case 3:
                count = 1 + value % kMaxBlockPages;
                break;
            case 4:
                count = kMaxBlockPages - 2 + value % 5;
                break;
            case 5:
                count = kMaxBlockPages + 1 + value % (3 * kMaxBlockPages);
                break;
            case 6:
                count = uint64_t{1} << (value % kOrderCount);
                break;
            default:
                count = value % 3 == 0 ? 0 : value % 3 == 1 ? ~uint64_t{0} : model.managed + 1;
                break;
            }
            const unsigned shape = parameter >> 3;
            // Shape 31: 2 GiB, 4 GiB, 16 GiB or 2^63 bytes, beyond a maximum block.
            const unsigned beyond[] = {kMaxOrder + 1, kMaxOrder + 2, kMaxOrder + 4,
                                       63 - kPageShift};
            const uint64_t alignment = shape < 20    ? kPageSize << shape
                                       : shape < 30  ? (shape % 2 == 0 ? 0 : kPageSize)
                                       : shape == 30 ? 3 * kPageSize
                                                     : kPageSize << beyond[(value >> 28) % 4];
            allocate_run(count, alignment, kind == 3 ? pick_limit(selector, value >> 8) : kNoLimit);
            break;
        }
        case 4: { // extend_pages() of a live allocation, or with bad arguments
            if (model.live.empty()) {
                break;
            }
            const auto it = pick_live(selector);
            uint64_t page = it->first;
            uint64_t count = it->second;
            uint64_t grown;
            switch (parameter % 4) {
            case 0:
                grown = count + 1 + value % 16;
                break;
            case 1:
                grown = count + 1 + value % 1024;
                break;
            case 2:
                grown = count + 1 + value % (2 * kMaxBlockPages);
                break;
            default:
                grown = count - 1 + value % 4; // a shrink, the same, or a little more
                break;
            }
            switch ((parameter >> 2) % 8) {
            case 0: // a wrong count
                count = count + 1 - (value >> 16) % 3;
                break;
            case 1: // inside the run
                page += count > 1 ? 1 + (value >> 16) % (count - 1) : 1;
                break;
            case 2: // past the region's end
                grown = ~uint64_t{0} >> ((value >> 16) % 24);
                break;
            default:
                break;
            }
            if ((parameter >> 5) == 7) {
                // shrink_pages() instead: to a page, a little less, or as chosen (a wrong count,
                // inside the run, none, or more above)
                const uint64_t kept = value % 3 == 0   ? 1
                                      : value % 3 == 1 ? count - 1
                                                       : grown - count + 1;
                shrink(page << kPageShift, count, kept);
            } else {
                extend(page << kPageShift, count, grown);
            }
            break;
        }
        case 5:
        case 6: // free a live allocation
            if (!model.live.empty()) {
                const auto it = pick_live(selector);
                free_live(it->first, it->second, (parameter & 1) != 0);
            }
            break;
        case 7: { // reserve_range(): near a live allocation, at a free page, or wrapping
            uint64_t base;
            if (!model.live.empty() && (parameter & 3) == 0) {
                const auto it = pick_live(selector);
                base = (it->first << kPageShift) + (value % 8) * kPageSize - 2 * kPageSize;
            } else {
                const PhysRange& r = model.regions[selector % model.regions.size()];
                base = (r.base + value % r.size) << kPageShift;
            }
            base += parameter & 4 ? (value >> 8) & (kPageSize - 1) : 0;
            const uint64_t size = (parameter >> 3) == 31   ? ~uint64_t{0} - (value >> 24)
                                  : (parameter >> 3) == 30 ? 0
                                                           : 1 + (value >> 12) % (8 * kPageSize);
            reserve({base, size});
            break;
        }
        case 8: { // drain_cpu()
            const unsigned slot = parameter % 4 == 0 ? parameter / 4 : cpu();
            if (g_trace) {
                fprintf(stderr, "%llu: drain_cpu(%u)\n", static_cast<unsigned long long>(step),
                        slot);
            }
            pfa.drain_cpu(slot);
            break;
        }
        default: // misuse
            misuse_op(selector, parameter, value);
            break;
        }
    }

    void misuse_op(uint16_t selector, uint8_t parameter, uint32_t value) {
        const bool as_block = (parameter & 1) != 0;
        const auto size_near = [&](uint64_t count) {
            if (as_block) {
                const uint64_t order = floor_log2(count);
                return value % 3 == 0   ? order + 1
                       : value % 3 == 1 ? (order == 0 ? 1 : order - 1)
                                        : kMaxOrder + 1 + value % 40;
            }
            return value % 4 == 0   ? count + 1
                   : value % 4 == 1 ? count - 1
                   : value % 4 == 2 ? count + kMaxBlockPages
                                    : uint64_t{value >> 2};
        };
        switch ((parameter >> 1) % 8) {
        case 0: // a double free of something freed recently
            if (!freed.empty()) {
                const Freed& f = freed[selector % freed.size()];
                const bool is_block =
                    is_power_of_two(f.count) && f.count <= kMaxBlockPages && f.page % f.count == 0;
                misuse(f.page << kPageShift, is_block && as_block ? floor_log2(f.count) : f.count,
                       is_block && as_block);
            }
            break;
        case 1: // a live allocation with a wrong count or order
            if (!model.live.empty()) {
                const auto it = pick_live(selector);
                misuse(it->first << kPageShift, size_near(it->second), as_block);
            }
            break;
        case 2: // unaligned, or a page inside a live allocation
            if (!model.live.empty()) {
                const auto it = pick_live(selector);
                const uint64_t offset = value % 2 == 0 ? 1 + (value >> 1) % (kPageSize - 1)
                                                       : kPageSize * (1 + (value >> 1) % 64);
                misuse((it->first << kPageShift) + offset, as_block ? value % 4 : 1 + value % 8,
                       as_block);
            }
            break;
        case 3: { // a page of a region that may be free, reserved or allocated
            const PhysRange& r = model.regions[selector % model.regions.size()];
            const uint64_t page = r.base + value % r.size;
            misuse(page << kPageShift, as_block ? (value >> 24) % 6 : 1 + (value >> 24) % 64,
                   as_block);
            break;
        }
        case 4: { // a reserved page
            if (!model.reserved.empty()) {
                auto it = model.reserved.begin();
                std::advance(it, static_cast<long>(selector % model.reserved.size()));
                const uint64_t page = it->first + value % (it->second - it->first);
                misuse(page << kPageShift, as_block ? 0 : 1, as_block);
            }
            break;
        }
        default: { // foreign: metadata, holes, past a region's end, the top, anywhere
            const PhysRange& r = model.regions[selector % model.regions.size()];
            PhysAddr address;
            switch (value % 6) {
            case 0:
                address = pfa.metadata_range().base + (value >> 8) % 4 * kPageSize;
                break;
            case 1:
                address = (r.base + r.size) << kPageShift;
                break;
            case 2:
                address = ((r.base + r.size) << kPageShift) - kPageSize;
                break;
            case 3:
                address = ~uint64_t{0} - kPageSize + 1;
                break;
            case 4:
                address = 0;
                break;
            default:
                address = uint64_t{value} << 20;
                break;
            }
            misuse(address, as_block ? (value >> 8) % (kOrderCount + 2) : 1 + (value >> 8) % 600,
                   as_block);
            break;
        }
        }
    }

    // Everything freed: every page comes back, and with the CPU page lists drained the free
    // blocks are the maximal aligned blocks of the free pages.
    void finish() {
        while (!model.live.empty()) {
            const auto it = model.live.begin();
            free_live(it->first, it->second, (it->first & 1) == 0);
        }
        verify();
        for (unsigned slot = 0; slot < bedrock::platform::kMaxCpus; ++slot) {
            pfa.drain_cpu(slot);
        }
        verify();
        if (pfa.cpu_list_pages() != 0) {
            fail("CPU page lists left after draining", pfa.cpu_list_pages());
        }
        FreeBlockCounts expected;
        model.for_each_free_interval([&](uint64_t first, uint64_t end) {
            while (first < end) {
                uint64_t order = floor_log2(end - first);
                if (first != 0 && static_cast<uint64_t>(__builtin_ctzll(first)) < order) {
                    order = static_cast<uint64_t>(__builtin_ctzll(first));
                }
                order = order < kMaxOrder ? order : kMaxOrder;
                ++expected.blocks[order];
                first += uint64_t{1} << order;
            }
        });
        const FreeBlockCounts actual = pfa.free_blocks();
        for (unsigned k = 0; k < kOrderCount; ++k) {
            if (actual.blocks[k] != expected.blocks[k]) {
                fail("the free blocks are not fully merged at the end", k, actual.blocks[k]);
            }
        }
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const bool trace = [] {
        g_trace = getenv("BEDROCK_PFA_FUZZ_TRACE") != nullptr;
        return g_trace;
    }();
    static_cast<void>(trace);
    if (size < 1) {
        return 0;
    }
    const std::vector<PhysRange>& ranges = layouts()[(data[0] & 0x7f) % layouts().size()];
    const bool lists = (data[0] & 0x80) == 0;
    bedrock::test::clear_reports();
    Fuzz fuzz(ranges, lists);
    if (!fuzz.pfa.init(ranges.data(), ranges.size(), lists ? CpuPageLists::On : CpuPageLists::Off,
                       0, bedrock::RangeContents::Zeroed)) {
        fail("init refused a layout");
    }
    for (size_t i = 0; i < fuzz.pfa.region_count(); ++i) {
        const PhysRange r = fuzz.pfa.region_range(i);
        fuzz.model.regions.push_back({r.base >> kPageShift, r.size >> kPageShift});
        fuzz.model.managed += r.size >> kPageShift;
    }
    if (fuzz.model.managed != fuzz.pfa.managed_pages()) {
        fail("the regions do not add up to the managed pages");
    }
    fuzz.verify();
    for (size_t at = 1; at + 8 <= size; at += 8) {
        fuzz.run(data + at);
        fuzz.verify();
        ++fuzz.step;
    }
    fuzz.finish();
    return 0;
}
