// SPDX-License-Identifier: MIT
// ErrorLog: the kernel's record of the errors Bedrock reported through
// platform::report_error(), so in-kernel tests can assert the exact report.
// Invariant: count() counts every report since the last clear(); the first kCapacity are kept.
// A test clears the log before it provokes the reports it checks: from then until the runner
// starts the next test, reports are expected, and the console marks them so ("expected: ").
#pragma once

#include <stddef.h>

#include "bedrock/platform.h"

namespace bedrock::kernel {

class ErrorLog {
public:
    static constexpr size_t kCapacity = 16;

    void record(const ErrorReport& report) {
        if (m_count < kCapacity) {
            m_reports[m_count] = report;
        }
        ++m_count;
    }
    void clear() {
        m_count = 0;
        m_expecting = true;
    }
    // Called by the test runner between tests: reports are unexpected until the next clear().
    void stop_expecting() { m_expecting = false; }
    [[nodiscard]] bool expecting() const { return m_expecting; }
    [[nodiscard]] size_t count() const { return m_count; }
    // The i-th report since clear(); i < min(count(), kCapacity).
    [[nodiscard]] const ErrorReport& operator[](size_t i) const { return m_reports[i]; }

private:
    ErrorReport m_reports[kCapacity] = {};
    size_t m_count = 0;
    bool m_expecting = false;
};

// The kernel's one log, filled by platform::report_error.
ErrorLog& error_log();

} // namespace bedrock::kernel
