// SPDX-License-Identifier: MIT
// ClassCache: slab lists, the slab reserve policy and the CPU caches' batches of one size class
// (see class_cache.h).
#include "heap/class_cache.h"

namespace bedrock::heap {

Slab* ClassCache::leave_empty_slab_locked(Arenas& arenas) {
    Slab* slab = nullptr;
    if (m_empty_on_partial != 0) {
        for (slab = m_partial.front(); slab->used != 0; slab = SlabList::next(*slab)) {
        }
        m_partial.remove(*slab);
        m_empty_on_partial = 0;
    } else if (!m_reserve.empty()) {
        slab = pop_reserve_locked();
    } else {
        return nullptr;
    }
    leave_class_locked(arenas, slab);
    return slab;
}

// A slab whose free list is corrupt leaves the class: off every list, its blocks no longer
// counted, never taken from again nor given back (its memory may be damaged).
void ClassCache::retire_locked(Slab* slab) {
    if (slab->used == 0 && m_empty_on_partial != 0) {
        m_empty_on_partial = 0;
    }
    m_partial.remove(*slab);
    __atomic_store_n(&slab->state, kSlabRetired, __ATOMIC_RELEASE); // heap_check() reads it
    --m_slabs;
    m_blocks_in_use -= slab->used;
}

ClassCache::Batch ClassCache::allocate_after_corrupt_locked(Arenas& arenas, Slab* slab,
                                                            void** blocks, uint32_t count,
                                                            uintptr_t secret, Slab*& corrupt) {
    for (;;) {
        // One slab retired per call, then the next one is tried.
        if (corrupt != nullptr) {
            return Batch{nullptr, 0};
        }
        corrupt = slab;
        retire_locked(slab);
        slab = slab_to_take_from_locked();
        if (slab == nullptr) {
            return carve_locked(arenas);
        }
        const Batch batch = take_locked(arenas, slab, blocks, count, secret);
        if (batch.block != nullptr) {
            return batch;
        }
    }
}

void* ClassCache::allocate(Arenas& arenas, size_t requested, uintptr_t secret, Slab*& corrupt) {
    LockGuard guard(m_lock);
    void* block = allocate_locked(arenas, nullptr, 0, secret, corrupt).block;
    if (block != nullptr) {
        ++m_allocations;
        m_bytes_requested += requested;
    }
    return block;
}

inline SlabLookup ClassCache::free_locked(Slab* slab, void* block, uintptr_t secret) {
    if (slab->state != kSlabInUse || slab->class_index != m_class_index) [[unlikely]] {
        if (slab->state == kSlabRetired && slab->class_index == m_class_index) {
            return SlabLookup::Live; // its blocks are dropped with it (reported when retired)
        }
        // Given back (and maybe reused) since the caller found it: a free racing with the free
        // that emptied the slab.
        return SlabLookup::AlreadyFree;
    }
    const bool was_full = slab->is_full();
    const SlabLookup result = slab_give(slab, block, secret);
    if (result != SlabLookup::Live) {
        return result;
    }
    --m_blocks_in_use;
    if (slab->used == 0) {
        if (!was_full && m_empty_on_partial == 0) {
            m_empty_on_partial = 1; // stays where the next allocation looks first
            return SlabLookup::Live;
        }
        if (!was_full) {
            m_partial.remove(*slab);
        }
        m_reserve.push_front(*slab);
        ++m_reserve_count;
    } else if (was_full) {
        m_partial.push_front(*slab);
    }
    return SlabLookup::Live;
}

SlabLookup ClassCache::free(Slab* slab, void* block, uintptr_t secret) {
    LockGuard guard(m_lock);
    return free_locked(slab, block, secret);
}

void ClassCache::free_batch(void* const* blocks, uint32_t count, uintptr_t secret,
                            const Arenas& arenas, FlushFailures& failures) {
    LockGuard guard(m_lock);
    for (uint32_t i = 0; i < count; ++i) {
        auto* block = static_cast<FreeBlock*>(blocks[i]);
        // The slab from the block's free mark, trusted only if it decodes to an address within
        // a slab's reach below the block; its header is then checked by free_locked().
        const uintptr_t slab_address = slab_named_by_mark(block->mark, block, secret);
        const uintptr_t distance = reinterpret_cast<uintptr_t>(block) - slab_address;
        SlabLookup result = SlabLookup::Corrupt;
        if (distance < kMaxSlabBytes && slab_address % kMinBlockSize == 0) [[likely]] {
            result = free_locked(reinterpret_cast<Slab*>(slab_address), block, secret);
        }
        if (result != SlabLookup::Live) [[unlikely]] {
            if (failures.count++ == 0) {
                failures.first = block;
                failures.kind = result == SlabLookup::Corrupt ? ErrorKind::CorruptMetadata
                                                              : ErrorKind::DoubleFree;
            }
            if (result == SlabLookup::Corrupt) {
                // Overwritten after free: the block was a live block of its slab when this CPU
                // cached it, so the arenas' metadata still names that slab.
                void* slab_block = arenas.taken_block_holding(block, BlockUse::Slab, kMaxSlabReach);
                if (slab_block != nullptr) {
                    static_cast<void>(free_locked(
                        slab_in_block(slab_block, arenas.slab_placement()), block, secret));
                }
            }
        }
    }
}

void ClassCache::give_excess(Arenas& arenas) {
    LockGuard guard(m_lock);
    while (m_reserve_count > kReserveSlabs) {
        give_slab_locked(arenas, pop_reserve_locked());
    }
}

void ClassCache::absorb(uint64_t allocations, uint64_t bytes_requested) {
    LockGuard guard(m_lock);
    m_allocations += allocations;
    m_bytes_requested += bytes_requested;
}

SlabLookup ClassCache::classify(const Slab* slab, const void* block) {
    LockGuard guard(m_lock);
    if (slab->state != kSlabInUse || slab->class_index != m_class_index) {
        return SlabLookup::AlreadyFree;
    }
    return slab_classify(slab, block);
}

void ClassCache::trim(Arenas& arenas) {
    LockGuard guard(m_lock);
    while (Slab* slab = leave_empty_slab_locked(arenas)) {
        arenas.give(block_of_slab(slab), BlockUse::Slab);
    }
}

bool ClassCache::trim_without_waiting(Arenas& arenas) {
    platform::InterruptState previous;
    if (!m_lock.try_lock(previous)) {
        return false;
    }
    const uint64_t slabs = m_slabs;
    static_cast<void>(arenas.give_without_waiting([this, &arenas]() -> void* {
        Slab* slab = leave_empty_slab_locked(arenas);
        return slab != nullptr ? block_of_slab(slab) : nullptr;
    }));
    const bool given = m_slabs != slabs;
    m_lock.unlock(previous);
    return given;
}

SizeClassStatistics ClassCache::statistics() {
    LockGuard guard(m_lock);
    const SlabLayout& layout = kSlabLayouts[m_class_index];
    return SizeClassStatistics{layout.block_size, layout.block_count,   m_slabs,
                               m_blocks_in_use,   m_peak_blocks_in_use, m_allocations,
                               m_bytes_requested};
}

bool ClassCache::check(uintptr_t secret) {
    LockGuard guard(m_lock);
    uint64_t listed = 0;
    uint64_t used = 0;
    uint32_t empty = 0;
    if (!m_partial.is_consistent(m_slabs) || !m_reserve.is_consistent(m_slabs)) {
        return false;
    }
    for (Slab* slab = m_partial.front(); slab != nullptr; slab = SlabList::next(*slab)) {
        empty += slab->used == 0 ? 1 : 0;
        if (!slab_check(slab, secret) || slab->class_index != m_class_index || slab->is_full()) {
            return false;
        }
        ++listed;
        used += slab->used;
    }
    uint32_t reserve = 0;
    for (Slab* slab = m_reserve.front(); slab != nullptr; slab = SlabList::next(*slab)) {
        if (!slab_check(slab, secret) || slab->class_index != m_class_index || slab->used != 0) {
            return false;
        }
        ++reserve;
    }
    // Full slabs are on no list: their count and blocks make up the difference exactly.
    const uint64_t full = m_slabs - listed - reserve;
    return empty == m_empty_on_partial && reserve == m_reserve_count &&
           listed + reserve <= m_slabs &&
           m_blocks_in_use == used + full * kSlabLayouts[m_class_index].block_count;
}

} // namespace bedrock::heap
