// SPDX-License-Identifier: MIT
// The C++ library late_cxx_runtime.c loads with dlopen: a new-handler that gives up on its
// second call (it removes itself), around an operator new of 1 TiB, which fails under glibc and
// under the preload. Returns how many times the handler ran before std::bad_alloc was caught,
// or -1 if the allocation succeeded.
#include <cstddef>
#include <new>

namespace {

int g_handler_calls = 0;

void give_up_on_second_call() {
    if (++g_handler_calls == 2) {
        std::set_new_handler(nullptr);
    }
}

char* volatile g_sink;

} // namespace

extern "C" __attribute__((visibility("default"))) int handler_calls_before_bad_alloc() {
    std::set_new_handler(give_up_on_second_call);
    try {
        g_sink = new char[std::size_t{1} << 40];
    } catch (const std::bad_alloc&) {
        return g_handler_calls;
    }
    delete[] g_sink;
    return -1;
}
