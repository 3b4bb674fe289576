/* SPDX-License-Identifier: MIT */
/* Bedrock's C interface: everything a C (or C++) program calls to use Bedrock, in one header
 * that compiles as C11 and as C++. Each function is a thin wrapper over the C++ API named in
 * its comment (bedrock/page_frame_allocator.h, heap.h, heap_checks.h, error_report.h), which
 * states the full contract; the C API of the default heap is bedrock/malloc.h, included here.
 *
 * A C program also implements the platform hooks declared at the end (bedrock_platform_*) and
 * links Bedrock::c_platform (CMake) or `-lbedrock -lbedrock_c_platform` (pkg-config:
 * bedrock-c): its adapter implements Bedrock's C++ hooks (bedrock/platform.h) by calling them.
 * A C++ program may implement bedrock/platform.h directly instead and link Bedrock::alloc.
 *
 * Bring-up, in order: the page frame allocator over the usable RAM ranges (or skip it and use a
 * region heap over a buffer), a heap over it, bedrock_set_default_heap(), then bedrock_malloc.
 *
 * Constants are enumerators or macros (C has no typed constants); no function here throws, and
 * none allocates beyond what it says. Misuse is reported through
 * bedrock_platform_report_error (or a heap's error hook) and changes nothing. A null heap or
 * page frame allocator handle is reported BEDROCK_ERROR_NULL_HANDLE (detail: the function) and
 * the call returns its failure value (false, NULL, 0, BEDROCK_NO_PAGE, BEDROCK_CHECK_OFF, zeroed
 * statistics or leak summary) or does nothing; bedrock_set_default_heap(NULL) is no misuse. */
#ifndef BEDROCK_BEDROCK_H
#define BEDROCK_BEDROCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bedrock/config.h"
#include "bedrock/malloc.h"
#include "bedrock/memory_routines.h"
#include "bedrock/version.h"

/* A hook that never returns: C11's _Noreturn, C++'s [[noreturn]]. */
#ifdef __cplusplus
#define BEDROCK_NORETURN [[noreturn]]
#else
#define BEDROCK_NORETURN _Noreturn
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Physical memory ------------------------------------------------------------------- */

typedef uint64_t bedrock_phys_addr;

/* A range of physical memory: size > 0 and base + size - 1 does not overflow. */
typedef struct bedrock_phys_range {
    bedrock_phys_addr base;
    uint64_t size;
} bedrock_phys_range;

#define BEDROCK_PAGE_SIZE 4096u
/* Returned instead of an address by the page allocations when they fail. */
#define BEDROCK_NO_PAGE UINT64_MAX
/* "No address limit" for bedrock_pages_allocate_below / bedrock_pages_allocate_run. */
#define BEDROCK_NO_LIMIT UINT64_MAX
/* Zone limits: ISA DMA (16 MiB) and 32-bit devices (4 GiB). */
#define BEDROCK_ZONE_DMA_LIMIT (UINT64_C(16) << 20)
#define BEDROCK_ZONE_DMA32_LIMIT (UINT64_C(4) << 30)
/* Order k is a block of 2^k pages; the largest, 18, is 1 GiB. */
enum { BEDROCK_MAX_ORDER = 18 };

/* ---- Page frame allocator (bedrock::PageFrameAllocator) ------------------------------------
 * The caller owns the allocator's storage: a static object, or any zeroed memory outside the
 * ranges it manages. Its size is fixed at compile time (Bedrock checks that its allocator fits,
 * with room to spare for later versions). */
enum { BEDROCK_PAGE_FRAME_ALLOCATOR_BYTES = 256 };
typedef struct bedrock_page_frame_allocator {
    union {
        unsigned char bytes[BEDROCK_PAGE_FRAME_ALLOCATOR_BYTES];
        uint64_t align_words[2]; /* 16-byte alignment, the largest the object needs */
        void* align_pointer;
    } opaque;
} bedrock_page_frame_allocator;

/* init(): takes the page-aligned, sorted, non-overlapping `usable` ranges (count of them),
 * carving its metadata from them. false, reporting BEDROCK_ERROR_RANGE_REFUSED (detail: why),
 * if the storage holds an allocator already (a second call), the ranges are malformed, nothing
 * can hold the metadata, or bedrock_platform_phys_to_virt does not keep a range's alignment. */
bool bedrock_pages_init(bedrock_page_frame_allocator* frames, const bedrock_phys_range* usable,
                        size_t count);
/* allocate(order): a naturally aligned block of 2^order pages, or BEDROCK_NO_PAGE. */
bedrock_phys_addr bedrock_pages_allocate(bedrock_page_frame_allocator* frames, unsigned order);
/* allocate_below(order, limit): the same, ending (one past its last byte) at or below `limit`:
 * for a device address mask, pass mask + 1. */
bedrock_phys_addr bedrock_pages_allocate_below(bedrock_page_frame_allocator* frames, unsigned order,
                                               bedrock_phys_addr limit);
/* allocate_pages(count, alignment, limit): `count` contiguous pages aligned to `alignment`
 * bytes (any power of two; below a page means a page), ending at or below `limit` (as
 * allocate_below), in one region: any such free pages in a row; or BEDROCK_NO_PAGE. Free with
 * bedrock_pages_free_run and the same count. */
bedrock_phys_addr bedrock_pages_allocate_run(bedrock_page_frame_allocator* frames, size_t count,
                                             uint64_t alignment, bedrock_phys_addr limit);
/* free(address, order) and free_pages(address, count); misuse is reported, changes nothing. */
void bedrock_pages_free(bedrock_page_frame_allocator* frames, bedrock_phys_addr address,
                        unsigned order);
void bedrock_pages_free_run(bedrock_page_frame_allocator* frames, bedrock_phys_addr address,
                            size_t count);
/* extend_pages(address, count, new_count): grows a run of bedrock_pages_allocate_run in place to
 * new_count pages when the pages right after it are free (then free it with new_count); false,
 * nothing changed and nothing reported, otherwise. */
bool bedrock_pages_extend_run(bedrock_page_frame_allocator* frames, bedrock_phys_addr address,
                              size_t count, size_t new_count);
/* shrink_pages(address, count, new_count): frees all but the first new_count pages of a run of
 * bedrock_pages_allocate_run (then free it with new_count); false, nothing changed and nothing
 * reported, when new_count is 0 or not below count, or it is no such run. */
bool bedrock_pages_shrink_run(bedrock_page_frame_allocator* frames, bedrock_phys_addr address,
                              size_t count, size_t new_count);
/* reserve_range(range): takes free pages out of circulation for good; false (and reported,
 * nothing changed) if any of them is allocated; false (nothing changed) for a range that wraps
 * past the top of the address space. */
bool bedrock_pages_reserve(bedrock_page_frame_allocator* frames, bedrock_phys_range range);
/* tell_unused_pages(): tells bedrock_platform_pages_unused() of every free block of 1 MiB or
 * more, the freed pages the allocator retains (up to 32 MiB) included: for a trim. */
void bedrock_pages_tell_unused(bedrock_page_frame_allocator* frames);
/* Introspection: managed pages, free pages, metadata bytes. */
uint64_t bedrock_pages_managed(const bedrock_page_frame_allocator* frames);
uint64_t bedrock_pages_free_count(const bedrock_page_frame_allocator* frames);
uint64_t bedrock_pages_metadata_bytes(const bedrock_page_frame_allocator* frames);
/* check(): walks all metadata. true if every invariant holds; otherwise false, and when
 * `failure` is not null *failure names the invariant that does not hold. */
bool bedrock_pages_check(const bedrock_page_frame_allocator* frames, const char** failure);

/* ---- Error reports (bedrock::ErrorReport) -------------------------------------------------- */

/* What kind of misuse or inconsistency a report describes (bedrock::ErrorKind, same order). */
typedef enum bedrock_error_kind {
    BEDROCK_ERROR_FREE_OUTSIDE_MANAGED_MEMORY,
    BEDROCK_ERROR_FREE_MISALIGNED,
    BEDROCK_ERROR_FREE_WRONG_ORDER,
    BEDROCK_ERROR_RESERVE_CONFLICT,
    BEDROCK_ERROR_DOUBLE_FREE,
    BEDROCK_ERROR_NOT_ALLOCATED,
    BEDROCK_ERROR_INTERIOR_POINTER,
    BEDROCK_ERROR_MISALIGNED_POINTER,
    BEDROCK_ERROR_FOREIGN_HEAP,
    BEDROCK_ERROR_BUFFER_OVERFLOW,
    BEDROCK_ERROR_BUFFER_UNDERFLOW,
    BEDROCK_ERROR_USE_AFTER_FREE,
    BEDROCK_ERROR_CORRUPT_METADATA,
    BEDROCK_ERROR_HEAP_IN_USE,
    BEDROCK_ERROR_RANGE_REFUSED,
    BEDROCK_ERROR_DEALLOCATION_MISMATCH,
    BEDROCK_ERROR_SIZE_MISMATCH,
    BEDROCK_ERROR_NULL_HANDLE
} bedrock_error_kind;

enum { BEDROCK_CALL_TRACE_DEPTH = 4 };

/* One detected error; the fields mean what bedrock/error_report.h says. */
typedef struct bedrock_error_report {
    bedrock_error_kind kind;
    const char* component; /* "pfa", "heap" */
    uint64_t address;
    uint64_t size;
    const void* call_site; /* the call into Bedrock that found it, or null */
    const char* detail;    /* one sentence, never null */
    uint64_t block;        /* heap blocks: the block's start, else 0 */
    uint64_t offset;
    const void* allocated[BEDROCK_CALL_TRACE_DEPTH]; /* innermost first; unused entries null */
    const void* freed[BEDROCK_CALL_TRACE_DEPTH];
} bedrock_error_report;

/* Receives one line of text (no trailing newline). */
typedef void (*bedrock_line_writer)(void* context, const char* line);

/* The kind's name as reports print it ("double-free", ...). */
const char* bedrock_error_kind_name(bedrock_error_kind kind);
/* Writes the report in Bedrock's standard form: one to five lines starting "bedrock: " (none
 * with a null `write`). */
void bedrock_write_error_report(const bedrock_error_report* report, bedrock_line_writer write,
                                void* context);

/* ---- Heaps (bedrock/heap.h) -------------------------------------------------------------- */

typedef struct bedrock_heap bedrock_heap; /* opaque: lives in the memory it manages */

enum { BEDROCK_HEAP_MIN_ALIGNMENT = 16, BEDROCK_HEAP_SIZE_CLASS_COUNT = 24 };

/* heap_create(frames): null if the page frame allocator cannot give the heap's state. */
bedrock_heap* bedrock_heap_create(bedrock_page_frame_allocator* frames);
/* heap_create_in_region(region, bytes): any alignment; null below 8,480 bytes (up to 63 more
 * for a region not 64-byte aligned; 528 fewer with BEDROCK_MAX_CPUS 1), or over a live region
 * heap's memory outside its live blocks. The region stays the heap's until bedrock_heap_destroy
 * returns true. */
bedrock_heap* bedrock_heap_create_in_region(void* region, size_t bytes);
/* heap_destroy(): false (reported as heap-in-use, nothing changed) while blocks are live. */
bool bedrock_heap_destroy(bedrock_heap* heap);

/* heap_allocate(heap, size, alignment): alignment 0 or a power of two; null when out of
 * memory or the alignment is invalid. */
void* bedrock_heap_allocate(bedrock_heap* heap, size_t size, size_t alignment);
void bedrock_heap_free(bedrock_heap* heap, void* block);
void* bedrock_heap_reallocate(bedrock_heap* heap, void* block, size_t size);
size_t bedrock_heap_usable_size(bedrock_heap* heap, const void* block);
void bedrock_heap_trim(bedrock_heap* heap);
/* heap_tell_unused(): over a page frame allocator, tells bedrock_platform_pages_unused() of the
 * free pages of the heap's arenas beyond those in use (blocks of 256 KiB or more not told of
 * yet), keeping every slab and arena. False for a region heap. */
bool bedrock_heap_tell_unused(bedrock_heap* heap);
/* heap_set_unused_interval(): from now on, each `bytes` given back to the heap's arenas make a
 * heap_tell_unused() (0: only when asked). False for a region heap. */
bool bedrock_heap_set_unused_interval(bedrock_heap* heap, size_t bytes);
/* heap_check(): walks the heap; false on any violation (each damaged block reported). */
bool bedrock_heap_check(bedrock_heap* heap);

/* The heap bedrock_malloc and friends (and operator new) use; null until set. Set it once
 * during bring-up, before other CPUs call the C API. */
void bedrock_set_default_heap(bedrock_heap* heap);
bedrock_heap* bedrock_default_heap(void);

/* Statistics (bedrock::HeapStatistics, bedrock::SizeClassStatistics). */
typedef struct bedrock_size_class_statistics {
    uint32_t block_size;
    uint32_t blocks_per_slab;
    uint64_t slabs;
    uint64_t blocks_in_use;
    uint64_t peak_blocks_in_use;
    uint64_t allocations;
    uint64_t bytes_requested;
} bedrock_size_class_statistics;

typedef struct bedrock_heap_statistics {
    uint64_t bytes_requested;
    uint64_t bytes_in_use;
    uint64_t blocks_in_use;
    uint64_t quarantined_blocks;
    uint64_t quarantined_bytes;
    uint64_t pages_held;
    uint64_t peak_pages_held;
    uint64_t medium_blocks;
    uint64_t medium_bytes;
    uint64_t medium_allocations;
    uint64_t large_blocks;
    uint64_t large_pages;
    uint64_t large_allocations;
    uint64_t reclaims;
    bedrock_size_class_statistics classes[BEDROCK_HEAP_SIZE_CLASS_COUNT];
} bedrock_heap_statistics;

/* A null `out`: nothing written. */
void bedrock_heap_statistics_of(bedrock_heap* heap, bedrock_heap_statistics* out);
/* Writes the statistics as a few human-readable lines (none with a null `write`). */
void bedrock_heap_report(bedrock_heap* heap, bedrock_line_writer write, void* context);

/* ---- Checked mode (bedrock/heap_checks.h) ------------------------------------------------- */

typedef enum bedrock_check_level {
    BEDROCK_CHECK_OFF,
    BEDROCK_CHECK_REPORT,
    BEDROCK_CHECK_ABORT
} bedrock_check_level;

/* false (nothing changed) for a value that is none of the three levels, or for a level other
 * than OFF when checked mode is compiled out. */
bool bedrock_heap_set_check_level(bedrock_heap* heap, bedrock_check_level level);
bedrock_check_level bedrock_heap_check_level(bedrock_heap* heap);

/* An error hook: while set, the heap's reports go to report(context, ...) instead of
 * bedrock_platform_report_error. The caller owns the struct and keeps it alive while set. */
typedef struct bedrock_error_hook {
    void (*report)(void* context, const bedrock_error_report* report);
    void* context;
} bedrock_error_hook;
/* null `hook`, or a hook whose `report` is null, restores the platform's report_error. Set it
 * while no other CPU uses the heap. */
void bedrock_heap_set_error_hook(bedrock_heap* heap, const bedrock_error_hook* hook);

void bedrock_heap_set_quarantine_limit(bedrock_heap* heap, size_t bytes);
void bedrock_heap_flush_quarantine(bedrock_heap* heap);

/* Leaks: live checked blocks allocated after a checkpoint (0: all). */
typedef struct bedrock_leak_summary {
    uint64_t blocks;
    uint64_t bytes;
    uint64_t sites; /* distinct allocation call traces, up to 32; 33 when there are more */
} bedrock_leak_summary;
uint64_t bedrock_heap_checkpoint(bedrock_heap* heap);
bedrock_leak_summary bedrock_heap_leaks_since(bedrock_heap* heap, uint64_t checkpoint);
/* Lists them, grouped by allocation call trace, then a total line. */
bedrock_leak_summary bedrock_heap_report_leaks(bedrock_heap* heap, bedrock_line_writer write,
                                               void* context, uint64_t checkpoint);

/* Guard pages: `slots` guarded blocks at once, every `sample_interval`th checked allocation
 * (0: only bedrock_heap_allocate_guarded). false if unavailable. */
bool bedrock_heap_enable_guard_pages(bedrock_heap* heap, uint32_t slots, uint32_t sample_interval);
void* bedrock_heap_allocate_guarded(bedrock_heap* heap, size_t size, size_t alignment);

typedef enum bedrock_memory_access {
    BEDROCK_ACCESS_UNKNOWN,
    BEDROCK_ACCESS_READ,
    BEDROCK_ACCESS_WRITE,
    BEDROCK_ACCESS_EXECUTE
} bedrock_memory_access;
/* For a fault handler: true (and the matching report raised) if `address` lies in a guard-page
 * pool of any heap. Safe in an exception handler. */
bool bedrock_heap_explain_fault(uintptr_t address, bedrock_memory_access access, const void* pc);

/* ---- Platform hooks: the program implements these (with Bedrock::c_platform) ------------------
 * The contract of bedrock/platform.h: no hook allocates from Bedrock or calls back into the
 * allocator that called it; every hook may be called with interrupts disabled. */

/* BEDROCK_MAX_CPUS (bedrock/config.h): the most CPUs Bedrock keeps per-CPU state for, as built.
 * BEDROCK_NO_CPU_SLOT: what bedrock_platform_current_cpu returns for a caller with no slot of
 * its own (Bedrock's locked, shared path). */
enum { BEDROCK_NO_CPU_SLOT = BEDROCK_MAX_CPUS };

/* Where physical address `phys` is accessible (the direct map). O(1). Each range handed to a
 * page frame allocator must be mapped contiguously, at an offset (virtual - physical) that is a
 * multiple of the largest naturally aligned block inside it, at most 1 GiB (bedrock/platform.h);
 * bedrock_pages_init refuses a range mapped otherwise. */
void* bedrock_platform_phys_to_virt(bedrock_phys_addr phys);
/* Every misuse Bedrock detects; may return (Bedrock then carries on, its state unchanged).
 * bedrock_write_error_report formats it. */
void bedrock_platform_report_error(const bedrock_error_report* report);
/* Checked mode at level abort, after the report. */
BEDROCK_NORETURN void bedrock_platform_panic(const char* message);
/* Guard pages: make one direct-map page inaccessible or accessible again; false if the
 * platform cannot (guard pages are then unavailable). */
bool bedrock_platform_set_page_access(void* page, bool accessible);
/* An internal invariant failed (a Bedrock bug or memory corruption). */
BEDROCK_NORETURN void bedrock_platform_assertion_failed(const char* expression, const char* file,
                                                        int line);
/* The calling CPU's index below BEDROCK_MAX_CPUS (0 on a single CPU), stable between
 * disable_interrupts and the matching restore_interrupts. */
unsigned bedrock_platform_current_cpu(void);
/* Masks interrupts on the calling CPU and returns the previous state; restore puts it back.
 * Pairs nest. No-ops where Bedrock is never called from interrupt handlers. */
uintptr_t bedrock_platform_disable_interrupts(void);
void bedrock_platform_restore_interrupts(uintptr_t previous);
/* A waiter on a held Bedrock lock has spun a while (interrupts masked) and will look again:
 * return at once where locks mask preemption (a kernel); sched_yield() where the holder can be
 * preempted (threads of a process). Must not call Bedrock. */
void bedrock_platform_lock_wait(void);
/* Giving pages back: [start, start + bytes) (page-aligned, in the direct map) is free in the
 * page frame allocator (a whole merged free block of 1 MiB or more), or, from heap_trim, inside
 * a free block of a heap over one: the platform may drop the contents (madvise) or account them;
 * the pages stay mapped and may be handed out again, and written, as soon as this returns.
 * Called with an allocator lock held: must not allocate or call Bedrock. May do nothing. */
void bedrock_platform_pages_unused(void* start, size_t bytes);

#ifdef __cplusplus
}
#endif

#endif /* BEDROCK_BEDROCK_H */
