// SPDX-License-Identifier: MIT
// The kernel command line's heap options (kernel/heap_boot_options.h).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernel/heap_boot_options.h"

namespace bedrock::kernel {
namespace {

std::string word_of(const HeapBootOptionError& error) {
    return std::string(error.word, static_cast<size_t>(error.length));
}

std::vector<std::string> lines_of(const HeapBootOptions& options) {
    std::vector<std::string> lines;
    describe_heap_boot_option_errors(
        options,
        [](void* context, const char* line) {
            static_cast<std::vector<std::string>*>(context)->emplace_back(line);
        },
        &lines);
    return lines;
}

TEST(HeapBootOptions, DefaultsWhenAbsent) {
    for (const char* line : {"", "console=ttyS0", "   ", "quiet bedrock nobedrock.check=x"}) {
        const HeapBootOptions options = parse_heap_boot_options(line);
        EXPECT_EQ(options.level, CheckLevel::Off) << line;
        EXPECT_EQ(options.guard_sample_interval, 0u) << line;
        EXPECT_EQ(options.error_count, 0u) << line;
        EXPECT_TRUE(lines_of(options).empty()) << line;
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
    EXPECT_EQ(both.error_count, 0u);
    // The guard may come first; bedrock.guard=0 needs no checking.
    EXPECT_EQ(parse_heap_boot_options("bedrock.guard=8 bedrock.check=abort").guard_sample_interval,
              8u);
    EXPECT_EQ(parse_heap_boot_options("bedrock.guard=0").error_count, 0u);
    EXPECT_EQ(parse_heap_boot_options("bedrock.check=abort bedrock.check=off").level,
              CheckLevel::Off)
        << "the last word wins";
}

TEST(HeapBootOptions, AnyWhiteSpaceSeparatesWords) {
    const HeapBootOptions options =
        parse_heap_boot_options("quiet\tbedrock.check=report\n\r bedrock.guard=8\v\fx");
    EXPECT_EQ(options.level, CheckLevel::Report);
    EXPECT_EQ(options.guard_sample_interval, 8u);
    EXPECT_EQ(options.error_count, 0u);
}

TEST(HeapBootOptions, EveryBadValueIsNamedAndIgnored) {
    const HeapBootOptions options =
        parse_heap_boot_options("bedrock.check=maybe bedrock.guard=12x bedrock.check=report");
    EXPECT_EQ(options.level, CheckLevel::Report);
    EXPECT_EQ(options.guard_sample_interval, 0u);
    ASSERT_EQ(options.error_count, 2u);
    EXPECT_EQ(word_of(options.errors[0]), "bedrock.check=maybe");
    EXPECT_EQ(word_of(options.errors[1]), "bedrock.guard=12x");
    EXPECT_EQ(lines_of(options),
              (std::vector<std::string>{
                  "heap: command line: bedrock.check=maybe ignored: not off, report or abort",
                  "heap: command line: bedrock.guard=12x ignored: not a count (at most 9 digits)",
                  "heap: command line: the options are bedrock.check=off|report|abort and "
                  "bedrock.guard=<every Nth checked allocation>"}));
    for (const char* line : {"bedrock.guard=", "bedrock.guard=-1", "bedrock.guard=1234567890",
                             "bedrock.check=", "bedrock.check=Report"}) {
        const HeapBootOptions bad = parse_heap_boot_options(line);
        ASSERT_EQ(bad.error_count, 1u) << line;
        EXPECT_EQ(word_of(bad.errors[0]), line);
        EXPECT_EQ(bad.level, CheckLevel::Off) << line;
        EXPECT_EQ(bad.guard_sample_interval, 0u) << line;
    }
}

TEST(HeapBootOptions, UnknownBedrockWordsAreNamed) {
    const HeapBootOptions options =
        parse_heap_boot_options("console=ttyS0 bedrock.checks=report bedrock.gaurd=8 bedrock.");
    ASSERT_EQ(options.error_count, 3u);
    EXPECT_EQ(word_of(options.errors[0]), "bedrock.checks=report");
    EXPECT_EQ(word_of(options.errors[1]), "bedrock.gaurd=8");
    EXPECT_EQ(word_of(options.errors[2]), "bedrock.");
    EXPECT_STREQ(options.errors[0].problem, "no such option");
    EXPECT_EQ(options.level, CheckLevel::Off);
}

// The test kernel's own options are not the heap's problems; near misses of them are.
TEST(HeapBootOptions, TheKernelsOwnOptionsAreKnown) {
    const HeapBootOptions options = parse_heap_boot_options(
        "bedrock.bench=1 bedrock.gdb_sample=1 bedrock.check=report bedrock.bench=2");
    ASSERT_EQ(options.error_count, 1u);
    EXPECT_EQ(word_of(options.errors[0]), "bedrock.bench=2");
    EXPECT_EQ(options.level, CheckLevel::Report);
}

TEST(HeapBootOptions, GuardWithoutCheckingIsNamed) {
    for (const char* line : {"bedrock.guard=8", "bedrock.check=report bedrock.guard=8 "
                                                "bedrock.check=off"}) {
        const HeapBootOptions options = parse_heap_boot_options(line);
        EXPECT_EQ(options.guard_sample_interval, 0u) << line;
        ASSERT_EQ(options.error_count, 1u) << line;
        EXPECT_EQ(word_of(options.errors[0]), "bedrock.guard=8");
        EXPECT_EQ(lines_of(options).front(),
                  "heap: command line: bedrock.guard=8 ignored: needs bedrock.check=report or "
                  "abort");
    }
}

TEST(HeapBootOptions, ManyProblemsAreCountedBeyondTheOnesKept) {
    std::string line;
    for (int i = 0; i < 11; ++i) {
        line += "bedrock.x" + std::to_string(i) + " ";
    }
    const HeapBootOptions options = parse_heap_boot_options(line.c_str());
    EXPECT_EQ(options.error_count, 11u);
    const std::vector<std::string> lines = lines_of(options);
    ASSERT_EQ(lines.size(), HeapBootOptions::kMaxErrors + 2);
    EXPECT_EQ(lines[0], "heap: command line: bedrock.x0 ignored: no such option");
    EXPECT_EQ(lines[HeapBootOptions::kMaxErrors], "heap: command line: 3 more problems not listed");
}

} // namespace
} // namespace bedrock::kernel
