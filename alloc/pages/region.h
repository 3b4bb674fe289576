// SPDX-License-Identifier: MIT
// Region: the buddy structure over one region (a usable range, or its piece between zone
// boundaries) of the page frame allocator. It owns the region's bitmaps, their summaries, page
// tags and counts; it takes and gives free blocks, splits and merges them, finds the lowest free
// block of an order, finds free pages in a row for runs, and records runs. It takes no lock: the
// PageFrameAllocator holds its lock around every call. Nothing is stored in a free page: a write to
// freed memory cannot reach the allocator's state.
//
// Words: take / give = a free block leaves / joins the free blocks (its free bit and the
// summaries above it); split / merge = a free block into halves / with its buddy; record_run /
// free_run = a run's blocks become allocated / free again (free_run merges them with their free
// buddies; a block from a CPU page list is freed as a run of one block); forget_run undoes a
// record_run whose pages stay taken (a run recorded again at another length).
//
// In a region, the block of order k starting at pfn p (p a multiple of 2^k) has bit index
// (p >> k) - (first_page >> k) in the order-k bitmaps; the two page bitmaps (run continues,
// reserved) have one bit per page, index p - first_page, and so do the tags. Splitting and
// merging, for a block of order k at p:
//
//   split:  [ p ............ p + 2^k )      merge:  buddy(p, k) = p ^ 2^k
//           [ p .. p+2^(k-1) )[ buddy  )            [ p ..... )[ buddy ..... ] -> [ min(p, buddy) )
//             kept / split on   given                 both free at order k        free at k + 1
//
// Each order's free bitmap (level 0) has summary levels above it, each with one bit per word of
// the level below, up to a level of one word (summary_levels[k] levels, none when the free
// bitmap is one word). The lowest free block of an order is found from the top word down, one
// ctz per level; giving or taking a block changes a summary bit only when the word below
// becomes nonzero or zero:
//
//   level 2:  [ 0 1 0 ... ]            bit j of level l + 1  <=>  word j of level l != 0
//   level 1:  [ 1 0 ... ][ 0 ... ] ...
//   level 0:  [ word 0 ][ word 1 ] ... the free bitmap: bit i <=> block i is free
//
// A run of `count` pages (allocate_pages) is recorded as the greedy decomposition of
// [p, p + count) into naturally aligned blocks, in non-increasing order (several maximum blocks
// first when count > 2^kMaxOrder, then decreasing), each with its allocated bit; every block but
// the last also has the "run continues" mark on its last page, so whether a block continues a
// run, or is continued, is one bit each (the pages either side of its edges), and a run is freed
// only whole:
//
//   count 7 at p:  [ . . . C | . C | . ]     C: the run continues after this page
//                    order 2  order 1 order 0
//
// Invariants (the full list in bedrock/page_frame_allocator.h; check() verifies them):
//   free_pages == sum over k of free_count[k] * 2^k
//   free_count[k] == popcount(free bitmap k);  bit k of nonempty_orders  <=>  free_count[k] > 0
//   summary bit j of level l + 1 of order k  <=>  word j of level l of order k != 0
//   tags[p - first_page] == 0 and span_tags[span of p] == 0 for every free or reserved page p
#pragma once

#include <stdint.h>

#include "bedrock/assert.h"
#include "bedrock/error_report.h"
#include "bedrock/page_frame_allocator.h"
#include "bedrock/platform.h"
#include "pages/block_math.h"
#include "support/bits.h"

namespace bedrock {
namespace pages {

// Words of the order-`order` bitmap of the region [first_page, first_page + page_count).
inline uint64_t bitmap_words(uint64_t first_page, uint64_t page_count, unsigned order) {
    const uint64_t bits = ((first_page + page_count - 1) >> order) - (first_page >> order) + 1;
    return align_up(bits, kWordBits) / kWordBits;
}

// The words of the level above a bitmap level of `words` (>= 1) words.
constexpr uint64_t summary_level_words(uint64_t words) {
    return (words - 1) / kWordBits + 1;
}

// The summary levels above a bitmap of `words` words: each has one bit per word of the level
// below, and the last is one word.
constexpr unsigned summary_levels(uint64_t words) {
    unsigned levels = 0;
    for (; words > 1; words = summary_level_words(words)) {
        ++levels;
    }
    return levels;
}

// The most summary levels an order can have: a region of every page frame (2^52 pages) has an
// order-0 bitmap of 2^46 words.
inline constexpr unsigned kMaxSummaryLevels = summary_levels(kPageEnd / kWordBits);
static_assert(kMaxSummaryLevels == 8 && summary_levels(1) == 0 && summary_levels(2) == 1 &&
              summary_levels(64) == 1 && summary_levels(65) == 2);

// Words of the summaries of the order-`order` free bitmap of a region: its table of level starts
// (a word per level) and its levels.
inline uint64_t summary_words(uint64_t first_page, uint64_t page_count, unsigned order) {
    uint64_t total = 0;
    for (uint64_t words = bitmap_words(first_page, page_count, order); words > 1;) {
        words = summary_level_words(words);
        total += 1 + words;
    }
    return total;
}

// Span tags of the region [first_page, first_page + page_count).
inline uint64_t span_count(uint64_t first_page, uint64_t page_count) {
    return ((first_page + page_count - 1) >> kTagSpanOrder) - (first_page >> kTagSpanOrder) + 1;
}

// Free and allocated bitmaps for every order, the two page bitmaps, then the free bitmaps'
// summaries (about 1/63 of the free bitmaps, and a word per level).
inline uint64_t bitmaps_words(uint64_t first_page, uint64_t page_count) {
    uint64_t words = 0;
    uint64_t summaries = 0;
    for (unsigned order = 0; order < kOrderCount; ++order) {
        words += bitmap_words(first_page, page_count, order);
        summaries += summary_words(first_page, page_count, order);
    }
    return 2 * words + 2 * bitmap_words(first_page, page_count, 0) + summaries;
}

} // namespace pages

// Why a free cannot be done; detail == nullptr when it can.
struct PageFrameAllocator::Misuse {
    ErrorKind kind;
    const char* detail;
};

struct PageFrameAllocator::Region {
    enum class PageMark : uint8_t { RunContinues, Reserved };

    uint64_t first_page;
    uint64_t page_count;
    uint64_t free_pages;
    uint64_t reserved_pages;
    uint64_t* bits;                    // free bitmaps, allocated bitmaps, page marks, summaries
    uint64_t allocated_offset;         // words from bits to the allocated bitmaps
    uint64_t marks_offset;             // words from bits to the run-continues bitmap
    uint64_t page_words;               // words of one page bitmap
    uint64_t word_offset[kOrderCount]; // words from a bitmap's start to order k's
    // Order k's summaries, from bits + summary_offset[k]: a table of summary_levels[k] words,
    // entry l the offset (words from bits) of level l + 1, then the levels, level 1 first (level
    // l + 1 has ceil(words of level l / 64) words; the last has one).
    uint64_t summary_offset[kOrderCount];
    uint64_t free_count[kOrderCount]; // free blocks of each order
    uint32_t nonempty_orders;         // bit k <=> free_count[k] > 0
    uint8_t summary_levels[kOrderCount];
    // Whether `bits` begins its metadata block right after the block's pad (metadata_pad.h): the
    // first region of each add_range() (init()'s block is m_metadata).
    enum class PadBefore : uint8_t { None, Bits };
    PadBefore pad_before = PadBefore::None;
    uint16_t* tags;      // one per page, index page - first_page (page_tag())
    uint16_t* span_tags; // one per span, index (page >> 6) - (first_page >> 6)

    [[nodiscard]] uint64_t end_page() const { return first_page + page_count; }
    [[nodiscard]] bool holds(uint64_t page, unsigned order) const {
        return page >= first_page && page + pages::pages_of(order) <= end_page();
    }
    [[nodiscard]] uint64_t bit_index(uint64_t page, unsigned order) const {
        return (page >> order) - (first_page >> order);
    }
    [[nodiscard]] uint64_t& word(bool allocated, uint64_t page, unsigned order) const {
        return bits[(allocated ? allocated_offset : 0) + word_offset[order] +
                    bit_index(page, order) / pages::kWordBits];
    }
    [[nodiscard]] uint64_t mask(uint64_t page, unsigned order) const {
        return uint64_t{1} << (bit_index(page, order) % pages::kWordBits);
    }
    [[nodiscard]] bool is_free(uint64_t page, unsigned order) const {
        return (word(false, page, order) & mask(page, order)) != 0;
    }
    [[nodiscard]] bool is_allocated(uint64_t page, unsigned order) const {
        return (word(true, page, order) & mask(page, order)) != 0;
    }
    void set_allocated(uint64_t page, unsigned order, bool allocated) {
        uint64_t& w = word(true, page, order);
        w = allocated ? w | mask(page, order) : w & ~mask(page, order);
    }

    [[nodiscard]] uint64_t& mark_word(PageMark mark, uint64_t page) const {
        return bits[marks_offset + (mark == PageMark::Reserved ? page_words : 0) +
                    (page - first_page) / pages::kWordBits];
    }
    [[nodiscard]] bool has_mark(PageMark mark, uint64_t page) const {
        return (mark_word(mark, page) & mask(page, 0)) != 0;
    }
    void set_mark(PageMark mark, uint64_t page, bool set) {
        uint64_t& w = mark_word(mark, page);
        w = set ? w | mask(page, 0) : w & ~mask(page, 0);
    }
    [[nodiscard]] bool is_reserved(uint64_t page) const {
        return has_mark(PageMark::Reserved, page);
    }

    // Order `order`'s table of summary level starts: entry l, words from bits to level l + 1.
    [[nodiscard]] const uint64_t* summary_starts(unsigned order) const {
        return bits + summary_offset[order];
    }

    struct Block {
        uint64_t page;
        unsigned order;
    };

    // Gives the free block (page, order): sets its free bit, and the summary bits above it that
    // were clear. Its buddy must not be free. O(kMaxSummaryLevels).
    void give(uint64_t page, unsigned order);
    // give(), then platform::pages_unused() for a block of order kUnusedOrder or more while
    // more than kRetainedUnusedPages freed pages are `unreported` (less the block's, once told).
    void give_merged(Block block, uint32_t& unreported);
    // platform::pages_unused() for every free block of order kUnusedOrder or more. O(bitmap
    // words of those orders).
    void tell_unused_blocks() const;
    // Takes the free block (page, order): clears its free bit, and the summary bits above it
    // whose word became zero. O(kMaxSummaryLevels).
    void take(uint64_t page, unsigned order) {
        BEDROCK_DEBUG_ASSERT(holds(page, order) && page % pages::pages_of(order) == 0);
        const uint64_t bit = bit_index(page, order);
        uint64_t& word = bits[word_offset[order] + bit / pages::kWordBits];
        BEDROCK_DEBUG_ASSERT((word & uint64_t{1} << (bit % pages::kWordBits)) != 0);
        word &= ~(uint64_t{1} << (bit % pages::kWordBits));
        count_out(order, bit, word);
        free_pages -= pages::pages_of(order);
    }
    // The rest of taking the free block of order `order` once its bit `bit` is cleared, leaving
    // its word `word`: the summary bits above it whose word became zero, and free_count
    // (free_pages is the caller's to count).
    void count_out(unsigned order, uint64_t bit, uint64_t word);
    // The lowest-addressed free block of `order`, which has one (free_count[order] > 0): the
    // top summary word down, one ctz per level. O(kMaxSummaryLevels).
    [[nodiscard]] uint64_t lowest_free(unsigned order) const;
    // Takes the free block (page, order) and splits it down to `wanted`, keeping the lowest
    // part: the upper halves are given back.
    void take_split(uint64_t page, unsigned order, unsigned wanted);
    // Whether every page of [first, end) is inside the region and free. O(kMaxOrder^2 + (end -
    // first) / 2^kMaxOrder * kMaxOrder): merging is complete, so a free stretch is covered by
    // O(kMaxOrder) blocks plus its maximum blocks.
    [[nodiscard]] bool is_free_range(uint64_t first, uint64_t end) const;
    // Takes the free pages [first, end) (every page of it free, none reserved): each free block
    // that holds some of them is taken, and its parts outside the range are given back (their
    // buddies hold taken pages, so they do not merge). Same bound as is_free_range().
    void take_range(uint64_t first, uint64_t end);
    // The first page of `count` (> 2^kMaxOrder) free pages in a row, at a multiple of
    // `alignment` pages (a power of two up to a maximum block), ending at or below `end_limit`,
    // or kPageEnd. Such a run is a head of fewer than 2^kMaxOrder free pages ending at a
    // maximum-block boundary, the free maximum blocks from there on, and a tail of fewer than
    // 2^kMaxOrder free pages after them; each boundary that starts a stretch of free maximum
    // blocks (or has none) is tried once, lowest first, with as little head as the stretch and
    // its tail leave to cover, so the run starts at a maximum block whenever one can.
    // O(B * kMaxOrder^2) for B maximum-block slots.
    [[nodiscard]] uint64_t find_long_run(uint64_t count, uint64_t alignment,
                                         uint64_t end_limit) const;
    // The lowest first page of `count` (>= 1) free pages in a row, at a multiple of `alignment`
    // pages (any power of two), ending at or below `end_limit`, or kPageEnd: any free pages,
    // whatever blocks hold them. The pages are scanned a window of 64 (a bitmap word of order 0)
    // at a time, lowest first, from the free bitmaps' words (free_window()); it stops at the
    // first fit, or as soon as no later start can end by `end_limit`:
    //   - count <= 64: a run starts in a window or in none; starts_of_set_runs() over the window
    //     and the next one, ANDed with the aligned starts, gives the lowest (the next window's
    //     mask is kept for the step after);
    //   - count > 64: a run holds the end of the window it starts in, so each window has one
    //     candidate start, that of its highest free pages (or of the free pages carried from
    //     the windows below); a free block of a larger order than a window is passed in one step.
    // Alignments above 64 pages visit only the windows that hold aligned starts (and those the
    // runs from them cover).
    //
    //   count 3, alignment 1:  page  0 1 2 3 4 5 6 7 8 9 ...   x: not free   .: free
    //                                x . x . . x x . . .
    //                         starts of 3 free in a row: 7 (the first bit of the runs' mask)
    //
    // O(P / 64) windows for P pages of the region below `end_limit` (fewer with a large
    // alignment), no free page walked or tested alone. A window costs about two hundred
    // instructions (x86-64, clang 14 -O2: seven bitmap words read and spread into a page mask
    // with double_each_bit(), then the run test); one without a free page adds a test of the
    // block that holds it at each larger order that has a free block. Over a 4 GiB region
    // fragmented into stretches of 1-3 free pages (2^14 windows) a search that fails takes about
    // 0.3-0.5 ms (pfa_bench --run-search), where walking the anchors and their blocks took 9 ms.
    [[nodiscard]] uint64_t find_lowest_run(uint64_t count, uint64_t alignment,
                                           uint64_t end_limit) const;
    // find_lowest_run() for count <= 64 and for count > 64, with `end` = min(end_limit,
    // end_page()).
    [[nodiscard]] uint64_t find_run_in_windows(uint64_t count, uint64_t alignment,
                                               uint64_t end) const;
    [[nodiscard]] uint64_t find_run_across_windows(uint64_t count, uint64_t alignment,
                                                   uint64_t end) const;
    // The free pages of the 64 from `window` (a multiple of 64, any page number): bit i of
    // `mask` set <=> page window + i is free (pages outside the region are not). `end` is the
    // end of the free block of an order above kWordOrder that holds the window, if one does
    // (mask all ones), else window + 64. A page is free in one block only, so the larger
    // orders are tested only when orders 0..kWordOrder leave the window without a free page.
    struct FreeWindow {
        uint64_t mask;
        uint64_t end;
    };
    [[nodiscard]] FreeWindow free_window(uint64_t window) const;
    // The 64 bits of the order-`order` (<= kWordOrder) free bitmap from the bit of the first
    // block of `window` (a multiple of 64, inside the region or not): bits of blocks outside
    // the bitmap read 0. free_window() reads the windows inside the region without its checks.
    [[nodiscard]] uint64_t free_bits_from(uint64_t window, unsigned order) const;
    // Free pages in a row ending at `page` (before it), counted up to at least `wanted`; and
    // starting at `page`, likewise. Free blocks on either side of a maximum-block boundary shrink
    // away from it (merging is complete), so each is O(kMaxOrder^2) from one.
    [[nodiscard]] uint64_t free_pages_before(uint64_t page, uint64_t wanted) const;
    [[nodiscard]] uint64_t free_pages_from(uint64_t page, uint64_t wanted) const;

    // The order of the free (or allocated) block that contains `page`, or -1 if none does.
    [[nodiscard]] int block_containing(uint64_t page, bool allocated) const;
    // Whether an allocated block of any order starts at `page`.
    [[nodiscard]] bool starts_allocated_block(uint64_t page) const;

    // Whether `page` starts a block that continues a run (the page before it is marked).
    [[nodiscard]] bool continues_a_run(uint64_t page) const {
        return page > first_page && has_mark(PageMark::RunContinues, page - 1);
    }
    // Whether the run of the allocated block (page, order) continues after it.
    [[nodiscard]] bool run_continues_after(uint64_t page, unsigned order) const {
        return has_mark(PageMark::RunContinues, page + pages::pages_of(order) - 1);
    }
    void set_run_continues_after(uint64_t page, unsigned order, bool continues) {
        set_mark(PageMark::RunContinues, page + pages::pages_of(order) - 1, continues);
    }

    // Why the block (page, order), page aligned to the order and inside the region, is not an
    // allocated block that may be freed; the run marks are the caller's business.
    // (Reserved pages lie in no block, so an allocated block is never reserved.)
    [[nodiscard]] Misuse block_misuse(uint64_t page, unsigned order) const;

    // Records [page, page + count), just taken, as allocated: its greedy blocks, chained by run
    // marks.
    void record_run(uint64_t page, uint64_t count);
    // Undoes record_run(page, count) and leaves the pages taken, for a record of another length.
    void forget_run(uint64_t page, uint64_t count);
    // Clears the allocated bit of the block and the run mark on its last page (its tags must be
    // 0 by now).
    void clear_run_block(Block block) {
        BEDROCK_DEBUG_ASSERT(tags_clear(block.page, pages::pages_of(block.order)));
        set_allocated(block.page, block.order, false);
        set_run_continues_after(block.page, block.order, false);
    }
    // Frees the allocated run (or block) `run`, found valid: clears its blocks' allocated bits
    // and run marks and gives them back merged. Each block of the run is given once, merged
    // with its neighbours in the run first; takes only free blocks outside the run. O(blocks of
    // the run + kMaxOrder) gives and takes. `unreported`: the allocator's freed pages not told to
    // platform::pages_unused(), the run's included (see give_merged()).
    void free_run(const RunBlocks& run, uint32_t& unreported);

    // The index of the first page of [page, page + count) whose tag is not 0, or count if none.
    [[nodiscard]] uint64_t first_tagged_page(uint64_t page, uint64_t count) const;
    // Whether every page of [page, page + count) and every span touching them has tag 0.
    [[nodiscard]] bool tags_clear(uint64_t page, uint64_t count) const;
    [[nodiscard]] uint16_t* span_tag_of(uint64_t page) const {
        return span_tags + ((page >> kTagSpanOrder) - (first_page >> kTagSpanOrder));
    }
};

// The allocator's count of freed pages not told to platform::pages_unused(): `count` pages freed
// join it, `count` allocated or told leave it (not below 0, nor above what a uint32_t holds).
inline void note_unreported(uint32_t& unreported, uint64_t count) {
    const uint64_t room = uint32_t(~0u) - unreported;
    unreported += static_cast<uint32_t>(count < room ? count : room);
}
inline void note_reported_or_taken(uint32_t& unreported, uint64_t count) {
    unreported = count < unreported ? unreported - static_cast<uint32_t>(count) : 0;
}

// A run's greedy blocks (or one block) as one walk over them found them, for Region::free_run():
// its maximum blocks as the stretch [maximum_first, maximum_end), the others one by one in
// address order - at most kMaxOrder before the maximum blocks, of rising orders, and
// kMaxOrder after them, of falling orders (block_math.h).
struct PageFrameAllocator::RunBlocks {
    uint64_t first; // the run's first page
    uint64_t maximum_first = 0;
    uint64_t maximum_end = 0;
    unsigned edge_count = 0;
    Region::Block edges[2 * kMaxOrder];

    // No blocks yet, the first to come at `page`.
    explicit RunBlocks(uint64_t page) : first(page) {}

    // Appends the next block of the run.
    void add(uint64_t page, unsigned order) {
        if (order == kMaxOrder) {
            maximum_first = maximum_first == maximum_end ? page : maximum_first;
            maximum_end = page + pages::pages_of(kMaxOrder);
        } else {
            BEDROCK_DEBUG_ASSERT(edge_count < 2 * kMaxOrder);
            edges[edge_count++] = {page, order};
        }
    }
};

inline uint64_t PageFrameAllocator::Region::lowest_free(unsigned order) const {
    BEDROCK_DEBUG_ASSERT(free_count[order] != 0);
    // Each level's lowest set bit names the lowest nonempty word of the level below.
    const uint64_t* starts = summary_starts(order);
    uint64_t index = 0;
    for (unsigned level = summary_levels[order]; level-- > 0;) {
        const uint64_t word = bits[starts[level] + index];
        BEDROCK_DEBUG_ASSERT(word != 0);
        index = index * pages::kWordBits + lowest_set_bit(word);
    }
    const uint64_t word = bits[word_offset[order] + index];
    BEDROCK_DEBUG_ASSERT(word != 0);
    index = index * pages::kWordBits + lowest_set_bit(word);
    return ((first_page >> order) + index) << order;
}

static_assert(kOrderCount <= 32, "nonempty_orders is a 32-bit mask");
static_assert(kMaxOrder + kPageShift < 64, "a maximum block is addressable");

} // namespace bedrock
