// SPDX-License-Identifier: MIT
// In-kernel heap tests on real physical memory, on both architectures: the randomized mix with
// address patterns, exhaustion to the end of RAM and back, large and aligned blocks, and every
// form of operator new/delete on the default heap.
#include <stddef.h>
#include <stdint.h>

#include "bedrock/heap.h"
#include "bedrock/malloc.h"
#include "bedrock/new.h"
#include "bedrock/page_frame_allocator.h"
#include "kernel/allocators.h"
#include "kernel/console.h"
#include "kernel/error_log.h"
#include "kernel/test_registry.h"
#include "kernel/trap.h"
#include "settle_heap.h"
#include "test_random.h"

namespace bedrock::kernel {
namespace {

// The pattern a block holds, written and checked a word at a time (the heap's blocks are at
// least 16-byte aligned): a function of the block's address and the offset, so a block with
// another block's content, or moved, fails too. Bytes past the last whole word take the low
// byte of their own offset's word.
uint64_t pattern(uintptr_t address, size_t offset) {
    return ((address >> 4) ^ offset) * 0x9E3779B97F4A7C15;
}

void fill(unsigned char* block, size_t size) {
    const auto address = reinterpret_cast<uintptr_t>(block);
    size_t i = 0;
    for (; i + sizeof(uint64_t) <= size; i += sizeof(uint64_t)) {
        const uint64_t word = pattern(address, i);
        __builtin_memcpy(block + i, &word, sizeof word);
    }
    for (; i < size; ++i) {
        block[i] = static_cast<unsigned char>(pattern(address, i));
    }
}

bool intact(const unsigned char* block, size_t size) {
    const auto address = reinterpret_cast<uintptr_t>(block);
    size_t i = 0;
    for (; i + sizeof(uint64_t) <= size; i += sizeof(uint64_t)) {
        uint64_t word;
        __builtin_memcpy(&word, block + i, sizeof word);
        if (word != pattern(address, i)) {
            return false;
        }
    }
    for (; i < size; ++i) {
        if (block[i] != static_cast<unsigned char>(pattern(address, i))) {
            return false;
        }
    }
    return true;
}

struct Slot {
    unsigned char* block;
    size_t size;
};

// Whether a null from the heap is an honest "out of memory": the page frame allocator has no
// free block large enough for `size` bytes at `alignment` in a new arena (at least 256 KiB).
// Small machines (QEMU -m 16M) reach that during these tests; larger ones must not.
bool page_frame_allocator_cannot_fit(size_t size, size_t alignment) {
    const uint64_t pages = (uint64_t{size} + alignment + (256 << 10)) / kPageSize + 1;
    int order = 0;
    while ((uint64_t{1} << order) < pages) {
        ++order;
    }
    return page_frame_allocator().largest_free_order() < order;
}

BEDROCK_TEST(heap_randomized_mix_returns_every_page) {
    PageFrameAllocator& frames = page_frame_allocator();
    const uint64_t free_before = free_pages_with_default_heap_trimmed();
    Heap* heap = heap_create(frames);
    BEDROCK_REQUIRE(heap != nullptr);
    constexpr size_t kSlots = 512;
    static Slot slots[kSlots];
    TestRandom random(0x5eed);
    for (int op = 0; op < 40000; ++op) {
        Slot& slot = slots[random.next() % kSlots];
        if (slot.block != nullptr) {
            BEDROCK_REQUIRE(intact(slot.block, slot.size));
            heap_free(*heap, slot.block);
            slot = Slot{};
            continue;
        }
        const uint64_t kind = random.next() % 100;
        const size_t size = kind < 70   ? random.next() % 257
                            : kind < 97 ? random.next() % 8193
                                        : random.next() % (512 << 10);
        const size_t alignment = size_t{1} << (random.next() % 17);
        auto* block = static_cast<unsigned char*>(heap_allocate(*heap, size, alignment));
        if (block == nullptr) {
            BEDROCK_REQUIRE(page_frame_allocator_cannot_fit(size, alignment));
            continue;
        }
        BEDROCK_REQUIRE((reinterpret_cast<uintptr_t>(block) & (alignment - 1)) == 0);
        BEDROCK_REQUIRE(heap_usable_size(*heap, block) >= size);
        fill(block, size);
        slot = Slot{block, size};
    }
    BEDROCK_EXPECT(heap_check(*heap));
    for (Slot& slot : slots) {
        if (slot.block != nullptr) {
            BEDROCK_EXPECT(intact(slot.block, slot.size));
            heap_free(*heap, slot.block);
            slot = Slot{};
        }
    }
    BEDROCK_EXPECT(heap_destroy(*heap));
    BEDROCK_EXPECT_EQ(frames.free_pages(), free_before);
}

// Allocates until the end of RAM (large blocks first, then small ones), then frees it all.
BEDROCK_TEST(heap_exhaustion_returns_null_then_everything_comes_back) {
    PageFrameAllocator& frames = page_frame_allocator();
    const uint64_t free_before = free_pages_with_default_heap_trimmed();
    Heap* heap = heap_create(frames);
    BEDROCK_REQUIRE(heap != nullptr);
    // The blocks form a list through their first word, so the test needs no memory of its own.
    void* list = nullptr;
    size_t count = 0;
    const size_t sizes[] = {size_t{1} << 20, size_t{64} << 10, size_t{4000}, size_t{16}};
    for (size_t size : sizes) {
        while (void* block = heap_allocate(*heap, size)) {
            *static_cast<void**>(block) = list;
            list = block;
            ++count;
        }
    }
    BEDROCK_EXPECT(count > 0);
    // The last 16-byte slab fits in an arena of one or two pages: no larger block may be left.
    BEDROCK_EXPECT(frames.largest_free_order() < 2);
    BEDROCK_EXPECT(heap_check(*heap));
    while (list != nullptr) {
        void* next = *static_cast<void**>(list);
        heap_free(*heap, list);
        list = next;
    }
    BEDROCK_EXPECT(heap_destroy(*heap));
    BEDROCK_EXPECT_EQ(frames.free_pages(), free_before);
}

BEDROCK_TEST(heap_large_and_aligned_blocks) {
    for (size_t alignment = 16; alignment <= (size_t{4} << 20); alignment <<= 1) {
        const size_t sizes[] = {size_t{1}, size_t{3000}, size_t{100000}, size_t{3} << 20};
        for (size_t size : sizes) {
            void* block = bedrock_memalign(alignment, size);
            if (block == nullptr) {
                BEDROCK_REQUIRE(page_frame_allocator_cannot_fit(size, alignment));
                continue;
            }
            BEDROCK_EXPECT((reinterpret_cast<uintptr_t>(block) & (alignment - 1)) == 0);
            BEDROCK_EXPECT(bedrock_malloc_usable_size(block) >= size);
            static_cast<unsigned char*>(block)[size - 1] = 1;
            bedrock_free(block);
        }
    }
}

struct alignas(256) Aligned {
    uint64_t value[4];
};

BEDROCK_TEST(heap_operator_new_and_delete_forms) {
    const uint64_t before = heap_statistics(*default_heap()).blocks_in_use;
    auto* one = new uint64_t(7);
    auto* array = new uint64_t[100];
    auto* aligned = new Aligned{};
    auto* aligned_array = new Aligned[3];
    auto* quiet = new (std::nothrow) uint64_t(9);
    auto* quiet_array = new (std::nothrow) uint64_t[5];
    BEDROCK_EXPECT(*one == 7 && quiet != nullptr && *quiet == 9 && quiet_array != nullptr);
    BEDROCK_EXPECT(reinterpret_cast<uintptr_t>(aligned) % 256 == 0);
    BEDROCK_EXPECT(reinterpret_cast<uintptr_t>(aligned_array) % 256 == 0);
    BEDROCK_EXPECT_EQ(heap_statistics(*default_heap()).blocks_in_use, before + 6);
    delete one;
    delete[] array;
    delete aligned;
    delete[] aligned_array;
    delete quiet;
    delete[] quiet_array;
    ::operator delete (::operator new(24), size_t{24});
    ::operator delete (::operator new (40, std::align_val_t{128}), size_t{40},
                       std::align_val_t{128});
    BEDROCK_EXPECT(::operator new (size_t{1} << 50, std::nothrow) == nullptr);
    BEDROCK_EXPECT_EQ(heap_statistics(*default_heap()).blocks_in_use, before);
}

} // namespace
} // namespace bedrock::kernel

namespace bedrock::kernel {
namespace {

struct BogusFree {
    Heap* heap;
    void* pointer;
};

void free_bogus(void* argument) {
    auto* bogus = static_cast<BogusFree*>(argument);
    heap_free(*bogus->heap, bogus->pointer);
}

} // namespace

// A free of an address between two RAM ranges (q35's PCI hole, a gap between memory banks) or
// far above RAM: the heap must report it without reading the run header such a pointer would
// have - that memory is not mapped, so reading it would fault.
BEDROCK_TEST(heap_free_outside_ram_is_reported_without_a_fault) {
    PageFrameAllocator& frames = page_frame_allocator();
    Heap* heap = heap_create(frames); // its own heap: the default one may run at level abort
    BEDROCK_REQUIRE(heap != nullptr);
    constexpr size_t kMaxCandidates = 8;
    uint64_t candidates[kMaxCandidates];
    size_t count = 0;
    for (size_t i = 0; i + 1 < frames.region_count() && count + 1 < kMaxCandidates; ++i) {
        const uint64_t end = frames.region_range(i).base + frames.region_range(i).size;
        const uint64_t hole = (end + 0xFFFF) & ~uint64_t{0xFFFF};
        if (hole + 0x10000 <= frames.region_range(i + 1).base) {
            candidates[count++] = hole + 0x10; // past a 64 KiB boundary in the hole
        }
    }
    candidates[count++] = uint64_t{1} << 46; // far above any RAM the tests boot with
    for (size_t i = 0; i < count; ++i) {
        print("    free(0x%lx)\n", candidates[i]);
        error_log().clear();
        BogusFree bogus{heap, reinterpret_cast<void*>(candidates[i])};
        const Trap trap = run_catching_traps(free_bogus, &bogus);
        BEDROCK_EXPECT(trap.kind == TrapKind::None);
        if (BEDROCK_EXPECT_EQ(error_log().count(), 1)) {
            BEDROCK_EXPECT(error_log()[0].kind == ErrorKind::NotAllocated);
            BEDROCK_EXPECT_EQ(error_log()[0].address, candidates[i]);
        }
    }
    error_log().clear();
    BEDROCK_EXPECT(heap_destroy(*heap));
}

} // namespace bedrock::kernel
