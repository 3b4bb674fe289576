/* SPDX-License-Identifier: MIT */
/* A C program (no C++ runtime at start-up) that loads a C++ library with dlopen, as Python loads
 * an extension module written in C++: libstdc++ arrives with it, after libbedrock-malloc.so
 * started. A failing operator new in that library must call its new-handler and then throw
 * std::bad_alloc, which the library catches (late_cxx_runtime_library.cpp), as it does under
 * glibc; the preload aborted, its references to libstdc++ having been bound (to nothing) when it
 * loaded. The library's path is the argument. Prints "ok" and exits 0 when it holds. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char** argv) {
    if (argc != 2) {
        return 2;
    }
    void* library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        printf("FAIL: dlopen: %s\n", dlerror());
        return 1;
    }
    int (*handler_calls_before_bad_alloc)(void) =
        (int (*)(void))dlsym(library, "handler_calls_before_bad_alloc");
    if (handler_calls_before_bad_alloc == NULL) {
        printf("FAIL: dlsym: %s\n", dlerror());
        return 1;
    }
    const int calls = handler_calls_before_bad_alloc();
    if (calls != 2) {
        printf("FAIL: the new-handler ran %d times before std::bad_alloc was caught (-1: none "
               "was), wanted 2\n",
               calls);
        return 1;
    }
    printf("ok\n");
    return 0;
}
