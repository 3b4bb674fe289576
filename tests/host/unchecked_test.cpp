// SPDX-License-Identifier: MIT
// Built with BEDROCK_CHECKED=0: checked mode is compiled out. The heap works, refuses every
// level but Off, guard pages stay off, and misuse is still reported (without call traces).
#include <gtest/gtest.h>

#include "bedrock/heap.h"
#include "bedrock/heap_checks.h"
#include "heap_test_support.h"

namespace bedrock {
namespace {

TEST(CheckedModeCompiledOut, HeapWorksAndRefusesCheckLevels) {
    static_assert(!kHeapChecksCompiled);
    test::Region region(4 << 20);
    Heap* heap = heap_create_in_region(region.data(), region.size());
    ASSERT_NE(heap, nullptr);
    EXPECT_FALSE(heap_set_check_level(*heap, CheckLevel::Report));
    EXPECT_FALSE(heap_set_check_level(*heap, CheckLevel::Abort));
    EXPECT_TRUE(heap_set_check_level(*heap, CheckLevel::Off));
    EXPECT_EQ(heap_check_level(*heap), CheckLevel::Off);
    EXPECT_FALSE(heap_enable_guard_pages(*heap, GuardPageOptions{7, 1}));
    auto* block = static_cast<unsigned char*>(heap_allocate_guarded(*heap, 24));
    ASSERT_NE(block, nullptr);
    EXPECT_EQ(heap_usable_size(*heap, block), 32u) << "an ordinary size-class block";
    test::clear_reports();
    heap_free(*heap, block + 16);
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::InteriorPointer);
    EXPECT_TRUE(test::report(0).allocated.empty());
    heap_free(*heap, block);
    EXPECT_EQ(heap_leaks_since(*heap, 0).blocks, 0u);
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
}

} // namespace
} // namespace bedrock
