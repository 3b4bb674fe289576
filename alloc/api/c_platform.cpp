// SPDX-License-Identifier: MIT
// Bedrock's platform hooks (bedrock/platform.h) implemented by calling the C hooks of
// bedrock/bedrock.h (bedrock_platform_*), which a C program defines: the adapter that lets the
// whole port be written in C. Built as its own archive (Bedrock::c_platform, -lbedrock_c_platform)
// so that a C++ program implementing bedrock/platform.h directly never links it. Each hook is a
// plain forward; the error report is converted field by field (api/c_report.h).
#include "bedrock/bedrock.h"
#include "bedrock/platform.h"

#include "api/c_report.h"

namespace bedrock::platform {

static_assert(BEDROCK_MAX_CPUS == kMaxCpus && BEDROCK_NO_CPU_SLOT == kNoCpuSlot);
static_assert(sizeof(bedrock_phys_addr) == sizeof(PhysAddr));

void* phys_to_virt(PhysAddr phys) {
    return bedrock_platform_phys_to_virt(phys);
}

void report_error(const ErrorReport& report) {
    const bedrock_error_report converted = c_interface::to_c(report);
    bedrock_platform_report_error(&converted);
}

void panic(const char* message) {
    bedrock_platform_panic(message);
}

bool set_page_access(void* page, bool accessible) {
    return bedrock_platform_set_page_access(page, accessible);
}

void assertion_failed(const char* expression, const char* file, int line) {
    bedrock_platform_assertion_failed(expression, file, line);
}

unsigned current_cpu() {
    return bedrock_platform_current_cpu();
}

InterruptState disable_interrupts() {
    return bedrock_platform_disable_interrupts();
}

void restore_interrupts(InterruptState previous) {
    bedrock_platform_restore_interrupts(previous);
}

void lock_wait() {
    bedrock_platform_lock_wait();
}

void pages_unused(void* start, size_t bytes) {
    bedrock_platform_pages_unused(start, bytes);
}

} // namespace bedrock::platform
