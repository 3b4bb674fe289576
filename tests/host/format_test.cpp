// SPDX-License-Identifier: MIT
// Host tests of the kernel's printf engine (kernel/format.cpp).
#include <gtest/gtest.h>

#include <string>

#include "kernel/format.h"

namespace bedrock::kernel {
namespace {

// The tests pass format strings through a template on purpose, and some test what the engine
// does with formats the compiler would reject.
#pragma clang diagnostic ignored "-Wformat-security"
#pragma clang diagnostic ignored "-Wformat"

template <class... Args>
std::string formatted(const char* text, Args... args) {
    char buffer[128];
    const size_t length = format(buffer, sizeof(buffer), text, args...);
    EXPECT_EQ(length, std::string(buffer).size());
    return buffer;
}

TEST(Format, Integers) {
    EXPECT_EQ(formatted("%d %i %u", -5, 17, 4000000000u), "-5 17 4000000000");
    EXPECT_EQ(formatted("%ld %lu", -9000000000L, 18000000000UL), "-9000000000 18000000000");
    EXPECT_EQ(formatted("%lld", static_cast<long long>(INT64_MIN)), "-9223372036854775808");
    EXPECT_EQ(formatted("%zu", size_t{123}), "123");
}

TEST(Format, HexAndPointers) {
    EXPECT_EQ(formatted("%x %X %lx", 0xbeefu, 0xbeefu, 0x123456789abcUL), "beef BEEF 123456789abc");
    EXPECT_EQ(formatted("%p", reinterpret_cast<void*>(0x1000)), "0x1000");
}

TEST(Format, WidthsAndFlags) {
    EXPECT_EQ(formatted("[%5d]", 42), "[   42]");
    EXPECT_EQ(formatted("[%-5d]", 42), "[42   ]");
    EXPECT_EQ(formatted("[%05d]", -42), "[-0042]");
    EXPECT_EQ(formatted("[%016lx]", 0xabcUL), "[0000000000000abc]");
    EXPECT_EQ(formatted("[%*s]", 4, "a"), "[   a]");
    EXPECT_EQ(formatted("[%-3s]", "ab"), "[ab ]");
}

TEST(Format, StringsCharactersAndPercent) {
    EXPECT_EQ(formatted("%s/%c/%%", "x", 'y'), "x/y/%");
    EXPECT_EQ(formatted("%s", static_cast<const char*>(nullptr)), "(null)");
}

TEST(Format, UnknownConversionIsPrintedVerbatim) {
    EXPECT_EQ(formatted("a %q b"), "a %q b");
    EXPECT_EQ(formatted("trailing %"), "trailing %");
}

TEST(Format, TruncatesButReportsFullLength) {
    char buffer[4];
    EXPECT_EQ(format(buffer, sizeof(buffer), "%s", "abcdef"), 6u);
    EXPECT_STREQ(buffer, "abc");
}

} // namespace
} // namespace bedrock::kernel
