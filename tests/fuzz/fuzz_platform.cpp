// SPDX-License-Identifier: MIT
// bedrock/platform.h for the fuzz harness: the heap runs over a region, so phys_to_virt is
// never called; the harness never misuses the heap, so any report is a finding and aborts.
#include <stdio.h>
#include <stdlib.h>

#include "bedrock/platform.h"

namespace bedrock::platform {

void* phys_to_virt(PhysAddr phys) {
    return reinterpret_cast<void*>(static_cast<uintptr_t>(phys));
}

void report_error(const ErrorReport& report) {
    fprintf(stderr, "heap_fuzz: %s: %s at 0x%llx: %s\n", report.component, to_string(report.kind),
            static_cast<unsigned long long>(report.address), report.detail);
    abort();
}

void panic(const char* message) {
    fprintf(stderr, "heap_fuzz: panic: %s\n", message);
    abort();
}

bool set_page_access(void*, bool) {
    return false;
}

void pages_unused(void*, size_t) {}

void assertion_failed(const char* expression, const char* file, int line) {
    fprintf(stderr, "heap_fuzz: assertion failed: %s at %s:%d\n", expression, file, line);
    abort();
}

} // namespace bedrock::platform
