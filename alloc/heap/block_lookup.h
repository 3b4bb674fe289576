// SPDX-License-Identifier: MIT
// locate(): what holds an address in a heap, decided from allocator metadata alone, never from
// memory at or near the address:
//   region heap: the address lies in the region's arena;  frames heap: the page frame
//   allocator's tag of its page (or of its span, for an arena) names an arena whose first page's
//   tag names this heap, or a large run of this heap
//   then, in an arena, its block-start bitmap names the block holding the address (a slab, a
//   medium block, a checked block or a guard chunk), and only then is that block's header read.
// Inline: free()'s lookup of a pointer its CPU's slab hints do not place runs it.
#pragma once

#include <stdint.h>

#include "heap/block_ref.h"
#include "heap/core.h"
#include "heap/heap_state.h"
#include "heap/page_tags.h"
#include "support/bits.h"

namespace bedrock::heap {

// Whether `address` lies in `arena`'s span (its header included).
inline bool arena_spans(const heap::Arena& arena, uintptr_t address) {
    return address - SegregatedFit::arena_begin(arena) <
           SegregatedFit::arena_end(arena) - SegregatedFit::arena_begin(arena);
}

inline BlockRef no_block(ErrorKind kind, const char* detail) {
    return BlockRef{Holder::None, nullptr, 0, nullptr, kind, detail};
}

inline Holder holder_of(BlockUse use) {
    switch (use) {
    case BlockUse::Slab:
        return Holder::Slab;
    case BlockUse::Medium:
        return Holder::Medium;
    case BlockUse::Checked:
        return Holder::Checked;
    case BlockUse::Guard:
        return Holder::Guard;
    case BlockUse::CpuCache:
    case BlockUse::Retired:
        return Holder::None;
    case BlockUse::Free:
        break;
    }
    return Holder::Free;
}

inline BlockRef arena_block(const heap::Arena& arena, const SegregatedFit::Found& found) {
    if (found.block == nullptr) {
        BlockRef none =
            no_block(ErrorKind::NotAllocated, "inside a block header or an arena's own metadata");
        none.arena = &arena; // no block start within the reach asked for
        return none;
    }
    if (found.use == BlockUse::CpuCache) {
        return no_block(ErrorKind::NotAllocated, "inside a heap's per-CPU cache");
    }
    if (found.use == BlockUse::Retired) {
        return no_block(ErrorKind::NotAllocated,
                        "inside a block the heap took out of use when it found its header "
                        "overwritten");
    }
    return BlockRef{holder_of(found.use),    found.block, found.usable, &arena,
                    ErrorKind::NotAllocated, nullptr};
}

// How far, and how, locate() looks for the block holding an address:
//   NearAndLockFree: a block start at most kMaxSlabReach back, read without the arenas' lock -
//     the free() fast path; the answer is stable only for blocks that stay taken meanwhile (a
//     slab with a live block, a large run), and callers confirm anything else under the lock;
//   Everywhere: any distance back, under the arenas' lock (a large run: under the large runs'
//     lock, which its tags are written under) - to classify anything.
enum class Lookup { NearAndLockFree, Everywhere };

// The large run holding the page of `tags` (a large-run tag), from its tags alone: exact under
// the large runs' lock, a hint without it (large_runs.h).
inline BlockRef large_run_block(const Heap& heap, uint16_t* tags, uintptr_t page) {
    uint16_t tag = __atomic_load_n(tags, __ATOMIC_RELAXED);
    for (;;) {
        const PageKind kind = heap::tag_kind(tag);
        uint32_t back = 0;
        if (kind == PageKind::LargeLengthLow) {
            back = 1;
        } else if (kind == PageKind::LargeLengthHigh) {
            back = 2;
        } else if (kind == PageKind::LargeBody) {
            back = 1; // an interior pointer: a report, O(pages) is fine
        } else {
            break;
        }
        tags -= back;
        page -= uintptr_t{back} * kPageSize;
        tag = __atomic_load_n(tags, __ATOMIC_RELAXED);
    }
    const PageKind kind = heap::tag_kind(tag);
    if (kind != PageKind::LargeHead && kind != PageKind::LargeCheckedHead) {
        return no_block(ErrorKind::NotAllocated, "in pages being freed");
    }
    if (heap::tag_value(tag) != heap.owner_id) {
        return no_block(ErrorKind::ForeignHeap, "the block belongs to another heap");
    }
    const uint64_t pages = LargeRuns::run_pages(tags);
    return BlockRef{kind == PageKind::LargeHead ? Holder::LargeRun : Holder::CheckedRun,
                    reinterpret_cast<unsigned char*>(page),
                    pages * kPageSize,
                    nullptr,
                    ErrorKind::NotAllocated,
                    nullptr};
}

// The bounds of the arena at `base` holding an address whose page's tag (heap_tag()) is `tag`,
// an arena tag, for a lookup without the arenas' lock: from the tag, not the arena's header, which
// the arena's next owner may be overwriting if it was given back since the tag was read (the lock
// holder checks it is still held, Arenas::holds_locked()). Arena k spans 2^k pages. The first
// page of an arena tagged page by page carries its heap's id instead (ArenaBase): there the
// header's length counts, cut to the largest such arena, 2^(kTagSpanOrder - 1) pages, so that
// whatever it holds, a lookup of an address in that page reads only that page (the bitmaps of
// an arena that small end inside its first page).
inline heap::ArenaBounds arena_bounds(uintptr_t base, uint16_t tag) {
    constexpr size_t kMaxPageTagged = kPageSize << (kTagSpanOrder - 1);
    static_assert(fit_detail::arena_header_bytes(kMaxPageTagged) <= kPageSize);
    if (heap::tag_kind(tag) == PageKind::Arena) {
        return heap::ArenaBounds{base, kPageSize << heap::tag_value(tag)};
    }
    const size_t bytes =
        __atomic_load_n(&reinterpret_cast<const heap::Arena*>(base)->bytes, __ATOMIC_RELAXED);
    return heap::ArenaBounds{base, bytes < kMaxPageTagged ? bytes : kMaxPageTagged};
}

// The bounds of the arena of `heap` whose span holds `address`, or {0, 0} (no arena of this
// heap: a large run, another heap's memory, or none): for a region heap its one arena (never
// given back), for a frames heap the arena its page's tag names (read once), if the tag of that
// arena's first page names this heap, its length from the tags (arena_bounds()). free()'s first
// step for a pointer its CPU's slab hints do not place; locate() tells the other cases apart.
[[gnu::always_inline]] inline heap::ArenaBounds arena_holding(Heap& heap, const void* address) {
    const auto value = reinterpret_cast<uintptr_t>(address);
    if (!heap.over_frames()) {
        const heap::Arena* arena = heap.arenas.region_arena();
        return arena_spans(*arena, value) ? SegregatedFit::bounds_of(*arena) : heap::ArenaBounds{};
    }
    const PageFrameAllocator::PageTags found = heap.frames->tags_of(address);
    if (found.page == nullptr) {
        return heap::ArenaBounds{};
    }
    const uint16_t tag = heap::heap_tag(found);
    if (!heap::is_arena_tag(tag)) {
        return heap::ArenaBounds{};
    }
    const uintptr_t base = heap::arena_base(value, tag);
    return heap::arena_base_tag_of(found, value, base) == heap::arena_base_tag(heap.owner_id)
               ? arena_bounds(base, tag)
               : heap::ArenaBounds{};
}

// What holds `address` in `heap`.
[[gnu::always_inline]] inline BlockRef locate(Heap& heap, const void* address, Lookup lookup) {
    const auto value = reinterpret_cast<uintptr_t>(address);
    heap::ArenaBounds bounds{};
    if (!heap.over_frames()) {
        const heap::Arena* arena = heap.arenas.region_arena();
        if (!arena_spans(*arena, value)) {
            return no_block(ErrorKind::NotAllocated, "not in this heap's memory");
        }
        bounds = SegregatedFit::bounds_of(*arena);
    } else {
        const PageFrameAllocator::PageTags found = heap.frames->tags_of(address);
        if (found.page == nullptr) {
            return no_block(ErrorKind::NotAllocated, "not in this heap's memory");
        }
        uint16_t* tags = found.page;
        const uint16_t tag = heap::heap_tag(found); // an arena's span tag, else the page's
        const uintptr_t page = align_down(value, uintptr_t{kPageSize});
        switch (heap::tag_kind(tag)) {
        case PageKind::None:
            return no_block(ErrorKind::NotAllocated, "in a page no heap holds");
        case PageKind::Arena:
        case PageKind::ArenaBase: {
            const uintptr_t base = heap::arena_base(value, tag);
            const uint16_t base_tag = heap::arena_base_tag_of(found, value, base);
            if (base_tag != heap::arena_base_tag(heap.owner_id)) {
                // Another heap's arena names it; any other tag there is one an arena's tags
                // show while they are written or cleared (read here without the arenas' lock).
                return heap::tag_kind(base_tag) == PageKind::ArenaBase
                           ? no_block(ErrorKind::ForeignHeap, "the block belongs to another heap")
                           : no_block(ErrorKind::NotAllocated,
                                      "in pages an arena is being given or taken with");
            }
            bounds = arena_bounds(base, tag);
            break;
        }
        default:
            if (lookup == Lookup::Everywhere) {
                LockGuard guard(heap.large.lookup_lock());
                return large_run_block(heap, tags, page);
            }
            return large_run_block(heap, tags, page);
        }
    }
    // The arena's header is read only under the lock, once the arenas know it is still theirs.
    const auto* arena = reinterpret_cast<const heap::Arena*>(bounds.base);
    if (lookup == Lookup::Everywhere) {
        return arena_block(*arena, heap.arenas.find(*arena, address, ~size_t{0}));
    }
    if (value - bounds.base >= bounds.bytes) {
        return no_block(ErrorKind::NotAllocated, "in pages being given back");
    }
    return arena_block(*arena, SegregatedFit::find_near(bounds, address, heap::kMaxSlabReach));
}

// `ref`, the near lookup of `address`, or - when it found no block start within the slab reach
// of an arena - the lookup of everything under the arenas' lock (a medium block's interior,
// a checked-mode block far from its core block's start, a guard-page pool).
inline BlockRef look_further(Heap& heap, const void* address, const BlockRef& ref) {
    return ref.holder == Holder::None && ref.arena != nullptr
               ? locate(heap, address, Lookup::Everywhere)
               : ref;
}

} // namespace bedrock::heap
