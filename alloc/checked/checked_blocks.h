// SPDX-License-Identifier: MIT
// CheckedBlocks: one heap's checked-mode bookkeeping - the list of live checked blocks (for
// leak reports and heap_check), the quarantine of freed ones and the allocation sequence.
//
// Owns, under m_lock: the live list (doubly linked through CheckedBlock::prev/next, newest
// first), the quarantine (same links, FIFO: oldest at its front), its byte count and limit, the
// oversized block and the sequence counter. The quarantine proper holds the blocks that fit the
// limit; a block whose footprint alone exceeds it (a freed 1 MiB block against the default limit)
// waits apart as the oversized block until a later such block, a flush or a limit of 0 takes its
// place, so a big block is quarantined too while the memory held stays within the limit plus one
// block. Invariants:
//   every header on the live list is Live; every header in the quarantine, and the oversized
//   block if any, is Quarantined
//   quarantine_bytes == sum of footprint() over the quarantine (the oversized block apart), and
//   after every free quarantine_bytes <= the limit
//   an allocation that finds no memory empties the quarantine and the oversized block and tries
//   once more, so the quarantine never makes an allocation fail
//   a header whose seal does not hold (checked_block.h) is never unlinked and its links never
//   followed: its free is refused (corrupt-metadata), and a walk of its list stops there and goes
//   on from the list's other end, so one damaged header hides only its own block and two the
//   blocks between them; met at the quarantine's front it is left alone (never reused) and the
//   quarantine goes on with the blocks the walk from its back reached
// Lock order: m_lock is never held while calling the heap core (heap/core.h) or the guard
// pool's lock; reports are raised after it is released (error_policy.h).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/heap_checks.h"
#include "bedrock/spinlock.h"
#include "checked/checked_block.h"
#include "heap/block_ref.h"
#include "report/call_trace.h"
#include "support/intrusive_list.h"

namespace bedrock {
class Heap;
}

namespace bedrock::heap {

// Zero-filled memory plus init() is a valid, empty CheckedBlocks.
class CheckedBlocks {
public:
    void init() { m_quarantine_limit = kDefaultQuarantineBytes; }

    // A checked block with an in-band header in a core block, or null when out of memory.
    // Precondition: `alignment` is a power of two >= 16.
    [[nodiscard]] void* allocate(Heap& heap, size_t size, size_t alignment, Caller caller);
    // free() of `block`, which the core found in `core` (a Checked block or run of `heap`).
    void free(Heap& heap, const BlockRef& core, void* block, Caller caller);
    // The live header of `block` (found in `core`), or null after reporting why `block` is not
    // a live checked block.
    [[nodiscard]] CheckedBlock* find_live(Heap& heap, const BlockRef& core, const void* block,
                                          Caller caller);
    // `header` if it is intact and Live, else null after reporting (double free, damage).
    [[nodiscard]] CheckedBlock* confirm_live(Heap& heap, CheckedBlock& header, const void* block,
                                             Caller caller);

    // Takes `header` off the live list, Released, if it is intact, Live, in-band and `pointer`'s:
    // for a block whose core memory the core retires. Reports nothing; returns whether it did.
    [[nodiscard]] bool drop_live(CheckedBlock& header, const void* pointer);
    // Whether `header` is intact and Live and [start, end) lies inside its block (the bytes asked
    // for), under the lock: what a region heap may be made in. Reports nothing.
    [[nodiscard]] bool live_block_holds(const CheckedBlock& header, uintptr_t start, uintptr_t end);
    // Reports size-mismatch if `header` is intact, Live, of `pointer` and of another size than
    // `named` (a sized delete's); says nothing otherwise.
    void check_named_size(Heap& heap, const CheckedBlock& header, const void* pointer, size_t named,
                          Caller caller);

    // Fills a new header for `block` (size bytes, tail red zone up to zone_end; front red zone
    // from the header's end, or [page start, block) for a guarded header), poisons the block
    // and links it live.
    void adopt(CheckedBlock& header, unsigned char* block, size_t size, uintptr_t zone_end,
               Placement placement, Caller caller);
    // For the guard pool's free: checks `header` (state, seal, red zones), and if it is live
    // unlinks it and marks it Quarantined with the free trace. Returns false if it must not be
    // freed (the reason raised).
    bool retire(Heap& heap, CheckedBlock& header, const void* pointer, Caller caller);
    // Marks a retired guarded header Released: its slot is being reused.
    void forget(CheckedBlock& header);

    void set_quarantine_limit(Heap& heap, size_t bytes, Caller caller);
    void flush(Heap& heap, Caller caller);
    // Verifies every live block's red zones and every quarantined block's poison, raising a
    // report per damaged block. Returns false if any was damaged or a list is inconsistent.
    [[nodiscard]] bool check(Heap& heap);

    [[nodiscard]] uint64_t checkpoint();
    struct QuarantineTotals {
        uint64_t blocks;
        uint64_t bytes; // footprint(): what the heap's statistics count for the blocks
    };
    [[nodiscard]] QuarantineTotals quarantine_totals();

    // heap_lock_all()'s hold on m_lock, for fork() (bedrock/heap.h).
    [[nodiscard]] platform::InterruptState lock_all() { return m_lock.lock(); }
    void unlock_all(platform::InterruptState previous) { m_lock.unlock(previous); }
    LeakSummary leaks(uint64_t checkpoint, LineWriter write, void* context);

private:
    // The quarantine's oldest block, unlinked and Released, if the quarantine exceeds `limit`;
    // else, for a limit of 0, the oversized block, taken out and Released. Null if neither, or
    // if the header so reached is damaged: it is then named in `damaged` and left alone (never
    // reused); for the quarantine's oldest, the blocks after it stay quarantined as far as
    // keep_quarantine_after_locked() reaches them, a second damaged header it meets named in
    // `also_damaged`.
    [[nodiscard]] CheckedBlock* evict_locked(size_t limit, CheckedBlock*& damaged,
                                             CheckedBlock*& also_damaged);
    void keep_quarantine_after_locked(const CheckedBlock& damaged, CheckedBlock*& also_damaged);
    // Marks the oversized block `header` Released, if its header is intact; else false.
    [[nodiscard]] bool release_oversized_locked(CheckedBlock& header);
    // Evicts one block at a time until the quarantine fits `limit` (and, for 0, the oversized
    // block too), each through leave_quarantine().
    void evict(Heap& heap, size_t limit, Caller caller);
    // A block just taken out of the quarantine (Released): verifies its poison and red zones,
    // gives it back to the core, then raises what it found (as found during the call from
    // `caller`).
    void leave_quarantine(Heap& heap, CheckedBlock& header, Caller caller);

    SpinLock m_lock;
    // Both lists keep their back: the live list so that a walk stopped by a damaged header
    // goes on from the other end, the quarantine for its FIFO order.
    using BlockList =
        IntrusiveList<CheckedBlock, &CheckedBlock::prev, &CheckedBlock::next, Ends::FrontAndBack>;
    BlockList m_live;       // newest first
    BlockList m_quarantine; // oldest first
    uint64_t m_quarantine_bytes = 0;
    uint64_t m_quarantine_blocks = 0;
    uint64_t m_quarantine_limit = 0;
    CheckedBlock* m_oversized = nullptr; // the newest freed block that alone exceeded the limit
    uint64_t m_sequence = 0;
};

} // namespace bedrock::heap
