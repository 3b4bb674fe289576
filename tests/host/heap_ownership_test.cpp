// SPDX-License-Identifier: MIT
// Ownership from allocator metadata alone (heap.cpp's locate()): a bad pointer gets its report
// and changes nothing, whatever memory lies at or near it - unmapped pages below a region heap,
// holes between many RAM ranges, a forged slab header in user data - and interior pointers
// into blocks of every size are named as such, and a block header overwritten by a write past
// the end of the block before it is never followed. Also the limits: blocks and alignments of a GiB
// and more over a page frame allocator.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "bedrock/heap.h"
#include "bedrock/heap_checks.h"
#include "bedrock/malloc.h"
#include "heap/heap_state.h"
#include "heap/page_tags.h"
#include "heap/segregated_fit.h"
#include "heap/slab.h"
#include "heap_test_support.h"
#include "max_cpus_support.h"

namespace bedrock {
namespace {

constexpr size_t kPage = 4096;

// A mapping of `pages` pages with the first `guard_pages` made inaccessible.
// heap_free(), then the blocks the arenas keep for reuse given back to the fit (arenas.h): for
// the tests below, which need a freed medium block free in the fit (merged, its links and seal
// written) rather than kept as it was. Damage that give finds is reported here.
void free_to_fit(Heap& heap, void* block) {
    heap_free(heap, block);
    static_cast<void>(heap.arenas.give_idle());
    heap.arenas.report_damage(heap.errors);
}

class GuardedMapping {
public:
    GuardedMapping(size_t pages, size_t guard_pages, size_t alignment)
        : m_bytes((pages + alignment / kPage) * kPage) {
        m_mapping = static_cast<unsigned char*>(
            mmap(nullptr, m_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        const auto aligned =
            (reinterpret_cast<uintptr_t>(m_mapping) + alignment - 1) & ~(uintptr_t{alignment} - 1);
        m_base = reinterpret_cast<unsigned char*>(aligned);
        mprotect(m_mapping, static_cast<size_t>(m_base - m_mapping) + guard_pages * kPage,
                 PROT_NONE);
    }
    ~GuardedMapping() { munmap(m_mapping, m_bytes); }
    [[nodiscard]] unsigned char* base() const { return m_base; }

private:
    size_t m_bytes;
    unsigned char* m_mapping;
    unsigned char* m_base;
};

void expect_one_report(ErrorKind kind, const char* what) {
    ASSERT_EQ(test::report_count(), 1u) << what;
    EXPECT_EQ(test::report(0).kind, kind) << what << ": " << test::report(0).detail;
    test::clear_reports();
}

TEST(HeapOwnershipTest, RegionHeapAtAnOddAlignmentNeverReadsBelowItself) {
    // The region starts 4 KiB past a 64 KiB boundary; the 64 KiB below it are inaccessible.
    GuardedMapping mapping(64, 17, 64 << 10);
    unsigned char* region = mapping.base() + (17 << 12);
    Heap* heap = heap_create_in_region(region, 32 << 12);
    ASSERT_NE(heap, nullptr);
    test::clear_reports();
    void* live = heap_allocate(*heap, 100);
    ASSERT_NE(live, nullptr);
    heap_free(*heap, region + (8 << 10));
    expect_one_report(ErrorKind::NotAllocated, "8 KiB into the region");
    heap_free(*heap, region - (8 << 10));
    expect_one_report(ErrorKind::NotAllocated, "below the region");
    for (size_t offset = 0; offset < (32 << 12); offset += 16) {
        unsigned char* pointer = region + offset;
        if (pointer == live) {
            continue;
        }
        heap_free(*heap, pointer);
        ASSERT_EQ(test::report_count(), 1u) << offset;
        test::clear_reports();
    }
    EXPECT_TRUE(heap_check(*heap));
    heap_free(*heap, live);
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_destroy(*heap));
}

TEST(HeapOwnershipTest, ManyRangesWithUnmappedHolesBetweenThem) {
    // 40 ranges of 1 MiB, 1 MiB apart: the host maps each range on its own, and nothing is
    // mapped where the holes would be. With more than 64 CPU slots the ranges and holes grow by
    // the extra slots' page lists (whole MiB), so that one range still holds the allocator's
    // metadata.
    constexpr uint64_t kMiB = uint64_t{1} << 20;
    constexpr uint64_t kRange =
        kMiB + (test::kPageListsBytesBeyondDefault + kMiB - 1) / kMiB * kMiB;
    std::vector<PhysRange> ranges;
    for (PhysAddr i = 0; i < 40; ++i) {
        ranges.push_back(PhysRange{(PhysAddr{4} << 30) + i * 2 * kRange, kRange});
    }
    test::SimulatedMemory memory(ranges);
    PageFrameAllocator frames;
    ASSERT_TRUE(frames.init(ranges.data(), ranges.size()));
    Heap* heap = heap_create(frames);
    ASSERT_NE(heap, nullptr);
    test::clear_reports();
    std::vector<void*> blocks;
    for (int i = 0; i < 200; ++i) {
        blocks.push_back(heap_allocate(*heap, 16 + static_cast<size_t>(i) * 1000));
        ASSERT_NE(blocks.back(), nullptr);
    }
    for (const PhysRange& range : ranges) {
        auto* end = static_cast<unsigned char*>(platform::phys_to_virt(range.base)) + range.size;
        heap_free(*heap, end + kPage); // past the range: no tag, nothing read
        expect_one_report(ErrorKind::NotAllocated, "past a range");
    }
    alignas(16) int local[4] = {};
    heap_free(*heap, local);
    expect_one_report(ErrorKind::NotAllocated, "a stack variable");
    EXPECT_TRUE(heap_check(*heap));
    for (void* block : blocks) {
        heap_free(*heap, block);
    }
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_destroy(*heap));
    EXPECT_TRUE(frames.check().ok);
}

TEST(HeapOwnershipTest, AForgedSlabInUserDataIsNotTrusted) {
    test::Region region(16 << 20);
    Heap* heap = heap_create_in_region(region.data(), region.size());
    ASSERT_NE(heap, nullptr);
    test::clear_reports();
    // A real slab of the 48-byte class, and a live 512 KiB block holding a byte copy of it.
    auto* small = static_cast<unsigned char*>(heap_allocate(*heap, 48));
    auto* big = static_cast<unsigned char*>(heap_allocate(*heap, 512 << 10));
    ASSERT_NE(small, nullptr);
    ASSERT_NE(big, nullptr);
    const size_t slab_offset = 4096; // copy the 4 KiB around the small block
    unsigned char* copy_from = small - 256;
    memcpy(big + slab_offset, copy_from, 4096);
    unsigned char* forged = big + slab_offset + 256; // where `small` sits in the copy
    heap_free(*heap, forged);
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::InteriorPointer);
    EXPECT_EQ(test::report(0).block, reinterpret_cast<uintptr_t>(big));
    test::clear_reports();
    EXPECT_TRUE(heap_check(*heap));
    std::vector<void*> blocks;
    for (int i = 0; i < 1000; ++i) {
        auto* block = static_cast<unsigned char*>(heap_allocate(*heap, 48));
        ASSERT_TRUE(block < big || block >= big + (512 << 10)) << "inside the live block";
        blocks.push_back(block);
    }
    for (void* block : blocks) {
        heap_free(*heap, block);
    }
    heap_free(*heap, small);
    heap_free(*heap, big);
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_destroy(*heap));
}

TEST(HeapOwnershipTest, InteriorPointersIntoBlocksOfEverySize) {
    test::Frames frames(64 << 20);
    ASSERT_TRUE(frames.initialized());
    test::Region region(16 << 20);
    Heap* region_heap = heap_create_in_region(region.data(), region.size());
    Heap* frames_heap = heap_create(frames.allocator());
    for (Heap* heap : {region_heap, frames_heap}) {
        ASSERT_NE(heap, nullptr);
        test::clear_reports();
        for (size_t size : {size_t{16}, size_t{100}, size_t{512}, size_t{513}, size_t{4096},
                            size_t{100000}, size_t{3} << 20}) {
            auto* block = static_cast<unsigned char*>(heap_allocate(*heap, size));
            ASSERT_NE(block, nullptr) << size;
            const size_t usable = heap_usable_size(*heap, block);
            for (size_t offset : {size_t{16}, usable / 2 / 16 * 16, usable - 16}) {
                if (offset == 0 || offset >= usable) {
                    continue;
                }
                heap_free(*heap, block + offset);
                ASSERT_EQ(test::report_count(), 1u) << size << " +" << offset;
                EXPECT_EQ(test::report(0).kind, ErrorKind::InteriorPointer)
                    << size << " +" << offset << ": " << test::report(0).detail;
                EXPECT_EQ(test::report(0).block, reinterpret_cast<uintptr_t>(block)) << size;
                test::clear_reports();
            }
            EXPECT_TRUE(heap_check(*heap));
            heap_free(*heap, block);
            heap_free(*heap, block);
            ASSERT_EQ(test::report_count(), 1u) << "double free of " << size;
            test::clear_reports();
            EXPECT_TRUE(heap_check(*heap));
        }
        EXPECT_TRUE(heap_destroy(*heap));
    }
}

TEST(HeapOwnershipTest, ABlockOfAnotherHeapIsForeign) {
    test::Frames frames(64 << 20);
    Heap* first = heap_create(frames.allocator());
    Heap* second = heap_create(frames.allocator());
    ASSERT_NE(first, nullptr);
    ASSERT_NE(second, nullptr);
    test::clear_reports();
    for (size_t size : {size_t{32}, size_t{5000}, size_t{2} << 20}) {
        void* block = heap_allocate(*first, size);
        ASSERT_NE(block, nullptr);
        heap_free(*second, block);
        expect_one_report(ErrorKind::ForeignHeap, "another heap's block");
        heap_free(*first, block);
    }
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_destroy(*first));
    EXPECT_TRUE(heap_destroy(*second));
}

// Which heap an arena's block belongs to is read from the page tags alone (the arena's first
// page names its heap's owner id), never from the arena's header: a header naming another heap
// (as a wild write, or the memory of an arena being given back, could leave it) changes nothing.
TEST(HeapOwnershipTest, AnArenasHeapIsReadFromItsTagsNotItsHeader) {
    test::Frames frames(64 << 20);
    Heap* first = heap_create(frames.allocator());
    Heap* second = heap_create(frames.allocator());
    ASSERT_NE(first, nullptr);
    ASSERT_NE(second, nullptr);
    test::clear_reports();
    for (size_t size : {size_t{32}, size_t{5000}}) {
        void* block = heap_allocate(*first, size);
        ASSERT_NE(block, nullptr);
        const PageFrameAllocator::PageTags tags = frames.allocator().tags_of(block);
        ASSERT_NE(tags.page, nullptr);
        const uint16_t tag = heap::heap_tag(tags);
        ASSERT_TRUE(heap::is_arena_tag(tag));
        auto* arena = reinterpret_cast<heap::Arena*>(
            heap::arena_base(reinterpret_cast<uintptr_t>(block), tag));
        void* const owner = arena->owner;
        arena->owner = second;
        heap_free(*second, block);
        expect_one_report(ErrorKind::ForeignHeap, "another heap's block, its header forged");
        EXPECT_TRUE(heap_check(*second));
        arena->owner = nullptr;
        EXPECT_GE(heap_usable_size(*first, block), size);
        heap_free(*first, block);
        EXPECT_EQ(test::report_count(), 0u);
        arena->owner = owner;
        EXPECT_TRUE(heap_check(*first));
    }
    EXPECT_TRUE(heap_destroy(*first));
    EXPECT_TRUE(heap_destroy(*second));
}

// A free, realloc or lookup that found a medium block from its page tags without the arenas'
// lock, while another CPU gave the block's arena back (a double free racing the one that emptied
// it), reaches the lock with an arena that is no longer the heap's: its header is then the next
// owner's memory. Under the lock the arenas check the arena's first page tag before reading its
// header, so each answers "not here" without touching it (here: the page made inaccessible).
TEST(HeapOwnershipTest, AnArenaGivenBackBeforeTheLockIsNeverRead) {
    test::Frames frames(64 << 20);
    const uint64_t free_at_start = frames.free_pages();
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    test::clear_reports();
    auto* block = static_cast<unsigned char*>(heap_allocate(*heap, 5000));
    ASSERT_NE(block, nullptr);
    const PageFrameAllocator::PageTags tags = frames.allocator().tags_of(block);
    ASSERT_NE(tags.page, nullptr);
    const uint16_t tag = heap::heap_tag(tags);
    ASSERT_TRUE(heap::is_arena_tag(tag));
    auto* arena =
        reinterpret_cast<heap::Arena*>(heap::arena_base(reinterpret_cast<uintptr_t>(block), tag));
    const uint64_t arenas_seen = heap->arenas.arenas_given(); // as the racing free read it
    heap_free(*heap, block);
    heap_trim(*heap); // the empty arena goes back to the page frame allocator
    ASSERT_EQ(heap::heap_tag(frames.allocator().tags_of(block)), 0u) << "the arena is still held";
    ASSERT_EQ(mprotect(arena, kPage, PROT_NONE), 0);
    EXPECT_FALSE(heap->arenas.give_if_taken(*arena, block, heap::BlockUse::Medium, arenas_seen));
    EXPECT_FALSE(heap->arenas.grow_in_place(*arena, block, 6000));
    EXPECT_EQ(heap->arenas.find(*arena, block, ~size_t{0}).block, nullptr);
    ASSERT_EQ(mprotect(arena, kPage, PROT_READ | PROT_WRITE), 0);
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
    EXPECT_EQ(frames.free_pages(), free_at_start);
}

// A free that found a medium block's start bit set without the lock, while another CPU freed the
// block and the block before it (merging the two, clearing the start bit) and took the merged
// block again, reaches the lock with no arena given back meanwhile: the start bit alone must
// refuse it, since the memory where the block's header was is now the new block's user data,
// here forged as a taken medium block's header.
TEST(HeapOwnershipTest, AFreeRacingAMergeIsRefusedByTheStartBit) {
    test::Frames frames(64 << 20);
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    test::clear_reports();
    constexpr size_t kSize = 5008; // a multiple of the granule: the blocks touch
    auto* before = static_cast<unsigned char*>(heap_allocate(*heap, kSize));
    auto* block = static_cast<unsigned char*>(heap_allocate(*heap, kSize));
    void* after = heap_allocate(*heap, kSize); // keeps the merge from reaching further
    ASSERT_NE(before, nullptr);
    ASSERT_NE(after, nullptr);
    ASSERT_EQ(block, before + kSize + heap::kBlockHeaderBytes) << "the blocks do not touch";
    const uintptr_t base = heap::arena_base(reinterpret_cast<uintptr_t>(block),
                                            heap::heap_tag(frames.allocator().tags_of(block)));
    auto* arena = reinterpret_cast<heap::Arena*>(base);
    const uint64_t arenas_seen = heap->arenas.arenas_given(); // as the racing free read it
    ASSERT_TRUE(heap::SegregatedFit::is_block_start(heap::SegregatedFit::bounds_of(*arena), block));
    free_to_fit(*heap, block);
    free_to_fit(*heap, before);
    // Good fit: a request of a list's least size is served from that list, which holds the
    // merged block's 10,032 bytes (and nothing else).
    auto* merged = static_cast<unsigned char*>(heap_allocate(*heap, 9728));
    ASSERT_EQ(merged, before) << "the merged block was not taken again";
    auto* forged = reinterpret_cast<size_t*>(block - heap::kBlockHeaderBytes);
    forged[0] = 0;
    forged[1] = kSize | static_cast<size_t>(heap::BlockUse::Medium);
    EXPECT_FALSE(heap->arenas.give_if_taken(*arena, block, heap::BlockUse::Medium, arenas_seen));
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_check(*heap));
    free_to_fit(*heap, merged);
    free_to_fit(*heap, after);
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
}

// When memory is short a heap takes an arena of fewer pages than a tag span, tagged page by page:
// its first page carries the heap's id and no length (page_tags.h), so a free's lookup of a block
// in that page, made without the lock, takes the arena's length from its header, cut to the
// largest such arena. Here the only memory left is a 64-page block (the first arena: this CPU's
// cache and the slabs), an 8-page block (the second) and a few pages for the heap's state; the
// first medium block of the second arena lies in its first page and is sized and freed there.
TEST(HeapOwnershipTest, AnArenaTaggedPageByPageIsReadFromItsFirstPage) {
    test::Frames frames(16 << 20);
    PageFrameAllocator& allocator = frames.allocator();
    const uint64_t free_at_start = frames.free_pages();
    std::vector<PhysAddr> pages;
    for (PhysAddr page = allocator.allocate(0); page != kNoPage; page = allocator.allocate(0)) {
        pages.push_back(page);
    }
    std::vector<PhysAddr> kept;
    const uint64_t first_span = pages.front() / kPage / 64 + 1;
    for (PhysAddr page : pages) {
        const uint64_t index = page / kPage;
        if (index / 64 == first_span || (index / 64 == first_span + 1 && index % 64 < 8) ||
            (index / 64 == first_span + 2 && index % 64 < 4)) {
            allocator.free(page, 0);
        } else {
            kept.push_back(page);
        }
    }
    for (unsigned cpu = 0; cpu < platform::kMaxCpus; ++cpu) {
        allocator.drain_cpu(cpu);
    }
    Heap* heap = heap_create(allocator);
    ASSERT_NE(heap, nullptr);
    test::clear_reports();
    void* small = heap_allocate(*heap, 48);
    ASSERT_NE(small, nullptr);
    const auto arena_of = [&](const void* block) {
        return heap::arena_base(reinterpret_cast<uintptr_t>(block),
                                heap::heap_tag(allocator.tags_of(block)));
    };
    const uintptr_t first_arena = arena_of(small);
    std::vector<void*> blocks;
    void* block = nullptr;
    while ((block = heap_allocate(*heap, 20000)) != nullptr && arena_of(block) == first_arena) {
        blocks.push_back(block);
    }
    ASSERT_NE(block, nullptr) << "no second arena";
    const uintptr_t base = arena_of(block);
    const PageFrameAllocator::PageTags base_tags = allocator.tags_of(reinterpret_cast<void*>(base));
    ASSERT_EQ(__atomic_load_n(base_tags.span, __ATOMIC_RELAXED), 0u) << "not tagged page by page";
    ASSERT_EQ(heap::tag_kind(__atomic_load_n(base_tags.page, __ATOMIC_RELAXED)),
              heap::PageKind::ArenaBase);
    ASSERT_LT(reinterpret_cast<uintptr_t>(block) - base, kPage) << "not in its first page";

    EXPECT_GE(heap_usable_size(*heap, block), 20000u);
    const uint64_t in_use = heap_statistics(*heap).blocks_in_use;
    heap_free(*heap, block);
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_EQ(heap_statistics(*heap).blocks_in_use, in_use - 1);
    heap_free(*heap, reinterpret_cast<void*>(base + 16));
    expect_one_report(ErrorKind::NotAllocated, "the arena's own header");
    for (void* other : blocks) {
        heap_free(*heap, other);
    }
    heap_free(*heap, small);
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
    for (PhysAddr page : kept) {
        allocator.free(page, 0);
    }
    for (unsigned cpu = 0; cpu < platform::kMaxCpus; ++cpu) {
        allocator.drain_cpu(cpu);
    }
    EXPECT_EQ(frames.free_pages(), free_at_start);
}

// A block of a heap over another page frame allocator, freed into a region heap or into a heap
// over another allocator, is named as another heap's block too (it used to be "not allocated":
// only region heaps were asked), and changes nothing.
TEST(HeapOwnershipTest, ABlockOfAHeapOverAnotherPageFrameAllocatorIsForeign) {
    test::Frames frames(64 << 20);
    const PhysRange other_range{PhysAddr{16} << 30, 64 << 20};
    test::SimulatedMemory other_memory({other_range});
    PageFrameAllocator other_frames;
    ASSERT_TRUE(other_frames.init(&other_range, 1));
    test::Region region(1 << 20);
    Heap* over_frames = heap_create(frames.allocator());
    Heap* over_other = heap_create(other_frames);
    Heap* in_region = heap_create_in_region(region.data(), region.size());
    ASSERT_NE(over_frames, nullptr);
    ASSERT_NE(over_other, nullptr);
    ASSERT_NE(in_region, nullptr);
    test::clear_reports();
    for (size_t size : {size_t{32}, size_t{5000}, size_t{2} << 20}) {
        void* block = heap_allocate(*over_frames, size);
        ASSERT_NE(block, nullptr);
        for (Heap* wrong : {over_other, in_region}) {
            heap_free(*wrong, block);
            expect_one_report(ErrorKind::ForeignHeap, "a block of a heap over other frames");
            EXPECT_EQ(heap_usable_size(*wrong, block), 0u);
            expect_one_report(ErrorKind::ForeignHeap, "its usable size");
            EXPECT_TRUE(heap_check(*wrong));
        }
        EXPECT_GE(heap_usable_size(*over_frames, block), size);
        heap_free(*over_frames, block);
    }
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_destroy(*over_frames));
    EXPECT_TRUE(heap_destroy(*over_other));
    EXPECT_TRUE(heap_destroy(*in_region));
    EXPECT_TRUE(other_frames.check().ok);
}

// A region that overlaps a live region heap is refused, unless it lies inside one of that
// heap's taken blocks (a heap nested in another's block): created over the same buffer twice,
// over its free memory, over its state, around it, or across a block's end, the second heap
// would overwrite the first one's memory.
TEST(HeapOwnershipTest, ARegionOverlappingALiveRegionHeapIsRefused) {
    test::Region buffer(2 << 20); // the heap in its middle, so that "around it" is ours too
    unsigned char* const base = buffer.data() + (512 << 10);
    const size_t bytes = 1 << 20;
    Heap* heap = heap_create_in_region(base, bytes);
    ASSERT_NE(heap, nullptr);
    test::clear_reports();
    auto* block = static_cast<unsigned char*>(heap_allocate(*heap, 64 << 10));
    ASSERT_NE(block, nullptr);
    EXPECT_EQ(heap_create_in_region(base, bytes), nullptr) << "the same buffer";
    EXPECT_EQ(heap_create_in_region(base + (512 << 10), 256 << 10), nullptr) << "free memory";
    EXPECT_EQ(heap_create_in_region(base + 100, 32 << 10), nullptr) << "its state";
    EXPECT_EQ(heap_create_in_region(buffer.data(), buffer.size()), nullptr) << "around it";
    EXPECT_EQ(heap_create_in_region(block + (32 << 10), 64 << 10), nullptr) << "across the end";
    Heap* nested = heap_create_in_region(block + 3, (64 << 10) - 3);
    ASSERT_NE(nested, nullptr) << "inside a taken block";
    void* inner = heap_allocate(*nested, 100);
    EXPECT_NE(inner, nullptr);
    heap_free(*nested, inner);
    EXPECT_TRUE(heap_check(*nested));
    EXPECT_TRUE(heap_destroy(*nested));
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_EQ(test::report_count(), 0u);
    heap_free(*heap, block);
    EXPECT_TRUE(heap_destroy(*heap));
    Heap* again = heap_create_in_region(base, bytes);
    ASSERT_NE(again, nullptr) << "a destroyed heap's buffer is free to use";
    EXPECT_TRUE(heap_destroy(*again));
}

// The same in checked mode, whose core blocks hold more than the user's bytes: a region over a
// freed checked block waiting in the quarantine, over a live one's header and front red zone, or
// in the guard-page pool (its guard pages, or a slot no block holds) is refused; inside a live
// checked or guarded block's own bytes it is made. Each refused one would have been written over
// memory the outer heap still uses (or, in the pool, faulted).
TEST(HeapOwnershipTest, ARegionOverCheckedModesMemoryIsRefusedOutsideALiveBlock) {
    test::Region buffer(4 << 20);
    Heap* heap = heap_create_in_region(buffer.data(), buffer.size());
    ASSERT_NE(heap, nullptr);
    ASSERT_TRUE(heap_set_check_level(*heap, CheckLevel::Report));
    ASSERT_TRUE(heap_enable_guard_pages(*heap, GuardPageOptions{16, 0}));
    test::clear_reports();
    auto* freed = static_cast<unsigned char*>(heap_allocate(*heap, 64 << 10));
    ASSERT_NE(freed, nullptr);
    heap_free(*heap, freed); // into the quarantine
    EXPECT_EQ(heap_create_in_region(freed, 64 << 10), nullptr) << "a quarantined block";
    auto* live = static_cast<unsigned char*>(heap_allocate(*heap, 64 << 10));
    ASSERT_NE(live, nullptr);
    EXPECT_EQ(heap_create_in_region(live - 64, 32 << 10), nullptr) << "a live block's header";
    EXPECT_EQ(heap_create_in_region(live + (48 << 10), 32 << 10), nullptr)
        << "across a live block's end, over its tail red zone";
    const size_t page = platform::page_granularity();
    auto* guarded = static_cast<unsigned char*>(heap_allocate_guarded(*heap, page / 2));
    ASSERT_NE(guarded, nullptr);
    auto* after_guard = reinterpret_cast<unsigned char*>(
        align_up(reinterpret_cast<uintptr_t>(guarded) + 1, uintptr_t{page}) + 32);
    EXPECT_EQ(heap_create_in_region(after_guard, 9000), nullptr) << "the guard page after it";
    EXPECT_EQ(heap_create_in_region(after_guard + page, 9000), nullptr) << "an empty slot";
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_EQ(test::report_count(), 0u);

    Heap* nested = heap_create_in_region(live + 16, (64 << 10) - 16);
    ASSERT_NE(nested, nullptr) << "inside a live checked block";
    heap_free(*nested, heap_allocate(*nested, 100));
    EXPECT_TRUE(heap_destroy(*nested));
    heap_free(*heap, live);
    heap_free(*heap, guarded);
    heap_flush_quarantine(*heap);
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_destroy(*heap));
}

TEST(HeapOwnershipTest, DestroyWithLiveBlocksIsReportedAsHeapInUse) {
    test::Region region(1 << 20);
    Heap* heap = heap_create_in_region(region.data(), region.size());
    ASSERT_NE(heap, nullptr);
    test::clear_reports();
    void* block = heap_allocate(*heap, 10);
    EXPECT_FALSE(heap_destroy(*heap));
    expect_one_report(ErrorKind::HeapInUse, "destroy with a live block");
    heap_free(*heap, block);
    EXPECT_TRUE(heap_destroy(*heap));
}

// 300 blocks of random sizes (`seed`) allocated and written, none over the retired block at
// `retired` (`usable` bytes), then freed: no report, heap_check() holds, and the heap goes.
void expect_nothing_placed_over(Heap& heap, const unsigned char* retired, size_t usable,
                                uint32_t seed) {
    std::vector<unsigned char*> blocks;
    std::mt19937 random(seed);
    for (int i = 0; i < 300; ++i) {
        const size_t size = 16 + random() % 20000;
        auto* block = static_cast<unsigned char*>(heap_allocate(heap, size));
        ASSERT_NE(block, nullptr);
        ASSERT_TRUE(block + size <= retired - 16 || block >= retired + usable)
            << "a block over the retired one";
        memset(block, 0x5a, size);
        blocks.push_back(block);
    }
    for (unsigned char* block : blocks) {
        heap_free(heap, block);
    }
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_check(heap));
    EXPECT_TRUE(heap_destroy(heap));
}

// A write past the end of a medium block lands on the heap's 16-byte header of the block after
// it. Nothing that header says is followed (its size could point anywhere, mapped or not): the
// first call on that block - a free, or a realloc or malloc_usable_size when the header still
// reads as a medium block's - reports corrupt-metadata and takes the block out of use for good; a
// later free of it is a bad pointer; the block before it frees as usual, no later allocation
// lands on the retired block, and heap_check() holds throughout. Over a region heap and a page
// frame allocator, for fill bytes whose low bits read as each use.
enum class FirstCall { Free, Realloc, UsableSize };
class OverwrittenHeaderTest
    : public ::testing::TestWithParam<std::tuple<bool, uint8_t, FirstCall>> {};

TEST_P(OverwrittenHeaderTest, IsReportedAndNeverFollowed) {
    const auto [over_frames, fill, first_call] = GetParam();
    test::EitherHeap either(over_frames);
    ASSERT_TRUE(either.frames.initialized());
    Heap* heap = either.heap;
    ASSERT_NE(heap, nullptr);
    test::clear_reports();
    constexpr size_t kSize = 5000;
    auto* before = static_cast<unsigned char*>(heap_allocate(*heap, kSize));
    auto* damaged = static_cast<unsigned char*>(heap_allocate(*heap, kSize));
    auto* after = static_cast<unsigned char*>(heap_allocate(*heap, kSize));
    ASSERT_TRUE(before != nullptr && damaged != nullptr && after != nullptr);
    const size_t usable = heap_usable_size(*heap, before);
    ASSERT_EQ(before + usable + 16, damaged) << "adjacent blocks of a fresh arena";
    memset(before + usable, fill, 16); // 16 bytes too many: the next block's header
    switch (first_call) {
    case FirstCall::Free:
        heap_free(*heap, damaged);
        break;
    case FirstCall::Realloc:
        EXPECT_EQ(heap_reallocate(*heap, damaged, 3 * kSize), nullptr);
        break;
    case FirstCall::UsableSize:
        EXPECT_EQ(heap_usable_size(*heap, damaged), 0u);
        break;
    }
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::CorruptMetadata) << test::report(0).detail;
    EXPECT_EQ(test::report(0).address, reinterpret_cast<uintptr_t>(damaged));
    test::clear_reports();
    EXPECT_TRUE(heap_check(*heap));
    heap_free(*heap, damaged);
    expect_one_report(ErrorKind::NotAllocated, "a free of the retired block");
    heap_free(*heap, before);
    heap_free(*heap, after);
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_check(*heap));
    expect_nothing_placed_over(*heap, damaged, usable, fill);
}

INSTANTIATE_TEST_SUITE_P(FreeOfTheDamagedBlock, OverwrittenHeaderTest,
                         ::testing::Combine(::testing::Bool(),
                                            ::testing::Values(0x00, 0x01, 0x02, 0x03, 0x42, 0xff),
                                            ::testing::Values(FirstCall::Free)));
// Fill bytes whose header reads as a medium block's, with a size that points anywhere.
INSTANTIATE_TEST_SUITE_P(SizeOfTheDamagedBlock, OverwrittenHeaderTest,
                         ::testing::Combine(::testing::Bool(), ::testing::Values(0x02, 0x42, 0xa2),
                                            ::testing::Values(FirstCall::Realloc,
                                                              FirstCall::UsableSize)));

// The same overflow past the arena's last block lands on its end sentinel, the header after the
// last block, with the arena's end right after it - here an inaccessible page. A sentinel that
// no longer reads as one is never merged with or grown into (its links would lie past the end):
// it is written anew and reported at the arena's end.
TEST(HeapOwnershipTest, AnOverflowOntoTheEndSentinelIsNeverFollowedPastTheArena) {
    constexpr size_t kRegionPages = 16;
    auto* mapping = static_cast<unsigned char*>(mmap(nullptr, (kRegionPages + 1) * kPage,
                                                     PROT_READ | PROT_WRITE,
                                                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    ASSERT_NE(mapping, MAP_FAILED);
    ASSERT_EQ(mprotect(mapping + kRegionPages * kPage, kPage, PROT_NONE), 0);
    unsigned char* region_end = mapping + kRegionPages * kPage;
    Heap* heap = heap_create_in_region(mapping, kRegionPages * kPage);
    ASSERT_NE(heap, nullptr);
    test::clear_reports();
    // Medium blocks until the arena is full; the highest is then given back and taken again with
    // all the room up to the sentinel.
    std::vector<unsigned char*> blocks;
    unsigned char* last = nullptr;
    while (auto* block = static_cast<unsigned char*>(heap_allocate(*heap, 4000))) {
        blocks.push_back(block);
        last = block > last ? block : last;
    }
    ASSERT_NE(last, nullptr);
    free_to_fit(*heap, last);
    ASSERT_EQ(heap_allocate(*heap, static_cast<size_t>(region_end - 16 - last)), last);
    ASSERT_EQ(last + heap_usable_size(*heap, last) + 16, region_end);
    unsigned char* sentinel = last + heap_usable_size(*heap, last);
    test::clear_reports();
    // Reads free (low bits 0), with a size that covers any growth: written anew and reported,
    // once by the realloc's growth and once by the free.
    memset(sentinel, 0xf0, 16);
    EXPECT_EQ(heap_reallocate(*heap, last, 8000), nullptr); // grows into nothing past it
    memset(sentinel, 0xf0, 16);
    free_to_fit(*heap, last); // merges with nothing past it
    ASSERT_EQ(test::report_count(), 2u);
    for (size_t i = 0; i < 2; ++i) {
        EXPECT_EQ(test::report(i).kind, ErrorKind::CorruptMetadata) << test::report(i).detail;
        EXPECT_EQ(test::report(i).address, reinterpret_cast<uintptr_t>(region_end));
    }
    test::clear_reports();
    EXPECT_TRUE(heap_check(*heap));
    for (unsigned char* block : blocks) {
        if (block != last) {
            free_to_fit(*heap, block);
        }
    }
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
    munmap(mapping, (kRegionPages + 1) * kPage);
}

// The same overflow onto the header of a free block: the fit meets it when it follows the
// block's links or merges with it (a free of the block after it here), finds the seal broken,
// and rebuilds its lists, which retires the block (its successor says it was free): one
// corrupt-metadata report at the block, heap_check() holds again, nothing is placed over it.
// Fill 0xff reads as a size that wraps the walk round to the block itself.
class OverwrittenFreeHeaderTest : public ::testing::TestWithParam<std::tuple<bool, uint8_t>> {};

TEST_P(OverwrittenFreeHeaderTest, IsRetiredWhenTheListsAreRebuilt) {
    const auto [over_frames, fill] = GetParam();
    test::EitherHeap either(over_frames);
    ASSERT_TRUE(either.frames.initialized());
    Heap* heap = either.heap;
    ASSERT_NE(heap, nullptr);
    test::clear_reports();
    constexpr size_t kSize = 5000;
    auto* before = static_cast<unsigned char*>(heap_allocate(*heap, kSize));
    auto* freed = static_cast<unsigned char*>(heap_allocate(*heap, kSize));
    auto* after = static_cast<unsigned char*>(heap_allocate(*heap, kSize));
    ASSERT_TRUE(before != nullptr && freed != nullptr && after != nullptr);
    const size_t usable = heap_usable_size(*heap, before);
    ASSERT_EQ(before + usable + 16, freed) << "adjacent blocks of a fresh arena";
    free_to_fit(*heap, freed);
    memset(before + usable, fill, 16);
    free_to_fit(*heap, after); // merges with the damaged block, or finds it cannot
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::CorruptMetadata) << test::report(0).detail;
    EXPECT_EQ(test::report(0).address, reinterpret_cast<uintptr_t>(freed));
    test::clear_reports();
    EXPECT_TRUE(heap_check(*heap));
    free_to_fit(*heap, before);
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_check(*heap));
    expect_nothing_placed_over(*heap, freed, usable, fill);
}

INSTANTIATE_TEST_SUITE_P(Fills, OverwrittenFreeHeaderTest,
                         ::testing::Combine(::testing::Bool(),
                                            ::testing::Values(0x00, 0x01, 0x02, 0x42, 0xa2, 0xff)));

// A write through a stale pointer over the header of a free block: freed blocks `freed` and
// the one before it merge, and a malloc 16 bytes larger than the first takes the front, so the
// free rest's header lies in `freed`'s first 16 bytes, which the stale pointer still reaches. Its
// size word made larger: the seal covers it, so the next malloc, realloc growth or free that
// meets the block reports corrupt-metadata and nothing is placed over the live block after it
// (the malloc crashed, or handed out memory of the live block; the realloc grew over it).
enum class StaleCall { Malloc, Realloc, Free };
class StaleWriteOverAFreeHeaderTest
    : public ::testing::TestWithParam<std::tuple<bool, StaleCall, uint64_t>> {};

TEST_P(StaleWriteOverAFreeHeaderTest, IsReportedAndNothingIsPlacedOverTheLiveBlockAfterIt) {
    const auto [over_frames, call, added] = GetParam();
    test::EitherHeap either(over_frames);
    ASSERT_TRUE(either.frames.initialized());
    Heap* heap = either.heap;
    ASSERT_NE(heap, nullptr);
    test::clear_reports();
    constexpr size_t kSize = 8000;
    auto* first = static_cast<unsigned char*>(heap_allocate(*heap, kSize));
    auto* freed = static_cast<unsigned char*>(heap_allocate(*heap, kSize));
    auto* live = static_cast<unsigned char*>(heap_allocate(*heap, kSize));
    ASSERT_TRUE(first != nullptr && freed != nullptr && live != nullptr);
    const size_t usable = heap_usable_size(*heap, first);
    ASSERT_EQ(first + usable + 16, freed) << "adjacent blocks of a fresh arena";
    memset(live, 0x77, kSize);
    free_to_fit(*heap, first);
    free_to_fit(*heap, freed);
    auto* front = static_cast<unsigned char*>(heap_allocate(*heap, usable + 16));
    ASSERT_EQ(front, first);
    uint64_t size_word = 0;
    memcpy(&size_word, freed + 8, 8);
    size_word += added;
    memcpy(freed + 8, &size_word, 8); // the write after free
    std::vector<std::pair<unsigned char*, size_t>> taken;
    switch (call) {
    case StaleCall::Malloc:
        for (int i = 0; i < 2; ++i) {
            taken.emplace_back(static_cast<unsigned char*>(heap_allocate(*heap, 7936)), 7936);
        }
        break;
    case StaleCall::Realloc:
        front = static_cast<unsigned char*>(heap_reallocate(*heap, front, 40000));
        ASSERT_NE(front, nullptr);
        taken.emplace_back(front, 40000);
        front = nullptr;
        break;
    case StaleCall::Free:
        free_to_fit(*heap, front);
        front = nullptr;
        taken.emplace_back(static_cast<unsigned char*>(heap_allocate(*heap, 40000)), 40000);
        break;
    }
    ASSERT_GE(test::report_count(), 1u) << "the write after free is reported";
    for (size_t i = 0; i < test::report_count(); ++i) {
        EXPECT_EQ(test::report(i).kind, ErrorKind::CorruptMetadata) << test::report(i).detail;
    }
    test::clear_reports();
    for (const auto& [block, size] : taken) {
        ASSERT_NE(block, nullptr);
        EXPECT_TRUE(block + size <= live - 16 || block >= live + kSize)
            << "a block over the live block after the damaged one";
        memset(block, 0x5a, size);
    }
    for (size_t i = 0; i < kSize; ++i) {
        ASSERT_EQ(live[i], 0x77) << "the live block was written at " << i;
    }
    EXPECT_TRUE(heap_check(*heap));
    for (const auto& [block, size] : taken) {
        free_to_fit(*heap, block);
    }
    free_to_fit(*heap, front);
    free_to_fit(*heap, live);
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
}

INSTANTIATE_TEST_SUITE_P(
    Calls, StaleWriteOverAFreeHeaderTest,
    ::testing::Combine(::testing::Bool(),
                       ::testing::Values(StaleCall::Malloc, StaleCall::Realloc, StaleCall::Free),
                       ::testing::Values(uint64_t{0x10000}, uint64_t{1} << 40)));

// Two writes past the end of a block each: a taken block's over the free block after it, then
// the block before's over the taken one. The free block's successor no longer says anything of
// the taken block (its prev-free flag is the fill's), so the rebuild that the free block's broken
// seal starts must tell the two apart from the lists alone: the free block, which its list names,
// is retired; the taken one is left for its owner, whose free then retires it and counts it as
// given back (before, a fill with the prev-free bit set retired it in the rebuild too, uncounted:
// heap_check() failed for good and heap_destroy() found a block still in use).
class OverwrittenPairTest : public ::testing::TestWithParam<std::tuple<bool, uint8_t>> {
protected:
    // Four adjacent medium blocks of a fresh arena in `blocks`, each of `usable` bytes.
    void take_four_in_a_row() {
        ASSERT_TRUE(either.frames.initialized());
        ASSERT_NE(either.heap, nullptr);
        test::clear_reports();
        for (unsigned char*& block : blocks) {
            block = static_cast<unsigned char*>(heap_allocate(*either.heap, kSize));
            ASSERT_NE(block, nullptr);
        }
        usable = heap_usable_size(*either.heap, blocks[0]);
        for (size_t i = 1; i < 4; ++i) {
            ASSERT_EQ(blocks[i - 1] + usable + 16, blocks[i]) << "adjacent blocks";
        }
    }
    // The one report of a block's damage, at `block`.
    static void expect_damage_report(const unsigned char* block, const char* what) {
        ASSERT_EQ(test::report_count(), 1u) << what;
        EXPECT_EQ(test::report(0).address, reinterpret_cast<uintptr_t>(block));
        expect_one_report(ErrorKind::CorruptMetadata, what);
    }

    static constexpr size_t kSize = 5000;
    uint8_t fill = std::get<1>(GetParam());
    test::EitherHeap either{std::get<0>(GetParam())};
    unsigned char* blocks[4] = {};
    size_t usable = 0;
};

TEST_P(OverwrittenPairTest, TheTakenBlockIsLeftForItsOwner) {
    take_four_in_a_row();
    Heap& heap = *either.heap;
    auto [before, taken, freed, after] = blocks;
    free_to_fit(heap, freed);
    memset(taken + usable, fill, 16);
    memset(before + usable, fill, 16);
    free_to_fit(heap, after); // finds the free block's seal broken: the lists are rebuilt
    expect_damage_report(freed, "the free block's links");
    free_to_fit(heap, taken);
    expect_damage_report(taken, "the taken block's header, at its free");
    free_to_fit(heap, before);
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_check(heap)) << "both retired, and counted";
    expect_nothing_placed_over(heap, taken, 2 * usable + 16, fill);
}

// The other way round: a free block's header overwritten by the block before it, and the taken
// block after it overwritten by a write after free of the free block's last bytes. Only its list
// says the free block was free: the rebuild retires it; the taken block is its owner's again.
TEST_P(OverwrittenPairTest, TheFreeBlockItsListNamesIsRetired) {
    take_four_in_a_row();
    Heap& heap = *either.heap;
    auto [before, freed, taken, after] = blocks;
    free_to_fit(heap, freed);
    memset(freed + usable, fill, 16);
    memset(before + usable, fill, 16);
    // The free block heads the first list a smaller request searches: its seal is found broken.
    auto* smaller = static_cast<unsigned char*>(heap_allocate(heap, kSize / 2));
    ASSERT_NE(smaller, nullptr);
    expect_damage_report(freed, "the free block's links");
    EXPECT_GE(smaller, after + usable) << "over neither";
    free_to_fit(heap, taken);
    expect_damage_report(taken, "the taken block's header, at its free");
    free_to_fit(heap, smaller);
    free_to_fit(heap, before);
    free_to_fit(heap, after);
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_check(heap)) << "both retired, and counted";
    expect_nothing_placed_over(heap, freed, 2 * usable + 16, fill);
}

// 0x08, 0xcb and 0xff set the prev-free bit; 0x00 and 0x42 do not.
INSTANTIATE_TEST_SUITE_P(Fills, OverwrittenPairTest,
                         ::testing::Combine(::testing::Bool(),
                                            ::testing::Values(0x00, 0x08, 0x42, 0xcb, 0xff)));

// A stale free of a free block whose header was overwritten (past the end of the block before
// it), or whose links were written after its free, finds a header that does not hold. The block
// was free: the free lists are rebuilt (one corrupt-metadata report at the block), which retires
// it or lists it anew, and no use's totals change. Before, it was retired as a taken medium
// block: the totals went below zero, heap_check() failed for good and heap_destroy() refused the
// heap (found by heap_misuse_fuzz), and a block whose header held stayed on its list retired.
class StaleFreeOfADamagedFreeBlockTest : public ::testing::TestWithParam<bool> {};

TEST_P(StaleFreeOfADamagedFreeBlockTest, RebuildsTheListsAndCountsNothing) {
    for (const bool header_overwritten : {true, false}) {
        test::EitherHeap either(GetParam());
        ASSERT_TRUE(either.frames.initialized());
        Heap& heap = *either.heap;
        test::clear_reports();
        constexpr size_t kSize = 5000;
        auto* before = static_cast<unsigned char*>(heap_allocate(heap, kSize));
        auto* freed = static_cast<unsigned char*>(heap_allocate(heap, kSize));
        auto* after = static_cast<unsigned char*>(heap_allocate(heap, kSize));
        ASSERT_TRUE(before != nullptr && freed != nullptr && after != nullptr);
        const size_t usable = heap_usable_size(heap, before);
        ASSERT_EQ(before + usable + 16, freed) << "adjacent blocks of a fresh arena";
        free_to_fit(heap, freed);
        memset(header_overwritten ? before + usable : freed, 0x42, 16);
        free_to_fit(heap, freed);
        ASSERT_EQ(test::report_count(), 1u) << header_overwritten;
        EXPECT_EQ(test::report(0).address, reinterpret_cast<uintptr_t>(freed));
        expect_one_report(ErrorKind::CorruptMetadata, "the stale free");
        EXPECT_TRUE(heap_check(heap)) << header_overwritten;
        free_to_fit(heap, before);
        free_to_fit(heap, after);
        EXPECT_EQ(test::report_count(), 0u);
        EXPECT_TRUE(heap_check(heap));
        if (header_overwritten) {
            expect_nothing_placed_over(heap, freed, usable, 0x42);
        } else {
            EXPECT_TRUE(heap_destroy(heap));
        }
    }
}

INSTANTIATE_TEST_SUITE_P(BothHeaps, StaleFreeOfADamagedFreeBlockTest, ::testing::Bool());

// Zeros over the header of a slab whose list links are null (the only slab of its class, its
// free list empty) read as a free block whose three link words are 0: they must not pass for
// sealed, or a free of the block before it would merge with the slab and follow those links.
// That free reports the damage. The slab's blocks still free where their CPU's slab hints place
// them; where the hints are stale, the heap header cannot place them (corrupt-metadata, the block
// kept, never a wrong interior-pointer or not-allocated report). The slab, once empty and given
// back, is retired.
TEST(HeapOwnershipTest, ZerosOverASlabsHeaderDoNotPassForAFreeBlock) {
    for (const bool over_frames : {false, true}) {
        test::EitherHeap either(over_frames);
        ASSERT_TRUE(either.frames.initialized());
        Heap* heap = either.heap;
        ASSERT_NE(heap, nullptr);
        test::clear_reports();
        void* first = heap_allocate(*heap, 16); // the CPU's cache and a slab, before the rest
        auto* before = static_cast<unsigned char*>(heap_allocate(*heap, 5000));
        ASSERT_TRUE(first != nullptr && before != nullptr);
        unsigned char* slab = before + heap_usable_size(*heap, before) + 16;
        std::vector<void*> smalls;
        for (int i = 0; i < 4; ++i) {
            smalls.push_back(heap_allocate(*heap, 1000));
            ASSERT_TRUE(smalls.back() > slab && smalls.back() < slab + 65536);
        }
        ASSERT_EQ(heap::slab_in_block(slab, heap->arenas.slab_placement())->state, heap::kSlabInUse)
            << "the slab right after the medium block";
        uint64_t header[2];
        memcpy(header, slab - 16, 16);
        memset(slab - 16, 0, 16);
        free_to_fit(*heap, before);
        ASSERT_EQ(test::report_count(), 1u);
        EXPECT_EQ(test::report(0).address, reinterpret_cast<uintptr_t>(slab));
        expect_one_report(ErrorKind::CorruptMetadata, "a free next to the damaged slab");
        // A slab given back (the 16-byte class's, by the trim) makes every slab hint stale.
        heap_free(*heap, first);
        heap_trim(*heap);
        EXPECT_EQ(test::report_count(), 0u);
        heap_free(*heap, smalls[0]);
        expect_one_report(ErrorKind::CorruptMetadata, "a free the slab hints miss");
        EXPECT_EQ(heap_usable_size(*heap, smalls[0]), 0u);
        expect_one_report(ErrorKind::CorruptMetadata, "its usable size");
        EXPECT_FALSE(heap_check(*heap)) << "the damaged header";
        test::clear_reports();
        // The header put back (its size and use; the link and prev-free flag as the free of the
        // block before it wrote them), so that the heap can go: no heap may outlive its memory.
        uint64_t now[2];
        memcpy(now, slab - 16, 16);
        now[1] = (header[1] & ~uint64_t{8}) | (now[1] & 8);
        memcpy(slab - 16, now, 16);
        for (void* block : smalls) {
            heap_free(*heap, block);
        }
        EXPECT_EQ(test::report_count(), 0u);
        EXPECT_TRUE(heap_check(*heap));
        EXPECT_TRUE(heap_destroy(*heap));
    }
}

// Over a page frame allocator a large run's last page may lie right before an arena or another
// heap's state, where a write of 16 bytes past the run's end lands. Each begins with a pad that
// nothing follows: before, the arena's list links lay there, and giving the arena back followed
// them (a crash).
//
// A heap with 2 MiB runs and medium blocks whose arenas, one of them, start right after a run's
// end (`before_arena`; null if none does).
struct RunBeforeArena {
    static constexpr size_t kRun = size_t{2} << 20;
    test::Frames frames{size_t{256} << 20};
    Heap* heap = nullptr;
    std::vector<unsigned char*> runs; // null where freed
    std::vector<void*> mediums;
    unsigned char* before_arena = nullptr;

    RunBeforeArena() {
        heap = frames.initialized() ? heap_create(frames.allocator()) : nullptr;
        if (heap == nullptr) {
            return;
        }
        // Every other 2 MiB run freed: an arena made later may start where a freed run did.
        while (auto* run = static_cast<unsigned char*>(heap_allocate(*heap, kRun))) {
            runs.push_back(run);
        }
        for (size_t i = 0; i < runs.size(); i += 2) {
            heap_free(*heap, runs[i]);
            runs[i] = nullptr;
        }
        while (before_arena == nullptr) {
            void* medium = heap_allocate(*heap, 30000);
            if (medium == nullptr) {
                return; // no arena right after a large run
            }
            mediums.push_back(medium);
            for (unsigned char* run : runs) {
                if (run == nullptr) {
                    continue;
                }
                const auto tags = frames.allocator().tags_of(run + kRun);
                if (tags.page != nullptr &&
                    heap::tag_kind(*tags.page) == heap::PageKind::ArenaBase) {
                    before_arena = run;
                }
            }
        }
    }
    // The write past the run's end onto the arena's pad, and the one report of it.
    [[nodiscard]] unsigned char* pad() const { return before_arena + kRun; }
    void overwrite_pad() const { memset(pad(), 0x42, 16); }
    static void expect_pad_report(const unsigned char* pad, const char* what) {
        ASSERT_EQ(test::report_count(), 1u) << what;
        EXPECT_EQ(test::report(0).address, reinterpret_cast<uintptr_t>(pad));
        expect_one_report(ErrorKind::CorruptMetadata, what);
    }
    // Frees the medium blocks (which gives their arenas back), then the runs.
    void free_all() {
        for (void* medium : mediums) {
            heap_free(*heap, medium);
        }
        for (unsigned char* run : runs) {
            heap_free(*heap, run);
        }
    }
};

// heap_check() reports the write, at the arena, once (the pad is written anew), and everything
// frees as usual.
TEST(HeapOwnershipTest, AnOverflowPastALargeRunOntoAnArenaIsReportedNotFollowed) {
    RunBeforeArena layout;
    ASSERT_NE(layout.before_arena, nullptr) << "no arena right after a large run";
    Heap& heap = *layout.heap;
    test::clear_reports();
    ASSERT_EQ(heap_usable_size(heap, layout.before_arena), RunBeforeArena::kRun);
    layout.overwrite_pad();
    EXPECT_FALSE(heap_check(heap));
    RunBeforeArena::expect_pad_report(layout.pad(), "the arena's pad");
    EXPECT_TRUE(heap_check(heap)) << "reported once";
    layout.free_all(); // gives the arenas back, the damaged one too
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_check(heap));
    EXPECT_TRUE(heap_destroy(heap));
}

// With no heap_check() before the arena goes back: the arena's give-back reports the write (its
// pad's last chance), once, and nothing else changes.
TEST(HeapOwnershipTest, AnOverflowOntoAnArenaIsReportedWhenTheArenaGoesBack) {
    RunBeforeArena layout;
    ASSERT_NE(layout.before_arena, nullptr) << "no arena right after a large run";
    Heap& heap = *layout.heap;
    test::clear_reports();
    const uint64_t pages_held = heap_statistics(heap).pages_held;
    layout.overwrite_pad();
    for (void* medium : layout.mediums) {
        heap_free(heap, medium);
    }
    heap_trim(heap);
    RunBeforeArena::expect_pad_report(layout.pad(), "the arena's pad, as it went back");
    EXPECT_LT(heap_statistics(heap).pages_held, pages_held) << "the arenas went back";
    layout.mediums.clear();
    layout.free_all();
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_check(heap));
    EXPECT_TRUE(heap_destroy(heap));
    EXPECT_EQ(test::report_count(), 0u);
}

// The same write onto the first 16 bytes of a heap's state (its own pages, over a page frame
// allocator, which may follow anyone's): a pad that no call reads.
TEST(HeapOwnershipTest, AnOverflowOntoAHeapsStateIsReportedNotFollowed) {
    test::Frames frames(size_t{64} << 20);
    ASSERT_TRUE(frames.initialized());
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    test::clear_reports();
    memset(static_cast<void*>(heap), 0x42, 16);
    void* small = heap_allocate(*heap, 100);
    void* medium = heap_allocate(*heap, 10000);
    void* large = heap_allocate(*heap, size_t{3} << 20);
    ASSERT_TRUE(small != nullptr && medium != nullptr && large != nullptr);
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_FALSE(heap_check(*heap));
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).address, reinterpret_cast<uintptr_t>(heap));
    expect_one_report(ErrorKind::CorruptMetadata, "the state's pad");
    EXPECT_TRUE(heap_check(*heap)) << "reported once";
    heap_free(*heap, small);
    heap_free(*heap, medium);
    heap_free(*heap, large);
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_destroy(*heap));
}

// With no heap_check() before heap_destroy(): the destroy reports the write, at the state (a
// region heap's state is at its region's start, where a write past the memory before the region
// lands), before the memory goes.
TEST(HeapOwnershipTest, AnOverflowOntoAHeapsStateIsReportedWhenTheHeapIsDestroyed) {
    test::Frames frames(size_t{64} << 20);
    ASSERT_TRUE(frames.initialized());
    alignas(64) static unsigned char region[64 * 1024];
    for (Heap* heap :
         {heap_create(frames.allocator()), heap_create_in_region(region, sizeof(region))}) {
        ASSERT_NE(heap, nullptr);
        test::clear_reports();
        void* medium = heap_allocate(*heap, 3000);
        ASSERT_NE(medium, nullptr);
        memset(static_cast<void*>(heap), 0x42, 16);
        heap_free(*heap, medium);
        EXPECT_EQ(test::report_count(), 0u);
        EXPECT_TRUE(heap_destroy(*heap));
        ASSERT_EQ(test::report_count(), 1u);
        EXPECT_EQ(test::report(0).address, reinterpret_cast<uintptr_t>(heap));
        expect_one_report(ErrorKind::CorruptMetadata, "the state's pad, as the heap went");
    }
}

TEST(HeapLimitsTest, GibibyteBlocksAndAlignmentsOverAPageFrameAllocator) {
    test::Frames frames(uint64_t{6} << 30);
    ASSERT_TRUE(frames.initialized());
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    test::clear_reports();
    void* three = heap_allocate(*heap, size_t{3} << 30);
    ASSERT_NE(three, nullptr) << "3 GiB on a 6 GiB machine";
    EXPECT_GE(heap_usable_size(*heap, three), size_t{3} << 30);
    heap_free(*heap, three);
    void* one = heap_allocate(*heap, size_t{1} << 30);
    ASSERT_NE(one, nullptr);
    heap_free(*heap, one);
    for (size_t alignment = 16; alignment <= (size_t{1} << 30); alignment *= 2) {
        void* block = heap_allocate(*heap, 100, alignment);
        ASSERT_NE(block, nullptr) << alignment;
        EXPECT_EQ(reinterpret_cast<uintptr_t>(block) % alignment, 0u) << alignment;
        heap_free(*heap, block);
    }
    // Beyond 1 GiB, where the direct map keeps the alignment: the simulated one keeps it modulo
    // 1 GiB only, so a 2 or 4 GiB-aligned run is as aligned in it as its offset allows, and is
    // given back when it is not.
    const uint64_t direct_map_offset =
        reinterpret_cast<uintptr_t>(platform::phys_to_virt(uint64_t{4} << 30)) -
        (uint64_t{4} << 30);
    for (const size_t alignment : {size_t{2} << 30, size_t{4} << 30}) {
        const uint64_t free_before = frames.free_pages();
        void* block = heap_allocate(*heap, 100, alignment);
        if (direct_map_offset % alignment == 0) {
            ASSERT_NE(block, nullptr) << alignment;
            EXPECT_EQ(reinterpret_cast<uintptr_t>(block) % alignment, 0u) << alignment;
            heap_free(*heap, block);
        } else {
            EXPECT_EQ(block, nullptr) << alignment;
        }
        EXPECT_EQ(frames.free_pages(), free_before) << alignment;
    }
    set_default_heap(heap);
    void* calloced = bedrock_calloc(3, size_t{512} << 20);
    ASSERT_NE(calloced, nullptr);
    void* grown = bedrock_realloc(calloced, (size_t{1} << 30) + (size_t{256} << 20));
    ASSERT_NE(grown, nullptr);
    bedrock_free(grown);
    void* aligned = nullptr;
    EXPECT_EQ(bedrock_posix_memalign(&aligned, size_t{1} << 30, 4096), 0);
    bedrock_free(aligned);
    set_default_heap(nullptr);
    EXPECT_EQ(heap_allocate(*heap, size_t{7} << 30), nullptr) << "more than the memory";
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
    EXPECT_TRUE(frames.allocator().check().ok);
}

} // namespace
} // namespace bedrock

namespace bedrock {
namespace {

// The README states a heap's fixed cost: its state plus one block in every size class. Measured
// as the smallest region in which a heap holds one block of each class. With more than 64 CPU
// slots the state grows (a CPU cache pointer per slot), and the limit with it.
TEST(HeapLimitsTest, FixedCostOfOneBlockPerClassFitsIn64KiB) {
    alignas(4096) static unsigned char region[(64 << 10) + test::kHeapStateBytesBeyondDefault];
    size_t smallest = 0;
    for (size_t bytes = 8 << 10; bytes <= sizeof(region) && smallest == 0; bytes += 256) {
        Heap* heap = heap_create_in_region(region, bytes);
        if (heap == nullptr) {
            continue;
        }
        std::vector<void*> blocks;
        bool all = true;
        for (unsigned index = 0; index < kHeapSizeClassCount; ++index) {
            void* block = heap_allocate(*heap, heap_statistics(*heap).classes[index].block_size);
            all = all && block != nullptr;
            blocks.push_back(block);
        }
        for (void* block : blocks) {
            heap_free(*heap, block);
        }
        EXPECT_TRUE(heap_destroy(*heap));
        smallest = all ? bytes : 0;
    }
    std::printf("fixed cost: one block of each of the %u classes fits in %zu bytes\n",
                kHeapSizeClassCount, smallest);
    EXPECT_NE(smallest, 0u) << "does not fit in " << sizeof(region) << " bytes";
}

} // namespace
} // namespace bedrock

namespace bedrock {
namespace {

// The lookups of free() and heap_usable_size() read the page tags and start bitmaps without a
// lock while other CPUs take and give blocks of the same slabs and arenas: each thread's answers
// about its own live blocks stay exact, and nothing is reported or lost.
TEST(HeapThreadsTest, LookupsWithoutTheLockStayExactWhileOthersAllocate) {
    test::Frames frames(256 << 20);
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    test::clear_reports();
    std::atomic<int> wrong{0};
    auto work = [&](unsigned seed) {
        std::mt19937 random(seed);
        std::vector<std::pair<void*, size_t>> live;
        for (int i = 0; i < 40000; ++i) {
            if (live.size() < 200 && random() % 2 == 0) {
                const size_t size = 1 + random() % (random() % 8 == 0 ? 100000 : 3000);
                void* block = heap_allocate(*heap, size);
                if (block == nullptr || heap_usable_size(*heap, block) < size) {
                    ++wrong;
                    continue;
                }
                live.emplace_back(block, size);
            } else if (!live.empty()) {
                const size_t index = random() % live.size();
                if (heap_usable_size(*heap, live[index].first) < live[index].second) {
                    ++wrong;
                }
                heap_free(*heap, live[index].first);
                live[index] = live.back();
                live.pop_back();
            }
        }
        for (auto& [block, size] : live) {
            heap_free(*heap, block);
        }
    };
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < 4; ++t) {
        threads.emplace_back(work, t + 1);
    }
    for (std::thread& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(wrong.load(), 0);
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_EQ(heap_statistics(*heap).blocks_in_use, 0u);
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
    EXPECT_TRUE(frames.allocator().check().ok);
}

} // namespace
} // namespace bedrock
