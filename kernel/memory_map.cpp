// SPDX-License-Identifier: MIT
// Range arithmetic for the memory map; see memory_map.h for the contract.
//
// Internally every range is handled as an inclusive interval [first, last] so that a range
// ending at 2^64 - 1 needs no special case: nothing here computes base + size.
#include "kernel/memory_map.h"

namespace bedrock::kernel {
namespace {

constexpr uint64_t kPageMask = kPageSize - 1;

PhysRange from_inclusive(uint64_t first, uint64_t last) {
    return {first, last - first + 1};
}

void sort_by_base(PhysRange* ranges, size_t count) {
    for (size_t i = 1; i < count; ++i) {
        const PhysRange moving = ranges[i];
        size_t j = i;
        while (j > 0 && ranges[j - 1].base > moving.base) {
            ranges[j] = ranges[j - 1];
            --j;
        }
        ranges[j] = moving;
    }
}

size_t drop_empty(PhysRange* ranges, size_t count) {
    size_t kept = 0;
    for (size_t i = 0; i < count; ++i) {
        if (ranges[i].size != 0) {
            ranges[kept++] = ranges[i];
        }
    }
    return kept;
}

// Widens each range outward to page boundaries.
void expand_to_pages(PhysRange* ranges, size_t count) {
    for (size_t i = 0; i < count; ++i) {
        const uint64_t first = ranges[i].base & ~kPageMask;
        const uint64_t last = ranges[i].last() | kPageMask;
        ranges[i] = from_inclusive(first, last);
    }
}

// Shrinks [first, last] inward to whole pages; false if no whole page remains.
bool shrink_to_pages(uint64_t& first, uint64_t& last) {
    if ((first & kPageMask) != 0) {
        const uint64_t rounded = (first | kPageMask) + 1; // wraps to 0 past the top
        if (rounded == 0) {
            return false;
        }
        first = rounded;
    }
    if ((last & kPageMask) != kPageMask) {
        if (last < kPageSize) {
            return false;
        }
        last = (last & ~kPageMask) - 1;
    }
    return first <= last;
}

} // namespace

size_t sort_and_merge(PhysRange* ranges, size_t count) {
    count = drop_empty(ranges, count);
    if (count == 0) {
        return 0;
    }
    sort_by_base(ranges, count);
    size_t merged = 0;
    for (size_t i = 1; i < count; ++i) {
        PhysRange& current = ranges[merged];
        const PhysRange& next = ranges[i];
        // Touching means next.base == current.last() + 1; written without the +1 overflow.
        if (next.base <= current.last() || next.base - 1 == current.last()) {
            if (next.last() > current.last()) {
                current = from_inclusive(current.base, next.last());
            }
        } else {
            ranges[++merged] = next;
        }
    }
    return merged + 1;
}

UsableRanges compute_usable_ranges(PhysRange* ram, size_t& ram_count, PhysRange* reserved,
                                   size_t& reserved_count, PhysRange* usable, size_t capacity) {
    ram_count = sort_and_merge(ram, ram_count);
    reserved_count = drop_empty(reserved, reserved_count);
    expand_to_pages(reserved, reserved_count);
    reserved_count = sort_and_merge(reserved, reserved_count);

    UsableRanges result;
    size_t next_reserved = 0;
    const auto emit = [&](uint64_t first, uint64_t last) {
        if (!shrink_to_pages(first, last)) {
            return;
        }
        if (result.count == capacity) {
            result.overflow = true;
            return;
        }
        usable[result.count++] = from_inclusive(first, last);
    };

    for (size_t i = 0; i < ram_count; ++i) {
        uint64_t first = ram[i].base;
        const uint64_t last = ram[i].last();
        // Reserved ranges wholly before this RAM range cannot affect it or any later one.
        while (next_reserved < reserved_count && reserved[next_reserved].last() < first) {
            ++next_reserved;
        }
        bool remainder = true;
        for (size_t r = next_reserved; r < reserved_count && reserved[r].base <= last; ++r) {
            if (reserved[r].base > first) {
                emit(first, reserved[r].base - 1);
            }
            if (reserved[r].last() >= last) {
                remainder = false;
                break;
            }
            first = reserved[r].last() + 1;
        }
        if (remainder) {
            emit(first, last);
        }
    }
    return result;
}

size_t clip_ranges(PhysRange* ranges, size_t count, uint64_t limit) {
    size_t kept = 0;
    for (size_t i = 0; i < count; ++i) {
        if (ranges[i].size == 0 || ranges[i].base >= limit) {
            continue;
        }
        ranges[kept] = ranges[i];
        if (ranges[i].last() >= limit) {
            ranges[kept].size = limit - ranges[i].base;
        }
        ++kept;
    }
    return kept;
}

CutRanges cut_out_ranges(PhysRange* ranges, size_t count, size_t capacity, const PhysRange* holes,
                         size_t hole_count) {
    CutRanges result{count, false};
    for (size_t h = 0; h < hole_count; ++h) {
        const PhysRange& hole = holes[h];
        size_t i = 0;
        while (i < result.count) {
            const PhysRange range = ranges[i];
            if (!ranges_overlap(range, hole)) {
                ++i;
                continue;
            }
            const bool below = range.base < hole.base;
            const bool above = range.last() > hole.last();
            const PhysRange upper{hole.last() + 1, range.last() - hole.last()};
            if (below) {
                ranges[i++].size = hole.base - range.base;
                if (above) {
                    if (result.count < capacity) {
                        ranges[result.count++] = upper;
                    } else {
                        result.overflow = true;
                    }
                }
            } else if (above) {
                ranges[i++] = upper;
            } else {
                ranges[i] = ranges[--result.count]; // wholly inside: the last range takes its place
            }
        }
    }
    return result;
}

uint64_t total_bytes(const PhysRange* ranges, size_t count) {
    uint64_t total = 0;
    for (size_t i = 0; i < count; ++i) {
        const uint64_t room = ~uint64_t{0} - total;
        total = ranges[i].size > room ? ~uint64_t{0} : total + ranges[i].size;
    }
    return total;
}

} // namespace bedrock::kernel
