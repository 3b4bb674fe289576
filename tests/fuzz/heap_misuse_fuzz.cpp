// SPDX-License-Identifier: MIT
// libFuzzer harness for the heap under misuse: the input interleaves the operations of
// heap_fuzz.cpp (through HeapModel, tests/host/heap_model.h) with the misuses a program makes,
// applied to a region heap or a heap over a page frame allocator, unchecked or in checked mode
// (the input's first byte):
//   - a free of an interior or misaligned pointer into a live block;
//   - a free of a pointer freed before (a double free, or a stale pointer into memory since
//     merged, split or handed out as part of another block);
//   - a free of a wild pointer: anywhere in the heap's memory (the region, or the memory the
//     page frame allocator manages, its metadata included), or outside it (the stack, another
//     allocator's memory, an address nothing maps);
//   - a write after free: bytes written at the start of the block the operation before freed,
//     with no allocation since (where the heap keeps its free lists' links, free marks and
//     checked mode's poison; once memory is taken again it may hold the heap's own metadata,
//     which nothing can tell a write after free from).
//   - an overflow (unchecked): on a region heap, 16 bytes written past the end of a live medium
//     block whose next block is live or free, or which ends the arena - over that block's header
//     or the arena's end sentinel. A live one leaves the
//     model and is freed at the end; until then every call must go on without following the
//     header (corrupt-metadata may be reported). Over a page frame allocator, 16 bytes past the
//     end of a live large run whose next page is an arena's first page or no heap's (a heap's
//     state, or free): onto the pads there.
// Every misuse must be reported and change nothing: each live block keeps its usable size and
// contents, heap_check() holds, and no block handed out later overlaps a live one. A write after
// free may be reported (corrupt-metadata, use-after-free) when found, and the heap may then hold
// what it could no longer trust; nothing else may be reported. Unchecked, a double free of a
// block written after its free is not tried: the write can erase the free mark that catches the
// double free, and catching that pair is checked mode's work (its quarantine and poison).
// Any divergence aborts, which libFuzzer records as a crash.
//
// Input: 8 bytes of settings (byte 0: bit 0 checked mode, bit 1 a heap over a page frame
// allocator instead of a region), then 8-byte operations: op % 16
// (0-9: heap_fuzz's operation op % 5; 10 interior; 11 stale; 12 wild in the region; 13 wild
// outside it; 14 write after free; 15 double free; 16 overflow), slot (2 bytes), size class byte
// and 3 size bytes, a last byte for the alignment shift, offset or written value.
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "bedrock/heap.h"
#include "bedrock/heap_checks.h"
#include "bedrock/page_frame_allocator.h"
#include "fuzz_sizes.h"
#include "heap/page_tags.h"
#include "heap/segregated_fit.h"
#include "heap_model.h"

namespace {

using bedrock::ErrorKind;
using bedrock::ErrorReport;
using bedrock::test::HeapModel;
using bedrock::test::HeapOp;

constexpr size_t kRegionBytes = size_t{8} << 20; // a region heap's, or the page frame allocator's
constexpr size_t kSlots = 256;
constexpr size_t kStaleCount = 32; // the most recently freed pointers, kept for stale frees

enum class Misuse : uint8_t {
    Interior = 10,
    Stale,
    WildInRegion,
    WildOutside,
    WriteAfterFree,
    Double,
    Overflow
};
constexpr unsigned kOperationKinds = 17;

struct Reports {
    uint64_t count = 0;
    uint64_t damage = 0; // corrupt-metadata and use-after-free: allowed after a write after free
    ErrorKind last = ErrorKind::NotAllocated;
};

void record(void* context, const ErrorReport& report) {
    auto* reports = static_cast<Reports*>(context);
    ++reports->count;
    reports->last = report.kind;
    if (report.kind == ErrorKind::CorruptMetadata || report.kind == ErrorKind::UseAfterFree) {
        ++reports->damage;
    }
}

[[noreturn]] void fail(const char* what, const HeapModel* model = nullptr) {
    fprintf(stderr, "heap_misuse_fuzz: %s%s%s\n", what, model != nullptr ? ": " : "",
            model != nullptr ? model->error().c_str() : "");
    abort();
}

class Run {
public:
    Run(bedrock::Heap& heap, unsigned char* region, bool checked,
        bedrock::PageFrameAllocator* frames)
        : m_heap(heap), m_region(region), m_checked(checked), m_model(heap, kSlots),
          m_frames(frames) {}

    void apply(const uint8_t* op) {
        const unsigned kind = op[0] % kOperationKinds;
        const size_t slot = op[1] | (size_t{op[2]} << 8);
        const size_t raw =
            op[3] | (size_t{op[4]} << 8) | (size_t{op[5]} << 16) | (size_t{op[6]} << 24);
        const HeapModel::LiveBlock just_freed = m_just_freed;
        m_just_freed = HeapModel::LiveBlock{};
        if (kind < 10) {
            apply_model(static_cast<HeapOp>(kind % 5), slot,
                        bedrock::test::decode_size(op + 3, size_t{64} << 10, size_t{1} << 20),
                        size_t{1} << (op[7] % 21));
            return;
        }
        switch (static_cast<Misuse>(kind)) {
        case Misuse::Interior: {
            const HeapModel::LiveBlock block = m_model.block_in(slot);
            const size_t usable =
                block.base != nullptr ? bedrock::heap_usable_size(m_heap, block.base) : 0;
            if (usable > 1) {
                misuse(block.base + 1 + raw % (usable - 1), "interior pointer");
            }
            break;
        }
        case Misuse::Stale: {
            void* stale = m_stale[raw % kStaleCount];
            const auto address = reinterpret_cast<uintptr_t>(stale);
            if (stale != nullptr && !m_model.is_live_start(address) &&
                (m_checked || !was_written(stale))) {
                misuse(stale, "stale pointer");
            }
            break;
        }
        case Misuse::WildInRegion: {
            size_t offset = (raw | size_t{op[7]} << 32) % kRegionBytes;
            if ((op[7] & 1) != 0) {
                offset &= ~size_t{15};
            }
            unsigned char* wild = m_region + offset;
            if (!m_model.is_live_start(reinterpret_cast<uintptr_t>(wild))) {
                misuse(wild, "wild pointer in the heap's memory");
            }
            break;
        }
        case Misuse::WildOutside: {
            static unsigned char elsewhere[4096];
            alignas(16) unsigned char on_stack[64];
            unsigned char* targets[] = {
                elsewhere + (raw % 256) * 16,
                on_stack + (raw % 4) * 16,
                m_region - 4096 + (raw % 256) * 16, // just below the memory (mapped)
                reinterpret_cast<unsigned char*>(uintptr_t{0x1000} + (raw % 4096) * 16),
                reinterpret_cast<unsigned char*>(uintptr_t{0xdead0000'00000000} + raw * 16),
            };
            misuse(targets[op[7] % 5], "wild pointer outside the heap's memory");
            break;
        }
        case Misuse::WriteAfterFree:
            if (just_freed.base != nullptr) {
                write_after_free(just_freed, op[7]);
            }
            break;
        case Misuse::Overflow:
            overflow(slot, raw, op[7]);
            break;
        case Misuse::Double: {
            const HeapModel::LiveBlock block = m_model.block_in(slot);
            if (block.base != nullptr) {
                apply_model(HeapOp::Free, slot, 0, 0);
                misuse(block.base, "double free");
            }
            break;
        }
        }
    }

    void finish() {
        // Blocks whose header an overflow hit: freed (or retired, reported) like any other.
        for (void* damaged : m_overflowed) {
            bedrock::heap_free(m_heap, damaged);
        }
        if (m_written == 0) {
            if (!m_model.free_all()) {
                fail("freeing everything", &m_model);
            }
            return;
        }
        // After writes after free the heap may hold what it could not trust (a slab it
        // retired), but every live block must still be whole.
        if (!m_model.verify_all()) {
            fail("a live block after writes after free", &m_model);
        }
        (void)m_model.free_all();
    }

    Reports& reports() { return m_reports; }

private:
    // A model operation: no report unless a write after free came before.
    void apply_model(HeapOp op, size_t slot, size_t size, size_t alignment) {
        const HeapModel::LiveBlock before = m_model.block_in(slot);
        const uint64_t reports = m_reports.count;
        if (!m_model.apply(op, slot, size, alignment)) {
            fail("model operation", &m_model);
        }
        if (m_reports.count != reports && m_written == 0) {
            fail("a report for a correct operation");
        }
        if (m_reports.count - reports != m_reports.damage - m_damage_seen) {
            fprintf(stderr, "heap_misuse_fuzz: %s reported after a write after free\n",
                    bedrock::to_string(m_reports.last));
            abort();
        }
        m_damage_seen = m_reports.damage;
        if (before.base != nullptr && m_model.block_in(slot).base != before.base) {
            m_stale[m_stale_next++ % kStaleCount] = before.base;
            if (op == HeapOp::Free) {
                // Only a free that took nothing after it: an allocation may have put the heap's
                // own metadata (a slab's header, a CPU cache) where the block was, which no
                // write after free can be told from.
                m_just_freed = before;
            }
        }
    }

    // A bad free: reported, and nothing changes.
    void misuse(void* pointer, const char* what) {
        const uint64_t reports = m_reports.count;
        bedrock::heap_free(m_heap, pointer);
        if (m_reports.count == reports) {
            fprintf(stderr, "heap_misuse_fuzz: %s %p not reported\n", what, pointer);
            abort();
        }
        m_damage_seen = m_reports.damage;
        if (!m_model.verify_all()) {
            fail(what, &m_model);
        }
        if (m_written == 0 && !bedrock::heap_check(m_heap)) {
            fprintf(stderr, "heap_misuse_fuzz: heap_check() fails after a %s %p\n", what, pointer);
            abort();
        }
    }

    // Writes 8-32 bytes at the start of a block just freed, within the size it was asked for
    // (past it, checked mode reports an overflow), where no live block lies.
    void write_after_free(const HeapModel::LiveBlock& block, uint8_t value) {
        size_t bytes = 8 + (value % 4) * 8;
        bytes = bytes < block.size ? bytes : block.size;
        const auto begin = reinterpret_cast<uintptr_t>(block.base);
        if (bytes == 0 || m_model.overlaps_live(begin, begin + bytes)) {
            return;
        }
        memset(block.base, value, bytes);
        m_written_at[m_written++ % kStaleCount] = block.base;
    }

    // 16 bytes of `value` past the end of a live medium block of a region heap (unchecked: in
    // checked mode its red zone takes them), over the header of the block after it: a live one,
    // which leaves the model, a free one or the end sentinel: the first such block from slot
    // `slot` on, or - if there is none - a pair allocated for it (two medium blocks in a row
    // usually lie side by side). Not where the next block is a slab: its blocks would become
    // unfreeable, which the model cannot follow.
    void overflow(size_t slot, size_t size, uint8_t value) {
        if (m_checked) {
            return;
        }
        if (m_frames != nullptr) {
            overflow_past_run(slot, value);
            return;
        }
        if (overflow_first_pair(slot, value)) {
            return;
        }
        for (size_t step = 0; step < 2; ++step) {
            apply_model(HeapOp::Malloc, slot + step, 2064 + size % 30000, 0);
        }
        static_cast<void>(overflow_first_pair(slot, value));
    }
    bool overflow_first_pair(size_t slot, uint8_t value) {
        for (size_t step = 0; step < kSlots; ++step) {
            const HeapModel::LiveBlock block = m_model.block_in(slot + step);
            if (block.base == nullptr) {
                continue;
            }
            const size_t usable = bedrock::heap_usable_size(m_heap, block.base);
            unsigned char* next = block.base + usable + 16;
            if (usable <= 2048) {
                continue;
            }
            if (m_model.is_live_start(reinterpret_cast<uintptr_t>(next))) {
                memset(block.base + usable, value, 16);
                static_cast<void>(m_model.forget(reinterpret_cast<uintptr_t>(next)));
                m_overflowed.push_back(next);
                ++m_written;
                return true;
            }
            // A medium block's next block start: a free block, or the arena's end sentinel.
            const auto use = static_cast<size_t>(bedrock::heap::SegregatedFit::use_of(next));
            if (use == static_cast<size_t>(bedrock::heap::BlockUse::Free) ||
                use == bedrock::heap::fit_detail::kSentinelUse) {
                memset(block.base + usable, value, 16);
                ++m_written;
                return true;
            }
        }
        return false;
    }

    // Over a page frame allocator: 16 bytes of `value` past the end of the first live large run
    // from slot `slot` on whose next page is an arena's first page or no heap's (a heap's state,
    // or free), where the heap's pads are.
    void overflow_past_run(size_t slot, uint8_t value) {
        using bedrock::heap::PageKind;
        for (size_t step = 0; step < kSlots; ++step) {
            const HeapModel::LiveBlock block = m_model.block_in(slot + step);
            if (block.base == nullptr || kind_of_page(block.base) != PageKind::LargeHead) {
                continue;
            }
            unsigned char* end = block.base + bedrock::heap_usable_size(m_heap, block.base);
            const PageKind next = kind_of_page(end);
            if (next == PageKind::ArenaBase || next == PageKind::None) {
                memset(end, value, 16);
                ++m_written;
                return;
            }
        }
    }
    [[nodiscard]] bedrock::heap::PageKind kind_of_page(const void* address) const {
        const bedrock::PageFrameAllocator::PageTags tags = m_frames->tags_of(address);
        // Outside the managed memory: a kind that no overflow is tried onto.
        return tags.page != nullptr ? bedrock::heap::tag_kind(*tags.page)
                                    : bedrock::heap::PageKind::Arena;
    }

    [[nodiscard]] bool was_written(const void* block) const {
        for (const void* written : m_written_at) {
            if (written == block) {
                return true;
            }
        }
        return m_written > kStaleCount; // forgotten writes: assume this one was
    }

    bedrock::Heap& m_heap;
    unsigned char* m_region;
    bool m_checked;
    HeapModel m_model;
    Reports m_reports;
    uint64_t m_damage_seen = 0;
    void* m_stale[kStaleCount] = {};
    size_t m_stale_next = 0;
    HeapModel::LiveBlock m_just_freed; // freed by the operation before, if it freed one
    void* m_written_at[kStaleCount] = {};
    size_t m_written = 0;
    bedrock::PageFrameAllocator* m_frames; // null for a region heap
    std::vector<void*> m_overflowed;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 8) {
        return 0;
    }
    // The region, or the memory the page frame allocator manages (phys_to_virt is the identity
    // in fuzz_platform.cpp).
    static unsigned char* memory = static_cast<unsigned char*>(aligned_alloc(4096, kRegionBytes));
    const bool checked = (data[0] & 1) != 0;
    const bool over_frames = (data[0] & 2) != 0;
    bedrock::PageFrameAllocator* frames = nullptr;
    bedrock::Heap* heap = nullptr;
    if (over_frames) {
        frames = new bedrock::PageFrameAllocator;
        const bedrock::PhysRange range{reinterpret_cast<uintptr_t>(memory), kRegionBytes};
        if (!frames->init(&range, 1)) {
            fail("PageFrameAllocator::init");
        }
        heap = bedrock::heap_create(*frames);
    } else {
        heap = bedrock::heap_create_in_region(memory, kRegionBytes);
    }
    if (heap == nullptr) {
        fail("heap_create");
    }
    {
        Run run(*heap, memory, checked, frames);
        bedrock::heap_set_error_hook(*heap, record, &run.reports());
        if (checked && !bedrock::heap_set_check_level(*heap, bedrock::CheckLevel::Report)) {
            fail("heap_set_check_level");
        }
        for (size_t at = 8; at + 8 <= size; at += 8) {
            run.apply(data + at);
        }
        run.finish();
        if (!bedrock::heap_destroy(*heap)) {
            fail("heap_destroy");
        }
    }
    delete frames;
    bedrock::set_default_heap(nullptr);
    return 0;
}
