// SPDX-License-Identifier: MIT
// Every form of operator new and delete (plain, array, sized, aligned, nothrow) on the default
// heap, for targets where Bedrock provides the standard names (BEDROCK_STANDARD_NAMES).
//
// The plain and aligned forms must not return null and there are no exceptions here: when the
// heap is out of memory they stop through platform::assertion_failed. The nothrow forms return
// null. Every operator passes its caller to the heap (heap_entry.h), so checked mode's traces
// start in the application, with its CallFamily (new and delete, or new[] and delete[]), which
// checked mode compares (deallocation-mismatch); while checking is on, a sized delete's size is
// compared with the checked block's (size-mismatch).
#include "bedrock/assert.h"
#include "bedrock/new.h"
#include "heap/heap_entry.h"

#if defined(BEDROCK_STANDARD_NAMES) && BEDROCK_STANDARD_NAMES

const std::nothrow_t std::nothrow{};

namespace {

using bedrock::heap::Caller;

void* allocate_or_null(size_t size, size_t alignment, Caller caller) {
    bedrock::Heap* heap = bedrock::heap::default_heap_inline();
    return heap != nullptr ? bedrock::heap::allocate(*heap, size, alignment, caller) : nullptr;
}

void* allocate_or_stop(size_t size, size_t alignment, Caller caller) {
    void* block = allocate_or_null(size, alignment, caller);
    if (block == nullptr) {
        bedrock::platform::assertion_failed(bedrock::platform::kOperatorNewOutOfMemory, __FILE__,
                                            __LINE__);
    }
    return block;
}

void free_block(void* block, Caller caller) {
    bedrock::Heap* heap = bedrock::heap::default_heap_inline();
    if (heap != nullptr) {
        bedrock::heap::free(*heap, block, caller);
    }
}

void free_sized(void* block, size_t size, Caller caller) {
    bedrock::Heap* heap = bedrock::heap::default_heap_inline();
    if (heap == nullptr) {
        return;
    }
    if constexpr (bedrock::kHeapChecksCompiled) {
        if (bedrock::heap::checks_are_on(*heap)) [[unlikely]] {
            bedrock::heap::check_named_size(*heap, block, size, caller);
        }
    }
    bedrock::heap::free(*heap, block, caller);
}

} // namespace

void* operator new(size_t size) {
    return allocate_or_stop(size, 0, BEDROCK_HEAP_CALLER_OF(CallFamily::New));
}
void* operator new[](size_t size) {
    return allocate_or_stop(size, 0, BEDROCK_HEAP_CALLER_OF(CallFamily::NewArray));
}
void* operator new(size_t size, std::align_val_t alignment) {
    return allocate_or_stop(size, static_cast<size_t>(alignment),
                            BEDROCK_HEAP_CALLER_OF(CallFamily::New));
}
void* operator new[](size_t size, std::align_val_t alignment) {
    return allocate_or_stop(size, static_cast<size_t>(alignment),
                            BEDROCK_HEAP_CALLER_OF(CallFamily::NewArray));
}
void* operator new(size_t size, const std::nothrow_t&) noexcept {
    return allocate_or_null(size, 0, BEDROCK_HEAP_CALLER_OF(CallFamily::New));
}
void* operator new[](size_t size, const std::nothrow_t&) noexcept {
    return allocate_or_null(size, 0, BEDROCK_HEAP_CALLER_OF(CallFamily::NewArray));
}
void* operator new(size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
    return allocate_or_null(size, static_cast<size_t>(alignment),
                            BEDROCK_HEAP_CALLER_OF(CallFamily::New));
}
void* operator new[](size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
    return allocate_or_null(size, static_cast<size_t>(alignment),
                            BEDROCK_HEAP_CALLER_OF(CallFamily::NewArray));
}

void operator delete(void* block) noexcept {
    free_block(block, BEDROCK_HEAP_CALLER_OF(CallFamily::New));
}
void operator delete[](void* block) noexcept {
    free_block(block, BEDROCK_HEAP_CALLER_OF(CallFamily::NewArray));
}
void operator delete(void* block, size_t size) noexcept {
    free_sized(block, size, BEDROCK_HEAP_CALLER_OF(CallFamily::New));
}
void operator delete[](void* block, size_t size) noexcept {
    free_sized(block, size, BEDROCK_HEAP_CALLER_OF(CallFamily::NewArray));
}
void operator delete(void* block, std::align_val_t) noexcept {
    free_block(block, BEDROCK_HEAP_CALLER_OF(CallFamily::New));
}
void operator delete[](void* block, std::align_val_t) noexcept {
    free_block(block, BEDROCK_HEAP_CALLER_OF(CallFamily::NewArray));
}
void operator delete(void* block, size_t size, std::align_val_t) noexcept {
    free_sized(block, size, BEDROCK_HEAP_CALLER_OF(CallFamily::New));
}
void operator delete[](void* block, size_t size, std::align_val_t) noexcept {
    free_sized(block, size, BEDROCK_HEAP_CALLER_OF(CallFamily::NewArray));
}
void operator delete(void* block, const std::nothrow_t&) noexcept {
    free_block(block, BEDROCK_HEAP_CALLER_OF(CallFamily::New));
}
void operator delete[](void* block, const std::nothrow_t&) noexcept {
    free_block(block, BEDROCK_HEAP_CALLER_OF(CallFamily::NewArray));
}
void operator delete(void* block, std::align_val_t, const std::nothrow_t&) noexcept {
    free_block(block, BEDROCK_HEAP_CALLER_OF(CallFamily::New));
}
void operator delete[](void* block, std::align_val_t, const std::nothrow_t&) noexcept {
    free_block(block, BEDROCK_HEAP_CALLER_OF(CallFamily::NewArray));
}

#endif
