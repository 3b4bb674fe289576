// SPDX-License-Identifier: MIT
// libbedrock-malloc.so's C entry points: the standard names a program may call, exported over
// Bedrock's heap (preload_heap.h) with glibc's behaviour at the edges, which differs from the
// kernel API's (bedrock/malloc.h) where a hosted program expects glibc's:
//   errno                ENOMEM on every failed allocation, EINVAL for a refused alignment
//   calloc, reallocarray count * size overflowing: NULL, ENOMEM
//   calloc               from 1 MiB, the block's whole host pages are zeroed by
//                        madvise(MADV_DONTNEED) (committed again only when touched, as glibc's
//                        mmap'd chunks are)
//   realloc(p, 0)        frees p, returns NULL (realloc(NULL, 0) is malloc(0))
//   memalign(a, n)       a not a power of two is rounded up to one; beyond SIZE_MAX / 2 + 1: EINVAL
//   aligned_alloc(a, n)  a zero or not a power of two: NULL, EINVAL
//   posix_memalign       returns EINVAL (a not a power-of-two multiple of sizeof(void*)) or
//                        ENOMEM, *out untouched, errno unchanged
//   valloc, pvalloc      aligned to the host's page, sysconf(_SC_PAGESIZE) (4 KiB on x86-64, 16 or
//                        64 KiB on many AArch64 and POWER kernels); pvalloc rounds n up to whole
//                        host pages (overflow: ENOMEM)
//   malloc_usable_size   0 for NULL
//   malloc_trim          heap_trim(): the heap's empty slabs and spare arena go back to its page
//                        frame allocator, the free pages inside its arenas to the kernel; 1
//   mallinfo2, mallinfo  the heap's statistics in glibc's fields: arena = pages held (the heap's
//                        state included) less the large runs', hblks/hblkhd = the large runs
//                        (glibc's mmap'd chunks), uordblks = the other live blocks' usable bytes
//                        (quarantined blocks included), fordblks = arena - uordblks; the rest 0.
//                        mallinfo's int fields saturate at INT_MAX (glibc's wrap)
//   malloc_stats         heap_report() on stderr, each line in one write(2)
//   malloc_info(0, fp)   the same figures as one XML element per field, 0; options != 0: EINVAL
//   __libc_malloc, __libc_free, __libc_calloc, __libc_realloc, __libc_memalign, __libc_valloc,
//   __libc_pvalloc   the same functions under glibc's internal names
// cfree is not provided: glibc dropped it (2.26), so no current program calls it.
// Misuse (a bad free, ...) is reported on stderr and ignored, or aborts with BEDROCK_CHECK=abort.
// No state of its own; every entry point is the heap's time bound plus O(1), calloc plus its
// zeroing.
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "bedrock/heap.h"
#include "bedrock/platform.h"
#include "heap/heap_entry.h"
#include "preload/preload_heap.h"

using bedrock::Heap;
using bedrock::heap::Caller;
using bedrock::preload::heap;
using bedrock::preload::write_line_to_stderr;

#define BEDROCK_EXPORT __attribute__((visibility("default")))

namespace {

// The host's page size (Bedrock::hosted reads it once).
size_t host_page() {
    return bedrock::platform::page_granularity();
}

// The heap's block, or NULL with errno ENOMEM.
// Each exported function passes its own caller (BEDROCK_HEAP_CALLER()) to the helpers, inline in
// it, so that reports and checked mode's traces name the program's call, not this library.
[[gnu::always_inline]] inline void* allocate(size_t size, size_t alignment, Caller caller) {
    Heap* started = heap();
    void* block =
        started != nullptr ? bedrock::heap::allocate(*started, size, alignment, caller) : nullptr;
    if (block == nullptr) {
        errno = ENOMEM;
    }
    return block;
}

// calloc's blocks of this many bytes or more are zeroed by handing their whole pages back to the
// kernel: a private anonymous page then reads as zeroes and takes memory again only when it is
// touched, so a large table that is mostly never written costs next to nothing. Below it, memset
// is cheaper than the system call and the faults that follow.
constexpr size_t kZeroByPagesBytes = size_t{1} << 20;

// Zeroes the `bytes` bytes at `block` (a block of the heap, whose memory is the hosted
// reservation's private anonymous mapping), touching none of the memory around them: only the
// whole host pages inside the block are dropped (madvise would round a partial one up).
void zero(void* block, size_t bytes) {
    const size_t page = host_page();
    const auto start = reinterpret_cast<uintptr_t>(block);
    const uintptr_t first_page = (start + page - 1) & ~(page - 1);
    const uintptr_t end_page = (start + bytes) & ~(page - 1);
    if (bytes >= kZeroByPagesBytes &&
        madvise(reinterpret_cast<void*>(first_page), end_page - first_page, MADV_DONTNEED) == 0) {
        memset(block, 0, first_page - start);
        memset(reinterpret_cast<void*>(end_page), 0, start + bytes - end_page);
        return;
    }
    memset(block, 0, bytes);
}

bool is_power_of_two(size_t value) {
    return value != 0 && (value & (value - 1)) == 0;
}

[[gnu::always_inline]] inline void* reallocate(void* block, size_t size, Caller caller) {
    if (block == nullptr) {
        return allocate(size, bedrock::kHeapMinAlignment, caller);
    }
    Heap* started = heap();
    if (started == nullptr) {
        errno = ENOMEM;
        return nullptr;
    }
    if (size == 0) {
        bedrock::heap::free(*started, block, caller);
        return nullptr;
    }
    void* moved = bedrock::heap::reallocate(*started, block, size, caller);
    if (moved == nullptr) {
        errno = ENOMEM;
    }
    return moved;
}

// memalign()'s rules (the file comment) for every aligned allocator.
[[gnu::always_inline]] inline void* allocate_aligned(size_t alignment, size_t size, Caller caller) {
    if (alignment > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return nullptr;
    }
    if (!is_power_of_two(alignment)) {
        alignment = alignment <= 1 ? 1 : size_t{1} << (64 - __builtin_clzl(alignment));
    }
    return allocate(size,
                    alignment < bedrock::kHeapMinAlignment ? bedrock::kHeapMinAlignment : alignment,
                    caller);
}

// The heap's statistics in mallinfo2's fields (the file comment says which).
struct mallinfo2 heap_mallinfo() {
    struct mallinfo2 info {};
    Heap* started = heap();
    if (started == nullptr) {
        return info;
    }
    const bedrock::HeapStatistics statistics = bedrock::heap_statistics(*started);
    const uint64_t large_bytes = statistics.large_pages * bedrock::kPageSize;
    const uint64_t held_bytes = statistics.pages_held * bedrock::kPageSize;
    const uint64_t in_use = statistics.bytes_in_use + statistics.quarantined_bytes;
    info.arena = held_bytes - large_bytes;
    info.hblks = statistics.large_blocks;
    info.hblkhd = large_bytes;
    info.uordblks = in_use > large_bytes ? in_use - large_bytes : 0;
    info.fordblks = info.arena > info.uordblks ? info.arena - info.uordblks : 0;
    return info;
}

int saturated(size_t value) {
    return value > INT_MAX ? INT_MAX : static_cast<int>(value);
}

} // namespace

extern "C" {

BEDROCK_EXPORT void* malloc(size_t size) {
    return allocate(size, bedrock::kHeapMinAlignment, BEDROCK_HEAP_CALLER());
}

BEDROCK_EXPORT void free(void* block) {
    if (block == nullptr) {
        return;
    }
    if (Heap* started = heap(); started != nullptr) {
        bedrock::heap::free(*started, block, BEDROCK_HEAP_CALLER());
    }
}

BEDROCK_EXPORT void* calloc(size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return nullptr;
    }
    void* block = allocate(total, bedrock::kHeapMinAlignment, BEDROCK_HEAP_CALLER());
    if (block != nullptr) {
        zero(block, total);
    }
    return block;
}

BEDROCK_EXPORT void* realloc(void* block, size_t size) {
    return reallocate(block, size, BEDROCK_HEAP_CALLER());
}

BEDROCK_EXPORT void* reallocarray(void* block, size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return nullptr;
    }
    return reallocate(block, total, BEDROCK_HEAP_CALLER());
}

BEDROCK_EXPORT void* memalign(size_t alignment, size_t size) {
    return allocate_aligned(alignment, size, BEDROCK_HEAP_CALLER());
}

BEDROCK_EXPORT void* aligned_alloc(size_t alignment, size_t size) {
    if (!is_power_of_two(alignment)) {
        errno = EINVAL;
        return nullptr;
    }
    return allocate_aligned(alignment, size, BEDROCK_HEAP_CALLER());
}

BEDROCK_EXPORT int posix_memalign(void** out, size_t alignment, size_t size) {
    if (!is_power_of_two(alignment) || alignment % sizeof(void*) != 0) {
        return EINVAL;
    }
    const int saved = errno;
    void* block = allocate_aligned(alignment, size, BEDROCK_HEAP_CALLER());
    errno = saved;
    if (block == nullptr) {
        return ENOMEM;
    }
    *out = block;
    return 0;
}

BEDROCK_EXPORT void* valloc(size_t size) {
    return allocate_aligned(host_page(), size, BEDROCK_HEAP_CALLER());
}

BEDROCK_EXPORT void* pvalloc(size_t size) {
    const size_t page = host_page();
    if (size > SIZE_MAX - (page - 1)) {
        errno = ENOMEM;
        return nullptr;
    }
    const size_t rounded = (size + page - 1) & ~(page - 1);
    return allocate_aligned(page, rounded == 0 ? page : rounded, BEDROCK_HEAP_CALLER());
}

BEDROCK_EXPORT size_t malloc_usable_size(void* block) {
    if (block == nullptr) {
        return 0;
    }
    Heap* started = heap();
    return started != nullptr ? bedrock::heap::usable_size(*started, block, BEDROCK_HEAP_CALLER())
                              : 0;
}

BEDROCK_EXPORT int malloc_trim(size_t) {
    if (Heap* started = heap(); started != nullptr) {
        bedrock::heap_trim(*started);
    }
    return 1;
}

BEDROCK_EXPORT struct mallinfo2 mallinfo2() {
    return heap_mallinfo();
}

BEDROCK_EXPORT struct mallinfo mallinfo() {
    const struct mallinfo2 wide = heap_mallinfo();
    struct mallinfo info {};
    info.arena = saturated(wide.arena);
    info.hblks = saturated(wide.hblks);
    info.hblkhd = saturated(wide.hblkhd);
    info.uordblks = saturated(wide.uordblks);
    info.fordblks = saturated(wide.fordblks);
    return info;
}

BEDROCK_EXPORT void malloc_stats() {
    if (Heap* started = heap(); started != nullptr) {
        bedrock::heap_report(*started, write_line_to_stderr, nullptr);
    }
}

BEDROCK_EXPORT int malloc_info(int options, FILE* stream) {
    if (options != 0) {
        return EINVAL;
    }
    const struct mallinfo2 info = heap_mallinfo();
    fprintf(stream,
            "<malloc version=\"bedrock-1\">\n<system type=\"current\" size=\"%zu\"/>\n"
            "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n"
            "<total type=\"rest\" size=\"%zu\"/>\n<free size=\"%zu\"/>\n</malloc>\n",
            info.arena + info.hblkhd, info.hblks, info.hblkhd, info.uordblks, info.fordblks);
    return 0;
}

// glibc's internal names for the same calls (which a few programs and libraries call directly,
// and which jemalloc, tcmalloc and mimalloc export as well): the same functions, so the blocks of
// both kinds of call are one heap's.
BEDROCK_EXPORT void* __libc_malloc(size_t size) __attribute__((alias("malloc")));
BEDROCK_EXPORT void __libc_free(void* block) __attribute__((alias("free")));
BEDROCK_EXPORT void* __libc_calloc(size_t count, size_t size) __attribute__((alias("calloc")));
BEDROCK_EXPORT void* __libc_realloc(void* block, size_t size) __attribute__((alias("realloc")));
BEDROCK_EXPORT void* __libc_memalign(size_t alignment, size_t size)
    __attribute__((alias("memalign")));
BEDROCK_EXPORT void* __libc_valloc(size_t size) __attribute__((alias("valloc")));
BEDROCK_EXPORT void* __libc_pvalloc(size_t size) __attribute__((alias("pvalloc")));

} // extern "C"
