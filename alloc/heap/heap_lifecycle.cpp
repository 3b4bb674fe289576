// SPDX-License-Identifier: MIT
// Creating and destroying heaps, and two lists of live heaps:
//   region heaps (g_heaps): to tell a foreign block from memory of no heap, and to refuse a
//     region heap over another one's memory; changed only under both the creation lock
//     (creations and unlinkings of region heaps) and its own lock, a leaf, so either is enough
//     to read it;
//   heaps over page frame allocators (g_frames_heaps): for the allocators' reclaim hook, which
//     holds this list's lock across a reclaim but only tries the heaps' locks, and to tell a
//     block of a heap over another allocator from memory of no heap (reads only page tags).
// heap_lock_all() (for fork()) takes every lock of a heap in the order they nest:
//   the creation lock (outermost: a creation looks blocks up in other heaps under it) ->
//   checked mode's (checked blocks, guard pool, the pools' global locks: never held while
//   calling the core) -> class locks 0..n-1 (never nested: any order is safe, this one is fixed)
//   -> arenas -> large runs -> the two lists' locks -> owner ids
// with interrupts masked once before the first; heap_unlock_all() releases them in reverse.
#include "bedrock/assert.h"
#include "bedrock/heap.h"
#include "bedrock/heap_checks.h"
#include "bedrock/memory_routines.h"
#include "bedrock/platform.h"
#include "heap/block_lookup.h"
#include "heap/heap_entry.h"
#include "heap/heap_state.h"
#include "heap/owner_ids.h"
#include "support/bits.h"
#include "support/intrusive_list.h"

namespace bedrock {
namespace {

using heap::SegregatedFit;

using HeapList = IntrusiveList<Heap, &Heap::prev_heap, &Heap::next_heap>;
constinit HeapList g_heaps; // live region heaps, under g_heaps_lock
constinit SpinLock g_heaps_lock;
constinit SpinLock g_creation_lock; // region heaps' creation and unlinking
// Live heaps over page frame allocators (through the same links: a heap is on one list), under
// g_frames_heaps_lock, for the page frame allocators' reclaim hook.
constinit HeapList g_frames_heaps;
constinit SpinLock g_frames_heaps_lock;

// The reclaim hook of every page frame allocator a heap is made over: each live heap over
// `frames` gives back what it holds idle, taking no lock it would wait for (the failed
// allocation may hold one, or be inside this hook on another CPU: then it finds nothing).
bool reclaim_idle_pages(PageFrameAllocator& frames) {
    platform::InterruptState previous;
    if (!g_frames_heaps_lock.try_lock(previous)) {
        return false;
    }
    bool reclaimed = false;
    for (Heap* heap = g_frames_heaps.front(); heap != nullptr; heap = HeapList::next(*heap)) {
        if (heap->frames == &frames && heap::reclaim_without_waiting(*heap)) {
            reclaimed = true;
        }
    }
    g_frames_heaps_lock.unlock(previous);
    return reclaimed;
}

void link_heap(Heap& heap) {
    LockGuard guard(g_heaps_lock);
    g_heaps.push_front(heap);
}

void unlink_heap(Heap& heap) {
    LockGuard guard(g_heaps_lock);
    g_heaps.remove(heap);
}

// The heap's secret (slab.h): its state's address and a count of heaps created, mixed with a
// build-time constant by splitmix64's finaliser; the top bit set, so no free mark is 0. Not a
// cryptographic secret: it keeps a write after free from forging a link or a mark by accident
// or by copying one from another block, as Linux's SLAB_FREELIST_HARDENED does.
uintptr_t make_secret(const void* state) {
    constexpr uint64_t kBuildConstant = [] {
        uint64_t hash = 0xcbf29ce484222325; // FNV-1a over the build's date and time
        for (const char c : __DATE__ __TIME__) {
            hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3;
        }
        return hash;
    }();
    constinit static uint64_t s_heaps_created = 0;
    uint64_t x = reinterpret_cast<uintptr_t>(state) ^ kBuildConstant ^
                 (__atomic_add_fetch(&s_heaps_created, 1, __ATOMIC_RELAXED) * 0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9;
    x = (x ^ (x >> 27)) * 0x94d049bb133111eb;
    x ^= x >> 31;
    return static_cast<uintptr_t>(x | (uint64_t{1} << 63));
}

Heap* init_state(void* memory, heap::CpuCaches::Use cpu_caches) {
    auto* heap = static_cast<Heap*>(memory);
    bedrock_memset(heap, 0, sizeof(Heap));
    heap->secret = make_secret(heap);
    heap->pad.write(heap->secret);
    heap->cpus.init(cpu_caches);
    // Other CPUs' frees read a slab's header line without the class lock only through CPU
    // caches, and only where there are other CPUs (slab.h).
    heap->arenas.set_slab_placement(cpu_caches == heap::CpuCaches::Use::Enabled &&
                                            platform::kMaxCpus > 1
                                        ? heap::SlabPlacement::OwnLine
                                        : heap::SlabPlacement::Packed);
    heap->checked.init();
    for (unsigned index = 0; index < heap::kSizeClassCount; ++index) {
        heap->classes[index].init(index);
    }
    return heap;
}

// Whether [start, end) may become a region heap: it overlaps no live region heap's memory
// (from its state to its arena's end) except inside one of that heap's live blocks (a heap made
// in a block one allocated), each decided from that heap's metadata under its arenas' lock.
// Precondition: the creation lock is held, so no region heap is linked or unlinked meanwhile.
bool region_is_free_of_heaps(uintptr_t start, uintptr_t end) {
    for (Heap* other = g_heaps.front(); other != nullptr; other = HeapList::next(*other)) {
        const uintptr_t other_start = reinterpret_cast<uintptr_t>(other);
        if (end <= other_start ||
            start >= SegregatedFit::arena_end(*other->arenas.region_arena())) {
            continue;
        }
        const heap::BlockRef ref =
            heap::locate(*other, reinterpret_cast<void*>(start), heap::Lookup::Everywhere);
        const auto block = reinterpret_cast<uintptr_t>(ref.start);
        bool in_block =
            ref.holder == heap::Holder::Medium && start >= block && end <= block + ref.usable;
        if constexpr (kHeapChecksCompiled) {
            // Checked mode's core blocks hold its headers, red zones, guard pages and the
            // quarantine: only a live block's own bytes will do.
            if (ref.holder == heap::Holder::Checked || ref.holder == heap::Holder::Guard) {
                in_block = other->checked.live_block_holds(ref, start, end);
            }
        }
        if (!in_block) {
            return false;
        }
    }
    return true;
}

} // namespace

namespace heap {

bool another_heap_holds(const Heap& heap, const void* address) {
    {
        LockGuard guard(g_heaps_lock);
        for (Heap* other = g_heaps.front(); other != nullptr; other = HeapList::next(*other)) {
            BEDROCK_ASSERT(other->magic == Heap::kMagic); // a heap's memory reused without destroy
            if (other == &heap) {
                continue;
            }
            if (arena_spans(*other->arenas.region_arena(), reinterpret_cast<uintptr_t>(address))) {
                return true;
            }
        }
    }
    // A heap over another page frame allocator: a page of that allocator some heap holds (its
    // tag is not None; page_tags.h). Heaps over this heap's own allocator were told apart from
    // the tags already. Only the allocators' tags are read, lock-free.
    LockGuard guard(g_frames_heaps_lock);
    for (Heap* other = g_frames_heaps.front(); other != nullptr; other = HeapList::next(*other)) {
        if (other->frames == heap.frames) {
            continue;
        }
        const PageFrameAllocator::PageTags tags = other->frames->tags_of(address);
        if (tags.page != nullptr) {
            return tag_kind(heap_tag(tags)) != PageKind::None;
        }
    }
    return false;
}

} // namespace heap

Heap* heap_create(PageFrameAllocator& frames) {
    const uint16_t owner_id = heap::acquire_owner_id();
    if (owner_id == 0) {
        return nullptr;
    }
    const size_t state_bytes = sizeof(Heap) + SegregatedFit::storage_bytes(heap::kMaxArenaBytes);
    const uint64_t state_pages = align_up(state_bytes, size_t{kPageSize}) / kPageSize;
    const PhysAddr phys = frames.allocate_pages(state_pages);
    if (phys == kNoPage) {
        heap::release_owner_id(owner_id);
        return nullptr;
    }
    Heap* heap = init_state(platform::phys_to_virt(phys), heap::CpuCaches::Use::Enabled);
    heap->owner_id = owner_id;
    heap->frames = &frames;
    heap->state_phys = phys;
    heap->state_pages = state_pages;
    heap->held.add(state_pages);
    heap->arenas.init_frames(heap->fit_storage(), frames, heap, owner_id, heap->held, heap->secret);
    heap->large.init(frames, owner_id, heap->held);
    heap->magic = Heap::kMagic;
    {
        LockGuard guard(g_frames_heaps_lock);
        g_frames_heaps.push_front(*heap);
    }
    frames.set_reclaim_hook(reclaim_idle_pages);
    return heap;
}

Heap* heap_create_in_region(void* region, size_t bytes) {
    const auto start = reinterpret_cast<uintptr_t>(region);
    if (region == nullptr || bytes == 0 || start + (bytes - 1) < start) {
        return nullptr; // no region, or one that wraps past the top of the address space
    }
    // Every address below is computed without passing the top of the address space: a region
    // that ends there gives up its last granule (an arena's end is the address after it).
    const uintptr_t last = start + (bytes - 1);
    const uintptr_t end = last == ~uintptr_t{0} ? last - (heap::kGranule - 1)
                                                : align_down(last + 1, uintptr_t{heap::kGranule});
    const uintptr_t padding = (0 - start) & (uintptr_t{alignof(Heap)} - 1);
    const size_t fit_bytes = SegregatedFit::storage_bytes(bytes);
    const size_t head = align_up(sizeof(Heap) + fit_bytes, size_t{heap::kGranule});
    if (end <= start || end - start <= padding || end - start - padding <= head) {
        return nullptr;
    }
    const uintptr_t state = start + padding;
    const uintptr_t arena = state + head;
    // The fresh arena must hold a slab of every class, so that any small malloc succeeds (one
    // placed OwnLine too, in a region of heap::CpuCaches::kMinRegionBytes or more: the state,
    // alignment padding and fit heads leave room for it).
    static_assert(heap::fit_detail::fresh_usable(
                      heap::CpuCaches::kMinRegionBytes - alignof(Heap) - sizeof(Heap) -
                      SegregatedFit::storage_bytes(heap::CpuCaches::kMinRegionBytes) -
                      heap::kGranule) >= heap::kMaxSlabReach);
    if (heap::fit_detail::fresh_usable(end - arena) < heap::kMaxSlabBytes) {
        return nullptr;
    }
    LockGuard creating(g_creation_lock);
    if (!region_is_free_of_heaps(start, end)) {
        return nullptr;
    }
    Heap* heap =
        init_state(reinterpret_cast<void*>(state), bytes >= heap::CpuCaches::kMinRegionBytes
                                                       ? heap::CpuCaches::Use::Enabled
                                                       : heap::CpuCaches::Use::Disabled);
    if (!heap->arenas.init_region(heap->fit_storage(), reinterpret_cast<void*>(arena), end - arena,
                                  heap, heap->secret)) {
        return nullptr;
    }
    heap->region_pages = bytes / kPageSize;
    heap->held.add(heap->region_pages);
    heap->magic = Heap::kMagic;
    link_heap(*heap);
    return heap;
}

bool heap_destroy(Heap& heap) {
    if (heap.magic != Heap::kMagic) {
        // Destroyed already (its magic is cleared) or never a heap: nothing of it is trusted,
        // its error hook included, so the report goes to the platform.
        const bool destroyed = heap.magic == Heap::kDestroyedMagic;
        platform::report_error(ErrorReport{
            destroyed ? ErrorKind::DoubleFree : ErrorKind::NotAllocated,
            "heap",
            reinterpret_cast<uintptr_t>(&heap),
            0,
            call_site_of(__builtin_return_address(0)),
            destroyed ? "heap_destroy() of a heap destroyed already" : "heap_destroy() of no heap",
            0,
            0,
            {},
            {}});
        return false;
    }
    // Cached and quarantined blocks count as free; a destroy refused changes nothing, so the
    // quarantine is emptied only after.
    const HeapStatistics statistics = heap_statistics(heap);
    if (statistics.blocks_in_use != 0) {
        heap.errors.raise(ErrorReport{ErrorKind::HeapInUse,
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
        heap.checked.flush(heap, BEDROCK_HEAP_CALLER());
        heap.checked.disable(heap);
    }
    // A write past the memory before the state or an arena, made since the last check: reported
    // before the memory goes.
    static_cast<void>(heap::pads_hold(heap, BEDROCK_HEAP_CALLER()));
    for (unsigned cpu = 0; cpu < platform::kMaxCpus; ++cpu) {
        heap_drain_cpu(heap, cpu);
    }
    heap_trim(heap);
    if (!heap.over_frames()) {
        LockGuard unlinking(g_creation_lock); // not while a creation looks into this heap
        unlink_heap(heap);
    }
    heap.magic = Heap::kDestroyedMagic;
    if (heap.over_frames()) {
        {
            LockGuard guard(g_frames_heaps_lock); // not while a reclaim looks into this heap
            g_frames_heaps.remove(heap);
        }
        heap.arenas.give_all();
        heap.arenas.report_damage(heap.errors);
        // The state goes back last, so read what that needs first.
        PageFrameAllocator* frames = heap.frames;
        const PhysAddr phys = heap.state_phys;
        const uint64_t pages = heap.state_pages;
        heap::release_owner_id(heap.owner_id);
        frames->free_pages(phys, pages);
    }
    return true;
}

void heap_lock_all(Heap& heap) {
    // Interrupts masked first: every lock() below then returns the same mask, kept once.
    const platform::InterruptState previous = platform::disable_interrupts();
    platform::InterruptState off = g_creation_lock.lock();
    if constexpr (kHeapChecksCompiled) {
        off = heap.checked.lock_all();
    }
    for (heap::ClassCache& cache : heap.classes) {
        off = cache.lock_all();
    }
    off = heap.arenas.lock_all();
    off = heap.large.lock_all();
    off = g_heaps_lock.lock();
    off = g_frames_heaps_lock.lock();
    off = heap::lock_owner_ids();
    heap.locked_all_previous = previous;
    heap.locked_all_off = off;
}

void heap_unlock_all(Heap& heap) {
    const platform::InterruptState previous = heap.locked_all_previous;
    const platform::InterruptState off = heap.locked_all_off;
    heap::unlock_owner_ids(off);
    g_frames_heaps_lock.unlock(off);
    g_heaps_lock.unlock(off);
    heap.large.unlock_all(off);
    heap.arenas.unlock_all(off);
    for (unsigned index = heap::kSizeClassCount; index-- > 0;) {
        heap.classes[index].unlock_all(off);
    }
    if constexpr (kHeapChecksCompiled) {
        heap.checked.unlock_all(off);
    }
    g_creation_lock.unlock(off);
    platform::restore_interrupts(previous);
}

} // namespace bedrock
