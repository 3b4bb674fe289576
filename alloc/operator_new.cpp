// Every form of operator new and delete (plain, array, sized, aligned, nothrow) on the default
// heap, for targets where Bedrock provides the standard names (BEDROCK_STANDARD_NAMES).
//
// The plain and aligned forms must not return null and there are no exceptions here: when the
// heap is out of memory they stop through platform::assertion_failed. The nothrow forms return
// null. Sized deletes check the size against the block in debug builds.
#include "bedrock/assert.h"
#include "bedrock/malloc.h"
#include "bedrock/new.h"

#if defined(BEDROCK_STANDARD_NAMES) && BEDROCK_STANDARD_NAMES

const std::nothrow_t std::nothrow{};

namespace {

void* allocate_or_stop(size_t size, size_t alignment) {
    void* block = bedrock_memalign(alignment, size);
    if (block == nullptr) {
        bedrock::platform::assertion_failed("operator new: out of memory", __FILE__, __LINE__);
    }
    return block;
}

void free_sized(void* block, size_t size) {
    BEDROCK_DEBUG_ASSERT(block == nullptr || bedrock_malloc_usable_size(block) >= size);
    static_cast<void>(size);
    bedrock_free(block);
}

} // namespace

void* operator new(size_t size) {
    return allocate_or_stop(size, 0);
}
void* operator new[](size_t size) {
    return allocate_or_stop(size, 0);
}
void* operator new(size_t size, std::align_val_t alignment) {
    return allocate_or_stop(size, static_cast<size_t>(alignment));
}
void* operator new[](size_t size, std::align_val_t alignment) {
    return allocate_or_stop(size, static_cast<size_t>(alignment));
}
void* operator new(size_t size, const std::nothrow_t&) noexcept {
    return bedrock_malloc(size);
}
void* operator new[](size_t size, const std::nothrow_t&) noexcept {
    return bedrock_malloc(size);
}
void* operator new(size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
    return bedrock_memalign(static_cast<size_t>(alignment), size);
}
void* operator new[](size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
    return bedrock_memalign(static_cast<size_t>(alignment), size);
}

void operator delete(void* block) noexcept {
    bedrock_free(block);
}
void operator delete[](void* block) noexcept {
    bedrock_free(block);
}
void operator delete(void* block, size_t size) noexcept {
    free_sized(block, size);
}
void operator delete[](void* block, size_t size) noexcept {
    free_sized(block, size);
}
void operator delete(void* block, std::align_val_t) noexcept {
    bedrock_free(block);
}
void operator delete[](void* block, std::align_val_t) noexcept {
    bedrock_free(block);
}
void operator delete(void* block, size_t size, std::align_val_t) noexcept {
    free_sized(block, size);
}
void operator delete[](void* block, size_t size, std::align_val_t) noexcept {
    free_sized(block, size);
}
void operator delete(void* block, const std::nothrow_t&) noexcept {
    bedrock_free(block);
}
void operator delete[](void* block, const std::nothrow_t&) noexcept {
    bedrock_free(block);
}
void operator delete(void* block, std::align_val_t, const std::nothrow_t&) noexcept {
    bedrock_free(block);
}
void operator delete[](void* block, std::align_val_t, const std::nothrow_t&) noexcept {
    bedrock_free(block);
}

#endif
