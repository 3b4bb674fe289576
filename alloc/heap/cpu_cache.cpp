// SPDX-License-Identifier: MIT
// CpuCaches: making a CPU's cache, drains, the totals and check() (see cpu_cache.h). The pop and
// push are inline in fast_paths.h, a refill and a flush in cpu_cache.h.
#include "heap/cpu_cache.h"

namespace bedrock::heap {

CpuCache* CpuCaches::make_first(unsigned cpu, Arenas& arenas) {
    if (!enabled()) {
        return nullptr;
    }
    auto* cache =
        static_cast<CpuCache*>(arenas.take(sizeof(CpuCache), kMinBlockSize, BlockUse::CpuCache, 0));
    if (cache == nullptr) {
        return nullptr;
    }
    cache->init();
    // Published once its magazines are set: other CPUs read their counters for the statistics.
    __atomic_store_n(&m_caches[cpu], cache, __ATOMIC_RELEASE);
    return cache;
}

void CpuCaches::drain(unsigned cpu, ClassCache* classes, Arenas& arenas, uintptr_t secret,
                      FlushFailures& failures) {
    if (cpu >= platform::kMaxCpus) {
        return;
    }
    CpuCache* cache = of(cpu);
    if (cache == nullptr) {
        return;
    }
    for (unsigned index = 0; index < kSizeClassCount; ++index) {
        flush(*cache, index, cache->magazines[index].count, classes[index], secret, arenas,
              failures);
        classes[index].give_excess(arenas);
    }
}

void CpuCaches::release(unsigned cpu, ClassCache* classes, Arenas& arenas) {
    CpuCache* cache = cpu < platform::kMaxCpus ? of(cpu) : nullptr;
    if (cache == nullptr) {
        return;
    }
    {
        // No reader of other CPUs' caches holds it once this returns (see the file comment).
        LockGuard guard(m_readers);
        __atomic_store_n(&m_caches[cpu], nullptr, __ATOMIC_RELEASE);
    }
    for (unsigned index = 0; index < kSizeClassCount; ++index) {
        const Magazine& magazine = cache->magazines[index];
        BEDROCK_DEBUG_ASSERT(magazine.count == 0);
        if (magazine.allocations != 0) {
            classes[index].absorb(magazine.allocations, magazine.bytes_requested);
        }
    }
    arenas.give(cache, BlockUse::CpuCache);
}

CpuCaches::ClassTotals CpuCaches::totals(unsigned index) const {
    ClassTotals totals{0, 0, 0};
    LockGuard guard(m_readers);
    for (unsigned cpu = 0; cpu < platform::kMaxCpus; ++cpu) {
        const CpuCache* cache = of(cpu);
        if (cache == nullptr) {
            continue;
        }
        const Magazine& magazine = cache->magazines[index];
        totals.cached += __atomic_load_n(&magazine.count, __ATOMIC_RELAXED);
        totals.allocations += __atomic_load_n(&magazine.allocations, __ATOMIC_RELAXED);
        totals.bytes_requested += __atomic_load_n(&magazine.bytes_requested, __ATOMIC_RELAXED);
    }
    return totals;
}

// Each hint of a set current at `slabs_given` names a slab of the heap (in use or retired, of a
// real class) and its size. Read with the arenas holding still (Arenas::inspect_holding_still()): a
// slab given back since the hint was noted moved the count before its state changed and
// before the fit had its memory, so a hint whose count is current names memory that still
// holds a slab header; one leaving its class right now has moved the count (re-read) before
// its state, so a hint that no longer names its slab is stale, not damaged.
static bool hints_are_sound(const SlabHintSet& set, uint64_t slabs_given, const Arenas& arenas) {
    if (set.slabs_given != slabs_given) {
        return true; // stale or empty: never used
    }
    for (unsigned way = 0; way < kSlabHintWays; ++way) {
        if (set.slabs[way] == nullptr) {
            continue;
        }
        const Slab& slab = *set.slabs[way];
        const uint8_t state = __atomic_load_n(&slab.state, __ATOMIC_ACQUIRE);
        const bool names_its_slab = (state == kSlabInUse || state == kSlabRetired) &&
                                    slab.class_index < kSizeClassCount &&
                                    set.bytes[way] == slab.layout().slab_bytes;
        if (!names_its_slab && arenas.slabs_given() == slabs_given) {
            return false;
        }
    }
    return true;
}

bool CpuCaches::counts_hold() const {
    LockGuard guard(m_readers);
    for (unsigned cpu = 0; cpu < platform::kMaxCpus; ++cpu) {
        const CpuCache* cache = of(cpu);
        if (cache == nullptr) {
            continue;
        }
        for (unsigned index = 0; index < kSizeClassCount; ++index) {
            if (__atomic_load_n(&cache->magazines[index].count, __ATOMIC_RELAXED) >
                cpu_cache_capacity(index)) {
                return false;
            }
        }
    }
    return true;
}

bool CpuCaches::check(unsigned cpu, ClassCache* classes, uintptr_t secret, Arenas& arenas) const {
    if (!counts_hold()) {
        return false;
    }
    // The calling CPU's own cache: no other CPU gives it back meanwhile.
    const CpuCache* cache = cpu < platform::kMaxCpus ? of(cpu) : nullptr;
    if (cache == nullptr) {
        return true;
    }
    const bool hints_hold = arenas.inspect_holding_still([&](auto has_arena) {
        const uint64_t slabs_given = arenas.slabs_given();
        if (cache->slab_hint_mask < kSlabHintSetsAtFirst - 1 ||
            cache->slab_hint_mask >= cache->slab_hints_ready ||
            cache->slab_hints_ready > kSlabHintSets ||
            !is_power_of_two(cache->slab_hint_mask + 1)) {
            return false;
        }
        for (unsigned set = 0; set < cache->slab_hints_ready; ++set) {
            if (!hints_are_sound(cache->slab_hints[set], slabs_given, arenas)) {
                return false;
            }
        }
        const uint64_t arenas_given = arenas.arenas_given(); // still while the arenas are
        for (const ArenaHint& hint : cache->arena_hints) {
            if (hint.bounds.bytes != 0 && hint.arenas_given == arenas_given &&
                !has_arena(hint.bounds)) {
                return false;
            }
        }
        return true;
    });
    if (!hints_hold) {
        return false;
    }
    for (unsigned index = 0; index < kSizeClassCount; ++index) {
        const uint32_t count = cache->magazines[index].count;
        for (uint32_t slot = 0; slot < count; ++slot) {
            const auto* block =
                static_cast<const FreeBlock*>(cache->slots[kSlotLayout.first[index] + slot]);
            const uintptr_t slab_address = slab_named_by_mark(block->mark, block, secret);
            if (reinterpret_cast<uintptr_t>(block) - slab_address >= kMaxSlabBytes) {
                return false;
            }
            // Handed out by its class (a retired slab's blocks are let go with it).
            const SlabLookup what =
                classes[index].classify(reinterpret_cast<const Slab*>(slab_address), block);
            if (what != SlabLookup::Live && what != SlabLookup::AlreadyFree) {
                return false;
            }
            // Cached once: a second free after a write after free erased the first's mark
            // caches a block twice (README: double frees), one magazine of its class holding
            // both. O(capacity^2) per class.
            for (uint32_t later = slot + 1; later < count; ++later) {
                if (cache->slots[kSlotLayout.first[index] + later] == block) {
                    return false;
                }
            }
        }
    }
    return true;
}

} // namespace bedrock::heap
