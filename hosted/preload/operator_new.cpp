// SPDX-License-Identifier: MIT
// libbedrock-malloc.so's operator new and delete, every form (plain, array, sized, aligned,
// nothrow), over the same heap as malloc, with the C++ library's behaviour: on failure the
// throwing forms call the new-handler and retry while there is one, then throw std::bad_alloc;
// the nothrow forms return null (without calling the new-handler: catching what it throws would
// need the C++ runtime here). Sized deletes ignore the size (the heap knows it). No state.
//
// The library does not depend on libstdc++, so that a C program under the preload does not load
// it: the two functions needed from it are weak references, bound when the program loads
// libstdc++ (as every program that calls operator new does). Without them (a C program that
// calls the mangled operator new itself) a failed allocation aborts.
#include <stdlib.h>

#include <new>

#include "bedrock/heap.h"
#include "preload/preload_heap.h"

namespace std {
// libstdc++'s own: throws std::bad_alloc. Weak: see above.
void __throw_bad_alloc() __attribute__((weak));
new_handler get_new_handler() noexcept __attribute__((weak));
} // namespace std

#define BEDROCK_EXPORT __attribute__((visibility("default")))

namespace {

void* try_allocate(size_t size, size_t alignment) {
    bedrock::Heap* started = bedrock::preload::heap();
    return started != nullptr ? bedrock::heap_allocate(*started, size, alignment) : nullptr;
}

void* allocate_or_throw(size_t size, size_t alignment) {
    for (;;) {
        if (void* block = try_allocate(size, alignment); block != nullptr) {
            return block;
        }
        std::new_handler handler =
            std::get_new_handler != nullptr ? std::get_new_handler() : nullptr;
        if (handler == nullptr) {
            if (std::__throw_bad_alloc == nullptr) {
                abort();
            }
            std::__throw_bad_alloc();
            __builtin_unreachable();
        }
        handler();
    }
}

void* allocate_or_null(size_t size, size_t alignment) noexcept {
    return try_allocate(size, alignment);
}

size_t aligned(std::align_val_t alignment) {
    const auto value = static_cast<size_t>(alignment);
    return value < bedrock::kHeapMinAlignment ? bedrock::kHeapMinAlignment : value;
}

void release(void* block) noexcept {
    if (block == nullptr) {
        return;
    }
    if (bedrock::Heap* started = bedrock::preload::heap(); started != nullptr) {
        bedrock::heap_free(*started, block);
    }
}

} // namespace

BEDROCK_EXPORT void* operator new(size_t size) {
    return allocate_or_throw(size, bedrock::kHeapMinAlignment);
}
BEDROCK_EXPORT void* operator new[](size_t size) {
    return allocate_or_throw(size, bedrock::kHeapMinAlignment);
}
BEDROCK_EXPORT void* operator new(size_t size, std::align_val_t alignment) {
    return allocate_or_throw(size, aligned(alignment));
}
BEDROCK_EXPORT void* operator new[](size_t size, std::align_val_t alignment) {
    return allocate_or_throw(size, aligned(alignment));
}
BEDROCK_EXPORT void* operator new(size_t size, const std::nothrow_t&) noexcept {
    return allocate_or_null(size, bedrock::kHeapMinAlignment);
}
BEDROCK_EXPORT void* operator new[](size_t size, const std::nothrow_t&) noexcept {
    return allocate_or_null(size, bedrock::kHeapMinAlignment);
}
BEDROCK_EXPORT void* operator new(size_t size, std::align_val_t alignment,
                                  const std::nothrow_t&) noexcept {
    return allocate_or_null(size, aligned(alignment));
}
BEDROCK_EXPORT void* operator new[](size_t size, std::align_val_t alignment,
                                    const std::nothrow_t&) noexcept {
    return allocate_or_null(size, aligned(alignment));
}

BEDROCK_EXPORT void operator delete(void* block) noexcept {
    release(block);
}
BEDROCK_EXPORT void operator delete[](void* block) noexcept {
    release(block);
}
BEDROCK_EXPORT void operator delete(void* block, size_t) noexcept {
    release(block);
}
BEDROCK_EXPORT void operator delete[](void* block, size_t) noexcept {
    release(block);
}
BEDROCK_EXPORT void operator delete(void* block, std::align_val_t) noexcept {
    release(block);
}
BEDROCK_EXPORT void operator delete[](void* block, std::align_val_t) noexcept {
    release(block);
}
BEDROCK_EXPORT void operator delete(void* block, size_t, std::align_val_t) noexcept {
    release(block);
}
BEDROCK_EXPORT void operator delete[](void* block, size_t, std::align_val_t) noexcept {
    release(block);
}
BEDROCK_EXPORT void operator delete(void* block, const std::nothrow_t&) noexcept {
    release(block);
}
BEDROCK_EXPORT void operator delete[](void* block, const std::nothrow_t&) noexcept {
    release(block);
}
BEDROCK_EXPORT void operator delete(void* block, std::align_val_t, const std::nothrow_t&) noexcept {
    release(block);
}
BEDROCK_EXPORT void operator delete[](void* block, std::align_val_t,
                                      const std::nothrow_t&) noexcept {
    release(block);
}
