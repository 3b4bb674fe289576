// SPDX-License-Identifier: MIT
// The state of one heap, kept at the front of the memory it manages (bedrock/heap.h keeps the
// type opaque), followed by its segregated fit's list heads (fit_storage()). Owns nothing
// itself: each member owns its part, with the lock order
//   (a CPU's cache: interrupts off, no lock) -> class lock -> arenas lock -> page frame allocator;
//   large-run lock -> page frame allocator;
//   checked mode's locks alone (checked/checked_layer.h: released before calling the core);
//   the page frame allocator's reclaim hook (heap_lifecycle.cpp), called from any allocation of
//   it that failed, maybe inside this heap's locks: it only tries the class and arenas locks;
//   for fork(), heap_lock_all() takes them all: checked mode's -> class locks -> arenas ->
//   large runs -> the live heaps list and owner ids (heap_lifecycle.cpp).
//
//   frames heap:  [ Heap | fit heads ]  in pages of its own;  arenas and large runs from `frames`
//   region heap:  [ Heap | fit heads | the one arena ................................. ]
// The state and each arena begin with a 16-byte pad (Heap::pad, Arena::pad) that no call reads:
// what a write past the end of the memory before them reaches first.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/heap.h"
#include "bedrock/platform.h"
#include "heap/arenas.h"
#include "heap/checked_layer.h"
#include "heap/class_cache.h"
#include "heap/cpu_cache.h"
#include "heap/held_pages.h"
#include "heap/large_runs.h"
#include "heap/size_class.h"
#include "report/error_policy.h"
#include "support/overflow_pad.h"

namespace bedrock {

class Heap {
public:
    // "BHep": set by heap_create*, cleared by heap_destroy.
    static constexpr uint32_t kMagic = 0x70654842;
    // What heap_destroy() leaves: a call on a heap destroyed already is told from one on memory
    // that never held a heap (zeroed memory included).
    static constexpr uint32_t kDestroyedMagic = 0x44654842;

    [[nodiscard]] void* fit_storage() { return this + 1; }
    [[nodiscard]] bool over_frames() const { return frames != nullptr; }

    // Where a write past the end of the memory before the state (a large run's last page, over a
    // page frame allocator) lands first: nothing any call reads, but a pad keyed with the
    // secret, which heap_check() expects, so that such a write of up to 16 bytes is found and
    // reported.
    OverflowPad<2> pad;
    uint32_t magic;
    uint16_t owner_id;          // frames heaps (owner_ids.h); 0 for a region heap
    PageFrameAllocator* frames; // null for a region heap
    PhysAddr state_phys;        // frames heaps: the pages holding this state
    uint64_t state_pages;
    uint64_t region_pages; // region heaps: the pages of the region (all held)
    uintptr_t secret;      // encodes free-list links and free marks (slab.h); top bit set
    Heap* next_heap; // the live region heaps (heap_lifecycle.cpp), for reports on foreign blocks
    Heap* prev_heap;
    heap::ErrorPolicy errors;
    heap::HeldPages held;
    heap::Arenas arenas;
    heap::LargeRuns large;
    heap::ClassCache classes[heap::kSizeClassCount];
    heap::CpuCaches cpus;
    heap::CheckedLayer checked;
    uint64_t reclaims; // mallocs that took back idle memory (heap.cpp), atomic increments
    // Between heap_lock_all() and heap_unlock_all() (written and read with every lock held):
    // the interrupt mask found before the first lock, and the mask every lock() then returned.
    platform::InterruptState locked_all_previous;
    platform::InterruptState locked_all_off;
};

static_assert(kMaxSmallBlock == heap::kMaxSmallSize);
static_assert(kHeapSizeClassCount == heap::kSizeClassCount);
static_assert(kHeapMinAlignment == heap::kMinBlockSize);
static_assert(alignof(Heap) <= 64);

} // namespace bedrock
