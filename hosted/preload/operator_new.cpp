// SPDX-License-Identifier: MIT
// libbedrock-malloc.so's operator new and delete, every form (plain, array, sized, aligned,
// nothrow), over the same heap as malloc, with the C++ library's behaviour: on failure the
// throwing forms call the new-handler and retry while there is one, then throw std::bad_alloc;
// the nothrow forms return null (without calling the new-handler: catching what it throws would
// need the C++ runtime here). An alignment that is no power of two (0 included) fails at once, as
// libstdc++'s does: a throwing form throws std::bad_alloc without calling the new-handler, which
// could never make such a request succeed. A sized delete's size is compared with the block's only
// in checked mode (size-mismatch; the heap knows the size). No state. Each operator passes its own
// caller (BEDROCK_HEAP_CALLER_OF(its CallFamily)) to the helpers, inline in it, so that reports and
// checked mode's traces name the program's new or delete, not this library, and checked mode
// tells a delete of a malloc'd or new[]'d block (deallocation-mismatch).
//
// The library does not depend on libstdc++, so that a C program under the preload does not load
// it: the two functions needed from it are weak references, bound when the program starts with
// libstdc++ (as every C++ program does), and otherwise looked up at the failure in the
// libstdc++.so.6 loaded since (dlopen with RTLD_NOLOAD): a C program that dlopens a C++ library,
// as Python does an extension module, brings it in after the preload's references were bound to
// nothing, and that library's failed operator new aborted instead of throwing. With no
// libstdc++ loaded at all (a C program that calls the mangled operator new itself) a failed
// allocation aborts.
#include <dlfcn.h>
#include <stdlib.h>

#include <new>

#include "bedrock/heap.h"
#include "heap/heap_entry.h"
#include "preload/preload_heap.h"

namespace std {
// libstdc++'s own: throws std::bad_alloc. Weak: see above.
void __throw_bad_alloc() __attribute__((weak));
new_handler get_new_handler() noexcept __attribute__((weak));
} // namespace std

#define BEDROCK_EXPORT __attribute__((visibility("default")))

using bedrock::heap::Caller;

namespace {

[[gnu::always_inline]] inline void* try_allocate(size_t size, size_t alignment, Caller caller) {
    bedrock::Heap* started = bedrock::preload::heap();
    return started != nullptr ? bedrock::heap::allocate(*started, size, alignment, caller)
                              : nullptr;
}

// libstdc++'s two functions (the file comment says where from); null where it is not loaded.
struct CxxRuntime {
    std::new_handler (*get_new_handler)() noexcept;
    void (*throw_bad_alloc)();
};

CxxRuntime cxx_runtime() {
    if (std::__throw_bad_alloc != nullptr && std::get_new_handler != nullptr) {
        return {std::get_new_handler, std::__throw_bad_alloc};
    }
    CxxRuntime found{nullptr, nullptr};
    void* library = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_NOLOAD);
    if (library != nullptr) {
        found.get_new_handler = reinterpret_cast<std::new_handler (*)() noexcept>(
            dlsym(library, "_ZSt15get_new_handlerv"));
        found.throw_bad_alloc =
            reinterpret_cast<void (*)()>(dlsym(library, "_ZSt17__throw_bad_allocv"));
        dlclose(library); // what loaded it keeps it
    }
    return found;
}

// Throws std::bad_alloc, or aborts where no libstdc++ is loaded.
[[noreturn, gnu::noinline]] void throw_bad_alloc(const CxxRuntime& runtime) {
    if (runtime.throw_bad_alloc == nullptr) {
        abort();
    }
    runtime.throw_bad_alloc();
    __builtin_unreachable();
}

// The new-handler loop, out of line: only a failed allocation comes here.
[[gnu::noinline]] void* allocate_after_failure(size_t size, size_t alignment, Caller caller) {
    for (;;) {
        const CxxRuntime runtime = cxx_runtime();
        std::new_handler handler =
            runtime.get_new_handler != nullptr ? runtime.get_new_handler() : nullptr;
        if (handler == nullptr) {
            throw_bad_alloc(runtime);
        }
        handler();
        if (void* block = try_allocate(size, alignment, caller); block != nullptr) {
            return block;
        }
    }
}

[[gnu::always_inline]] inline void* allocate_or_throw(size_t size, size_t alignment,
                                                      Caller caller) {
    if (void* block = try_allocate(size, alignment, caller); block != nullptr) {
        return block;
    }
    return allocate_after_failure(size, alignment, caller);
}

// An aligned form's alignment for the heap (at least its own), or 0 for one that is no power of
// two.
size_t aligned(std::align_val_t alignment) {
    const auto value = static_cast<size_t>(alignment);
    if (value == 0 || (value & (value - 1)) != 0) {
        return 0;
    }
    return value < bedrock::kHeapMinAlignment ? bedrock::kHeapMinAlignment : value;
}

// An aligned throwing form: std::bad_alloc at once for an alignment that is no power of two.
[[gnu::always_inline]] inline void*
allocate_aligned_or_throw(size_t size, std::align_val_t alignment, Caller caller) {
    const size_t value = aligned(alignment);
    if (value == 0) [[unlikely]] {
        throw_bad_alloc(cxx_runtime());
    }
    return allocate_or_throw(size, value, caller);
}

// An aligned nothrow form: null for an alignment that is no power of two.
[[gnu::always_inline]] inline void*
allocate_aligned_or_null(size_t size, std::align_val_t alignment, Caller caller) {
    const size_t value = aligned(alignment);
    return value != 0 ? try_allocate(size, value, caller) : nullptr;
}

[[gnu::always_inline]] inline void release(void* block, Caller caller) noexcept {
    if (block == nullptr) {
        return;
    }
    if (bedrock::Heap* started = bedrock::preload::heap(); started != nullptr) {
        bedrock::heap::free(*started, block, caller);
    }
}

// A sized delete: while checking is on, the size named is compared with the block's
// (size-mismatch) before the free.
[[gnu::always_inline]] inline void release_sized(void* block, size_t size, Caller caller) noexcept {
    if (bedrock::Heap* started = bedrock::preload::heap();
        started != nullptr && bedrock::heap::checks_are_on(*started)) [[unlikely]] {
        bedrock::heap::check_named_size(*started, block, size, caller);
    }
    release(block, caller);
}

} // namespace

BEDROCK_EXPORT void* operator new(size_t size) {
    return allocate_or_throw(size, bedrock::kHeapMinAlignment,
                             BEDROCK_HEAP_CALLER_OF(CallFamily::New));
}
BEDROCK_EXPORT void* operator new[](size_t size) {
    return allocate_or_throw(size, bedrock::kHeapMinAlignment,
                             BEDROCK_HEAP_CALLER_OF(CallFamily::NewArray));
}
BEDROCK_EXPORT void* operator new(size_t size, std::align_val_t alignment) {
    return allocate_aligned_or_throw(size, alignment, BEDROCK_HEAP_CALLER_OF(CallFamily::New));
}
BEDROCK_EXPORT void* operator new[](size_t size, std::align_val_t alignment) {
    return allocate_aligned_or_throw(size, alignment, BEDROCK_HEAP_CALLER_OF(CallFamily::NewArray));
}
BEDROCK_EXPORT void* operator new(size_t size, const std::nothrow_t&) noexcept {
    return try_allocate(size, bedrock::kHeapMinAlignment, BEDROCK_HEAP_CALLER_OF(CallFamily::New));
}
BEDROCK_EXPORT void* operator new[](size_t size, const std::nothrow_t&) noexcept {
    return try_allocate(size, bedrock::kHeapMinAlignment,
                        BEDROCK_HEAP_CALLER_OF(CallFamily::NewArray));
}
BEDROCK_EXPORT void* operator new(size_t size, std::align_val_t alignment,
                                  const std::nothrow_t&) noexcept {
    return allocate_aligned_or_null(size, alignment, BEDROCK_HEAP_CALLER_OF(CallFamily::New));
}
BEDROCK_EXPORT void* operator new[](size_t size, std::align_val_t alignment,
                                    const std::nothrow_t&) noexcept {
    return allocate_aligned_or_null(size, alignment, BEDROCK_HEAP_CALLER_OF(CallFamily::NewArray));
}

BEDROCK_EXPORT void operator delete(void* block) noexcept {
    release(block, BEDROCK_HEAP_CALLER_OF(CallFamily::New));
}
BEDROCK_EXPORT void operator delete[](void* block) noexcept {
    release(block, BEDROCK_HEAP_CALLER_OF(CallFamily::NewArray));
}
BEDROCK_EXPORT void operator delete(void* block, size_t size) noexcept {
    release_sized(block, size, BEDROCK_HEAP_CALLER_OF(CallFamily::New));
}
BEDROCK_EXPORT void operator delete[](void* block, size_t size) noexcept {
    release_sized(block, size, BEDROCK_HEAP_CALLER_OF(CallFamily::NewArray));
}
BEDROCK_EXPORT void operator delete(void* block, std::align_val_t) noexcept {
    release(block, BEDROCK_HEAP_CALLER_OF(CallFamily::New));
}
BEDROCK_EXPORT void operator delete[](void* block, std::align_val_t) noexcept {
    release(block, BEDROCK_HEAP_CALLER_OF(CallFamily::NewArray));
}
BEDROCK_EXPORT void operator delete(void* block, size_t size, std::align_val_t) noexcept {
    release_sized(block, size, BEDROCK_HEAP_CALLER_OF(CallFamily::New));
}
BEDROCK_EXPORT void operator delete[](void* block, size_t size, std::align_val_t) noexcept {
    release_sized(block, size, BEDROCK_HEAP_CALLER_OF(CallFamily::NewArray));
}
BEDROCK_EXPORT void operator delete(void* block, const std::nothrow_t&) noexcept {
    release(block, BEDROCK_HEAP_CALLER_OF(CallFamily::New));
}
BEDROCK_EXPORT void operator delete[](void* block, const std::nothrow_t&) noexcept {
    release(block, BEDROCK_HEAP_CALLER_OF(CallFamily::NewArray));
}
BEDROCK_EXPORT void operator delete(void* block, std::align_val_t, const std::nothrow_t&) noexcept {
    release(block, BEDROCK_HEAP_CALLER_OF(CallFamily::New));
}
BEDROCK_EXPORT void operator delete[](void* block, std::align_val_t,
                                      const std::nothrow_t&) noexcept {
    release(block, BEDROCK_HEAP_CALLER_OF(CallFamily::NewArray));
}
