// SPDX-License-Identifier: MIT
// In-kernel tests of trap recovery (kernel/trap.h) and of hiding pages of the live identity map
// (arch::set_page_present): a panic and CPU faults taken on purpose come back as Traps, and the
// run carries on. With two CPUs or more, a page hidden by one CPU must fault on another that has
// just read it (its TLB held the translation).
//
// The hidden page comes from a 2 MiB block of the page frame allocator when one is free: such a
// block is mapped by one block leaf (or lies in a 1 GiB one), so hiding a page of it splits the
// block at run time. With less memory, a single page is used and the split may not happen.
#include <stdint.h>

#include "bedrock/page_frame_allocator.h"
#include "bedrock/platform.h"
#include "bedrock/spinlock.h"
#include "kernel/allocators.h"
#include "kernel/arch.h"
#include "kernel/console.h"
#include "kernel/smp.h"
#include "kernel/test_registry.h"
#include "kernel/trap.h"

namespace bedrock::kernel {
namespace {

constexpr unsigned kSplitOrder = 9; // 2 MiB
constexpr uint64_t kHiddenPageIndex = 5;
constexpr uint64_t kPatternSalt = 0x5DEECE66D;
// More round trips than the split reserve has pages (16, kernel/arch.h): if a round trip took a
// table page instead of reusing the tables split before, set_page_present() would refuse one.
constexpr int kRoundTrips = 2 * 16;
// Canonical on x86-64, inside TTBR0's range on AArch64, far above any RAM the tests boot with.
constexpr uint64_t kUnmappedAddress = 0x0000'4000'0000'0000;

bool same_text(const char* left, const char* right) {
    for (; *left != '\0' && *left == *right; ++left, ++right) {
    }
    return *left == *right;
}

volatile uint64_t* word_at(PhysAddr address) {
    return static_cast<volatile uint64_t*>(platform::phys_to_virt(address));
}

uint64_t pattern(PhysAddr address) {
    return (address ^ kPatternSalt) * 0x100000001B3;
}

void panicking_body(void*) {
    panic("expected panic %d of %s", 1, "trap_test");
}

void returning_body(void* context) {
    *static_cast<int*>(context) = 7;
}

// Reads or writes the word at context->address.
struct Access {
    PhysAddr address;
    uint64_t value;
};

void read_body(void* context) {
    auto& access = *static_cast<Access*>(context);
    access.value = *word_at(access.address);
}

void write_body(void* context) {
    auto& access = *static_cast<Access*>(context);
    *word_at(access.address) = access.value;
}

// Checks the first word of every page of the block except the hidden one: every leaf the split
// made still maps its own page.
struct Block {
    PhysAddr base;
    uint64_t pages;
    PhysAddr hidden;
    bool intact;
};

void verify_other_pages_body(void* context) {
    auto& block = *static_cast<Block*>(context);
    block.intact = true;
    for (uint64_t i = 0; i < block.pages; ++i) {
        const PhysAddr page = block.base + i * kPageSize;
        if (page != block.hidden && *word_at(page) != pattern(page)) {
            block.intact = false;
        }
    }
}

// A page hidden by one CPU must fault on another that had it in its TLB: CPU 1 reads the page,
// CPU 0 hides it, CPU 1 reads it again (a fault); CPU 0 shows it, CPU 1 reads it (no fault).
struct OtherCpuRun {
    PhysAddr page;
    uint32_t phase;
    Trap hidden_read;
    Trap shown_read;
    uint64_t first_value;
};

// With the CPU's spin-wait hint: under QEMU's -icount, one thread runs every CPU in turn, and
// a bare loop holds the others off for the whole time slice (AArch64's yield hands it on).
void wait_for_phase(const OtherCpuRun& run, uint32_t phase) {
    while (__atomic_load_n(&run.phase, __ATOMIC_ACQUIRE) != phase) {
        SpinLock::relax();
    }
}

void next_phase(OtherCpuRun& run) {
    __atomic_store_n(&run.phase, run.phase + 1, __ATOMIC_RELEASE);
}

void other_cpu_work(void* context, unsigned cpu) {
    auto& run = *static_cast<OtherCpuRun*>(context);
    Access read{run.page, 0};
    if (cpu == 1) {
        run.first_value = *word_at(run.page); // the page's translation is now in CPU 1's TLB
        next_phase(run);                      // 1: CPU 0 hides the page
        wait_for_phase(run, 2);
        run.hidden_read = run_catching_traps(read_body, &read);
        next_phase(run); // 3: CPU 0 shows the page
        wait_for_phase(run, 4);
        run.shown_read = run_catching_traps(read_body, &read);
        next_phase(run); // 5: done
    } else if (cpu == 0) {
        wait_for_phase(run, 1);
        static_cast<void>(arch::set_page_present(run.page, false));
        next_phase(run);
        wait_for_phase(run, 3);
        static_cast<void>(arch::set_page_present(run.page, true));
        next_phase(run);
        wait_for_phase(run, 5);
    }
}

} // namespace
} // namespace bedrock::kernel

using namespace bedrock;
using namespace bedrock::kernel;

BEDROCK_TEST(trap_panic_is_caught_with_its_message) {
    const Trap trap = run_catching_traps(panicking_body, nullptr);
    BEDROCK_EXPECT(trap.kind == TrapKind::Panic);
    BEDROCK_EXPECT(same_text(trap.message, "expected panic 1 of trap_test"));

    int value = 0;
    const Trap none = run_catching_traps(returning_body, &value);
    BEDROCK_EXPECT(none.kind == TrapKind::None);
    BEDROCK_EXPECT(same_text(none.message, ""));
    BEDROCK_EXPECT_EQ(value, 7);
}

BEDROCK_TEST(trap_null_read_is_caught) {
    Access access{0, 0};
    const Trap trap = run_catching_traps(read_body, &access);
    BEDROCK_REQUIRE(trap.kind == TrapKind::Fault);
    BEDROCK_EXPECT(trap.fault.address_valid);
    BEDROCK_EXPECT_EQ(trap.fault.address, 0);
    BEDROCK_EXPECT(trap.fault.access == FaultAccess::Read);
    BEDROCK_EXPECT(same_text(trap.message, trap.fault.description));
    BEDROCK_EXPECT(trap.fault.registers == nullptr);
}

BEDROCK_TEST(trap_hidden_page_faults_and_keeps_its_data) {
    PageFrameAllocator& pfa = page_frame_allocator();
    unsigned order = kSplitOrder;
    PhysAddr base = pfa.allocate(order);
    if (base == kNoPage) {
        order = 0;
        base = pfa.allocate(order);
        print("    no free 2 MiB block: hiding a single page\n");
    }
    BEDROCK_REQUIRE(base != kNoPage);
    Block block{base, uint64_t{1} << order, 0, false};
    block.hidden = base + (order == 0 ? 0 : kHiddenPageIndex * kPageSize);
    for (uint64_t i = 0; i < block.pages; ++i) {
        *word_at(base + i * kPageSize) = pattern(base + i * kPageSize);
    }

    BEDROCK_EXPECT(arch::set_page_present(block.hidden, false));
    Access read{block.hidden, 0};
    const Trap read_trap = run_catching_traps(read_body, &read);
    BEDROCK_EXPECT(read_trap.kind == TrapKind::Fault);
    BEDROCK_EXPECT(read_trap.fault.address_valid);
    BEDROCK_EXPECT_EQ(read_trap.fault.address, block.hidden);
    BEDROCK_EXPECT(read_trap.fault.access == FaultAccess::Read);

    Access write{block.hidden, ~pattern(block.hidden)};
    const Trap write_trap = run_catching_traps(write_body, &write);
    BEDROCK_EXPECT(write_trap.kind == TrapKind::Fault);
    BEDROCK_EXPECT_EQ(write_trap.fault.address, block.hidden);
    BEDROCK_EXPECT(write_trap.fault.access == FaultAccess::Write);

    const Trap verify_trap = run_catching_traps(verify_other_pages_body, &block);
    BEDROCK_EXPECT(verify_trap.kind == TrapKind::None);
    BEDROCK_EXPECT(block.intact);

    BEDROCK_EXPECT(arch::set_page_present(block.hidden, true));
    BEDROCK_EXPECT_EQ(*word_at(block.hidden), pattern(block.hidden));

    // A second round trip, through the tables the first one split.
    BEDROCK_EXPECT(arch::set_page_present(block.hidden, false));
    BEDROCK_EXPECT(run_catching_traps(read_body, &read).kind == TrapKind::Fault);
    BEDROCK_EXPECT(arch::set_page_present(block.hidden, true));
    BEDROCK_EXPECT(run_catching_traps(read_body, &read).kind == TrapKind::None);
    BEDROCK_EXPECT_EQ(read.value, pattern(block.hidden));

    for (int round = 0; round < kRoundTrips; ++round) {
        BEDROCK_REQUIRE(arch::set_page_present(block.hidden, false));
        BEDROCK_REQUIRE(arch::set_page_present(block.hidden, true));
    }
    BEDROCK_EXPECT_EQ(*word_at(block.hidden), pattern(block.hidden));
    pfa.free(base, order);
}

BEDROCK_TEST(trap_set_page_present_refuses_what_is_not_mapped_ram) {
    BEDROCK_EXPECT(!arch::set_page_present(kUnmappedAddress, false));
    BEDROCK_EXPECT(!arch::set_page_present(kUnmappedAddress, true));
    // Physical page 0 stays unmapped so that null dereferences fault.
    BEDROCK_EXPECT(!arch::set_page_present(0, true));
    BEDROCK_EXPECT(!arch::set_page_present(kPageSize + 8, false)); // not page-aligned
}

BEDROCK_TEST(trap_hidden_page_faults_on_another_cpu) {
    if (online_cpu_count() < 2) {
        print("    skipped: one CPU\n");
        return;
    }
    PageFrameAllocator& pfa = page_frame_allocator();
    const PhysAddr page = pfa.allocate(0);
    BEDROCK_REQUIRE(page != kNoPage);
    *word_at(page) = pattern(page);
    static OtherCpuRun run;
    run = OtherCpuRun{page, 0, {}, {}, 0};
    run_on_every_cpu(other_cpu_work, &run);
    BEDROCK_EXPECT_EQ(run.first_value, pattern(page));
    BEDROCK_EXPECT(run.hidden_read.kind == TrapKind::Fault);
    BEDROCK_EXPECT(run.shown_read.kind == TrapKind::None);
    pfa.free(page, 0);
}
