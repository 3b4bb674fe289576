// SPDX-License-Identifier: MIT
// libbedrock-malloc.so's configuration: the BEDROCK_* environment variables, read once at the
// first allocation, before libc may be fully up (no allocation, no getenv).
//   BEDROCK_CHECK=off|report|abort  the heap's check level (default off)
//   BEDROCK_GUARD=N                 guard pages for every Nth checked allocation up to 4 KiB,
//                                   in a pool of kGuardSlots slots (fewer on 64 KiB host
//                                   pages: preload_heap.cpp), their faults reported
//                                   (fault_handler.cpp) (0 or unset: none); needs a check level
//                                   (report or abort, or one BEDROCK_LEAKS implies)
//   BEDROCK_LEAKS=1                 the heap's leak report on stderr at exit (implies
//                                   BEDROCK_CHECK=report if no level is given: leaks are
//                                   tracked for checked blocks only, so with BEDROCK_CHECK=off
//                                   it is ignored)
//   BEDROCK_MEMORY=MiB              the memory reservation (default 65536)
//   BEDROCK_STATS=1                 where the memory went, one line on stderr at exit
// Unknown values are ignored (the default stays) after a line on stderr, and so are BEDROCK_GUARD
// and BEDROCK_LEAKS at check level off ("bedrock: ignoring BEDROCK_GUARD=1: it needs checked
// mode ...").
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/heap_checks.h"

namespace bedrock::preload {

inline constexpr uint32_t kGuardSlots = 256;
inline constexpr uint32_t kLeastGuardSlots = 7; // one chunk of the pool (guarded_pool.h)
// Bytes freed inside the heap after which its free pages are told unused again (madvise): the
// heap's unused interval (heap_set_unused_interval).
inline constexpr size_t kUnusedIntervalBytes = size_t{16} << 20;

struct Options {
    CheckLevel check = CheckLevel::Off;
    uint32_t guard_interval = 0; // 0: no guard pages
    bool leaks = false;
    bool statistics = false;
    uint64_t reservation_bytes = uint64_t{64} << 30;
};

// Reads the variables from `environ`, or from /proc/self/environ while libc has not set
// `environ` yet. Allocates nothing. Time: O(size of the environment).
[[nodiscard]] Options read_options();

} // namespace bedrock::preload
