// SPDX-License-Identifier: MIT
// Bit and alignment helpers every layer uses, written once: powers of two, rounding to an
// alignment, logarithms, bit scans and counts. All constexpr, no state, and nothing that needs a
// runtime library (libgcc, compiler-rt).
//
// Preconditions are stated per function; the ones on `alignment` (a power of two) are not
// checked here, so callers assert them where the value comes from outside.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace bedrock {

// Whether `value` is 1, 2, 4, ... (0 is not a power of two). value ^ (value - 1) sets the bits up
// to and including the lowest set bit, which exceeds value - 1 exactly when no higher bit is set;
// for 0 both sides are all ones. Three instructions: clang turns the usual
// `value != 0 && (value & (value - 1)) == 0`, negated next to a test for 0 (as in
// `alignment != 0 && !is_power_of_two(alignment)`), into a population count, which it writes out
// in some 20 instructions on x86-64 without POPCNT.
[[nodiscard]] constexpr bool is_power_of_two(uint64_t value) {
    return (value ^ (value - 1)) > value - 1;
}

// The largest multiple of `alignment` (a power of two) that is <= value.
[[nodiscard]] constexpr uint64_t align_down(uint64_t value, uint64_t alignment) {
    return value & ~(alignment - 1);
}

// The smallest multiple of `alignment` (a power of two) that is >= value. Precondition: that
// multiple is representable (value <= UINT64_MAX - alignment + 1).
[[nodiscard]] constexpr uint64_t align_up(uint64_t value, uint64_t alignment) {
    return (value + alignment - 1) & ~(alignment - 1);
}

// Whether `value` is a multiple of `alignment` (a power of two).
[[nodiscard]] constexpr bool is_aligned(uint64_t value, uint64_t alignment) {
    return (value & (alignment - 1)) == 0;
}

// floor(log2(value)). Precondition: value != 0.
[[nodiscard]] constexpr unsigned floor_log2(uint64_t value) {
    return 63u - static_cast<unsigned>(__builtin_clzll(value));
}

// ceil(log2(value)). Precondition: value != 0.
[[nodiscard]] constexpr unsigned ceil_log2(uint64_t value) {
    return value == 1 ? 0u : floor_log2(value - 1) + 1;
}

// The index of the lowest set bit. Precondition: value != 0.
[[nodiscard]] constexpr unsigned lowest_set_bit(uint64_t value) {
    return static_cast<unsigned>(__builtin_ctzll(value));
}

// The number of set bits.
// Written out (the classic SWAR sum) rather than __builtin_popcountll, which gcc compiles to
// a call into libgcc (__popcountdi2) on targets without a popcount instruction: Bedrock needs
// no runtime library. Off the hot paths (checks and statistics).
[[nodiscard]] constexpr unsigned popcount(uint64_t value) {
    value -= (value >> 1) & 0x5555'5555'5555'5555u;
    value = (value & 0x3333'3333'3333'3333u) + ((value >> 2) & 0x3333'3333'3333'3333u);
    value = (value + (value >> 4)) & 0x0F0F'0F0F'0F0F'0F0Fu;
    return static_cast<unsigned>((value * 0x0101'0101'0101'0101u) >> 56);
}

// ceil(value / divisor). Precondition: divisor != 0.
[[nodiscard]] constexpr uint64_t divide_rounding_up(uint64_t value, uint64_t divisor) {
    return value / divisor + (value % divisor != 0 ? 1 : 0);
}

static_assert(is_power_of_two(1) && is_power_of_two(uint64_t{1} << 63) && !is_power_of_two(0) &&
              !is_power_of_two(48));
static_assert(align_up(17, 16) == 32 && align_up(32, 16) == 32 && align_down(31, 16) == 16);
static_assert(floor_log2(1) == 0 && floor_log2(255) == 7 && floor_log2(256) == 8 &&
              floor_log2(~uint64_t{0}) == 63);
static_assert(ceil_log2(1) == 0 && ceil_log2(256) == 8 && ceil_log2(257) == 9);
static_assert(!is_power_of_two(0) && is_power_of_two(1) && is_power_of_two(uint64_t{1} << 63) &&
              !is_power_of_two(3) && !is_power_of_two(~uint64_t{0}) && !is_power_of_two(0x50));
static_assert(lowest_set_bit(0x50) == 4 && popcount(0xF0F0) == 8 && popcount(0) == 0 &&
              popcount(~uint64_t{0}) == 64 && popcount(uint64_t{1} << 63 | 1) == 2);
static_assert(divide_rounding_up(1025, 1024) == 2 && divide_rounding_up(1024, 1024) == 1);

} // namespace bedrock
