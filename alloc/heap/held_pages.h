// SPDX-License-Identifier: MIT
// HeldPages: the count of pages a heap holds from its page frame allocator (its state, its arenas
// and its large runs) and the peak of that count, updated without a lock by the parts that take
// and give pages. Invariant: pages == pages taken - pages given;  peak == max over time.
#pragma once

#include <stdint.h>

namespace bedrock::heap {

class HeldPages {
public:
    void add(uint64_t pages) {
        const uint64_t held = __atomic_add_fetch(&m_pages, pages, __ATOMIC_RELAXED);
        uint64_t peak = __atomic_load_n(&m_peak, __ATOMIC_RELAXED);
        while (held > peak && !__atomic_compare_exchange_n(&m_peak, &peak, held, true,
                                                           __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        }
    }
    void remove(uint64_t pages) { __atomic_sub_fetch(&m_pages, pages, __ATOMIC_RELAXED); }
    [[nodiscard]] uint64_t pages() const { return __atomic_load_n(&m_pages, __ATOMIC_RELAXED); }
    [[nodiscard]] uint64_t peak() const { return __atomic_load_n(&m_peak, __ATOMIC_RELAXED); }

private:
    uint64_t m_pages = 0;
    uint64_t m_peak = 0;
};

} // namespace bedrock::heap
