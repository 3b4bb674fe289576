// SPDX-License-Identifier: MIT
// In-kernel tests of checked mode on both architectures: every misuse scenario
// (tests/support/misuse_scenarios.h) at every level - off, report (printed and in the
// ErrorLog), report through the error hook, abort (the panic is caught) - with the exact report,
// heap_check() afterwards and every page back; guard pages taking real CPU faults that the
// fault handler explains; the leak report; and a clean randomized run that reports nothing.
#include <stddef.h>
#include <stdint.h>

#include "bedrock/heap.h"
#include "bedrock/heap_checks.h"
#include "bedrock/malloc.h"
#include "bedrock/new.h"
#include "kernel/allocators.h"
#include "kernel/console.h"
#include "kernel/error_log.h"
#include "kernel/test_registry.h"
#include "kernel/trap.h"
#include "settle_heap.h"
#include "support/misuse_scenarios.h"
#include "test_random.h"

namespace bedrock::kernel {
namespace {

enum class Delivery { Log, Hook, Panic };

struct Recorder {
    static constexpr size_t kCapacity = 4;
    ErrorReport reports[kCapacity];
    size_t count = 0;
};

void record(void* context, const ErrorReport& report) {
    auto* recorder = static_cast<Recorder*>(context);
    if (recorder->count < Recorder::kCapacity) {
        recorder->reports[recorder->count] = report;
    }
    ++recorder->count;
}

// A checked heap and a second heap over the kernel's page frame allocator, for one test.
class TestHeaps {
public:
    TestHeaps()
        : m_free_before(free_pages_with_default_heap_trimmed()),
          m_heap(heap_create(page_frame_allocator())),
          m_other(heap_create(page_frame_allocator())) {}

    [[nodiscard]] bool ok() const { return m_heap != nullptr && m_other != nullptr; }
    [[nodiscard]] Heap& heap() { return *m_heap; }
    [[nodiscard]] Heap& other() { return *m_other; }

    // Flushes, checks and destroys both heaps; true if every page came back.
    bool tear_down() {
        heap_set_error_hook(*m_heap, nullptr, nullptr);
        heap_flush_quarantine(*m_heap);
        const bool checked = heap_check(*m_heap) && heap_statistics(*m_heap).blocks_in_use == 0;
        const bool destroyed = heap_destroy(*m_heap) && heap_destroy(*m_other);
        return checked && destroyed && page_frame_allocator().free_pages() == m_free_before;
    }

private:
    uint64_t m_free_before;
    Heap* m_heap;
    Heap* m_other;
};

struct ScenarioRun {
    const test::MisuseScenario* scenario;
    test::MisuseContext* context;
    test::ExpectedReport* expected;
};

void commit(void* argument) {
    auto* run = static_cast<ScenarioRun*>(argument);
    run->scenario->run(*run->context, *run->expected);
}

bool matches(TestContext& bedrock_test_context, const char* name, const ErrorReport& report,
             const test::ExpectedReport& expected) {
    const char* mismatch = test::report_mismatch(report, expected);
    if (mismatch != nullptr) {
        print("    %s: the report's %s differs from the expected one\n", name, mismatch);
    }
    return BEDROCK_EXPECT(mismatch == nullptr);
}

void run_scenario(TestContext& bedrock_test_context, const test::MisuseScenario& scenario,
                  CheckLevel level, Delivery delivery) {
    TestHeaps heaps;
    BEDROCK_REQUIRE(heaps.ok());
    BEDROCK_REQUIRE(heap_set_check_level(heaps.heap(), level));
    Recorder recorder;
    if (delivery == Delivery::Hook) {
        heap_set_error_hook(heaps.heap(), record, &recorder);
    }
    error_log().clear();
    test::MisuseContext context{heaps.heap(), heaps.other(), level, {}, {}};
    test::ExpectedReport expected{};
    ScenarioRun run{&scenario, &context, &expected};
    const Trap trap = run_catching_traps(commit, &run);
    BEDROCK_EXPECT(trap.kind == (level == CheckLevel::Abort &&
                                         (scenario.detected_when_off || level != CheckLevel::Off)
                                     ? TrapKind::Panic
                                     : TrapKind::None));
    heap_set_check_level(heaps.heap(), CheckLevel::Report);
    test::free_leftovers(context);

    const bool hooked = delivery == Delivery::Hook;
    const size_t count = hooked ? recorder.count : error_log().count();
    if (level == CheckLevel::Off && !scenario.detected_when_off) {
        BEDROCK_EXPECT_EQ(count, 0);
    } else if (BEDROCK_EXPECT_EQ(count, 1)) {
        matches(bedrock_test_context, scenario.name, hooked ? recorder.reports[0] : error_log()[0],
                expected);
    }
    if (hooked) {
        BEDROCK_EXPECT_EQ(error_log().count(), 0); // captured, not printed
    }
    BEDROCK_EXPECT(heaps.tear_down());
    error_log().clear();
}

void run_every_scenario(TestContext& bedrock_test_context, CheckLevel level, Delivery delivery) {
    for (size_t i = 0; i < test::kMisuseScenarioCount; ++i) {
        print("  scenario %s\n", test::kMisuseScenarios[i].name);
        run_scenario(bedrock_test_context, test::kMisuseScenarios[i], level, delivery);
    }
}

} // namespace

BEDROCK_TEST(checked_heap_misuse_level_off) {
    run_every_scenario(bedrock_test_context, CheckLevel::Off, Delivery::Log);
}

BEDROCK_TEST(checked_heap_misuse_level_report) {
    run_every_scenario(bedrock_test_context, CheckLevel::Report, Delivery::Log);
}

BEDROCK_TEST(checked_heap_misuse_level_report_to_hook) {
    run_every_scenario(bedrock_test_context, CheckLevel::Report, Delivery::Hook);
}

BEDROCK_TEST(checked_heap_misuse_level_abort) {
    run_every_scenario(bedrock_test_context, CheckLevel::Abort, Delivery::Log);
}

namespace {

struct Touch {
    volatile unsigned char* address;
    bool write;
};

void touch(void* argument) {
    const auto* access = static_cast<const Touch*>(argument);
    if (access->write) {
        *access->address = 1;
    } else {
        static_cast<void>(*access->address);
    }
}

[[gnu::noinline]] unsigned char* allocate_guarded_here(Heap& heap, size_t size) {
    auto* block = static_cast<unsigned char*>(heap_allocate_guarded(heap, size));
    __asm__ volatile("" : : "r"(block) : "memory");
    return block;
}

void guard_pages_at(TestContext& bedrock_test_context, CheckLevel level, Delivery delivery) {
    TestHeaps heaps;
    BEDROCK_REQUIRE(heaps.ok());
    Heap& heap = heaps.heap();
    BEDROCK_REQUIRE(heap_set_check_level(heap, level));
    BEDROCK_REQUIRE(heap_enable_guard_pages(heap, GuardPageOptions{7, 0}));
    Recorder recorder;
    if (delivery == Delivery::Hook) {
        heap_set_error_hook(heap, record, &recorder);
    }
    error_log().clear();
    const auto reports = [&](size_t index) -> const ErrorReport& {
        return delivery == Delivery::Hook ? recorder.reports[index] : error_log()[index];
    };
    const auto report_count = [&] {
        return delivery == Delivery::Hook ? recorder.count : error_log().count();
    };

    // Overflow: the first byte past the page faults on the very store.
    unsigned char* block = allocate_guarded_here(heap, 100);
    BEDROCK_REQUIRE(block != nullptr);
    const uintptr_t end = reinterpret_cast<uintptr_t>(block) + 100;
    const uintptr_t page_end = (end + kPageSize - 1) & ~(kPageSize - 1);
    BEDROCK_EXPECT(page_end - end < kHeapMinAlignment);
    block[99] = 1; // the last byte is fine
    Touch overflow{reinterpret_cast<volatile unsigned char*>(page_end), true};
    Trap trap = run_catching_traps(touch, &overflow);
    BEDROCK_EXPECT(trap.kind == TrapKind::Fault);
    BEDROCK_EXPECT_EQ(trap.fault.address, page_end);
    BEDROCK_EXPECT(trap.fault.access == FaultAccess::Write);
    if (BEDROCK_EXPECT_EQ(report_count(), 1)) {
        const test::ExpectedReport expected{ErrorKind::BufferOverflow,
                                            page_end,
                                            reinterpret_cast<uintptr_t>(block),
                                            100,
                                            page_end - end + 1,
                                            reinterpret_cast<const void*>(&allocate_guarded_here),
                                            false};
        matches(bedrock_test_context, "guard page overflow", reports(0), expected);
    }

    // Use after free: the freed block's page is inaccessible; a read faults.
    heap_free(heap, block);
    Touch use_after_free{block + 8, false};
    trap = run_catching_traps(touch, &use_after_free);
    BEDROCK_EXPECT(trap.kind == TrapKind::Fault);
    BEDROCK_EXPECT_EQ(trap.fault.address, reinterpret_cast<uintptr_t>(block + 8));
    BEDROCK_EXPECT(trap.fault.access == FaultAccess::Read);
    if (BEDROCK_EXPECT_EQ(report_count(), 2)) {
        const test::ExpectedReport expected{ErrorKind::UseAfterFree,
                                            reinterpret_cast<uintptr_t>(block + 8),
                                            reinterpret_cast<uintptr_t>(block),
                                            100,
                                            8,
                                            reinterpret_cast<const void*>(&allocate_guarded_here),
                                            true};
        matches(bedrock_test_context, "guard page use after free", reports(1), expected);
    }
    // Underflow: the guard page before the block's page.
    block = allocate_guarded_here(heap, kPageSize - kHeapMinAlignment);
    BEDROCK_REQUIRE(block != nullptr);
    Touch underflow{block - 16 - 1, true};
    trap = run_catching_traps(touch, &underflow);
    BEDROCK_EXPECT(trap.kind == TrapKind::Fault);
    if (BEDROCK_EXPECT_EQ(report_count(), 3)) {
        BEDROCK_EXPECT(reports(2).kind == ErrorKind::BufferUnderflow);
        BEDROCK_EXPECT_EQ(reports(2).offset, 17);
    }
    heap_free(heap, block);
    BEDROCK_EXPECT_EQ(report_count(), 3);
    BEDROCK_EXPECT(heaps.tear_down());
    error_log().clear();
}

} // namespace

namespace {

struct PointerLoad {
    void* const* slot;
    uint64_t value;
};

// Dereferences the pointer stored in *slot, as code that forgot to initialise it would.
void follow_pointer(void* argument) {
    auto* load = static_cast<PointerLoad*>(argument);
    load->value = *static_cast<volatile const uint64_t*>(*load->slot);
}

} // namespace

// Uninitialized reads: a fresh checked block holds kFreshPoison, and a pointer read from it
// faults when dereferenced (non-canonical on x86-64, outside the address space on AArch64); a
// freed block reads as kFreedPoison while it is in quarantine. No report: the poison makes the
// bug visible, and the fault stops it. Checked at levels report and abort (level off does not
// poison).
BEDROCK_TEST(checked_heap_uninitialized_and_freed_memory_is_poisoned) {
    constexpr CheckLevel kLevels[] = {CheckLevel::Report, CheckLevel::Abort};
    for (const CheckLevel level : kLevels) {
        TestHeaps heaps;
        BEDROCK_REQUIRE(heaps.ok());
        Heap& heap = heaps.heap();
        BEDROCK_REQUIRE(heap_set_check_level(heap, level));
        error_log().clear();
        auto* slot = static_cast<void**>(heap_allocate(heap, 4 * sizeof(void*)));
        BEDROCK_REQUIRE(slot != nullptr);
        const auto* bytes = reinterpret_cast<const unsigned char*>(slot);
        bool all_fresh = true;
        for (size_t i = 0; i < 4 * sizeof(void*); ++i) {
            all_fresh = all_fresh && bytes[i] == kFreshPoison;
        }
        BEDROCK_EXPECT(all_fresh);
        PointerLoad load{slot, 0};
        const Trap trap = run_catching_traps(follow_pointer, &load);
        BEDROCK_EXPECT(trap.kind == TrapKind::Fault);
        heap_free(heap, slot);
        BEDROCK_EXPECT_EQ(bytes[0], kFreedPoison); // still in quarantine
        BEDROCK_EXPECT_EQ(error_log().count(), 0);
        BEDROCK_EXPECT(heaps.tear_down());
    }
}

BEDROCK_TEST(checked_heap_guard_pages_fault_and_are_explained) {
    guard_pages_at(bedrock_test_context, CheckLevel::Report, Delivery::Log);
    guard_pages_at(bedrock_test_context, CheckLevel::Report, Delivery::Hook);
    guard_pages_at(bedrock_test_context, CheckLevel::Abort, Delivery::Log);
    guard_pages_at(bedrock_test_context, CheckLevel::Off, Delivery::Log);
}

namespace {

void print_line(void*, const char* line) {
    print("%s\n", line);
}

// Allocates `count` blocks from one call site (a loop the compiler cannot unroll into several).
[[gnu::noinline]] void forget_to_free(Heap& heap, size_t size, void** blocks, size_t count) {
    for (size_t i = 0; i < count; ++i) {
        blocks[i] = heap_allocate(heap, size);
        __asm__ volatile("" : : "r"(blocks[i]) : "memory");
    }
}

} // namespace

namespace {

// Leaks at `level`: checked levels list every live checked block by site and count it since a
// checkpoint; level off allocates unchecked blocks, which leak reports cannot see (the heap's
// statistics still count them).
void leaks_at(TestContext& bedrock_test_context, CheckLevel level) {
    TestHeaps heaps;
    BEDROCK_REQUIRE(heaps.ok());
    Heap& heap = heaps.heap();
    BEDROCK_REQUIRE(heap_set_check_level(heap, level));
    const bool checked = level != CheckLevel::Off;
    void* early = heap_allocate(heap, 8);
    const uint64_t checkpoint = heap_checkpoint(heap);
    void* leaked[3];
    volatile size_t count = 3;
    forget_to_free(heap, 40, leaked, count);
    void* large = heap_allocate(heap, 100000);
    const LeakSummary since = heap_report_leaks(heap, print_line, nullptr, checkpoint);
    BEDROCK_EXPECT_EQ(since.blocks, checked ? 4 : 0);
    BEDROCK_EXPECT_EQ(since.bytes, checked ? 3 * 40 + 100000 : 0);
    BEDROCK_EXPECT_EQ(since.sites, checked ? 2 : 0);
    BEDROCK_EXPECT_EQ(heap_leaks_since(heap, 0).blocks, checked ? 5 : 0);
    BEDROCK_EXPECT_EQ(heap_statistics(heap).blocks_in_use, 5);
    for (void* block : leaked) {
        heap_free(heap, block);
    }
    heap_free(heap, large);
    BEDROCK_EXPECT_EQ(heap_leaks_since(heap, checkpoint).blocks, 0);
    heap_free(heap, early);
    BEDROCK_EXPECT(heaps.tear_down());
}

} // namespace

BEDROCK_TEST(checked_heap_leak_report_and_checkpoints) {
    leaks_at(bedrock_test_context, CheckLevel::Report);
    leaks_at(bedrock_test_context, CheckLevel::Abort);
    leaks_at(bedrock_test_context, CheckLevel::Off);
}

BEDROCK_TEST(checked_heap_clean_randomized_run_reports_nothing) {
    TestHeaps heaps;
    BEDROCK_REQUIRE(heaps.ok());
    Heap& heap = heaps.heap();
    BEDROCK_REQUIRE(heap_set_check_level(heap, CheckLevel::Report));
    BEDROCK_REQUIRE(heap_enable_guard_pages(heap, GuardPageOptions{21, 5}));
    heap_set_quarantine_limit(heap, 256 << 10);
    error_log().clear();
    struct Slot {
        unsigned char* block;
        size_t size;
    };
    static Slot slots[256];
    TestRandom random(0xc4ec);
    for (int i = 0; i < 20000; ++i) {
        Slot& slot = slots[random.next() % 256];
        if (slot.block != nullptr) {
            BEDROCK_EXPECT(slot.size == 0 || slot.block[slot.size - 1] == 0x5a);
            heap_free(heap, slot.block);
            slot.block = nullptr;
            continue;
        }
        slot.size = random.next() % 4 == 0 ? random.next() % 30000 : random.next() % 200;
        slot.block = static_cast<unsigned char*>(heap_allocate(heap, slot.size));
        if (slot.block == nullptr) {
            continue; // a small machine (-m 8M) runs out: not what this test is about
        }
        if (slot.size != 0) {
            slot.block[0] = 0x5a;
            slot.block[slot.size - 1] = 0x5a;
        }
    }
    BEDROCK_EXPECT(heap_check(heap));
    for (Slot& slot : slots) {
        heap_free(heap, slot.block);
        slot.block = nullptr;
    }
    BEDROCK_EXPECT_EQ(error_log().count(), 0);
    BEDROCK_EXPECT(heaps.tear_down());
}

namespace {

// Whether the error log holds one report since its last clear(), of `kind`, `size` and
// `offset`; clears it for the next.
bool only_report_is(ErrorKind kind, uint64_t size, uint64_t offset) {
    const bool only = error_log().count() == 1 && error_log()[0].kind == kind &&
                      error_log()[0].size == size && error_log()[0].offset == offset;
    error_log().clear();
    return only;
}

} // namespace

// The operators on the kernel's default heap, checked: a block freed by another family of calls
// than allocated it (free() of operator new's, delete of new[]'s or malloc's, ...) is reported
// deallocation-mismatch and freed all the same; a sized delete naming another size than the
// block's is reported size-mismatch; a matching pair reports nothing. Every block is freed, so
// the heap ends as it began.
BEDROCK_TEST(checked_heap_names_deallocation_and_size_mismatches) {
    Heap& heap = *default_heap();
    const CheckLevel level = heap_check_level(heap);
    heap_flush_quarantine(heap);
    const uint64_t blocks = heap_statistics(heap).blocks_in_use;
    BEDROCK_REQUIRE(heap_set_check_level(heap, CheckLevel::Report));
    error_log().clear();

    ::operator delete(::operator new(24));
    ::operator delete[](::operator new[](24));
    bedrock_free(bedrock_malloc(24));
    ::operator delete (::operator new(40), size_t{40});
    ::operator delete[](::operator new[](40, std::align_val_t{64}), size_t{40},
                        std::align_val_t{64});
    BEDROCK_EXPECT_EQ(error_log().count(), 0);

    ::operator delete[](::operator new(24));
    BEDROCK_EXPECT(only_report_is(ErrorKind::DeallocationMismatch, 24, 0));
    bedrock_free(::operator new[](3000));
    BEDROCK_EXPECT(only_report_is(ErrorKind::DeallocationMismatch, 3000, 0));
    ::operator delete(bedrock_malloc(100000));
    BEDROCK_EXPECT(only_report_is(ErrorKind::DeallocationMismatch, 100000, 0));
    ::operator delete (::operator new(48), size_t{16});
    BEDROCK_EXPECT(only_report_is(ErrorKind::SizeMismatch, 48, 16));

    BEDROCK_EXPECT(heap_set_check_level(heap, level));
    heap_flush_quarantine(heap);
    BEDROCK_EXPECT(heap_check(heap));
    BEDROCK_EXPECT_EQ(heap_statistics(heap).blocks_in_use, blocks);
}

} // namespace bedrock::kernel
