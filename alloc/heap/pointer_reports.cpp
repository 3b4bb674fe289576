// SPDX-License-Identifier: MIT
// Why a pointer is no live block this call can take, and the damage the slow small-block paths
// found: the reports of free(), realloc() and malloc_usable_size() for misuse (the pointer looked
// up again under the locks of the part that holds it, so a report names what holds it now), of a
// slab retired for a corrupt free list and of what a CPU cache's flush found. Cold paths only:
// correct use never comes here. Takes each part's lock in turn through its lookup, never two at
// once, and raises every report with no lock held.
#include "bedrock/heap_checks.h"
#include "heap/block_lookup.h"
#include "heap/core.h"
#include "heap/fast_paths.h"
#include "heap/heap_state.h"
#include "heap/page_tags.h"
#include "heap/slow_paths.h"
#include "report/heap_error_reports.h"

namespace bedrock::heap {
namespace {

// The pages of the large run this heap freed at `block`, if no heap holds its page now and the
// run is among the last ones the heap freed (LargeRuns::freed_pages); else 0. For reports only.
uint64_t freed_run_pages(Heap& heap, const void* block) {
    if (!heap.over_frames()) {
        return 0;
    }
    const PageFrameAllocator::PageTags tags = heap.frames->tags_of(block);
    if (tags.page == nullptr || heap::heap_tag(tags) != 0) {
        return 0;
    }
    return heap.large.freed_pages(block);
}

// A misuse report of `pointer`, made at the caller's call site.
ErrorReport pointer_report(ErrorKind kind, const void* pointer, const char* detail, Caller caller,
                           uintptr_t block = 0, uint64_t size = 0) {
    return heap::misuse_report(kind, reinterpret_cast<uintptr_t>(pointer), detail,
                               caller.call_site(), block, size);
}

// A free of `block`, the live checked block of the core block at `core_start` of `arena`, whose
// core header a write past the end of the block before it overwrote: the core block is retired
// (never given back nor taken again) and the checked block taken out of checked mode, reported
// once (the retired header, as corrupt-metadata), so the arena tiles again and nothing counts
// the block as live. Whether `block` was such a block (else nothing changed).
bool retire_overwritten_checked(Heap& heap, const Arena& arena, unsigned char* core_start,
                                const void* block) {
    if constexpr (!kHeapChecksCompiled) {
        return false;
    }
    if (!heap.checked.drop_overwritten(core_start, block)) {
        return false;
    }
    static_cast<void>(heap.arenas.check_taken_header(arena, core_start, BlockUse::Checked));
    heap.arenas.report_damage(heap.errors);
    return true;
}

} // namespace

SlabLookup classify_slab_block(Heap& heap, const heap::Slab* slab, const void* block) {
    const SlabLookup what = heap.classes[slab->class_index].classify(slab, block);
    if (what == SlabLookup::Live &&
        static_cast<const FreeBlock*>(block)->mark == heap::free_mark(slab, block, heap.secret)) {
        return SlabLookup::AlreadyFree;
    }
    return what;
}

[[gnu::cold]] void report_corrupt_slab(Heap& heap, const heap::Slab* slab) {
    heap.errors.raise(heap::metadata_damage_report(
        reinterpret_cast<uintptr_t>(slab),
        heap::kSlabLayouts[slab->class_index % heap::kSizeClassCount].slab_bytes,
        "a slab's free list was overwritten after free: the slab is taken out of use"));
}

[[gnu::cold]] void report_flush(Heap& heap, const FlushFailures& failures, Caller caller) {
    heap.errors.raise(pointer_report(
        failures.kind, failures.first,
        failures.kind == ErrorKind::DoubleFree
            ? "the block is already free (found when a CPU cache gave it back)"
            : "a free block in a CPU cache was overwritten after free (it went back to its slab)",
        caller));
}

// Why `block` (found as `ref` without the lock) is not a live block this call can take: looked
// up again under the locks, then reported. Out of line: only misuse comes here.
void report_bad_pointer(Heap& heap, const void* block, Caller caller) {
    const auto address = reinterpret_cast<uintptr_t>(block);
    if (address % kMinBlockSize != 0) {
        heap.errors.raise(pointer_report(ErrorKind::MisalignedPointer, block,
                                         "not aligned to 16 bytes, so no block starts there",
                                         caller));
        return;
    }
    const BlockRef ref = locate(heap, block, Lookup::Everywhere);
    unsigned char* const overwritten =
        ref.arena != nullptr ? heap.arenas.holder_with_overwritten_header(*ref.arena, block)
                             : nullptr;
    if (overwritten != nullptr) {
        if (retire_overwritten_checked(heap, *ref.arena, overwritten, block)) {
            return;
        }
        // What the lookup read of the block holding it is garbage: a slab so damaged keeps its
        // blocks, which a free its CPU's slab hints place still reaches.
        heap.errors.raise(pointer_report(
            ErrorKind::CorruptMetadata, block,
            "the heap's header of the block holding this pointer was overwritten (a write past "
            "the end of the block before it): the pointer cannot be placed, and nothing is freed",
            caller));
        return;
    }
    const auto start = reinterpret_cast<uintptr_t>(ref.start);
    switch (ref.holder) {
    case Holder::None: {
        const uint64_t freed_pages =
            ref.kind == ErrorKind::NotAllocated ? freed_run_pages(heap, block) : 0;
        if (freed_pages != 0) {
            heap.errors.raise(pointer_report(
                ErrorKind::DoubleFree, block,
                "the block is already free (a large run this heap gave back; no heap holds its "
                "pages now)",
                caller, address, freed_pages * kPageSize));
        } else if (ref.kind == ErrorKind::NotAllocated && another_heap_holds(heap, block)) {
            heap.errors.raise(pointer_report(ErrorKind::ForeignHeap, block,
                                             "the block belongs to another heap", caller));
        } else {
            heap.errors.raise(pointer_report(ref.kind, block, ref.detail, caller));
        }
        return;
    }
    case Holder::Free:
        if (address == start) {
            // The free block starting there: the freed block, merged with any free block that
            // followed it.
            heap.errors.raise(pointer_report(ErrorKind::DoubleFree, block,
                                             "the block is already free (the size is of the "
                                             "free block it is part of now)",
                                             caller, address, ref.usable));
        } else {
            heap.errors.raise(
                pointer_report(ErrorKind::NotAllocated, block,
                               "in free heap memory: never allocated, or already freed", caller));
        }
        return;
    case Holder::Slab: {
        heap::Slab* slab = heap::slab_in_block(ref.start, heap.arenas.slab_placement());
        const unsigned index = slab->class_index;
        const SlabLookup what = index < heap::kSizeClassCount
                                    ? classify_slab_block(heap, slab, block)
                                    : SlabLookup::AlreadyFree;
        const uint64_t size = heap::kSlabLayouts[index % heap::kSizeClassCount].block_size;
        const auto holder = index < heap::kSizeClassCount
                                ? reinterpret_cast<uintptr_t>(heap::slab_block_holding(slab, block))
                                : 0;
        switch (what) {
        case SlabLookup::Interior:
            heap.errors.raise(pointer_report(ErrorKind::InteriorPointer, block,
                                             "points inside a block, not at its start", caller,
                                             holder, size));
            return;
        case SlabLookup::AlreadyFree:
            heap.errors.raise(pointer_report(ErrorKind::DoubleFree, block,
                                             "the block is already free", caller, holder, size));
            return;
        case SlabLookup::NeverHandedOut:
            heap.errors.raise(pointer_report(ErrorKind::NotAllocated, block,
                                             "a slab block that was never allocated", caller));
            return;
        case SlabLookup::OutsideBlocks:
        case SlabLookup::Corrupt:
        case SlabLookup::Live:
            heap.errors.raise(pointer_report(ErrorKind::NotAllocated, block,
                                             "inside a slab's header or unused tail", caller));
            return;
        }
        return;
    }
    case Holder::Medium:
    case Holder::LargeRun:
        if (another_heap_holds(heap, block)) { // a region heap made inside this heap's block
            heap.errors.raise(pointer_report(ErrorKind::ForeignHeap, block,
                                             "the block belongs to another heap", caller));
            return;
        }
        heap.errors.raise(pointer_report(ErrorKind::InteriorPointer, block,
                                         "points inside a block, not at its start", caller, start,
                                         ref.usable));
        return;
    case Holder::Checked:
    case Holder::Guard:
    case Holder::CheckedRun:
        heap.errors.raise(pointer_report(ErrorKind::NotAllocated, block,
                                         "inside a checked-mode block's metadata", caller));
        return;
    }
}

} // namespace bedrock::heap
