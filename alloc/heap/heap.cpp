// SPDX-License-Identifier: MIT
// The heap's routing: which part serves a request and where a pointer goes back. The policies
// live in class_cache.cpp, arenas.cpp, large_runs.cpp and (checked mode) checked/; what holds a
// pointer in block_lookup.h; creation, destruction and the order of a heap's locks in
// heap_lifecycle.cpp; why a pointer is no live block in pointer_reports.cpp; draining, trimming
// and checking in heap_maintenance.cpp. This file takes no lock of its own.
//
// Routing, with A = max(alignment, kMinBlockSize):
//   check level not Off                             -> checked mode (the one branch)
//   A == kMinBlockSize, size <= kMaxSmallSize       -> the size class class_of(size), through
//                                                      the calling CPU's cache (cpu_cache.h)
//   frames heap, size > kMaxMediumSize or A > kMaxMediumAlignment -> a large run
//   otherwise                                       -> a medium block of the arenas
// and back: locate() (block_lookup.h) finds what holds the pointer from allocator metadata
// alone. A pointer no part of this heap holds is looked up among the other live heaps (cold
// path) to tell a foreign block from memory of no heap. free() first asks the calling CPU's slab
// hints (cpu_cache.h): a slab found there is as certain as one found through the page map, as
// long as no slab has been given back since (Arenas::slabs_given()).
// The small-block fast paths (fast_paths.h, inline in the entry points) run with interrupts
// masked on the calling CPU and touch only its cache: no lock, no atomic read-modify-write; this
// file holds their slow halves.
#include "bedrock/heap.h"
#include "bedrock/assert.h"
#include "bedrock/heap_checks.h"
#include "bedrock/memory_routines.h"
#include "bedrock/platform.h"
#include "heap/block_lookup.h"
#include "heap/core.h"
#include "heap/heap_entry.h"
#include "heap/heap_state.h"
#include "heap/slow_paths.h"
#include "report/heap_error_reports.h"
#include "support/bits.h"

namespace bedrock {
namespace {

using heap::BlockRef;
using heap::BlockUse;
using heap::CacheStorage;
using heap::Caller;
using heap::classify_slab_block;
using heap::CpuCache;
using heap::drain_calling_cpu;
using heap::finish_small;
using heap::FlushFailures;
using heap::FreeBlock;
using heap::Holder;
using heap::kMinBlockSize;
using heap::locate;
using heap::look_further;
using heap::Lookup;
using heap::Magazine;
using heap::publish;
using heap::report_bad_pointer;
using heap::SegregatedFit;
using heap::SlabLookup;

// A holder that is checked mode's: free(), realloc() and usable_size() send it there.
bool is_checked(Holder holder) {
    return holder == Holder::Checked || holder == Holder::Guard || holder == Holder::CheckedRun;
}

// The usable size of the live block at `block`, and what holds it in `ref`; or false after
// reporting why it is not a live block.
bool find_usable_size(Heap& heap, const void* block, Caller caller, size_t& size, BlockRef& ref) {
    if (reinterpret_cast<uintptr_t>(block) % heap::kMinBlockSize != 0) {
        report_bad_pointer(heap, block, caller); // misaligned-pointer, whoever holds the address
        return false;
    }
    ref = look_further(heap, block, locate(heap, block, Lookup::NearAndLockFree));
    switch (ref.holder) {
    case Holder::Slab: {
        const heap::Slab* slab = heap::slab_in_block(ref.start, heap.arenas.slab_placement());
        const unsigned index = slab->class_index; // checked again under the class lock
        if (index < heap::kSizeClassCount &&
            classify_slab_block(heap, slab, block) == SlabLookup::Live) {
            size = heap::kSlabLayouts[index].block_size;
            return true;
        }
        break;
    }
    case Holder::Medium:
        if (ref.start == block) {
            // Its size is followed (realloc copies that much): only from a header that holds.
            switch (heap.arenas.check_taken_header(*ref.arena, block, BlockUse::Medium)) {
            case heap::Arenas::HeaderCheck::Holds:
                size = heap::SegregatedFit::usable_size(block);
                return true;
            case heap::Arenas::HeaderCheck::Damaged:
                heap.arenas.report_damage(heap.errors);
                return false;
            case heap::Arenas::HeaderCheck::NotTaken:
                break;
            }
        }
        break;
    case Holder::LargeRun:
        if (ref.start == block) {
            size = ref.usable;
            return true;
        }
        break;
    case Holder::Checked:
    case Holder::Guard:
    case Holder::CheckedRun:
        if constexpr (kHeapChecksCompiled) {
            return heap.checked.find_usable_size(heap, ref, block, caller, size);
        }
        break;
    case Holder::None:
    case Holder::Free:
        break;
    }
    report_bad_pointer(heap, block, caller);
    return false;
}

// free() of a medium block found at its start without the lock, from tags read after
// arenas_given() read `arenas_seen`: the arenas re-check it under their lock (another CPU may
// free it too, and give its arena back). Inline in the out-of-line paths that call it.
[[gnu::always_inline]] inline bool free_medium(Heap& heap, const heap::Arena& arena, void* block,
                                               uint64_t arenas_seen) {
    const bool given = heap.arenas.give_if_taken(arena, block, BlockUse::Medium, arenas_seen);
    heap.arenas.report_damage(heap.errors);
    return given;
}

// free() of anything free_unhinted() did not place as a slab block or a medium block's start:
// a large run, a checked-mode block, or misuse, looked up from the start. Out of line, so the
// slab fast path stays small.
[[gnu::noinline]] void free_not_small(Heap& heap, void* block, Caller caller) {
    const uint64_t arenas_seen = heap.arenas.arenas_given(); // before the lookup reads tags
    const BlockRef ref = look_further(heap, block, locate(heap, block, Lookup::NearAndLockFree));
    switch (ref.holder) {
    case Holder::Medium:
        if (ref.start == block && free_medium(heap, *ref.arena, block, arenas_seen)) {
            return;
        }
        break;
    case Holder::LargeRun:
        if (ref.start == block && heap.large.give(block)) {
            return;
        }
        break;
    case Holder::Checked:
        // Its core header may have been overwritten and still read as a checked block's.
        if (ref.arena != nullptr &&
            heap.arenas.check_taken_header(*ref.arena, ref.start, BlockUse::Checked) ==
                heap::Arenas::HeaderCheck::Damaged) {
            if constexpr (kHeapChecksCompiled) {
                static_cast<void>(heap.checked.drop_overwritten(ref.start, block));
            }
            heap.arenas.report_damage(heap.errors);
            return;
        }
        [[fallthrough]];
    case Holder::Guard:
    case Holder::CheckedRun:
        if constexpr (kHeapChecksCompiled) {
            heap.checked.free(heap, ref, block, caller);
            heap.arenas.report_damage(heap.errors);
            return;
        }
        break;
    case Holder::None:
    case Holder::Free:
    case Holder::Slab:
        break;
    }
    report_bad_pointer(heap, block, caller);
}

// Whether a block of `size` bytes aligned to `alignment` could fit in all of the heap's memory:
// no larger than it, and with a multiple of the alignment in the span from its lowest to its
// highest address that leaves `size` bytes before the span's end. A malloc that could not fails
// without a reclaim (which could give back nothing that serves it). O(regions) for a heap over a
// page frame allocator, which takes its lock once per region.
bool could_ever_fit(const Heap& heap, size_t size, size_t alignment) {
    uintptr_t lowest = 0;
    uintptr_t highest = 0;
    if (heap.over_frames()) {
        if (size > heap.frames->managed_pages() * kPageSize) {
            return false;
        }
        lowest = UINTPTR_MAX;
        for (size_t i = 0; i < heap.frames->region_count(); ++i) {
            const PhysRange range = heap.frames->region_range(i);
            if (range.size == 0) {
                continue;
            }
            const auto begin = reinterpret_cast<uintptr_t>(platform::phys_to_virt(range.base));
            lowest = begin < lowest ? begin : lowest;
            highest = begin + range.size > highest ? begin + range.size : highest;
        }
    } else {
        if (size > heap.region_pages * kPageSize) {
            return false;
        }
        const heap::Arena& region = *heap.arenas.region_arena();
        lowest = SegregatedFit::arena_begin(region);
        highest = SegregatedFit::arena_end(region);
    }
    if (alignment <= kPageSize || highest <= lowest) {
        return true;
    }
    const uintptr_t first_multiple = (lowest + (alignment - 1)) & ~(alignment - 1);
    return first_multiple >= lowest && first_multiple < highest && size <= highest - first_multiple;
}

// A malloc on a heap destroyed already (its magic kDestroyedMagic), or on memory that never held
// a heap: reported to the platform, as heap_destroy() reports a second destroy (the heap's own
// hook went with it), and nothing is allocated. A destroyed heap has no CPU cache, so every malloc
// on one reaches a slow path that asks this; one whose state memory was reused meanwhile (a heap
// over a page frame allocator gives its state pages back) may hold anything, and no check can
// tell.
[[gnu::cold, gnu::noinline]] void* refuse_destroyed_heap(const Heap& heap, Caller caller) {
    const bool destroyed = heap.magic == Heap::kDestroyedMagic;
    platform::report_error(ErrorReport{
        destroyed ? ErrorKind::UseAfterFree : ErrorKind::NotAllocated,
        "heap",
        reinterpret_cast<uintptr_t>(&heap),
        0,
        caller.call_site(),
        destroyed ? "malloc on a heap destroyed already" : "malloc on memory that holds no heap",
        0,
        0,
        {},
        {}});
    return nullptr;
}

// For a malloc that found no memory: gives back what the heap holds idle - the blocks the calling
// CPU's cache holds (its storage stays: a fixed cost, made again at once otherwise), every
// class's empty slabs, the medium blocks the arenas keep for reuse and (frames heaps) the spare
// arena - and returns whether a slab, kept block or arena went back, so that the malloc is worth
// one more try. Other CPUs' caches stay as they are (only their own CPU touches them).
// O(classes + the CPU's cached blocks), with the arenas' and the page frame allocator's calls.
[[gnu::cold]] bool reclaim_idle_memory(Heap& heap, Caller caller) {
    __atomic_fetch_add(&heap.reclaims, uint64_t{1}, __ATOMIC_RELAXED);
    const uint64_t slabs_given = heap.arenas.slabs_given();
    drain_calling_cpu(heap, CacheStorage::Keep, caller);
    for (heap::ClassCache& cache : heap.classes) {
        cache.trim(heap.arenas);
    }
    const bool idle_given = heap.arenas.give_idle();
    return idle_given || heap.arenas.slabs_given() != slabs_given;
}

// A small malloc that found no memory (interrupts masked as the slow path left them, `corrupt`
// its finding): finishes that call, then tries once more straight from the class (the calling
// CPU's magazine is empty) if reclaim_idle_memory() gave memory back.
[[gnu::cold, gnu::noinline]] void* allocate_small_after_reclaim(Heap& heap, unsigned index,
                                                                size_t size,
                                                                platform::InterruptState previous,
                                                                const heap::Slab* corrupt,
                                                                Caller caller) {
    finish_small(heap, previous, corrupt, FlushFailures{}, caller);
    if (!reclaim_idle_memory(heap, caller)) {
        return nullptr;
    }
    heap::Slab* corrupt_again = nullptr;
    const platform::InterruptState masked = platform::disable_interrupts();
    void* block = heap.classes[index].allocate(heap.arenas, size, heap.secret, corrupt_again);
    finish_small(heap, masked, corrupt_again, FlushFailures{}, caller);
    return block;
}

} // namespace

namespace heap {

constinit Heap* g_default_heap = nullptr;

void finish_small(Heap& heap, platform::InterruptState previous, const heap::Slab* corrupt,
                  const FlushFailures& failures, Caller caller) {
    platform::restore_interrupts(previous);
    heap.arenas.report_damage(heap.errors);
    if (corrupt != nullptr) [[unlikely]] {
        report_corrupt_slab(heap, corrupt);
    }
    if (failures.count != 0) [[unlikely]] {
        report_flush(heap, failures, caller);
    }
}

// The calling CPU's cache when the fast path had none: made now, or null (no CPU slot, caches
// disabled, or no room). Interrupts are masked.
static CpuCache* make_calling_cpu_cache(Heap& heap) {
    const unsigned cpu = platform::current_cpu();
    return cpu < platform::kMaxCpus ? heap.cpus.make(cpu, heap.arenas) : nullptr;
}

// allocate_small_slow() for a CPU with no cache: refused on a destroyed heap; else the refill of
// a cache made now, or (no CPU slot, or no memory for a cache) one block from the class under its
// lock. Out of line, so that the refill's path keeps its registers.
[[gnu::cold, gnu::noinline]] void* allocate_small_without_cache(Heap& heap, unsigned index,
                                                                size_t size,
                                                                platform::InterruptState previous,
                                                                Caller caller) {
    if (heap.magic != Heap::kMagic) [[unlikely]] {
        platform::restore_interrupts(previous);
        return refuse_destroyed_heap(heap, caller);
    }
    CpuCache* cache = make_calling_cpu_cache(heap);
    if (cache != nullptr) {
        return allocate_small_slow(heap, index, size, cache, previous, caller);
    }
    heap::Slab* corrupt = nullptr;
    void* block = heap.classes[index].allocate(heap.arenas, size, heap.secret, corrupt);
    if (block == nullptr) [[unlikely]] {
        return allocate_small_after_reclaim(heap, index, size, previous, corrupt, caller);
    }
    finish_small(heap, previous, corrupt, FlushFailures{}, caller);
    return block;
}

// malloc() of class `index` when the calling CPU's magazine is empty (a refill from the class;
// when that finds no memory, once more after reclaim_idle_memory()) or it has no cache yet
// (allocate_small_without_cache()). Interrupts are masked (`previous`: the state to restore).
// Six arguments, all in registers.
void* allocate_small_slow(Heap& heap, unsigned index, size_t size, CpuCache* cache,
                          platform::InterruptState previous, Caller caller) {
    if (cache == nullptr) [[unlikely]] {
        return allocate_small_without_cache(heap, index, size, previous, caller);
    }
    heap::Slab* corrupt = nullptr;
    void* block = heap.cpus.refill(*cache, index, size, heap.classes[index], heap.arenas,
                                   heap.secret, corrupt);
    if (block == nullptr) [[unlikely]] {
        return allocate_small_after_reclaim(heap, index, size, previous, corrupt, caller);
    }
    finish_small(heap, previous, corrupt, FlushFailures{}, caller);
    return block;
}

// free() of `block`, a handed-out block of `slab` not carrying its free mark, when the calling
// CPU's magazine is full or it has no cache: onto the magazine of a cache made just now, else
// straight back to its slab under the class lock, which keeps a slab it empties
// (class_cache.h): no flush and no arena call. Interrupts are masked (`previous`: the state to
// restore). Six arguments, all in registers: the class is found again rather than passed.
void free_small_slow(Heap& heap, Slab* slab, void* block, CpuCache* cache,
                     platform::InterruptState previous, Caller caller) {
    const unsigned index = slab->class_index; // checked by the caller
    if (cache == nullptr) [[unlikely]] {
        cache = make_calling_cpu_cache(heap);
        if (cache != nullptr) {
            Magazine& magazine = cache->magazines[index];
            cache->slots[heap::kSlotLayout.first[index] + magazine.count] = block;
            static_cast<FreeBlock*>(block)->mark = heap::free_mark(slab, block, heap.secret);
            publish(magazine.count, magazine.count + 1);
            platform::restore_interrupts(previous);
            return;
        }
    }
    platform::restore_interrupts(previous);
    if (heap.classes[index].free(slab, block, heap.secret) != SlabLookup::Live) {
        report_bad_pointer(heap, block, caller);
    }
}

// free() of a pointer the calling CPU's slab hints do not place (interrupts masked on the CPU;
// the count of slabs given back read before anything else): the arena holding it (arena_holding():
// its bounds from its page tag, read once, not from its header), then its start bit: a block start
// is given back as a medium block (re-checked under the arenas' lock). Otherwise the block holding
// it in the arena's start bitmap (near, without the lock: a slab found for an address that is no
// live block of it is confirmed by the class lock, now or when a CPU cache gives the block back). A
// slab's block is hinted for the next free; a pointer no slab handed out goes to the class lock (a
// block of a retired slab); anything else, and a block start that is no taken medium block, to
// free_not_small(), which looks it up from the start.
void free_unhinted(Heap& heap, void* block, CpuCache* cache, platform::InterruptState previous,
                   Caller caller) {
    const uint64_t slabs_given = heap.arenas.slabs_given();  // before the lookup the hint records
    const uint64_t arenas_seen = heap.arenas.arenas_given(); // before the tags it reads
    const auto address = reinterpret_cast<uintptr_t>(block);
    // Over a page frame allocator, its arena from the CPU's arena hint, else from the page map
    // (hinted once it holds a slab's block: the frees the slab hints miss); a region heap's one
    // arena is known at once.
    heap::ArenaBounds arena{0, 0};
    bool to_hint = false;
    if (heap.over_frames() && cache != nullptr) {
        arena = cache->hinted_arena(address, arenas_seen);
        to_hint = arena.bytes == 0;
        if (to_hint) [[unlikely]] {
            arena = heap::arena_holding(heap, block);
        }
    } else {
        arena = heap::arena_holding(heap, block);
    }
    if (address - arena.base < arena.bytes) [[likely]] {
        if (SegregatedFit::is_block_start(arena, block)) {
            // No slab block starts a block of the fit (its slab's header does): a medium block,
            // re-checked under the arenas' lock; anything else at a block start is misuse or
            // checked mode's, looked up from the start.
            platform::restore_interrupts(previous);
            if (!free_medium(heap, *reinterpret_cast<const heap::Arena*>(arena.base), block,
                             arenas_seen)) [[unlikely]] {
                free_not_small(heap, block, caller);
            }
            return;
        }
        const SegregatedFit::Found found =
            SegregatedFit::find_near(arena, block, heap::kMaxSlabReach);
        if (found.use == BlockUse::Slab) {
            heap::Slab* slab = heap::slab_in_block(found.block, heap.arenas.slab_placement());
            const unsigned index = slab->class_index; // confirmed under the class lock
            if (index < heap::kSizeClassCount && heap::slab_handed_out(slab, block)) [[likely]] {
                if (cache != nullptr) {
                    cache->widen_slab_hints();
                    cache->hint_slab(address, slab, heap::kSlabLayouts[index].slab_bytes,
                                     slabs_given);
                    if (to_hint) {
                        cache->hint_arena(address, arena, arenas_seen);
                    }
                }
                free_handed_out(heap, slab, index, block, cache, previous, caller);
                return;
            }
            platform::restore_interrupts(previous);
            if (index < heap::kSizeClassCount &&
                heap.classes[index].free(slab, block, heap.secret) == SlabLookup::Live) {
                return; // a block of a retired slab
            }
            report_bad_pointer(heap, block, caller);
            return;
        }
    }
    platform::restore_interrupts(previous);
    free_not_small(heap, block, caller);
}

namespace {

// take_block() with a page frame allocator's large run looked for as `search` says.
TakenBlock take_block_searching(Heap& heap, size_t size, size_t alignment, BlockUse use,
                                size_t requested, RunSearch search) {
    const size_t align = alignment < kMinBlockSize ? kMinBlockSize : alignment;
    // A guard-page pool always lives in the arenas (so at most one arena's worth of chunks); a
    // big medium or checked block over a page frame allocator is a run of its own, whose tags
    // say whether it is checked, so free() sends it to checked mode.
    if (heap.over_frames() && use != BlockUse::Guard &&
        (size > kMaxMediumSize || align > kMaxMediumAlignment)) {
        auto* start = static_cast<unsigned char*>(heap.large.take(
            size, align, use == BlockUse::Checked ? heap::RunUse::Checked : heap::RunUse::Plain,
            requested, search));
        return TakenBlock{start, LargeRuns::pages_for(size) * kPageSize};
    }
    auto* start = static_cast<unsigned char*>(heap.arenas.take(size, align, use, requested));
    return TakenBlock{start, start != nullptr ? SegregatedFit::usable_size(start) : 0};
}

} // namespace

TakenBlock take_block(Heap& heap, size_t size, size_t alignment, BlockUse use, size_t requested) {
    return take_block_searching(heap, size, alignment, use, requested, RunSearch::AnyFreePages);
}

void give_block(Heap& heap, const BlockRef& block) {
    if (block.holder == Holder::CheckedRun || block.holder == Holder::LargeRun) {
        const bool given = heap.large.give(block.start);
        BEDROCK_ASSERT(given);
        return;
    }
    heap.arenas.give(block.start,
                     block.holder == Holder::Guard ? BlockUse::Guard : BlockUse::Checked);
}

BlockRef find_block(Heap& heap, const void* address) {
    return locate(heap, address, Lookup::Everywhere);
}

// malloc() at level off: a small block through the calling CPU's cache, else a medium block or
// a large run.
void* allocate_not_small(Heap& heap, size_t size, size_t alignment, Caller caller) {
    if (alignment != 0 && !is_power_of_two(alignment)) {
        return nullptr;
    }
    if (heap.magic != Heap::kMagic) [[unlikely]] {
        return refuse_destroyed_heap(heap, caller);
    }
    // A large run is first cut from a free buddy block (a bounded cost); when that fails, memory
    // is short: what the heap holds idle goes back, and any free pages in a row serve the run.
    // Where the memory could never serve it, nothing goes back; a page frame allocator that grows
    // is still asked for the run (its owner may add a range that holds only the run, where one
    // twice the block it would be cut from is more than a limit leaves).
    void* block =
        take_block_searching(heap, size, alignment, BlockUse::Medium, size, RunSearch::BuddyBlock)
            .start;
    heap.arenas.report_damage(heap.errors);
    if (block == nullptr) [[unlikely]] {
        const bool fits = could_ever_fit(heap, size, alignment);
        if (!fits && !(heap.over_frames() && heap.frames->has_grow_hook())) {
            return nullptr;
        }
        if (fits) {
            static_cast<void>(reclaim_idle_memory(heap, caller));
        }
        block = take_block_searching(heap, size, alignment, BlockUse::Medium, size,
                                     RunSearch::AnyFreePages)
                    .start;
        heap.arenas.report_damage(heap.errors);
    }
    return block;
}

bool refuse_if_not_live(const Heap& heap, Caller caller) {
    if (heap.magic == Heap::kMagic) [[likely]] {
        return false;
    }
    static_cast<void>(refuse_destroyed_heap(heap, caller));
    return true;
}

// malloc() with checking on. Out of line, so that the fast path keeps no value across a call.
void* allocate_checked(Heap& heap, size_t size, size_t alignment, Caller caller) {
    if (heap.magic != Heap::kMagic) [[unlikely]] {
        return refuse_destroyed_heap(heap, caller); // its check level went with it
    }
    void* block = heap.checked.allocate(heap, size, alignment, caller);
    heap.arenas.report_damage(heap.errors);
    return block;
}

void check_named_size(Heap& heap, const void* block, size_t named, Caller caller) {
    if constexpr (kHeapChecksCompiled) {
        if (block == nullptr || !is_aligned(reinterpret_cast<uintptr_t>(block), kMinBlockSize)) {
            return;
        }
        const BlockRef ref =
            look_further(heap, block, locate(heap, block, Lookup::NearAndLockFree));
        if (is_checked(ref.holder)) {
            heap.checked.check_named_size(heap, ref, block, named, caller);
        }
    }
}

size_t usable_size(Heap& heap, const void* block, Caller caller) {
    size_t size = 0;
    BlockRef ref{};
    return block != nullptr && find_usable_size(heap, block, caller, size, ref) ? size : 0;
}

namespace {

// The block a realloc() that grows `block` moves it to: a quarter more than `size` when that is
// not small and the memory is there (else exactly `size`), so a block grown step by step moves
// O(log(final / first)) times and copies each byte O(1) times on average, as a vector that grows
// by a factor does, rather than once per step. A checked block gets exactly `size`: its red zone
// starts there.
void* allocate_for_growth(Heap& heap, size_t size, bool checked, Caller caller) {
    constexpr size_t kHeadroomDivisor = 4;
    if (!checked && size > kMaxSmallSize && size <= SIZE_MAX - size / kHeadroomDivisor) {
        void* roomy = allocate(heap, size + size / kHeadroomDivisor, kMinBlockSize, caller);
        if (roomy != nullptr) {
            return roomy;
        }
    }
    return allocate(heap, size, kMinBlockSize, caller);
}

} // namespace

void* reallocate(Heap& heap, void* block, size_t size, Caller caller) {
    if (block == nullptr) {
        return allocate(heap, size, kMinBlockSize, caller);
    }
    size_t usable = 0;
    BlockRef ref{};
    if (!find_usable_size(heap, block, caller, usable, ref)) {
        return nullptr; // reported
    }
    // Checked blocks always move, so a stale pointer to the old block meets its quarantine; and
    // a block allocated unchecked moves into a checked one when checking is on.
    const bool checked = heap.errors.level() != CheckLevel::Off || is_checked(ref.holder);
    // A large run that stays large shrinks in place, its whole pages past `size` given back; a
    // medium block that stays larger than the small sizes, or keeps at least half its size,
    // too, its rest a free block (or part of the free block after it).
    // Otherwise in place while the block fits and at least half of it stays in use; a medium
    // block also grows in place into a free block right after it, and a large run into the free
    // pages right after it.
    if (!checked && size <= usable && size > kMaxMediumSize && ref.holder == Holder::LargeRun &&
        ref.start == block) {
        static_cast<void>(heap.large.shrink(block, usable / kPageSize, size));
        return block;
    }
    if (!checked && size <= usable && (size > kMaxSmallSize || size >= usable / 2) &&
        ref.holder == Holder::Medium && ref.start == block) {
        static_cast<void>(heap.arenas.shrink_in_place(const_cast<Arena&>(*ref.arena), block, size));
        heap.arenas.report_damage(heap.errors);
        return block;
    }
    if (!checked && size <= usable && (size >= usable / 2 || usable == kMinBlockSize)) {
        return block;
    }
    if (!checked && size > usable && ref.holder == Holder::Medium && ref.start == block) {
        const bool grown = heap.arenas.grow_in_place(const_cast<Arena&>(*ref.arena), block, size);
        heap.arenas.report_damage(heap.errors);
        if (grown) {
            return block;
        }
    }
    if (!checked && size > usable && ref.holder == Holder::LargeRun && ref.start == block &&
        heap.large.grow(block, usable / kPageSize, size)) {
        return block;
    }
    void* moved = size > usable ? allocate_for_growth(heap, size, checked, caller)
                                : allocate(heap, size, kMinBlockSize, caller);
    if (moved == nullptr) {
        return nullptr;
    }
    bedrock_memcpy(moved, block, size < usable ? size : usable);
    free(heap, block, caller);
    return moved;
}

} // namespace heap

void* heap_allocate(Heap& heap, size_t size, size_t alignment) {
    return heap::allocate(heap, size, alignment, BEDROCK_HEAP_CALLER());
}

void heap_free(Heap& heap, void* block) {
    heap::free(heap, block, BEDROCK_HEAP_CALLER());
}

size_t heap_usable_size(Heap& heap, const void* block) {
    return heap::usable_size(heap, block, BEDROCK_HEAP_CALLER());
}

void* heap_reallocate(Heap& heap, void* block, size_t size) {
    return heap::reallocate(heap, block, size, BEDROCK_HEAP_CALLER());
}

Heap* default_heap() {
    return heap::default_heap_inline();
}

void set_default_heap(Heap* heap) {
    __atomic_store_n(&heap::g_default_heap, heap, __ATOMIC_RELEASE);
}

} // namespace bedrock
