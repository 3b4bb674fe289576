// SPDX-License-Identifier: MIT
// In-kernel tests of the freestanding runtime: the memory routines the compiler calls, the
// 128-bit division helpers, static constructors and function-local statics.
#include <stdint.h>

#include "bedrock/memory_routines.h"
#include "kernel/format.h"
#include "kernel/test_registry.h"

namespace {

// Set by a static constructor: proves .init_array ran before the tests.
struct ConstructedAtBoot {
    ConstructedAtBoot() : value(0x5eed) {}
    volatile uint32_t value;
};
ConstructedAtBoot g_constructed_at_boot;

unsigned g_local_static_inits = 0;

unsigned local_static_value() {
    static const unsigned value = ++g_local_static_inits + 41;
    return value;
}

} // namespace

BEDROCK_TEST(runtime_static_constructors_ran) {
    BEDROCK_EXPECT_EQ(g_constructed_at_boot.value, 0x5eed);
}

BEDROCK_TEST(runtime_function_local_static_initialized_once) {
    BEDROCK_EXPECT_EQ(local_static_value(), 42);
    BEDROCK_EXPECT_EQ(local_static_value(), 42);
    BEDROCK_EXPECT_EQ(g_local_static_inits, 1);
}

BEDROCK_TEST(runtime_memory_routines_every_alignment_and_overlap) {
    static uint8_t buffer[256];
    static uint8_t reference[256];
    for (size_t offset = 0; offset < 16; ++offset) {
        for (size_t length = 0; length < 64; length += 3) {
            for (size_t shift = 0; shift < 24; shift += 5) {
                for (size_t i = 0; i < sizeof(buffer); ++i) {
                    buffer[i] = reference[i] = static_cast<uint8_t>(i * 7 + 1);
                }
                // Reference: element-wise through a temporary copy (overlap-safe).
                uint8_t temporary[64];
                for (size_t i = 0; i < length; ++i) {
                    temporary[i] = reference[offset + i];
                }
                for (size_t i = 0; i < length; ++i) {
                    reference[offset + shift + i] = temporary[i];
                }
                bedrock_memmove(buffer + offset + shift, buffer + offset, length);
                BEDROCK_REQUIRE(bedrock_memcmp(buffer, reference, sizeof(buffer)) == 0);
                bedrock_memmove(buffer + offset, buffer + offset + shift, length);
                bedrock_memcpy(reference + offset, reference + offset + shift, length);
                BEDROCK_REQUIRE(bedrock_memcmp(buffer, reference, sizeof(buffer)) == 0);
            }
            bedrock_memset(buffer + offset, 0xA5, length);
            for (size_t i = 0; i < length; ++i) {
                BEDROCK_REQUIRE(buffer[offset + i] == 0xA5);
            }
        }
    }
    BEDROCK_EXPECT(bedrock_memcmp("abc", "abd", 3) < 0);
    BEDROCK_EXPECT(bedrock_memcmp("abd", "abc", 3) > 0);
    BEDROCK_EXPECT_EQ(bedrock_strlen("bedrock"), 7);
}

BEDROCK_TEST(runtime_128_bit_division) {
    // Values only known at run time, so the compiler must call the helpers.
    volatile unsigned __int128 numerator =
        (static_cast<unsigned __int128>(0x0123456789abcdefULL) << 64) | 0xfedcba9876543210ULL;
    volatile unsigned __int128 denominator = 0x1000000007ULL;
    const unsigned __int128 quotient = numerator / denominator;
    const unsigned __int128 remainder = numerator % denominator;
    BEDROCK_EXPECT(quotient * denominator + remainder == numerator);
    BEDROCK_EXPECT(remainder < denominator);
    volatile __int128 negative = -1000;
    volatile __int128 seven = 7;
    BEDROCK_EXPECT(negative / seven == -142);
    BEDROCK_EXPECT(negative % seven == -6);
}

BEDROCK_TEST(runtime_format_conversions) {
    char text[96];
    const size_t length = bedrock::kernel::format(text, sizeof(text), "%d|%5u|%-4x|%08lx|%s|%zu",
                                                  -12, 34u, 0xabu, 0xdeadUL, "ok", size_t{7});
    BEDROCK_EXPECT(bedrock_memcmp(text, "-12|   34|ab  |0000dead|ok|7", length + 1) == 0);
}
