// SPDX-License-Identifier: MIT
// PhysRange: a range of physical addresses, the unit in which firmware describes memory and in
// which the page frame allocator receives it.
//
// Invariants: size > 0 and base + size - 1 does not overflow, so a range may end exactly at the
// top of the 64-bit address space (base = 2^64 - 4096, size = 4096). Code that needs the end
// uses last() (inclusive) rather than base + size, which would wrap to 0 there.
#pragma once

#include <stdint.h>

namespace bedrock {

using PhysAddr = uint64_t;

inline constexpr uint64_t kPageSize = 4096;
inline constexpr unsigned kPageShift = 12;
static_assert(kPageSize == (uint64_t{1} << kPageShift));

struct PhysRange {
    PhysAddr base = 0;
    uint64_t size = 0;

    [[nodiscard]] constexpr PhysAddr last() const { return base + (size - 1); }
    [[nodiscard]] constexpr bool contains(PhysAddr address) const {
        return address >= base && address - base < size;
    }
    [[nodiscard]] constexpr uint64_t page_count() const { return size >> kPageShift; }

    friend constexpr bool operator==(const PhysRange&, const PhysRange&) = default;
};

} // namespace bedrock
