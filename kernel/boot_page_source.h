// SPDX-License-Identifier: MIT
// BootPageSource: hands out zeroed pages for page tables before any allocator exists.
//
// It takes only pages below a limit (memory that is already mapped, so the tables can be
// written through the identity map) and never physical page 0. Every page it hands out lies in
// one of at most kMaxTakenRuns contiguous runs, which the kernel then adds to the reserved
// ranges, so the page frame allocator never receives them.
//
// Which pages: a usable range is used up from its bottom before the next one is started, and
// the ranges are taken in two passes, each in address order: first those with room for at least
// kRoomyRangePages pages below the limit, then the smaller ones. A firmware may leave any number
// of one-page holes near the kernel; they cost a run each only once every roomy range below the
// limit is used up. Each run but the last of the first pass holds kRoomyRangePages pages or more,
// so the runs fill up only after (kMaxTakenRuns - 1) * kRoomyRangePages pages, or when the
// pages below the limit are in many small pieces.
//
// Invariants: taken pages ⊆ usable ranges below `limit`, page 0 excluded; no page is handed out
// twice; taken() holds at most kMaxTakenRuns separate runs.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/phys_range.h"
#include "kernel/boot_info.h"

namespace bedrock::kernel {

// Why take_zeroed_page() returned no page.
enum class BootPageShortage {
    None,
    NoPageBelowLimit, // every usable page below the limit is taken
    TooManyRuns,      // the next page would start a run beyond kMaxTakenRuns
};

struct BootPage {
    PhysAddr address = 0; // a zeroed page, valid when shortage is None
    BootPageShortage shortage = BootPageShortage::None;
};

class BootPageSource {
public:
    static constexpr size_t kMaxTakenRuns = 8;
    // A usable range with room for this many pages (256 KiB) is taken before smaller ones; a
    // boot of the test kernel takes 20-30 pages of tables, so one roomy range usually holds them.
    static constexpr uint64_t kRoomyRangePages = 64;
    using TakenRuns = RangeList<kMaxTakenRuns>;

    // `usable` must be the page-aligned, sorted output of compute_usable_ranges(); the source
    // keeps a pointer to it, so it must outlive the source.
    BootPageSource(const PhysRange* usable, size_t count, uint64_t limit);

    // Returns a zeroed page (written through platform::phys_to_virt), or no page and why (no
    // page is handed out then). O(kMaxTakenRuns), plus O(count) when a range is used up.
    [[nodiscard]] BootPage take_zeroed_page();

    // The runs handed out so far, to be reserved.
    [[nodiscard]] const TakenRuns& taken() const { return m_taken; }
    [[nodiscard]] uint64_t limit() const { return m_limit; }

private:
    enum class Pass { RoomyRanges, SmallRanges };

    // Moves to the next range of the current pass (or the first of the next pass) with room
    // below the limit. Returns false when no range is left.
    [[nodiscard]] bool start_next_range();

    const PhysRange* m_usable;
    size_t m_count;
    uint64_t m_limit;
    Pass m_pass = Pass::RoomyRanges;
    size_t m_next_range = 0;   // the next usable range the current pass looks at
    PhysAddr m_next_page = 0;  // in the range being used up
    uint64_t m_pages_left = 0; // of the range being used up, from m_next_page
    TakenRuns m_taken;
};

} // namespace bedrock::kernel
