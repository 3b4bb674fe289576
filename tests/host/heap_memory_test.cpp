// HeapMemory (alloc/heap_memory.h): which addresses free() may look behind. Each test runs in a
// process of its own (one CTest test per case), so the global ranges start empty or nearly so;
// the addresses used are far from anything this process maps.
#include <gtest/gtest.h>

#include "heap/heap_memory.h"

namespace bedrock::heap {
namespace {

constexpr uintptr_t kBase = uintptr_t{0x7e00} << 32;

const void* at(uintptr_t address) {
    return reinterpret_cast<const void*>(address);
}

TEST(HeapMemory, RangesAndTheHolesBetweenThem) {
    HeapMemory::add(kBase, 0x10000);
    HeapMemory::add(kBase + 0x100000, 0x20000);
    EXPECT_TRUE(HeapMemory::contains(at(kBase)));
    EXPECT_TRUE(HeapMemory::contains(at(kBase + 0xFFFF)));
    EXPECT_FALSE(HeapMemory::contains(at(kBase + 0x10000))) << "one past the end";
    EXPECT_FALSE(HeapMemory::contains(at(kBase + 0x80000))) << "the hole";
    EXPECT_TRUE(HeapMemory::contains(at(kBase + 0x11FFFF)));
    EXPECT_FALSE(HeapMemory::contains(at(kBase - 1)));
    HeapMemory::add(kBase + 0x1000, 0x1000); // covered already: nothing changes
    HeapMemory::add(kBase, 0);
    EXPECT_FALSE(HeapMemory::contains(at(kBase + 0x80000)));
}

TEST(HeapMemory, BeyondCapacityTheLastRangeGrowsAndNothingIsLost) {
    for (uintptr_t i = 0; i < HeapMemory::kMaxRanges + 4; ++i) {
        HeapMemory::add(kBase + i * 0x100000, 0x1000);
    }
    for (uintptr_t i = 0; i < HeapMemory::kMaxRanges + 4; ++i) {
        EXPECT_TRUE(HeapMemory::contains(at(kBase + i * 0x100000 + 0xFFF))) << i;
    }
    EXPECT_FALSE(HeapMemory::contains(at(kBase + 0x80000))) << "holes among the first ranges";
}

} // namespace
} // namespace bedrock::heap
