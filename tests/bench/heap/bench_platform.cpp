// bedrock/platform.h for the heap benchmark: a hosted process whose page frame allocator manages
// a range of its own address space, so phys_to_virt is the identity. Reports and failed
// assertions stop the run, since a benchmark that misuses the heap measures nothing. Guard
// pages are mprotect().
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "bedrock/platform.h"

namespace bedrock::platform {

void* phys_to_virt(PhysAddr phys) {
    return reinterpret_cast<void*>(static_cast<uintptr_t>(phys));
}

void report_error(const ErrorReport& report) {
    fprintf(stderr, "heap_bench: %s: %s at 0x%llx: %s\n", report.component, to_string(report.kind),
            static_cast<unsigned long long>(report.address), report.detail);
    abort();
}

void panic(const char* message) {
    fprintf(stderr, "heap_bench: panic: %s\n", message);
    abort();
}

bool set_page_access(void* page, bool accessible) {
    return mprotect(page, 4096, accessible ? PROT_READ | PROT_WRITE : PROT_NONE) == 0;
}

void assertion_failed(const char* expression, const char* file, int line) {
    fprintf(stderr, "heap_bench: assertion failed: %s at %s:%d\n", expression, file, line);
    abort();
}

} // namespace bedrock::platform
