// PageTag: what a heap writes in the page frame allocator's tag of every page it holds
// (PageFrameAllocator::page_tag), so that any address leads to the run that holds it - an
// arena or a large block - from allocator metadata alone, never from memory near the address.
//
// A tag is 16 bits: kind (3 bits) | value (13 bits). Runs are tagged page by page when taken and
// set back to 0 (None) before their pages are freed:
//
//   arena of 2^k pages:   [ Arena k | Arena k | ... | Arena k ]      naturally aligned: its base
//                                                                    is the page & ~(2^k pages - 1)
//   large run of n >= 3:  [ LargeHead id | LengthLow n%8192 | LengthHigh n/8192 | Body | Body ... ]
//
// So every page of a run carries a tag that leads to the run in O(1) - an arena's page by its
// alignment, a large run's head page or length pages by their kind - except a large run's body
// pages, whose head is found by walking back to it (only an interior pointer into a large block
// goes there: a report, O(pages)). Equal tags make tagging a run a fill. A large run's head names
// its heap by the heap's owner id (owner_ids.h: heaps over one page frame allocator share its
// tags) and whether its block is a checked-mode block.
// Invariant: a page held by no heap has tag 0; every page of a run carries exactly the tags
// above, written by the part that took the run before the run is used.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace bedrock::heap {

enum class PageKind : uint16_t {
    None = 0,
    Arena = 1, // value: log2 of the arena's pages
    Unused = 2,
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
// so tagging a run costs about pages / 4 stores. Each store is atomic (relaxed): lock-free readers
// see a tag either before or after.
inline void fill_tags(uint16_t* tags, uint64_t count, uint16_t tag) {
    uint64_t index = 0;
    for (; index < count && reinterpret_cast<uintptr_t>(&tags[index]) % 8 != 0; ++index) {
        __atomic_store_n(&tags[index], tag, __ATOMIC_RELAXED);
    }
    const uint64_t pattern = uint64_t{tag} * 0x0001000100010001u;
    for (; index + 4 <= count; index += 4) {
        __atomic_store_n(reinterpret_cast<uint64_t*>(&tags[index]), pattern, __ATOMIC_RELAXED);
    }
    for (; index < count; ++index) {
        __atomic_store_n(&tags[index], tag, __ATOMIC_RELAXED);
    }
}

static_assert(tag_kind(make_tag(PageKind::LargeBody, 0)) == PageKind::LargeBody);
static_assert(tag_value(large_run_tag(1, 8193, 1, RunUse::Plain)) == 1);
static_assert(tag_value(large_run_tag(2, 8193, 1, RunUse::Plain)) == 1);

} // namespace bedrock::heap
