// SPDX-License-Identifier: MIT
// A C++ adopter of Bedrock on a hosted system: the platform hooks of bedrock/platform.h in C++,
// a page frame allocator over an aligned static buffer (its "physical" addresses are the
// buffer's own, so phys_to_virt is the identity), a heap over it as the default heap, the C++
// and C interfaces side by side. Prints "consumer: ok" and exits 0 when everything behaved.
#include <cstdio>
#include <cstdlib>

#include <bedrock/bedrock.h>
#include <bedrock/heap.h>
#include <bedrock/heap_checks.h>
#include <bedrock/page_frame_allocator.h>
#include <bedrock/platform.h>

namespace bedrock::platform {

void* phys_to_virt(PhysAddr phys) {
    return reinterpret_cast<void*>(static_cast<uintptr_t>(phys));
}

void report_error(const ErrorReport& report) {
    write_error_report(
        report, [](void*, const char* line) { std::fprintf(stderr, "%s\n", line); }, nullptr);
}

void panic(const char* message) {
    std::fprintf(stderr, "panic: %s\n", message);
    std::abort();
}

bool set_page_access(void*, bool) {
    return false;
}

void assertion_failed(const char* expression, const char* file, int line) {
    std::fprintf(stderr, "assertion failed: %s at %s:%d\n", expression, file, line);
    std::abort();
}

#if defined(CONFIGURED_MAX_CPUS)
static_assert(kMaxCpus == CONFIGURED_MAX_CPUS, "bedrock/config.h holds the configured value");
#endif

unsigned current_cpu() {
    return 0;
}

InterruptState disable_interrupts() {
    return 0;
}

void restore_interrupts(InterruptState) {}

void lock_wait() {}

void pages_unused(void*, size_t) {}

} // namespace bedrock::platform

namespace {

constexpr size_t kMemoryBytes = size_t{8} << 20;
alignas(4096) unsigned char g_memory[kMemoryBytes];
constinit bedrock::PageFrameAllocator g_frames;

} // namespace

int main() {
    std::printf("Bedrock %s\n", BEDROCK_VERSION_STRING);
    const bedrock::PhysRange usable{reinterpret_cast<uintptr_t>(g_memory), kMemoryBytes};
    if (!g_frames.init(&usable, 1)) {
        return 1;
    }
    bedrock::Heap* heap = bedrock::heap_create(g_frames);
    if (heap == nullptr) {
        return 1;
    }
    bedrock::set_default_heap(heap);

    void* small = bedrock::heap_allocate(*heap, 100);
    void* aligned = bedrock::heap_allocate(*heap, 5000, 4096);
    void* from_c = bedrock_malloc(3000);
    const bool allocated = small != nullptr && aligned != nullptr && from_c != nullptr &&
                           reinterpret_cast<uintptr_t>(aligned) % 4096 == 0;
    bedrock_free(from_c);
    bedrock::heap_free(*heap, aligned);
    bedrock::heap_free(*heap, small);

    bedrock::set_default_heap(nullptr);
    const bool ok = allocated && bedrock::heap_check(*heap) && bedrock::heap_destroy(*heap) &&
                    g_frames.check().ok && g_frames.free_pages() > 0;
    std::printf("%llu pages free\n", static_cast<unsigned long long>(g_frames.free_pages()));
    std::printf("consumer: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
