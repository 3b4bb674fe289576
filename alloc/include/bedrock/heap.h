// The heap: malloc-style blocks of any size and alignment on top of pages, in independent heap
// objects. The C API (bedrock/malloc.h) and operator new/delete use the default heap.
//
// A heap takes its pages either from a PageFrameAllocator or from one caller-given memory
// region (an SRAM bank, a reserved buffer), and keeps its state in those pages: creating one
// allocates nothing else. Blocks up to kMaxSmallBlock bytes come from size-class slabs; larger
// ones are page runs of their own, returned to the page source on free.
//
// Thread safety: every function may be called from several CPUs at once on the same heap (a
// lock per size class, one for large blocks, the page source's own; in checked mode one for
// the checked blocks and one for the guard-page pool). The locks are spin locks
// that leave interrupts alone: a kernel that allocates or frees in interrupt handlers must
// disable interrupts around every heap call on that CPU, otherwise a handler that interrupts a
// lock holder on its own CPU spins forever. Never call the heap from an NMI.
//
// Misuse (a pointer the heap never returned, an interior or misaligned pointer, a double free, a
// block of another heap) is reported with component "heap" - through platform::report_error, or
// the heap's error hook - and leaves the heap unchanged. Checked mode (bedrock/heap_checks.h)
// adds red zones, poison, a quarantine, call traces, leak reports and guard pages.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace bedrock {

class PageFrameAllocator;
class Heap; // opaque: lives in the pages it manages

// Every block is aligned to at least this; it is also the size of a malloc(0) block.
inline constexpr size_t kHeapMinAlignment = 16;
// Blocks above this size are page runs taken from the page source one by one.
inline constexpr size_t kMaxSmallBlock = 512;
inline constexpr unsigned kHeapSizeClassCount = 16;

struct SizeClassStatistics {
    uint32_t block_size;      // bytes per block
    uint32_t blocks_per_slab; // blocks in one slab
    uint64_t slabs;           // slabs held, including the empty reserve
    uint64_t blocks_in_use;
    uint64_t peak_blocks_in_use;
    uint64_t allocations;     // successful allocations since creation
    uint64_t bytes_requested; // sum of the sizes asked for, since creation
};

struct HeapStatistics {
    uint64_t bytes_requested; // sum of all sizes asked for, since creation
    uint64_t bytes_in_use;    // usable bytes of the live blocks (block sizes, not requests)
    uint64_t blocks_in_use;   // live blocks: freed blocks in quarantine are not counted here
    // Checked mode: freed blocks held in quarantine (bedrock/heap_checks.h) and their bytes,
    // counted like bytes_in_use. The per-class and large-block figures below include them: they
    // still occupy their slab block or page run.
    uint64_t quarantined_blocks;
    uint64_t quarantined_bytes;
    uint64_t pages_held; // pages taken from the page source, including the heap's state (a region
                         // heap: the region's pages)
    uint64_t peak_pages_held;
    uint64_t medium_blocks; // live medium blocks (above kMaxSmallBlock, in the heap's arenas)
    uint64_t medium_bytes;  // their usable bytes
    uint64_t medium_allocations;
    uint64_t large_blocks; // live large blocks (page runs of their own, heaps over frames only)
    uint64_t large_pages;  // pages held by live large blocks
    uint64_t large_allocations;
    SizeClassStatistics classes[kHeapSizeClassCount];
};

// Receives one line of the report (no trailing newline).
using HeapReportWriter = void (*)(void* context, const char* line);

// A heap over `frames`. Returns null if the page frame allocator cannot provide the heap's
// state (two pages). O(1) plus one page frame allocation.
[[nodiscard]] Heap* heap_create(PageFrameAllocator& frames);
// A heap over [region, region + bytes): the heap's state and page bitmap at the front, blocks
// in the rest. The usable part is the 64 KiB-aligned part of the region after the state, so a
// region should be a few hundred KiB at least. Returns null if the region cannot hold the state
// and one slab. Page runs in a region are found first-fit: O(pages in the region).
[[nodiscard]] Heap* heap_create_in_region(void* region, size_t bytes);
// Returns the heap's pages (empty reserve slabs and its state) to its page source. Returns
// false, reporting a CorruptMetadata error and changing nothing, if blocks are still live.
bool heap_destroy(Heap& heap);

// A block of at least `size` bytes aligned to `alignment` (0 or a power of two; values below
// kHeapMinAlignment mean kHeapMinAlignment), or null when out of memory or `alignment` is not a
// power of two. size 0 gives a unique minimum block. O(1) for small blocks (plus one page
// allocation when a class needs a new slab); large blocks cost one page allocation.
[[nodiscard]] void* heap_allocate(Heap& heap, size_t size, size_t alignment = kHeapMinAlignment);
// Frees a block of this heap; null does nothing. O(1) (plus one page free for large blocks or
// when a slab beyond the reserve becomes empty).
void heap_free(Heap& heap, void* block);
// realloc(): null `block` allocates; in place when `size` fits and uses at least half the
// block; otherwise moves, keeping min(old, new) bytes. A checked block always moves. On failure
// returns null and leaves the block untouched. Size 0 returns a minimum block (the old one freed).
// New memory is aligned to kHeapMinAlignment, whatever the original block's alignment.
[[nodiscard]] void* heap_reallocate(Heap& heap, void* block, size_t size);
// The bytes usable in `block` (>= the size asked for; exactly that size for a checked block);
// 0 for null or an invalid pointer (reported).
[[nodiscard]] size_t heap_usable_size(Heap& heap, const void* block);

// Returns the empty slabs held in reserve to the page source. O(classes).
void heap_trim(Heap& heap);
[[nodiscard]] HeapStatistics heap_statistics(Heap& heap);
// Writes the statistics as a few human-readable lines.
void heap_report(Heap& heap, HeapReportWriter write, void* context);
// Walks every slab and large block checking the invariants (see slab.h, class_cache.h), and in
// checked mode every live block's red zones and every quarantined block's poison (reporting
// each damaged block). Returns false on any violation. O(blocks held + checked bytes); takes
// each lock in turn.
[[nodiscard]] bool heap_check(Heap& heap);

// The heap the C API and operator new use; null until set_default_heap(). Not thread-safe
// against concurrent calls of the C API: set it once during bring-up.
[[nodiscard]] Heap* default_heap();
void set_default_heap(Heap* heap);

} // namespace bedrock
