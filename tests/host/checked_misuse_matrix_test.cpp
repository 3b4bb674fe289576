// SPDX-License-Identifier: MIT
// Checked mode as a misbehaving program meets it: each classic misuse on every kind of block -
// checked blocks of small, medium and large-run sizes, aligned ones from memalign, aligned_alloc
// and posix_memalign, realloc'd (grown, shrunk, same size) and calloc'd ones, guarded ones, and
// blocks allocated at one level and freed at another - over a region heap and over a page frame
// allocator. Each test checks when the misuse is caught (at the access, at free, at heap_check(),
// when the block leaves quarantine), that the report names exactly the block, its requested
// size, the offset and the call traces, and that the heap and a live neighbour stay intact.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "bedrock/error_report.h"
#include "bedrock/heap_checks.h"
#include "bedrock/malloc.h"
#include "checked/checked_block.h"
#include "heap_test_support.h"
#include "support/guard_page_probe.h"

namespace bedrock {
namespace {

enum class Over { Region, Frames };

// The checked-mode header right before `block` (an alignment of at most 128 bytes).
heap::CheckedBlock* checked_header_of(unsigned char* block) {
    return reinterpret_cast<heap::CheckedBlock*>(block - heap::kCheckedHeaderBytes);
}

// Damages `block`'s checked-mode header: both its list links forged to addresses nothing maps.
void forge_links(unsigned char* block) {
    checked_header_of(block)->prev = reinterpret_cast<heap::CheckedBlock*>(0x7878787878787878);
    checked_header_of(block)->next = reinterpret_cast<heap::CheckedBlock*>(0x7878787878787880);
}

// How many of the reports so far are corrupt-metadata at one of `blocks`.
unsigned corrupt_metadata_reports_at(std::initializer_list<const unsigned char*> blocks) {
    unsigned count = 0;
    for (size_t i = 0; i < test::report_count(); ++i) {
        const ErrorReport& report = test::report(i);
        count += report.kind == ErrorKind::CorruptMetadata &&
                 std::any_of(blocks.begin(), blocks.end(), [&](const unsigned char* block) {
                     return report.address == reinterpret_cast<uintptr_t>(block);
                 });
    }
    return count;
}

// How a block is made: from the heap directly or through the C API on the default heap.
struct Kind {
    const char* name;
    size_t size;
    std::function<void*(Heap&, size_t)> make;
};

void* plain(Heap& heap, size_t size) {
    return heap_allocate(heap, size);
}

std::vector<Kind> kinds() {
    std::vector<Kind> all;
    for (size_t size : {size_t{0}, size_t{1}, size_t{24}, size_t{100}, size_t{2048}, size_t{3000},
                        size_t{70000}, size_t{(1u << 20) + 100}}) {
        all.push_back(Kind{"malloc", size, plain});
    }
    for (size_t alignment : {size_t{64}, size_t{256}, size_t{4096}, size_t{1} << 16}) {
        for (size_t size : {size_t{5}, size_t{4100}}) {
            all.push_back(Kind{"memalign", size, [alignment](Heap&, size_t n) {
                                   return bedrock_memalign(alignment, n);
                               }});
            all.push_back(Kind{"aligned_alloc", size, [alignment](Heap&, size_t n) {
                                   return bedrock_aligned_alloc(alignment, n);
                               }});
            all.push_back(Kind{"posix_memalign", size, [alignment](Heap&, size_t n) {
                                   void* out = nullptr;
                                   return bedrock_posix_memalign(&out, alignment, n) == 0 ? out
                                                                                          : nullptr;
                               }});
        }
    }
    all.push_back(Kind{"calloc", 30, [](Heap&, size_t n) { return bedrock_calloc(3, n / 3); }});
    all.push_back(Kind{"realloc_grown", 5000,
                       [](Heap&, size_t n) { return bedrock_realloc(bedrock_malloc(40), n); }});
    all.push_back(Kind{"realloc_shrunk", 40,
                       [](Heap&, size_t n) { return bedrock_realloc(bedrock_malloc(5000), n); }});
    all.push_back(Kind{"realloc_same", 40,
                       [](Heap&, size_t n) { return bedrock_realloc(bedrock_malloc(n), n); }});
    return all;
}

class MatrixTest : public ::testing::TestWithParam<Over> {
protected:
    void SetUp() override {
        if (GetParam() == Over::Region) {
            m_heap = heap_create_in_region(m_region.data(), m_region.size());
        } else {
            m_heap = heap_create(m_frames.allocator());
        }
        ASSERT_NE(m_heap, nullptr);
        m_previous_default = default_heap();
        set_default_heap(m_heap);
        ASSERT_TRUE(heap_set_check_level(*m_heap, CheckLevel::Report));
        test::clear_reports();
    }
    void TearDown() override {
        set_default_heap(m_previous_default);
        heap_flush_quarantine(*m_heap);
        EXPECT_TRUE(heap_check(*m_heap));
        EXPECT_EQ(heap_statistics(*m_heap).blocks_in_use, 0u);
        EXPECT_TRUE(heap_destroy(*m_heap));
    }

    // The lines of the heap's leak report.
    [[nodiscard]] std::vector<std::string> leak_report_lines() const {
        std::vector<std::string> lines;
        static_cast<void>(heap_report_leaks(
            *m_heap,
            [](void* context, const char* line) {
                static_cast<std::vector<std::string>*>(context)->push_back(line);
            },
            &lines));
        return lines;
    }
    // Whether a leak report's `lines` list `block` (as "leaks:   0x<block> ...").
    [[nodiscard]] static bool names_block(const std::vector<std::string>& lines,
                                          const void* block) {
        char prefix[32];
        snprintf(prefix, sizeof(prefix), "leaks:   0x%lx ",
                 static_cast<unsigned long>(reinterpret_cast<uintptr_t>(block)));
        return std::any_of(lines.begin(), lines.end(),
                           [&](const std::string& line) { return line.rfind(prefix, 0) == 0; });
    }

    test::Frames m_frames{64 << 20};
    test::Region m_region{8 << 20};
    Heap* m_heap = nullptr;
    Heap* m_previous_default = nullptr;
};

// A neighbour allocated after `block`, filled with a pattern the misuse must not disturb.
struct Neighbour {
    unsigned char* block;
    size_t size;
    [[nodiscard]] bool intact() const {
        for (size_t i = 0; i < size; ++i) {
            if (block[i] != 0x5a) {
                return false;
            }
        }
        return true;
    }
};

Neighbour make_neighbour(Heap& heap, size_t size) {
    auto* block = static_cast<unsigned char*>(heap_allocate(heap, size));
    std::memset(block, 0x5a, size);
    return Neighbour{block, size};
}

// After a misuse's reports were read: the heap and `neighbour` are intact, and freeing the
// neighbour and flushing the quarantine reports nothing.
void expect_unharmed_then_free(Heap& heap, const Neighbour& neighbour) {
    test::clear_reports();
    EXPECT_TRUE(heap_check(heap));
    EXPECT_TRUE(neighbour.intact());
    heap_free(heap, neighbour.block);
    heap_flush_quarantine(heap);
    EXPECT_EQ(test::report_count(), 0u);
    test::clear_reports();
}

std::string describe(const ErrorReport& report) {
    std::string text;
    write_error_report(
        report,
        [](void* context, const char* line) {
            *static_cast<std::string*>(context) += line;
            *static_cast<std::string*>(context) += "\n";
        },
        &text);
    return text;
}

TEST_P(MatrixTest, OverflowAndUnderflowAreReportedExactlyAtFree) {
    for (const Kind& kind : kinds()) {
        for (const size_t reach : {size_t{1}, size_t{7}}) {
            for (const bool under : {false, true}) {
                SCOPED_TRACE(std::string(kind.name) + " size " + std::to_string(kind.size) +
                             (under ? " under " : " over ") + std::to_string(reach));
                auto* block = static_cast<unsigned char*>(kind.make(*m_heap, kind.size));
                ASSERT_NE(block, nullptr);
                const Neighbour neighbour = make_neighbour(*m_heap, 48);
                ASSERT_EQ(heap_usable_size(*m_heap, block), kind.size);
                if (under) {
                    std::memset(block - reach, 0, reach);
                } else {
                    std::memset(block + kind.size, 0, reach);
                }
                EXPECT_FALSE(heap_check(*m_heap));
                ASSERT_EQ(test::report_count(), 1u);
                test::clear_reports();
                heap_free(*m_heap, block);
                ASSERT_EQ(test::report_count(), 1u);
                const ErrorReport& report = test::report(0);
                EXPECT_EQ(report.kind,
                          under ? ErrorKind::BufferUnderflow : ErrorKind::BufferOverflow)
                    << describe(report);
                EXPECT_EQ(report.block, reinterpret_cast<uintptr_t>(block));
                EXPECT_EQ(report.size, kind.size);
                EXPECT_EQ(report.offset, reach);
                EXPECT_EQ(report.address,
                          reinterpret_cast<uintptr_t>(under ? block - reach : block + kind.size));
                EXPECT_FALSE(report.allocated.empty());
                EXPECT_TRUE(report.freed.empty());
                EXPECT_NE(report.call_site, nullptr);
                expect_unharmed_then_free(*m_heap, neighbour);
            }
        }
    }
}

TEST_P(MatrixTest, WriteAfterFreeIsReportedWhenTheBlockLeavesQuarantine) {
    for (const Kind& kind : kinds()) {
        if (kind.size == 0) {
            continue;
        }
        SCOPED_TRACE(std::string(kind.name) + " size " + std::to_string(kind.size));
        auto* block = static_cast<unsigned char*>(kind.make(*m_heap, kind.size));
        ASSERT_NE(block, nullptr);
        const Neighbour neighbour = make_neighbour(*m_heap, 48);
        heap_free(*m_heap, block);
        block[kind.size - 1] = 1;
        EXPECT_FALSE(heap_check(*m_heap));
        test::clear_reports();
        heap_flush_quarantine(*m_heap);
        ASSERT_EQ(test::report_count(), 1u);
        const ErrorReport& report = test::report(0);
        EXPECT_EQ(report.kind, ErrorKind::UseAfterFree) << describe(report);
        EXPECT_EQ(report.block, reinterpret_cast<uintptr_t>(block));
        EXPECT_EQ(report.size, kind.size);
        EXPECT_EQ(report.offset, kind.size - 1);
        EXPECT_FALSE(report.allocated.empty());
        EXPECT_FALSE(report.freed.empty());
        test::clear_reports();
        EXPECT_TRUE(heap_check(*m_heap));
        EXPECT_TRUE(neighbour.intact());
        heap_free(*m_heap, neighbour.block);
        heap_flush_quarantine(*m_heap);
        test::clear_reports();
    }
}

TEST_P(MatrixTest, InvalidPointersToEveryKindAreReported) {
    for (const Kind& kind : kinds()) {
        SCOPED_TRACE(std::string(kind.name) + " size " + std::to_string(kind.size));
        auto* block = static_cast<unsigned char*>(kind.make(*m_heap, kind.size));
        ASSERT_NE(block, nullptr);
        const Neighbour neighbour = make_neighbour(*m_heap, 48);
        if (kind.size > 16) {
            heap_free(*m_heap, block + 16);
            EXPECT_EQ(heap_usable_size(*m_heap, block + 16), 0u);
            EXPECT_EQ(heap_reallocate(*m_heap, block + 16, 8), nullptr);
            ASSERT_EQ(test::report_count(), 3u);
            for (size_t i = 0; i < 3; ++i) {
                EXPECT_EQ(test::report(i).kind, ErrorKind::InteriorPointer)
                    << describe(test::report(i));
                EXPECT_EQ(test::report(i).block, reinterpret_cast<uintptr_t>(block));
                EXPECT_EQ(test::report(i).offset, 16u);
                EXPECT_EQ(test::report(i).size, kind.size);
            }
            test::clear_reports();
        }
        heap_free(*m_heap, block + 8);
        ASSERT_EQ(test::report_count(), 1u);
        EXPECT_EQ(test::report(0).kind, ErrorKind::MisalignedPointer);
        test::clear_reports();
        heap_free(*m_heap, block);
        EXPECT_EQ(test::report_count(), 0u);
        // Still in quarantine: a double free, everywhere.
        heap_free(*m_heap, block);
        EXPECT_EQ(heap_usable_size(*m_heap, block), 0u);
        EXPECT_EQ(heap_reallocate(*m_heap, block, 8), nullptr);
        EXPECT_EQ(heap_reallocate(*m_heap, block, 0), nullptr);
        ASSERT_EQ(test::report_count(), 4u);
        for (size_t i = 0; i < 4; ++i) {
            EXPECT_EQ(test::report(i).kind, ErrorKind::DoubleFree) << describe(test::report(i));
            EXPECT_EQ(test::report(i).block, reinterpret_cast<uintptr_t>(block));
            EXPECT_EQ(test::report(i).size, kind.size);
            EXPECT_EQ(test::report(i).offset, 0u);
            EXPECT_FALSE(test::report(i).freed.empty());
            EXPECT_FALSE(test::report(i).allocated.empty());
        }
        test::clear_reports();
        if (kind.size > 16) { // inside the freed block: interior, and it says the block is free
            heap_free(*m_heap, block + 16);
            ASSERT_EQ(test::report_count(), 1u);
            EXPECT_EQ(test::report(0).kind, ErrorKind::InteriorPointer);
            EXPECT_EQ(test::report(0).offset, 16u);
            EXPECT_FALSE(test::report(0).freed.empty());
            EXPECT_NE(std::string(test::report(0).detail).find("already freed"), std::string::npos)
                << test::report(0).detail;
            test::clear_reports();
        }
        // After the quarantine turned over, before the memory is reused: not-allocated.
        heap_flush_quarantine(*m_heap);
        heap_free(*m_heap, block);
        ASSERT_EQ(test::report_count(), 1u);
        EXPECT_EQ(test::report(0).kind, ErrorKind::NotAllocated) << describe(test::report(0));
        expect_unharmed_then_free(*m_heap, neighbour);
    }
}

INSTANTIATE_TEST_SUITE_P(BothHeaps, MatrixTest, ::testing::Values(Over::Region, Over::Frames),
                         [](const ::testing::TestParamInfo<Over>& info) {
                             return std::string(info.param == Over::Region ? "Region" : "Frames");
                         });

// Guard pages at sample interval 1: every checked block that fits a page is guarded. A byte
// past the end faults at once when the block ends its page, else it lands in the red zone left
// before the page end and is found at free; the same for a byte before the start and the page's
// start. Any touch of a freed block faults.
TEST_P(MatrixTest, GuardedBlocksCatchEachMisuseAtTheAccessOrAtFree) {
    ASSERT_TRUE(heap_enable_guard_pages(*m_heap, GuardPageOptions{14, 1}));
    const size_t page = 4096;
    for (const size_t size : {size_t{1}, size_t{100}, size_t{4096}}) {
        for (const size_t alignment : {size_t{16}, size_t{64}}) {
            for (const bool under : {false, true}) {
                SCOPED_TRACE("size " + std::to_string(size) + " aligned " +
                             std::to_string(alignment) + (under ? " under" : " over"));
                auto* block = static_cast<unsigned char*>(heap_allocate(*m_heap, size, alignment));
                ASSERT_NE(block, nullptr);
                const Neighbour neighbour = make_neighbour(*m_heap, 48);
                test::clear_reports();
                const auto start = reinterpret_cast<uintptr_t>(block);
                unsigned char* target = under ? block - 1 : block + size;
                const bool at_page_edge = under ? start % page == 0 : (start + size) % page == 0;
                const test::ProbeResult probed = test::probe(target, MemoryAccess::Write);
                EXPECT_EQ(probed.faulted, at_page_edge);
                EXPECT_EQ(probed.explained, at_page_edge);
                if (at_page_edge) {
                    ASSERT_EQ(test::report_count(), 1u);
                    test::clear_reports();
                }
                heap_free(*m_heap, block);
                if (!at_page_edge) {
                    ASSERT_EQ(test::report_count(), 1u);
                    const ErrorReport& report = test::report(0);
                    EXPECT_EQ(report.kind,
                              under ? ErrorKind::BufferUnderflow : ErrorKind::BufferOverflow)
                        << describe(report);
                    EXPECT_EQ(report.block, start);
                    EXPECT_EQ(report.size, size);
                    EXPECT_EQ(report.offset, 1u);
                    EXPECT_EQ(report.address, reinterpret_cast<uintptr_t>(target));
                    test::clear_reports();
                }
                // Read and write after free fault and are explained, with both traces.
                for (const MemoryAccess access : {MemoryAccess::Read, MemoryAccess::Write}) {
                    const test::ProbeResult touched = test::probe(block + size / 2, access);
                    EXPECT_TRUE(touched.faulted);
                    EXPECT_TRUE(touched.explained);
                    ASSERT_EQ(test::report_count(), 1u);
                    EXPECT_EQ(test::report(0).kind, ErrorKind::UseAfterFree)
                        << describe(test::report(0));
                    EXPECT_EQ(test::report(0).offset, size / 2);
                    EXPECT_EQ(test::report(0).block, start);
                    EXPECT_FALSE(test::report(0).freed.empty());
                    test::clear_reports();
                }
                // Before its start: an underflow of the freed block, both traces.
                const test::ProbeResult before = test::probe(block - 1, MemoryAccess::Read);
                EXPECT_TRUE(before.faulted);
                EXPECT_TRUE(before.explained);
                ASSERT_EQ(test::report_count(), 1u);
                EXPECT_EQ(test::report(0).kind, ErrorKind::BufferUnderflow)
                    << describe(test::report(0));
                EXPECT_EQ(test::report(0).offset, 1u);
                EXPECT_STREQ(test::report(0).detail,
                             "read before the start of a freed guarded block");
                EXPECT_FALSE(test::report(0).freed.empty());
                test::clear_reports();
                if (size > 16) {
                    heap_free(*m_heap, block + 16);
                    ASSERT_EQ(test::report_count(), 1u);
                    EXPECT_EQ(test::report(0).kind, ErrorKind::InteriorPointer)
                        << describe(test::report(0));
                    EXPECT_FALSE(test::report(0).freed.empty());
                    EXPECT_STREQ(test::report(0).detail,
                                 "points inside a guarded block already freed, not at its start");
                    test::clear_reports();
                }
                heap_free(*m_heap, block);
                EXPECT_EQ(heap_usable_size(*m_heap, block), 0u);
                ASSERT_EQ(test::report_count(), 2u);
                for (size_t i = 0; i < 2; ++i) {
                    EXPECT_EQ(test::report(i).kind, ErrorKind::DoubleFree)
                        << describe(test::report(i));
                    EXPECT_EQ(test::report(i).block, start);
                    EXPECT_EQ(test::report(i).size, size);
                    EXPECT_FALSE(test::report(i).freed.empty());
                    EXPECT_STREQ(test::report(i).detail,
                                 "the block is already free (its guarded page is inaccessible)");
                }
                test::clear_reports();
                EXPECT_TRUE(heap_check(*m_heap));
                EXPECT_TRUE(neighbour.intact());
                heap_free(*m_heap, neighbour.block);
                EXPECT_EQ(test::report_count(), 0u);
            }
        }
    }
}

// A block allocated at one level and freed, realloc'd or freed twice at another keeps the form
// it was allocated in: a checked block is checked wherever it is freed, an unchecked one is not.
TEST_P(MatrixTest, LevelsChangeBetweenAllocationAndFree) {
    const CheckLevel levels[] = {CheckLevel::Off, CheckLevel::Report};
    for (const CheckLevel at_allocation : levels) {
        for (const CheckLevel at_free : levels) {
            for (const size_t size : {size_t{24}, size_t{3000}, size_t{(1u << 20) + 100}}) {
                SCOPED_TRACE("size " + std::to_string(size) + " allocated at " +
                             std::to_string(static_cast<int>(at_allocation)) + ", freed at " +
                             std::to_string(static_cast<int>(at_free)));
                ASSERT_TRUE(heap_set_check_level(*m_heap, at_allocation));
                auto* block = static_cast<unsigned char*>(heap_allocate(*m_heap, size));
                auto* grown = static_cast<unsigned char*>(heap_allocate(*m_heap, size));
                ASSERT_NE(block, nullptr);
                ASSERT_NE(grown, nullptr);
                std::memset(grown, 0x33, size);
                const bool checked = at_allocation != CheckLevel::Off;
                if (checked) {
                    EXPECT_EQ(heap_usable_size(*m_heap, block), size);
                }
                ASSERT_TRUE(heap_set_check_level(*m_heap, at_free));
                block[size] = 0; // past the requested size: inside an unchecked block's slack
                heap_free(*m_heap, block);
                EXPECT_EQ(test::report_count(), checked ? 1u : 0u);
                test::clear_reports();
                heap_free(*m_heap, block);
                ASSERT_EQ(test::report_count(), 1u);
                EXPECT_EQ(test::report(0).kind, ErrorKind::DoubleFree) << describe(test::report(0));
                EXPECT_EQ(!test::report(0).freed.empty(), checked);
                test::clear_reports();
                auto* moved =
                    static_cast<unsigned char*>(heap_reallocate(*m_heap, grown, size * 2));
                ASSERT_NE(moved, nullptr);
                for (size_t i = 0; i < size; ++i) {
                    ASSERT_EQ(moved[i], 0x33) << i;
                }
                if (at_free != CheckLevel::Off) {
                    EXPECT_EQ(heap_usable_size(*m_heap, moved), size * 2) << "checked now";
                }
                heap_free(*m_heap, moved);
                EXPECT_EQ(test::report_count(), 0u);
                EXPECT_TRUE(heap_check(*m_heap));
                heap_flush_quarantine(*m_heap);
            }
        }
    }
}

// realloc(p, 0) of a checked block: a new checked block of size 0; p is freed (quarantined).
TEST_P(MatrixTest, ReallocToZeroMovesACheckedBlockToAnEmptyOne) {
    void* block = heap_allocate(*m_heap, 40);
    void* zero = heap_reallocate(*m_heap, block, 0);
    ASSERT_NE(zero, nullptr);
    EXPECT_NE(zero, block);
    EXPECT_EQ(heap_usable_size(*m_heap, zero), 0u);
    heap_free(*m_heap, block);
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::DoubleFree);
    test::clear_reports();
    static_cast<unsigned char*>(zero)[0] = 1;
    heap_free(*m_heap, zero);
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::BufferOverflow);
    EXPECT_EQ(test::report(0).offset, 1u);
    test::clear_reports();
}

// A write after free that heap_check() finds says so, not that the block left quarantine.
TEST_P(MatrixTest, HeapCheckSaysItFoundTheWriteAfterFree) {
    auto* block = static_cast<unsigned char*>(heap_allocate(*m_heap, 64));
    heap_free(*m_heap, block);
    block[3] = 0;
    EXPECT_FALSE(heap_check(*m_heap));
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::UseAfterFree);
    EXPECT_EQ(test::report(0).offset, 3u);
    EXPECT_EQ(std::string(test::report(0).detail).find("left quarantine"), std::string::npos)
        << test::report(0).detail;
    test::clear_reports();
    heap_flush_quarantine(*m_heap);
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_NE(std::string(test::report(0).detail).find("left quarantine"), std::string::npos)
        << test::report(0).detail;
    test::clear_reports();
}

// A write past the end or before the start of a block after its free (the free verified its
// red zones) is reported as such, with the free's trace, not as an overflow of a live block.
TEST_P(MatrixTest, RedZoneDamageAfterFreeSaysSoAndNamesTheFree) {
    for (const bool under : {false, true}) {
        auto* block = static_cast<unsigned char*>(heap_allocate(*m_heap, 64));
        heap_free(*m_heap, block);
        EXPECT_EQ(test::report_count(), 0u);
        if (under) {
            block[-2] = 0;
        } else {
            block[64 + 2] = 0;
        }
        for (const bool by_check : {true, false}) {
            if (by_check) {
                EXPECT_FALSE(heap_check(*m_heap));
            } else {
                heap_flush_quarantine(*m_heap);
            }
            ASSERT_EQ(test::report_count(), 1u);
            const ErrorReport& report = test::report(0);
            EXPECT_EQ(report.kind, under ? ErrorKind::BufferUnderflow : ErrorKind::BufferOverflow);
            EXPECT_EQ(report.offset, under ? 2u : 3u);
            EXPECT_NE(std::string(report.detail).find("after it was freed"), std::string::npos)
                << report.detail;
            EXPECT_NE(std::string(report.detail).find(by_check ? "heap_check" : "left quarantine"),
                      std::string::npos)
                << report.detail;
            EXPECT_FALSE(report.freed.empty());
            EXPECT_FALSE(report.allocated.empty());
            test::clear_reports();
        }
    }
}

// A checked block of another heap: foreign-heap both ways, from the heap over a page frame
// allocator or the region heap, whichever the other one is (a region heap given a page-frame
// heap's block reads that allocator's page tags). Nothing changes either way.
TEST_P(MatrixTest, ABlockOfAnotherHeapIsRefused) {
    test::Region region(1 << 20);
    Heap* other = heap_create_in_region(region.data(), region.size());
    ASSERT_NE(other, nullptr);
    ASSERT_TRUE(heap_set_check_level(*other, CheckLevel::Report));
    for (const size_t size : {size_t{24}, size_t{3000}}) {
        void* theirs = heap_allocate(*other, size);
        void* ours = heap_allocate(*m_heap, size);
        heap_free(*m_heap, theirs);
        heap_free(*other, ours);
        ASSERT_EQ(test::report_count(), 2u);
        EXPECT_EQ(test::report(0).kind, ErrorKind::ForeignHeap) << describe(test::report(0));
        EXPECT_EQ(test::report(1).kind, ErrorKind::ForeignHeap) << describe(test::report(1));
        test::clear_reports();
        EXPECT_TRUE(heap_check(*other));
        EXPECT_TRUE(heap_check(*m_heap));
        heap_free(*m_heap, ours);
        heap_free(*other, theirs);
        EXPECT_EQ(test::report_count(), 0u);
    }
    heap_flush_quarantine(*other);
    EXPECT_TRUE(heap_destroy(*other));
}

// An aligned block's front red zone spans the padding before it as well as the header's last 8
// bytes: a write as far back as alignment - 120 bytes before it is a buffer-underflow, with the
// whole distance as the offset.
TEST_P(MatrixTest, AnAlignedBlocksFrontRedZoneSpansItsPadding) {
    for (const size_t alignment : {size_t{256}, size_t{4096}}) {
        auto* block = static_cast<unsigned char*>(heap_allocate(*m_heap, 40, alignment));
        ASSERT_NE(block, nullptr);
        const size_t reach = alignment - heap::kCheckedHeaderBytes + heap::kFrontZoneBytes;
        *(block - reach) = 0;
        heap_free(*m_heap, block);
        ASSERT_EQ(test::report_count(), 1u);
        EXPECT_EQ(test::report(0).kind, ErrorKind::BufferUnderflow) << describe(test::report(0));
        EXPECT_EQ(test::report(0).offset, reach);
        EXPECT_EQ(test::report(0).address, reinterpret_cast<uintptr_t>(block - reach));
        test::clear_reports();
    }
}

// A write that runs past a block's tail red zone and the core's header of the next block reaches
// that block's checked-mode header, whose first words link it into the live list or the
// quarantine. Checked mode never follows links it did not write: a free of that block is refused
// and reported, and heap_check(), the leak count and the frees of its neighbours neither crash
// nor write through them. Here the links point at a buffer of the test's (a write through them
// would show) and at no memory at all (following them would fault).
TEST_P(MatrixTest, DamagedListLinksAreNeverFollowed) {
    void* older = heap_allocate(*m_heap, 24);
    auto* block = static_cast<unsigned char*>(heap_allocate(*m_heap, 24));
    void* newer = heap_allocate(*m_heap, 24);
    heap::CheckedBlock* header = checked_header_of(block);
    const heap::CheckedBlock saved = *header;
    static uintptr_t victim[4] = {1, 2, 3, 4};
    for (const uintptr_t forged :
         {reinterpret_cast<uintptr_t>(&victim[1]), uintptr_t{0x7878787878787878}}) {
        header->prev = reinterpret_cast<heap::CheckedBlock*>(forged);
        header->next = reinterpret_cast<heap::CheckedBlock*>(forged + 8);
        EXPECT_FALSE(heap_check(*m_heap));
        EXPECT_GE(test::report_count(), 1u);
        test::clear_reports();
        // The walk of the live list (newest first) stops at it and goes on from the oldest
        // block: only the damaged block is not counted.
        EXPECT_EQ(heap_leaks_since(*m_heap, 0).blocks, 2u);
        const std::vector<std::string> lines = leak_report_lines();
        ASSERT_FALSE(lines.empty());
        EXPECT_TRUE(names_block(lines, older));
        EXPECT_TRUE(names_block(lines, newer));
        EXPECT_FALSE(names_block(lines, block));
        EXPECT_NE(lines.back().find("a damaged checked-mode header at"), std::string::npos)
            << lines.back();
        heap_free(*m_heap, block);
        ASSERT_EQ(test::report_count(), 1u);
        EXPECT_EQ(test::report(0).kind, ErrorKind::CorruptMetadata) << describe(test::report(0));
        test::clear_reports();
        EXPECT_EQ(victim[0] + victim[1] + victim[2] + victim[3], 10u) << "written through";
    }
    // Its neighbours go: their links to it are checked mode's own.
    heap_free(*m_heap, newer);
    heap_free(*m_heap, older);
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_EQ(victim[0] + victim[1] + victim[2] + victim[3], 10u) << "written through";
    EXPECT_FALSE(heap_check(*m_heap));
    test::clear_reports();
    // Repaired as the list is now (the only live block), it is freed as usual.
    *header = saved;
    header->prev = nullptr;
    header->next = nullptr;
    header->seal = heap::seal_of(*header);
    EXPECT_TRUE(heap_check(*m_heap));
    heap_free(*m_heap, block);
    EXPECT_EQ(test::report_count(), 0u);
}

// Two damaged headers in the live list stop its walks from both ends: the blocks between them
// are not reached, every other block is, and both headers are reported.
TEST_P(MatrixTest, TwoDamagedLiveHeadersHideOnlyTheBlocksBetweenThem) {
    unsigned char* blocks[5];
    for (unsigned char*& block : blocks) {
        block = static_cast<unsigned char*>(heap_allocate(*m_heap, 24));
        ASSERT_NE(block, nullptr);
    }
    // The live list, newest first: 4, 3 (damaged), 2, 1 (damaged), 0.
    const heap::CheckedBlock saved3 = *checked_header_of(blocks[3]);
    const heap::CheckedBlock saved1 = *checked_header_of(blocks[1]);
    forge_links(blocks[3]);
    forge_links(blocks[1]);
    EXPECT_FALSE(heap_check(*m_heap));
    EXPECT_EQ(corrupt_metadata_reports_at({blocks[1], blocks[3]}), 2u);
    test::clear_reports();
    EXPECT_EQ(heap_leaks_since(*m_heap, 0).blocks, 2u);
    const std::vector<std::string> lines = leak_report_lines();
    ASSERT_FALSE(lines.empty());
    EXPECT_TRUE(names_block(lines, blocks[4]));
    EXPECT_TRUE(names_block(lines, blocks[0]));
    for (unsigned char* hidden : {blocks[3], blocks[2], blocks[1]}) {
        EXPECT_FALSE(names_block(lines, hidden));
    }
    EXPECT_NE(lines.back().find("damaged checked-mode headers at"), std::string::npos)
        << lines.back();
    // Repaired, everything is freed as usual.
    *checked_header_of(blocks[3]) = saved3;
    *checked_header_of(blocks[1]) = saved1;
    EXPECT_TRUE(heap_check(*m_heap));
    EXPECT_EQ(heap_leaks_since(*m_heap, 0).blocks, 5u);
    for (unsigned char* block : blocks) {
        heap_free(*m_heap, block);
    }
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_check(*m_heap));
}

// A heap at level report over `region`, which outlives it: a test that leaves damaged blocks
// taken never destroys it.
Heap* checked_heap_in(unsigned char* region, size_t bytes) {
    Heap* heap = heap_create_in_region(region, bytes);
    if (heap != nullptr && !heap_set_check_level(*heap, CheckLevel::Report)) {
        return nullptr;
    }
    test::clear_reports();
    return heap;
}

// After damage was reported and left alone: the heap serves and frees a block, and nothing a
// check reaches is damaged.
void expect_the_heap_goes_on(Heap& heap) {
    void* fresh = heap_allocate(heap, 24);
    ASSERT_NE(fresh, nullptr);
    heap_free(heap, fresh);
    heap_flush_quarantine(heap);
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_TRUE(heap_check(heap)) << "nothing left that a check reaches is damaged";
    test::clear_reports();
}

// The same for a block waiting in the quarantine: its damaged header is reported when the
// quarantine reaches it, and neither its links nor its block's bounds are trusted then; it is
// left alone (never reused), the block freed after it leaves the quarantine as usual, and the
// heap goes on. The damaged block stays taken, so the heap can never be destroyed: it lives in
// memory that outlives it.
TEST(CheckedQuarantineDamage, ADamagedQuarantinedHeaderIsLeftAlone) {
    alignas(64) static unsigned char region[1 << 20];
    Heap* heap = checked_heap_in(region, sizeof(region));
    ASSERT_NE(heap, nullptr);
    auto* block = static_cast<unsigned char*>(heap_allocate(*heap, 24));
    void* later = heap_allocate(*heap, 24);
    heap_free(*heap, block);
    heap_free(*heap, later);
    heap::CheckedBlock* header = checked_header_of(block);
    header->next = reinterpret_cast<heap::CheckedBlock*>(uintptr_t{0x7878787878787878});
    header->size = uint64_t{1} << 40; // a verify of its poison would read far past the heap
    EXPECT_FALSE(heap_check(*heap));
    EXPECT_GE(test::report_count(), 1u);
    test::clear_reports();
    heap_flush_quarantine(*heap);
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::CorruptMetadata) << describe(test::report(0));
    test::clear_reports();
    // The block freed after it was reached from the quarantine's back and went back to the heap.
    EXPECT_EQ(heap_statistics(*heap).blocks_in_use, 1u);
    expect_the_heap_goes_on(*heap);
}

// Two damaged headers in the quarantine: both are reported (by heap_check() and when the
// quarantine reaches them) and left alone with the blocks between them; the blocks before the
// first and after the second leave the quarantine as usual.
TEST(CheckedQuarantineDamage, TwoDamagedQuarantinedHeadersKeepOnlyTheBlocksBetweenThem) {
    alignas(64) static unsigned char region[1 << 20];
    Heap* heap = checked_heap_in(region, sizeof(region));
    ASSERT_NE(heap, nullptr);
    unsigned char* blocks[5];
    for (unsigned char*& block : blocks) {
        block = static_cast<unsigned char*>(heap_allocate(*heap, 24));
        ASSERT_NE(block, nullptr);
    }
    for (unsigned char* block : blocks) {
        heap_free(*heap, block); // the quarantine, oldest first: 0, 1, 2, 3, 4
    }
    forge_links(blocks[1]);
    forge_links(blocks[3]);
    EXPECT_FALSE(heap_check(*heap));
    EXPECT_EQ(corrupt_metadata_reports_at({blocks[1], blocks[3]}), 2u);
    test::clear_reports();
    heap_flush_quarantine(*heap);
    EXPECT_EQ(test::report_count(), 2u);
    EXPECT_EQ(corrupt_metadata_reports_at({blocks[1], blocks[3]}), 2u);
    test::clear_reports();
    // Blocks 1, 2 and 3 stay taken; 0 and 4 went back.
    EXPECT_EQ(heap_statistics(*heap).blocks_in_use, 3u);
    expect_the_heap_goes_on(*heap);
}

// A damaged header met by the eviction a free makes (the quarantine over its limit, not a flush):
// it is reported then, and the blocks freed after it keep passing through the quarantine and
// back to the heap, so the heap holds just the damaged block beyond the program's.
TEST(CheckedQuarantineDamage, AFreesEvictionPassesADamagedHeader) {
    alignas(64) static unsigned char region[1 << 20];
    Heap* heap = checked_heap_in(region, sizeof(region));
    ASSERT_NE(heap, nullptr);
    heap_set_quarantine_limit(*heap, 4096); // a few dozen small blocks
    std::vector<unsigned char*> blocks;
    for (int i = 0; i < 400; ++i) {
        blocks.push_back(static_cast<unsigned char*>(heap_allocate(*heap, 32)));
        ASSERT_NE(blocks.back(), nullptr);
    }
    for (size_t i = 0; i < 10; ++i) {
        heap_free(*heap, blocks[i]);
    }
    checked_header_of(blocks[5])->next =
        reinterpret_cast<heap::CheckedBlock*>(uintptr_t{0x7878787878787878});
    ASSERT_EQ(test::report_count(), 0u);
    for (size_t i = 10; i < blocks.size(); ++i) {
        heap_free(*heap, blocks[i]);
    }
    ASSERT_EQ(test::report_count(), 1u);
    EXPECT_EQ(test::report(0).kind, ErrorKind::CorruptMetadata) << describe(test::report(0));
    EXPECT_EQ(test::report(0).address, reinterpret_cast<uintptr_t>(blocks[5]));
    test::clear_reports();
    // Hundreds of blocks went through after it (quarantined blocks do not count as in use).
    EXPECT_LT(heap_statistics(*heap).blocks_in_use, 100u);
    heap_flush_quarantine(*heap);
    EXPECT_EQ(test::report_count(), 0u);
    EXPECT_EQ(heap_statistics(*heap).blocks_in_use, 1u);
    expect_the_heap_goes_on(*heap);
}

// Random mallocs and frees at level report, with now and then a live or a quarantined block's
// checked-mode header damaged (both links forged to an address nothing maps), against a model of
// the live list (newest first) and the quarantine (oldest first): the leak count is every live
// block outside the stretch from the first to the last damaged one, heap_check() fails exactly
// while a damaged header is reachable, and a flush strands exactly the quarantined stretch from
// the first damaged block to the last; everything else goes back to the heap.
TEST(CheckedQuarantineDamage, RandomDamageMatchesAModel) {
    alignas(64) static unsigned char region[4 << 20];
    Heap* heap = checked_heap_in(region, sizeof(region));
    ASSERT_NE(heap, nullptr);
    heap_set_quarantine_limit(*heap, sizeof(region)); // nothing leaves it before a flush
    struct Block {
        unsigned char* start;
        bool damaged;
    };
    std::vector<Block> live;       // newest first, as the live list
    std::vector<Block> quarantine; // oldest first
    uint64_t stranded = 0;         // blocks left alone for good
    const auto damage = [](Block& block) {
        forge_links(block.start);
        block.damaged = true;
    };
    // Blocks a walk from both ends reaches: all but the stretch from the first damaged block to
    // the last.
    const auto reached = [](const std::vector<Block>& list) {
        size_t first = list.size();
        size_t last = 0;
        for (size_t i = 0; i < list.size(); ++i) {
            if (list[i].damaged) {
                first = std::min(first, i);
                last = i;
            }
        }
        return first == list.size() ? list.size() : list.size() - (last - first + 1);
    };
    const auto any_damaged = [](const std::vector<Block>& list) {
        return std::any_of(list.begin(), list.end(), [](const Block& b) { return b.damaged; });
    };
    std::mt19937 random(7);
    for (int step = 0; step < 3000; ++step) {
        const unsigned operation = random() % 100;
        if (operation < 45 || live.empty()) {
            auto* start = static_cast<unsigned char*>(heap_allocate(*heap, 16 + random() % 300));
            ASSERT_NE(start, nullptr);
            live.insert(live.begin(), Block{start, false});
        } else if (operation < 88) {
            // Half of the frees among the newest blocks, so that older undamaged blocks stay
            // behind the damaged ones.
            const size_t index = random() % 2 == 0 ? random() % std::min<size_t>(live.size(), 8)
                                                   : random() % live.size();
            const Block block = live[index];
            heap_free(*heap, block.start);
            if (block.damaged) {
                ASSERT_EQ(test::report_count(), 1u) << "step " << step;
                EXPECT_EQ(test::report(0).kind, ErrorKind::CorruptMetadata);
                test::clear_reports(); // refused: it stays on the live list
            } else {
                ASSERT_EQ(test::report_count(), 0u) << "step " << step;
                live.erase(live.begin() + static_cast<ptrdiff_t>(index));
                quarantine.push_back(block);
            }
        } else if (operation < 91) {
            damage(live[random() % live.size()]);
        } else if (operation < 94 && !quarantine.empty()) {
            damage(quarantine[random() % quarantine.size()]);
        } else if (operation < 97) {
            ASSERT_EQ(heap_leaks_since(*heap, 0).blocks, reached(live)) << "step " << step;
            EXPECT_EQ(heap_check(*heap), !any_damaged(live) && !any_damaged(quarantine))
                << "step " << step;
            test::clear_reports();
        } else {
            // The flush strands the stretch from the first damaged quarantined block to the last.
            stranded += quarantine.size() - reached(quarantine);
            heap_flush_quarantine(*heap);
            test::clear_reports();
            quarantine.clear();
            EXPECT_EQ(heap_statistics(*heap).blocks_in_use, live.size() + stranded)
                << "step " << step;
        }
    }
}

// The first line of a report holds its whole detail after a 64-bit address: the two longest
// details the heap gives (a damaged checked header, a broken free-list seal or block header)
// were cut.
TEST(ReportText, TheLongestDetailsAreNotCut) {
    for (const char* detail :
         {"the block's checked-mode header is damaged (a wild write or an underflow past its red "
          "zone); the block is left alone",
          "a free medium block's list link or header was overwritten (after free, or past the end "
          "of the block before it): the free lists were rebuilt without following it (size = "
          "blocks found)",
          "the heap's header of this block was overwritten (a write past the end of the block "
          "before it, or before this one): the block is taken out of use (size = blocks "
          "found)"}) {
        const ErrorReport report{ErrorKind::CorruptMetadata,
                                 "heap",
                                 0x7fffffffffffull,
                                 0,
                                 nullptr,
                                 detail,
                                 0,
                                 0,
                                 {},
                                 {}};
        EXPECT_EQ(describe(report), std::string("bedrock: heap: corrupt-metadata at "
                                                "0x7fffffffffff: ") +
                                        detail + "\n");
    }
}

} // namespace
} // namespace bedrock
