// Large blocks: requests above kMaxSmallSize (or aligned beyond what a size class offers), each
// a run of pages of its own from the page source, given back on free - the kernel's analogue
// of the mmap threshold.
//
// Layout of one run (A = requested alignment, S = kSlabBytes):
//   A <= S:  [LargeBlock header | prefix, pad to A ][ block ............ ][ tail < 1 page ]
//            ^ run base, S-aligned                   ^ p = base + round_up(64 + prefix, A)
//   A >  S:  [ pad: A - S bytes ][LargeBlock header | prefix, pad ][ block ....... ]
//            ^ run base, A-aligned                          ^ p = base + A
// where the prefix (0, or the checked-mode block header, prefix <= kMaxPrefix) is free bytes the
// caller may use directly below p. So the header is always the S boundary just below p
// (run_header.h):
//   header == run_of(p),  p == header + block_offset,  0 < block_offset <= S
//   run base == header - run_offset,  usable(p) == pages * kPageSize - run_offset - block_offset
//
// Owns: the list of live large blocks and their statistics, guarded by LargeBlocks::m_lock.
// Lock order: m_lock is never held while calling the page source.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/spinlock.h"
#include "heap/page_source.h"
#include "heap/run_header.h"

namespace bedrock::heap {

struct LargeBlock {
    RunHeader run;
    LargeBlock* next;
    LargeBlock* prev;
    uint64_t pages;
    uint32_t run_offset;   // header - run base
    uint32_t block_offset; // block - header
    uint64_t requested;

    [[nodiscard]] size_t usable_size() const {
        return pages * kPageSize - run_offset - block_offset;
    }
};
static_assert(sizeof(LargeBlock) == 64);

class LargeBlocks {
public:
    static constexpr size_t kMaxPrefix = 1024;
    // Sizes and alignments above this are refused: far beyond any memory, and it keeps the
    // layout arithmetic from overflowing.
    static constexpr size_t kMaxSize = ~size_t{0} >> 2;

    // A block of `size` bytes aligned to `alignment` (a power of two >= kMinBlockSize) with
    // `prefix` bytes (<= kMaxPrefix) reserved below it, in a run of kind `kind` (Large or
    // CheckedLarge); null when the page source has no such run or the size overflows. One
    // page-source call.
    [[nodiscard]] void* allocate(PageSource& source, Heap* owner, size_t size, size_t alignment,
                                 size_t prefix = 0, RunKind kind = RunKind::Large);
    // Frees `block`, whose run header is `header` (already checked to be a large block of this
    // heap). Returns false, changing nothing, if `block` is not the block's start. One
    // page-source call.
    [[nodiscard]] bool free(PageSource& source, LargeBlock* header, void* block);
    // Whether `block` is exactly the block of `header`.
    [[nodiscard]] static bool is_block(const LargeBlock* header, const void* block) {
        return reinterpret_cast<uintptr_t>(block) ==
               reinterpret_cast<uintptr_t>(header) + header->block_offset;
    }

    struct Totals {
        uint64_t blocks;
        uint64_t pages;
        uint64_t bytes_in_use;
        uint64_t allocations;
        uint64_t bytes_requested;
    };
    [[nodiscard]] Totals totals();
    [[nodiscard]] bool check();

private:
    SpinLock m_lock;
    LargeBlock* m_list = nullptr;
    Totals m_totals = {};
};

} // namespace bedrock::heap
