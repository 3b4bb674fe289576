// Slab: kSlabBytes of one size class, carved into equal blocks (layout in size_class.h).
//
// Owns: the slab's free list, its allocated bitmap and its counters. A slab is touched only
// under the lock of its class (class_cache.h); it takes no lock itself.
// Invariants, with n = block_count of the class:
//   used + |free list| + (n - fresh) == n
//   popcount(allocated bitmap) == used
//   bit i set  <=>  block i is handed out; free-list blocks and blocks >= fresh have bit 0
// Blocks at index >= fresh have never been handed out: a new slab costs O(1), not O(n).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "run_header.h"

namespace bedrock::heap {

struct FreeBlock {
    FreeBlock* next;
};

struct Slab {
    RunHeader run;
    Slab* next; // in the class's partial list or reserve
    Slab* prev;
    FreeBlock* free_list;
    uint32_t used;  // blocks handed out
    uint32_t fresh; // index of the first never-used block
    uint64_t unused;

    [[nodiscard]] const SlabLayout& layout() const { return kSlabLayouts[run.class_index]; }
    [[nodiscard]] bool is_full() const { return used == layout().block_count; }
    [[nodiscard]] uint64_t* bitmap() { return reinterpret_cast<uint64_t*>(this + 1); }
    [[nodiscard]] const uint64_t* bitmap() const {
        return reinterpret_cast<const uint64_t*>(this + 1);
    }
};
static_assert(sizeof(Slab) == kSlabHeaderBytes);
static_assert(alignof(Slab) <= kMinBlockSize);

// What slab_give found.
enum class SlabFree { Freed, NotABlock, AlreadyFree };

// Sets up a slab of class `class_index` at `base` (kSlabBytes-aligned). O(bitmap words).
Slab* slab_init(void* base, uint64_t source_address, Heap* owner, unsigned class_index);
// Hands out one block. Precondition: !slab->is_full(). O(1).
[[nodiscard]] void* slab_take(Slab* slab);
// Takes back `block` if it is a handed-out block of the slab. O(1).
[[nodiscard]] SlabFree slab_give(Slab* slab, void* block);
// Checks the invariants above. O(n).
[[nodiscard]] bool slab_check(const Slab* slab);

} // namespace bedrock::heap
