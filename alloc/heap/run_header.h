// RunHeader: the first bytes of every run of pages a heap holds for blocks - a slab of one size
// class or one large block - and how a block pointer leads to it.
//
// Invariant (what makes free() O(1) without a lookup table): for every block p a heap hands
// out, the run header of p is at
//   run_of(p) = (p - 1) & ~(kSlabBytes - 1)
// because slabs start on a kSlabBytes boundary with their header and never hand out their base
// address, and a large block's header sits on the kSlabBytes boundary in (p - kSlabBytes, p).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "heap/size_class.h"

namespace bedrock {
class Heap;
} // namespace bedrock

namespace bedrock::heap {

// Checked kinds hold blocks with checked-mode headers and red zones (checked_block.h); a
// guarded run is a guard-page pool chunk (guarded_pool.h).
enum class RunKind : uint8_t {
    Slab = 1,
    Large = 2,
    CheckedSlab = 3,
    CheckedLarge = 4,
    Guarded = 5
};

// "BRun": written when a run is set up, cleared when it goes back to the page source.
inline constexpr uint32_t kRunMagic = 0x6e755242;

struct RunHeader {
    uint32_t magic;
    RunKind kind;
    uint8_t class_index; // slabs only
    uint16_t unused;
    Heap* owner;
    uint64_t source_address; // what the page source needs to take the run back
};
static_assert(sizeof(RunHeader) == 24);

inline RunHeader* run_of(const void* block) {
    const uintptr_t address = reinterpret_cast<uintptr_t>(block) - 1;
    return reinterpret_cast<RunHeader*>(address & ~(uintptr_t{kSlabBytes} - 1));
}

} // namespace bedrock::heap
