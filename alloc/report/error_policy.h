// SPDX-License-Identifier: MIT
// ErrorPolicy: where one heap's error reports go and what happens after them - the check level
// and the error hook of bedrock/heap_checks.h.
// raise() is called with no heap lock held: at level Abort it does not return, and a kernel
// that recovers from the panic must find every lock free and the heap consistent.
#pragma once

#include <stdint.h>

#include "bedrock/heap_checks.h"
#include "bedrock/platform.h"

namespace bedrock::heap {

// Whether a report may stop the system at level Abort (not when explaining a fault: the fault
// handler decides what happens next).
enum class AfterReport { MayAbort, Continue };

class ErrorPolicy {
public:
    [[nodiscard]] CheckLevel level() const {
        return static_cast<CheckLevel>(__atomic_load_n(&m_level, __ATOMIC_RELAXED));
    }
    void set_level(CheckLevel level) {
        __atomic_store_n(&m_level, static_cast<uint8_t>(level), __ATOMIC_RELAXED);
    }
    void set_hook(HeapErrorHook hook, void* context) {
        m_hook = hook;
        m_context = context;
    }

    // Delivers `report` to the hook, or to platform::report_error without one; then panics at
    // level Abort unless `after` is Continue (a fault handler explaining a fault).
    void raise(const ErrorReport& report, AfterReport after = AfterReport::MayAbort) const {
        if (m_hook != nullptr) {
            m_hook(m_context, report);
        } else {
            platform::report_error(report);
        }
        if (after == AfterReport::MayAbort && level() == CheckLevel::Abort) {
            platform::panic("heap: stopping at the first error (check level abort)");
        }
    }

private:
    uint8_t m_level = 0; // a CheckLevel
    HeapErrorHook m_hook = nullptr;
    void* m_context = nullptr;
};

} // namespace bedrock::heap
