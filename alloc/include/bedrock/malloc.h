// SPDX-License-Identifier: MIT
/* The C API of Bedrock's default heap (bedrock/heap.h: set_default_heap()). Every function is
 * prefixed bedrock_; with the build option BEDROCK_STANDARD_NAMES the same functions are also
 * exported as malloc, free, calloc, realloc, memalign, aligned_alloc, posix_memalign, valloc,
 * pvalloc and malloc_usable_size. None of them throws or sets errno (there is none here).
 * Before a default heap is set, every allocation returns NULL (posix_memalign: ENOMEM, or
 * EINVAL for an alignment it refuses anyway).
 *
 * Edge behaviour:
 *   malloc(0)            a unique 16-byte block that must be freed like any other
 *   free(NULL)           does nothing; a pointer not from this heap, a double free or a block
 *                        of another heap is reported (platform::report_error) and ignored
 *   calloc(n, size)      zeroed; NULL if n * size overflows
 *   realloc(NULL, n)     malloc(n)
 *   realloc(p, n)        in place if n fits p's block and uses at least half of it, or if p
 *                        can grow where it is (into a free medium block or free pages right
 *                        after it), else moves (contents kept up to min(old, new)); on failure
 *                        NULL, p intact
 *   realloc(p, 0)        returns a minimum block (p itself when p is one, else a new one with
 *                        p freed); NULL only on failure, with p intact
 *   memalign(a, n)       a must be a power of two (else NULL); a < 16 means 16; any a the page
 *                        source can align a run to (the page frame allocator: up to 1 GiB, and
 *                        beyond where the direct map keeps it, as an identity map does)
 *   aligned_alloc(a, n)  as memalign; n need not be a multiple of a
 *   posix_memalign       EINVAL if a is not a power of two multiple of sizeof(void*), ENOMEM
 *                        when out of memory (*out untouched on error); size 0 gives a block
 *   valloc(n)            memalign(page size, n), the platform's page size: 4 KiB in a kernel,
 *                        the host's (sysconf(_SC_PAGESIZE), 4 to 64 KiB) under Bedrock::hosted
 *   pvalloc(n)           memalign(page size, n rounded up to whole pages; 0 -> one page)
 *   malloc_usable_size   bytes usable in the block (>= requested); 0 for NULL
 * Every block is 16-byte aligned. Time: O(1) for every size - blocks up to 2 KiB from the
 * calling CPU's cache or a size class, medium blocks from a two-level segregated fit - plus at
 * most one page frame allocator call (bedrock/heap.h states each call's worst case). */
#ifndef BEDROCK_MALLOC_H
#define BEDROCK_MALLOC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* posix_memalign()'s results: the values Linux and newlib give EINVAL and ENOMEM. */
enum { BEDROCK_EINVAL = 22, BEDROCK_ENOMEM = 12 };

void* bedrock_malloc(size_t size);
void bedrock_free(void* block);
void* bedrock_calloc(size_t count, size_t size);
void* bedrock_realloc(void* block, size_t size);
void* bedrock_memalign(size_t alignment, size_t size);
void* bedrock_aligned_alloc(size_t alignment, size_t size);
int bedrock_posix_memalign(void** out, size_t alignment, size_t size);
void* bedrock_valloc(size_t size);
void* bedrock_pvalloc(size_t size);
size_t bedrock_malloc_usable_size(void* block);

#ifdef __cplusplus
}
#endif

#endif /* BEDROCK_MALLOC_H */
