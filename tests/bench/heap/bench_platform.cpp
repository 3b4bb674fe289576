// SPDX-License-Identifier: MIT
// bedrock/platform.h for the heap benchmarks, all but phys_to_virt, which each program links
// from the direct map it needs: identity_direct_map.cpp (heap_bench: its page frame allocator
// manages a range of its own address space) or simulated_memory.cpp (heap_limits: physical
// addresses as a machine numbers them). Reports and failed assertions stop the run, since a
// benchmark that misuses the heap measures nothing. Guard pages are mprotect().
#include <errno.h> // program_invocation_short_name
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "bedrock/platform.h"

namespace bedrock::platform {

void report_error(const ErrorReport& report) {
    fprintf(stderr, "%s: %s: %s at 0x%llx: %s\n", program_invocation_short_name, report.component,
            to_string(report.kind), static_cast<unsigned long long>(report.address), report.detail);
    abort();
}

void panic(const char* message) {
    fprintf(stderr, "%s: panic: %s\n", program_invocation_short_name, message);
    abort();
}

bool set_page_access(void* page, bool accessible) {
    return mprotect(page, 4096, accessible ? PROT_READ | PROT_WRITE : PROT_NONE) == 0;
}

void pages_unused(void*, size_t) {}

void assertion_failed(const char* expression, const char* file, int line) {
    fprintf(stderr, "%s: assertion failed: %s at %s:%d\n", program_invocation_short_name,
            expression, file, line);
    abort();
}

} // namespace bedrock::platform
