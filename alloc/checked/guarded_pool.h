// SPDX-License-Identifier: MIT
// GuardedPool: checked mode's guard pages. A pool of page-sized slots, each between two pages
// the platform made inaccessible, so that a guarded block - placed to end where its slot page
// ends - faults on the first byte read or written past its end, and a freed one faults on any
// access while its slot page is inaccessible.
//
// "Page" here is the platform's page, platform::page_granularity() (read once, at enable():
// m_page): the unit the platform protects, kPageSize in a kernel, the host's page (4, 16 or
// 64 KiB) in a hosted process. Each guard and slot page is one whole such page, so protecting
// one never touches its neighbours.
//
// Layout: one core block (BlockUse::Guard, heap/core.h), aligned to m_page, of `chunks` chunks
// of kChunkPages pages each (chunk_bytes() = kChunkPages * m_page):
//   page 0: GuardChunk (the 7 slots' CheckedBlock headers - block metadata never sits in a
//           slot page)
//   pages 1..15: guard, slot 0, guard, slot 1, ..., slot 6, guard
// Invariants (under m_lock for the FIFO):
//   guard pages are always inaccessible; a slot page is accessible iff its block is Live
//   every slot whose block is not Live is on the free FIFO exactly once, oldest free first,
//   so a freed slot stays inaccessible as long as possible (a quarantine of pages)
// Every pool with slots is on a global list that heap_explain_fault() walks without a lock
// (a pool is linked before its pages become inaccessible and unlinked after they are back).
// Enabling, against other CPUs' allocations and another enable(): enable() claims the pool
// (m_claimed 0 -> 1, a compare-and-swap: a second call fails; disable() or a failed enable()
// drops the claim), sets everything up and makes every guard and slot page inaccessible, and
// only then publishes m_base (release) and the sample interval: an allocation that sees m_base
// (acquire) sees a pool whose pages are all in place, so none it hands out is made
// inaccessible afterwards.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/heap_checks.h"
#include "bedrock/phys_range.h"
#include "bedrock/spinlock.h"
#include "checked/checked_block.h"
#include "heap/block_ref.h"
#include "report/call_trace.h"

namespace bedrock {
class Heap;
}

namespace bedrock::heap {

inline constexpr uint32_t kSlotsPerChunk = 7;
inline constexpr size_t kChunkPages = 2 * kSlotsPerChunk + 2;
inline constexpr uint32_t kNoSlot = ~uint32_t{0};

// What the pool asks the platform to make of a page.
enum class Access { Accessible, Inaccessible };

struct GuardSlot {
    CheckedBlock header;
    uint32_t next_free; // index in the pool, or kNoSlot
    uint32_t unused[3];
};

struct GuardChunk {
    GuardSlot slots[kSlotsPerChunk];
};
static_assert(sizeof(GuardChunk) <= kPageSize);

class GuardedPool {
public:
    // Takes the pool's pages from the heap's core and makes the guard and slot pages
    // inaccessible. Returns false (holding nothing) if any step fails or a pool exists or is
    // being made by another call. Safe while other CPUs allocate and free (see above).
    bool enable(Heap& heap, GuardPageOptions options);
    // Makes every page accessible again and gives the pool back. Precondition: no live block.
    void disable(Heap& heap);

    // A guarded block if the sample counter says so and a slot is free, else null.
    [[nodiscard]] void* allocate_sampled(Heap& heap, size_t size, size_t alignment, Caller caller) {
        const uint32_t interval = __atomic_load_n(&m_sample_interval, __ATOMIC_ACQUIRE);
        if (interval == 0) [[likely]] {
            return nullptr;
        }
        if (!fits(size, alignment)) {
            return nullptr; // never guarded, so it takes no turn
        }
        return __atomic_add_fetch(&m_sample_counter, 1, __ATOMIC_RELAXED) % interval == 0
                   ? allocate(heap, size, alignment, caller)
                   : nullptr;
    }
    // Whether a block of `size` bytes at `alignment` fits a slot page.
    [[nodiscard]] bool fits(size_t size, size_t alignment) const {
        return (size == 0 ? 1 : size) <= kMaxGuardedSize && alignment <= m_page;
    }
    // A guarded block, or null if there is no pool, no free slot or it does not fit a page.
    [[nodiscard]] void* allocate(Heap& heap, size_t size, size_t alignment, Caller caller);
    // free() of `pointer`, which the core found in this pool's block.
    void free(Heap& heap, void* pointer, Caller caller);
    // The live header of `pointer` (in this pool's block) or null after reporting why it is not
    // a live guarded block.
    [[nodiscard]] CheckedBlock* find_live(Heap& heap, const void* pointer, Caller caller);
    // The header of the slot whose page holds `address` (in this pool), whatever its state, or
    // null for a guard page or a chunk's metadata. Reports nothing.
    [[nodiscard]] CheckedBlock* slot_header(const void* address);

    // Whether `address` lies in this pool's chunks (its core block is a Guard block, or a
    // checked large run for a pool beyond the largest medium block).
    [[nodiscard]] bool holds(const void* address) const {
        const unsigned char* base = published_base();
        const auto offset =
            reinterpret_cast<uintptr_t>(address) - reinterpret_cast<uintptr_t>(base);
        return base != nullptr && offset < uint64_t{m_chunks} * chunk_bytes();
    }

    // Raises the report for a fault at `address` if it is in this pool; false otherwise.
    bool explain(uintptr_t address, MemoryAccess access, const void* pc);
    // heap_explain_fault() over every pool.
    static bool explain_any(uintptr_t address, MemoryAccess access, const void* pc);

    // heap_lock_all()'s hold on m_lock and on the two global locks (the pool list's, the page
    // access hook's), for fork() (bedrock/heap.h). Precondition: interrupts are masked (the
    // mask every lock returns is then the same, so one is kept). The global locks are shared by
    // every heap's pool: one heap at a time.
    [[nodiscard]] platform::InterruptState lock_all();
    void unlock_all(platform::InterruptState previous);

    [[nodiscard]] uint64_t live_blocks() const {
        return __atomic_load_n(&m_live_blocks, __ATOMIC_RELAXED);
    }

    // The size of the pool's pages (platform::page_granularity()): of a slot and a guard.
    [[nodiscard]] size_t page_bytes() const { return m_page; }

private:
    // m_base as an allocation or lookup without the pool's lock reads it: null until enable()
    // has set up every page (acquire: what enable() wrote before is visible).
    [[nodiscard]] unsigned char* published_base() const {
        return __atomic_load_n(&m_base, __ATOMIC_ACQUIRE);
    }
    // enable()'s way back when a chunk's pages cannot be made inaccessible: the chunks before it
    // made accessible again, the pool unlinked, its block given back, the claim dropped.
    void abandon(Heap& heap, unsigned char* base, uint32_t chunks_done);
    // Takes the pool off the global list (under its lock).
    void unlink();
    [[nodiscard]] size_t chunk_bytes() const { return kChunkPages * m_page; }
    [[nodiscard]] GuardChunk& chunk_holding(const void* address) const;
    [[nodiscard]] GuardSlot& slot(uint32_t index) const;
    [[nodiscard]] GuardSlot& slot_in(unsigned char* base, uint32_t index) const;
    [[nodiscard]] unsigned char* slot_page(uint32_t index) const;
    void push_free(uint32_t index);
    [[nodiscard]] uint32_t pop_free();
    // Whether the platform changed the access of every page in [first, first + count) of a
    // chunk's guard/slot pages; on failure restores those it changed.
    bool set_chunk_access(unsigned char* chunk, Access access);

    SpinLock m_lock;
    uint32_t m_claimed = 0; // 1 from enable()'s start to disable(); see the file comment
    Heap* m_heap = nullptr;
    unsigned char* m_base = nullptr; // first chunk; null when disabled
    size_t m_page = kPageSize;       // platform::page_granularity(), read by enable()
    uint32_t m_chunks = 0;
    uint32_t m_sample_interval = 0;
    uint64_t m_sample_counter = 0;
    uint32_t m_free_head = kNoSlot; // oldest free slot
    uint32_t m_free_tail = kNoSlot;
    uint64_t m_live_blocks = 0;
    GuardedPool* m_next_pool = nullptr; // the global list
};

} // namespace bedrock::heap
