// SPDX-License-Identifier: MIT
// The one piece of the C++ runtime libbedrock-malloc.so needs, so that it does not depend on
// libstdc++: __cxa_thread_atexit, which registers the destructor of a thread_local object (the
// CPU slot of cpu_slots.cpp) to run at thread exit. It forwards to glibc's implementation, as
// libstdc++'s does. Hidden: the program's own C++ runtime keeps its definition.
#include <stddef.h>

extern "C" {

extern void* __dso_handle;
int __cxa_thread_atexit_impl(void (*destructor)(void*), void* object, void* dso_handle);
int __cxa_thread_atexit(void (*destructor)(void*), void* object, void* dso_handle);

__attribute__((visibility("hidden"))) int __cxa_thread_atexit(void (*destructor)(void*),
                                                              void* object, void* dso_handle) {
    return __cxa_thread_atexit_impl(destructor, object, dso_handle);
}

} // extern "C"
