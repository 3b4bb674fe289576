// The heap's routing: which part serves a request (size classes or large blocks), how a block
// pointer finds its owner, creation and destruction. The policies live in class_cache.cpp and
// large_block.cpp; this file holds no lock itself.
//
// Routing, with A = max(alignment, kMinBlockSize):
//   A == kMinBlockSize, size <= kMaxSmallSize       -> class_of(size)
//   A >  kMinBlockSize, a class aligned to A fits   -> class_for_aligned(size, A)
//   otherwise                                       -> a large block
// and back: run_of(p) (run_header.h) is a slab or a large block, its owner must be this heap.
#include "bedrock/heap.h"
#include "bedrock/assert.h"
#include "bedrock/memory_routines.h"
#include "bedrock/platform.h"
#include "heap_state.h"

namespace bedrock {
namespace {

using heap::kMinBlockSize;
using heap::kSlabBytes;
using heap::RunHeader;
using heap::RunKind;

constinit Heap* g_default_heap = nullptr;

void report(ErrorKind kind, const void* block, const char* detail, const void* call_site) {
    platform::report_error(
        ErrorReport{kind, "heap", reinterpret_cast<uintptr_t>(block), 0, call_site, detail});
}

// The run header of `block` if it is a block of `heap`, else null after reporting why.
RunHeader* owned_run(Heap& heap, const void* block, const void* call_site) {
    RunHeader* run = heap::run_of(block);
    if (run->magic != heap::kRunMagic) {
        report(ErrorKind::InvalidPointer, block,
               "no heap block here: never allocated, or its pages were already freed", call_site);
        return nullptr;
    }
    if (run->owner != &heap) {
        report(ErrorKind::ForeignHeap, block, "the block belongs to another heap", call_site);
        return nullptr;
    }
    return run;
}

Heap* init_state(void* memory, size_t state_pages) {
    auto* heap = static_cast<Heap*>(memory);
    bedrock_memset(heap, 0, sizeof(Heap));
    heap->self_pages = state_pages;
    for (unsigned index = 0; index < heap::kSizeClassCount; ++index) {
        heap->classes[index].init(index);
    }
    heap->magic = Heap::kMagic;
    return heap;
}

} // namespace

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
    const HeapStatistics statistics = heap_statistics(heap);
    if (statistics.blocks_in_use != 0) {
        report(ErrorKind::CorruptMetadata, &heap, "heap_destroy() with blocks still in use",
               __builtin_return_address(0));
        return false;
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
    if (size <= heap::kMaxSmallSize && alignment <= kMinBlockSize &&
        (alignment & (alignment - 1)) == 0) [[likely]] {
        return heap.classes[heap::class_of(size)].allocate(heap.source, &heap, size);
    }
    if ((alignment & (alignment - 1)) != 0) {
        return nullptr;
    }
    if (alignment <= kMinBlockSize) {
        return heap.large.allocate(heap.source, &heap, size, kMinBlockSize);
    }
    const unsigned index = heap::class_for_aligned(size, alignment);
    if (index < heap::kSizeClassCount) {
        return heap.classes[index].allocate(heap.source, &heap, size);
    }
    return heap.large.allocate(heap.source, &heap, size, alignment);
}

void heap_free(Heap& heap, void* block) {
    if (block == nullptr) {
        return;
    }
    RunHeader* run = owned_run(heap, block, __builtin_return_address(0));
    if (run == nullptr) {
        return;
    }
    if (run->kind == RunKind::Slab) {
        heap.classes[run->class_index].free(heap.source, reinterpret_cast<heap::Slab*>(run), block);
    } else {
        heap.large.free(heap.source, reinterpret_cast<heap::LargeBlock*>(run), block);
    }
}

size_t heap_usable_size(Heap& heap, const void* block) {
    if (block == nullptr) {
        return 0;
    }
    RunHeader* run = owned_run(heap, block, __builtin_return_address(0));
    if (run == nullptr) {
        return 0;
    }
    if (run->kind == RunKind::Slab) {
        const heap::SlabLayout& layout = heap::kSlabLayouts[run->class_index];
        const uintptr_t offset = reinterpret_cast<uintptr_t>(block) -
                                 reinterpret_cast<uintptr_t>(run) - layout.first_offset;
        if (offset >= size_t{layout.block_count} * layout.block_size ||
            offset % layout.block_size != 0) {
            report(ErrorKind::InvalidPointer, block, "not the start of a block",
                   __builtin_return_address(0));
            return 0;
        }
        return layout.block_size;
    }
    const auto* large = reinterpret_cast<const heap::LargeBlock*>(run);
    if (!heap::LargeBlocks::is_block(large, block)) {
        report(ErrorKind::InvalidPointer, block, "not the start of a block",
               __builtin_return_address(0));
        return 0;
    }
    return large->usable_size();
}

void* heap_reallocate(Heap& heap, void* block, size_t size) {
    if (block == nullptr) {
        return heap_allocate(heap, size);
    }
    const size_t usable = heap_usable_size(heap, block);
    if (usable == 0) {
        return nullptr; // reported by heap_usable_size
    }
    // In place while the block fits and at least half of it stays in use.
    if (size <= usable && (size >= usable / 2 || usable == kMinBlockSize)) {
        return block;
    }
    void* moved = heap_allocate(heap, size);
    if (moved == nullptr) {
        return nullptr;
    }
    bedrock_memcpy(moved, block, size < usable ? size : usable);
    heap_free(heap, block);
    return moved;
}

void heap_trim(Heap& heap) {
    for (heap::ClassCache& cache : heap.classes) {
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
    return true;
}

Heap* default_heap() {
    return __atomic_load_n(&g_default_heap, __ATOMIC_ACQUIRE);
}

void set_default_heap(Heap* heap) {
    __atomic_store_n(&g_default_heap, heap, __ATOMIC_RELEASE);
}

} // namespace bedrock
