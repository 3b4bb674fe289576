// SPDX-License-Identifier: MIT
// The in-kernel test runner: walks the `bedrock_tests` section in link order.
#include "kernel/console.h"
#include "kernel/error_log.h"
#include "kernel/test_registry.h"

extern "C" const bedrock::kernel::TestCase __start_bedrock_tests[];
extern "C" const bedrock::kernel::TestCase __stop_bedrock_tests[];

namespace bedrock::kernel {

bool TestContext::expect(bool condition, const char* expression, const char* file, int line) {
    if (!condition) {
        ++m_failures;
        print("    %s:%d: expected %s\n", file, line, expression);
    }
    return condition;
}

bool TestContext::expect_equal(uint64_t actual, uint64_t expected, const char* actual_text,
                               const char* expected_text, const char* file, int line) {
    if (actual != expected) {
        ++m_failures;
        print("    %s:%d: expected %s == %s, got 0x%lx (%lu) and 0x%lx (%lu)\n", file, line,
              actual_text, expected_text, actual, actual, expected, expected);
    }
    return actual == expected;
}

TestSummary run_all_tests() {
    TestSummary summary;
    for (const TestCase* test = __start_bedrock_tests; test != __stop_bedrock_tests; ++test) {
        print("test %s ...\n", test->name);
        TestContext context;
        error_log().stop_expecting();
        test->run(context);
        error_log().stop_expecting();
        if (context.failed()) {
            ++summary.failed;
            print("test %s FAILED\n", test->name);
        } else {
            ++summary.passed;
            print("test %s ok\n", test->name);
        }
    }
    // Scripts and CTest read the count line; the verdict after it is the kernel's closing line
    // (run-kernel exits 0 only when it sees "verdict: PASS"). A run without tests proves nothing.
    print("%u passed, %u failed\n", summary.passed, summary.failed);
    const bool pass = summary.failed == 0 && summary.passed > 0;
    print("verdict: %s (%u passed, %u failed)\n", pass ? "PASS" : "FAIL", summary.passed,
          summary.failed);
    return summary;
}

} // namespace bedrock::kernel
