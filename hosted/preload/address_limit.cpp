// SPDX-License-Identifier: MIT
// libbedrock-malloc.so's setrlimit, setrlimit64, prlimit and prlimit64: glibc's (found with
// dlsym(RTLD_NEXT)), and then, when the process set its own address-space limit (RLIMIT_AS's
// soft limit, the one the kernel enforces), the heap's reservation gives back what lies beyond
// its fair share of what the limit leaves (hosted::fit_to_address_limit). The whole reservation
// counts against that limit, unused as most of it is: without this, a program that lowers it
// below the reservation (resource.setrlimit in Python, a sandbox, a judge), or just above it,
// could map nothing more, start no thread, nor grow its stack. A limit in place before the
// program starts is met by start() itself; the data limit (RLIMIT_DATA) counts only what the
// reservation has grown into.
// No state; each call is glibc's plus, for RLIMIT_AS, the fit's.
#include <dlfcn.h>
#include <errno.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bedrock/hosted.h"

#define BEDROCK_EXPORT __attribute__((visibility("default")))

namespace {

// glibc's function `name`, of type Function; null if there is none.
template <typename Function>
Function next(const char* name) {
    return reinterpret_cast<Function>(dlsym(RTLD_NEXT, name));
}

// After a successful call that set `limits` for process `pid` (0: the caller).
void limit_set(pid_t pid, int resource, const struct rlimit* limits) {
    if (resource == RLIMIT_AS && limits != nullptr && limits->rlim_cur != RLIM_INFINITY &&
        (pid == 0 || pid == getpid())) {
        bedrock::hosted::fit_to_address_limit(limits->rlim_cur);
    }
}

using SetLimit = int (*)(int, const struct rlimit*);
using ProcessLimit = int (*)(pid_t, int, const struct rlimit*, struct rlimit*);

int set_limit(const char* name, int resource, const struct rlimit* limits) {
    const auto glibc = next<SetLimit>(name);
    if (glibc == nullptr) {
        errno = ENOSYS;
        return -1;
    }
    const int result = glibc(resource, limits);
    if (result == 0) {
        limit_set(0, resource, limits);
    }
    return result;
}

int process_limit(const char* name, pid_t pid, int resource, const struct rlimit* limits,
                  struct rlimit* old_limits) {
    const auto glibc = next<ProcessLimit>(name);
    if (glibc == nullptr) {
        errno = ENOSYS;
        return -1;
    }
    const int result = glibc(pid, resource, limits, old_limits);
    if (result == 0) {
        limit_set(pid, resource, limits);
    }
    return result;
}

} // namespace

// 64-bit targets only: struct rlimit and struct rlimit64 are one layout, so the 64 forms are
// the same functions under their other names, as in glibc.
static_assert(sizeof(rlim_t) == 8, "struct rlimit64 must be struct rlimit");

extern "C" {

BEDROCK_EXPORT int setrlimit(__rlimit_resource_t resource, const struct rlimit* limits) noexcept {
    return set_limit("setrlimit", resource, limits);
}

BEDROCK_EXPORT int setrlimit64(__rlimit_resource_t resource,
                               const struct rlimit64* limits) noexcept {
    return set_limit("setrlimit64", resource, reinterpret_cast<const struct rlimit*>(limits));
}

BEDROCK_EXPORT int prlimit(pid_t pid, enum __rlimit_resource resource, const struct rlimit* limits,
                           struct rlimit* old_limits) noexcept {
    return process_limit("prlimit", pid, resource, limits, old_limits);
}

BEDROCK_EXPORT int prlimit64(pid_t pid, enum __rlimit_resource resource,
                             const struct rlimit64* limits, struct rlimit64* old_limits) noexcept {
    return process_limit("prlimit64", pid, resource, reinterpret_cast<const struct rlimit*>(limits),
                         reinterpret_cast<struct rlimit*>(old_limits));
}

} // extern "C"
