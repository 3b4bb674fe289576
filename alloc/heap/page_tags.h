// SPDX-License-Identifier: MIT
// PageTag: what a heap writes in the page frame allocator's tag of every page it holds
// (PageFrameAllocator::page_tag), so that any address leads to the run that holds it - an
// arena or a large block - from allocator metadata alone, never from memory near the address.
//
// A tag is 16 bits: kind (3 bits) | value (13 bits). The page frame allocator keeps one per page
// and one per span of 2^kTagSpanOrder pages (64 pages, 256 KiB); the tag that counts for a page
// is its span's when that is not 0, else its own (heap_tag()). Runs are tagged when taken and
// set back to 0 (None) before their pages are freed:
//
//   arena of 2^k pages, k >= 6:  spans [ Arena k | ... | Arena k ]   2^(k-6) span tags; naturally
//                                 pages [ ArenaBase id | 0 | ... | 0 ]  aligned: its base is the
//                                                                       page & ~(2^k pages - 1)
//   arena of 2^k pages, k < 6:   pages [ ArenaBase id | Arena k | ... | Arena k ]  (only when
//                                                                       memory is short)
//   large run of n >= 3:  pages [ LargeHead id | LengthLow n%8192 | LengthHigh n/8192 | Body ... ]
//
// An arena's first page names its heap by the heap's owner id (owner_ids.h), so the heap that owns
// an address is decided from the tags alone, never from the arena's header, which another heap
// or the page frame allocator may be rewriting when the arena is being given back.
// So every page of a run leads to the run in O(1) - an arena's page by its alignment, a large
// run's head page or length pages by their kind - except a large run's body pages, whose head
// is found by walking back to it (only an interior pointer into a large block goes there: a
// report, O(pages)). A 32 MiB arena costs 128 span tags (32 eight-byte stores), not 8,192 page
// tags. Span tags belong only to an owner of whole spans: a large run never writes them, so a
// span holding any page of one, or any free page, has span tag 0. A large run's head names
// its heap by the heap's owner id (owner_ids.h: heaps over one page frame allocator share its
// tags) and whether its block is a checked-mode block.
// Invariant: a page held by no heap has tag 0 and so has its span; every run carries exactly
// the tags above, written by the part that took the run before the run is used.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/page_frame_allocator.h"
#include "support/bits.h"

namespace bedrock::heap {

enum class PageKind : uint16_t {
    None = 0,
    Arena = 1,            // value: log2 of the arena's pages
    ArenaBase = 2,        // an arena's first page; value: its heap's owner id
    LargeHead = 3,        // value: owner id
    LargeCheckedHead = 4, // value: owner id; the block is a checked-mode block
    LargeLengthLow = 5,   // page 1 of a large run: pages % 8192
    LargeLengthHigh = 6,  // page 2: pages / 8192
    LargeBody = 7,        // value: 0
};

inline constexpr unsigned kTagValueBits = 13;
inline constexpr uint16_t kTagValueMask = (1u << kTagValueBits) - 1;
// The largest large run the tags can describe: 2^26 pages (256 GiB).
inline constexpr uint64_t kMaxLargeRunPages = uint64_t{1} << (2 * kTagValueBits);
inline constexpr uint64_t kMinLargeRunPages = 3;

constexpr uint16_t make_tag(PageKind kind, uint32_t value) {
    return static_cast<uint16_t>((static_cast<uint32_t>(kind) << kTagValueBits) |
                                 (value & kTagValueMask));
}
constexpr PageKind tag_kind(uint16_t tag) {
    return static_cast<PageKind>(tag >> kTagValueBits);
}
constexpr uint32_t tag_value(uint16_t tag) {
    return tag & kTagValueMask;
}

// The tag that counts for a page: its span's if set (an arena of whole spans), else its own.
// Two relaxed loads at most; reads only the page frame allocator's tags.
inline uint16_t heap_tag(const PageFrameAllocator::PageTags& tags) {
    const uint16_t span = __atomic_load_n(tags.span, __ATOMIC_RELAXED);
    return span != 0 ? span : __atomic_load_n(tags.page, __ATOMIC_RELAXED);
}

// Whether a page's tag (heap_tag()) says the page is in an arena.
constexpr bool is_arena_tag(uint16_t tag) {
    return tag_kind(tag) == PageKind::Arena || tag_kind(tag) == PageKind::ArenaBase;
}

// The base of the arena an arena tag (is_arena_tag()) names for an address in it: the address
// rounded down to the arena's size (arenas are naturally aligned, see above), or to its page for
// the first page of an arena tagged page by page.
inline uintptr_t arena_base(uintptr_t address, uint16_t tag) {
    const unsigned order = tag_kind(tag) == PageKind::Arena ? tag_value(tag) : 0;
    return align_down(address, uintptr_t{kPageSize} << order);
}

// The tag of the first page of an arena of the heap with `owner_id`.
constexpr uint16_t arena_base_tag(uint16_t owner_id) {
    return make_tag(PageKind::ArenaBase, owner_id);
}

// The tag of the first page of the arena at `base`, which holds `address`, whose tags are
// `tags`: an arena lies in one region, whose page tags are one array. One relaxed load.
inline uint16_t arena_base_tag_of(const PageFrameAllocator::PageTags& tags, uintptr_t address,
                                  uintptr_t base) {
    return __atomic_load_n(tags.page - ((address - base) >> kPageShift), __ATOMIC_RELAXED);
}

// Whose block a large run holds: the heap's own, or checked mode's (free() sends it there).
enum class RunUse : uint8_t { Plain, Checked };

// The tag of page `index` (from 0) of a large run of `pages` owned by `owner_id`.
constexpr uint16_t large_run_tag(uint64_t index, uint64_t pages, uint16_t owner_id, RunUse use) {
    if (index == 0) {
        return make_tag(use == RunUse::Checked ? PageKind::LargeCheckedHead : PageKind::LargeHead,
                        owner_id);
    }
    if (index == 1) {
        return make_tag(PageKind::LargeLengthLow, static_cast<uint32_t>(pages));
    }
    if (index == 2) {
        return make_tag(PageKind::LargeLengthHigh, static_cast<uint32_t>(pages >> kTagValueBits));
    }
    return make_tag(PageKind::LargeBody, 0);
}

// Writes `tag` into `count` consecutive tags: four at a time where the tags are 8-byte aligned,
// so tagging a run costs about pages / 4 stores, and those in fours (a loop step per 16 tags);
// the tags before the first 8-byte boundary and the last ones take one store per power of two
// (a tag, two, then four and eight at the end), not one per tag.
// Each store is atomic (relaxed): lock-free readers see a tag either before or after.
inline void fill_tags(uint16_t* tags, uint64_t count, uint16_t tag) {
    const uint64_t pattern = uint64_t{tag} * 0x0001000100010001u;
    const auto pair = static_cast<uint32_t>(pattern);
    if (reinterpret_cast<uintptr_t>(tags) % 4 != 0 && count != 0) {
        __atomic_store_n(tags, tag, __ATOMIC_RELAXED);
        ++tags;
        --count;
    }
    if (reinterpret_cast<uintptr_t>(tags) % 8 != 0 && count >= 2) {
        __atomic_store_n(reinterpret_cast<uint32_t*>(tags), pair, __ATOMIC_RELAXED);
        tags += 2;
        count -= 2;
    }
    // 8-byte aligned now, unless fewer than two tags are left.
    auto* words = reinterpret_cast<uint64_t*>(tags);
    for (; count >= 16; count -= 16, words += 4) {
        __atomic_store_n(&words[0], pattern, __ATOMIC_RELAXED);
        __atomic_store_n(&words[1], pattern, __ATOMIC_RELAXED);
        __atomic_store_n(&words[2], pattern, __ATOMIC_RELAXED);
        __atomic_store_n(&words[3], pattern, __ATOMIC_RELAXED);
    }
    if ((count & 8) != 0) {
        __atomic_store_n(&words[0], pattern, __ATOMIC_RELAXED);
        __atomic_store_n(&words[1], pattern, __ATOMIC_RELAXED);
        words += 2;
    }
    if ((count & 4) != 0) {
        __atomic_store_n(words, pattern, __ATOMIC_RELAXED);
        ++words;
    }
    tags = reinterpret_cast<uint16_t*>(words);
    if ((count & 2) != 0) {
        __atomic_store_n(reinterpret_cast<uint32_t*>(tags), pair, __ATOMIC_RELAXED);
        tags += 2;
    }
    if ((count & 1) != 0) {
        __atomic_store_n(tags, tag, __ATOMIC_RELAXED);
    }
}

static_assert(tag_kind(make_tag(PageKind::LargeBody, 0)) == PageKind::LargeBody);
static_assert(tag_value(large_run_tag(1, 8193, 1, RunUse::Plain)) == 1);
static_assert(tag_value(large_run_tag(2, 8193, 1, RunUse::Plain)) == 1);

} // namespace bedrock::heap
