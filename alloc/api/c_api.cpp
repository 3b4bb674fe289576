// SPDX-License-Identifier: MIT
// The C API over the default heap (edge behaviour documented in bedrock/malloc.h), and its
// standard names behind BEDROCK_STANDARD_NAMES. Routing only: no state, no lock. Each function
// passes its caller to the heap (heap_entry.h); the aligned forms share memalign_from().
#include "bedrock/heap.h"
#include "bedrock/malloc.h"
#include "bedrock/memory_routines.h"
#include "bedrock/phys_range.h"
#include "bedrock/platform.h"
#include "heap/heap_entry.h"
#include "support/bits.h"

using bedrock::Heap;
using bedrock::heap::Caller;

namespace {

[[gnu::always_inline]] inline void* memalign_from(size_t alignment, size_t size, Caller caller) {
    Heap* heap = bedrock::heap::default_heap_inline();
    return heap != nullptr ? bedrock::heap::allocate(*heap, size, alignment, caller) : nullptr;
}

} // namespace

extern "C" {

void* bedrock_malloc(size_t size) {
    return memalign_from(bedrock::kHeapMinAlignment, size, BEDROCK_HEAP_CALLER());
}

void bedrock_free(void* block) {
    Heap* heap = bedrock::heap::default_heap_inline();
    if (heap != nullptr) {
        bedrock::heap::free(*heap, block, BEDROCK_HEAP_CALLER());
    }
}

void* bedrock_calloc(size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        return nullptr;
    }
    void* block = memalign_from(bedrock::kHeapMinAlignment, total, BEDROCK_HEAP_CALLER());
    if (block != nullptr) {
        bedrock_memset(block, 0, total);
    }
    return block;
}

void* bedrock_realloc(void* block, size_t size) {
    Heap* heap = bedrock::heap::default_heap_inline();
    return heap != nullptr ? bedrock::heap::reallocate(*heap, block, size, BEDROCK_HEAP_CALLER())
                           : nullptr;
}

void* bedrock_memalign(size_t alignment, size_t size) {
    return memalign_from(alignment, size, BEDROCK_HEAP_CALLER());
}

void* bedrock_aligned_alloc(size_t alignment, size_t size) {
    return memalign_from(alignment, size, BEDROCK_HEAP_CALLER());
}

int bedrock_posix_memalign(void** out, size_t alignment, size_t size) {
    if (alignment < sizeof(void*) || !bedrock::is_power_of_two(alignment)) {
        return BEDROCK_EINVAL;
    }
    void* block = memalign_from(alignment, size, BEDROCK_HEAP_CALLER());
    if (block == nullptr) {
        return BEDROCK_ENOMEM;
    }
    *out = block;
    return 0;
}

// valloc and pvalloc use the platform's page (kPageSize in a kernel, the host's in a process).
void* bedrock_valloc(size_t size) {
    return memalign_from(bedrock::platform::page_granularity(), size, BEDROCK_HEAP_CALLER());
}

void* bedrock_pvalloc(size_t size) {
    const size_t page = bedrock::platform::page_granularity();
    if (size > ~size_t{0} - page) {
        return nullptr;
    }
    const size_t rounded = size == 0 ? page : bedrock::align_up(size, page);
    return memalign_from(page, rounded, BEDROCK_HEAP_CALLER());
}

size_t bedrock_malloc_usable_size(void* block) {
    Heap* heap = bedrock::heap::default_heap_inline();
    return heap != nullptr ? bedrock::heap::usable_size(*heap, block, BEDROCK_HEAP_CALLER()) : 0;
}

} // extern "C"

#if defined(BEDROCK_STANDARD_NAMES) && BEDROCK_STANDARD_NAMES
// The standard names, as aliases in this translation unit (see memory_routines.cpp for why).
extern "C" {
void* malloc(size_t size) __attribute__((alias("bedrock_malloc")));
void free(void* block) __attribute__((alias("bedrock_free")));
void* calloc(size_t count, size_t size) __attribute__((alias("bedrock_calloc")));
void* realloc(void* block, size_t size) __attribute__((alias("bedrock_realloc")));
void* memalign(size_t alignment, size_t size) __attribute__((alias("bedrock_memalign")));
void* aligned_alloc(size_t alignment, size_t size) __attribute__((alias("bedrock_aligned_alloc")));
int posix_memalign(void** out, size_t alignment, size_t size)
    __attribute__((alias("bedrock_posix_memalign")));
void* valloc(size_t size) __attribute__((alias("bedrock_valloc")));
void* pvalloc(size_t size) __attribute__((alias("bedrock_pvalloc")));
size_t malloc_usable_size(void* block) __attribute__((alias("bedrock_malloc_usable_size")));
}
#endif
