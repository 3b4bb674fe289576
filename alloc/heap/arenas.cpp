// SPDX-License-Identifier: MIT
// Arenas: growth from the page frame allocator, tagging, and the totals (see arenas.h).
#include "heap/arenas.h"

#include "bedrock/assert.h"
#include "bedrock/platform.h"
#include "heap/page_tags.h"
#include "report/heap_error_reports.h"
#include "support/bits.h"

namespace bedrock::heap {
namespace {

// What an arena's tags say (page_tags.h).
enum class ArenaTags : uint8_t { Held, Cleared };

// Tags the arena of 2^order pages at `base`, held by the heap with `owner_id`, or clears its
// tags: its spans when it has whole ones (all but arenas made when memory is short), else its
// pages, and its first page's tag. Held: the first page's tag is written first, so an arena tag
// never leads to a first page that does not name its heap yet.
void write_tags(const PageFrameAllocator& frames, const void* base, unsigned order,
                uint16_t owner_id, ArenaTags what) {
    const PageFrameAllocator::PageTags tags = frames.tags_of(base);
    BEDROCK_ASSERT(tags.page != nullptr);
    const bool held = what == ArenaTags::Held;
    const uint16_t tag = held ? make_tag(PageKind::Arena, order) : 0;
    if (held) {
        __atomic_store_n(tags.page, arena_base_tag(owner_id), __ATOMIC_RELAXED);
    }
    if (order >= kTagSpanOrder) {
        fill_tags(tags.span, uint64_t{1} << (order - kTagSpanOrder), tag);
    } else {
        fill_tags(tags.page + 1, (uint64_t{1} << order) - 1, tag);
    }
    if (!held) {
        __atomic_store_n(tags.page, uint16_t{0}, __ATOMIC_RELAXED);
    }
}

} // namespace

bool Arenas::init_region(void* fit_storage, void* base, size_t bytes, Heap* owner,
                         uintptr_t secret) {
    m_owner = owner;
    m_fit.init(fit_storage, bytes, secret);
    m_region = m_fit.add_arena(base, bytes, owner);
    return m_region != nullptr;
}

void Arenas::init_frames(void* fit_storage, PageFrameAllocator& frames, Heap* owner,
                         uint16_t owner_id, HeldPages& held, uintptr_t secret) {
    m_owner = owner;
    m_owner_id = owner_id;
    m_held = &held;
    m_frames = &frames;
    m_fit.init(fit_storage, kMaxArenaBytes, secret);
}

void Arenas::report_pending_damage(const ErrorPolicy& errors) {
    constexpr const char* kLinks =
        "a free medium block's list link or header was overwritten (after free, or past the end "
        "of the block before it): the free lists were rebuilt without following it (size = "
        "blocks found)";
    constexpr const char* kHeaders =
        "the heap's header of this block was overwritten (a write past the end of the block "
        "before it, or before this one): the block is taken out of use (size = blocks found)";
    SegregatedFit::Damage damage;
    {
        LockGuard guard(m_lock);
        damage = m_fit.take_damage();
    }
    if (damage.links != 0) {
        errors.raise(metadata_damage_report(damage.first_link, damage.links, kLinks));
    }
    if (damage.headers != 0) {
        errors.raise(metadata_damage_report(damage.first_header, damage.headers, kHeaders));
    }
    if (damage.pads != 0) {
        errors.raise(metadata_damage_report(damage.first_pad, damage.pads, kOverwrittenPad));
    }
}

bool Arenas::grow_locked(size_t size, size_t alignment) {
    if (m_frames == nullptr) {
        return false;
    }
    // The smallest arena that holds one block of `size` at `alignment` on its own: one whose
    // free block has the bytes SegregatedFit::take() looks for, so that its search or its probe
    // of the list below finds the new block first.
    if (size > kMaxArenaBytes || alignment > kMaxArenaBytes) {
        return false;
    }
    const size_t block = SegregatedFit::bytes_to_place(size, alignment);
    // From the first order whose span holds the block with its own header and the end sentinel
    // (the arena's header and bitmaps take under 1% more): one or two steps below.
    const size_t least = block + 2 * kBlockHeaderBytes;
    unsigned needed = least <= kPageSize ? 0 : ceil_log2(divide_rounding_up(least, kPageSize));
    while (needed <= kMaxArenaOrder &&
           (kPageSize << needed) <
               SegregatedFit::arena_overhead(kPageSize << needed) + kBlockHeaderBytes + block) {
        ++needed;
    }
    if (needed > kMaxArenaOrder) {
        return false;
    }
    // Double with the bytes already held, so the arenas number O(log memory).
    // The least order >= kMinArenaOrder with 2^order > m_pages, at most kMaxArenaOrder.
    unsigned order = m_pages == 0 ? kMinArenaOrder : floor_log2(m_pages) + 1;
    order = order < kMinArenaOrder ? kMinArenaOrder : order;
    order = order > kMaxArenaOrder ? kMaxArenaOrder : order;
    order = order < needed ? needed : order;
    // Memory is short when no block of that order is free: the largest free one instead, as
    // long as it still fits the request (one look at the free lists, not a try per order). When
    // none fits, the least order is asked for anyway: the allocator's owner may grow it then
    // (PageFrameAllocator::set_grow_hook).
    const int largest = m_frames->largest_free_order();
    if (largest < static_cast<int>(needed)) {
        order = needed;
    } else {
        order = order < static_cast<unsigned>(largest) ? order : static_cast<unsigned>(largest);
    }
    const PhysAddr phys = m_frames->allocate(order);
    if (phys == kNoPage) {
        return false; // taken by another CPU meanwhile
    }
    void* base = platform::phys_to_virt(phys);
    Arena* arena = m_fit.add_arena(base, kPageSize << order, m_owner);
    BEDROCK_ASSERT(arena != nullptr);
    write_tags(*m_frames, base, order, m_owner_id, ArenaTags::Held);
    m_pages += uint64_t{1} << order;
    m_held->add(uint64_t{1} << order);
    return true;
}

void Arenas::give_arena_locked(Arena& arena) {
    const uintptr_t base = SegregatedFit::arena_begin(arena);
    const uint64_t pages = (SegregatedFit::arena_end(arena) - base) / kPageSize;
    const unsigned order = floor_log2(pages);
    m_fit.remove_arena(arena);
    if (m_unused_interval != 0) {
        // Most of it is free memory never told of: the page frame allocator keeps freed pages
        // untold up to a limit.
        platform::pages_unused(reinterpret_cast<void*>(base), pages * kPageSize);
    }
    write_tags(*m_frames, reinterpret_cast<void*>(base), order, m_owner_id, ArenaTags::Cleared);
    // After its tags are cleared (see arenas_given()).
    __atomic_store_n(&m_arenas_given, m_arenas_given + 1, __ATOMIC_RELEASE);
    m_pages -= pages;
    m_held->remove(pages);
    m_frames->free(m_frames->phys_of(reinterpret_cast<void*>(base)), order);
}

void* Arenas::take_after_growth(size_t size, size_t alignment, BlockUse use) {
    if (!grow_locked(size, alignment)) {
        return nullptr;
    }
    void* block = m_fit.take(size, alignment, use);
    BEDROCK_ASSERT(block != nullptr);
    return block;
}

void Arenas::give(void* block, BlockUse use) {
    LockGuard guard(m_lock);
    give_locked(*arena_of(block), block, use);
}

bool Arenas::holds_locked(const Arena& arena, const void* address) const {
    if (m_frames == nullptr) {
        return &arena == m_region;
    }
    // Tags are written under m_lock: the first page's names this heap exactly while the arena
    // there is one of its own, and only then is its header read.
    const PageFrameAllocator::PageTags tags = m_frames->tags_of(&arena);
    return tags.page != nullptr &&
           __atomic_load_n(tags.page, __ATOMIC_RELAXED) == arena_base_tag(m_owner_id) &&
           reinterpret_cast<uintptr_t>(address) - SegregatedFit::arena_begin(arena) < arena.bytes;
}

bool Arenas::starts_block_locked(const Arena& arena, const void* block) const {
    // The caller found `block` without the lock; another CPU may have given it back (its memory
    // merged or taken again), or its arena, since. Under the lock, the arena's tags, then its
    // start bit, say whether a block of these arenas starts there.
    return holds_locked(arena, block) &&
           SegregatedFit::is_block_start(SegregatedFit::bounds_of(arena), block);
}

bool Arenas::give_if_taken(const Arena& arena, void* block, BlockUse use, uint64_t arenas_seen) {
    LockGuard guard(m_lock);
    if (m_arenas_given == arenas_seen) [[likely]] {
        // No arena given back since the caller read its tags: `arena` is still one of these, the
        // one whose start bit the caller saw set for `block`.
        if (!SegregatedFit::is_block_start_seen(arena, block)) {
            return false;
        }
    } else if (!starts_block_locked(arena, block)) {
        return false;
    }
    // A block start of `arena`: of another use, or free (a double free), if its header says so
    // and holds, or kept (freed already); the caller reports the pointer. A header that does not
    // hold is recorded, unless the block is kept: then it is found when the block is taken again
    // and freed, or given back to the fit.
    if (SegregatedFit::use_of(block) != use && m_fit.header_holds(arena, block)) {
        return false;
    }
    if (!SegregatedFit::taken_header_holds(arena, block)) [[unlikely]] {
        if (use == BlockUse::Medium && is_kept_locked(block)) {
            return false;
        }
        retire_locked(const_cast<Arena&>(arena), block, use); // never given back, never followed
        return true;
    }
    // A header that holds names the size the block was kept with, if it is kept: it is looked
    // for in that size's slot alone.
    if (use == BlockUse::Medium) {
        const size_t usable = SegregatedFit::usable_size(block);
        if (usable <= kMaxKeptUsable) {
            switch (keep_locked(block, usable)) {
            case Keeping::Kept:
                return true;
            case Keeping::KeptAlready:
                return false;
            case Keeping::SlotTaken:
                break;
            }
        }
    }
    give_holding_locked(const_cast<Arena&>(arena), block, use);
    return true;
}

Arenas::HeaderCheck Arenas::check_taken_header(const Arena& arena, const void* block,
                                               BlockUse use) {
    LockGuard guard(m_lock);
    if (!starts_block_locked(arena, block) || (use == BlockUse::Medium && is_kept_locked(block))) {
        return HeaderCheck::NotTaken;
    }
    if (m_fit.header_holds(arena, block)) {
        return SegregatedFit::use_of(block) == use ? HeaderCheck::Holds : HeaderCheck::NotTaken;
    }
    retire_locked(const_cast<Arena&>(arena), const_cast<void*>(block), use);
    return HeaderCheck::Damaged;
}

unsigned char* Arenas::holder_with_overwritten_header(const Arena& arena, const void* address) {
    LockGuard guard(m_lock);
    if (!holds_locked(arena, address)) {
        return nullptr; // given back since the caller read its tags: nothing of it to blame
    }
    unsigned char* block =
        SegregatedFit::start_at_or_below(SegregatedFit::bounds_of(arena), address, ~size_t{0});
    if (block == nullptr) {
        return nullptr;
    }
    // A free block's seal is not asked for: a write after free breaks it, which is no reason
    // to withhold a double free's report.
    const bool holds = SegregatedFit::use_of(block) == BlockUse::Free
                           ? SegregatedFit::size_holds(arena, block)
                           : m_fit.header_holds(arena, block);
    return holds ? nullptr : block;
}

void Arenas::retire_locked(Arena& arena, void* block, BlockUse use) {
    const SegregatedFit::RetiredBlock retired = m_fit.retire(arena, block);
    if (retired.taken) { // not a stale pointer to a free block
        UseTotals& totals = totals_of(use);
        --totals.blocks;
        totals.bytes -= retired.usable;
    }
}

Arena* Arenas::arena_of(const void* block) const {
    if (m_frames == nullptr) {
        return m_region;
    }
    const PageFrameAllocator::PageTags tags = m_frames->tags_of(block);
    BEDROCK_ASSERT(tags.page != nullptr);
    const uint16_t tag = heap_tag(tags);
    BEDROCK_ASSERT(is_arena_tag(tag));
    return reinterpret_cast<Arena*>(arena_base(reinterpret_cast<uintptr_t>(block), tag));
}

inline void Arenas::give_locked(Arena& arena, void* block, BlockUse use) {
    if (!SegregatedFit::taken_header_holds(arena, block)) [[unlikely]] {
        retire_locked(arena, block, use); // never given back, never followed
        return;
    }
    give_holding_locked(arena, block, use);
}

inline void Arenas::give_holding_locked(Arena& arena, void* block, BlockUse use) {
    BEDROCK_DEBUG_ASSERT(SegregatedFit::find(SegregatedFit::bounds_of(arena), block, 0).block ==
                             block &&
                         SegregatedFit::use_of(block) == use && use != BlockUse::Free);
    UseTotals& totals = totals_of(use);
    const size_t usable = SegregatedFit::usable_size(block);
    --totals.blocks;
    totals.bytes -= usable;
    give_to_fit_locked(arena, block, usable);
}

inline void Arenas::give_to_fit_locked(Arena& arena, void* block, size_t usable) {
    if (m_fit.give(arena, block) && m_frames != nullptr) {
        if (m_spare != nullptr && m_spare != &arena && SegregatedFit::arena_is_empty(*m_spare)) {
            give_arena_locked(arena);
        } else {
            m_spare = &arena;
        }
    }
    if (m_untold_left != 0) [[unlikely]] { // never for region heaps: theirs stays 0
        const size_t given = usable + kBlockHeaderBytes;
        if (given < m_untold_left) {
            m_untold_left -= given;
        } else {
            tell_unused_locked();
        }
    }
}

void* Arenas::take_kept_locked(size_t size, size_t& usable) {
    BEDROCK_DEBUG_ASSERT(size <= kMaxKeptUsable);
    const size_t wanted = size < kMinUsable ? kMinUsable : align_up(size, kGranule);
    const unsigned list = fit_detail::list_of(wanted);
    const unsigned slot = slot_of_list(list);
    void* block = m_kept[slot];
    const size_t kept_usable = m_kept_usable[slot];
    if (block == nullptr || kept_usable < wanted || fit_detail::list_of(kept_usable) != list) {
        return nullptr;
    }
    m_kept[slot] = nullptr;
    usable = kept_usable;
    return block;
}

bool Arenas::is_kept_locked(const void* block) const {
    bool kept = false;
    for (const void* slot : m_kept) {
        kept = kept || slot == block;
    }
    return kept;
}

Arenas::Keeping Arenas::keep_locked(void* block, size_t usable) {
    BEDROCK_DEBUG_ASSERT(SegregatedFit::use_of(block) == BlockUse::Medium &&
                         SegregatedFit::usable_size(block) == usable && usable <= kMaxKeptUsable);
    const unsigned slot = kept_slot(usable);
    if (m_kept[slot] != nullptr) {
        return m_kept[slot] == block ? Keeping::KeptAlready : Keeping::SlotTaken;
    }
    BEDROCK_DEBUG_ASSERT(!is_kept_locked(block));
    m_kept[slot] = block;
    m_kept_usable[slot] = static_cast<uint32_t>(usable);
    UseTotals& totals = totals_of(BlockUse::Medium);
    --totals.blocks;
    totals.bytes -= usable;
    return Keeping::Kept;
}

bool Arenas::give_kept_locked() {
    bool given = false;
    for (unsigned slot = 0; slot < kKeptSlots; ++slot) {
        void* block = m_kept[slot];
        if (block == nullptr) {
            continue;
        }
        m_kept[slot] = nullptr;
        given = true;
        // Its header is followed only if it holds and still names the size it was kept with.
        Arena& arena = *arena_of(block);
        if (!SegregatedFit::taken_header_holds(arena, block) ||
            SegregatedFit::usable_size(block) != m_kept_usable[slot]) [[unlikely]] {
            static_cast<void>(m_fit.retire(arena, block)); // not counted: nothing to take off
            continue;
        }
        give_to_fit_locked(arena, block, m_kept_usable[slot]);
    }
    return given;
}

void Arenas::tell_unused_locked() {
    m_untold_left = m_unused_interval;
    uint64_t taken = 0;
    for (const UseTotals& totals : m_totals) {
        taken += totals.bytes;
    }
    // Free memory up to what is taken, and the interval more, stays: a program swinging
    // within its arenas takes it again without a page fault per page.
    // Saturating: an interval near SIZE_MAX keeps everything rather than wrapping to nothing.
    const uint64_t kept =
        taken + m_unused_interval < taken ? ~uint64_t{0} : taken + m_unused_interval;
    const size_t free_bytes = m_fit.totals().free_bytes;
    if (free_bytes > kept) {
        tell_free_pages_locked(kToldFreeBlockBytes, free_bytes - kept);
    }
}

void Arenas::give_taken_locked(void* block, BlockUse use) {
    give_locked(*arena_of(block), block, use);
}

bool Arenas::grow_in_place(Arena& arena, void* block, size_t size) {
    return resize_in_place(arena, block, size, Resize::Grow);
}

bool Arenas::shrink_in_place(Arena& arena, void* block, size_t size) {
    return resize_in_place(arena, block, size, Resize::Shrink);
}

bool Arenas::resize_in_place(Arena& arena, void* block, size_t size, Resize resize) {
    LockGuard guard(m_lock);
    // Its header is followed (its size, the free block after it) only if it holds.
    if (!starts_block_locked(arena, block) || SegregatedFit::use_of(block) != BlockUse::Medium ||
        is_kept_locked(block) || !SegregatedFit::taken_header_holds(arena, block)) {
        return false;
    }
    const size_t before = SegregatedFit::usable_size(block);
    if (resize == Resize::Grow ? !m_fit.grow(arena, block, size)
                               : !m_fit.shrink(arena, block, size)) {
        return false;
    }
    totals_of(BlockUse::Medium).bytes += SegregatedFit::usable_size(block) - before;
    return true;
}

void* Arenas::taken_block_holding(const void* address, BlockUse use, size_t reach) const {
    const SegregatedFit::Found found =
        SegregatedFit::find(SegregatedFit::bounds_of(*arena_of(address)), address, reach);
    return found.use == use ? found.block : nullptr;
}

SegregatedFit::Found Arenas::find(const Arena& arena, const void* address, size_t reach) {
    LockGuard guard(m_lock);
    if (!holds_locked(arena, address)) {
        return SegregatedFit::Found{}; // given back since the caller read its tags
    }
    SegregatedFit::Found found =
        SegregatedFit::find(SegregatedFit::bounds_of(arena), address, reach);
    if (found.use == BlockUse::Medium && is_kept_locked(found.block)) {
        found.use = BlockUse::Free; // freed: kept for reuse
    }
    return found;
}

bool Arenas::give_spare_locked() {
    Arena* spare = m_spare;
    m_spare = nullptr;
    if (spare == nullptr || !SegregatedFit::arena_is_empty(*spare)) {
        return false;
    }
    give_arena_locked(*spare);
    return true;
}

bool Arenas::give_idle_locked() {
    const bool kept_given = give_kept_locked(); // may leave an arena empty: the spare
    return give_spare_locked() || kept_given;
}

bool Arenas::give_idle() {
    LockGuard guard(m_lock);
    return give_idle_locked();
}

bool Arenas::give_idle_without_waiting() {
    platform::InterruptState previous;
    if (!m_lock.try_lock(previous)) {
        return false;
    }
    const bool given = give_idle_locked();
    m_lock.unlock(previous);
    return given;
}

void Arenas::trim() {
    LockGuard guard(m_lock);
    give_idle_locked();
    if (m_frames == nullptr) {
        return; // a region's memory need not be in the direct map pages_unused() is told of
    }
    m_frames->tell_unused_pages();
    m_untold_left = m_unused_interval;
    tell_free_pages_locked(kPageSize, ~size_t{0}); // a smaller block holds no whole page
}

void Arenas::tell_free_pages_locked(size_t least, size_t bytes) {
    // Nothing reads those pages until the block is taken again, when they are written without
    // notice, as pages_unused() allows.
    m_fit.visit_free_blocks(
        least,
        [](void* context, unsigned char* block, size_t usable, bool& told) {
            size_t& left = *static_cast<size_t*>(context);
            const auto start = reinterpret_cast<uintptr_t>(block);
            const uint64_t first = align_up(start + SegregatedFit::kFreeLinksBytes, kPageSize);
            const uint64_t end = align_down(start + usable, kPageSize);
            if (!told && end > first) {
                platform::pages_unused(reinterpret_cast<void*>(first), end - first);
            }
            told = true;
            left = left > usable ? left - usable : 0;
            return left != 0;
        },
        &bytes);
}

bool Arenas::tell_unused() {
    LockGuard guard(m_lock);
    if (m_frames == nullptr) {
        return false; // a region's memory need not be in the direct map pages_unused() is told of
    }
    tell_unused_locked();
    return true;
}

bool Arenas::set_unused_interval(size_t bytes) {
    LockGuard guard(m_lock);
    if (m_frames == nullptr) {
        return false; // a region's memory need not be in the direct map pages_unused() is told of
    }
    m_unused_interval = bytes;
    m_untold_left = bytes;
    return true;
}

void Arenas::give_all() {
    LockGuard guard(m_lock);
    for ([[maybe_unused]] const void* slot : m_kept) {
        BEDROCK_DEBUG_ASSERT(slot == nullptr); // trim() gave them back
    }
    if (m_frames == nullptr) {
        return;
    }
    // Whole, even an arena that is not empty: heap_destroy() found no block in use, so what is
    // still taken is a slab its class took out of use after a write after free damaged its free
    // list (reported when found).
    while (Arena* arena = m_fit.first_arena()) {
        give_arena_locked(*arena);
    }
    m_spare = nullptr;
}

Arenas::UseTotals Arenas::totals(BlockUse use) {
    LockGuard guard(m_lock);
    return totals_of(use);
}

bool Arenas::has_arena_locked(ArenaBounds bounds) const {
    for (const Arena* arena = m_fit.first_arena(); arena != nullptr; arena = arena->next) {
        const ArenaBounds found = SegregatedFit::bounds_of(*arena);
        if (found.base == bounds.base && found.bytes == bounds.bytes) {
            return true;
        }
    }
    return false;
}

bool Arenas::check(const char** failure) {
    LockGuard guard(m_lock);
    if (!m_fit.check(failure)) {
        return false;
    }
    UseTotals counted[kCountedUses] = {};
    uint64_t pages = 0;
    bool tags_ok = true;
    unsigned kept_found = 0;
    bool kept_ok = true;
    m_fit.for_each_block([&](const Arena&, unsigned char* block, size_t usable, BlockUse use) {
        if (use == BlockUse::Medium && is_kept_locked(block)) {
            ++kept_found;
            const unsigned slot = kept_slot(usable);
            kept_ok = kept_ok && usable <= kMaxKeptUsable && m_kept[slot] == block &&
                      m_kept_usable[slot] == usable;
        } else if (use != BlockUse::Free && use != BlockUse::Retired) {
            ++counted[counted_index(use)].blocks;
            counted[counted_index(use)].bytes += usable;
        }
    });
    unsigned kept = 0;
    for (const void* slot : m_kept) {
        kept += slot != nullptr ? 1 : 0;
    }
    if (!kept_ok || kept_found != kept) {
        *failure = "a kept block is not a medium block of its slot";
        return false;
    }
    if (m_frames != nullptr) {
        for (Arena* arena = m_fit.first_arena(); arena != nullptr; arena = arena->next) {
            const uintptr_t base = SegregatedFit::arena_begin(*arena);
            const uint64_t arena_pages = (SegregatedFit::arena_end(*arena) - base) / kPageSize;
            const PageFrameAllocator::PageTags tags =
                m_frames->tags_of(reinterpret_cast<void*>(base));
            const unsigned order = floor_log2(arena_pages);
            const uint16_t expected = make_tag(PageKind::Arena, order);
            tags_ok = tags_ok && tags.page != nullptr && is_power_of_two(arena_pages) &&
                      base % (arena_pages * kPageSize) == 0 &&
                      tags.page[0] == arena_base_tag(m_owner_id);
            // Spans tagged and pages not, or (a small arena) the other way round; the first
            // page's tag names the heap either way.
            const bool spans = order >= kTagSpanOrder;
            const uint64_t span_count = spans ? arena_pages >> kTagSpanOrder : 0;
            for (uint64_t span = 0; tags_ok && span < span_count; ++span) {
                tags_ok = tags.span[span] == expected;
            }
            for (uint64_t page = 1; tags_ok && page < arena_pages; ++page) {
                tags_ok = tags.page[page] == (spans ? 0 : expected);
            }
            pages += arena_pages;
        }
    }
    for (unsigned use = 0; use < kCountedUses; ++use) {
        if (counted[use].blocks != m_totals[use].blocks ||
            counted[use].bytes != m_totals[use].bytes) {
            *failure = "the arenas' totals per use do not match their blocks";
            return false;
        }
    }
    if (!tags_ok || (m_frames != nullptr && pages != m_pages)) {
        *failure = "an arena page's tag, or the count of arena pages, is wrong";
        return false;
    }
    return true;
}

} // namespace bedrock::heap
