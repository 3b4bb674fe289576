// The state of one heap, kept at the front of the memory it manages (bedrock/heap.h keeps the
// type opaque). Owns nothing itself: each member owns its part (page_source.h, class_cache.h,
// large_block.h), with the lock order
//   class lock -> page source;  large-block lock alone (released before the page source);
//   checked-blocks lock and guard-pool lock alone (released before calling anything else).
// Checked mode (bedrock/heap_checks.h) adds its own caches (checked_classes: slabs that hold
// only checked blocks), the checked-block lists and the guard-page pool; with checking
// compiled out they stay empty.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/heap.h"
#include "checked/checked_blocks.h"
#include "heap/class_cache.h"
#include "report/error_policy.h"
#include "checked/guarded_pool.h"
#include "heap/large_block.h"
#include "heap/page_source.h"
#include "heap/size_class.h"

namespace bedrock {

class Heap {
public:
    // "BHep": set by heap_create*, cleared by heap_destroy.
    static constexpr uint32_t kMagic = 0x70654842;

    uint32_t magic;
    // The pages holding this state: frames heaps only (a region heap's state is in its region).
    PageFrameAllocator* self_frames;
    heap::PageRun self;
    size_t self_pages;
    heap::PageSource source;
    heap::LargeBlocks large;
    heap::ClassCache classes[heap::kSizeClassCount];
    heap::ClassCache checked_classes[heap::kSizeClassCount];
    heap::ErrorPolicy errors;
    heap::CheckedBlocks checked;
    heap::GuardedPool guards;
};

static_assert(kMaxSmallBlock == heap::kMaxSmallSize);
static_assert(kHeapSizeClassCount == heap::kSizeClassCount);
static_assert(kHeapMinAlignment == heap::kMinBlockSize);

} // namespace bedrock
