// SPDX-License-Identifier: MIT
// Compiler-runtime helpers that clang emits calls to and that Debian ships no freestanding
// library for on these targets: 128-bit division (__udivti3 and friends). Restoring division,
// one quotient bit per step: O(128) iterations, used only off hot paths.
#include "kernel/compiler_runtime.h"

namespace {

using u128 = unsigned __int128;
using i128 = __int128;

// Returns numerator / denominator and stores the remainder. Division by zero traps like the
// hardware instruction would.
u128 divide(u128 numerator, u128 denominator, u128& remainder) {
    if (denominator == 0) {
        __builtin_trap();
    }
    u128 quotient = 0;
    u128 rest = 0;
    for (int bit = 127; bit >= 0; --bit) {
        rest = (rest << 1) | ((numerator >> bit) & 1);
        if (rest >= denominator) {
            rest -= denominator;
            quotient |= u128{1} << bit;
        }
    }
    remainder = rest;
    return quotient;
}

u128 magnitude(i128 value) {
    return value < 0 ? u128{0} - static_cast<u128>(value) : static_cast<u128>(value);
}

} // namespace

extern "C" {

u128 __udivti3(u128 numerator, u128 denominator) {
    u128 remainder;
    return divide(numerator, denominator, remainder);
}

u128 __umodti3(u128 numerator, u128 denominator) {
    u128 remainder;
    divide(numerator, denominator, remainder);
    return remainder;
}

i128 __divti3(i128 numerator, i128 denominator) {
    u128 remainder;
    const u128 quotient = divide(magnitude(numerator), magnitude(denominator), remainder);
    const bool negative = (numerator < 0) != (denominator < 0);
    return static_cast<i128>(negative ? u128{0} - quotient : quotient);
}

i128 __modti3(i128 numerator, i128 denominator) {
    u128 remainder;
    divide(magnitude(numerator), magnitude(denominator), remainder);
    // The remainder takes the sign of the numerator, as in C.
    return static_cast<i128>(numerator < 0 ? u128{0} - remainder : remainder);
}

} // extern "C"
