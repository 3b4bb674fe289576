// SPDX-License-Identifier: MIT
// Arenas: the memory a heap carves medium blocks from - and its slabs, checked-mode blocks and
// guard-page chunks - with one segregated fit over all of it (segregated_fit.h).
//
// A region heap has one arena: its whole region after the heap state. A heap over a page frame
// allocator takes arenas from it as it grows, each a naturally aligned buddy block of 2^k pages
// tagged Arena k in its span tags (page tags for the rare arena below a span, page_tags.h), from
// kMinArenaBytes, doubling with the bytes the heap already
// holds, up to kMaxArenaBytes (the largest free block instead when memory is short, as long as
// the request fits); it keeps at most one empty arena and gives the others back at once. Large
// arenas keep a heap over a page frame allocator as dense as a region heap (0.95 of memory in
// use at the first failure with blocks up to 1 MiB; 8 MiB arenas reach 0.947); tagging one costs
// a store per 4 spans (32 stores for 32 MiB), not one per 4 pages.
//
// Why a segregated fit: good fit in O(1) (two bit scans), a split or a merge per call, and a
// 16-byte header per block - the densest of the bounded designs (TLSF: 0.99 of an arena in use
// at the first failure, where a buddy stays near 0.6), and it serves every size from a slab to
// a whole region. Ownership comes from each arena's block-start bitmap, not from the headers.
//
// Kept blocks: a freed medium block of up to kMaxKeptUsable bytes is kept for reuse, when its
// list's slot is empty, instead of going back to the fit: the next medium malloc of its list takes
// it as it is. A malloc and free of one medium size then cost no split, merge or seal (a 4 KiB
// pair: 475 instructions, 786 with every free merged; see the README), as a slab's block costs
// none. A kept block stays taken in the fit (use Medium, its header as it was) but is no longer
// live: never counted in the totals, and every call that finds it as a block (a free, a lookup
// under the lock, a resize) treats it as free. Slots are few and direct-mapped by list, so the
// memory kept is bounded (kKeptSlots * kMaxKeptUsable, 96 KiB) and finding one is a load; what is
// kept goes back to the fit when memory is short (give_idle(), which a malloc that fails calls) or
// on trim(). Blocks up to 16 KiB: with 64 KiB, git's peak resident set under the preload grew
// by 2.6 %.
//
// Owns, under m_lock: the fit, the arena list, the kept blocks and the totals per use.
// Invariants:
//   blocks[use] == taken blocks of that use, less kept ones;  bytes[use] == their usable bytes
//   kept[i] == null, or a taken Medium block start of an arena with kept_usable[i] == its
//     usable bytes <= kMaxKeptUsable and kept_slot(kept_usable[i]) == i; no block twice
//   frames heap: held_pages == sum of its arenas' pages;  every arena page carries its tag
//   at most one empty arena (m_spare) while m_lock is free
//   slabs_given == slabs that left their class to be given back since the heap was made (it
//     only grows; counted as each leaves, before its state changes)
//   arenas_given == arenas given back since the heap was made (it only grows)
//   untold_left == 0 exactly when unused_interval == 0; else 0 < untold_left <= unused_interval
// Lock order: a class lock -> m_lock -> the page frame allocator's lock.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/assert.h"
#include "bedrock/page_frame_allocator.h"
#include "bedrock/spinlock.h"
#include "heap/held_pages.h"
#include "heap/segregated_fit.h"
#include "heap/slab.h"
#include "report/error_policy.h"

namespace bedrock {
class Heap;
}

namespace bedrock::heap {

inline constexpr unsigned kMinArenaOrder = 6;  // 256 KiB
inline constexpr unsigned kMaxArenaOrder = 13; // 32 MiB
inline constexpr size_t kMinArenaBytes = kPageSize << kMinArenaOrder;
inline constexpr size_t kMaxArenaBytes = kPageSize << kMaxArenaOrder;
// The uses counted: the caller's, Slab .. CpuCache (all but Free and Retired).
inline constexpr unsigned kCountedUses = 5;
static_assert(kCountedUses == static_cast<unsigned>(BlockUse::Retired) - 1);

class Arenas {
public:
    // Freed medium blocks kept for reuse (see the opening comment): slots, and the largest kept.
    static constexpr unsigned kKeptSlots = 6; // as many as fill the totals' last line
    static constexpr size_t kMaxKeptUsable = size_t{16} << 10;

    struct UseTotals {
        uint64_t blocks;
        uint64_t bytes; // usable bytes of the taken blocks
        uint64_t allocations;
        uint64_t bytes_requested;
    };

    // Region heap: [base, base + bytes) (16-byte aligned) is the one arena; `fit_storage` holds
    // SegregatedFit::storage_bytes(bytes). Returns false if it cannot hold a block.
    // `secret` encodes the segregated fit's list links.
    [[nodiscard]] bool init_region(void* fit_storage, void* base, size_t bytes, Heap* owner,
                                   uintptr_t secret);
    // Frames heap: arenas come from `frames`, tagged with `owner_id` (owner_ids.h); `fit_storage`
    // holds SegregatedFit::storage_bytes(kMaxArenaBytes).
    void init_frames(void* fit_storage, PageFrameAllocator& frames, Heap* owner, uint16_t owner_id,
                     HeldPages& held, uintptr_t secret);

    // Reports (corrupt-metadata) the damage the fit found since the last call
    // (SegregatedFit::Damage): free blocks whose list links were overwritten (the lists were
    // rebuilt), headers retired, arenas given back with their pad changed. Call with no heap
    // lock held; one relaxed load, inline, when there is nothing to report.
    void report_damage(const ErrorPolicy& errors) {
        if (m_fit.damage_pending()) [[unlikely]] {
            report_pending_damage(errors);
        }
    }

    // A block of at least `size` bytes aligned to `alignment` (a power of two >= 16) for `use`,
    // or null when no arena has room and (frames heap) the page frame allocator has no new one.
    // A Medium block aligned to 16 is the one kept in the slot of the list `size` falls in, if
    // that one holds `size` bytes (as the fit takes the head of that list). `requested` feeds the
    // statistics. O(1), plus one page allocation and O(arena bytes / 1 KiB) to set up a new
    // arena.
    // Inline: a slab carved for a refill is malloc's worst case.
    [[nodiscard]] void* take(size_t size, size_t alignment, BlockUse use, size_t requested) {
        LockGuard guard(m_lock);
        size_t usable = 0;
        void* block = use == BlockUse::Medium && alignment == kGranule && size <= kMaxKeptUsable
                          ? take_kept_locked(size, usable)
                          : nullptr;
        if (block == nullptr) {
            block = m_fit.take(size, alignment, use);
            if (block == nullptr) [[unlikely]] {
                block = take_after_growth(size, alignment, use);
                if (block == nullptr) {
                    return nullptr;
                }
            }
            usable = SegregatedFit::usable_size(block);
            BEDROCK_DEBUG_ASSERT(usable >= size && SegregatedFit::use_of(block) == use &&
                                 reinterpret_cast<uintptr_t>(block) % alignment == 0);
        }
        UseTotals& totals = totals_of(use);
        ++totals.blocks;
        ++totals.allocations;
        totals.bytes += usable;
        totals.bytes_requested += requested;
        return block;
    }
    // Gives back a taken block of `use` (the caller found it live, see heap.cpp). O(1), plus one
    // page free and O(arena pages) when it empties an arena beyond the spare. A block whose
    // header does not hold is retired instead (give_locked()).
    void give(void* block, BlockUse use);
    // Gives back `block` if, re-checked under m_lock, it is a taken block start of `arena` with
    // `use` and not kept; returns whether it did (a user's free: the pointer, found as a block
    // start without the lock, may be stale or freed by another CPU meanwhile, and its arena given
    // back). A Medium block is kept instead when it may be (see the opening comment).
    // `arenas_seen`: arenas_given() as read before the arena's tags; while it is unchanged the
    // arena is still one of these and its start bit alone decides
    // (SegregatedFit::is_block_start_seen()), else holds_locked() and the whole start bitmap
    // decide. Bounds as give().
    // A block start whose header does not hold (SegregatedFit::header_holds(): a write past the
    // end of the block before it rewrote it) is recorded for report_damage() and never given
    // back, and this returns true (the free is dealt with); one whose header holds and names
    // another use or a free block is left alone (false: the caller reports the pointer).
    [[nodiscard]] bool give_if_taken(const Arena& arena, void* block, BlockUse use,
                                     uint64_t arenas_seen);
    // Under m_lock: whether `block`, found without the lock as a block start of `arena` (from its
    // tags), is still a taken block of `use` (not kept) whose header holds, so that its size may be
    // used (realloc's copy, malloc_usable_size); Damaged (recorded for report_damage()) if its
    // header does not hold. O(1).
    enum class HeaderCheck : uint8_t { Holds, NotTaken, Damaged };
    [[nodiscard]] HeaderCheck check_taken_header(const Arena& arena, const void* block,
                                                 BlockUse use);
    // Under m_lock: the arenas whose pad (their first 16 bytes, SegregatedFit::repair_pads()) a
    // write past the end of the memory before them changed, each pad written anew: how many, and
    // the first one's base. For heap_check(). O(arenas). An arena given back before that check
    // is checked as it goes (recorded for report_damage()). Either report says:
    static constexpr const char* kOverwrittenPad =
        "the 16 bytes in front of the heap's arena here were overwritten (a write past the end of "
        "the memory before it; size = arenas found)";
    struct Repaired {
        size_t count = 0;
        uintptr_t first = 0;
    };
    [[nodiscard]] Repaired repair_pads() {
        LockGuard guard(m_lock);
        Repaired repaired;
        repaired.count = m_fit.repair_pads(repaired.first);
        return repaired;
    }
    // Under m_lock: the start of the block of `arena` holding `address` (the last block start at
    // or below it, from the start bitmap) if its header does not hold, else null (or if there is
    // no such block): a pointer that cannot be placed because a write past the end of the block
    // before its block rewrote that block's header. For the report of a pointer found to be no
    // live block. O(the arena's bytes / 1 KiB).
    [[nodiscard]] unsigned char* holder_with_overwritten_header(const Arena& arena,
                                                                const void* address);

    // Grows `block` (found as a live medium block of `arena` without the lock) in place to hold
    // `size` bytes, if it is still a taken Medium block, not kept, and the free block after it has
    // room; returns whether it did. O(1).
    [[nodiscard]] bool grow_in_place(Arena& arena, void* block, size_t size);
    // Shrinks `block` (found as a live medium block of `arena` without the lock) in place to
    // hold `size` bytes, if it is still a taken Medium block, not kept, and its rest holds a free
    // block (or joins the free block after it); returns whether it did. O(1).
    [[nodiscard]] bool shrink_in_place(Arena& arena, void* block, size_t size);

    // The block holding `address` of `arena` (found from its tags without the lock), looked up
    // under m_lock so it cannot change meanwhile (lookups without the lock are safe only for
    // blocks that stay taken, like a slab with a live block), a kept block named Free; none if
    // the arena is no longer one of this heap's (holds_locked()). O(reach / 1 KiB + 1).
    [[nodiscard]] SegregatedFit::Found find(const Arena& arena, const void* address, size_t reach);
    // The taken block of `use` within `reach` bytes below `address`, an address inside a taken
    // block of these arenas that stays taken meanwhile (a slab's block in a CPU cache), from the
    // arenas' metadata alone (its page tag, the start bitmap) and without the lock; or null if
    // the block holding it has another use. O(reach / 1 KiB + 1).
    [[nodiscard]] void* taken_block_holding(const void* address, BlockUse use, size_t reach) const;

    // give() for a caller that must not wait: gives back the taken slabs `next()` yields
    // until it yields null, if m_lock is free now; returns false, calling next() never, if not.
    template <class Next>
    bool give_without_waiting(Next next) {
        platform::InterruptState previous;
        if (!m_lock.try_lock(previous)) {
            return false;
        }
        while (void* block = next()) {
            give_taken_locked(block, BlockUse::Slab);
        }
        m_lock.unlock(previous);
        return true;
    }

    // Gives what the arenas hold idle back: the kept blocks to the fit, then (frames heaps) the
    // spare empty arena to the page frame allocator; returns whether anything went back.
    // O(kKeptSlots) fit calls, plus one page free.
    bool give_idle();
    // give_idle() for a caller that must not wait: false as well if m_lock is not free now.
    bool give_idle_without_waiting();
    // Gives what the arenas hold idle back (give_idle()), then, frames heaps: has the page frame
    // allocator tell platform::pages_unused() of its free blocks (tell_unused_pages), then tells
    // it of the whole pages inside every free block of the arenas (past its links). O(blocks).
    void trim();
    // Frames heap: gives every arena back whole. Precondition: nothing taken is in use (a slab
    // its class took out of use may remain) and nothing is kept (trim() gave it back).
    void give_all();
    // Frames heaps: tells platform::pages_unused() of the whole pages inside free blocks of
    // kToldFreeBlockBytes or more (past their links) not told of since they were last written,
    // the largest first (the blocks take() reaches last), until the free bytes beyond those
    // taken plus the unused interval are told: what a program is likely to take again soon
    // stays. Returns false, changing nothing, for a region heap. O(blocks visited + lists).
    bool tell_unused();
    static constexpr size_t kToldFreeBlockBytes = size_t{256} << 10;
    // Frames heaps: from now on, the give that brings the bytes given back since the last tell
    // (blocks of every use, headers included) to `bytes` makes a tell_unused(); 0: no tells but
    // those asked for (the default). Returns false, changing nothing, for a region heap. O(1).
    bool set_unused_interval(size_t bytes);

    [[nodiscard]] UseTotals totals(BlockUse use);
    [[nodiscard]] bool check(const char** failure);
    // For the CPU caches' check() of their hints: runs `inspect(has_arena)` with m_lock held and
    // returns what it returns. Meanwhile no block goes into the fit or out of it and no arena
    // leaves, so a slab that left its class is not yet rewritten (its header reads as it did)
    // and arenas_given() stays put; `has_arena(bounds)` tells whether `bounds` are those of one
    // of these arenas (O(arenas)).
    template <typename Inspect>
    [[nodiscard]] bool inspect_holding_still(Inspect inspect) {
        LockGuard guard(m_lock);
        return inspect([this](ArenaBounds bounds) { return has_arena_locked(bounds); });
    }

    // Where slabs' headers sit in the blocks these arenas hand out for them (slab.h), for every
    // slab of the heap: set once, before the first slab is carved.
    void set_slab_placement(SlabPlacement placement) { m_slab_placement = placement; }
    [[nodiscard]] SlabPlacement slab_placement() const { return m_slab_placement; }

    // heap_lock_all()'s hold on m_lock, for fork() (bedrock/heap.h).
    [[nodiscard]] platform::InterruptState lock_all() { return m_lock.lock(); }
    void unlock_all(platform::InterruptState previous) { m_lock.unlock(previous); }

    // Counts a slab leaving its class to be given back here, before its state changes (so that a
    // check which finds it leaving knows its hint stale) and before the fit has it. Under the
    // slab's class lock; classes count at once (an atomic add, release: ordered before the
    // state's change and the fit's writes).
    void note_slab_leaving() { __atomic_fetch_add(&m_slabs_given, 1, __ATOMIC_RELEASE); }
    // Slabs given back so far (BlockUse::Slab blocks given, counted before the fit has them):
    // a slab found at one count is still that slab while the count has not moved, which is
    // what the CPU caches' slab hints rely on (cpu_cache.h). An acquire load, no lock.
    [[nodiscard]] uint64_t slabs_given() const {
        return __atomic_load_n(&m_slabs_given, __ATOMIC_ACQUIRE);
    }
    // Arenas given back to the page frame allocator so far (counted once their tags are
    // cleared): an arena found from its tags after reading one count is still one of these while
    // the count has not moved (give_if_taken()). An acquire load, no lock.
    [[nodiscard]] uint64_t arenas_given() const {
        return __atomic_load_n(&m_arenas_given, __ATOMIC_ACQUIRE);
    }

    // Region heaps: the one arena's bounds (fixed at creation, read without the lock).
    [[nodiscard]] const Arena* region_arena() const { return m_region; }

private:
    [[nodiscard]] bool has_arena_locked(ArenaBounds bounds) const;
    // grow_in_place() and shrink_in_place(): one lookup and check, then the fit's resize.
    enum class Resize : uint8_t { Grow, Shrink };
    [[nodiscard]] bool resize_in_place(Arena& arena, void* block, size_t size, Resize resize);
    [[gnu::cold]] void report_pending_damage(const ErrorPolicy& errors);
    [[nodiscard]] bool grow_locked(size_t size, size_t alignment);
    // take() once m_fit had no room: a new arena (frames heaps), then the block from it.
    [[nodiscard, gnu::noinline]] void* take_after_growth(size_t size, size_t alignment,
                                                         BlockUse use);
    // The arena holding `block`, one of this heap's taken blocks.
    [[nodiscard]] Arena* arena_of(const void* block) const;
    // Under m_lock: whether `arena`, found from page tags without the lock, is still one of these
    // arenas and spans `address` (an arena given back meanwhile left its header to the memory's
    // next owner). From its first page's tag, then its header. O(1).
    [[nodiscard]] bool holds_locked(const Arena& arena, const void* address) const;
    // Under m_lock: whether `block`, found from `arena`'s tags without the lock, is a block start
    // of `arena`, still one of these arenas (holds_locked(), then its start bit). O(1).
    [[nodiscard]] bool starts_block_locked(const Arena& arena, const void* block) const;
    // `use`: what the caller took the block for. A block whose header does not hold is retired
    // (retire_locked()) instead.
    [[gnu::always_inline]] void give_locked(Arena& arena, void* block, BlockUse use);
    // give_locked() of a taken block whose arena is read from its tags.
    void give_taken_locked(void* block, BlockUse use);
    // SegregatedFit::retire() of a block the caller names as taken for `use`, which then no
    // longer counts as taken; one the fit finds was free (a stale pointer) was never counted.
    void retire_locked(Arena& arena, void* block, BlockUse use);
    void give_arena_locked(Arena& arena);
    bool give_spare_locked();
    // give_idle() under m_lock.
    bool give_idle_locked();
    // Kept blocks (see the opening comment). The slot of a block of `usable` bytes.
    [[nodiscard]] static unsigned kept_slot(size_t usable) {
        return slot_of_list(fit_detail::list_of(usable));
    }
    // Lists next to each other, and the lists of sizes a power of two apart (4 KiB, 8 KiB, ...),
    // have slots next to each other.
    [[nodiscard]] static unsigned slot_of_list(unsigned list) {
        return (list + list / fit_detail::kSecondLevelCount) % kKeptSlots;
    }
    // The kept block a Medium take() of `size` (<= kMaxKeptUsable) bytes at 16 uses, taken out of
    // its slot, and its usable bytes as recorded when it was kept; or null: none there, too
    // small, or of another list. Counted by the caller. Its header is not read: one overwritten
    // while it was kept is found at its next free, as a live block's is.
    [[nodiscard]] void* take_kept_locked(size_t size, size_t& usable);
    // Whether `block` is kept: O(kKeptSlots), from the slots alone (not its header).
    [[nodiscard]] bool is_kept_locked(const void* block) const;
    // Keeps `block`, a Medium block of `usable` (<= kMaxKeptUsable) bytes whose header holds, if
    // its slot is empty (it is no longer counted); or finds it there already (a double free).
    enum class Keeping : uint8_t { Kept, KeptAlready, SlotTaken };
    [[nodiscard]] Keeping keep_locked(void* block, size_t usable);
    // Gives every kept block back to the fit (one whose header was overwritten while kept is
    // retired); returns whether there was one.
    bool give_kept_locked();
    // give_locked() of a block whose header holds.
    void give_holding_locked(Arena& arena, void* block, BlockUse use);
    // The fit's part of a give, the block no longer counted: its give, the arena it may empty
    // (kept spare or given back), the unused interval's bytes.
    [[gnu::always_inline]] void give_to_fit_locked(Arena& arena, void* block, size_t usable);
    // Where a use's totals are: Slab .. CpuCache at 0 .. kCountedUses - 1.
    [[nodiscard]] static unsigned counted_index(BlockUse use) {
        BEDROCK_DEBUG_ASSERT(use != BlockUse::Free && use != BlockUse::Retired);
        return static_cast<unsigned>(use) - 1;
    }
    [[nodiscard]] UseTotals& totals_of(BlockUse use) { return m_totals[counted_index(use)]; }
    // Tells platform::pages_unused() of the whole pages inside free blocks of at least `least`
    // usable bytes, past their list links, the largest first, until blocks of `bytes` usable
    // bytes in all (or every such block) are told. O(blocks told + lists).
    void tell_free_pages_locked(size_t least, size_t bytes);
    // tell_unused() under m_lock; the next tell is a whole interval away again.
    void tell_unused_locked();

    SpinLock m_lock;
    SegregatedFit m_fit;
    PageFrameAllocator* m_frames = nullptr; // null for a region heap
    Heap* m_owner = nullptr;
    Arena* m_region = nullptr; // region heaps: the arena
    Arena* m_spare = nullptr;  // frames heaps: an empty arena kept for the next growth
    HeldPages* m_held = nullptr;
    uint64_t m_pages = 0;                    // frames heaps: pages of the arenas held
    UseTotals m_totals[kCountedUses] = {};   // totals_of()
    void* m_kept[kKeptSlots] = {};           // slot kept_slot(usable) (see the opening comment)
    uint32_t m_kept_usable[kKeptSlots] = {}; // each one's usable bytes, as it was kept
    // Bytes still to be given back before the next tell (0: no interval; see
    // set_unused_interval()).
    size_t m_untold_left = 0;
    // Added to under a class lock (note_slab_leaving()), read without any lock by every free: on
    // a cache line of its own, apart from the totals that every arena call writes.
    alignas(64) uint64_t m_slabs_given = 0;
    uint64_t m_arenas_given = 0; // the same way, by frees of medium blocks
    // Read and written under m_lock only when the unused interval is set or a tell is made: in
    // the padding of m_slabs_given's line, which the frees read, without writes on their path.
    size_t m_unused_interval = 0;
    // Frames heaps: the heap's owner id, in each arena's first page tag (page_tags.h). Set once.
    uint16_t m_owner_id = 0;
    // Where a slab's header sits in its block (slab.h), read by the frees the slab hints miss.
    // Set once.
    SlabPlacement m_slab_placement = SlabPlacement::Packed;
};
static_assert(Arenas::kMaxKeptUsable <= UINT32_MAX);
static_assert(sizeof(Arenas) == 640, "the arenas' state fills ten cache lines");

} // namespace bedrock::heap
