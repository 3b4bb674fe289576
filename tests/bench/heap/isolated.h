// SPDX-License-Identifier: MIT
// run_isolated(): runs one measurement in a child process and hands its result back through
// shared memory. Each heap then starts from a fresh process (the heap's global list of heap
// memory only grows, so a second heap in the same process would make free() dearer), and a heap
// that crashes or reports misuse (the bench platform aborts) costs that measurement only: the
// parent says so on stderr and gets no result.
#pragma once

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <type_traits>

#include "bedrock/platform.h"

namespace bench {

template <class Result, class Function>
std::optional<Result> run_isolated(const char* what, Function&& function) {
    static_assert(std::is_trivially_copyable_v<Result>);
    void* shared =
        mmap(nullptr, sizeof(Result), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) {
        fprintf(stderr, "heap_limits: %s: mmap failed\n", what);
        return std::nullopt;
    }
    fflush(stdout);
    fflush(stderr);
    const pid_t child = fork();
    if (child == 0) {
        // The host platform gives a thread its CPU slot on its first current_cpu() (a
        // thread-exit registration, symbol binding: thousands of instructions). A cost of the
        // host, not of the heap: paid here, before anything is measured.
        static_cast<void>(bedrock::platform::current_cpu());
        const Result result = function();
        memcpy(shared, &result, sizeof(Result));
        _exit(0);
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child) {
        fprintf(stderr, "heap_limits: %s: could not run a child process\n", what);
        munmap(shared, sizeof(Result));
        return std::nullopt;
    }
    std::optional<Result> result;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        Result copy;
        memcpy(&copy, shared, sizeof(Result));
        result = copy;
    } else if (WIFSIGNALED(status)) {
        fprintf(stderr, "heap_limits: %s: crashed (%s)\n", what, strsignal(WTERMSIG(status)));
    } else {
        fprintf(stderr, "heap_limits: %s: exited with status %d\n", what, WEXITSTATUS(status));
    }
    munmap(shared, sizeof(Result));
    return result;
}

} // namespace bench
