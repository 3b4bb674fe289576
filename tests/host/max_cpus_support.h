// SPDX-License-Identifier: MIT
// Sizes the allocator's host tests derive from BEDROCK_MAX_CPUS: how much more per-CPU state
// Bedrock keeps in this build than with the default 64 CPU slots. A test whose sizes are chosen
// for the default build adds these to them, so that it checks the same thing at any
// BEDROCK_MAX_CPUS; with 64 slots or fewer they are 0 and the test is what it was.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/page_frame_allocator.h"
#include "bedrock/platform.h"
#include "heap/cpu_cache.h"
#include "pages/cpu_page_lists.h"

namespace bedrock::test {

inline constexpr unsigned kDefaultMaxCpus = 64;

// The CPU slots this build has beyond the default build's (0 with 64 or fewer).
inline constexpr size_t kCpuSlotsBeyondDefault =
    platform::kMaxCpus > kDefaultMaxCpus ? platform::kMaxCpus - kDefaultMaxCpus : 0;

// One CPU slot's page lists (kCpuListOrders lists of a cache line each), which the page frame
// allocator's metadata holds for every slot when it has CPU page lists.
inline constexpr uint64_t kCpuPageListsBytesPerCpu = kCpuListOrders * sizeof(pages::CpuPageList);

// The page frame allocator's metadata beyond the default build's: the extra slots' page lists.
inline constexpr uint64_t kPageListsBytesBeyondDefault =
    kCpuSlotsBeyondDefault * kCpuPageListsBytesPerCpu;

// A heap's state beyond the default build's: one CPU cache pointer per extra slot
// (heap::CpuCaches), rounded up to whole pages, so that a region this much larger leaves the
// heap's arena at least the room it has in the default build.
inline constexpr size_t kHeapStateBytesBeyondDefault =
    (kCpuSlotsBeyondDefault * sizeof(heap::CpuCache*) + kPageSize - 1) / kPageSize * kPageSize;

} // namespace bedrock::test
