// SPDX-License-Identifier: MIT
// LargeRuns: the blocks of a heap over a page frame allocator that are page runs of their own -
// requests above kMaxMediumSize, or aligned beyond kMaxMediumAlignment - the kernel's analogue
// of the mmap threshold. A block is its run: page-aligned, from the run's first page, its
// usable size the run's whole pages. Nothing is written in the run: its length and owner are in
// the page tags (page_tags.h), so valloc() costs nothing extra and a caller who overwrites the
// block cannot forge a run.
//
// Owns the totals and the record of the last kRememberedFrees plain runs freed, under m_lock;
// the run's tags are written before the block is handed out (its head last, under m_lock),
// rewritten by grow() under m_lock and set back to 0 under m_lock on free, so of two frees
// racing on one block only one finds it, and a reader holding m_lock sees every run whole. A
// lookup without it is exact only for a run its caller owns: for another (a stale pointer) it
// may see an old length, or half of a new one, so give() reads the length again under m_lock.
// A freed run's pages go back to the page frame allocator with tag 0, as it requires of free
// pages, so the tags cannot tell a stale pointer to one from memory no heap holds: the record
// can, for the reports only. It decides nothing about ownership (free() finds runs by their tags
// alone), and what it says may be stale in one way only: the pages may have gone to another
// user of the page frame allocator since, which the pointer's owner still freed twice.
// Lock order: m_lock -> the page frame allocator's lock.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/page_frame_allocator.h"
#include "bedrock/spinlock.h"
#include "heap/held_pages.h"
#include "heap/page_tags.h"

namespace bedrock::heap {

inline constexpr size_t kMaxMediumSize = size_t{1} << 20;
inline constexpr size_t kMaxMediumAlignment = size_t{64} << 10;
// How many of its last freed plain runs a heap remembers for its reports (16 bytes each).
inline constexpr unsigned kRememberedFrees = 16;

class LargeRuns {
public:
    struct Totals {
        uint64_t blocks;
        uint64_t pages;
        uint64_t allocations;
        uint64_t bytes_requested;
        uint64_t checked_blocks; // checked-mode blocks among them
        uint64_t checked_pages;
    };

    void init(PageFrameAllocator& frames, uint16_t owner_id, HeldPages& held) {
        m_frames = &frames;
        m_owner_id = owner_id;
        m_held = &held;
    }

    // The pages of the run that take() makes for `size` bytes.
    [[nodiscard]] static constexpr uint64_t pages_for(size_t size) {
        const uint64_t pages = (uint64_t{size} + kPageSize - 1) / kPageSize;
        return pages < kMinLargeRunPages ? kMinLargeRunPages : pages;
    }

    // The pages of the large run whose head tag is `tags[0]`, from its two length tags (two
    // relaxed loads): exact for a run its reader owns, or under m_lock (lookup_lock()); without it,
    // a run being taken, grown or freed may show a length it never had.
    [[nodiscard]] static uint64_t run_pages(const uint16_t* tags) {
        return tag_value(__atomic_load_n(&tags[1], __ATOMIC_RELAXED)) |
               (uint64_t{tag_value(__atomic_load_n(&tags[2], __ATOMIC_RELAXED))} << kTagValueBits);
    }

    // A run of at least `size` bytes (and kMinLargeRunPages pages) aligned to `alignment` (a
    // power of two; beyond the page frame allocator's largest block, only where the direct map
    // keeps it: platform::phys_to_virt(p) - p a multiple of it), or null. One page allocation
    // plus O(pages) tag writes (and a page free when the direct map misaligns the run); `search`
    // as PageFrameAllocator::allocate_pages().
    [[nodiscard]] void* take(size_t size, size_t alignment, RunUse use, size_t requested,
                             RunSearch search);
    // Frees the run starting at `block` if its head tag still names this heap's live run, whole
    // (its length read under m_lock), and returns whether it did. One page free plus O(pages)
    // tag writes.
    [[nodiscard]] bool give(void* block);
    // Grows the plain run at `block` of `pages` (what the caller read from its tags) in place to
    // hold `size` bytes, taking the pages right after it from the page frame allocator if they
    // are free (PageFrameAllocator::extend_pages), and returns whether it did: the new pages are
    // tagged as its body and its length tags rewritten (a lookup without the lock sees the old
    // length or the new, either naming this run). False, changing nothing, if they are not
    // free, `size` is no more than the run holds or beyond any run, or the head tag no longer
    // names this heap's plain run (freed meanwhile). One extend_pages() plus O(new pages) tag
    // writes.
    [[nodiscard]] bool grow(void* block, uint64_t pages, size_t size);
    // Shrinks the plain run at `block` of `pages` (what the caller read from its tags) in place
    // to the pages that hold `size` bytes (pages_for()), giving the rest back to the page frame
    // allocator (PageFrameAllocator::shrink_pages): its length tags are rewritten first, then
    // the freed pages' tags set to 0, so a lookup without the lock sees the old length or the
    // new, either naming this run. Returns whether it did; false, changing nothing, if `size`
    // needs all `pages`, or the head tag no longer names this heap's plain run of `pages`.
    // One shrink_pages() plus O(freed pages) tag writes.
    [[nodiscard]] bool shrink(void* block, uint64_t pages, size_t size);
    // The pages of the plain run that started at `block`, if it is among the last
    // kRememberedFrees this heap freed; else 0. For reports only (see above).
    // O(kRememberedFrees) under m_lock.
    [[nodiscard]] uint64_t freed_pages(const void* block);

    [[nodiscard]] Totals totals();

    // The lock a lookup holds to see every run whole (block_lookup.h's Lookup::Everywhere).
    [[nodiscard]] SpinLock& lookup_lock() { return m_lock; }

    // heap_lock_all()'s hold on m_lock, for fork() (bedrock/heap.h).
    [[nodiscard]] platform::InterruptState lock_all() { return m_lock.lock(); }
    void unlock_all(platform::InterruptState previous) { m_lock.unlock(previous); }

private:
    SpinLock m_lock;
    PageFrameAllocator* m_frames = nullptr;
    HeldPages* m_held = nullptr;
    uint16_t m_owner_id = 0;
    Totals m_totals = {};
    struct FreedRun {
        uintptr_t start;
        uint64_t pages;
    };
    FreedRun m_freed[kRememberedFrees] = {}; // a ring; start 0: unused
    unsigned m_next_freed = 0;               // the slot the next free overwrites
};

} // namespace bedrock::heap
