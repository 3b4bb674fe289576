// SPDX-License-Identifier: MIT
// In-kernel tests: registration and assertions.
//
// A test is a function registered with one macro; the registration is a TestCase record placed
// in the linker section `bedrock_tests` (each linker script keeps it and brackets it with
// __start_bedrock_tests / __stop_bedrock_tests), so tests need no constructors and no list to
// maintain. The runner (test_runner.cpp) calls every test in link order on both architectures.
//
//   BEDROCK_TEST(pfa_exhaustion) {
//       BEDROCK_EXPECT(allocate(0).ok());
//       BEDROCK_EXPECT_EQ(free_pages(), initial);
//   }
//
// EXPECT records a failure and carries on; REQUIRE records it and returns from the test.
#pragma once

#include <stdint.h>

namespace bedrock::kernel {

class TestContext {
public:
    // Returns `condition`; prints the failing expression and location when it is false.
    bool expect(bool condition, const char* expression, const char* file, int line);
    bool expect_equal(uint64_t actual, uint64_t expected, const char* actual_text,
                      const char* expected_text, const char* file, int line);
    [[nodiscard]] bool failed() const { return m_failures != 0; }

private:
    unsigned m_failures = 0;
};

struct TestCase {
    const char* name;
    void (*run)(TestContext& context);
};

struct TestSummary {
    unsigned passed = 0;
    unsigned failed = 0;
};

// Runs every registered test, printing one line per test, the "N passed, N failed" line and
// the closing "verdict: PASS (...)" or "verdict: FAIL (...)" line.
TestSummary run_all_tests();

// Ends the running test as failed, printing "    <file>:<line>: <reason>; the test ends here",
// and goes on with the next test (never returns) - if the calling CPU is the one running the
// tests, a test is running and no run_catching_traps() catch is armed (kernel/trap.h). Else
// returns, changing nothing. The test's frames are abandoned: only for a stop that leaves no
// lock held and nothing half done, such as a throwing operator new that found no memory (on a
// machine smaller than the tests are written for, that ends one test instead of the run).
void end_running_test(const char* file, int line, const char* reason);

} // namespace bedrock::kernel

// Macros: they capture the expression text, __FILE__ and __LINE__, and declare the test's
// function and its registration record in one place.
#define BEDROCK_TEST(name)                                                                         \
    static void bedrock_test_##name(::bedrock::kernel::TestContext& bedrock_test_context);         \
    __attribute__((used, section("bedrock_tests"))) static const ::bedrock::kernel::TestCase       \
        bedrock_test_case_##name{#name, bedrock_test_##name};                                      \
    static void bedrock_test_##name(::bedrock::kernel::TestContext& bedrock_test_context)

#define BEDROCK_EXPECT(condition)                                                                  \
    bedrock_test_context.expect(static_cast<bool>(condition), #condition, __FILE__, __LINE__)

#define BEDROCK_EXPECT_EQ(actual, expected)                                                        \
    bedrock_test_context.expect_equal(static_cast<uint64_t>(actual),                               \
                                      static_cast<uint64_t>(expected), #actual, #expected,         \
                                      __FILE__, __LINE__)

#define BEDROCK_REQUIRE(condition)                                                                 \
    do {                                                                                           \
        if (!BEDROCK_EXPECT(condition)) {                                                          \
            return;                                                                                \
        }                                                                                          \
    } while (false)
