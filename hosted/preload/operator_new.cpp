// SPDX-License-Identifier: MIT
// libbedrock-malloc.so's operator new and delete, every form (plain, array, sized, aligned,
// nothrow), over the same heap as malloc, with the C++ library's behaviour: on failure the
// throwing forms call the new-handler and retry while there is one, then throw std::bad_alloc;
// the nothrow forms return null instead of throwing. Sized deletes ignore the size (the heap
// knows it). No state of its own.
#include <new>

#include "bedrock/heap.h"
#include "preload/preload_heap.h"

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
        std::new_handler handler = std::get_new_handler();
        if (handler == nullptr) {
            throw std::bad_alloc();
        }
        handler();
    }
}

void* allocate_or_null(size_t size, size_t alignment) noexcept {
    try {
        return allocate_or_throw(size, alignment);
    } catch (...) {
        return nullptr;
    }
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
