// SPDX-License-Identifier: MIT
// The heap: malloc-style blocks of any size and alignment on top of pages, in independent heap
// objects. The C API (bedrock/malloc.h) and operator new/delete use the default heap.
//
// A heap takes its memory either from a PageFrameAllocator or from one caller-given memory
// region (an SRAM bank, a reserved buffer; 8,480 bytes are enough to start), and keeps its state
// in that memory: creating one allocates nothing else. Blocks up to kMaxSmallBlock bytes come from
// size-class slabs; larger ones are medium blocks, packed to 16 bytes by a two-level segregated
// fit (O(1), 16 bytes of header each); over a page frame allocator, blocks above 1 MiB (or
// aligned beyond 64 KiB) are whole page runs of their own, page-aligned, returned on free.
// A region heap's one arena is the whole region, so nothing is ever given back but blocks.
//
// Worst cases, in instructions on x86-64 (measured by ./bench.sh --summary, which searches for
// them with adversarial traces): a malloc or free that does not call the page frame allocator
// costs a bounded number of steps (no search, no loop over blocks or pages); one that does adds
// one page frame allocator call and a walk over the page tags of the run it takes or gives
// (about pages / 4 stores). The README's Performance section has the figures.
//
// Thread safety: every function may be called from several CPUs at once on the same heap, and
// from interrupt handlers. Small blocks go through a cache per CPU (bedrock/platform.h's
// current_cpu(); at most a few KiB of blocks per class and CPU, see README "Heap") touched with
// that CPU's interrupts masked and no lock; everything else takes spin locks that mask
// interrupts while held (a lock per size class, one for the arenas, one for the large runs, the
// page frame allocator's own; in checked mode one for the checked blocks and one for the
// guard-page pool). Never call the heap from an NMI.
//
// Misuse (a pointer the heap never returned, an interior or misaligned pointer, a double free, a
// block of another heap) is reported with component "heap" - through platform::report_error, or
// the heap's error hook - and leaves the heap unchanged. Which block a pointer belongs to is
// decided from the heap's own metadata only (the page frame allocator's page tags, each
// arena's block-start bitmap), never from memory at or near the pointer, so a pointer into a
// stack, a device window, a hole between RAM ranges or a forged header in user data is
// reported, not followed. Checked mode (bedrock/heap_checks.h) adds red zones, poison, a
// quarantine, call traces, leak reports and guard pages.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace bedrock {

class PageFrameAllocator;
class Heap; // opaque: lives in the pages it manages

// Every block is aligned to at least this; it is also the size of a malloc(0) block.
inline constexpr size_t kHeapMinAlignment = 16;
// Blocks above this size are medium blocks (or, over a page frame allocator, large page runs).
inline constexpr size_t kMaxSmallBlock = 2048;
inline constexpr unsigned kHeapSizeClassCount = 24;

struct SizeClassStatistics {
    uint32_t block_size;      // bytes per block
    uint32_t blocks_per_slab; // blocks in one slab
    uint64_t slabs;           // slabs held, including the empty reserve
    uint64_t blocks_in_use;   // live blocks (not those the CPU caches hold)
    // The most blocks out of their slabs at once: live and cached by CPUs together (a cache's
    // refill takes a batch), so it may exceed the most live at once.
    uint64_t peak_blocks_in_use;
    uint64_t allocations;     // successful allocations since creation
    uint64_t bytes_requested; // sum of the sizes asked for, since creation
};

struct HeapStatistics {
    // Sum of the sizes of the allocations made, since creation: a realloc counts as one when it
    // moves the block (its size with the room it adds to grow), not when it resizes in place.
    uint64_t bytes_requested;
    // Usable bytes of the live blocks (block sizes, not requests); a checked block counts the
    // bytes it occupies (its header and red zones included), not its usable size, and a guarded
    // block its slot page (bedrock/heap_checks.h: the platform's page).
    uint64_t bytes_in_use;
    uint64_t blocks_in_use; // live blocks: freed blocks in quarantine are not counted here
    // Checked mode: freed blocks held in quarantine (bedrock/heap_checks.h) and their bytes,
    // counted like bytes_in_use. Checked blocks, live or in quarantine, are blocks of their own:
    // the per-class and medium figures below leave them out; a checked large block (a page run of
    // its own) is in the large-block figures.
    uint64_t quarantined_blocks;
    uint64_t quarantined_bytes;
    uint64_t pages_held; // pages taken from the page frame allocator, including the heap's state
                         // (a region heap: the region's pages)
    uint64_t peak_pages_held;
    uint64_t medium_blocks; // live medium blocks (above kMaxSmallBlock, in the heap's arenas)
    uint64_t medium_bytes;  // their usable bytes
    uint64_t medium_allocations;
    uint64_t large_blocks; // live large blocks (page runs of their own, heaps over frames only)
    uint64_t large_pages;  // pages held by live large blocks
    uint64_t large_allocations;
    // Mallocs that found no memory and took back what the heap held idle (empty slabs, the
    // calling CPU's cache, a spare arena) before they tried once more, since creation.
    uint64_t reclaims;
    SizeClassStatistics classes[kHeapSizeClassCount];
};

// Receives one line of the report (no trailing newline).
using HeapReportWriter = void (*)(void* context, const char* line);

// A heap over `frames`. Returns null if the page frame allocator cannot provide the heap's
// state (two pages) or 8191 heaps over page frame allocators are alive already. O(1) plus one
// page frame allocation. Sets the allocator's reclaim hook (PageFrameAllocator::
// set_reclaim_hook): an allocation of it that would fail takes back what its heaps hold idle.
[[nodiscard]] Heap* heap_create(PageFrameAllocator& frames);
// A heap over [region, region + bytes) (any alignment; a region may end at the very top of the
// address space, giving up its last 16 bytes): the heap's state at the front, then one arena
// over the rest. Returns null for a null region, a wrapping range, or a region too small
// for the state and one slab of any class (below 8,480 bytes, up to 63 more for a region not
// 64-byte aligned; with BEDROCK_MAX_CPUS at 64, and 528 fewer with 1), so that every small malloc
// succeeds in a fresh heap; also null, writing nothing, for a region that overlaps a live region
// heap's memory anywhere but inside one of that heap's live blocks (a heap made in a block one
// allocated is fine); only the part of the region the heap uses counts, its 16-byte-aligned
// interior (the bytes before the first and after the last 16-byte boundary are never touched).
// O(bytes / 64 KiB), plus one block lookup per live region heap it overlaps. The region must stay
// the heap's until heap_destroy() returns true: a heap is linked in a list of live region heaps (to
// tell a foreign block from memory of no heap), which must never see reused memory.
[[nodiscard]] Heap* heap_create_in_region(void* region, size_t bytes);
// Returns the heap's memory (empty slabs, empty arenas, its state) to its page frame allocator;
// an arena that holds a slab taken out of use after a write after free damaged it (reported when
// found; its blocks no longer count as live) goes back whole, so no page is lost.
// Returns false, reporting HeapInUse and changing nothing, if blocks are still live; returns
// false, reporting DoubleFree through platform::report_error (not the heap's hook), for a heap
// destroyed already, and NotAllocated for memory that holds no heap (a region heap's memory
// untouched since; a heap over a page frame allocator whose state pages went to a new heap is
// that heap now). After it returns true the heap is gone: a malloc on it is reported
// (UseAfterFree, through platform::report_error) and returns null, writing nothing, as long as
// its state memory still holds the destroyed state (a region heap's, until the caller reuses
// it); heap_check() returns false; every other call on it is undefined, as any use of freed
// memory is. Precondition: no other CPU is inside a call on this heap (destroy drains every
// CPU's cache); while one is, a destroy it refuses (blocks live) changes nothing, and a live
// block is never counted free, so destroy never succeeds beside one.
bool heap_destroy(Heap& heap);

// A block of at least `size` bytes aligned to `alignment` (0 or a power of two: over a page
// frame allocator, up to 1 GiB, and beyond where the direct map keeps the alignment -
// platform::phys_to_virt(p) - p a multiple of it, as an identity map has; any power of two for
// a region heap, wherever a multiple of it in the region has room - one beyond every free
// block's size, or of an eighth of the region or more when no free block holds the size and a
// whole alignment, tries each multiple there, O(region / 1 KiB); values below kHeapMinAlignment
// mean kHeapMinAlignment), or null - with everything intact - when out of memory, `alignment` is
// not a power of two, or the size cannot fit anywhere (no size limit below the memory: any block
// that fits contiguously in free memory can be had, up to 256 GiB - 4 KiB per block). size 0 gives
// a unique minimum block. O(1): a slab block, or a good fit among the free medium blocks; plus one
// page frame allocation when a new arena or a large run is needed. Worst cases measured by
// ./bench.sh --summary: 598 instructions without a page frame allocator call (a refill of the
// calling CPU's cache that gives a slab its class no longer needs back to the arenas; an aligned
// medium block, 496), 1,271 with one
// (a 1 MiB-aligned large run); a CPU's first small call also makes its cache (1,384;
// heap_prepare_cpu() does it ahead). A malloc that finds no memory, where the heap's memory could
// ever serve it (it is not larger than all of it, and a multiple of its alignment has room for it
// before the memory's end), first takes back what the heap holds idle (the calling CPU's cached
// blocks, every class's empty slabs, the medium blocks kept for reuse, a spare arena) and, if that
// gave any back, tries once more: O(classes + cached blocks), 43,024 instructions at most measured,
// the page frame allocator's reclaim hook included (counted in HeapStatistics::reclaims). The
// common small malloc is a pop from the calling CPU's cache.
[[nodiscard]] void* heap_allocate(Heap& heap, size_t size, size_t alignment = kHeapMinAlignment);
// Frees a block of this heap; null does nothing; anything else that is not a live block of this
// heap is reported (see above) and changes nothing. O(1) (plus one page free for a large run, or
// when an arena beyond the one kept spare becomes empty). A medium block of up to 16 KiB may be
// kept for the next malloc of its size instead of merged (see the README). Worst cases measured:
// 601 instructions without a page frame allocator call (a medium block merged with both
// neighbours; a free never gives a slab back), 1,472 with one (a run an aligned allocation
// left). A double free is reported at the call.
void heap_free(Heap& heap, void* block);
// realloc(): null `block` allocates; in place when `size` fits and uses at least half the
// block, or when the block can grow where it is - a medium block into a free block right after
// it, a large run into free pages right after it (PageFrameAllocator::extend_pages(): O(pages
// taken / 2^kMaxOrder + kMaxOrder^2) plus a tag per page); otherwise moves, keeping min(old,
// new) bytes. A block that moves to grow beyond the
// small sizes gets a quarter more room than asked when memory allows (malloc_usable_size shows
// it), so growing a block step by step costs O(1) copies per byte, not one copy per step. A
// checked block always moves, to exactly `size`. On failure
// returns null and leaves the block untouched. Size 0 returns a minimum block (the old one freed).
// New memory is aligned to kHeapMinAlignment, whatever the original block's alignment.
[[nodiscard]] void* heap_reallocate(Heap& heap, void* block, size_t size);
// The bytes usable in `block` (>= the size asked for; exactly that size for a checked block);
// 0 for null or an invalid pointer (reported).
[[nodiscard]] size_t heap_usable_size(Heap& heap, const void* block);

// Gives the calling CPU's cached blocks back to their classes (and its cache's own storage, made
// again on its next small malloc or free), then returns the empty slabs held in reserve, the
// medium blocks kept for reuse and (over a page frame allocator) the empty arena kept spare, and
// tells platform::pages_unused()
// of the page frame allocator's free blocks (its retained pages included:
// PageFrameAllocator::tell_unused_pages) and of the whole pages inside the arenas' free blocks
// (a hosted process gives them back to its kernel; a kernel may do nothing). Other CPUs' cached
// blocks stay theirs (heap_drain_cpu). O(cached blocks + classes + partial slabs + free
// arena blocks of a page or more).
void heap_trim(Heap& heap);
// Over a page frame allocator: tells platform::pages_unused() of the whole pages inside the
// arenas' free blocks of 256 KiB or more not told of since they were last written, the largest
// first (the ones malloc reaches last), until the free bytes beyond the bytes in use plus the
// unused interval (below) are told; keeps every slab and arena (heap_trim() gives back the idle
// ones and tells of every free page). For a point where a program's use drops: the hosted
// platform calls it as each thread ends. Returns false, changing nothing, for a region heap (its
// memory need not be in the direct map). O(free arena blocks of 256 KiB or more + lists) plus a
// platform call per block told of.
bool heap_tell_unused(Heap& heap);
// Over a page frame allocator: from now on, the call that brings the bytes given back to the
// arenas since the last tell (freed medium blocks, emptied slabs beyond those the classes keep,
// checked-mode blocks; headers included) to `bytes` makes a heap_tell_unused(), and as an arena
// goes back to the page frame allocator it is told of whole: memory freed inside the heap leaves
// a process's resident set without a heap_trim() call (the preload sets 16 MiB). That call (a
// free, or a small malloc whose refill gives an emptied slab back) pays the tell, beyond the
// worst cases above; every other such call one comparison more. 0 (the
// default): no tells but those asked for. Returns false, changing nothing, for a region heap.
// O(1).
bool heap_set_unused_interval(Heap& heap, size_t bytes);
// Gives every block CPU `cpu` caches back to their classes, and the cache's storage to the
// heap: for a CPU going offline, or to let heap_trim return the slabs they pin. Precondition: `cpu`
// is the caller, or runs no Bedrock code until this returns (it is offline, or parked). A block
// found freed twice meanwhile (two CPUs freeing it at once) is reported as a double free. Then
// gives back the empty slabs the classes hold beyond their reserve (those frees emptied).
// O(cached blocks + classes + slabs given back).
void heap_drain_cpu(Heap& heap, unsigned cpu);
// Sets up the calling CPU's cache now (its storage, one block of the heap's arenas): a kernel
// calls it as each CPU comes online, so that no malloc or free pays for it. Otherwise the first
// small malloc or free on the CPU does it, and that one call costs what this one does (stated in
// the README's worst-case table). Returns whether the CPU has a cache: false for a heap without
// CPU caches (a region below 128 KiB), a caller with no CPU slot, or arenas without room. O(1)
// plus one arena call.
bool heap_prepare_cpu(Heap& heap);
[[nodiscard]] HeapStatistics heap_statistics(Heap& heap);
// Writes the statistics as a few human-readable lines (none with a null `write`).
void heap_report(Heap& heap, HeapReportWriter write, void* context);
// Walks every slab, every arena block and the page tags of the arenas checking the invariants
// (slab.h, class_cache.h, cpu_cache.h, segregated_fit.h, arenas.h; every CPU cache's bounds and
// the calling CPU's cached blocks), and in checked mode every live block's
// red zones and every quarantined block's poison (reporting each damaged block). Also the 16-byte
// pads the heap's state and each arena begin with, where a write past the end of the memory
// before them lands: a changed pad is reported (corrupt-metadata, at the state or arena) and
// written anew, so it is reported once. Returns false on any violation. O(blocks held + arena
// bytes / 1 KiB + checked bytes); takes each lock in turn.
[[nodiscard]] bool heap_check(Heap& heap);

// For fork() in a threaded program: the caller takes every lock of `heap` before fork() and
// releases them in both the parent and the child, so the child never inherits a lock that
// another thread held at the fork. heap_lock_all() takes, in the heap's lock order, the global
// creation lock of region heaps, checked mode's locks (the checked blocks', the guard-page
// pool's and the pools' two global ones), every size class's lock, the arenas' and the large
// runs' lock, then the three global locks shared by all heaps (the lists of live region heaps
// and of live heaps over page frame allocators, the owner ids), with interrupts masked
// until heap_unlock_all(); the masks are kept in the heap's state. Not taken: the per-CPU
// caches (no lock: the child's one thread keeps its own CPU's; the platform gives the other
// CPU slots back, e.g. hosted::release_cpu_slots_after_fork()) and the page frame allocator's
// lock, which comes after the heap's (PageFrameAllocator::lock_all()):
//   prepare: heap_lock_all(heap); frames.lock_all();
//   parent, child: frames.unlock_all(...); heap_unlock_all(heap);
// Preconditions: the caller holds no Bedrock lock and locks one heap at a time (the global
// locks are not recursive); between the two calls it calls no Bedrock function but the page
// frame allocator's lock_all()/unlock_all() and fork(). heap_unlock_all() must follow a
// heap_lock_all() of the same heap (in the child, the forking thread calls it). O(classes).
void heap_lock_all(Heap& heap);
void heap_unlock_all(Heap& heap);

// The heap the C API and operator new use; null until set_default_heap(). Not thread-safe
// against concurrent calls of the C API: set it once during bring-up.
[[nodiscard]] Heap* default_heap();
void set_default_heap(Heap* heap);

} // namespace bedrock
