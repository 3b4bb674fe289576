// SPDX-License-Identifier: MIT
// Region: the buddy structure over one region (a usable range, or its piece between zone
// boundaries) of the page frame allocator. It owns the region's bitmaps, page tags, free lists
// and counts; it takes and gives free blocks, splits and merges them, and records runs. It takes
// no lock: the PageFrameAllocator holds its lock around every call.
//
// Words: take / give = a free block leaves / joins the free lists (give_merging also merges it
// with its free buddies); split / merge = a free block into halves / with its buddy;
// record_run / free_run = a run's blocks become allocated / free again.
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
//   free_pages == sum over the free lists of their blocks' pages
//   a block is on free list k  <=>  its free bit at order k is set
//   free_count[k] == length of free list k;  bit k of nonempty_orders  <=>  free_count[k] > 0
//   tags[p - first_page] == 0 and span_tags[span of p] == 0 for every free or reserved page p
// A link read from a free block (FreeNode) is trusted only after the bitmaps confirm it (a
// free block of the list's order, inside the region, whose back link agrees): a damaged link is
// noted in *corrupt_link, never followed, and the list is rebuilt from the free bitmap.
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

// The links of a free block, stored in its own first page.
struct FreeNode {
    uint64_t next; // pfn, or kNoPage
    uint64_t prev;
};

inline FreeNode& node(uint64_t page) {
    return *static_cast<FreeNode*>(platform::phys_to_virt(page << kPageShift));
}

// Words of the order-`order` bitmap of the region [first_page, first_page + page_count).
inline uint64_t bitmap_words(uint64_t first_page, uint64_t page_count, unsigned order) {
    const uint64_t bits = ((first_page + page_count - 1) >> order) - (first_page >> order) + 1;
    return align_up(bits, kWordBits) / kWordBits;
}

// Span tags of the region [first_page, first_page + page_count).
inline uint64_t span_count(uint64_t first_page, uint64_t page_count) {
    return ((first_page + page_count - 1) >> kTagSpanOrder) - (first_page >> kTagSpanOrder) + 1;
}

// Free and allocated bitmaps for every order, then the two page bitmaps.
inline uint64_t bitmaps_words(uint64_t first_page, uint64_t page_count) {
    uint64_t words = 0;
    for (unsigned order = 0; order < kOrderCount; ++order) {
        words += bitmap_words(first_page, page_count, order);
    }
    return 2 * words + 2 * bitmap_words(first_page, page_count, 0);
}

static_assert(sizeof(FreeNode) <= kPageSize, "a free node lives in the first page of a block");

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
    uint64_t* bits;                    // free bitmaps, allocated bitmaps, then the page marks
    uint64_t allocated_offset;         // words from bits to the allocated bitmaps
    uint64_t marks_offset;             // words from bits to the run-continues bitmap
    uint64_t page_words;               // words of one page bitmap
    uint64_t word_offset[kOrderCount]; // words from a bitmap's start to order k's
    uint64_t free_list[kOrderCount];   // head pfn, or kNoPage
    uint64_t free_count[kOrderCount];  // blocks on each list
    uint32_t nonempty_orders;          // bit k <=> free_list[k] is not empty
    uint16_t* tags;                    // one per page, index page - first_page (page_tag())
    uint16_t* span_tags;               // one per span, index (page >> 6) - (first_page >> 6)
    uint64_t* corrupt_link;            // the allocator's note of a damaged link (kNoPage: none)

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

    // Whether `page` may be followed as a link of free list `order`: a free block of that order
    // inside the region (safe for any 64-bit value).
    [[nodiscard]] bool is_free_block(uint64_t page, unsigned order) const {
        return page >= first_page && page < end_page() &&
               end_page() - page >= pages::pages_of(order) && page % pages::pages_of(order) == 0 &&
               is_free(page, order);
    }
    // The block after `page` on free list `order`, or kNoPage; if the link is damaged, notes it,
    // rebuilds the list and returns its head (the caller starts over).
    [[nodiscard]] uint64_t next_free(uint64_t page, unsigned order);
    // Relinks free list `order` from its free bitmap (after a damaged link). O(bitmap words +
    // blocks).
    void rebuild_free_list(unsigned order);
    // Puts the free block at `page` on top of free list `order` (links and count only: its bit
    // and the order's nonempty flag are the caller's). O(1).
    void push_free(uint64_t page, unsigned order);

    struct Block {
        uint64_t page;
        unsigned order;
    };

    // Gives the free block (page, order) to free list `order`; its buddy must not be free.
    void give(uint64_t page, unsigned order);
    // Gives a free block, merging it with its free buddies all the way up; when the merged
    // block is of order kUnusedOrder or more, tells platform::pages_unused() of its pages but
    // the first. O(kMaxOrder) takes.
    void give_merging(uint64_t page, unsigned order);
    // Merges `block` (not on a list) with its free buddies upwards, taking each, and stops at
    // a buddy that starts at or above `run_first` and below the block (pages of a run still to
    // be given); returns the merged block, not given yet.
    [[nodiscard]] Block merge_with_free_buddies(Block block, uint64_t run_first);
    // give(), then platform::pages_unused() for a block of order kUnusedOrder or more.
    void give_merged(Block block);
    // Takes the free block (page, order) off its free list.
    void take(uint64_t page, unsigned order);
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
    // The first page of `count` whose start is a maximum block, where `count` (> 2^kMaxOrder)
    // free pages start with consecutive free maximum blocks and end at or below `end_limit`, or
    // kPageEnd. O(B + S * kMaxOrder^2) for B maximum-block slots and S stretches of free ones.
    [[nodiscard]] uint64_t find_long_run(uint64_t count, uint64_t end_limit) const;

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
    // Frees the allocated run (or block) [page, page + count): clears its blocks' allocated bits
    // and run marks and gives them back merged. Each block of the run is given once, merged
    // with its neighbours in the run first; takes only free blocks outside the run. O(blocks of
    // the run + kMaxOrder) list operations.
    void free_run(uint64_t page, uint64_t count);

    // The index of the first page of [page, page + count) whose tag is not 0, or count if none.
    [[nodiscard]] uint64_t first_tagged_page(uint64_t page, uint64_t count) const;
    // Whether every page of [page, page + count) and every span touching them has tag 0.
    [[nodiscard]] bool tags_clear(uint64_t page, uint64_t count) const;
    [[nodiscard]] uint16_t* span_tag_of(uint64_t page) const {
        return span_tags + ((page >> kTagSpanOrder) - (first_page >> kTagSpanOrder));
    }
};

// Holds the allocator's lock for a scope that may change the free lists; a damaged free-list
// link noted meanwhile is reported (CorruptMetadata) once the lock is released.
class PageFrameAllocator::Locked {
public:
    explicit Locked(PageFrameAllocator& pfa, const void* call_site = nullptr)
        : m_pfa(pfa), m_call_site(call_site), m_previous(m_pfa.m_lock.lock()) {}
    ~Locked() {
        const uint64_t corrupt = m_pfa.m_corrupt_link;
        m_pfa.m_corrupt_link = kNoPage;
        m_pfa.m_lock.unlock(m_previous);
        if (corrupt != kNoPage) [[unlikely]] {
            platform::report_error(ErrorReport{
                ErrorKind::CorruptMetadata,
                "pfa",
                corrupt << kPageShift,
                0,
                m_call_site,
                "a free-list link in this free page is damaged (the page was written after it was "
                "freed): not followed, the list was rebuilt from its bitmap",
                0,
                0,
                {},
                {}});
        }
    }
    Locked(const Locked&) = delete;
    Locked& operator=(const Locked&) = delete;

private:
    PageFrameAllocator& m_pfa;
    const void* m_call_site;
    platform::InterruptState m_previous; // the interrupt mask the lock saved
};

static_assert(kOrderCount <= 32, "nonempty_orders is a 32-bit mask");
static_assert(kMaxOrder + kPageShift < 64, "a maximum block is addressable");

} // namespace bedrock
