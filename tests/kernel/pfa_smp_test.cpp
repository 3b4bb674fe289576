// SPDX-License-Identifier: MIT
// In-kernel SMP tests of the page frame allocator's CPU page lists: one CPU's requests reach the
// pages the other online CPUs hold on their lists, both while those CPUs are idle (every free
// page, exactly) and while they run allocate/free pairs on their lists (every free page but the
// few they hold when the last request fails). With one CPU the boot CPU runs them alone (no other
// CPU holds anything); the -smp boots are the point.
//
// The boot CPU takes every page largest blocks first, chaining the blocks through their own
// first words ({next block, order, a check word}), and gives them back afterwards.
#include <stdint.h>

#include "bedrock/page_frame_allocator.h"
#include "bedrock/platform.h"
#include "kernel/allocators.h"
#include "kernel/console.h"
#include "kernel/smp.h"
#include "kernel/test_registry.h"
#include "settle_heap.h"

namespace bedrock::kernel {
namespace {

// A CPU-list refill's batch: a CPU that allocates this many blocks of each CPU-list order and
// frees them keeps that many on each list (120 pages).
constexpr unsigned kFillBlocks = kCpuListBatch;
constexpr uint64_t kFilledPages = uint64_t{kFillBlocks} * ((1u << kCpuListOrders) - 1);
// What a CPU running allocate/free pairs can hold when another's request fails after taking
// every list back: the block it has out, or has pushed since its lists were taken (the largest
// CPU-list order), counted twice for safety.
constexpr uint64_t kPairHeldPages = 2 * (uint64_t{1} << (kCpuListOrders - 1));
constexpr uint64_t kCheckSalt = 0x9E3779B97F4A7C15;

struct BlockLink {
    PhysAddr next;
    uint64_t order;
    uint64_t check; // block ^ kCheckSalt
};

BlockLink& link(PhysAddr block) {
    return *static_cast<BlockLink*>(platform::phys_to_virt(block));
}

struct Taken {
    PhysAddr chain = kNoPage;
    uint64_t pages = 0;
};

// Every page the allocator hands out, largest blocks first.
Taken take_every_page(PageFrameAllocator& pfa) {
    Taken taken;
    for (unsigned order = kMaxOrder + 1; order-- > 0;) {
        for (PhysAddr block; (block = pfa.allocate(order)) != kNoPage;) {
            link(block) = BlockLink{taken.chain, order, block ^ kCheckSalt};
            taken.chain = block;
            taken.pages += uint64_t{1} << order;
        }
    }
    return taken;
}

// Frees the chain; returns whether every block's link was as written (no block handed out
// twice).
bool give_back(PageFrameAllocator& pfa, PhysAddr chain) {
    bool intact = true;
    while (chain != kNoPage) {
        const BlockLink current = link(chain);
        intact = intact && current.check == (chain ^ kCheckSalt);
        pfa.free(chain, static_cast<unsigned>(current.order));
        chain = current.next;
    }
    return intact;
}

// The calling CPU's lists end up holding kFillBlocks blocks of each order.
void fill_calling_cpu_lists(PageFrameAllocator& pfa) {
    for (unsigned order = 0; order < kCpuListOrders; ++order) {
        PhysAddr blocks[kFillBlocks];
        unsigned held = 0;
        while (held < kFillBlocks && (blocks[held] = pfa.allocate(order)) != kNoPage) {
            ++held;
        }
        while (held > 0) {
            --held;
            pfa.free(blocks[held], order);
        }
    }
}

struct PairRun {
    unsigned filled;  // CPUs whose lists are filled
    bool done;        // the boot CPU has taken every page and given it back
    Taken taken;      // what the boot CPU took
    bool intact;      // its chain, as it gave it back
    uint64_t damaged; // blocks of the other CPUs whose check word did not survive
    uint64_t pairs;   // their allocate/free pairs that got a block
};

// The boot CPU waits for every other CPU to fill its lists, then takes every page and gives it
// back; the others run allocate/free pairs of every CPU-list order until it is done.
void pairs_while_one_cpu_takes_everything(void* context, unsigned index) {
    PairRun& run = *static_cast<PairRun*>(context);
    PageFrameAllocator& pfa = page_frame_allocator();
    if (index == 0) {
        while (__atomic_load_n(&run.filled, __ATOMIC_ACQUIRE) != online_cpu_count() - 1) {
            SpinLock::relax();
        }
        run.taken = take_every_page(pfa);
        run.intact = give_back(pfa, run.taken.chain);
        __atomic_store_n(&run.done, true, __ATOMIC_RELEASE);
        return;
    }
    fill_calling_cpu_lists(pfa);
    __atomic_add_fetch(&run.filled, 1, __ATOMIC_RELEASE);
    uint64_t pairs = 0;
    uint64_t damaged = 0;
    for (unsigned step = 0; !__atomic_load_n(&run.done, __ATOMIC_ACQUIRE); ++step) {
        const unsigned order = step % kCpuListOrders;
        const PhysAddr block = pfa.allocate(order);
        if (block == kNoPage) {
            continue;
        }
        auto* word = static_cast<volatile uint64_t*>(platform::phys_to_virt(block));
        *word = block ^ index;
        damaged += *word != (block ^ index) ? 1 : 0;
        pfa.free(block, order);
        ++pairs;
    }
    __atomic_add_fetch(&run.damaged, damaged, __ATOMIC_RELAXED);
    __atomic_add_fetch(&run.pairs, pairs, __ATOMIC_RELAXED);
}

} // namespace
} // namespace bedrock::kernel

using namespace bedrock;
using namespace bedrock::kernel;

// The other CPUs fill their lists and go idle; the boot CPU then gets every free page, those on
// their lists included, and the lists are empty afterwards. The lists hold pages of the CPU-list
// region only: where it has less free than every CPU's fill (many CPUs in little RAM), at least
// half of it must end up listed.
BEDROCK_TEST(pfa_smp_one_cpu_gets_the_pages_idle_cpus_hold) {
    PageFrameAllocator& pfa = page_frame_allocator();
    const unsigned cpus = online_cpu_count();
    const uint64_t wanted = (cpus - 1) * kFilledPages;
    const uint64_t listable = pfa.cpu_list_region_free_pages() / 2;
    run_on_every_cpu(
        [](void*, unsigned index) {
            if (index != 0) {
                fill_calling_cpu_lists(page_frame_allocator());
            }
        },
        nullptr);
    BEDROCK_EXPECT(pfa.cpu_list_pages() >= (wanted < listable ? wanted : listable));
    const uint64_t before = free_pages_with_default_heap_trimmed();
    const Taken taken = take_every_page(pfa);
    print("  %u CPUs: took %lu of %lu free pages\n", cpus, taken.pages, before);
    BEDROCK_EXPECT_EQ(taken.pages, before);
    BEDROCK_EXPECT_EQ(pfa.free_pages(), 0);
    BEDROCK_EXPECT_EQ(pfa.cpu_list_pages(), 0);
    BEDROCK_EXPECT(pfa.check().ok);
    BEDROCK_EXPECT(give_back(pfa, taken.chain));
    BEDROCK_EXPECT(pfa.check().ok);
    BEDROCK_EXPECT_EQ(free_pages_with_default_heap_trimmed(), before);
}

// The other CPUs run allocate/free pairs on their lists while the boot CPU takes every page: its
// last request takes each of their lists back and fails only with the few pages they hold then.
BEDROCK_TEST(pfa_smp_one_cpu_takes_lists_back_while_their_cpus_use_them) {
    PageFrameAllocator& pfa = page_frame_allocator();
    const unsigned cpus = online_cpu_count();
    const uint64_t before = free_pages_with_default_heap_trimmed();
    static PairRun run;
    run = PairRun{};
    run_on_every_cpu(pairs_while_one_cpu_takes_everything, &run);
    print("  %u CPUs: took %lu of %lu free pages while the others ran %lu pairs\n", cpus,
          run.taken.pages, before, run.pairs);
    BEDROCK_EXPECT(run.taken.pages + (cpus - 1) * kPairHeldPages >= before);
    BEDROCK_EXPECT(run.intact);
    BEDROCK_EXPECT_EQ(run.damaged, 0);
    BEDROCK_EXPECT(pfa.check().ok);
    BEDROCK_EXPECT_EQ(free_pages_with_default_heap_trimmed(), before);
}
