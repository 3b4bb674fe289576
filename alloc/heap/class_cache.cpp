// ClassCache: slab lists and the slab reserve policy of one size class (see class_cache.h).
#include "heap/class_cache.h"

namespace bedrock::heap {

void ClassCache::give_slab_locked(Arenas& arenas, Slab* slab) {
    BEDROCK_DEBUG_ASSERT(slab->used == 0 && slab->state == kSlabInUse);
    slab->state = 0;
    --m_slabs;
    arenas.give(slab);
}

void* ClassCache::allocate(Arenas& arenas, size_t requested) {
    LockGuard guard(m_lock);
    Slab* slab = m_partial.front();
    if (slab == nullptr) {
        if (!m_reserve.empty()) {
            slab = m_reserve.front();
            m_reserve.remove(*slab);
            --m_reserve_count;
        } else {
            void* base = arenas.take(kSlabLayouts[m_class_index].slab_bytes, kMinBlockSize,
                                     BlockUse::Slab, 0);
            if (base == nullptr) {
                return nullptr;
            }
            slab = slab_init(base, m_class_index);
            ++m_slabs;
        }
        m_partial.push_front(*slab);
    }
    if (slab->used == 0) {
        m_empty_on_partial = 0; // the empty slab on the partial list, if it was this one
    }
    BEDROCK_DEBUG_ASSERT(slab->state == kSlabInUse && slab->class_index == m_class_index &&
                         !slab->is_full());
    void* block = slab_take(slab);
    if (slab->is_full()) {
        m_partial.remove(*slab);
    }
    ++m_allocations;
    m_bytes_requested += requested;
    if (++m_blocks_in_use > m_peak_blocks_in_use) {
        m_peak_blocks_in_use = m_blocks_in_use;
    }
    return block;
}

SlabLookup ClassCache::free(Arenas& arenas, Slab* slab, void* block) {
    LockGuard guard(m_lock);
    if (slab->state != kSlabInUse || slab->class_index != m_class_index) [[unlikely]] {
        // Given back (and maybe reused) since the caller found it: a free racing with the free
        // that emptied the slab.
        return SlabLookup::AlreadyFree;
    }
    const bool was_full = slab->is_full();
    const SlabLookup result = slab_give(slab, block);
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
        if (m_reserve_count < kReserveSlabs) {
            m_reserve.push_front(*slab);
            ++m_reserve_count;
        } else {
            give_slab_locked(arenas, slab);
        }
    } else if (was_full) {
        m_partial.push_front(*slab);
    }
    return SlabLookup::Live;
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
    for (Slab* slab = m_partial.front(); slab != nullptr;) {
        Slab* next = SlabList::next(*slab);
        if (slab->used == 0) {
            m_partial.remove(*slab);
            give_slab_locked(arenas, slab);
        }
        slab = next;
    }
    m_empty_on_partial = 0;
    while (Slab* slab = m_reserve.front()) {
        m_reserve.remove(*slab);
        give_slab_locked(arenas, slab);
    }
    m_reserve_count = 0;
}

SizeClassStatistics ClassCache::statistics() {
    LockGuard guard(m_lock);
    const SlabLayout& layout = kSlabLayouts[m_class_index];
    return SizeClassStatistics{layout.block_size, layout.block_count,   m_slabs,
                               m_blocks_in_use,   m_peak_blocks_in_use, m_allocations,
                               m_bytes_requested};
}

bool ClassCache::check() {
    LockGuard guard(m_lock);
    uint64_t listed = 0;
    uint64_t used = 0;
    uint32_t empty = 0;
    if (!m_partial.is_consistent(m_slabs) || !m_reserve.is_consistent(kReserveSlabs)) {
        return false;
    }
    for (Slab* slab = m_partial.front(); slab != nullptr; slab = SlabList::next(*slab)) {
        empty += slab->used == 0 ? 1 : 0;
        if (!slab_check(slab) || slab->class_index != m_class_index || slab->is_full()) {
            return false;
        }
        ++listed;
        used += slab->used;
    }
    uint32_t reserve = 0;
    for (Slab* slab = m_reserve.front(); slab != nullptr; slab = SlabList::next(*slab)) {
        if (!slab_check(slab) || slab->class_index != m_class_index || slab->used != 0) {
            return false;
        }
        ++reserve;
    }
    // Full slabs are on no list: their count and blocks make up the difference exactly.
    const uint64_t full = m_slabs - listed - reserve;
    return empty == m_empty_on_partial && reserve == m_reserve_count && reserve <= kReserveSlabs &&
           listed + reserve <= m_slabs &&
           m_blocks_in_use == used + full * kSlabLayouts[m_class_index].block_count;
}

} // namespace bedrock::heap
