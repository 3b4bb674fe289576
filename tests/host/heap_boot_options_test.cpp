// The kernel command line's heap options (kernel/heap_boot_options.h).
#include <gtest/gtest.h>

#include <string>

#include "kernel/heap_boot_options.h"

namespace bedrock::kernel {
namespace {

TEST(HeapBootOptions, DefaultsWhenAbsent) {
    for (const char* line : {"", "console=ttyS0", "   ", "bedrock.checks=report"}) {
        const HeapBootOptions options = parse_heap_boot_options(line);
        EXPECT_EQ(options.level, CheckLevel::Off) << line;
        EXPECT_EQ(options.guard_sample_interval, 0u) << line;
        EXPECT_EQ(options.error, nullptr) << line;
    }
    EXPECT_EQ(parse_heap_boot_options(nullptr).level, CheckLevel::Off);
}

TEST(HeapBootOptions, LevelsAndGuardInterval) {
    EXPECT_EQ(parse_heap_boot_options("bedrock.check=report").level, CheckLevel::Report);
    EXPECT_EQ(parse_heap_boot_options("a bedrock.check=abort b").level, CheckLevel::Abort);
    const HeapBootOptions both =
        parse_heap_boot_options("  bedrock.check=report   bedrock.guard=100 quiet");
    EXPECT_EQ(both.level, CheckLevel::Report);
    EXPECT_EQ(both.guard_sample_interval, 100u);
    EXPECT_EQ(both.error, nullptr);
    EXPECT_EQ(parse_heap_boot_options("bedrock.check=abort bedrock.check=off").level,
              CheckLevel::Off)
        << "the last word wins";
}

TEST(HeapBootOptions, BadValuesAreNamedAndIgnored) {
    const HeapBootOptions options =
        parse_heap_boot_options("bedrock.check=maybe bedrock.guard=12x bedrock.check=report");
    EXPECT_EQ(options.level, CheckLevel::Report);
    EXPECT_EQ(options.guard_sample_interval, 0u);
    ASSERT_NE(options.error, nullptr);
    EXPECT_EQ(std::string(options.error, static_cast<size_t>(options.error_length)),
              "bedrock.check=maybe");
    for (const char* line : {"bedrock.guard=", "bedrock.guard=-1", "bedrock.guard=1234567890",
                             "bedrock.check=", "bedrock.check=Report"}) {
        const HeapBootOptions bad = parse_heap_boot_options(line);
        EXPECT_NE(bad.error, nullptr) << line;
        EXPECT_EQ(bad.level, CheckLevel::Off) << line;
        EXPECT_EQ(bad.guard_sample_interval, 0u) << line;
    }
}

} // namespace
} // namespace bedrock::kernel
