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
    return BlockRef{holder_of(found.use),    found.block, found.usable, &arena,
                    ErrorKind::NotAllocated, nullptr};
}

// How far, and how, locate() looks for the block holding an address:
//   NearAndLockFree: a block start at most kMaxSlabBytes back, read without the arenas' lock -
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

// The arena of `heap` whose span holds `address`, or null (no arena of this heap: a large run,
// another heap's memory, or none): for a region heap its one arena, for a frames heap the arena
// its page's tag names (read once), if the tag of that arena's first page names this heap. free()'s
// first step for a pointer its CPU's slab hints do not place; locate() tells the other cases apart.
[[gnu::always_inline]] inline const heap::Arena* arena_holding(Heap& heap, const void* address) {
    const auto value = reinterpret_cast<uintptr_t>(address);
    if (!heap.over_frames()) {
        const heap::Arena* arena = heap.arenas.region_arena();
        return arena_spans(*arena, value) ? arena : nullptr;
    }
    const PageFrameAllocator::PageTags found = heap.frames->tags_of(address);
    if (found.page == nullptr) {
        return nullptr;
    }
    const uint16_t tag = heap::heap_tag(found);
    if (!heap::is_arena_tag(tag)) {
        return nullptr;
    }
    const uintptr_t base = heap::arena_base(value, tag);
    return heap::arena_base_tag_of(found, value, base) == heap::arena_base_tag(heap.owner_id)
               ? reinterpret_cast<const heap::Arena*>(base)
               : nullptr;
}

// What holds `address` in `heap`.
[[gnu::always_inline]] inline BlockRef locate(Heap& heap, const void* address, Lookup lookup) {
    const auto value = reinterpret_cast<uintptr_t>(address);
    const heap::Arena* arena = nullptr;
    if (!heap.over_frames()) {
        arena = heap.arenas.region_arena();
        if (!arena_spans(*arena, value)) {
            return no_block(ErrorKind::NotAllocated, "not in this heap's memory");
        }
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
            if (heap::arena_base_tag_of(found, value, base) !=
                heap::arena_base_tag(heap.owner_id)) {
                return no_block(ErrorKind::ForeignHeap, "the block belongs to another heap");
            }
            arena = reinterpret_cast<const heap::Arena*>(base);
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
    return arena_block(*arena,
                       lookup == Lookup::Everywhere
                           ? heap.arenas.find(*arena, address, ~size_t{0})
                           : SegregatedFit::find_near(*arena, address, heap::kMaxSlabBytes));
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
