// SPDX-License-Identifier: MIT
// The memory map: turns the firmware's RAM ranges and the reserved ranges into the usable
// ranges that the page frame allocator receives.
//
//   usable = pages(RAM) - pages(reserved), sorted by address, merged, page-aligned
//
// RAM ranges shrink inward to whole pages (a partial page is not usable); reserved ranges grow
// outward to whole pages (a page partly reserved is reserved). Inputs may be unsorted,
// overlapping, adjacent, unaligned, and may end at the top of the 64-bit address space.
// Output invariants: every range is page-aligned at both ends and non-empty; ranges are sorted
// and neither overlap nor touch (touching ranges are merged).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/phys_range.h"

namespace bedrock::kernel {

struct UsableRanges {
    size_t count = 0;
    bool overflow = false; // `capacity` was too small; the first `count` ranges are valid
};

// Computes the usable ranges into `usable[0..capacity)`. Sorts and merges `ram` and `reserved`
// in place (their counts may shrink: the new counts are written back). A capacity of
// ram_count + reserved_count always suffices. Time: O((n + m)^2) for the sorts, fine for the
// hundreds of ranges firmware reports.
[[nodiscard]] UsableRanges compute_usable_ranges(PhysRange* ram, size_t& ram_count,
                                                 PhysRange* reserved, size_t& reserved_count,
                                                 PhysRange* usable, size_t capacity);

// Drops empty ranges, sorts by base and merges overlapping or touching ones, in place. Returns the
// new count.
size_t sort_and_merge(PhysRange* ranges, size_t count);

// Cuts the ranges at `limit`: one that starts at or above it is dropped, one that reaches past it
// ends there. Keeps their order; returns the new count. O(count).
size_t clip_ranges(PhysRange* ranges, size_t count, uint64_t limit);

// Whether `a` and `b` share a byte (empty ranges share none). Ranges may end at 2^64 - 1.
constexpr bool ranges_overlap(const PhysRange& a, const PhysRange& b) {
    return a.size != 0 && b.size != 0 && a.base <= b.last() && b.base <= a.last();
}

// What cut_out_ranges() left: the first `count` ranges; `overflow` when a range split in two
// found no room (`capacity`) for its upper part, which is then dropped.
struct CutRanges {
    size_t count = 0;
    bool overflow = false;
};

// Removes every byte of `holes[0..hole_count)` from `ranges[0..count)`, in place, byte-exact: a
// range inside a hole is dropped, one across a hole's edge shrinks to the part outside, one
// around a hole keeps its lower part and adds its upper part at the end (if `capacity` has room).
// Ranges may end at 2^64 - 1. O(hole_count * count).
[[nodiscard]] CutRanges cut_out_ranges(PhysRange* ranges, size_t count, size_t capacity,
                                       const PhysRange* holes, size_t hole_count);

// Sum of the sizes (saturating at 2^64 - 1).
[[nodiscard]] uint64_t total_bytes(const PhysRange* ranges, size_t count);

} // namespace bedrock::kernel
