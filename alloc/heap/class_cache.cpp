// ClassCache: slab lists and the slab reserve policy of one size class (see class_cache.h).
#include "heap/class_cache.h"

namespace bedrock::heap {

void ClassCache::unlink_partial(Slab* slab) {
    if (slab->prev != nullptr) {
        slab->prev->next = slab->next;
    } else {
        m_partial = slab->next;
    }
    if (slab->next != nullptr) {
        slab->next->prev = slab->prev;
    }
    slab->next = nullptr;
    slab->prev = nullptr;
}

void ClassCache::push_partial(Slab* slab) {
    slab->prev = nullptr;
    slab->next = m_partial;
    if (m_partial != nullptr) {
        m_partial->prev = slab;
    }
    m_partial = slab;
}

void ClassCache::release_locked(PageSource& source, Slab* slab) {
    const PageRun run{slab, slab->run.source_address};
    slab->run.magic = 0;
    --m_slabs;
    source.give(run, kSlabBytes / kPageSize);
}

void* ClassCache::allocate(PageSource& source, Heap* owner, size_t requested) {
    LockGuard guard(m_lock);
    Slab* slab = m_partial;
    if (slab == nullptr) {
        if (m_reserve != nullptr) {
            slab = m_reserve;
            m_reserve = slab->next;
            --m_reserve_count;
        } else {
            const PageRun run = source.take(kSlabBytes / kPageSize, kSlabBytes);
            if (run.base == nullptr) {
                return nullptr;
            }
            slab = slab_init(run.base, run.source_address, owner, m_class_index, m_kind);
            ++m_slabs;
        }
        push_partial(slab);
    }
    void* block = slab_take(slab);
    if (slab->is_full()) {
        unlink_partial(slab);
    }
    ++m_allocations;
    m_bytes_requested += requested;
    if (++m_blocks_in_use > m_peak_blocks_in_use) {
        m_peak_blocks_in_use = m_blocks_in_use;
    }
    return block;
}

SlabFree ClassCache::free(PageSource& source, Slab* slab, void* block) {
    LockGuard guard(m_lock);
    const bool was_full = slab->is_full();
    const SlabFree result = slab_give(slab, block);
    if (result != SlabFree::Freed) {
        return result;
    }
    --m_blocks_in_use;
    if (slab->used == 0) {
        if (!was_full) {
            unlink_partial(slab);
        }
        if (m_reserve_count < kReserveSlabs) {
            slab->next = m_reserve;
            m_reserve = slab;
            ++m_reserve_count;
        } else {
            release_locked(source, slab);
        }
    } else if (was_full) {
        push_partial(slab);
    }
    return SlabFree::Freed;
}

void ClassCache::trim(PageSource& source) {
    LockGuard guard(m_lock);
    while (m_reserve != nullptr) {
        Slab* slab = m_reserve;
        m_reserve = slab->next;
        release_locked(source, slab);
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
    for (Slab* slab = m_partial; slab != nullptr; slab = slab->next) {
        if (!slab_check(slab) || slab->run.class_index != m_class_index ||
            slab->run.kind != m_kind || slab->used == 0 || slab->is_full() ||
            (slab->next != nullptr && slab->next->prev != slab)) {
            return false;
        }
        ++listed;
        used += slab->used;
    }
    uint32_t reserve = 0;
    for (Slab* slab = m_reserve; slab != nullptr; slab = slab->next) {
        if (!slab_check(slab) || slab->used != 0) {
            return false;
        }
        ++reserve;
    }
    // Full slabs are on no list: their count and blocks make up the difference exactly.
    const uint64_t full = m_slabs - listed - reserve;
    return reserve == m_reserve_count && reserve <= kReserveSlabs && listed + reserve <= m_slabs &&
           m_blocks_in_use == used + full * kSlabLayouts[m_class_index].block_count;
}

} // namespace bedrock::heap
