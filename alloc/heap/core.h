// SPDX-License-Identifier: MIT
// The heap core's interface to the layer above it (checked mode, checked/): take a block of
// the heap's memory, give it back, look up what holds an address (and, for a report, whether
// another heap does). The layer keeps its own
// metadata inside the blocks it takes; the core knows only each block's use (BlockUse), so
// free() sends Checked and Guard blocks to the layer and nothing else.
#pragma once

#include <stddef.h>

#include "heap/block_ref.h"

namespace bedrock {
class Heap;
}

namespace bedrock::heap {

struct TakenBlock {
    unsigned char* start; // null when out of memory
    size_t usable;
};

// A block of at least `size` bytes at `alignment` (a power of two) for `use` (Checked or Guard):
// a medium block, or a large run for a big Checked block over a page frame allocator.
// `requested` feeds the statistics. Bounds as heap_allocate's.
[[nodiscard]] TakenBlock take_block(Heap& heap, size_t size, size_t alignment, BlockUse use,
                                    size_t requested);
// Gives back a block from take_block(). O(1) plus at most one page free.
void give_block(Heap& heap, const BlockRef& block);
// What holds `address` in `heap`, decided under the locks of the part that holds it.
[[nodiscard]] BlockRef find_block(Heap& heap, const void* address);
// Cold path, for reports: whether another live heap holds `address`: a region heap (such as a
// heap made inside one of this heap's blocks), or a heap over another page frame allocator (heaps
// over the same page frame allocator tell each other's blocks apart by the owner id in the page
// tags). In heap_lifecycle.cpp, which keeps the lists of live heaps. Takes the lists' locks in
// turn: call it with no lock held.
[[nodiscard]] bool another_heap_holds(const Heap& heap, const void* address);

} // namespace bedrock::heap
