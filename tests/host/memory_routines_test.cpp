// SPDX-License-Identifier: MIT
// Host tests of the freestanding memory routines (bedrock/memory_routines.h) against the C
// library's: every size up to 80 bytes at every source and destination misalignment within two
// words, memmove over overlaps in both directions, and memcmp's sign at every position. Under
// the host-asan build (UndefinedBehaviorSanitizer) a word load of a type the compiler takes as
// 8-byte aligned, at an address that is not, fails the run: clang once dropped the aligned(1)
// and may_alias attributes of the routines' word types.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "bedrock/memory_routines.h"

namespace bedrock {
namespace {

constexpr size_t kMaxSize = 80;
constexpr size_t kMaxOffset = 16;
constexpr size_t kBuffer = kMaxSize + 2 * kMaxOffset;

// A buffer of distinct bytes (a pattern that no shift maps onto itself within it).
std::vector<unsigned char> pattern(size_t bytes, unsigned seed) {
    std::vector<unsigned char> out(bytes);
    for (size_t i = 0; i < bytes; ++i) {
        out[i] = static_cast<unsigned char>(i * 7 + seed * 13 + 1);
    }
    return out;
}

TEST(MemoryRoutines, CopyAndSetMatchTheCLibraryAtEveryMisalignment) {
    for (size_t size = 0; size <= kMaxSize; ++size) {
        for (size_t from = 0; from < kMaxOffset; ++from) {
            for (size_t to = 0; to < kMaxOffset; ++to) {
                const std::vector<unsigned char> source = pattern(kBuffer, 1);
                std::vector<unsigned char> mine = pattern(kBuffer, 2);
                std::vector<unsigned char> theirs = mine;
                EXPECT_EQ(bedrock_memcpy(mine.data() + to, source.data() + from, size),
                          mine.data() + to);
                memcpy(theirs.data() + to, source.data() + from, size);
                ASSERT_EQ(mine, theirs) << "memcpy " << size << " from +" << from << " to +" << to;
                EXPECT_EQ(bedrock_memset(mine.data() + to, 0xa5, size), mine.data() + to);
                memset(theirs.data() + to, 0xa5, size);
                ASSERT_EQ(mine, theirs) << "memset " << size << " at +" << to;
            }
        }
    }
}

TEST(MemoryRoutines, MoveMatchesTheCLibraryOverEveryOverlap) {
    for (size_t size = 0; size <= kMaxSize; ++size) {
        for (size_t from = 0; from <= 2 * kMaxOffset; ++from) {
            for (size_t to = 0; to <= 2 * kMaxOffset; ++to) {
                std::vector<unsigned char> mine = pattern(kBuffer, 3);
                std::vector<unsigned char> theirs = mine;
                EXPECT_EQ(bedrock_memmove(mine.data() + to, mine.data() + from, size),
                          mine.data() + to);
                memmove(theirs.data() + to, theirs.data() + from, size);
                ASSERT_EQ(mine, theirs) << "memmove " << size << " from +" << from << " to +" << to;
            }
        }
    }
}

int sign(int value) {
    return (value > 0) - (value < 0);
}

TEST(MemoryRoutines, CompareGivesTheCLibrarysSignAtEveryPosition) {
    for (size_t size = 1; size <= kMaxSize; ++size) {
        const std::vector<unsigned char> content = pattern(size, 4);
        for (size_t offset = 0; offset < kMaxOffset; ++offset) {
            // The operands at different misalignments.
            std::vector<unsigned char> left(kBuffer);
            std::vector<unsigned char> right(kBuffer);
            unsigned char* a = left.data() + offset;
            unsigned char* b = right.data() + (offset + 3) % kMaxOffset;
            memcpy(a, content.data(), size);
            memcpy(b, content.data(), size);
            EXPECT_EQ(bedrock_memcmp(a, b, size), 0) << size << " +" << offset;
            for (size_t at = 0; at < size; ++at) {
                a[at] = 0x80; // above every byte as unsigned, below as signed
                b[at] = 0x7f;
                EXPECT_EQ(sign(bedrock_memcmp(a, b, size)), sign(memcmp(a, b, size)))
                    << size << " +" << offset << " at " << at;
                EXPECT_EQ(sign(bedrock_memcmp(b, a, size)), sign(memcmp(b, a, size)));
                a[at] = content[at];
                b[at] = content[at];
            }
        }
    }
}

} // namespace
} // namespace bedrock
