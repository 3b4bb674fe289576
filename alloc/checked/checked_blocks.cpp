// SPDX-License-Identifier: MIT
// Checked mode: allocation with red zones and poison, free through the quarantine, the checks
// and the leak report (invariants in checked_blocks.h and checked_block.h).
#include "checked/checked_blocks.h"

#include "bedrock/memory_routines.h"
#include "checked/checked_reports.h"
#include "heap/core.h"
#include "heap/heap_state.h"
#include "report/heap_error_reports.h"
#include "support/text_line.h"

namespace bedrock::heap {
namespace {

bool is_intact(const CheckedBlock& header) {
    return (header.state == BlockState::Live || header.state == BlockState::Quarantined) &&
           header.seal == seal_of(header);
}

void seal(CheckedBlock& header) {
    header.seal = seal_of(header);
}

bool seal_holds(const CheckedBlock& header) {
    return header.seal == seal_of(header);
}

// Runs `change`, a list operation that rewrites the links of `first` and `second` (either may be
// null), and seals again each of them whose seal held before, so that damage found in one stays
// visible. Neighbours are only ever reached through a list's ends or through links whose seal
// held, so each is a real header.
template <class Change>
void relink(CheckedBlock* first, CheckedBlock* second, Change change) {
    const bool first_held = first != nullptr && seal_holds(*first);
    const bool second_held = second != nullptr && seal_holds(*second);
    change();
    if (first_held) {
        seal(*first);
    }
    if (second_held) {
        seal(*second);
    }
}

// Walks `list` from its front, reading a header's link only once its seal holds (so every link
// followed is one checked mode wrote), and calls visit(header) for each header it reaches.
// Returns the first header whose seal does not hold or whose back link is not the header before
// it (its next link is not followed), or null when the whole list was walked.
template <class List, class Visit>
const CheckedBlock* walk(const List& list, Visit visit) {
    const CheckedBlock* before = nullptr;
    for (const CheckedBlock* header = list.front(); header != nullptr;
         header = List::next(*header)) {
        if (!seal_holds(*header) || header->prev != before) {
            return header;
        }
        visit(*header);
        before = header;
    }
    return nullptr;
}

// Where the walks of a list stopped: the walk from its front and the walk from its back (the
// same header when one is damaged; both null when the whole list was walked).
struct Damage {
    const CheckedBlock* first = nullptr;
    const CheckedBlock* last = nullptr;
};

// Walks `list` as walk() does and, when that stops, from its back (a header's next link matched
// against the header after it) down to where it stopped, so that one damaged header hides no
// block but its own, and two hide the blocks between them. Each header is visited at most once.
template <class List, class Visit>
Damage walk_from_both_ends(const List& list, Visit visit) {
    const CheckedBlock* first = walk(list, visit);
    if (first == nullptr) {
        return Damage{};
    }
    const CheckedBlock* after = nullptr;
    for (const CheckedBlock* header = list.back(); header != first; header = header->prev) {
        if (header == nullptr) {
            break; // the back walk met the front: the ends disagree with the links
        }
        if (!seal_holds(*header) || header->next != after) {
            return Damage{first, header};
        }
        visit(*header);
        after = header;
    }
    return Damage{first, first};
}

// Bytes the block keeps from reuse while quarantined, counted as the heap's statistics count
// a block: its core block's usable bytes, from its header (the core block's start) to the end
// of its tail red zone.
uint64_t footprint(const CheckedBlock& header) {
    return header.zone_end - reinterpret_cast<uintptr_t>(&header);
}

ErrorReport pointer_report(ErrorKind kind, const void* pointer, const char* detail, Caller caller) {
    return misuse_report(kind, reinterpret_cast<uintptr_t>(pointer), detail, caller.call_site());
}

// Where damage was found, which the report's detail says: in a live block (at free, realloc or
// heap_check()), or in a freed one - done after its free, which verified its red zones - as it
// left the quarantine or by heap_check() while it waited there.
enum class Found : uint8_t { InLiveBlock, LeavingQuarantine, InQuarantine };

// `live`, `leaving` or `waiting`: the detail for where the damage was found.
const char* detail_for(Found found, const char* live, const char* leaving, const char* waiting) {
    switch (found) {
    case Found::InLiveBlock:
        return live;
    case Found::LeavingQuarantine:
        return leaving;
    case Found::InQuarantine:
        return waiting;
    }
    return live;
}

// A report about damage to `header`'s block; damage to a freed block carries its free trace too.
ErrorReport damage_report(ErrorKind kind, uintptr_t address, const CheckedBlock& header,
                          uint64_t offset, Found found, const char* detail, const void* call_site) {
    ErrorReport report = block_report(kind, address, header, offset, detail, call_site);
    if (found != Found::InLiveBlock) {
        report.freed = header.freed;
    }
    return report;
}

// Red-zone damage of `header`'s block: an overflow (reported first) or an underflow.
bool find_zone_damage(const CheckedBlock& header, Found found, const void* call_site,
                      ErrorReport& report) {
    const unsigned char* tail = header.block + header.size;
    const auto* tail_end = reinterpret_cast<const unsigned char*>(header.zone_end);
    const size_t past_end = last_unlike_end(tail, tail_end, kRedZoneFill);
    if (past_end != 0) {
        // A zone overwritten to its last byte: the write may have gone on past it (the offset
        // says how far the zone reaches, not the write).
        const bool to_zone_end = past_end == static_cast<size_t>(tail_end - tail);
        report = damage_report(
            ErrorKind::BufferOverflow,
            reinterpret_cast<uintptr_t>(tail) + first_unlike(tail, tail_end, kRedZoneFill), header,
            past_end, found,
            to_zone_end
                ? detail_for(found,
                             "bytes past the end of the block were overwritten to the end of its "
                             "red zone (the write may reach further)",
                             "bytes past the end of the block were overwritten to the end of its "
                             "red zone after it was freed (found when it left quarantine; the "
                             "write may reach further)",
                             "bytes past the end of the block were overwritten to the end of its "
                             "red zone after it was freed (found by heap_check in quarantine; the "
                             "write may reach further)")
                : detail_for(found,
                             "bytes past the end of the block were overwritten (its red zone)",
                             "bytes past the end of the block were overwritten after it was freed "
                             "(found when it left quarantine)",
                             "bytes past the end of the block were overwritten after it was freed "
                             "(found by heap_check in quarantine)"),
            call_site);
        return true;
    }
    const unsigned char* front = front_zone_start(header);
    const size_t front_bytes = static_cast<size_t>(header.block - front);
    const size_t first = first_unlike(front, header.block, kRedZoneFill);
    if (first != front_bytes) {
        report = damage_report(
            ErrorKind::BufferUnderflow, reinterpret_cast<uintptr_t>(front + first), header,
            front_bytes - first, found,
            detail_for(found, "bytes before the start of the block were overwritten (its red zone)",
                       "bytes before the start of the block were overwritten after it was freed "
                       "(found when it left quarantine)",
                       "bytes before the start of the block were overwritten after it was freed "
                       "(found by heap_check in quarantine)"),
            call_site);
        return true;
    }
    return false;
}

// The red zones' canary bytes around `header`'s block, (re)written.
void fill_zones(const CheckedBlock& header) {
    unsigned char* front = front_zone_start(header);
    bedrock_memset(front, kRedZoneFill, static_cast<size_t>(header.block - front));
    unsigned char* tail = header.block + header.size;
    bedrock_memset(tail, kRedZoneFill, header.zone_end - reinterpret_cast<uintptr_t>(tail));
}

// Poison damage of a quarantined block (`found` leaving it or in it): a write after free.
bool find_poison_damage(const CheckedBlock& header, Found found, const void* call_site,
                        ErrorReport& report) {
    const size_t offset = first_unlike(header.block, header.block + header.size, kFreedPoison);
    if (offset == header.size) {
        return false;
    }
    report = damage_report(
        ErrorKind::UseAfterFree, reinterpret_cast<uintptr_t>(header.block) + offset, header, offset,
        found,
        found == Found::InQuarantine
            ? "the block was written after it was freed (found by heap_check in quarantine)"
            : "the block was written after it was freed (found when it left quarantine)",
        call_site);
    return true;
}

// What a header that is not Live means for a free or lookup of `pointer` (its block's start).
ErrorReport dead_header_report(const CheckedBlock& header, const void* pointer, Caller caller) {
    if (header.state == BlockState::Quarantined && header.seal == seal_of(header)) {
        return block_report(ErrorKind::DoubleFree, reinterpret_cast<uintptr_t>(pointer), header, 0,
                            is_in_band(header)
                                ? "the block is already free (still in quarantine)"
                                : "the block is already free (its guarded page is inaccessible)",
                            caller.call_site());
    }
    return pointer_report(ErrorKind::CorruptMetadata, pointer,
                          "the block's checked-mode header is damaged (a wild write or an "
                          "underflow past its red zone); the block is left alone",
                          caller);
}

// A quarantined header found damaged: neither its links nor its block's bounds can be trusted,
// so it is left alone (never reused).
ErrorReport damaged_quarantine_report(const CheckedBlock& header, const void* call_site) {
    return ErrorReport{ErrorKind::CorruptMetadata,
                       "heap",
                       reinterpret_cast<uintptr_t>(&header + 1),
                       0,
                       call_site,
                       "a quarantined block's checked-mode header is damaged (a wild write or a "
                       "long overflow): the block is left alone",
                       0,
                       0,
                       {},
                       {}};
}

} // namespace

void CheckedBlocks::adopt(CheckedBlock& header, unsigned char* block, size_t size,
                          uintptr_t zone_end, Placement placement, Caller caller) {
    header.placement = placement;
    header.family = caller.family();
    header.block = block;
    header.size = size;
    header.zone_end = zone_end;
    header.state = BlockState::Live;
    header.allocated = capture_call_trace(caller);
    header.freed = CallTrace{};
    fill_zones(header);
    bedrock_memset(block, kFreshPoison, size);
    LockGuard guard(m_lock);
    header.sequence = ++m_sequence & kSequenceMask;
    relink(m_live.front(), nullptr, [&] { m_live.push_front(header); });
    seal(header);
}

void* CheckedBlocks::allocate(Heap& heap, size_t size, size_t alignment, Caller caller) {
    const size_t offset = in_band_offset(alignment);
    if (size > kMaxCheckedSize) {
        return nullptr;
    }
    TakenBlock core =
        take_block(heap, offset + size + kMinTailZone, alignment, BlockUse::Checked, size);
    if (core.start == nullptr && quarantine_totals().blocks != 0) {
        // The quarantined blocks may hold the memory asked for: they give way rather than make
        // the allocation fail.
        flush(heap, caller);
        core = take_block(heap, offset + size + kMinTailZone, alignment, BlockUse::Checked, size);
    }
    if (core.start == nullptr) {
        return nullptr;
    }
    unsigned char* block = core.start + offset;
    adopt(*reinterpret_cast<CheckedBlock*>(core.start), block, size,
          reinterpret_cast<uintptr_t>(core.start) + core.usable, Placement::InBand, caller);
    return block;
}

CheckedBlock* CheckedBlocks::find_live(Heap& heap, const BlockRef& core, const void* pointer,
                                       Caller caller) {
    if (heap.checked.guards.holds(pointer)) {
        return heap.checked.guards.find_live(heap, pointer, caller);
    }
    // The header starts the core block: read only after the core named the block, and checked
    // under the lock, since the seal covers the list links that other CPUs' frees and
    // allocations relink (and seal again) under it.
    CheckedBlock* header = reinterpret_cast<CheckedBlock*>(core.start);
    const auto address = reinterpret_cast<uintptr_t>(pointer);
    bool intact = false;
    {
        LockGuard guard(m_lock);
        intact = is_intact(*header);
    }
    if (!intact) {
        // The core may have named the block without its lock, for a stale pointer whose block
        // a merge has just made part of a free block (whose links then read as any use): only a
        // block the core still names as checked mode's, under its locks, was damaged (a wild
        // write or an underflow past its red zone: a core block of checked mode always has a
        // Live or Quarantined header).
        const BlockRef again = find_block(heap, pointer);
        if (again.start != core.start ||
            (again.holder != Holder::Checked && again.holder != Holder::CheckedRun)) {
            heap.errors.raise(
                again.holder == Holder::Free && again.start == pointer
                    ? misuse_report(ErrorKind::DoubleFree, address, "the block is already free",
                                    caller.call_site())
                    : misuse_report(ErrorKind::NotAllocated, address,
                                    "no block of checked mode is there (freed or merged since)",
                                    caller.call_site()));
            return nullptr;
        }
        heap.errors.raise(dead_header_report(*header, pointer, caller));
        return nullptr;
    }
    if (pointer != header->block) {
        const bool inside = pointer > header->block && address < header->block_end();
        if (inside && another_heap_holds(heap, pointer)) { // a heap made inside this block
            heap.errors.raise(misuse_report(ErrorKind::ForeignHeap, address,
                                            "the block belongs to another heap",
                                            caller.call_site()));
            return nullptr;
        }
        heap.errors.raise(inside ? interior_report(*header, address, caller.call_site())
                                 : misuse_report(ErrorKind::NotAllocated, address,
                                                 "points into a block's header or red zone",
                                                 caller.call_site()));
        return nullptr;
    }
    return confirm_live(heap, *header, pointer, caller);
}

CheckedBlock* CheckedBlocks::confirm_live(Heap& heap, CheckedBlock& header, const void* pointer,
                                          Caller caller) {
    ErrorReport report;
    {
        LockGuard guard(m_lock);
        if (header.state == BlockState::Live && header.seal == seal_of(header)) {
            return &header;
        }
        report = dead_header_report(header, pointer, caller);
    }
    heap.errors.raise(report);
    return nullptr;
}

bool CheckedBlocks::retire(Heap& heap, CheckedBlock& header, const void* pointer, Caller caller) {
    ErrorReport report;
    bool has_report = false;
    bool retired = false;
    bool mismatched = false; // freed by other calls than allocated it
    ErrorReport mismatch;
    {
        LockGuard guard(m_lock);
        if (header.state != BlockState::Live || header.seal != seal_of(header)) {
            report = dead_header_report(header, pointer, caller);
            has_report = true;
        } else {
            has_report = find_zone_damage(header, Found::InLiveBlock, caller.call_site(), report);
            if (has_report) {
                fill_zones(header); // reported once, not again when the slot is reused
            }
            relink(header.prev, header.next, [&] { m_live.remove(header); });
            header.freed = capture_call_trace(caller);
            header.state = BlockState::Quarantined;
            seal(header);
            retired = true;
            mismatched = header.family != caller.family();
            if (mismatched) {
                // Made now: once the lock is released, the slot may be reused.
                mismatch = mismatch_report(header, caller.family(), caller.call_site());
            }
        }
    }
    if (has_report) {
        heap.errors.raise(report);
    }
    if (mismatched) {
        heap.errors.raise(mismatch);
    }
    return retired;
}

void CheckedBlocks::check_named_size(Heap& heap, const CheckedBlock& header, const void* pointer,
                                     size_t named, Caller caller) {
    ErrorReport report;
    {
        LockGuard guard(m_lock);
        if (!is_intact(header) || header.state != BlockState::Live || header.block != pointer ||
            header.size == named) {
            return;
        }
        report = block_report(ErrorKind::SizeMismatch, reinterpret_cast<uintptr_t>(pointer), header,
                              named,
                              "a sized delete named another size than the block was allocated "
                              "with (offset: the size named; a delete through a pointer to a "
                              "base class without a virtual destructor?)",
                              caller.call_site());
    }
    heap.errors.raise(report);
}

bool CheckedBlocks::live_block_holds(const CheckedBlock& header, uintptr_t start, uintptr_t end) {
    LockGuard guard(m_lock);
    const auto block = reinterpret_cast<uintptr_t>(header.block);
    return is_intact(header) && header.state == BlockState::Live && start >= block &&
           end <= header.block_end();
}

bool CheckedBlocks::drop_live(CheckedBlock& header, const void* pointer) {
    LockGuard guard(m_lock);
    if (!is_intact(header) || header.state != BlockState::Live || !is_in_band(header) ||
        header.block != pointer) {
        return false;
    }
    relink(header.prev, header.next, [&] { m_live.remove(header); });
    header.state = BlockState::Released;
    return true;
}

void CheckedBlocks::forget(CheckedBlock& header) {
    LockGuard guard(m_lock);
    header.state = BlockState::Released;
}

void CheckedBlocks::free(Heap& heap, const BlockRef& core, void* pointer, Caller caller) {
    CheckedBlock* header = find_live(heap, core, pointer, caller);
    if (header == nullptr) {
        return;
    }
    ErrorReport report;
    bool has_report = false;
    CheckedBlock* displaced = nullptr; // the oversized block this one takes the place of
    CheckedBlock* damaged = nullptr;   // or that block, left alone: its header is damaged
    uint64_t limit = 0;                // the quarantine's limit, read under the lock
    bool mismatched = false;           // freed by other calls than allocated it
    ErrorReport mismatch;
    {
        LockGuard guard(m_lock);
        limit = m_quarantine_limit;
        if (header->state != BlockState::Live || header->seal != seal_of(*header)) {
            // Freed by another CPU since find_live(): a double free racing with the first.
            report = dead_header_report(*header, pointer, caller);
            has_report = true;
        } else {
            has_report = find_zone_damage(*header, Found::InLiveBlock, caller.call_site(), report);
            if (has_report) {
                fill_zones(*header); // reported once, not again when it leaves quarantine
            }
            relink(header->prev, header->next, [&] { m_live.remove(*header); });
            header->freed = capture_call_trace(caller);
            header->state = BlockState::Quarantined;
            mismatched = header->family != caller.family();
            if (mismatched) {
                // Made now: once the lock is released, the header may leave the quarantine.
                mismatch = mismatch_report(*header, caller.family(), caller.call_site());
            }
            bedrock_memset(header->block, kFreedPoison, header->size);
            if (limit != 0 && footprint(*header) > limit) {
                displaced = m_oversized;
                m_oversized = header;
                if (displaced != nullptr && !release_oversized_locked(*displaced)) {
                    damaged = displaced;
                    displaced = nullptr;
                }
            } else {
                relink(m_quarantine.back(), nullptr, [&] { m_quarantine.push_back(*header); });
                m_quarantine_bytes += footprint(*header);
                ++m_quarantine_blocks;
            }
            seal(*header);
        }
    }
    if (damaged != nullptr) {
        heap.errors.raise(damaged_quarantine_report(*damaged, caller.call_site()));
    }
    if (displaced != nullptr) {
        leave_quarantine(heap, *displaced, caller);
    }
    evict(heap, limit, caller);
    if (has_report) {
        heap.errors.raise(report);
    }
    if (mismatched) {
        heap.errors.raise(mismatch);
    }
}

bool CheckedBlocks::release_oversized_locked(CheckedBlock& header) {
    if (header.state != BlockState::Quarantined || !seal_holds(header)) {
        return false;
    }
    header.state = BlockState::Released;
    return true;
}

// The quarantine's front `damaged` cannot be unlinked (its next link cannot be followed): the
// blocks freed after it are reached from the quarantine's back instead, each header's state, seal
// and next link checked, and stay quarantined in order; the walk stops at the first header that
// fails (`damaged` itself, or another, named in `also_damaged`), which stays Quarantined with the
// blocks between it and `damaged`, never reused. O(blocks kept).
void CheckedBlocks::keep_quarantine_after_locked(const CheckedBlock& damaged,
                                                 CheckedBlock*& also_damaged) {
    CheckedBlock* kept = nullptr; // the oldest block kept
    uint64_t bytes = 0;
    uint64_t blocks = 0;
    for (CheckedBlock* header = m_quarantine.back(); header != nullptr && header != &damaged;
         header = header->prev) {
        if (header->state != BlockState::Quarantined || !seal_holds(*header) ||
            header->next != kept) {
            also_damaged = header;
            break;
        }
        bytes += footprint(*header);
        ++blocks;
        kept = header;
    }
    if (kept == nullptr) {
        m_quarantine = BlockList{};
    } else {
        relink(kept, nullptr, [&] { m_quarantine.drop_before(*kept); });
    }
    m_quarantine_bytes = bytes;
    m_quarantine_blocks = blocks;
}

CheckedBlock* CheckedBlocks::evict_locked(size_t limit, CheckedBlock*& damaged,
                                          CheckedBlock*& also_damaged) {
    CheckedBlock* oldest = m_quarantine.front();
    if (m_quarantine_bytes > limit && oldest != nullptr) {
        if (oldest->state != BlockState::Quarantined || !seal_holds(*oldest)) {
            damaged = oldest;
            keep_quarantine_after_locked(*oldest, also_damaged);
            return nullptr;
        }
        relink(nullptr, oldest->next, [&] { m_quarantine.remove(*oldest); });
        m_quarantine_bytes -= footprint(*oldest);
        --m_quarantine_blocks;
        oldest->state = BlockState::Released;
        return oldest;
    }
    if (limit == 0 && m_oversized != nullptr) {
        CheckedBlock* oversized = m_oversized;
        m_oversized = nullptr;
        if (!release_oversized_locked(*oversized)) {
            damaged = oversized;
            return nullptr;
        }
        return oversized;
    }
    return nullptr;
}

void CheckedBlocks::evict(Heap& heap, size_t limit, Caller caller) {
    for (;;) {
        CheckedBlock* header;
        CheckedBlock* damaged = nullptr;
        CheckedBlock* also_damaged = nullptr;
        {
            LockGuard guard(m_lock);
            header = evict_locked(limit, damaged, also_damaged);
        }
        if (damaged != nullptr) {
            heap.errors.raise(damaged_quarantine_report(*damaged, caller.call_site()));
            if (also_damaged != nullptr) {
                heap.errors.raise(damaged_quarantine_report(*also_damaged, caller.call_site()));
            }
            continue;
        }
        if (header == nullptr) {
            return;
        }
        leave_quarantine(heap, *header, caller);
    }
}

void CheckedBlocks::leave_quarantine(Heap& heap, CheckedBlock& header, Caller caller) {
    // Verified while the memory is still ours, given back, then reported: a report that panics
    // leaves the heap consistent.
    ErrorReport report;
    const bool damaged =
        find_poison_damage(header, Found::LeavingQuarantine, caller.call_site(), report) ||
        find_zone_damage(header, Found::LeavingQuarantine, caller.call_site(), report);
    give_block(heap, find_block(heap, &header));
    if (damaged) {
        heap.errors.raise(report);
    }
}

void CheckedBlocks::set_quarantine_limit(Heap& heap, size_t bytes, Caller caller) {
    {
        LockGuard guard(m_lock);
        m_quarantine_limit = bytes;
    }
    evict(heap, bytes, caller);
}

void CheckedBlocks::flush(Heap& heap, Caller caller) {
    evict(heap, 0, caller);
}

bool CheckedBlocks::check(Heap& heap) {
    constexpr unsigned kMaxReports = 8;
    ErrorReport reports[kMaxReports];
    unsigned found = 0;
    bool consistent = true;
    {
        LockGuard guard(m_lock);
        const auto note = [&](const ErrorReport& report) {
            if (found < kMaxReports) {
                reports[found] = report;
            }
            ++found;
        };
        ErrorReport report;
        // A header whose seal does not hold stops a walk of the live list (its links are not
        // followed); the walk goes on from the list's other end.
        const Damage live_damage = walk_from_both_ends(m_live, [&](const CheckedBlock& header) {
            if (header.state != BlockState::Live) {
                consistent = false;
            } else if (find_zone_damage(header, Found::InLiveBlock, nullptr, report)) {
                note(report);
            }
        });
        const auto note_damaged_live = [&](const CheckedBlock* damaged) {
            note(ErrorReport{ErrorKind::CorruptMetadata,
                             "heap",
                             reinterpret_cast<uintptr_t>(damaged + 1),
                             0,
                             nullptr,
                             "a live block's checked-mode header is damaged",
                             0,
                             0,
                             {},
                             {}});
        };
        if (live_damage.first != nullptr) {
            note_damaged_live(live_damage.first);
        }
        if (live_damage.last != live_damage.first) {
            note_damaged_live(live_damage.last);
        }
        // A quarantined block's poison and zones are verified.
        const auto check_quarantined = [&](const CheckedBlock& header) {
            if (find_poison_damage(header, Found::InQuarantine, nullptr, report) ||
                find_zone_damage(header, Found::InQuarantine, nullptr, report)) {
                note(report);
            }
        };
        uint64_t bytes = 0;
        uint64_t blocks = 0;
        const CheckedBlock* last = nullptr;
        const Damage quarantine_damage =
            walk_from_both_ends(m_quarantine, [&](const CheckedBlock& header) {
                if (header.state != BlockState::Quarantined) {
                    consistent = false;
                    return;
                }
                check_quarantined(header);
                bytes += footprint(header);
                ++blocks;
                last = &header;
            });
        if (quarantine_damage.first != nullptr) {
            note(damaged_quarantine_report(*quarantine_damage.first, nullptr));
        }
        if (quarantine_damage.last != quarantine_damage.first) {
            note(damaged_quarantine_report(*quarantine_damage.last, nullptr));
        }
        const bool oversized_damaged =
            m_oversized != nullptr &&
            (m_oversized->state != BlockState::Quarantined || !seal_holds(*m_oversized));
        if (oversized_damaged) {
            note(damaged_quarantine_report(*m_oversized, nullptr));
        } else if (m_oversized != nullptr) {
            check_quarantined(*m_oversized);
        }
        if (quarantine_damage.first == nullptr) {
            consistent = consistent && last == m_quarantine.back() && bytes == m_quarantine_bytes &&
                         blocks == m_quarantine_blocks;
        }
    }
    for (unsigned i = 0; i < found && i < kMaxReports; ++i) {
        heap.errors.raise(reports[i]);
    }
    if (!consistent) {
        heap.errors.raise(ErrorReport{ErrorKind::CorruptMetadata,
                                      "heap",
                                      0,
                                      0,
                                      nullptr,
                                      "the checked-mode block lists are damaged",
                                      0,
                                      0,
                                      {},
                                      {}});
    }
    return consistent && found == 0;
}

CheckedBlocks::QuarantineTotals CheckedBlocks::quarantine_totals() {
    LockGuard guard(m_lock);
    if (m_oversized != nullptr) {
        return QuarantineTotals{m_quarantine_blocks + 1,
                                m_quarantine_bytes + footprint(*m_oversized)};
    }
    return QuarantineTotals{m_quarantine_blocks, m_quarantine_bytes};
}

uint64_t CheckedBlocks::checkpoint() {
    LockGuard guard(m_lock);
    return m_sequence;
}

LeakSummary CheckedBlocks::leaks(uint64_t checkpoint, LineWriter write, void* context) {
    struct Site {
        CallTrace trace;
        uint64_t blocks;
        uint64_t bytes;
    };
    constexpr unsigned kMaxSites = kLeakSitesListed;
    Site sites[kMaxSites];
    unsigned site_count = 0;
    LeakSummary summary = {};
    LockGuard guard(m_lock);
    // A damaged header's block is neither counted nor listed, nor, when two are damaged, the
    // blocks between them (their links are not followed).
    const Damage damaged = walk_from_both_ends(m_live, [&](const CheckedBlock& header) {
        if (header.sequence <= checkpoint) {
            return;
        }
        ++summary.blocks;
        summary.bytes += header.size;
        unsigned site = 0;
        while (site < site_count && !(sites[site].trace == header.allocated)) {
            ++site;
        }
        if (site == site_count) {
            if (site_count == kMaxSites) {
                summary.sites = kMaxSites + 1; // more than the list holds: counted, not listed
                return;
            }
            ++summary.sites;
            sites[site_count++] = Site{header.allocated, 0, 0};
        }
        ++sites[site].blocks;
        sites[site].bytes += header.size;
    });
    if (write == nullptr) {
        return summary;
    }
    TextLine()
        .text("leaks: ")
        .number(summary.blocks)
        .text(" live blocks, ")
        .number(summary.bytes)
        .text(summary.sites > kMaxSites ? " bytes, from more than " : " bytes, from ")
        .number(summary.sites > kMaxSites ? kMaxSites : summary.sites)
        .text(" allocation sites, allocated after #")
        .number(checkpoint)
        .write(write, context);
    uint64_t listed = 0;
    for (unsigned site = 0; site < site_count; ++site) {
        listed += sites[site].blocks;
        TextLine()
            .text("leaks: ")
            .number(sites[site].blocks)
            .text(sites[site].blocks == 1 ? " block, " : " blocks, ")
            .number(sites[site].bytes)
            .text(" bytes, allocated at")
            .trace(sites[site].trace)
            .write(write, context);
        static_cast<void>(walk_from_both_ends(m_live, [&](const CheckedBlock& header) {
            if (header.sequence > checkpoint && header.allocated == sites[site].trace) {
                TextLine()
                    .text("leaks:   ")
                    .hex(header.block)
                    .text(" ")
                    .number(header.size)
                    .text(" bytes (allocation #")
                    .number(header.sequence)
                    .text(")")
                    .write(write, context);
            }
        }));
    }
    if (listed != summary.blocks) {
        TextLine()
            .text("leaks: ")
            .number(summary.blocks - listed)
            .text(" more blocks from the sites beyond the first ")
            .number(kMaxSites)
            .write(write, context);
    }
    if (damaged.first != nullptr && damaged.first == damaged.last) {
        TextLine()
            .text("leaks: a damaged checked-mode header at ")
            .hex(damaged.first)
            .text(": its block is not counted")
            .write(write, context);
    } else if (damaged.first != nullptr) {
        TextLine()
            .text("leaks: damaged checked-mode headers at ")
            .hex(damaged.first)
            .text(" and ")
            .hex(damaged.last)
            .text(": their blocks and those between them in the live list are not counted")
            .write(write, context);
    }
    return summary;
}

} // namespace bedrock::heap
