// SPDX-License-Identifier: MIT
// Checked mode on the host: every misuse scenario (support/misuse_scenarios.h) at every level
// with its exact report, poisoning, the quarantine, realloc and heap_check() on damage, the
// leak report, guard pages (mprotect: real faults, caught with a signal handler) and a clean
// randomized run that must report nothing; the level refuses what is no level, from C++ and C.
#include <gtest/gtest.h>

#include <pthread.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bedrock/bedrock.h"
#include "bedrock/heap_checks.h"
#include "checked/checked_block.h"
#include "heap/heap_entry.h"
#include "heap/heap_state.h"
#include "heap_test_support.h"
#include "report/call_trace.h"
#include "support/guard_page_probe.h"
#include "support/misuse_scenarios.h"

namespace bedrock {
namespace {

// How reports reach the test: the platform (level Report, no hook) or the error hook.
enum class Delivery { Platform, Hook };

void record(void* context, const ErrorReport& report) {
    static_cast<std::vector<ErrorReport>*>(context)->push_back(report);
}

// A checked frames heap plus a second (region) heap, torn down with every page accounted for.
class CheckedHeapTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_free_before = m_frames.free_pages();
        m_heap = heap_create(m_frames.allocator());
        ASSERT_NE(m_heap, nullptr);
        m_other = heap_create_in_region(m_region.data(), m_region.size());
        ASSERT_NE(m_other, nullptr);
        ASSERT_TRUE(heap_set_check_level(*m_heap, CheckLevel::Report));
        test::clear_reports();
    }
    void TearDown() override {
        heap_flush_quarantine(*m_heap);
        EXPECT_TRUE(heap_check(*m_heap));
        EXPECT_EQ(heap_statistics(*m_heap).blocks_in_use, 0u);
        EXPECT_TRUE(heap_destroy(*m_heap));
        EXPECT_TRUE(heap_destroy(*m_other));
        EXPECT_EQ(m_frames.free_pages(), m_free_before) << "pages lost";
    }

    test::Frames m_frames{64 << 20};
    test::Region m_region{1 << 20};
    uint64_t m_free_before = 0;
    Heap* m_heap = nullptr;
    Heap* m_other = nullptr;
};

struct LevelCase {
    CheckLevel level;
    Delivery delivery;
};

class MisuseTest : public CheckedHeapTest,
                   public ::testing::WithParamInterface<std::tuple<size_t, LevelCase>> {};

TEST_P(MisuseTest, ExactReportAndNothingLost) {
    const test::MisuseScenario& scenario = test::kMisuseScenarios[std::get<0>(GetParam())];
    const LevelCase level = std::get<1>(GetParam());
    std::vector<ErrorReport> hooked;
    ASSERT_TRUE(heap_set_check_level(*m_heap, level.level));
    if (level.delivery == Delivery::Hook) {
        heap_set_error_hook(*m_heap, record, &hooked);
    }
    test::MisuseContext context{*m_heap, *m_other, level.level, {}, {}};
    test::ExpectedReport expected{};
    scenario.run(context, expected);
    test::free_leftovers(context);
    heap_flush_quarantine(*m_heap);
    heap_set_error_hook(*m_heap, nullptr, nullptr);

    const std::vector<ErrorReport>& reports =
        level.delivery == Delivery::Hook ? hooked : test::reports();
    if (level.delivery == Delivery::Hook) {
        EXPECT_EQ(test::report_count(), 0u) << "the hook must capture instead of printing";
    }
    if (level.level == CheckLevel::Off && !scenario.detected_when_off) {
        EXPECT_TRUE(reports.empty());
    } else {
        ASSERT_EQ(reports.size(), 1u);
        const char* mismatch = test::report_mismatch(reports[0], expected);
        EXPECT_EQ(mismatch, nullptr) << scenario.name << ": " << mismatch << " differs";
    }
    EXPECT_TRUE(heap_check(*m_heap));
}

std::string misuse_name(const ::testing::TestParamInfo<MisuseTest::ParamType>& info) {
    const LevelCase level = std::get<1>(info.param);
    const char* names[] = {"off", "report", "abort"};
    return std::string(test::kMisuseScenarios[std::get<0>(info.param)].name) + "_" +
           names[static_cast<int>(level.level)] + (level.delivery == Delivery::Hook ? "_hook" : "");
}

INSTANTIATE_TEST_SUITE_P(
    EveryScenario, MisuseTest,
    ::testing::Combine(::testing::Range(size_t{0}, test::kMisuseScenarioCount),
                       ::testing::Values(LevelCase{CheckLevel::Off, Delivery::Platform},
                                         LevelCase{CheckLevel::Report, Delivery::Platform},
                                         LevelCase{CheckLevel::Report, Delivery::Hook})),
    misuse_name);

// Level Abort: the report is delivered, then platform::panic stops the process.
class MisuseAbortTest : public CheckedHeapTest, public ::testing::WithParamInterface<size_t> {};

TEST_P(MisuseAbortTest, ReportsThenPanics) {
    const test::MisuseScenario& scenario = test::kMisuseScenarios[GetParam()];
    ASSERT_TRUE(heap_set_check_level(*m_heap, CheckLevel::Abort));
    const auto commit = [&] {
        test::MisuseContext context{*m_heap, *m_other, CheckLevel::Abort, {}, {}};
        test::ExpectedReport expected{};
        scenario.run(context, expected);
    };
    EXPECT_DEATH(commit(), "panic: heap: stopping at the first error");
    heap_set_check_level(*m_heap, CheckLevel::Report);
}

INSTANTIATE_TEST_SUITE_P(EveryScenario, MisuseAbortTest,
                         ::testing::Range(size_t{0}, test::kMisuseScenarioCount),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                             return std::string(test::kMisuseScenarios[info.param].name);
                         });

TEST_F(CheckedHeapTest, FreshAndFreedBlocksArePoisoned) {
    auto* block = static_cast<unsigned char*>(heap_allocate(*m_heap, 100));
    ASSERT_NE(block, nullptr);
    for (size_t i = 0; i < 100; ++i) {
        ASSERT_EQ(block[i], kFreshPoison) << i;
    }
    EXPECT_EQ(heap_usable_size(*m_heap, block), 100u);
    heap_free(*m_heap, block);
    for (size_t i = 0; i < 100; ++i) {
        ASSERT_EQ(block[i], kFreedPoison) << i; // still in quarantine
    }
    auto* grown = static_cast<unsigned char*>(heap_allocate(*m_heap, 10));
    std::memset(grown, 7, 10);
    grown = static_cast<unsigned char*>(heap_reallocate(*m_heap, grown, 50));
    ASSERT_NE(grown, nullptr);
    EXPECT_EQ(grown[9], 7);
    EXPECT_EQ(grown[10], kFreshPoison);
    heap_free(*m_heap, grown);
    EXPECT_EQ(test::report_count(), 0u);
}

// A pointer off a 16-byte boundary is misaligned-pointer for every call, as at level off, even
// inside a checked block (usable_size and realloc used to call it interior-pointer there).
TEST_F(CheckedHeapTest, AMisalignedPointerIsMisalignedForEveryCall) {
    for (const size_t size : {size_t{32}, size_t{5000}, size_t{2} << 20}) {
        auto* block = static_cast<unsigned char*>(heap_allocate(*m_heap, size));
        ASSERT_NE(block, nullptr);
        test::clear_reports();
        EXPECT_EQ(heap_usable_size(*m_heap, block + 8), 0u);
        EXPECT_EQ(heap_reallocate(*m_heap, block + 8, 64), nullptr);
        heap_free(*m_heap, block + 8);
        ASSERT_EQ(test::report_count(), 3u) << size;
        for (const ErrorReport& report : test::reports()) {
            EXPECT_EQ(report.kind, ErrorKind::MisalignedPointer) << size;
        }
        heap_free(*m_heap, block);
        EXPECT_TRUE(heap_check(*m_heap));
    }
}

TEST_F(CheckedHeapTest, ZeroSizedBlocksAreRealBlocks) {
    void* empty = heap_allocate(*m_heap, 0);
    ASSERT_NE(empty, nullptr);
    EXPECT_EQ(heap_usable_size(*m_heap, empty), 0u);
    auto* grown = static_cast<unsigned char*>(heap_reallocate(*m_heap, empty, 8));
    ASSERT_NE(grown, nullptr) << "realloc of a checked malloc(0) block";
    EXPECT_EQ(grown[7], kFreshPoison);
    void* shrunk = heap_reallocate(*m_heap, grown, 0);
    ASSERT_NE(shrunk, nullptr);
    heap_free(*m_heap, shrunk);
    EXPECT_EQ(test::report_count(), 0u);
}

TEST_F(CheckedHeapTest, QuarantineDelaysReuseAndIsBounded) {
    heap_set_quarantine_limit(*m_heap, 64 << 10);
    void* first = heap_allocate(*m_heap, 64);
    heap_free(*m_heap, first);
    for (int i = 0; i < 100; ++i) {
        void* block = heap_allocate(*m_heap, 64);
        EXPECT_NE(block, first) << "reused while in quarantine";
        heap_free(*m_heap, block);
    }
    // 64 + 128 + 16 bytes make a 208-byte block: 315 blocks fit in 64 KiB.
    for (int i = 0; i < 1000; ++i) {
        heap_free(*m_heap, heap_allocate(*m_heap, 64));
    }
    const HeapStatistics statistics = heap_statistics(*m_heap);
    EXPECT_EQ(statistics.blocks_in_use, 0u) << "quarantined blocks are not in use";
    EXPECT_GT(statistics.quarantined_blocks, 100u);
    EXPECT_LE(statistics.quarantined_blocks, (64u << 10) / 208);
    EXPECT_EQ(statistics.quarantined_bytes, statistics.quarantined_blocks * 208);
    EXPECT_EQ(test::report_count(), 0u);
}

// A block bigger than the whole quarantine (1 MiB by default) is quarantined too: it waits
// while smaller blocks pass through, so a double free of it is a double free with both call
// traces, and a write after it was freed is found when it leaves.
TEST_F(CheckedHeapTest, BlocksBiggerThanTheQuarantineAreQuarantinedToo) {
    for (const size_t size :
         {size_t{900000}, size_t{1} << 20, (size_t{1} << 20) + 1, size_t{4} << 20}) {
        auto* block = static_cast<unsigned char*>(heap_allocate(*m_heap, size));
        ASSERT_NE(block, nullptr);
        heap_free(*m_heap, block);
        block[100] = 7; // a dangling pointer's write
        for (int i = 0; i < 40; ++i) {
            heap_free(*m_heap, heap_allocate(*m_heap, 100000)); // 4 MB through the quarantine
        }
        constexpr size_t kHeaderAndTailZone = 128 + 16; // what a checked block adds, at least
        if (size + kHeaderAndTailZone <= kDefaultQuarantineBytes) {
            // It fits the quarantine: the 100000-byte blocks pushed it out, and the write was
            // found then.
            ASSERT_EQ(test::report_count(), 1u) << size;
            EXPECT_EQ(test::report(0).kind, ErrorKind::UseAfterFree);
            EXPECT_EQ(test::report(0).address, reinterpret_cast<uintptr_t>(block + 100));
        } else {
            EXPECT_EQ(test::report_count(), 0u) << size;
            EXPECT_GE(heap_statistics(*m_heap).quarantined_bytes, size) << size;
            heap_free(*m_heap, block);
            ASSERT_EQ(test::report_count(), 1u) << size;
            EXPECT_EQ(test::report(0).kind, ErrorKind::DoubleFree);
            EXPECT_EQ(test::report(0).block, reinterpret_cast<uintptr_t>(block));
            EXPECT_EQ(test::report(0).size, size);
            EXPECT_FALSE(test::report(0).allocated.empty());
            EXPECT_FALSE(test::report(0).freed.empty());
            EXPECT_FALSE(heap_check(*m_heap)) << "heap_check() sees the write";
            test::clear_reports();
            heap_flush_quarantine(*m_heap);
            ASSERT_EQ(test::report_count(), 1u) << size;
            EXPECT_EQ(test::report(0).kind, ErrorKind::UseAfterFree);
            EXPECT_EQ(test::report(0).address, reinterpret_cast<uintptr_t>(block + 100));
            EXPECT_EQ(test::report(0).offset, 100u);
        }
        test::clear_reports();
    }
}

// Only the newest such block waits: the next one takes its place, and the one it displaces is
// verified then.
TEST_F(CheckedHeapTest, TheNextBigBlockDisplacesTheWaitingOne) {
    auto* first = static_cast<unsigned char*>(heap_allocate(*m_heap, size_t{2} << 20));
    auto* second = static_cast<unsigned char*>(heap_allocate(*m_heap, size_t{3} << 20));
    ASSERT_NE(first, nullptr);
    ASSERT_NE(second, nullptr);
    heap_free(*m_heap, first);
    first[5] = 1;
    heap_free(*m_heap, second);
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::UseAfterFree);
    EXPECT_EQ(test::report(0).address, reinterpret_cast<uintptr_t>(first + 5));
    EXPECT_EQ(heap_statistics(*m_heap).quarantined_blocks, 1u);
    test::clear_reports();
    heap_set_quarantine_limit(*m_heap, 0); // lets everything go, the big block too
    EXPECT_EQ(heap_statistics(*m_heap).quarantined_blocks, 0u);
    EXPECT_EQ(test::report_count(), 0u);
    heap_set_quarantine_limit(*m_heap, kDefaultQuarantineBytes);
}

// In a region heap a big block is an arena block: quarantined all the same, and the quarantine
// gives its memory back when an allocation would otherwise fail.
TEST(CheckedRegionHeapTest, BigBlocksAreQuarantinedAndGiveWayWhenMemoryRunsOut) {
    test::Region region(6 << 20);
    Heap* heap = heap_create_in_region(region.data(), region.size());
    ASSERT_NE(heap, nullptr);
    ASSERT_TRUE(heap_set_check_level(*heap, CheckLevel::Report));
    test::clear_reports();
    void* block = heap_allocate(*heap, (size_t{1} << 20) + 1);
    ASSERT_NE(block, nullptr);
    heap_free(*heap, block);
    heap_free(*heap, block);
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::DoubleFree);
    EXPECT_EQ(test::report(0).block, reinterpret_cast<uintptr_t>(block));
    EXPECT_FALSE(test::report(0).freed.empty());
    test::clear_reports();
    heap_flush_quarantine(*heap);
    // 4 MiB quarantined (a limit that holds it) in a 6 MiB region: 4 MiB more fits only once
    // the quarantine lets it go.
    heap_set_quarantine_limit(*heap, size_t{5} << 20);
    heap_free(*heap, heap_allocate(*heap, size_t{4} << 20));
    EXPECT_EQ(heap_statistics(*heap).quarantined_blocks, 1u);
    void* again = heap_allocate(*heap, size_t{4} << 20);
    EXPECT_NE(again, nullptr);
    EXPECT_EQ(heap_statistics(*heap).quarantined_blocks, 0u);
    heap_free(*heap, again);
    heap_flush_quarantine(*heap);
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
}

// A block of a region heap made inside a checked block, freed into the checked heap: reported
// foreign-heap (not an interior pointer of the checked block), and both heaps stay intact.
TEST_F(CheckedHeapTest, ABlockOfAHeapMadeInsideACheckedBlockIsForeign) {
    test::expect_a_nested_heaps_blocks_are_foreign(*m_heap, 64 << 10);
}

TEST_F(CheckedHeapTest, ReallocChecksTheOldBlocksRedZones) {
    auto* block = static_cast<unsigned char*>(heap_allocate(*m_heap, 20));
    block[20] = 0; // one byte past the end
    void* moved = heap_reallocate(*m_heap, block, 40);
    ASSERT_NE(moved, nullptr);
    EXPECT_NE(moved, block) << "checked realloc always moves";
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::BufferOverflow);
    EXPECT_EQ(test::report(0).block, reinterpret_cast<uintptr_t>(block));
    EXPECT_EQ(test::report(0).offset, 1u);
    heap_free(*m_heap, moved);
}

// An overflow that reaches the tail red zone's last byte is reported to the zone's end, with a
// detail that says the write may reach further (the offset alone read as the write's length);
// one that stops inside the zone is not.
TEST_F(CheckedHeapTest, AnOverflowToTheRedZonesEndSaysItMayReachFurther) {
    for (const bool whole_zone : {false, true}) {
        auto* block = static_cast<unsigned char*>(heap_allocate(*m_heap, 64));
        ASSERT_NE(block, nullptr);
        const auto& header =
            *reinterpret_cast<const heap::CheckedBlock*>(block - heap::kCheckedHeaderBytes);
        const size_t usable = header.size;
        const size_t zone = header.zone_end - reinterpret_cast<uintptr_t>(block + usable);
        ASSERT_GT(zone, 1u);
        const size_t overwritten = whole_zone ? zone : zone - 1;
        std::memset(block + usable, 0, overwritten);
        heap_free(*m_heap, block);
        ASSERT_EQ(test::report_count(), 1u);
        EXPECT_EQ(test::report(0).kind, ErrorKind::BufferOverflow);
        EXPECT_EQ(test::report(0).offset, overwritten);
        EXPECT_EQ(std::string(test::report(0).detail).find("may reach further") !=
                      std::string::npos,
                  whole_zone)
            << test::report(0).detail;
        test::clear_reports();
    }
}

TEST_F(CheckedHeapTest, HeapCheckFindsDamageInLiveBlocks) {
    auto* block = static_cast<unsigned char*>(heap_allocate(*m_heap, 5000));
    EXPECT_TRUE(heap_check(*m_heap));
    block[5000 + 7] = 1;
    EXPECT_FALSE(heap_check(*m_heap));
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::BufferOverflow);
    EXPECT_EQ(test::report(0).offset, 8u);
    EXPECT_EQ(test::report(0).address, reinterpret_cast<uintptr_t>(block + 5007));
    block[5000 + 7] = kRedZoneFill; // repaired: the free finds nothing
    heap_free(*m_heap, block);
    EXPECT_EQ(test::report_count(), 1u);
}

TEST_F(CheckedHeapTest, DamagedHeaderIsReportedAndTheBlockLeftAlone) {
    auto* block = static_cast<unsigned char*>(heap_allocate(*m_heap, 64));
    unsigned char saved[32];
    std::memcpy(saved, block - 32, 32);
    std::memset(block - 32, 0, 32); // far beyond the front red zone: the header's seal breaks
    heap_free(*m_heap, block);
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::CorruptMetadata);
    EXPECT_FALSE(heap_check(*m_heap)) << "the damage is still there";
    ASSERT_EQ(test::report_count(), 2u);
    EXPECT_EQ(test::report(1).kind, ErrorKind::CorruptMetadata);
    std::memcpy(block - 32, saved, 32);
    EXPECT_TRUE(heap_check(*m_heap));
    heap_free(*m_heap, block);
    EXPECT_EQ(test::report_count(), 2u);
}

TEST_F(CheckedHeapTest, LargeAndAlignedBlocksAreChecked) {
    for (size_t alignment :
         {size_t{16}, size_t{64}, size_t{256}, size_t{4096}, size_t{1} << 16, size_t{1} << 20}) {
        for (size_t size : {size_t{0}, size_t{1}, size_t{100}, size_t{8000}, size_t{70000}}) {
            auto* block = static_cast<unsigned char*>(heap_allocate(*m_heap, size, alignment));
            ASSERT_NE(block, nullptr);
            EXPECT_EQ(reinterpret_cast<uintptr_t>(block) % alignment, 0u);
            EXPECT_EQ(heap_usable_size(*m_heap, block), size);
            block[size] = 1;
            heap_free(*m_heap, block);
            ASSERT_EQ(test::report_count(), 1u)
                << size << " aligned " << alignment << ": " << test::report(0).detail << " / "
                << (test::report_count() > 1 ? test::report(1).detail : "");
            EXPECT_EQ(test::report(0).kind, ErrorKind::BufferOverflow);
            EXPECT_EQ(test::report(0).size, size);
            test::clear_reports();
        }
    }
}

// Allocates `count` blocks from one call site (not a tail call, so the site is in this frame).
[[gnu::noinline]] void leak_here(Heap& heap, size_t count, void** blocks) {
    for (size_t i = 0; i < count; ++i) {
        blocks[i] = heap_allocate(heap, 10 * (i + 1));
        __asm__ volatile("" : : "r"(blocks[i]) : "memory");
    }
}

void collect(void* context, const char* line) {
    static_cast<std::vector<std::string>*>(context)->push_back(line);
}

TEST_F(CheckedHeapTest, LeakReportGroupsBySiteAndCountsSinceACheckpoint) {
    void* before = heap_allocate(*m_heap, 8);
    const uint64_t checkpoint = heap_checkpoint(*m_heap);
    void* same_site[2];
    volatile size_t count = 2; // a loop the compiler cannot unroll into two call sites
    leak_here(*m_heap, count, same_site);
    void* c = heap_allocate(*m_heap, 30);
    const LeakSummary since = heap_leaks_since(*m_heap, checkpoint);
    EXPECT_EQ(since.blocks, 3u);
    EXPECT_EQ(since.bytes, 60u);
    EXPECT_EQ(since.sites, 2u);
    std::vector<std::string> lines;
    const LeakSummary all = heap_report_leaks(*m_heap, collect, &lines);
    EXPECT_EQ(all.blocks, 4u);
    ASSERT_EQ(lines.size(), 1u + 3u + 4u) << "a total, one line per site, one per block";
    EXPECT_NE(lines[0].find("4 live blocks, 68 bytes, from 3 allocation sites"), std::string::npos)
        << lines[0];
    bool grouped = false;
    for (const std::string& line : lines) {
        grouped = grouped || line.find("2 blocks, 30 bytes, allocated at 0x") != std::string::npos;
    }
    EXPECT_TRUE(grouped);
    heap_free(*m_heap, same_site[0]);
    heap_free(*m_heap, same_site[1]);
    heap_free(*m_heap, c);
    EXPECT_EQ(heap_leaks_since(*m_heap, checkpoint).blocks, 0u);
    heap_free(*m_heap, before);
    EXPECT_EQ(heap_leaks_since(*m_heap, 0).blocks, 0u);
}

TEST_F(CheckedHeapTest, CallTraceStartsAtTheApplicationsCall) {
    void* block = nullptr;
    leak_here(*m_heap, 1, &block);
    static_cast<unsigned char*>(block)[10] = 0;
    heap_free(*m_heap, block);
    ASSERT_EQ(test::report_count(), 1u);
    const ErrorReport& report = test::report(0);
    EXPECT_TRUE(test::frame_is_in(report.allocated.frames[0], reinterpret_cast<void*>(&leak_here)));
    // The next frame is this test body (frame pointers are kept in checked builds).
    EXPECT_NE(report.allocated.frames[1], nullptr);
    EXPECT_NE(report.call_site, nullptr);
}

// A frame register holding a value that is no frame record (code built without frame
// pointers) may point just past the stack's top, into memory that is not mapped: the walk must
// stop there, not read it. The thread runs on a stack of the test's own with an inaccessible page
// right above it; its records point at that page, and at a real record below it.
struct FakeFrames {
    uintptr_t stack_top = 0;
    CallTrace wild = {};
    CallTrace chained = {};
};

void* walk_fake_frames(void* argument) {
    auto& frames = *static_cast<FakeFrames*>(argument);
    const auto site = reinterpret_cast<uintptr_t>(&walk_fake_frames) + 16;
    // The entry point's record, whose caller's record is the first word past the stack.
    alignas(16) uintptr_t wild[2] = {frames.stack_top, site};
    frames.wild = heap::capture_call_trace(heap::Caller::of(wild, heap::CallFamily::Malloc));
    // A chain of two records on the stack, the caller's above: the walk follows it.
    alignas(16) uintptr_t records[4] = {0, site, 0, site + 16};
    records[0] = reinterpret_cast<uintptr_t>(&records[2]);
    frames.chained = heap::capture_call_trace(heap::Caller::of(records, heap::CallFamily::Malloc));
    return nullptr;
}

TEST(CallTraceTest, StopsAtAFrameRecordOutsideTheStack) {
    constexpr size_t kStackBytes = size_t{256} << 10;
    constexpr size_t kPage = 4096;
    void* mapping = mmap(nullptr, kStackBytes + kPage, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(mapping, MAP_FAILED);
    auto* stack = static_cast<unsigned char*>(mapping);
    ASSERT_EQ(mprotect(stack + kStackBytes, kPage, PROT_NONE), 0);
    FakeFrames frames;
    frames.stack_top = reinterpret_cast<uintptr_t>(stack + kStackBytes);
    pthread_attr_t attributes;
    ASSERT_EQ(pthread_attr_init(&attributes), 0);
    ASSERT_EQ(pthread_attr_setstack(&attributes, stack, kStackBytes), 0);
    pthread_t thread;
    ASSERT_EQ(pthread_create(&thread, &attributes, walk_fake_frames, &frames), 0);
    ASSERT_EQ(pthread_join(thread, nullptr), 0);
    pthread_attr_destroy(&attributes);
    munmap(mapping, kStackBytes + kPage);
    EXPECT_NE(frames.wild.frames[0], nullptr);
    EXPECT_EQ(frames.wild.frames[1], nullptr) << "a record past the stack was followed";
    EXPECT_NE(frames.chained.frames[1], nullptr) << "a record on the stack was not followed";
    EXPECT_EQ(frames.chained.frames[2], nullptr);
}

TEST_F(CheckedHeapTest, LevelOffAllocatesUncheckedButFreesCheckedBlocksChecked) {
    auto* checked = static_cast<unsigned char*>(heap_allocate(*m_heap, 24));
    ASSERT_TRUE(heap_set_check_level(*m_heap, CheckLevel::Off));
    auto* unchecked = static_cast<unsigned char*>(heap_allocate(*m_heap, 24));
    EXPECT_EQ(heap_usable_size(*m_heap, unchecked), 32u) << "a plain size-class block";
    checked[24] = 0;
    heap_free(*m_heap, checked);
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::BufferOverflow);
    heap_free(*m_heap, unchecked);
    EXPECT_EQ(test::report_count(), 1u);
}

// Guard pages, with real faults: a SIGSEGV handler asks Bedrock to explain the fault and jumps
// back to the test (support/guard_page_probe.h).
bool g_explained = false;

// Whether touching `address` faulted (the fault explained or not: see g_explained).
bool faults(volatile unsigned char* address, bool write) {
    const test::ProbeResult result =
        test::probe(address, write ? MemoryAccess::Write : MemoryAccess::Unknown);
    g_explained = result.explained;
    return result.faulted;
}

class GuardPageTest : public CheckedHeapTest {
protected:
    void SetUp() override {
        CheckedHeapTest::SetUp();
        ASSERT_TRUE(heap_enable_guard_pages(*m_heap, GuardPageOptions{14, 0}));
    }
};

TEST_F(GuardPageTest, OverflowFaultsOnTheFirstByteAndIsExplained) {
    auto* block = static_cast<unsigned char*>(heap_allocate_guarded(*m_heap, 100));
    ASSERT_NE(block, nullptr);
    EXPECT_EQ((reinterpret_cast<uintptr_t>(block) + 100 + 15) % 4096 / 16, 0u)
        << "ends within 16 bytes of the page end";
    const uintptr_t page_end = (reinterpret_cast<uintptr_t>(block) + 4095) & ~uintptr_t{4095};
    auto* first_past_page = reinterpret_cast<unsigned char*>(page_end);
    EXPECT_FALSE(faults(block + 99, true));
    EXPECT_TRUE(faults(first_past_page, true));
    EXPECT_TRUE(g_explained);
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::BufferOverflow);
    EXPECT_EQ(test::report(0).block, reinterpret_cast<uintptr_t>(block));
    EXPECT_EQ(test::report(0).offset, page_end - reinterpret_cast<uintptr_t>(block) - 100 + 1);
    EXPECT_FALSE(test::report(0).allocated.empty());
    // The bytes between the block's end and the page end are a red zone, checked on free.
    block[100] = 0;
    heap_free(*m_heap, block);
    ASSERT_EQ(test::report_count(), 2u);
    EXPECT_EQ(test::report(1).kind, ErrorKind::BufferOverflow);
    EXPECT_EQ(test::report(1).offset, 1u);
}

// A write past the end that lands in the upper half of the guard page, nearer the next slot:
// with no block in that slot, it is the block before's overflow (it was `not-allocated`, "a
// guard-page pool page no block was given"); with a live block there, that block's underflow.
TEST_F(GuardPageTest, AFarOverflowIsTheBlockBeforesWhenTheNextSlotIsEmpty) {
    auto* block = static_cast<unsigned char*>(heap_allocate_guarded(*m_heap, 100));
    ASSERT_NE(block, nullptr);
    const uintptr_t page_end = (reinterpret_cast<uintptr_t>(block) + 4095) & ~uintptr_t{4095};
    auto* far = reinterpret_cast<unsigned char*>(page_end + 3000);
    EXPECT_TRUE(faults(far, true));
    EXPECT_TRUE(g_explained);
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::BufferOverflow) << test::report(0).detail;
    EXPECT_EQ(test::report(0).block, reinterpret_cast<uintptr_t>(block));
    EXPECT_EQ(test::report(0).offset,
              page_end + 3000 - reinterpret_cast<uintptr_t>(block) - 100 + 1);
    test::clear_reports();
    auto* next = static_cast<unsigned char*>(heap_allocate_guarded(*m_heap, 100));
    ASSERT_GT(next, far) << "the next slot";
    EXPECT_TRUE(faults(far, true));
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::BufferUnderflow) << test::report(0).detail;
    EXPECT_EQ(test::report(0).block, reinterpret_cast<uintptr_t>(next));
    test::clear_reports();
    heap_free(*m_heap, next);
    heap_free(*m_heap, block);
    EXPECT_EQ(test::report_count(), 0u);
}

TEST_F(GuardPageTest, UseAfterFreeFaultsAndNamesBothSites) {
    auto* block = static_cast<unsigned char*>(heap_allocate_guarded(*m_heap, 64));
    heap_free(*m_heap, block);
    EXPECT_TRUE(faults(block + 8, false));
    EXPECT_TRUE(g_explained);
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::UseAfterFree);
    EXPECT_EQ(test::report(0).offset, 8u);
    // The probe does not say what kind of access faulted (MemoryAccess::Unknown): the report
    // does not guess (it said "read").
    EXPECT_STREQ(test::report(0).detail,
                 "access to a freed guarded block (its page is inaccessible)");
    EXPECT_FALSE(test::report(0).allocated.empty());
    EXPECT_FALSE(test::report(0).freed.empty());
    heap_free(*m_heap, block);
    ASSERT_EQ(test::report_count(), 2u);
    EXPECT_EQ(test::report(1).kind, ErrorKind::DoubleFree);
}

TEST_F(GuardPageTest, SlotsAreReusedOldestFirstAndSamplingGuardsEveryNth) {
    std::vector<unsigned char*> blocks;
    for (int i = 0; i < 14; ++i) {
        blocks.push_back(static_cast<unsigned char*>(heap_allocate_guarded(*m_heap, 32)));
    }
    // The pool is full: the next one is an ordinary checked block.
    void* extra = heap_allocate_guarded(*m_heap, 32);
    ASSERT_NE(extra, nullptr);
    heap_free(*m_heap, extra);
    heap_free(*m_heap, blocks[3]);
    heap_free(*m_heap, blocks[5]);
    auto* reused = static_cast<unsigned char*>(heap_allocate_guarded(*m_heap, 32));
    EXPECT_EQ(reused, blocks[3]);
    EXPECT_FALSE(faults(reused, true));
    blocks[3] = reused;
    blocks[5] = nullptr;
    for (unsigned char* block : blocks) {
        heap_free(*m_heap, block);
    }
    EXPECT_EQ(test::report_count(), 0u);
}

// A pool larger than the largest medium block (256 slots: 2.4 MiB) still lives in the arenas, so
// its blocks are found as guarded ones, and every 64th checked allocation is guarded.
TEST_F(CheckedHeapTest, ALargeSampledPoolGuardsEveryNthAllocation) {
    ASSERT_TRUE(heap_enable_guard_pages(*m_heap, GuardPageOptions{256, 64}));
    std::vector<void*> blocks;
    for (int i = 0; i < 1000; ++i) {
        void* block = heap_allocate(*m_heap, 16);
        ASSERT_NE(block, nullptr);
        blocks.push_back(block);
    }
    for (void* block : blocks) {
        heap_free(*m_heap, block);
    }
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_check(*m_heap));
}

// A Caller of this test's frame from `family`: what operator new and delete pass down.
[[gnu::always_inline]] inline heap::Caller caller_from(heap::CallFamily family) {
    return heap::Caller::of(__builtin_frame_address(0), family);
}

// Every pair of families (malloc's, operator new's, operator new[]'s) allocating and freeing
// blocks of every kind - small, medium, a large run, and guarded: a free from the family that
// allocated the block reports nothing; any other reports deallocation-mismatch naming both and
// the block, and frees it all the same (TearDown: nothing left, every page back).
TEST_F(CheckedHeapTest, AFreeFromAnotherFamilyIsReportedAndStillFrees) {
    using heap::CallFamily;
    constexpr CallFamily kFamilies[] = {CallFamily::Malloc, CallFamily::New, CallFamily::NewArray};
    for (const bool guarded : {false, true}) {
        if (guarded) {
            ASSERT_TRUE(heap_enable_guard_pages(*m_heap, GuardPageOptions{14, 1}));
        }
        for (const size_t size : {size_t{24}, size_t{3000}, size_t{300000}}) {
            for (const CallFamily allocated_by : kFamilies) {
                for (const CallFamily freed_by : kFamilies) {
                    void* block = heap::allocate(*m_heap, size, 0, caller_from(allocated_by));
                    ASSERT_NE(block, nullptr);
                    heap::free(*m_heap, block, caller_from(freed_by));
                    if (allocated_by == freed_by) {
                        EXPECT_EQ(test::report_count(), 0u);
                        continue;
                    }
                    ASSERT_EQ(test::report_count(), 1u) << size;
                    const ErrorReport& report = test::report(0);
                    EXPECT_EQ(report.kind, ErrorKind::DeallocationMismatch);
                    EXPECT_EQ(report.block, reinterpret_cast<uintptr_t>(block));
                    EXPECT_EQ(report.size, size);
                    EXPECT_FALSE(report.allocated.empty());
                    EXPECT_FALSE(report.freed.empty());
                    const std::string detail = report.detail;
                    EXPECT_NE(detail.find(allocated_by == CallFamily::Malloc ? "malloc family"
                                          : allocated_by == CallFamily::New  ? "operator new,"
                                                                             : "operator new[]"),
                              std::string::npos)
                        << detail;
                    EXPECT_NE(detail.find(freed_by == CallFamily::Malloc ? "free()"
                                          : freed_by == CallFamily::New  ? "operator delete"
                                                                         : "operator delete[]"),
                              std::string::npos)
                        << detail;
                    test::clear_reports();
                    // Freed: a second free is a double free, not another mismatch.
                    heap::free(*m_heap, block, caller_from(allocated_by));
                    ASSERT_EQ(test::report_count(), 1u);
                    EXPECT_EQ(test::report(0).kind, ErrorKind::DoubleFree);
                    test::clear_reports();
                }
            }
        }
        EXPECT_TRUE(heap_check(*m_heap));
    }
    // realloc() is the malloc family's: moving operator new's block is a mismatch, once.
    void* block = heap::allocate(*m_heap, 40, 0, caller_from(CallFamily::New));
    void* moved = heap_reallocate(*m_heap, block, 80);
    ASSERT_NE(moved, nullptr);
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::DeallocationMismatch);
    test::clear_reports();
    heap_free(*m_heap, moved);
    EXPECT_EQ(test::report_count(), 0u);
}

// A sized delete naming another size than a checked block was asked for is reported
// size-mismatch (size: the block's, offset: the size named), before the free that follows; the
// right size, a block allocated unchecked, and a pointer that is no block report nothing there.
TEST_F(CheckedHeapTest, ASizedDeleteOfAnotherSizeIsReported) {
    const heap::Caller caller = caller_from(heap::CallFamily::New);
    for (const size_t size : {size_t{48}, size_t{5000}, size_t{300000}}) {
        void* block = heap::allocate(*m_heap, size, 0, caller);
        heap::check_named_size(*m_heap, block, size, caller);
        EXPECT_EQ(test::report_count(), 0u);
        heap::check_named_size(*m_heap, block, 16, caller);
        ASSERT_EQ(test::report_count(), 1u);
        EXPECT_EQ(test::report(0).kind, ErrorKind::SizeMismatch);
        EXPECT_EQ(test::report(0).size, size);
        EXPECT_EQ(test::report(0).offset, 16u);
        EXPECT_EQ(test::report(0).block, reinterpret_cast<uintptr_t>(block));
        test::clear_reports();
        heap::free(*m_heap, block, caller);
        heap::check_named_size(*m_heap, block, 16, caller); // freed: the free would report it
        EXPECT_EQ(test::report_count(), 0u);
    }
    ASSERT_TRUE(heap_set_check_level(*m_heap, CheckLevel::Off));
    void* unchecked = heap::allocate(*m_heap, 48, 0, caller);
    ASSERT_TRUE(heap_set_check_level(*m_heap, CheckLevel::Report));
    heap::check_named_size(*m_heap, unchecked, 16, caller);
    static unsigned char not_a_block[64];
    heap::check_named_size(*m_heap, not_a_block + 16, 16, caller);
    heap::check_named_size(*m_heap, nullptr, 16, caller);
    EXPECT_EQ(test::report_count(), 0u);
    heap::free(*m_heap, unchecked, caller);
}

// A value that is no level (any number converts to the C enum) is refused and changes nothing.
// Through the C binding only 3: in C++ the C enum's values end there (a C caller may pass more).
TEST_F(CheckedHeapTest, AValueThatIsNoLevelIsRefused) {
    auto* c_heap = reinterpret_cast<bedrock_heap*>(m_heap);
    EXPECT_FALSE(bedrock_heap_set_check_level(c_heap, static_cast<bedrock_check_level>(3)));
    for (const unsigned value : {3u, 7u, 255u}) {
        EXPECT_FALSE(heap_set_check_level(*m_heap, static_cast<CheckLevel>(value))) << value;
        EXPECT_EQ(heap_check_level(*m_heap), CheckLevel::Report);
    }
    EXPECT_TRUE(bedrock_heap_set_check_level(c_heap, BEDROCK_CHECK_ABORT));
    EXPECT_EQ(heap_check_level(*m_heap), CheckLevel::Abort);
    EXPECT_TRUE(heap_set_check_level(*m_heap, CheckLevel::Report));
    EXPECT_EQ(test::report_count(), 0u);
}

// A pool that cannot fit one arena is refused, however many slots are asked for (near
// UINT32_MAX, rounding up to whole chunks must not wrap to a pool of none).
TEST_F(CheckedHeapTest, APoolTooLargeForAnArenaIsRefused) {
    for (const uint32_t slots : {uint32_t{100000}, UINT32_MAX - 6, UINT32_MAX - 5, UINT32_MAX}) {
        EXPECT_FALSE(heap_enable_guard_pages(*m_heap, GuardPageOptions{slots, 1})) << slots;
    }
    EXPECT_TRUE(heap_enable_guard_pages(*m_heap, GuardPageOptions{14, 1}));
    EXPECT_EQ(test::report_count(), 0u);
}

TEST_F(GuardPageTest, InvalidFreesInThePoolAreReported) {
    auto* block = static_cast<unsigned char*>(heap_allocate_guarded(*m_heap, 64));
    heap_free(*m_heap, block + 16);
    heap_free(*m_heap, block - 4096); // the guard page before it
    ASSERT_EQ(test::report_count(), 2u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::InteriorPointer);
    EXPECT_EQ(test::report(0).offset, 16u);
    EXPECT_EQ(test::report(1).kind, ErrorKind::NotAllocated);
    heap_free(*m_heap, block);
}

// A clean randomized run in checked mode (region heap; frames heap with sampled guard pages):
// no report at all, and every page back.
TEST(CheckedRandomTest, CleanRunReportsNothing) {
    test::Frames frames(256 << 20);
    const uint64_t free_before = frames.free_pages();
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    ASSERT_TRUE(heap_set_check_level(*heap, CheckLevel::Report));
    ASSERT_TRUE(heap_enable_guard_pages(*heap, GuardPageOptions{64, 7}));
    heap_set_quarantine_limit(*heap, 256 << 10);
    test::clear_reports();
    std::vector<std::pair<unsigned char*, size_t>> live(2000);
    uint64_t state = test::seed_from_environment(42);
    const auto next = [&state] {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return state;
    };
    for (int i = 0; i < 100000; ++i) {
        auto& [block, size] = live[next() % live.size()];
        if (block != nullptr) {
            for (size_t j = 0; j < size; j += 97) {
                ASSERT_EQ(block[j], static_cast<unsigned char>(size + j)) << "damaged";
            }
            heap_free(*heap, block);
            block = nullptr;
            continue;
        }
        size = next() % 3 == 0 ? next() % 20000 : next() % 300;
        block = static_cast<unsigned char*>(
            next() % 8 == 0 ? heap_allocate(*heap, size, size_t{16} << (next() % 9))
                            : heap_allocate(*heap, size));
        ASSERT_NE(block, nullptr);
        for (size_t j = 0; j < size; j += 97) {
            block[j] = static_cast<unsigned char>(size + j);
        }
        if (i % 10000 == 0) {
            ASSERT_TRUE(heap_check(*heap));
        }
    }
    for (auto& [block, size] : live) {
        heap_free(*heap, block);
    }
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_EQ(heap_leaks_since(*heap, 0).blocks, 0u);
    EXPECT_TRUE(heap_destroy(*heap));
    EXPECT_EQ(frames.free_pages(), free_before);
}

// Several threads at once in checked mode with sampled guard pages: the live list, the
// quarantine and the guard pool's slot FIFO are shared; nothing may be reported or lost.
TEST(CheckedThreadTest, ConcurrentThreadsReportNothingAndLoseNothing) {
    test::Frames frames(256 << 20);
    const uint64_t free_before = frames.free_pages();
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    ASSERT_TRUE(heap_set_check_level(*heap, CheckLevel::Report));
    ASSERT_TRUE(heap_enable_guard_pages(*heap, GuardPageOptions{28, 16}));
    heap_set_quarantine_limit(*heap, 128 << 10);
    test::clear_reports();
    constexpr int kThreads = 4;
    std::vector<std::thread> threads;
    std::vector<int> damaged(kThreads, 0);
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([heap, t, &damaged] {
            uint64_t state = 0x9e3779b97f4a7c15u * static_cast<uint64_t>(t + 1);
            const auto next = [&state] {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                return state;
            };
            std::vector<std::pair<unsigned char*, size_t>> live(64);
            for (int i = 0; i < 20000; ++i) {
                auto& [block, size] = live[next() % live.size()];
                if (block != nullptr) {
                    damaged[static_cast<size_t>(t)] +=
                        size != 0 && block[size - 1] != static_cast<unsigned char>(t);
                    heap_free(*heap, block);
                    block = nullptr;
                    continue;
                }
                size = next() % 5 == 0 ? next() % 9000 : next() % 200;
                block = static_cast<unsigned char*>(heap_allocate(*heap, size));
                if (block != nullptr && size != 0) {
                    block[0] = static_cast<unsigned char>(t);
                    block[size - 1] = static_cast<unsigned char>(t);
                }
            }
            for (auto& [block, size] : live) {
                heap_free(*heap, block);
            }
        });
    }
    for (std::thread& thread : threads) {
        thread.join();
    }
    for (int t = 0; t < kThreads; ++t) {
        EXPECT_EQ(damaged[static_cast<size_t>(t)], 0) << "thread " << t;
    }
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_EQ(heap_leaks_since(*heap, 0).blocks, 0u);
    EXPECT_TRUE(heap_destroy(*heap));
    EXPECT_EQ(frames.free_pages(), free_before);
}

// A heap_destroy() refused for a live block changes nothing: the quarantine keeps its block, so
// a write after free into it is still reported when it goes and a second free of it is still a
// double free (the quarantine was emptied before the refusal).
TEST(CheckedLifecycleTest, ARefusedDestroyKeepsTheQuarantine) {
    test::Frames frames(64 << 20);
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    ASSERT_TRUE(heap_set_check_level(*heap, CheckLevel::Report));
    auto* freed = static_cast<unsigned char*>(heap_allocate(*heap, 64));
    void* live = heap_allocate(*heap, 64);
    heap_free(*heap, freed);
    test::clear_reports();
    EXPECT_FALSE(heap_destroy(*heap));
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::HeapInUse);
    EXPECT_EQ(heap_statistics(*heap).quarantined_blocks, 1u);
    test::clear_reports();
    freed[5] = 1;
    heap_free(*heap, freed);
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::DoubleFree);
    test::clear_reports();
    heap_flush_quarantine(*heap);
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::UseAfterFree);
    test::clear_reports();
    heap_free(*heap, live);
    EXPECT_TRUE(heap_destroy(*heap));
    EXPECT_EQ(test::report_count(), 0u);
}

// Guard-page sampling counts only the checked allocations that fit a slot page: alternating
// blocks that fit and blocks that do not, every second one that fits is guarded (none were,
// when the ones that do not fit took every other turn).
TEST(CheckedGuardTest, SamplingCountsOnlyAllocationsThatFitAPage) {
    test::Frames frames(64 << 20);
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    ASSERT_TRUE(heap_set_check_level(*heap, CheckLevel::Report));
    ASSERT_TRUE(heap_enable_guard_pages(*heap, GuardPageOptions{14, 2}));
    std::vector<void*> blocks;
    unsigned guarded = 0;
    for (int i = 0; i < 10; ++i) {
        void* fits = heap_allocate(*heap, 100);
        const uint64_t guarded_before = heap->checked.guards.live_blocks();
        blocks.push_back(fits);
        blocks.push_back(heap_allocate(*heap, kMaxGuardedSize + 1));
        EXPECT_EQ(heap->checked.guards.live_blocks(), guarded_before) << "too big to guard";
        guarded = static_cast<unsigned>(guarded_before);
    }
    EXPECT_EQ(guarded, 5u);
    for (void* block : blocks) {
        heap_free(*heap, block);
    }
    heap_flush_quarantine(*heap);
    EXPECT_TRUE(heap_destroy(*heap));
}

// A live guarded block counts in bytes_in_use as its slot page, as it counts in blocks_in_use
// (it added a block and no bytes), and leaves both as it goes.
TEST(CheckedGuardTest, AGuardedBlockCountsItsSlotPageInUse) {
    test::Frames frames(64 << 20);
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    ASSERT_TRUE(heap_set_check_level(*heap, CheckLevel::Report));
    ASSERT_TRUE(heap_enable_guard_pages(*heap, GuardPageOptions{14, 0}));
    const HeapStatistics before = heap_statistics(*heap);
    void* block = heap_allocate_guarded(*heap, 100);
    ASSERT_NE(block, nullptr);
    ASSERT_EQ(heap->checked.guards.live_blocks(), 1u);
    const HeapStatistics with = heap_statistics(*heap);
    EXPECT_EQ(with.blocks_in_use, before.blocks_in_use + 1);
    EXPECT_EQ(with.bytes_in_use, before.bytes_in_use + heap->checked.guards.page_bytes());
    heap_free(*heap, block);
    const HeapStatistics after = heap_statistics(*heap);
    EXPECT_EQ(after.blocks_in_use, before.blocks_in_use);
    EXPECT_EQ(after.bytes_in_use, before.bytes_in_use);
    EXPECT_TRUE(heap_check(*heap));
    EXPECT_TRUE(heap_destroy(*heap));
}

// heap_allocate_guarded() on a destroyed heap is reported, as malloc is, and allocates nothing
// (it wrote a checked header and poison into the region the caller owned again).
TEST(CheckedLifecycleTest, AGuardedAllocationOnADestroyedHeapIsRefused) {
    test::Region region(1 << 20);
    Heap* heap = heap_create_in_region(region.data(), region.size());
    ASSERT_NE(heap, nullptr);
    ASSERT_TRUE(heap_set_check_level(*heap, CheckLevel::Report));
    ASSERT_TRUE(heap_destroy(*heap));
    const std::vector<unsigned char> before(region.data(), region.data() + region.size());
    test::clear_reports();
    EXPECT_EQ(heap_allocate_guarded(*heap, 100), nullptr);
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::UseAfterFree);
    EXPECT_TRUE(std::equal(before.begin(), before.end(), region.data()));
    test::clear_reports();
}

// Leaks from more allocation sites than a report lists: the summary says "more than 32"
// (kLeakSitesListed + 1), where it counted every block of an unlisted site as a site of its own
// (38 for 34 sites of 3 blocks each).
template <int N>
[[gnu::noinline]] void allocate_three_from_one_site(Heap& heap, std::vector<void*>& blocks) {
    for (volatile int i = 0; i < 3; i = i + 1) { // one call site: a volatile count is not unrolled
        blocks.push_back(heap_allocate(heap, 10));
    }
}
template <int... N>
void allocate_from_sites(Heap& heap, std::vector<void*>& blocks, std::integer_sequence<int, N...>) {
    (allocate_three_from_one_site<N>(heap, blocks), ...);
}

TEST(CheckedLeakTest, MoreSitesThanAReportListsAreCountedAsMore) {
    test::Frames frames(64 << 20);
    Heap* heap = heap_create(frames.allocator());
    ASSERT_NE(heap, nullptr);
    ASSERT_TRUE(heap_set_check_level(*heap, CheckLevel::Report));
    const uint64_t checkpoint = heap_checkpoint(*heap);
    std::vector<void*> blocks;
    allocate_from_sites(*heap, blocks, std::make_integer_sequence<int, 30>{});
    EXPECT_EQ(heap_leaks_since(*heap, checkpoint).sites, 30u);
    allocate_from_sites(*heap, blocks, std::make_integer_sequence<int, 34>{});
    const LeakSummary leaked = heap_leaks_since(*heap, checkpoint);
    EXPECT_EQ(leaked.blocks, 192u);
    EXPECT_EQ(leaked.sites, kLeakSitesListed + 1);
    std::string text;
    static_cast<void>(heap_report_leaks(
        *heap, [](void* context, const char* line) { *static_cast<std::string*>(context) += line; },
        &text, checkpoint));
    EXPECT_NE(text.find("from more than 32 allocation sites"), std::string::npos) << text;
    for (void* block : blocks) {
        heap_free(*heap, block);
    }
    heap_flush_quarantine(*heap);
    EXPECT_TRUE(heap_destroy(*heap));
}

// A write past a checked block's tail red zone onto the core header of the checked block after
// it (16 bytes: what the heap guarantees to survive): the first block's free reports the
// overflow; the second's reports the overwritten header and retires its block, so the arena tiles
// again, heap_check() holds, nothing counts the block as live, a second free of it is
// not-allocated and the heap is destroyed whole. Every fill, whatever its use bits read as (0x03
// reads as a checked block's: its free went on into the quarantine, unreported, and heap_check()
// failed until the quarantine was flushed; the others left the heap failing every check and
// refusing destruction).
TEST(CheckedHeaderTest, AnOverwrittenCoreHeaderOfACheckedBlockIsRetired) {
    for (const bool over_frames : {false, true}) {
        for (const int fill : {0x00, 0x01, 0x02, 0x03, 0x11, 0x42, 0xff}) {
            SCOPED_TRACE(testing::Message()
                         << (over_frames ? "frames" : "region") << " fill " << fill);
            test::Region region(over_frames ? 0 : 16 << 20);
            test::Frames frames(over_frames ? 64 << 20 : 16 << 20);
            Heap* heap = over_frames ? heap_create(frames.allocator())
                                     : heap_create_in_region(region.data(), region.size());
            ASSERT_NE(heap, nullptr);
            ASSERT_TRUE(heap_set_check_level(*heap, CheckLevel::Report));
            auto* first = static_cast<unsigned char*>(heap_allocate(*heap, 24));
            auto* second = static_cast<unsigned char*>(heap_allocate(*heap, 48));
            ASSERT_NE(first, nullptr);
            ASSERT_NE(second, nullptr);
            test::clear_reports();
            std::memset(first + 24, fill, 40); // the tail red zone, then the core header after it
            heap_free(*heap, first);
            ASSERT_EQ(test::report_count(), 1u);
            EXPECT_EQ(test::report(0).kind, ErrorKind::BufferOverflow);
            test::clear_reports();
            heap_free(*heap, second);
            ASSERT_EQ(test::report_count(), 1u);
            EXPECT_EQ(test::report(0).kind, ErrorKind::CorruptMetadata);
            test::clear_reports();
            EXPECT_TRUE(heap_check(*heap));
            EXPECT_EQ(heap_statistics(*heap).blocks_in_use, 0u);
            heap_flush_quarantine(*heap);
            EXPECT_TRUE(heap_check(*heap));
            heap_free(*heap, second);
            ASSERT_EQ(test::report_count(), 1u);
            EXPECT_EQ(test::report(0).kind, ErrorKind::NotAllocated);
            test::clear_reports();
            EXPECT_TRUE(heap_destroy(*heap));
            EXPECT_EQ(test::report_count(), 0u);
            test::clear_reports();
        }
    }
}

} // namespace
} // namespace bedrock
