// HeapMemory::add (see heap_memory.h).
#include "heap/heap_memory.h"

namespace bedrock::heap {

void HeapMemory::add(uintptr_t base, size_t bytes) {
    if (bytes == 0) {
        return;
    }
    LockGuard guard(s_lock);
    const size_t count = s_count;
    for (size_t i = 0; i < count; ++i) {
        if (base - s_ranges[i].base < s_ranges[i].bytes &&
            bytes <= s_ranges[i].bytes - (base - s_ranges[i].base)) {
            return; // already covered (a second heap over the same page frame allocator)
        }
    }
    if (count < kMaxRanges) {
        s_ranges[count] = Range{base, bytes};
        __atomic_store_n(&s_count, count + 1, __ATOMIC_RELEASE);
        return;
    }
    // Full: the last range grows to cover the new one too. Its end is moved first, so a reader
    // never sees less than before.
    Range& last = s_ranges[kMaxRanges - 1];
    const uintptr_t low = base < last.base ? base : last.base;
    const uintptr_t end = last.base + last.bytes;
    const uintptr_t high = base + bytes > end ? base + bytes : end;
    __atomic_store_n(&last.bytes, high - last.base, __ATOMIC_RELEASE);
    __atomic_store_n(&last.base, low, __ATOMIC_RELEASE);
    __atomic_store_n(&last.bytes, high - low, __ATOMIC_RELEASE);
}

} // namespace bedrock::heap
