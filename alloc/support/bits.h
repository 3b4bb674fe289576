// SPDX-License-Identifier: MIT
// Bit and alignment helpers every layer uses, written once: powers of two, rounding to an
// alignment, logarithms, bit scans and counts, and masks built from bits (spread, runs). All
// constexpr, no state, and nothing that needs a runtime library (libgcc, compiler-rt).
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

// The mask of the low `count` bits (count <= 64).
[[nodiscard]] constexpr uint64_t low_bits(unsigned count) {
    return count >= 64 ? ~uint64_t{0} : (uint64_t{1} << count) - 1;
}

// Bits 0, n, 2n, ... set, for `n` a power of two up to 64: ~0 / (2^n - 1) repeats 1 every n bits.
[[nodiscard]] constexpr uint64_t every_nth_bit(uint64_t n) {
    return n >= 64 ? 1 : ~uint64_t{0} / ((uint64_t{1} << n) - 1);
}

// Each of the low `width` bits of `value` twice: bit i becomes bits 2i and 2i + 1. Precondition:
// width <= 32 and the bits of `value` from `width` up are clear. The interleave moves bit i to
// 2i in halving steps (bits 16-31 up by 16, then each 8-bit group ...); a step that has no bit
// to move is left out, so a constant `width` costs 3 instructions per halving of it.
[[nodiscard]] constexpr uint64_t double_each_bit(uint64_t value, unsigned width) {
    if (width > 16) {
        value = (value | value << 16) & 0x0000'FFFF'0000'FFFFu;
    }
    if (width > 8) {
        value = (value | value << 8) & 0x00FF'00FF'00FF'00FFu;
    }
    if (width > 4) {
        value = (value | value << 4) & 0x0F0F'0F0F'0F0F'0F0Fu;
    }
    if (width > 2) {
        value = (value | value << 2) & 0x3333'3333'3333'3333u;
    }
    if (width > 1) {
        value = (value | value << 1) & 0x5555'5555'5555'5555u;
    }
    return value | value << 1;
}

// The starts of `length` set bits in a row in the 128-bit value high:low (bits above it clear):
// bit i (0 <= i < 64) of the result is set when bits i .. i + length - 1 all are. Precondition:
// 1 <= length <= 64. Each step ANDs the value with itself shifted by at most the length covered
// so far, so the covered length doubles: ceil(log2(length)) steps.
[[nodiscard]] constexpr uint64_t starts_of_set_runs(uint64_t low, uint64_t high, unsigned length) {
    for (unsigned covered = 1; covered < length;) {
        const unsigned shift = 2 * covered <= length ? covered : length - covered;
        low &= low >> shift | high << (64 - shift);
        high &= high >> shift;
        covered += shift;
    }
    return low;
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
static_assert(low_bits(0) == 0 && low_bits(3) == 7 && low_bits(64) == ~uint64_t{0});
static_assert(every_nth_bit(1) == ~uint64_t{0} && every_nth_bit(4) == 0x1111'1111'1111'1111u &&
              every_nth_bit(32) == 0x0000'0001'0000'0001u && every_nth_bit(64) == 1);
static_assert(double_each_bit(0b101, 3) == 0b110011 && double_each_bit(1, 1) == 0b11 &&
              double_each_bit(0xFFFF'FFFFu, 32) == ~uint64_t{0} &&
              double_each_bit(uint64_t{1} << 31, 32) == uint64_t{0b11} << 62);
static_assert(starts_of_set_runs(0b0111'0110, 0, 3) == 0b0001'0000 &&
              starts_of_set_runs(~uint64_t{0}, 0, 64) == 1 &&
              starts_of_set_runs(uint64_t{0b11} << 62, 1, 3) == uint64_t{1} << 62 &&
              starts_of_set_runs(0b1010, 0, 1) == 0b1010);

} // namespace bedrock
