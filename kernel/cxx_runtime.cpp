// SPDX-License-Identifier: MIT
// The C++ runtime support that freestanding code needs and no library provides here:
// static constructors (.init_array), __cxa_pure_virtual, __cxa_atexit/__dso_handle, and the
// guards for function-local statics.
//
// Invariant for a guard object: byte 0 is non-zero once the static is initialized; byte 1 is a
// lock held by the one CPU running the initializer.
#include <stdint.h>

#include "kernel/console.h"
#include "kernel/cxx_runtime.h"

extern "C" {
using Constructor = void (*)();
extern const Constructor __init_array_start[];
extern const Constructor __init_array_end[];
}

namespace bedrock::kernel {

void run_static_constructors() {
    for (const Constructor* constructor = __init_array_start; constructor != __init_array_end;
         ++constructor) {
        (*constructor)();
    }
}

} // namespace bedrock::kernel

extern "C" {

void* __dso_handle = nullptr;

// The kernel never returns from kernel_main, so destructors of statics never need to run.
int __cxa_atexit(void (*)(void*), void*, void*) {
    return 0;
}

void __cxa_pure_virtual() {
    bedrock::kernel::panic("pure virtual function called");
}

int __cxa_guard_acquire(uint64_t* guard) {
    auto* bytes = reinterpret_cast<uint8_t*>(guard);
    if (__atomic_load_n(&bytes[0], __ATOMIC_ACQUIRE) != 0) {
        return 0;
    }
    while (__atomic_exchange_n(&bytes[1], uint8_t{1}, __ATOMIC_ACQUIRE) != 0) {
    }
    if (bytes[0] != 0) { // another CPU finished the initializer while this one waited
        __atomic_store_n(&bytes[1], uint8_t{0}, __ATOMIC_RELEASE);
        return 0;
    }
    return 1;
}

void __cxa_guard_release(uint64_t* guard) {
    auto* bytes = reinterpret_cast<uint8_t*>(guard);
    __atomic_store_n(&bytes[0], uint8_t{1}, __ATOMIC_RELEASE);
    __atomic_store_n(&bytes[1], uint8_t{0}, __ATOMIC_RELEASE);
}

void __cxa_guard_abort(uint64_t* guard) {
    __atomic_store_n(&reinterpret_cast<uint8_t*>(guard)[1], uint8_t{0}, __ATOMIC_RELEASE);
}

} // extern "C"
