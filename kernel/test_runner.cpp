// SPDX-License-Identifier: MIT
// The in-kernel test runner: walks the `bedrock_tests` section in link order, and holds where
// end_running_test() resumes: the running test's saved context, on the CPU that runs the tests.
#include "kernel/arch.h"
#include "kernel/console.h"
#include "kernel/error_log.h"
#include "kernel/smp.h"
#include "kernel/test_registry.h"
#include "kernel/trap.h"

extern "C" const bedrock::kernel::TestCase __start_bedrock_tests[];
extern "C" const bedrock::kernel::TestCase __stop_bedrock_tests[];

namespace bedrock::kernel {
namespace {

// The test running now: end_running_test() resumes in run_test() through `resume`.
struct RunningTest {
    bool active = false;
    unsigned cpu = 0; // the index of the CPU running the tests
    arch::SavedContext resume = {};
};

constinit RunningTest g_running;

unsigned calling_cpu() {
    const CpuLocal* cpu = arch::cpu_local();
    return cpu != nullptr ? cpu->index : 0;
}

// Runs one test; returns false if end_running_test() cut it short.
bool run_test(const TestCase& test, TestContext& context) {
    g_running.cpu = calling_cpu();
    g_running.active = true;
    if (arch_save_context(&g_running.resume) != 0) {
        return false; // end_running_test() has cleared `active`
    }
    test.run(context);
    g_running.active = false;
    return true;
}

} // namespace

void end_running_test(const char* file, int line, const char* reason) {
    if (!g_running.active || g_running.cpu != calling_cpu() || catching_traps()) {
        return;
    }
    print("    %s:%d: %s; the test ends here\n", file, line, reason);
    g_running.active = false;
    arch_resume_context(&g_running.resume);
}

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
        const bool finished = run_test(*test, context);
        error_log().stop_expecting();
        if (!finished || context.failed()) {
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
