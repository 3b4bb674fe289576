// Power-of-two arithmetic, written once: every layer uses these instead of spelling out the
// masks. Pure constexpr functions, no state.
// Preconditions: `alignment` is a power of two; floor_log2 needs value > 0; align_up must not
// overflow (value + alignment - 1 fits in 64 bits).
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace bedrock {

[[nodiscard]] constexpr bool is_power_of_two(uint64_t value) {
    return value != 0 && (value & (value - 1)) == 0;
}

// The largest multiple of `alignment` at or below `value`.
[[nodiscard]] constexpr uint64_t align_down(uint64_t value, uint64_t alignment) {
    return value & ~(alignment - 1);
}

// The smallest multiple of `alignment` at or above `value`.
[[nodiscard]] constexpr uint64_t align_up(uint64_t value, uint64_t alignment) {
    return (value + alignment - 1) & ~(alignment - 1);
}

// floor(log2(value)): the index of the highest set bit.
[[nodiscard]] constexpr unsigned floor_log2(uint64_t value) {
    return 63u - static_cast<unsigned>(__builtin_clzll(value));
}

// ceil(log2(value)): the smallest k with 2^k >= value (0 for value <= 1).
[[nodiscard]] constexpr unsigned ceil_log2(uint64_t value) {
    return value <= 1 ? 0 : floor_log2(value - 1) + 1;
}

} // namespace bedrock
