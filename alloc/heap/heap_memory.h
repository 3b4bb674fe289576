// HeapMemory: the virtual address ranges any heap can hand out blocks from - every region of
// every page frame allocator a heap was created over, and every caller-given heap region - so
// that free() refuses a pointer outside them (a stack, a global, a device window, a hole between
// RAM banks) before it reads the run header such a pointer would have.
//
// Append-only and read without a lock: a range's bounds are written before the count that
// publishes it (release / acquire). Writers take s_lock. Ranges never shrink: a destroyed heap's
// memory stays "maybe heap memory", where the run header check (kRunMagic) takes over.
// A range already covered is not added again. Beyond kMaxRanges a new range widens the last
// one (which may then cover a hole: a loss of precision, never of a valid block).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/spinlock.h"

namespace bedrock::heap {

class HeapMemory {
public:
    static constexpr size_t kMaxRanges = 32;

    // Adds [base, base + bytes). O(kMaxRanges).
    static void add(uintptr_t base, size_t bytes);

    // Whether `address` lies in a range added so far. O(ranges), lock-free: free()'s path.
    [[nodiscard]] static bool contains(const void* address) {
        const auto value = reinterpret_cast<uintptr_t>(address);
        const size_t count = __atomic_load_n(&s_count, __ATOMIC_ACQUIRE);
        for (size_t i = 0; i < count; ++i) {
            if (value - __atomic_load_n(&s_ranges[i].base, __ATOMIC_RELAXED) <
                __atomic_load_n(&s_ranges[i].bytes, __ATOMIC_RELAXED)) {
                return true;
            }
        }
        return false;
    }

private:
    struct Range {
        uintptr_t base;
        uintptr_t bytes;
    };
    static constinit inline Range s_ranges[kMaxRanges] = {};
    static constinit inline size_t s_count = 0;
    static constinit inline SpinLock s_lock;
};

} // namespace bedrock::heap
