// SPDX-License-Identifier: MIT
// SegregatedFit (alloc/heap/segregated_fit.h): storage size, arenas, merging in all four
// neighbour cases, aligned takes, find() from the start bitmap (and not fooled by forged headers
// or by garbage in start bitmap words its summary calls uninitialised, nor reading the arena's
// header), exhaustion, a randomized model test over arenas of several sizes with check() after
// every operation and every taken block's contents checked against a pattern, the same random
// operations on arenas of all-ones and all-zeros memory giving the same answers, and find()
// without a lock while another thread takes and gives.
#include <gtest/gtest.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <atomic>
#include <random>
#include <string>
#include <thread>
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

constexpr uintptr_t kTestSecret = 0x9e3779b97f4a7c15u | (uintptr_t{1} << 63);

// A fit with its storage.
struct Fit {
    explicit Fit(size_t max_arena_bytes) {
        const size_t bytes = SegregatedFit::storage_bytes(max_arena_bytes);
        fit.init(bytes != 0 ? memory.get(bytes) : nullptr, max_arena_bytes, kTestSecret);
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

// A free block's list links written after free (segregated_fit.h, hardened links): check()
// names it, no call follows it, and the next call that unlinks from that list rebuilds the lists
// and records the damage.
TEST(SegregatedFit, OverwrittenLinkIsNeverFollowedAndTheListsAreRebuilt) {
    Fit f(1 * kMiB);
    Arena* arena = f.add(1 * kMiB);
    ASSERT_NE(arena, nullptr);
    void* first = f.fit.take(1000, 16, BlockUse::Medium);
    void* keep = f.fit.take(1000, 16, BlockUse::Medium);
    void* second = f.fit.take(1000, 16, BlockUse::Medium);
    void* keep_too = f.fit.take(1000, 16, BlockUse::Medium);
    ASSERT_TRUE(first != nullptr && keep != nullptr && second != nullptr && keep_too != nullptr);
    EXPECT_FALSE(f.fit.give(*arena, first));
    EXPECT_FALSE(f.fit.give(*arena, second));
    ASSERT_TRUE(holds(f.fit));
    static unsigned char outside[64];
    static_cast<uintptr_t*>(second)[0] = reinterpret_cast<uintptr_t>(outside); // next
    static_cast<uintptr_t*>(second)[1] = reinterpret_cast<uintptr_t>(keep);    // prev
    EXPECT_FALSE(holds(f.fit));
    EXPECT_EQ(f.fit.take_damage().links, 0u);
    // 992 bytes: the smallest size of the list both freed blocks (1008 bytes) are on.
    auto* again = static_cast<unsigned char*>(f.fit.take(992, 16, BlockUse::Medium));
    ASSERT_NE(again, nullptr);
    EXPECT_TRUE(again == first || again == second);
    const SegregatedFit::Damage damage = f.fit.take_damage();
    EXPECT_EQ(damage.links, 1u);
    EXPECT_EQ(damage.first_link, reinterpret_cast<uintptr_t>(second));
    EXPECT_TRUE(holds(f.fit));
    void* other = f.fit.take(992, 16, BlockUse::Medium);
    EXPECT_TRUE(other == first || other == second);
    EXPECT_NE(other, again);
    EXPECT_TRUE(holds(f.fit));
}

// The seal of a free block stays broken while a neighbour's unlink updates its other link, and
// old links written back (a replay of what the block once held) do not pass either.
TEST(SegregatedFit, ANeighboursUnlinkKeepsItsDamageVisibleAndOldLinksDoNotPass) {
    Fit f(1 * kMiB);
    Arena* arena = f.add(1 * kMiB);
    ASSERT_NE(arena, nullptr);
    void* blocks[6];
    for (void*& block : blocks) {
        block = f.fit.take(1000, 16, BlockUse::Medium);
        ASSERT_NE(block, nullptr);
    }
    // One list, head first: blocks[4] -> blocks[2] -> blocks[0].
    for (int i = 0; i < 6; i += 2) {
        EXPECT_FALSE(f.fit.give(*arena, blocks[i]));
    }
    ASSERT_TRUE(holds(f.fit));
    auto* middle = static_cast<uintptr_t*>(blocks[2]);
    const uintptr_t old_links[3] = {middle[0], middle[1], middle[2]};
    static unsigned char outside[64];
    middle[0] = reinterpret_cast<uintptr_t>(outside); // next, written after free
    EXPECT_FALSE(holds(f.fit));
    // Taking the head rewrites the middle block's prev link and seal, not its next.
    EXPECT_EQ(f.fit.take(992, 16, BlockUse::Medium), blocks[4]);
    EXPECT_FALSE(holds(f.fit));
    EXPECT_EQ(f.fit.take_damage().links, 0u);
    // The next take reaches the damaged block: the lists are rebuilt, nothing is followed.
    void* again = f.fit.take(992, 16, BlockUse::Medium);
    EXPECT_TRUE(again == blocks[0] || again == blocks[2]);
    const SegregatedFit::Damage damage = f.fit.take_damage();
    EXPECT_EQ(damage.links, 1u);
    EXPECT_EQ(damage.first_link, reinterpret_cast<uintptr_t>(blocks[2]));
    ASSERT_TRUE(holds(f.fit));
    // The other one too, then all three back in another order (blocks[4] -> [0] -> [2]), and the
    // links the middle block held before are written back.
    void* other = f.fit.take(992, 16, BlockUse::Medium);
    EXPECT_TRUE(other != again && (other == blocks[0] || other == blocks[2]));
    for (int i : {2, 0, 4}) {
        f.fit.give(*arena, blocks[i]);
    }
    ASSERT_TRUE(holds(f.fit));
    for (int i = 0; i < 3; ++i) {
        middle[i] = old_links[i];
    }
    EXPECT_FALSE(holds(f.fit));
    EXPECT_EQ(f.fit.take(992, 16, BlockUse::Medium), blocks[4]);
    EXPECT_EQ(f.fit.take(992, 16, BlockUse::Medium), blocks[0]);
    EXPECT_EQ(f.fit.take_damage().links, 0u); // the middle block's links not followed yet
    EXPECT_EQ(f.fit.take(992, 16, BlockUse::Medium), blocks[2]);
    EXPECT_EQ(f.fit.take_damage().links, 1u);
    EXPECT_TRUE(holds(f.fit));
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
    // A summary bit cleared hides its word's start bits; one beyond the bitmap's 8 words is wrong.
    arena->summary_bits()[0] ^= uint64_t{1} << (granule / 64);
    expect_failure("start bits");
    arena->summary_bits()[0] ^= uint64_t{1} << (granule / 64);
    arena->summary_bits()[0] ^= uint64_t{1} << 8;
    expect_failure("summary");
    arena->summary_bits()[0] ^= uint64_t{1} << 8;
    // The arena header's kept addresses of its levels and first block.
    uint64_t* const start = arena->start;
    arena->start = start + 1;
    expect_failure("layout");
    arena->start = start;
    void* const first_block = arena->first;
    arena->first = static_cast<unsigned char*>(first_block) + 16;
    expect_failure("layout");
    arena->first = first_block;
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
    EXPECT_EQ(arena->owner, &owner_cookie);
    EXPECT_EQ(SegregatedFit::arena_end(*arena) - SegregatedFit::arena_begin(*arena), 1 * kKiB);
    const std::vector<Block> blocks = blocks_of(f.fit);
    ASSERT_EQ(blocks.size(), 1u);
    EXPECT_EQ(blocks[0].usable, fresh_usable(1 * kKiB));
    EXPECT_EQ(blocks[0].use, BlockUse::Free);
    EXPECT_EQ(f.fit.totals().free_bytes, fresh_usable(1 * kKiB));
    EXPECT_EQ(f.fit.totals().arenas, 1u);
    EXPECT_EQ(f.fit.totals().arena_bytes, 1 * kKiB);
    // Too small for a minimum block, or larger than the fit allows: refused, nothing changes.
    EXPECT_EQ(f.add(SegregatedFit::arena_overhead(64) + kMinBlockBytes - kGranule), nullptr);
    EXPECT_TRUE(holds(f.fit));
    EXPECT_NE(f.add(SegregatedFit::arena_overhead(64) + kMinBlockBytes), nullptr);
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
    // A remainder of 32 bytes cannot hold a block (its header and 3 links): it stays in the
    // taken one.
    block = f.fit.take(whole - 32, 16, BlockUse::Slab);
    ASSERT_NE(block, nullptr);
    EXPECT_EQ(SegregatedFit::usable_size(block), whole);
    f.fit.give(*arena, block);
    // A remainder of 48 bytes is a free block of 32.
    block = f.fit.take(whole - 48, 16, BlockUse::Slab);
    EXPECT_EQ(SegregatedFit::usable_size(block), whole - 48);
    EXPECT_EQ(f.fit.totals().free_bytes, 32u);
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

// A block freed between taken ones is taken again by the next request of its size, even where
// its list holds sizes above the request's (the search alone starts at the next list, whose
// every block fits, and split the arena's rest instead, leaving the hole: a program freeing and
// allocating one size grew into fresh memory every round). A head too small for the request is
// passed over for the search.
TEST(SegregatedFit, AFreedBlockIsTakenAgainByTheNextRequestOfItsSize) {
    constexpr size_t kSize = 40000; // inside its list: list_min_size(list_of(kSize)) < kSize
    static_assert(fit_detail::list_min_size(fit_detail::list_of(kSize)) < kSize);
    Fit f(kMiB);
    Arena* arena = f.add(kMiB);
    unsigned char* b[3];
    for (unsigned char*& block : b) {
        block = static_cast<unsigned char*>(f.fit.take(kSize, 16, BlockUse::Medium));
        ASSERT_NE(block, nullptr);
    }
    f.fit.give(*arena, b[1]);
    ASSERT_TRUE(holds(f.fit));
    EXPECT_EQ(f.fit.take(kSize, 16, BlockUse::Medium), b[1]);
    ASSERT_TRUE(holds(f.fit));
    // The hole is smaller than a request of its list: the rest of the arena serves it.
    f.fit.give(*arena, b[1]);
    void* larger = f.fit.take(kSize + 16, 16, BlockUse::Medium);
    ASSERT_NE(larger, nullptr);
    EXPECT_NE(larger, b[1]);
    EXPECT_EQ(SegregatedFit::use_of(b[1]), BlockUse::Free);
    ASSERT_TRUE(holds(f.fit));
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
    const SegregatedFit::Found found =
        SegregatedFit::find(SegregatedFit::bounds_of(*arena), block, 0);
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
    EXPECT_EQ(SegregatedFit::find(SegregatedFit::bounds_of(*second), big, 0).block, big);
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
    const ArenaBounds bounds = SegregatedFit::bounds_of(*arena);

    // A block start, with no reach at all.
    SegregatedFit::Found found = SegregatedFit::find(bounds, large, 0);
    EXPECT_EQ(found.block, large);
    EXPECT_EQ(found.usable, 8 * kKiB);
    EXPECT_EQ(found.use, BlockUse::Medium);
    // Interior, near: found with a small reach.
    found = SegregatedFit::find(bounds, small + 47, 47);
    EXPECT_EQ(found.block, small);
    EXPECT_EQ(found.use, BlockUse::Slab);
    EXPECT_EQ(SegregatedFit::find(bounds, small + 47, 46).block, nullptr);
    // Interior, far: not within a small reach, found with a large one.
    unsigned char* far = large + 8 * kKiB - 1;
    EXPECT_EQ(SegregatedFit::find(bounds, far, 1 * kKiB).block, nullptr);
    EXPECT_EQ(SegregatedFit::find(bounds, far, 8 * kKiB - 2).block, nullptr);
    EXPECT_EQ(SegregatedFit::find(bounds, far, 8 * kKiB - 1).block, large);
    EXPECT_EQ(SegregatedFit::find(bounds, far, ~size_t{0}).block, large);
    // Into a free block.
    found = SegregatedFit::find(bounds, after + 100, 200);
    EXPECT_EQ(found.block, after); // the free rest starts where `after` started
    EXPECT_EQ(found.use, BlockUse::Free);
    // The arena's own header and bitmap, and a block's header: no block.
    const auto* base = reinterpret_cast<const unsigned char*>(SegregatedFit::arena_begin(*arena));
    for (size_t offset = 0; offset < SegregatedFit::arena_overhead(64 * kKiB); offset += 8) {
        EXPECT_EQ(SegregatedFit::find(bounds, base + offset, ~size_t{0}).block, nullptr) << offset;
    }
    EXPECT_EQ(SegregatedFit::find(bounds, large - 1, ~size_t{0}).block, nullptr);
    EXPECT_EQ(SegregatedFit::find(bounds, large - kBlockHeaderBytes, ~size_t{0}).block, nullptr);
    // The end sentinel's header.
    const auto end = SegregatedFit::arena_end(*arena);
    EXPECT_EQ(SegregatedFit::find(bounds, reinterpret_cast<void*>(end - 1), ~size_t{0}).block,
              nullptr);
    EXPECT_TRUE(holds(f.fit));
}

TEST(SegregatedFit, FindIsNotFooledByAForgedHeader) {
    Fit f(64 * kKiB);
    Arena* arena = f.add(64 * kKiB);
    auto* victim = static_cast<unsigned char*>(f.fit.take(1024, 16, BlockUse::Medium));
    ASSERT_NE(victim, nullptr);
    const ArenaBounds bounds = SegregatedFit::bounds_of(*arena);
    // Data that looks exactly like the header of a taken 64-byte block, at a granule boundary.
    unsigned char* forged = victim + 256;
    const fit_detail::BlockHeader fake{0, 64 | static_cast<size_t>(BlockUse::Medium)};
    __builtin_memcpy(forged, &fake, sizeof(fake));
    unsigned char* fake_start = forged + kBlockHeaderBytes;
    for (unsigned char* at : {fake_start, fake_start + 8, fake_start + 63}) {
        for (size_t reach : {size_t{0}, size_t{64}, size_t{2048}, ~size_t{0}}) {
            const SegregatedFit::Found found = SegregatedFit::find(bounds, at, reach);
            EXPECT_NE(found.block, fake_start);
            if (found.block != nullptr) {
                EXPECT_EQ(found.block, victim);
                EXPECT_EQ(found.usable, 1024u);
            }
        }
    }
    EXPECT_EQ(SegregatedFit::find(bounds, fake_start, 2048).block, victim);
    EXPECT_TRUE(holds(f.fit)); // the walk follows real headers only
    f.fit.give(*arena, victim);
    EXPECT_TRUE(holds(f.fit));
    EXPECT_TRUE(SegregatedFit::arena_is_empty(*arena));
}

// A lookup without the lock is given the arena's bounds (by the caller's page tags) and reads
// nothing of its header: with the header's kept places and length overwritten, as the memory's
// next owner may overwrite them once the arena has been given back, find(), find_near() and
// is_block_start() still answer from the start bitmap alone (following the header would fault).
TEST(SegregatedFit, LookupsByBoundsNeverReadTheArenasHeader) {
    Fit f(256 * kKiB);
    Arena* arena = f.add(256 * kKiB);
    auto* slab = static_cast<unsigned char*>(f.fit.take(4 * kKiB, 16, BlockUse::Slab));
    auto* medium = static_cast<unsigned char*>(f.fit.take(100 * kKiB, 16, BlockUse::Medium));
    ASSERT_TRUE(slab && medium);
    const ArenaBounds bounds = SegregatedFit::bounds_of(*arena);
    const Arena kept = *arena;
    arena->summary = reinterpret_cast<uint64_t*>(uintptr_t{16});
    arena->start = reinterpret_cast<uint64_t*>(uintptr_t{0xdead000000000000});
    arena->first = nullptr;
    arena->bytes = ~size_t{0} - 15;

    EXPECT_TRUE(SegregatedFit::is_block_start(bounds, slab));
    EXPECT_TRUE(SegregatedFit::is_block_start(bounds, medium));
    EXPECT_FALSE(SegregatedFit::is_block_start(bounds, slab + 16));
    EXPECT_EQ(SegregatedFit::find_near(bounds, slab + 4000, 4 * kKiB).block, slab);
    EXPECT_EQ(SegregatedFit::find(bounds, slab + 4000, 4 * kKiB).block, slab);
    const SegregatedFit::Found found =
        SegregatedFit::find_near(bounds, medium + 90 * kKiB, ~size_t{0});
    EXPECT_EQ(found.block, medium);
    EXPECT_EQ(found.use, BlockUse::Medium);
    EXPECT_EQ(
        SegregatedFit::find(bounds, reinterpret_cast<unsigned char*>(arena) + 8, ~size_t{0}).block,
        nullptr);

    *arena = kept;
    EXPECT_TRUE(holds(f.fit));
}

// The block whose usable bytes hold `at`, from a walk (null for any header or arena metadata).
const Block* block_holding(const std::vector<Block>& blocks, const unsigned char* at) {
    for (const Block& block : blocks) {
        if (at >= block.start && at < block.start + block.usable) {
            return &block;
        }
    }
    return nullptr;
}

// add_arena() zeroes only the summary. Start bitmap words full of ones that it calls
// uninitialised must read as zeros: find() answers exactly as a walk of the blocks does, at every
// 8th byte of the arena, also once blocks start in some of those words.
TEST(SegregatedFit, FindIsNotFooledByGarbageInUninitialisedBitmapWords) {
    constexpr size_t kBytes = 1 * kMiB;
    Fit f(kBytes);
    auto* base = static_cast<unsigned char*>(f.memory.get(kBytes, 4096));
    __builtin_memset(base, 0xFF, kBytes);
    Arena* arena = f.fit.add_arena(base, kBytes, nullptr);
    ASSERT_NE(arena, nullptr);
    ASSERT_TRUE(holds(f.fit));
    const auto expect_find_matches_walk = [&](const char* when) {
        const std::vector<Block> blocks = blocks_of(f.fit);
        for (size_t offset = 0; offset < kBytes; offset += 8) {
            const unsigned char* at = base + offset;
            const Block* expected = block_holding(blocks, at);
            const SegregatedFit::Found found =
                SegregatedFit::find(SegregatedFit::bounds_of(*arena), at, ~size_t{0});
            ASSERT_EQ(found.block, expected != nullptr ? expected->start : nullptr)
                << when << ", offset " << offset;
            if (expected == nullptr) {
                continue;
            }
            ASSERT_EQ(found.usable, expected->usable) << when << ", offset " << offset;
            ASSERT_EQ(found.use, expected->use) << when << ", offset " << offset;
            // Just enough reach finds it, one byte less does not.
            const auto distance = static_cast<size_t>(at - expected->start);
            ASSERT_EQ(SegregatedFit::find(SegregatedFit::bounds_of(*arena), at, distance).block,
                      expected->start);
            if (distance > 0) {
                ASSERT_EQ(
                    SegregatedFit::find(SegregatedFit::bounds_of(*arena), at, distance - 1).block,
                    nullptr);
            }
        }
    };
    // Fresh: one free block; its header and the arena's metadata give null.
    ASSERT_EQ(blocks_of(f.fit).size(), 1u);
    expect_find_matches_walk("fresh");
    // A block 256 KiB-aligned, far into the arena: a free gap before it, the free rest after.
    void* far = f.fit.take(64, 256 * kKiB, BlockUse::Slab);
    ASSERT_NE(far, nullptr);
    ASSERT_TRUE(holds(f.fit));
    ASSERT_EQ(blocks_of(f.fit).size(), 3u);
    expect_find_matches_walk("after an aligned take");
    f.fit.give(*arena, far);
    ASSERT_TRUE(holds(f.fit));
    EXPECT_TRUE(SegregatedFit::arena_is_empty(*arena));
    expect_find_matches_walk("given back");
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
                const size_t usable = size < kMinUsable ? kMinUsable : align_up(size, 16);
                const size_t needed =
                    alignment > 16 ? usable + alignment + kMinBlockBytes - kGranule : usable;
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
                const SegregatedFit::Found found =
                    SegregatedFit::find(SegregatedFit::bounds_of(*arenas[index]), block, 0);
                ASSERT_EQ(found.block, block);
                ASSERT_EQ(found.use, use);
                // The lock-held re-check agrees: a start at the block, none 16 bytes in.
                ASSERT_TRUE(
                    SegregatedFit::is_block_start(SegregatedFit::bounds_of(*arenas[index]), block));
                ASSERT_FALSE(SegregatedFit::is_block_start(SegregatedFit::bounds_of(*arenas[index]),
                                                           block + 16));
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
                ASSERT_EQ(SegregatedFit::find(SegregatedFit::bounds_of(*arenas[gone.arena]),
                                              gone.start + offset, offset)
                              .block,
                          gone.start);
            }
            const bool emptied = f.fit.give(*arenas[gone.arena], gone.start);
            ASSERT_EQ(emptied, SegregatedFit::arena_is_empty(*arenas[gone.arena])) << "op " << op;
            ASSERT_FALSE(SegregatedFit::is_block_start(
                             SegregatedFit::bounds_of(*arenas[gone.arena]), gone.start) &&
                         SegregatedFit::use_of(gone.start) != BlockUse::Free)
                << "op " << op;
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

// add_arena() zeroes only the summary, so an arena's memory may hold anything before it is
// added. Two fits run the same random operations, one over arenas filled with 0x00 (taken blocks
// too), the other with 0xFF: every take lands at the same offset, check() holds after every
// operation, and find() gives the same answer at random addresses and reaches. Emptied arenas are
// sometimes removed, refilled and added again.
TEST(SegregatedFit, GarbageArenaBehavesLikeAZeroedOne) {
    const uint64_t seed = test::seed_from_environment(0xFF00FF);
    std::printf("seed %llu (set BEDROCK_TEST_SEED to repeat)\n",
                static_cast<unsigned long long>(seed));
    std::mt19937_64 random(seed);
    // The last spans three top words of its bitmaps (4 MiB each).
    const size_t arena_sizes[] = {1008, 4 * kKiB, 200 * kKiB, 512 * kKiB, 9 * kMiB + 4 * kKiB};
    constexpr size_t kArenas = sizeof(arena_sizes) / sizeof(arena_sizes[0]);
    constexpr int kSides = 2;
    const unsigned char fills[kSides] = {0x00, 0xFF};
    Fit zeroed(arena_sizes[kArenas - 1]);
    Fit garbage(arena_sizes[kArenas - 1]);
    Fit* fits[kSides] = {&zeroed, &garbage};
    unsigned char* spans[kSides][kArenas];
    Arena* arenas[kSides][kArenas];
    for (int side = 0; side < kSides; ++side) {
        for (size_t i = 0; i < kArenas; ++i) {
            spans[side][i] =
                static_cast<unsigned char*>(fits[side]->memory.get(arena_sizes[i], 64 * kKiB));
            __builtin_memset(spans[side][i], fills[side], arena_sizes[i]);
            arenas[side][i] = fits[side]->fit.add_arena(spans[side][i], arena_sizes[i], nullptr);
            ASSERT_NE(arenas[side][i], nullptr);
        }
    }
    // A block of side 0 as (arena, offset), the same on both sides.
    struct Taken {
        size_t arena;
        size_t offset;
    };
    const auto arena_index = [&](const void* block) {
        const auto* at = static_cast<const unsigned char*>(block);
        for (size_t i = 0; i < kArenas; ++i) {
            if (at > spans[0][i] && at < spans[0][i] + arena_sizes[i]) {
                return i;
            }
        }
        return kArenas;
    };
    std::vector<Taken> taken;
    constexpr size_t kOperations = 20000;
    for (size_t op = 0; op < kOperations; ++op) {
        if (taken.empty() || random() % 100 < (op < kOperations / 2 ? 60 : 40)) {
            const size_t size = random_size(random);
            const size_t alignment = random_alignment(random);
            const auto use = static_cast<BlockUse>(1 + random() % 4);
            auto* block = static_cast<unsigned char*>(zeroed.fit.take(size, alignment, use));
            auto* other = static_cast<unsigned char*>(garbage.fit.take(size, alignment, use));
            ASSERT_EQ(block == nullptr, other == nullptr) << "op " << op;
            if (block != nullptr) {
                const size_t index = arena_index(block);
                ASSERT_LT(index, kArenas);
                const auto offset = static_cast<size_t>(block - spans[0][index]);
                ASSERT_EQ(other, spans[1][index] + offset) << "op " << op;
                __builtin_memset(block, fills[0], size);
                __builtin_memset(other, fills[1], size);
                taken.push_back(Taken{index, offset});
            }
        } else {
            const size_t victim = random() % taken.size();
            const Taken gone = taken[victim];
            taken[victim] = taken.back();
            taken.pop_back();
            const bool remove = random() % 4 == 0;
            for (int side = 0; side < kSides; ++side) {
                Arena*& arena = arenas[side][gone.arena];
                fits[side]->fit.give(*arena, spans[side][gone.arena] + gone.offset);
                if (remove && SegregatedFit::arena_is_empty(*arena)) {
                    fits[side]->fit.remove_arena(*arena);
                    __builtin_memset(spans[side][gone.arena], fills[side], arena_sizes[gone.arena]);
                    arena = fits[side]->fit.add_arena(spans[side][gone.arena],
                                                      arena_sizes[gone.arena], nullptr);
                    ASSERT_NE(arena, nullptr);
                }
            }
        }
        ASSERT_TRUE(holds(zeroed.fit)) << "op " << op;
        ASSERT_TRUE(holds(garbage.fit)) << "op " << op;
        for (int probe = 0; probe < 16; ++probe) {
            const size_t i = random() % kArenas;
            const size_t offset = random() % arena_sizes[i];
            const size_t reaches[] = {0, random() % (4 * kKiB), ~size_t{0}};
            const size_t reach = reaches[random() % 3];
            const SegregatedFit::Found a = SegregatedFit::find(
                SegregatedFit::bounds_of(*arenas[0][i]), spans[0][i] + offset, reach);
            const SegregatedFit::Found b = SegregatedFit::find(
                SegregatedFit::bounds_of(*arenas[1][i]), spans[1][i] + offset, reach);
            ASSERT_EQ(a.block == nullptr, b.block == nullptr) << "op " << op << ", " << offset;
            if (a.block != nullptr) {
                ASSERT_EQ(a.block - spans[0][i], b.block - spans[1][i]) << "op " << op;
                ASSERT_EQ(a.usable, b.usable) << "op " << op;
                ASSERT_EQ(a.use, b.use) << "op " << op;
            }
        }
    }
    const std::vector<Block> a = blocks_of(zeroed.fit);
    const std::vector<Block> b = blocks_of(garbage.fit);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(a[i].usable, b[i].usable);
        EXPECT_EQ(a[i].use, b[i].use);
    }
    std::printf("%zu operations, %zu blocks taken at the end\n", kOperations, taken.size());
}

// The free() fast path: find() without the lock on blocks that stay taken (pinned), while
// another thread takes and gives the other blocks of the same arena, rewriting the start bitmap
// and summary words and the headers around the pinned blocks. The arena's memory starts as all
// ones, so words get initialised while the reader runs. (The writer is the only one here, so it
// needs no lock.)
TEST(SegregatedFit, FindWithoutTheLockWhileAnotherThreadTakesAndGives) {
    const uint64_t seed = test::seed_from_environment(4242);
    std::printf("seed %llu (set BEDROCK_TEST_SEED to repeat)\n",
                static_cast<unsigned long long>(seed));
    std::mt19937_64 random(seed);
    constexpr size_t kBytes = 512 * kKiB;
    Fit f(kBytes);
    auto* base = static_cast<unsigned char*>(f.memory.get(kBytes, 4096));
    __builtin_memset(base, 0xFF, kBytes);
    Arena* arena = f.fit.add_arena(base, kBytes, nullptr);
    ASSERT_NE(arena, nullptr);
    // Pinned blocks of up to 4 KiB spread over the arena, each followed by free space.
    std::vector<Block> pinned;
    std::vector<void*> spacers;
    while (pinned.size() < 64) {
        const auto use = static_cast<BlockUse>(1 + random() % 4);
        auto* block = static_cast<unsigned char*>(f.fit.take(16 + random() % 4096, 16, use));
        void* spacer = f.fit.take(16 + random() % 4096, 16, BlockUse::Medium);
        ASSERT_TRUE(block && spacer);
        pinned.push_back(Block{block, SegregatedFit::usable_size(block), use});
        spacers.push_back(spacer);
    }
    for (void* spacer : spacers) {
        f.fit.give(*arena, spacer);
    }
    ASSERT_TRUE(holds(f.fit));

    std::atomic<bool> stop{false};
    std::atomic<size_t> finds{0};
    std::atomic<size_t> wrong{0};
    std::thread reader([&] {
        std::mt19937_64 reader_random(seed + 1);
        size_t count = 0;
        size_t mistakes = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            const Block& block = pinned[reader_random() % pinned.size()];
            const size_t offset = reader_random() % block.usable;
            const size_t reach = reader_random() % 2 == 0 ? offset : ~size_t{0};
            const SegregatedFit::Found found =
                SegregatedFit::find(SegregatedFit::bounds_of(*arena), block.start + offset, reach);
            if (found.block != block.start || found.usable != block.usable ||
                found.use != block.use) {
                ++mistakes;
            }
            ++count;
        }
        finds.store(count);
        wrong.store(mistakes);
    });
    std::vector<void*> churn;
    for (size_t op = 0; op < 200000; ++op) {
        if (churn.empty() || random() % 2 == 0) {
            if (void* block =
                    f.fit.take(random() % 2048, size_t{16} << (random() % 4), BlockUse::Medium)) {
                churn.push_back(block);
            }
        } else {
            const size_t victim = random() % churn.size();
            f.fit.give(*arena, churn[victim]);
            churn[victim] = churn.back();
            churn.pop_back();
        }
    }
    stop.store(true);
    reader.join();
    std::printf("%zu finds without the lock, %zu wrong\n", finds.load(), wrong.load());
    EXPECT_GT(finds.load(), 0u);
    EXPECT_EQ(wrong.load(), 0u);
    ASSERT_TRUE(holds(f.fit));
    for (void* block : churn) {
        f.fit.give(*arena, block);
    }
    for (const Block& block : pinned) {
        f.fit.give(*arena, block.start);
    }
    EXPECT_TRUE(holds(f.fit));
    EXPECT_TRUE(SegregatedFit::arena_is_empty(*arena));
}

} // namespace
} // namespace bedrock::heap
