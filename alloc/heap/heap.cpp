// The heap's routing: which part serves a request (size classes, large blocks, or checked
// mode), how a block pointer finds its owner, creation and destruction. The policies live in
// class_cache.cpp, large_block.cpp, checked_blocks.cpp and guarded_pool.cpp; this file holds no
// lock itself.
//
// Routing, with A = max(alignment, kMinBlockSize):
//   check level not Off                             -> checked_blocks.cpp
//   A == kMinBlockSize, size <= kMaxSmallSize       -> class_of(size)
//   A >  kMinBlockSize, a class aligned to A fits   -> class_for_aligned(size, A)
//   otherwise                                       -> a large block
// and back: a pointer is first checked to be aligned and inside memory some heap took (so no
// header is read from memory that is not a heap's), then run_of(p) (run_header.h) is a slab,
// a large block, a checked run or a guard-page chunk, whose owner must be this heap.
#include "bedrock/heap.h"
#include "bedrock/assert.h"
#include "bedrock/memory_routines.h"
#include "bedrock/platform.h"
#include "heap/heap_entry.h"
#include "report/heap_error_reports.h"
#include "heap/heap_memory.h"
#include "heap/heap_state.h"

namespace bedrock {
namespace {

using heap::Caller;
using heap::kMinBlockSize;
using heap::kSlabBytes;
using heap::RunHeader;
using heap::RunKind;
using heap::SlabFree;

constinit Heap* g_default_heap = nullptr;

ErrorReport pointer_report(ErrorKind kind, const void* pointer, const char* detail, Caller caller,
                           uintptr_t block = 0, uint64_t size = 0) {
    return heap::misuse_report(kind, reinterpret_cast<uintptr_t>(pointer), detail, caller.call_site,
                               block, size);
}

// Why `block` is not a block of `heap` (owned_run() found it is not): reported, out of line.
[[gnu::cold, gnu::noinline]] void report_foreign_pointer(Heap& heap, const void* block,
                                                         Caller caller) {
    if (reinterpret_cast<uintptr_t>(block) % kMinBlockSize != 0) {
        heap.errors.raise(pointer_report(ErrorKind::MisalignedPointer, block,
                                         "not aligned to 16 bytes, so no block starts there",
                                         caller));
    } else if (!heap::HeapMemory::contains(block)) {
        heap.errors.raise(pointer_report(
            ErrorKind::NotAllocated, block,
            "not in memory any heap has taken (a stack, a global, or memory of no heap)", caller));
    } else if (heap::run_of(block)->magic != heap::kRunMagic) {
        heap.errors.raise(pointer_report(
            ErrorKind::NotAllocated, block,
            "no heap block here: never allocated, or its pages were already freed", caller));
    } else {
        heap.errors.raise(pointer_report(ErrorKind::ForeignHeap, block,
                                         "the block belongs to another heap", caller));
    }
}

// The run header of `block` if it is a block of `heap`, else null after reporting why. The run
// header is read only for an aligned pointer into memory some heap took. Inline: every free
// goes through it.
[[gnu::always_inline]] inline RunHeader* owned_run(Heap& heap, const void* block, Caller caller) {
    if (reinterpret_cast<uintptr_t>(block) % kMinBlockSize == 0 &&
        heap::HeapMemory::contains(block)) [[likely]] {
        RunHeader* run = heap::run_of(block);
        if (run->magic == heap::kRunMagic && run->owner == &heap) [[likely]] {
            return run;
        }
    }
    report_foreign_pointer(heap, block, caller);
    return nullptr;
}

[[gnu::cold, gnu::noinline]] void report_slab_misuse(Heap& heap, const heap::Slab* slab,
                                                     const void* block, SlabFree why,
                                                     Caller caller) {
    const uint64_t size = slab->layout().block_size;
    const auto holder = reinterpret_cast<uintptr_t>(heap::slab_block_holding(slab, block));
    switch (why) {
    case SlabFree::Interior:
        heap.errors.raise(pointer_report(ErrorKind::InteriorPointer, block,
                                         "points inside a block, not at its start", caller, holder,
                                         size));
        return;
    case SlabFree::AlreadyFree:
        heap.errors.raise(pointer_report(ErrorKind::DoubleFree, block, "the block is already free",
                                         caller, holder, size));
        return;
    case SlabFree::NeverHandedOut:
        heap.errors.raise(pointer_report(ErrorKind::NotAllocated, block,
                                         "a slab block that was never allocated", caller));
        return;
    case SlabFree::OutsideBlocks:
    case SlabFree::Freed:
        heap.errors.raise(pointer_report(ErrorKind::NotAllocated, block,
                                         "inside a slab's header or unused tail", caller));
        return;
    }
}

[[gnu::cold, gnu::noinline]] void report_large_misuse(Heap& heap, const heap::LargeBlock* large,
                                                      const void* block, Caller caller) {
    const auto start = reinterpret_cast<uintptr_t>(large) + large->block_offset;
    const auto address = reinterpret_cast<uintptr_t>(block);
    if (address > start && address - start < large->usable_size()) {
        heap.errors.raise(pointer_report(ErrorKind::InteriorPointer, block,
                                         "points inside a large block, not at its start", caller,
                                         start, large->usable_size()));
    } else {
        heap.errors.raise(pointer_report(ErrorKind::NotAllocated, block,
                                         "inside a large block's header pages", caller));
    }
}

Heap* init_state(void* memory, size_t state_pages) {
    auto* heap = static_cast<Heap*>(memory);
    bedrock_memset(heap, 0, sizeof(Heap));
    heap->checked.init();
    heap->self_pages = state_pages;
    for (unsigned index = 0; index < heap::kSizeClassCount; ++index) {
        heap->classes[index].init(index, RunKind::Slab);
        heap->checked_classes[index].init(index, RunKind::CheckedSlab);
    }
    heap->magic = Heap::kMagic;
    return heap;
}

bool is_checked_run(const RunHeader& run) {
    return run.kind == RunKind::CheckedSlab || run.kind == RunKind::CheckedLarge ||
           run.kind == RunKind::Guarded;
}

} // namespace

namespace heap {

void* allocate(Heap& heap, size_t size, size_t alignment, Caller caller) {
    if constexpr (kHeapChecksCompiled) {
        if (heap.errors.level() != CheckLevel::Off) [[unlikely]] {
            return heap.checked.allocate(heap, size, alignment, caller);
        }
    }
    // Alignments 0, 1, 2, 4, 8, 16 as one shift (a power-of-two test compiles to a popcount).
    constexpr uint32_t kSmallAlignments = 0x10117;
    if (size <= kMaxSmallSize && alignment <= kMinBlockSize &&
        ((kSmallAlignments >> alignment) & 1) != 0) [[likely]] {
        return heap.classes[class_of(size)].allocate(heap.source, &heap, size);
    }
    if ((alignment & (alignment - 1)) != 0) {
        return nullptr;
    }
    if (alignment <= kMinBlockSize) {
        return heap.large.allocate(heap.source, &heap, size, kMinBlockSize);
    }
    const unsigned index = class_for_aligned(size, alignment);
    if (index < kSizeClassCount) {
        return heap.classes[index].allocate(heap.source, &heap, size);
    }
    return heap.large.allocate(heap.source, &heap, size, alignment);
}

void release(Heap& heap, void* block, Caller caller) {
    if (block == nullptr) {
        return;
    }
    RunHeader* run = owned_run(heap, block, caller);
    if (run == nullptr) {
        return;
    }
    if (run->kind == RunKind::Slab) [[likely]] {
        auto* slab = reinterpret_cast<Slab*>(run);
        const SlabFree result = heap.classes[run->class_index].free(heap.source, slab, block);
        if (result != SlabFree::Freed) [[unlikely]] {
            report_slab_misuse(heap, slab, block, result, caller);
        }
        return;
    }
    if (run->kind == RunKind::Large) {
        auto* large = reinterpret_cast<LargeBlock*>(run);
        if (!heap.large.free(heap.source, large, block)) {
            report_large_misuse(heap, large, block, caller);
        }
        return;
    }
    if constexpr (kHeapChecksCompiled) {
        if (run->kind == RunKind::Guarded) {
            heap.guards.free(heap, *reinterpret_cast<GuardChunk*>(run), block, caller);
        } else {
            heap.checked.free(heap, run, block, caller);
        }
    }
}

namespace {

// The usable size of `block` in `size`, or false after reporting why it is not a live block.
// (A checked block's usable size is its requested size, which may be 0.)
bool find_usable_size(Heap& heap, const void* block, Caller caller, size_t& size) {
    RunHeader* run = owned_run(heap, block, caller);
    if (run == nullptr) {
        return false;
    }
    if (run->kind == RunKind::Slab) {
        const auto* slab = reinterpret_cast<const Slab*>(run);
        const SlabFree state = slab_classify(slab, block);
        if (state != SlabFree::Freed) {
            report_slab_misuse(heap, slab, block, state, caller);
            return false;
        }
        size = slab->layout().block_size;
        return true;
    }
    if (run->kind == RunKind::Large) {
        const auto* large = reinterpret_cast<const LargeBlock*>(run);
        if (!LargeBlocks::is_block(large, block)) {
            report_large_misuse(heap, large, block, caller);
            return false;
        }
        size = large->usable_size();
        return true;
    }
    if constexpr (kHeapChecksCompiled) {
        CheckedBlock* header = nullptr;
        if (run->kind == RunKind::Guarded) {
            header =
                heap.guards.find_live(heap, *reinterpret_cast<GuardChunk*>(run), block, caller);
            header = header != nullptr ? heap.checked.confirm_live(heap, *header, block, caller)
                                       : nullptr;
        } else {
            header = heap.checked.find_live(heap, run, block, caller);
        }
        if (header != nullptr) {
            size = header->size;
            return true;
        }
    }
    return false;
}

} // namespace

size_t usable_size(Heap& heap, const void* block, Caller caller) {
    size_t size = 0;
    return block != nullptr && find_usable_size(heap, block, caller, size) ? size : 0;
}

void* reallocate(Heap& heap, void* block, size_t size, Caller caller) {
    if (block == nullptr) {
        return allocate(heap, size, kMinBlockSize, caller);
    }
    size_t usable = 0;
    if (!find_usable_size(heap, block, caller, usable)) {
        return nullptr; // reported
    }
    // Checked blocks always move, so a stale pointer to the old block meets its quarantine; and
    // a block allocated unchecked moves into a checked one when checking is on.
    const bool checked = heap.errors.level() != CheckLevel::Off || is_checked_run(*run_of(block));
    // In place while the block fits and at least half of it stays in use.
    if (!checked && size <= usable && (size >= usable / 2 || usable == kMinBlockSize)) {
        return block;
    }
    void* moved = allocate(heap, size, kMinBlockSize, caller);
    if (moved == nullptr) {
        return nullptr;
    }
    bedrock_memcpy(moved, block, size < usable ? size : usable);
    release(heap, block, caller);
    return moved;
}

} // namespace heap

Heap* heap_create(PageFrameAllocator& frames) {
    constexpr size_t kStatePages = (sizeof(Heap) + kPageSize - 1) / kPageSize;
    const PhysAddr phys = frames.allocate_pages(kStatePages);
    if (phys == kNoPage) {
        return nullptr;
    }
    void* memory = platform::phys_to_virt(phys);
    Heap* heap = init_state(memory, kStatePages);
    heap->self = heap::PageRun{memory, phys};
    heap->self_frames = &frames;
    heap->source.init_frames(frames);
    return heap;
}

Heap* heap_create_in_region(void* region, size_t bytes) {
    const auto start = reinterpret_cast<uintptr_t>(region);
    const uintptr_t state = (start + alignof(Heap) - 1) & ~(uintptr_t{alignof(Heap)} - 1);
    if (bytes < kSlabBytes || start + bytes < start) {
        return nullptr;
    }
    const uintptr_t end = (start + bytes) & ~(uintptr_t{kPageSize} - 1);
    // The bitmap is sized for every page of the region, a little more than the pages left
    // after the state and the bitmap themselves.
    const size_t bitmap_bytes = ((bytes / kPageSize + 63) / 64) * 8;
    const uintptr_t bitmap = state + sizeof(Heap);
    const uintptr_t first = (bitmap + bitmap_bytes + kPageSize - 1) & ~(uintptr_t{kPageSize} - 1);
    const uintptr_t first_slab = (first + kSlabBytes - 1) & ~(uintptr_t{kSlabBytes} - 1);
    if (first_slab >= end || end - first_slab < kSlabBytes) {
        return nullptr;
    }
    Heap* heap = init_state(reinterpret_cast<void*>(state), 0);
    heap->source.init_region(first, (end - first) / kPageSize, reinterpret_cast<uint64_t*>(bitmap));
    return heap;
}

bool heap_destroy(Heap& heap) {
    if constexpr (kHeapChecksCompiled) {
        heap.checked.flush(heap, BEDROCK_HEAP_CALLER());
    }
    const HeapStatistics statistics = heap_statistics(heap);
    if (statistics.blocks_in_use != 0) {
        heap.errors.raise(ErrorReport{ErrorKind::CorruptMetadata,
                                      "heap",
                                      reinterpret_cast<uintptr_t>(&heap),
                                      statistics.blocks_in_use,
                                      call_site_of(__builtin_return_address(0)),
                                      "heap_destroy() with blocks still in use",
                                      0,
                                      0,
                                      {},
                                      {}});
        return false;
    }
    if constexpr (kHeapChecksCompiled) {
        heap.guards.disable(heap);
    }
    heap_trim(heap);
    BEDROCK_ASSERT(heap.source.pages_held() == 0);
    heap.magic = 0;
    if (heap.self_frames != nullptr) {
        // A frames heap: its state goes back last, so read what that needs first.
        PageFrameAllocator* frames = heap.self_frames;
        const PhysAddr phys = heap.self.source_address;
        frames->free_pages(phys, heap.self_pages);
    }
    return true;
}

void* heap_allocate(Heap& heap, size_t size, size_t alignment) {
    return heap::allocate(heap, size, alignment, BEDROCK_HEAP_CALLER());
}

void heap_free(Heap& heap, void* block) {
    heap::release(heap, block, BEDROCK_HEAP_CALLER());
}

size_t heap_usable_size(Heap& heap, const void* block) {
    return heap::usable_size(heap, block, BEDROCK_HEAP_CALLER());
}

void* heap_reallocate(Heap& heap, void* block, size_t size) {
    return heap::reallocate(heap, block, size, BEDROCK_HEAP_CALLER());
}

void heap_trim(Heap& heap) {
    for (heap::ClassCache& cache : heap.classes) {
        cache.trim(heap.source);
    }
    for (heap::ClassCache& cache : heap.checked_classes) {
        cache.trim(heap.source);
    }
}

bool heap_check(Heap& heap) {
    if (heap.magic != Heap::kMagic || !heap.large.check()) {
        return false;
    }
    for (heap::ClassCache& cache : heap.classes) {
        if (!cache.check()) {
            return false;
        }
    }
    for (heap::ClassCache& cache : heap.checked_classes) {
        if (!cache.check()) {
            return false;
        }
    }
    if constexpr (kHeapChecksCompiled) {
        return heap.checked.check(heap);
    }
    return true;
}

Heap* default_heap() {
    return __atomic_load_n(&g_default_heap, __ATOMIC_ACQUIRE);
}

void set_default_heap(Heap* heap) {
    __atomic_store_n(&g_default_heap, heap, __ATOMIC_RELEASE);
}

} // namespace bedrock
