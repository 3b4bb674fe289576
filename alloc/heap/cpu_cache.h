// SPDX-License-Identifier: MIT
// CpuCaches: the per-CPU front of a heap's size classes. Each CPU keeps, per class, a magazine:
// a stack of up to capacity(class) free blocks in an array of its own. malloc pops from the
// calling CPU's magazine and free pushes onto it, with interrupts masked on that CPU and no lock
// and no atomic read-modify-write; an empty magazine is refilled in one batch through the class
// cache (class_cache.h: allocate_batch under its lock), and a free that finds its magazine full
// gives its block straight back to its slab (ClassCache::free): no batch, so that free costs its
// lookup and one class call at most. A drain gives a magazine back whole (free_batch).
//
// Why magazines (Bonwick; tcmalloc's per-CPU caches are the same shape) and not SLUB's per-CPU
// slab or mimalloc's per-page local and remote free lists: a CPU then owns blocks, never slabs,
// so a free of a block another CPU allocated is just as cheap as a local one (the larson-like
// cross-thread workload of ./bench.sh), the slab and its bitmap stay under the class lock alone
// (the statistics, heap_check, trim and checked mode see one truth), and no remote free list -
// an atomic exchange per free and an unbounded walk on the owner's side - is needed. The price:
// a free must find the block's slab from metadata (the page tag, the arena's start bitmap) to
// learn its class, where a per-CPU slab would compare one pointer; Bedrock pays that anyway,
// since ownership is never read from memory near the pointer. To pay it less often, each CPU
// keeps slab hints: for the last 1 KiB granules its frees found a slab in (direct-mapped sets of
// two, kSlabHintSets), the slabs and their sizes, stamped with the arenas' count of slabs given
// back (Arenas::slabs_given()). A block outside the hinted slabs (a granule two slabs meet) is
// told from the hint alone, never from the slab's header: the count is read before the header, so
// the hinted slab may be leaving the heap on another CPU right then, and only a slab that holds the
// block being freed stays. While that count has not moved, no slab has left the heap, so the
// hinted slab is still a slab of its class at that address; the free then checks the block
// against the slab's layout and bitmap as before. A count that moved, or a block outside the
// hinted slab, falls back to the page map. Over a page frame allocator, that fallback finds the
// block's arena from arena hints the same way (an arena's bounds, direct-mapped by the 256 KiB
// span the block lies in, stamped with the count of arenas given back, Arenas::arenas_given(),
// noted by the fallbacks that place a slab's block), so only a free in a span the CPU has not
// freed a slab's block into since an arena left looks at the page frame allocator's tags; the
// arena's start bitmap then places the block. Measured (./bench.sh --summary): a 16-byte pair 345
// instructions at first, 282 with inline platform hooks, 189 with the hints, 143 with the fast
// paths inline in the entry points (fast_paths.h); the larson-like workload runs at 0.6-0.65 of
// mimalloc's throughput with 64 sets and 0.68-0.70 with 256, held back by the frees the hints
// miss (over 90 % of them with one hint per page; its working set is beyond what the sets hold
// either way), not by the class locks (batches of 8 change nothing).
//
// Owns: the per-CPU storage (one medium block of the arenas per CPU, BlockUse::CpuCache, taken
// on the CPU's first small malloc or free) and, in each, the magazines, their slots, the slab
// hints and the arena hints. A CPU's magazines are touched only by that CPU with its interrupts
// masked, or by heap_drain_cpu() / heap_destroy() while it runs no Bedrock code; other CPUs read
// only the counters (atomic loads) for the statistics and heap_check(), under m_readers, which
// release() takes to unpublish a cache before it gives the storage back: a reader never reads
// storage the arenas have taken back (and may have handed out again).
// Invariants, for every CPU c and class i:
//   0 <= count(c, i) <= capacity(i)
//   each cached block is a block the class handed out (its slab's allocated bit is set) and
//     carries free_mark(its slab) in its second word (slab.h); no block is cached twice
//   class blocks_in_use (class_cache.h) == blocks live for the program + sum_c count(c, i)
//   a hint set h of c with h.slabs_given == slabs_given(): each h.slabs[w] not null is a slab of
//     the heap (in use or retired) of h.bytes[w]
//   an arena hint a of c with a.arenas_given == arenas_given() and a.bounds.bytes != 0:
//     a.bounds are the bounds of one of the heap's arenas
// Bounds: a CPU holds at most kCpuCacheSlots blocks (about 16 KiB per class); a refill takes up to
// 1 + kCpuCacheBatch blocks under the class lock.
// Lock order: none taken here but the class lock on refill, free and drain (and through it the
// arenas' lock on refill and drain: a free makes no arena call); the storage of a CPU's cache
// comes from the arenas' lock alone. m_readers is a leaf: nothing else is taken under it
// (check() reads the calling CPU's own cache, whose blocks and hints need the class and arenas'
// locks, outside it).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/assert.h"
#include "bedrock/platform.h"
#include "bedrock/spinlock.h"
#include "heap/class_cache.h"
#include "heap/size_class.h"
#include "support/bits.h"

namespace bedrock::heap {

// Blocks of class `index` one CPU may hold: about 16 KiB of them, at least 16 and at most 64
// (a CPU holds at most kCpuCacheSlots blocks, at most kCpuCacheBytes of them).
constexpr uint32_t cpu_cache_capacity(unsigned index) {
    const size_t blocks = 16384 / class_size(index);
    return static_cast<uint32_t>(blocks < 16 ? 16 : blocks > 64 ? 64 : blocks);
}
constexpr size_t cpu_cache_bytes() {
    size_t bytes = 0;
    for (unsigned index = 0; index < kSizeClassCount; ++index) {
        bytes += cpu_cache_capacity(index) * class_size(index);
    }
    return bytes;
}
inline constexpr size_t kCpuCacheBytes = cpu_cache_bytes();
static_assert(kCpuCacheBytes == 326208, "about 319 KiB: the README says so");
// Blocks one refill puts in the magazine beyond the one it hands out: 1 (two blocks a refill),
// whatever the capacity, since a refill's cost is part of malloc's worst case (a refill may also
// carve a new slab, and then takes just its first block, or give an excess slab back, and then
// takes no more: a split or a merge in the segregated fit, class_cache.h); the capacity beyond
// it is slack, so a CPU whose frees and mallocs of a class balance rarely reaches either end.
inline constexpr uint32_t kCpuCacheBatch = 1;
constexpr uint32_t refill_batch(unsigned) {
    return kCpuCacheBatch;
}

// Where each class's slots start in a CPU's cache (and their total), and how many it has: a
// table, so the fast paths divide nothing.
struct SlotLayout {
    uint16_t first[kSizeClassCount + 1];
    uint16_t capacity[kSizeClassCount];
};
constexpr SlotLayout slot_layout() {
    SlotLayout layout{};
    for (unsigned index = 0; index < kSizeClassCount; ++index) {
        layout.capacity[index] = static_cast<uint16_t>(cpu_cache_capacity(index));
        layout.first[index + 1] =
            static_cast<uint16_t>(layout.first[index] + layout.capacity[index]);
    }
    return layout;
}
inline constexpr SlotLayout kSlotLayout = slot_layout();
inline constexpr uint32_t kCpuCacheSlots = kSlotLayout.first[kSizeClassCount];
static_assert(kCpuCacheSlots == 1073 && kCpuCacheSlots < 65536);

// One class on one CPU: slots[first(index), first(index) + count) hold its blocks, the last
// one on top. Written by the owning CPU only (relaxed atomic stores), read by any.
struct Magazine {
    uint32_t count;
    uint32_t unused;
    uint64_t allocations;     // mallocs served from this magazine
    uint64_t bytes_requested; // their requested bytes
};
static_assert(sizeof(Magazine) == 24);

// The slabs this CPU's frees found in one granule of memory (1 KiB, kSlabHintGranuleShift; up
// to kSlabHintWays, the latest first), their sizes, and when: valid while the arenas'
// slabs_given() is still `slabs_given` (no slab has been given back since, so each is still
// there, of the same class). A granule is smaller than any slab, so at most two slabs meet it
// and the set holds both: slabs of 1.6-4 KiB share pages, and hints kept one per page missed
// 36-47 % of the frees of a many-size workload (the two or three slabs of a page took turns).
// Kept at the set of the granule the free's block lay in (direct-mapped). All zeroes: empty.
inline constexpr unsigned kSlabHintWays = 2;
inline constexpr unsigned kSlabHintGranuleShift = 10;
static_assert(size_t{1} << kSlabHintGranuleShift <= kMinSlabBytes,
              "a granule meets at most two slabs");
struct SlabHintSet {
    Slab* slabs[kSlabHintWays];
    uint32_t bytes[kSlabHintWays]; // each slab's class's slab_bytes (0: an empty way)
    uint64_t slabs_given;
};
static_assert(sizeof(SlabHintSet) == 32);
// The sets a CPU's cache has room for (8 KiB of them), and those made ready when it is made: the
// rest are made ready kSlabHintSetsPerWidening at a time by the frees the hints miss, and used
// once the next power of two of them is ready (CpuCache::slab_hint_mask). So a CPU's first call
// zeroes 2 KiB of hints, as many as it always did, and no call zeroes more than 1 KiB. Why 256:
// 64 sets (64 KiB of address space) missed 4-6 % of the frees of 2 threads allocating 16-527 bytes
// at once, each thread's blocks spread over slabs the other thread's share; 256 miss 0.002 %
// (tests/bench/many_threads.c, 20 and 32 million pairs).
inline constexpr unsigned kSlabHintSets = 256;
inline constexpr unsigned kSlabHintSetsAtFirst = 64;
inline constexpr unsigned kSlabHintSetsPerWidening = 32;
static_assert(is_power_of_two(kSlabHintSets) && is_power_of_two(kSlabHintSetsAtFirst) &&
              kSlabHintSetsAtFirst <= kSlabHintSets &&
              kSlabHintSetsAtFirst % kSlabHintSetsPerWidening == 0);

// An arena one of this CPU's frees its slab hints missed found its block in, and when: valid
// while the arenas' arenas_given() is still `arenas_given` (no arena has left the heap since, so
// it is still one of the heap's at those bounds). Kept at the entry of the smallest arena's span
// (kMinArenaBytes) the block lay in. All zeroes: empty.
struct ArenaHint {
    ArenaBounds bounds;
    uint64_t arenas_given;
};
inline constexpr unsigned kArenaHints = 64; // direct-mapped by kMinArenaBytes span

// One CPU's cache: every class's magazine and their slots, the slab hints of its frees and
// their arena hint.
struct CpuCache {
    Magazine magazines[kSizeClassCount];
    // Sets [0, slab_hints_ready) are initialised; the hints use sets [0, slab_hint_mask], a power
    // of two of them, minus one:
    //   kSlabHintSetsAtFirst - 1 <= slab_hint_mask < slab_hints_ready <= kSlabHintSets
    uint32_t slab_hint_mask;
    uint32_t slab_hints_ready;
    SlabHintSet slab_hints[kSlabHintSets];
    ArenaHint arena_hints[kArenaHints];
    void* slots[kCpuCacheSlots];

    // Empties the magazines and the hints, and makes the first kSlabHintSetsAtFirst sets ready:
    // storage just taken. O(kSizeClassCount + kSlabHintSetsAtFirst + kArenaHints).
    void init() {
        for (Magazine& magazine : magazines) {
            magazine = Magazine{0, 0, 0, 0};
        }
        slab_hint_mask = kSlabHintSetsAtFirst - 1;
        slab_hints_ready = 0;
        ready_slab_hints(kSlabHintSetsAtFirst);
        for (ArenaHint& hint : arena_hints) {
            hint = ArenaHint{{0, 0}, 0};
        }
    }
    // Makes kSlabHintSetsPerWidening more sets ready, if any are left, and uses them all once a
    // power of two of them is: called by a free the hints missed. O(kSlabHintSetsPerWidening).
    void widen_slab_hints() {
        if (slab_hints_ready == kSlabHintSets) [[likely]] {
            return;
        }
        ready_slab_hints(kSlabHintSetsPerWidening);
        if (is_power_of_two(slab_hints_ready)) {
            slab_hint_mask = slab_hints_ready - 1;
        }
    }
    // Empties the `count` sets after those ready and counts them ready.
    void ready_slab_hints(unsigned count) {
        for (unsigned set = slab_hints_ready; set < slab_hints_ready + count; ++set) {
            slab_hints[set] = SlabHintSet{{nullptr, nullptr}, {0, 0}, 0};
        }
        slab_hints_ready += count;
    }
    // The sets the hints use now.
    [[nodiscard]] unsigned slab_hint_sets() const { return slab_hint_mask + 1; }

    // The hinted slab `address` lies inside if `slabs_given` is current, or null. Reads the
    // hints alone, never a slab.
    [[nodiscard]] Slab* hinted_slab(uintptr_t address, uint64_t slabs_given) const {
        const SlabHintSet& set = slab_hints[slab_hint_set(address)];
        if (set.slabs_given != slabs_given) {
            return nullptr;
        }
        for (unsigned way = 0; way < kSlabHintWays; ++way) {
            if (address - reinterpret_cast<uintptr_t>(set.slabs[way]) < set.bytes[way]) {
                return set.slabs[way];
            }
        }
        return nullptr;
    }
    // Notes that `address` lies in `slab`, of `slab_bytes`, found while slabs_given() read
    // `slabs_given` before the lookup began (never older than the set's: this CPU's frees read
    // it in turn). The latest slab comes first; the oldest leaves a full set.
    void hint_slab(uintptr_t address, Slab* slab, uint32_t slab_bytes, uint64_t slabs_given) {
        SlabHintSet& set = slab_hints[slab_hint_set(address)];
        if (set.slabs_given != slabs_given) {
            set = SlabHintSet{{slab, nullptr}, {slab_bytes, 0}, slabs_given};
            return;
        }
        static_assert(kSlabHintWays == 2);
        set.slabs[1] = set.slabs[0];
        set.bytes[1] = set.bytes[0];
        set.slabs[0] = slab;
        set.bytes[0] = slab_bytes;
    }
    [[nodiscard]] unsigned slab_hint_set(uintptr_t address) const {
        return static_cast<unsigned>(address >> kSlabHintGranuleShift) & slab_hint_mask;
    }
    // The hinted arena if `address` lies in it and `arenas_given` is current, else {0, 0}.
    // Reads the hint alone, never the arena.
    [[nodiscard]] ArenaBounds hinted_arena(uintptr_t address, uint64_t arenas_given) const {
        const ArenaHint& hint = arena_hints[(address / kMinArenaBytes) % kArenaHints];
        return address - hint.bounds.base < hint.bounds.bytes && hint.arenas_given == arenas_given
                   ? hint.bounds
                   : ArenaBounds{0, 0};
    }
    // Notes the arena a free found its block in while arenas_given() read `arenas_given` before
    // the lookup began.
    void hint_arena(uintptr_t address, ArenaBounds bounds, uint64_t arenas_given) {
        arena_hints[(address / kMinArenaBytes) % kArenaHints] = ArenaHint{bounds, arenas_given};
    }
};

// A relaxed atomic store: the owning CPU's write of a counter other CPUs read (a plain store on
// every target; no read-modify-write).
template <class T>
inline void publish(T& field, T value) {
    __atomic_store_n(&field, value, __ATOMIC_RELAXED);
}

class CpuCaches {
public:
    // Whether a heap has per-CPU caches at all: region heaps below kMinRegionBytes go without
    // (a CPU's cache would take a large share of the region).
    enum class Use : uint8_t { Disabled, Enabled };
    static constexpr size_t kMinRegionBytes = 128 * 1024;

    void init(Use use) { m_use = use; }
    [[nodiscard]] bool enabled() const { return m_use == Use::Enabled; }

    // The cache of `cpu` (< kMaxCpus), or null if it has none yet. Precondition: interrupts off
    // on `cpu` (or `cpu` runs no Bedrock code).
    [[nodiscard]] CpuCache* of(unsigned cpu) const {
        return __atomic_load_n(&m_caches[cpu], __ATOMIC_ACQUIRE);
    }
    // of(cpu) for the calling CPU itself, which wrote the pointer: the fast paths.
    [[nodiscard]] CpuCache* mine(unsigned cpu) const {
        return __atomic_load_n(&m_caches[cpu], __ATOMIC_RELAXED);
    }
    // The cache of `cpu`, made on first use from `arenas`; null when caches are disabled or the
    // arenas have no room. Same precondition as of(); inline while the cache exists.
    [[nodiscard]] CpuCache* make(unsigned cpu, Arenas& arenas) {
        CpuCache* cache = mine(cpu);
        return cache != nullptr ? cache : make_first(cpu, arenas);
    }

    // A block of class `index` for a malloc whose magazine in `cache` is empty, from `cls`,
    // and up to refill_batch(index) more into the magazine (none from a new slab); null when
    // the class has no memory. `requested` feeds the CPU's counters. O(refill_batch) plus at
    // most one arena call. Inline, with the class's part: one frame in malloc's slow path.
    [[gnu::always_inline]] void* refill(CpuCache& cache, unsigned index, size_t requested,
                                        ClassCache& cls, Arenas& arenas, uintptr_t secret,
                                        Slab*& corrupt) {
        Magazine& magazine = cache.magazines[index];
        BEDROCK_DEBUG_ASSERT(magazine.count == 0);
        const ClassCache::Batch batch = cls.allocate_batch(
            arenas, &cache.slots[kSlotLayout.first[index]], refill_batch(index), secret, corrupt);
        if (batch.block != nullptr) [[likely]] {
            publish(magazine.count, batch.cached);
            publish(magazine.allocations, magazine.allocations + 1);
            publish(magazine.bytes_requested, magazine.bytes_requested + requested);
        }
        return batch.block;
    }
    // Gives `blocks` blocks from the top of class `index`'s magazine back to `cls`, which keeps
    // any slab they empty (ClassCache::free_batch: no arena call, a lookup in `arenas` for a
    // block overwritten after free). O(blocks). For drain(). The magazine's count drops first:
    // a reader of the statistics between the two (the class's count, then the caches') then
    // counts the blocks as in use for a moment, never a live block as free (the other order had
    // heap_statistics() read 0 in use beside a live block, and heap_destroy() succeed with it).
    void flush(CpuCache& cache, unsigned index, uint32_t blocks, ClassCache& cls, uintptr_t secret,
               const Arenas& arenas, FlushFailures& failures) {
        Magazine& magazine = cache.magazines[index];
        BEDROCK_DEBUG_ASSERT(blocks <= magazine.count);
        const uint32_t keep = magazine.count - blocks;
        publish(magazine.count, keep);
        cls.free_batch(&cache.slots[kSlotLayout.first[index] + keep], blocks, secret, arenas,
                       failures);
    }
    // Flushes every magazine of `cpu` (if it has a cache), then gives every class's excess slabs
    // back to `arenas` (ClassCache::give_excess). Precondition: `cpu` is the caller with
    // interrupts off, or runs no Bedrock code.
    void drain(unsigned cpu, ClassCache* classes, Arenas& arenas, uintptr_t secret,
               FlushFailures& failures);
    // Gives the storage of `cpu` back to `arenas`, its counters to `classes` (it is made again on
    // the CPU's next small malloc or free). Precondition: as drain(), and the cache drained.
    void release(unsigned cpu, ClassCache* classes, Arenas& arenas);

    // Blocks held, allocations and bytes requested over every CPU for class `index` (atomic
    // loads: exact while no CPU is inside the heap).
    struct ClassTotals {
        uint64_t cached;
        uint64_t allocations;
        uint64_t bytes_requested;
    };
    [[nodiscard]] ClassTotals totals(unsigned index) const;
    // Every CPU's magazines within bounds; the calling CPU's cached blocks (`cpu`, or kNoCpuSlot)
    // each a handed-out block of its class carrying its free mark, its slab hints current at
    // `arenas`' slabs_given() each naming a slab and its end, and its arena hints current at
    // their arenas_given() each the bounds of one of `arenas`. The hints are read with the
    // arenas' lock held, so a slab or an arena another CPU gives back meanwhile is never read
    // half-rewritten nor taken for damage.
    [[nodiscard]] bool check(unsigned cpu, ClassCache* classes, uintptr_t secret,
                             Arenas& arenas) const;

private:
    [[gnu::noinline]] CpuCache* make_first(unsigned cpu, Arenas& arenas);

    // Whether every CPU's magazine counts are within their capacities (check()).
    [[nodiscard]] bool counts_hold() const;

    CpuCache* m_caches[platform::kMaxCpus] = {};
    // Held by a reader of other CPUs' caches and by release() while it unpublishes one.
    mutable SpinLock m_readers;
    Use m_use = Use::Disabled;
};

} // namespace bedrock::heap
