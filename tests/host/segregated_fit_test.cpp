// SegregatedFit (alloc/heap/segregated_fit.h): storage size, arenas, merging in all four
// neighbour cases, aligned takes, find() from the start bitmap (and not fooled by forged
// headers), exhaustion, and a randomized model test over arenas of several sizes with check()
// after every operation and every taken block's contents checked against a pattern.
#include <gtest/gtest.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <random>
#include <string>
#include <vector>

#include "heap/segregated_fit.h"
#include "heap_test_support.h"

namespace bedrock::heap {
namespace {

constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * kKiB;
constexpr size_t kGiB = 1024 * kMiB;

// Memory for arenas and the fit's storage, freed with the test.
class Memory {
public:
    Memory() = default;
    Memory(const Memory&) = delete;
    Memory& operator=(const Memory&) = delete;
    ~Memory() {
        for (void* block : m_blocks) {
            free(block);
        }
    }
    // `bytes` bytes aligned to `alignment`, filled with 0xA5 (no zeroes the fit could rely on).
    void* get(size_t bytes, size_t alignment = 64) {
        void* block = aligned_alloc(alignment, align_up(bytes, alignment));
        __builtin_memset(block, 0xA5, bytes);
        m_blocks.push_back(block);
        return block;
    }

private:
    std::vector<void*> m_blocks;
};

// A fit with its storage.
struct Fit {
    explicit Fit(size_t max_arena_bytes) {
        const size_t bytes = SegregatedFit::storage_bytes(max_arena_bytes);
        fit.init(bytes != 0 ? memory.get(bytes) : nullptr, max_arena_bytes);
    }
    Arena* add(size_t bytes, void* owner = nullptr) {
        return fit.add_arena(memory.get(bytes), bytes, owner);
    }
    Memory memory;
    SegregatedFit fit;
};

// check() as a gtest assertion that names the failing invariant.
::testing::AssertionResult holds(const SegregatedFit& fit) {
    const char* failure = nullptr;
    if (fit.check(&failure)) {
        return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "check() fails: " << failure;
}

struct Block {
    unsigned char* start;
    size_t usable;
    BlockUse use;
};
std::vector<Block> blocks_of(const SegregatedFit& fit) {
    std::vector<Block> blocks;
    fit.for_each_block([&](Arena&, unsigned char* start, size_t usable, BlockUse use) {
        blocks.push_back(Block{start, usable, use});
    });
    return blocks;
}

size_t fresh_usable(size_t bytes) {
    return bytes - SegregatedFit::arena_overhead(bytes) - kBlockHeaderBytes;
}

TEST(SegregatedFit, StorageIsSmallForSmallArenasAndScales) {
    std::printf("storage_bytes: 16 KiB %zu, 32 KiB %zu, 128 MiB %zu, 4 GiB %zu\n",
                SegregatedFit::storage_bytes(16 * kKiB), SegregatedFit::storage_bytes(32 * kKiB),
                SegregatedFit::storage_bytes(128 * kMiB), SegregatedFit::storage_bytes(4 * kGiB));
    std::printf("sizeof(SegregatedFit) %zu (holds the bitmaps)\n", sizeof(SegregatedFit));
    EXPECT_LE(SegregatedFit::storage_bytes(32 * kKiB), 1024u);
    EXPECT_LE(SegregatedFit::storage_bytes(4 * kGiB), 4096u);
    EXPECT_EQ(SegregatedFit::storage_bytes(0), 0u);
    EXPECT_LE(SegregatedFit::storage_bytes(16 * kKiB), SegregatedFit::storage_bytes(32 * kKiB));
    static_assert(SegregatedFit::storage_bytes(32 * 1024) <= 1024);
}

TEST(SegregatedFit, CountsSixtyFourByteBlocksInA32KiBArena) {
    Fit f(32 * kKiB);
    Arena* arena = f.add(32 * kKiB);
    ASSERT_NE(arena, nullptr);
    size_t count = 0;
    while (f.fit.take(64, 16, BlockUse::Medium) != nullptr) {
        ++count;
    }
    std::printf("64-byte blocks in one 32 KiB arena: %zu (overhead %zu bytes)\n", count,
                SegregatedFit::arena_overhead(32 * kKiB));
    EXPECT_TRUE(holds(f.fit));
    // Each block costs 80 bytes; the arena spends its overhead once.
    EXPECT_EQ(count, (32 * kKiB - SegregatedFit::arena_overhead(32 * kKiB)) / 80);
}

// Density as embedded heaps are judged: the share of an arena in use when the first take fails.
TEST(SegregatedFit, FillsA32KiBArenaWithRandomSizesDensely) {
    const uint64_t seed = test::seed_from_environment(32768);
    std::printf("seed %llu (set BEDROCK_TEST_SEED to repeat)\n",
                static_cast<unsigned long long>(seed));
    std::mt19937_64 random(seed);
    Fit f(32 * kKiB);
    ASSERT_NE(f.add(32 * kKiB), nullptr);
    size_t requested = 0;
    while (true) {
        const size_t size = 16 + random() % 1009;
        if (f.fit.take(size, 16, BlockUse::Medium) == nullptr) {
            break;
        }
        requested += size;
    }
    EXPECT_TRUE(holds(f.fit));
    std::printf("32 KiB arena, sizes 16..1024: %zu bytes requested when the first take failed "
                "(%.3f of the arena)\n",
                requested, static_cast<double>(requested) / (32 * kKiB));
    EXPECT_GT(requested, 32 * kKiB * 8 / 10);
}

TEST(SegregatedFit, CheckNamesTheBrokenInvariant) {
    Fit f(8 * kKiB);
    Arena* arena = f.add(8 * kKiB);
    auto* first = static_cast<unsigned char*>(f.fit.take(64, 16, BlockUse::Medium));
    auto* second = static_cast<unsigned char*>(f.fit.take(64, 16, BlockUse::Medium));
    ASSERT_TRUE(first && second);
    f.fit.give(*arena, first); // free, then taken `second`, then the free rest
    ASSERT_TRUE(holds(f.fit));
    const auto expect_failure = [&](const char* words) {
        const char* failure = nullptr;
        EXPECT_FALSE(f.fit.check(&failure));
        ASSERT_NE(failure, nullptr);
        EXPECT_NE(std::string(failure).find(words), std::string::npos) << failure;
    };
    auto* header = reinterpret_cast<fit_detail::BlockHeader*>(second - kBlockHeaderBytes);
    header->size_and_flags ^= fit_detail::kPrevFree;
    expect_failure("prev flag");
    header->size_and_flags ^= fit_detail::kPrevFree;
    header->link += 16;
    expect_failure("links");
    header->link -= 16;
    const size_t granule =
        (reinterpret_cast<uintptr_t>(second) - SegregatedFit::arena_begin(*arena)) / 16;
    arena->start_bits()[granule / 64] ^= uint64_t{1} << (granule % 64);
    expect_failure("start bits");
    arena->start_bits()[granule / 64] ^= uint64_t{1} << (granule % 64);
    arena->start_bits()[(granule + 1) / 64] ^= uint64_t{1} << ((granule + 1) % 64);
    expect_failure("start bits");
    arena->start_bits()[(granule + 1) / 64] ^= uint64_t{1} << ((granule + 1) % 64);
    header->size_and_flags =
        (header->size_and_flags & ~fit_detail::kUseMask) | static_cast<size_t>(BlockUse::Free);
    expect_failure("coalesced");
    header->size_and_flags |= static_cast<size_t>(BlockUse::Medium);
    ASSERT_TRUE(holds(f.fit));
}

TEST(SegregatedFit, FreshArenaIsOneFreeBlock) {
    Fit f(64 * kKiB);
    EXPECT_TRUE(holds(f.fit));
    int owner_cookie = 0;
    Arena* arena = f.add(1 * kKiB, &owner_cookie);
    ASSERT_NE(arena, nullptr);
    EXPECT_TRUE(holds(f.fit));
    EXPECT_TRUE(SegregatedFit::arena_is_empty(*arena));
    EXPECT_EQ(SegregatedFit::owner(*arena), &owner_cookie);
    EXPECT_EQ(SegregatedFit::arena_end(*arena) - SegregatedFit::arena_begin(*arena), 1 * kKiB);
    const std::vector<Block> blocks = blocks_of(f.fit);
    ASSERT_EQ(blocks.size(), 1u);
    EXPECT_EQ(blocks[0].usable, fresh_usable(1 * kKiB));
    EXPECT_EQ(blocks[0].use, BlockUse::Free);
    EXPECT_EQ(f.fit.totals().free_bytes, fresh_usable(1 * kKiB));
    EXPECT_EQ(f.fit.totals().arenas, 1u);
    EXPECT_EQ(f.fit.totals().arena_bytes, 1 * kKiB);
    // Too small for a minimum block, or larger than the fit allows: refused, nothing changes.
    EXPECT_EQ(f.add(SegregatedFit::arena_overhead(64) + 16), nullptr);
    EXPECT_TRUE(holds(f.fit));
    EXPECT_NE(f.add(SegregatedFit::arena_overhead(64) + 32), nullptr);
    EXPECT_TRUE(holds(f.fit));
}

TEST(SegregatedFit, TakesWholeArenaAndSplitsOnlyUsefulRemainders) {
    Fit f(32 * kKiB);
    Arena* arena = f.add(32 * kKiB);
    const size_t whole = fresh_usable(32 * kKiB);
    // The largest request an arena holds succeeds though its list is the last one.
    void* block = f.fit.take(whole, 16, BlockUse::Medium);
    ASSERT_NE(block, nullptr);
    EXPECT_EQ(SegregatedFit::usable_size(block), whole);
    EXPECT_EQ(SegregatedFit::use_of(block), BlockUse::Medium);
    EXPECT_FALSE(SegregatedFit::arena_is_empty(*arena));
    EXPECT_EQ(f.fit.take(0, 16, BlockUse::Medium), nullptr);
    EXPECT_TRUE(holds(f.fit));
    f.fit.give(*arena, block);
    EXPECT_TRUE(SegregatedFit::arena_is_empty(*arena));
    // A remainder of 16 bytes cannot hold a block: it stays in the taken one.
    block = f.fit.take(whole - 16, 16, BlockUse::Slab);
    ASSERT_NE(block, nullptr);
    EXPECT_EQ(SegregatedFit::usable_size(block), whole);
    f.fit.give(*arena, block);
    // A remainder of 32 bytes is a free block of 16.
    block = f.fit.take(whole - 32, 16, BlockUse::Slab);
    EXPECT_EQ(SegregatedFit::usable_size(block), whole - 32);
    EXPECT_EQ(f.fit.totals().free_bytes, 16u);
    EXPECT_TRUE(holds(f.fit));
    // Size 0 is the minimum block; sizes round up to granules.
    void* smallest = f.fit.take(0, 1, BlockUse::Checked);
    ASSERT_NE(smallest, nullptr);
    EXPECT_EQ(SegregatedFit::usable_size(smallest), kMinUsable);
    EXPECT_TRUE(holds(f.fit));
    f.fit.give(*arena, smallest);
    f.fit.give(*arena, block);
    EXPECT_TRUE(SegregatedFit::arena_is_empty(*arena));
    EXPECT_TRUE(holds(f.fit));
    // Requests beyond any arena of the fit fail at once.
    EXPECT_EQ(f.fit.take(64 * kKiB, 16, BlockUse::Medium), nullptr);
    EXPECT_EQ(f.fit.take(~size_t{0}, 16, BlockUse::Medium), nullptr);
    EXPECT_EQ(f.fit.take(16, size_t{1} << 40, BlockUse::Medium), nullptr);
    EXPECT_TRUE(holds(f.fit));
}

// Six neighbours A B C D E F (b[0..5]), taken in order; the arena's free rest follows F.
TEST(SegregatedFit, MergesInAllFourNeighbourCases) {
    Fit f(4 * kKiB);
    Arena* arena = f.add(4 * kKiB);
    unsigned char* b[6];
    for (unsigned char*& block : b) {
        block = static_cast<unsigned char*>(f.fit.take(96, 16, BlockUse::Medium));
        ASSERT_NE(block, nullptr);
    }
    for (int i = 0; i + 1 < 6; ++i) {
        ASSERT_EQ(b[i] + 96 + kBlockHeaderBytes, b[i + 1]); // physically adjacent
    }
    const size_t before = blocks_of(f.fit).size();
    // Neither neighbour free: B alone becomes free.
    f.fit.give(*arena, b[1]);
    ASSERT_TRUE(holds(f.fit));
    EXPECT_EQ(blocks_of(f.fit).size(), before);
    EXPECT_EQ(SegregatedFit::use_of(b[1]), BlockUse::Free);
    // Previous free (B), next taken (D): C joins B.
    f.fit.give(*arena, b[2]);
    ASSERT_TRUE(holds(f.fit));
    EXPECT_EQ(blocks_of(f.fit).size(), before - 1);
    EXPECT_EQ(SegregatedFit::usable_size(b[1]), 2 * 96 + kBlockHeaderBytes);
    // Previous taken (E), next free (the arena's rest): F absorbs the rest.
    const size_t rest = SegregatedFit::usable_size(b[5] + 96 + kBlockHeaderBytes);
    f.fit.give(*arena, b[5]);
    ASSERT_TRUE(holds(f.fit));
    EXPECT_EQ(blocks_of(f.fit).size(), before - 2);
    EXPECT_EQ(SegregatedFit::usable_size(b[5]), 96 + kBlockHeaderBytes + rest);
    // Previous free (B+C), next taken (E): D joins them.
    f.fit.give(*arena, b[3]);
    ASSERT_TRUE(holds(f.fit));
    EXPECT_EQ(blocks_of(f.fit).size(), before - 3);
    // Both free (B..D before, F+rest after): E and both sides become one block.
    f.fit.give(*arena, b[4]);
    ASSERT_TRUE(holds(f.fit));
    EXPECT_EQ(blocks_of(f.fit).size(), 2u);
    EXPECT_EQ(SegregatedFit::usable_size(b[1]), 5 * 96 + 5 * kBlockHeaderBytes + rest);
    // A, the arena's first block (no predecessor), with its next free: the arena is whole.
    f.fit.give(*arena, b[0]);
    ASSERT_TRUE(holds(f.fit));
    EXPECT_TRUE(SegregatedFit::arena_is_empty(*arena));
    EXPECT_EQ(f.fit.totals().free_bytes, fresh_usable(4 * kKiB));
}

TEST(SegregatedFit, AlignedTakesUpToOneMiB) {
    Fit f(32 * kMiB);
    Arena* arena = f.add(32 * kMiB);
    ASSERT_NE(arena, nullptr);
    std::vector<void*> taken;
    for (size_t alignment = 16; alignment <= 1 * kMiB; alignment *= 2) {
        for (size_t size : {size_t{0}, size_t{16}, size_t{100}, alignment, alignment + 48}) {
            void* block = f.fit.take(size, alignment, BlockUse::Medium);
            ASSERT_NE(block, nullptr)
                << size << " at " << alignment << ", free " << f.fit.totals().free_bytes;
            EXPECT_EQ(reinterpret_cast<uintptr_t>(block) % alignment, 0u);
            EXPECT_GE(SegregatedFit::usable_size(block), size);
            __builtin_memset(block, 0x5A, size);
            ASSERT_TRUE(holds(f.fit)) << size << " at " << alignment;
            taken.push_back(block);
        }
    }
    for (void* block : taken) {
        f.fit.give(*arena, block);
        ASSERT_TRUE(holds(f.fit));
    }
    EXPECT_TRUE(SegregatedFit::arena_is_empty(*arena));
}

// 1 GiB alignment in a 2 GiB arena of reserved, mostly untouched address space.
TEST(SegregatedFit, AlignsToOneGiB) {
    const size_t bytes = 2 * kGiB + 64 * kKiB;
    void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (memory == MAP_FAILED) {
        GTEST_SKIP() << "no 2 GiB of address space";
    }
    Fit f(4 * kGiB);
    Arena* arena = f.fit.add_arena(memory, bytes, nullptr);
    ASSERT_NE(arena, nullptr);
    void* block = f.fit.take(4096, kGiB, BlockUse::Medium);
    ASSERT_NE(block, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(block) % kGiB, 0u);
    EXPECT_TRUE(holds(f.fit));
    const SegregatedFit::Found found = SegregatedFit::find(*arena, block, 0);
    EXPECT_EQ(found.block, block);
    f.fit.give(*arena, block);
    EXPECT_TRUE(SegregatedFit::arena_is_empty(*arena));
    EXPECT_TRUE(holds(f.fit));
    f.fit.remove_arena(*arena);
    munmap(memory, bytes);
}

TEST(SegregatedFit, EmptyArenasAreRemovedAndTheOthersStay) {
    Fit f(64 * kKiB);
    Arena* first = f.add(8 * kKiB);
    Arena* second = f.add(64 * kKiB);
    Arena* third = f.add(1 * kKiB);
    ASSERT_TRUE(first && second && third);
    void* big = f.fit.take(20 * kKiB, 16, BlockUse::Medium); // only the second holds it
    ASSERT_NE(big, nullptr);
    EXPECT_FALSE(SegregatedFit::arena_is_empty(*second));
    EXPECT_EQ(SegregatedFit::find(*second, big, 0).block, big);
    f.fit.remove_arena(*first);
    ASSERT_TRUE(holds(f.fit));
    EXPECT_EQ(f.fit.totals().arenas, 2u);
    EXPECT_EQ(f.fit.first_arena(), second);
    f.fit.remove_arena(*third);
    ASSERT_TRUE(holds(f.fit));
    f.fit.give(*second, big);
    EXPECT_TRUE(SegregatedFit::arena_is_empty(*second));
    f.fit.remove_arena(*second);
    ASSERT_TRUE(holds(f.fit));
    EXPECT_EQ(f.fit.totals().arenas, 0u);
    EXPECT_EQ(f.fit.totals().free_bytes, 0u);
    EXPECT_EQ(f.fit.take(16, 16, BlockUse::Medium), nullptr);
    // The memory is the caller's again: the same span can be an arena again.
    EXPECT_EQ(f.fit.add_arena(first, 8 * kKiB, nullptr), first);
    EXPECT_TRUE(holds(f.fit));
}

TEST(SegregatedFit, FindUsesTheStartBitmap) {
    Fit f(64 * kKiB);
    Arena* arena = f.add(64 * kKiB);
    auto* small = static_cast<unsigned char*>(f.fit.take(48, 16, BlockUse::Slab));
    auto* large = static_cast<unsigned char*>(f.fit.take(8 * kKiB, 16, BlockUse::Medium));
    auto* after = static_cast<unsigned char*>(f.fit.take(32, 16, BlockUse::Checked));
    ASSERT_TRUE(small && large && after);
    f.fit.give(*arena, after); // the rest of the arena is one free block from here on
    ASSERT_TRUE(holds(f.fit));

    // A block start, with no reach at all.
    SegregatedFit::Found found = SegregatedFit::find(*arena, large, 0);
    EXPECT_EQ(found.block, large);
    EXPECT_EQ(found.usable, 8 * kKiB);
    EXPECT_EQ(found.use, BlockUse::Medium);
    // Interior, near: found with a small reach.
    found = SegregatedFit::find(*arena, small + 47, 47);
    EXPECT_EQ(found.block, small);
    EXPECT_EQ(found.use, BlockUse::Slab);
    EXPECT_EQ(SegregatedFit::find(*arena, small + 47, 46).block, nullptr);
    // Interior, far: not within a small reach, found with a large one.
    unsigned char* far = large + 8 * kKiB - 1;
    EXPECT_EQ(SegregatedFit::find(*arena, far, 1 * kKiB).block, nullptr);
    EXPECT_EQ(SegregatedFit::find(*arena, far, 8 * kKiB - 2).block, nullptr);
    EXPECT_EQ(SegregatedFit::find(*arena, far, 8 * kKiB - 1).block, large);
    EXPECT_EQ(SegregatedFit::find(*arena, far, ~size_t{0}).block, large);
    // Into a free block.
    found = SegregatedFit::find(*arena, after + 100, 200);
    EXPECT_EQ(found.block, after); // the free rest starts where `after` started
    EXPECT_EQ(found.use, BlockUse::Free);
    // The arena's own header and bitmap, and a block's header: no block.
    const auto* base = reinterpret_cast<const unsigned char*>(SegregatedFit::arena_begin(*arena));
    for (size_t offset = 0; offset < SegregatedFit::arena_overhead(64 * kKiB); offset += 8) {
        EXPECT_EQ(SegregatedFit::find(*arena, base + offset, ~size_t{0}).block, nullptr) << offset;
    }
    EXPECT_EQ(SegregatedFit::find(*arena, large - 1, ~size_t{0}).block, nullptr);
    EXPECT_EQ(SegregatedFit::find(*arena, large - kBlockHeaderBytes, ~size_t{0}).block, nullptr);
    // The end sentinel's header.
    const auto end = SegregatedFit::arena_end(*arena);
    EXPECT_EQ(SegregatedFit::find(*arena, reinterpret_cast<void*>(end - 1), ~size_t{0}).block,
              nullptr);
    EXPECT_TRUE(holds(f.fit));
}

TEST(SegregatedFit, FindIsNotFooledByAForgedHeader) {
    Fit f(64 * kKiB);
    Arena* arena = f.add(64 * kKiB);
    auto* victim = static_cast<unsigned char*>(f.fit.take(1024, 16, BlockUse::Medium));
    ASSERT_NE(victim, nullptr);
    // Data that looks exactly like the header of a taken 64-byte block, at a granule boundary.
    unsigned char* forged = victim + 256;
    const fit_detail::BlockHeader fake{0, 64 | static_cast<size_t>(BlockUse::Medium)};
    __builtin_memcpy(forged, &fake, sizeof(fake));
    unsigned char* fake_start = forged + kBlockHeaderBytes;
    for (unsigned char* at : {fake_start, fake_start + 8, fake_start + 63}) {
        for (size_t reach : {size_t{0}, size_t{64}, size_t{2048}, ~size_t{0}}) {
            const SegregatedFit::Found found = SegregatedFit::find(*arena, at, reach);
            EXPECT_NE(found.block, fake_start);
            if (found.block != nullptr) {
                EXPECT_EQ(found.block, victim);
                EXPECT_EQ(found.usable, 1024u);
            }
        }
    }
    EXPECT_EQ(SegregatedFit::find(*arena, fake_start, 2048).block, victim);
    EXPECT_TRUE(holds(f.fit)); // the walk follows real headers only
    f.fit.give(*arena, victim);
    EXPECT_TRUE(holds(f.fit));
    EXPECT_TRUE(SegregatedFit::arena_is_empty(*arena));
}

TEST(SegregatedFit, ExhaustionReturnsNullAndKeepsTheState) {
    Fit f(32 * kKiB);
    Arena* small = f.add(1 * kKiB);
    Arena* large = f.add(32 * kKiB);
    ASSERT_TRUE(small && large);
    std::vector<void*> taken;
    for (size_t size : {size_t{4000}, size_t{700}, size_t{100}, size_t{16}}) {
        while (void* block = f.fit.take(size, 16, BlockUse::Medium)) {
            taken.push_back(block);
        }
        ASSERT_TRUE(holds(f.fit)) << size;
    }
    EXPECT_EQ(f.fit.totals().free_bytes, 0u);
    EXPECT_EQ(f.fit.take(0, 16, BlockUse::Medium), nullptr);
    EXPECT_EQ(f.fit.take(16, 256, BlockUse::Medium), nullptr);
    EXPECT_TRUE(holds(f.fit));
    for (void* block : taken) {
        const auto at = reinterpret_cast<uintptr_t>(block);
        Arena* arena =
            at < SegregatedFit::arena_end(*small) && at > SegregatedFit::arena_begin(*small)
                ? small
                : large;
        f.fit.give(*arena, block);
    }
    EXPECT_TRUE(holds(f.fit));
    EXPECT_TRUE(SegregatedFit::arena_is_empty(*small));
    EXPECT_TRUE(SegregatedFit::arena_is_empty(*large));
}

// The randomized model test.
struct Live {
    unsigned char* start;
    size_t size;
    size_t arena;
    uint8_t pattern;
};

// The pattern byte `i` of a block holds: never 0xA5 (the fresh memory) for most bytes.
uint8_t pattern_at(uint8_t pattern, size_t i) {
    return static_cast<uint8_t>(pattern + i * 7 + (i >> 8));
}

void fill(const Live& live) {
    for (size_t i = 0; i < live.size; ++i) {
        live.start[i] = pattern_at(live.pattern, i);
    }
}

::testing::AssertionResult intact(const Live& live) {
    for (size_t i = 0; i < live.size; ++i) {
        if (live.start[i] != pattern_at(live.pattern, i)) {
            return ::testing::AssertionFailure()
                   << "byte " << i << " of a " << live.size << "-byte block damaged";
        }
    }
    return ::testing::AssertionSuccess();
}

size_t random_size(std::mt19937_64& random) {
    const unsigned bucket = static_cast<unsigned>(random() % 100);
    if (bucket < 60) {
        return random() % 257;
    }
    if (bucket < 90) {
        return random() % 2049;
    }
    if (bucket < 98) {
        return random() % (16 * kKiB);
    }
    return random() % (200 * kKiB);
}

size_t random_alignment(std::mt19937_64& random) {
    const unsigned bucket = static_cast<unsigned>(random() % 100);
    return bucket < 75 ? 16 : size_t{1} << (random() % 13);
}

TEST(SegregatedFit, RandomTakesAndGivesMatchTheModel) {
    const uint64_t seed = test::seed_from_environment(20261125);
    std::printf("seed %llu (set BEDROCK_TEST_SEED to repeat)\n",
                static_cast<unsigned long long>(seed));
    std::mt19937_64 random(seed);
    const size_t arena_sizes[] = {1 * kKiB, 32 * kKiB, 4 * kKiB, 256 * kKiB, 1008};
    Fit f(256 * kKiB);
    std::vector<void*> spans;
    std::vector<Arena*> arenas;
    for (size_t bytes : arena_sizes) {
        spans.push_back(f.memory.get(bytes, 64 * kKiB)); // placement repeats with the seed
        arenas.push_back(f.fit.add_arena(spans.back(), bytes, &spans.back()));
        ASSERT_NE(arenas.back(), nullptr);
    }
    const auto arena_index = [&](const void* block) {
        const auto at = reinterpret_cast<uintptr_t>(block);
        for (size_t i = 0; i < arenas.size(); ++i) {
            if (arenas[i] != nullptr && at > SegregatedFit::arena_begin(*arenas[i]) &&
                at < SegregatedFit::arena_end(*arenas[i])) {
                return i;
            }
        }
        return arenas.size();
    };

    std::vector<Live> live;
    size_t takes = 0;
    size_t failed_takes = 0;
    constexpr size_t kOperations = 100000;
    for (size_t op = 0; op < kOperations; ++op) {
        const bool take = live.empty() || random() % 100 < (op < kOperations / 2 ? 60 : 45);
        if (take) {
            const size_t size = random_size(random);
            const size_t alignment = random_alignment(random);
            const auto use = static_cast<BlockUse>(1 + random() % 4); // Slab .. Guard
            auto* block = static_cast<unsigned char*>(f.fit.take(size, alignment, use));
            if (block == nullptr) {
                // Good fit: no free block on a list whose every block would fit.
                const size_t usable = size < 16 ? 16 : align_up(size, 16);
                const size_t needed =
                    alignment > 16 ? usable + alignment + kBlockHeaderBytes : usable;
                for (const Block& b : blocks_of(f.fit)) {
                    ASSERT_FALSE(b.use == BlockUse::Free &&
                                 fit_detail::list_of(b.usable) >=
                                     fit_detail::list_fitting(needed) &&
                                 b.usable >= needed)
                        << "op " << op << ": take(" << size << ", " << alignment
                        << ") failed with a free block of " << b.usable;
                }
                ++failed_takes;
            } else {
                ++takes;
                ASSERT_EQ(reinterpret_cast<uintptr_t>(block) % (alignment < 16 ? 16 : alignment),
                          0u);
                ASSERT_GE(SegregatedFit::usable_size(block), size);
                const size_t index = arena_index(block);
                ASSERT_LT(index, arenas.size());
                ASSERT_LE(reinterpret_cast<uintptr_t>(block) + SegregatedFit::usable_size(block),
                          SegregatedFit::arena_end(*arenas[index]));
                const SegregatedFit::Found found = SegregatedFit::find(*arenas[index], block, 0);
                ASSERT_EQ(found.block, block);
                ASSERT_EQ(found.use, use);
                live.push_back(Live{block, size, index, static_cast<uint8_t>(random())});
                fill(live.back());
            }
        } else {
            const size_t victim = random() % live.size();
            const Live gone = live[victim];
            live[victim] = live.back();
            live.pop_back();
            ASSERT_TRUE(intact(gone)) << "op " << op;
            // An interior pointer finds the block with enough reach.
            if (gone.size > 1) {
                const size_t offset = random() % gone.size;
                ASSERT_EQ(
                    SegregatedFit::find(*arenas[gone.arena], gone.start + offset, offset).block,
                    gone.start);
            }
            f.fit.give(*arenas[gone.arena], gone.start);
            // Sometimes an arena that became empty is removed and added again.
            if (SegregatedFit::arena_is_empty(*arenas[gone.arena]) && random() % 4 == 0) {
                f.fit.remove_arena(*arenas[gone.arena]);
                ASSERT_TRUE(holds(f.fit)) << "op " << op << " (removed)";
                arenas[gone.arena] =
                    f.fit.add_arena(spans[gone.arena], arena_sizes[gone.arena], &spans[gone.arena]);
            }
        }
        ASSERT_TRUE(holds(f.fit)) << "op " << op;
        if (op % 512 == 0) {
            for (const Live& l : live) {
                ASSERT_TRUE(intact(l)) << "op " << op;
            }
        }
    }
    std::printf("%zu takes, %zu failed, %zu live at the end\n", takes, failed_takes, live.size());
    EXPECT_GT(failed_takes, 0u); // the arenas were filled to the brim at times
    for (const Live& l : live) {
        ASSERT_TRUE(intact(l));
        f.fit.give(*arenas[l.arena], l.start);
        ASSERT_TRUE(holds(f.fit));
    }
    for (Arena* arena : arenas) {
        EXPECT_TRUE(SegregatedFit::arena_is_empty(*arena));
    }
}

} // namespace
} // namespace bedrock::heap
