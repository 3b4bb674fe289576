// SPDX-License-Identifier: MIT
// The heap's malloc and free fast paths, inline in every public entry point (heap_entry.h
// includes this file): a small block popped from or pushed onto the calling CPU's magazine
// (cpu_cache.h), with interrupts masked on that CPU and no lock, no atomic read-modify-write and
// no call. Everything else goes to the slow halves, out of line in heap.cpp (their reports in
// pointer_reports.cpp): a magazine empty or full, a pointer the CPU's slab hints do not place,
// medium and large blocks, checked mode, and every report. Inline in the entry points so that a
// malloc or free makes one call at most (the entry point's), and malloc's constant alignment folds
// away. Owns no state and takes no lock; the slow halves take the locks in heap_state.h's order.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/heap_checks.h"
#include "bedrock/platform.h"
#include "heap/cpu_cache.h"
#include "heap/heap_state.h"
#include "heap/size_class.h"
#include "heap/slab.h"
#include "report/call_trace.h"

namespace bedrock::heap {

// The slow halves (heap.cpp). Those given `previous` run with the calling CPU's interrupts
// masked by the fast path, and restore `previous` (the state it found) before any report.
// malloc() of class `index` when the calling CPU's magazine is empty (`cache`: the CPU's cache)
// or it has no cache yet (`cache` null).
[[gnu::noinline]] void* allocate_small_slow(Heap& heap, unsigned index, size_t size,
                                            CpuCache* cache, platform::InterruptState previous,
                                            Caller caller);
// malloc() at level off of a block that is not small: a medium block or a large run.
[[gnu::noinline]] void* allocate_not_small(Heap& heap, size_t size, size_t alignment,
                                           Caller caller);
// malloc() with checking on.
[[gnu::noinline]] void* allocate_checked(Heap& heap, size_t size, size_t alignment, Caller caller);
// free() of a handed-out block of `slab` when the calling CPU's magazine is full (`cache`: the
// CPU's cache) or it has no cache yet (`cache` null).
[[gnu::noinline]] void free_small_slow(Heap& heap, Slab* slab, void* block, CpuCache* cache,
                                       platform::InterruptState previous, Caller caller);
// free() of a pointer the calling CPU's slab hints do not place (`cache`: the CPU's cache, or
// null).
[[gnu::noinline]] void free_unhinted(Heap& heap, void* block, CpuCache* cache,
                                     platform::InterruptState previous, Caller caller);
// The report for a pointer that is no live block this call can take (pointer_reports.cpp).
[[gnu::cold, gnu::noinline]] void report_bad_pointer(Heap& heap, const void* block, Caller caller);

// Alignments 0, 1, 2, 4, 8 and 16 - what every block has anyway - as a set: bit a is set for
// each such alignment a. A test of the set rather than `(a & (a - 1)) == 0`, which clang turns
// into a software popcount (some 20 instructions) on this, the malloc fast path.
constexpr uint32_t small_alignment_set() {
    uint32_t set = 1; // alignment 0: none asked for
    for (size_t alignment = 1; alignment <= kMinBlockSize; alignment *= 2) {
        set |= uint32_t{1} << alignment;
    }
    return set;
}

static_assert(kMinBlockSize < 32, "the set is one 32-bit word");

[[gnu::always_inline]] inline bool is_small_alignment(size_t alignment) {
    return alignment <= kMinBlockSize && ((small_alignment_set() >> alignment) & 1) != 0;
}

// Pops the top block of a magazine that holds one. Interrupts are off.
[[gnu::always_inline]] inline void* pop(CpuCache& cache, unsigned index, size_t size) {
    Magazine& magazine = cache.magazines[index];
    const uint32_t count = magazine.count;
    auto* block = static_cast<FreeBlock*>(cache.slots[kSlotLayout.first[index] + count - 1]);
    publish(magazine.count, count - 1);
    publish(magazine.allocations, magazine.allocations + 1);
    publish(magazine.bytes_requested, magazine.bytes_requested + size);
    block->mark = 0; // a live block
    return block;
}

// malloc() of a small block: the calling CPU's magazine, else the slow path.
[[gnu::always_inline]] inline void* allocate_small(Heap& heap, unsigned index, size_t size,
                                                   Caller caller) {
    const platform::InterruptState previous = platform::disable_interrupts();
    const unsigned cpu = platform::current_cpu();
    CpuCache* cache = nullptr;
    if (cpu < platform::kMaxCpus) [[likely]] {
        cache = heap.cpus.mine(cpu);
        if (cache != nullptr) [[likely]] {
            if (cache->magazines[index].count != 0) [[likely]] {
                void* block = pop(*cache, index, size);
                platform::restore_interrupts(previous);
                return block;
            }
        }
    }
    return allocate_small_slow(heap, index, size, cache, previous, caller);
}

// free() of a block handed out by `slab` (class `index`), with interrupts masked on the calling
// CPU (`cache`: its cache, or null): onto the CPU's magazine unless it carries its free mark
// already (a double free, reported at the call).
[[gnu::always_inline]] inline void free_handed_out(Heap& heap, Slab* slab, unsigned index,
                                                   void* block, CpuCache* cache,
                                                   platform::InterruptState previous,
                                                   Caller caller) {
    const uintptr_t mark = free_mark(slab, block, heap.secret);
    auto* freed = static_cast<FreeBlock*>(block);
    if (freed->mark == mark) [[unlikely]] {
        platform::restore_interrupts(previous);
        report_bad_pointer(heap, block, caller);
        return;
    }
    if (cache != nullptr) [[likely]] {
        Magazine& magazine = cache->magazines[index];
        const uint32_t count = magazine.count;
        if (count != kSlotLayout.capacity[index]) [[likely]] {
            cache->slots[kSlotLayout.first[index] + count] = block;
            freed->mark = mark;
            publish(magazine.count, count + 1);
            platform::restore_interrupts(previous);
            return;
        }
    }
    free_small_slow(heap, slab, block, cache, previous, caller);
}

[[gnu::always_inline]] inline void* allocate_unchecked(Heap& heap, size_t size, size_t alignment,
                                                       Caller caller) {
    if (size <= kMaxSmallSize && is_small_alignment(alignment)) [[likely]] {
        return allocate_small(heap, class_of(size), size, caller);
    }
    return allocate_not_small(heap, size, alignment, caller);
}

// malloc() (alignment: a power of two, or 0 for none; the caller checked nothing else).
[[gnu::always_inline]] inline void* allocate(Heap& heap, size_t size, size_t alignment,
                                             Caller caller) {
    if constexpr (kHeapChecksCompiled) {
        if (heap.errors.level() != CheckLevel::Off) [[unlikely]] {
            return allocate_checked(heap, size, alignment, caller);
        }
    }
    return allocate_unchecked(heap, size, alignment, caller);
}

// free() (null: nothing).
[[gnu::always_inline]] inline void free(Heap& heap, void* block, Caller caller) {
    if (block == nullptr) {
        return;
    }
    if (reinterpret_cast<uintptr_t>(block) % kMinBlockSize != 0) [[unlikely]] {
        report_bad_pointer(heap, block, caller);
        return;
    }
    // A small block in a slab this CPU freed into lately: found from its slab hint, without the
    // page map (cpu_cache.h).
    const platform::InterruptState previous = platform::disable_interrupts();
    const unsigned cpu = platform::current_cpu();
    CpuCache* cache = cpu < platform::kMaxCpus ? heap.cpus.mine(cpu) : nullptr;
    const uint64_t slabs_given = heap.arenas.slabs_given();
    Slab* slab = cache != nullptr
                     ? cache->hinted_slab(reinterpret_cast<uintptr_t>(block), slabs_given)
                     : nullptr;
    if (slab != nullptr && slab->class_index < kSizeClassCount && slab_handed_out(slab, block))
        [[likely]] {
        free_handed_out(heap, slab, slab->class_index, block, cache, previous, caller);
        return;
    }
    free_unhinted(heap, block, cache, previous, caller);
}

} // namespace bedrock::heap
