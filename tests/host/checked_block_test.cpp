// SPDX-License-Identifier: MIT
// The word-at-a-time poison and red-zone scans of checked mode (alloc/checked_block.h) against
// a byte-by-byte reference, for every alignment of both ends and every damaged position.
#include <gtest/gtest.h>

#include "checked/checked_block.h"

namespace bedrock::heap {
namespace {

TEST(CheckedBlockScan, MatchesByteByByteScanAtEveryAlignment) {
    alignas(64) unsigned char buffer[80];
    for (size_t begin = 0; begin < 16; ++begin) {
        for (size_t end = begin; end <= 64; ++end) {
            for (size_t damaged = begin; damaged <= end; ++damaged) { // == end: undamaged
                __builtin_memset(buffer, kRedZoneFill, sizeof(buffer));
                if (damaged < end) {
                    buffer[damaged] = 0;
                }
                const size_t first = damaged - begin;
                const size_t last_end = damaged < end ? damaged + 1 - begin : 0;
                ASSERT_EQ(first_unlike(buffer + begin, buffer + end, kRedZoneFill), first)
                    << begin << " " << end << " " << damaged;
                ASSERT_EQ(last_unlike_end(buffer + begin, buffer + end, kRedZoneFill), last_end)
                    << begin << " " << end << " " << damaged;
            }
        }
    }
}

TEST(CheckedBlockScan, FindsTheOutermostDamage) {
    alignas(64) unsigned char buffer[64];
    __builtin_memset(buffer, kFreedPoison, sizeof(buffer));
    buffer[9] = 1;
    buffer[50] = 1;
    EXPECT_EQ(first_unlike(buffer + 1, buffer + 63, kFreedPoison), 8u);
    EXPECT_EQ(last_unlike_end(buffer + 1, buffer + 63, kFreedPoison), 50u);
}

} // namespace
} // namespace bedrock::heap
