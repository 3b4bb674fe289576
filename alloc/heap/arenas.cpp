// Arenas: growth from the page frame allocator, tagging, and the totals (see arenas.h).
#include "heap/arenas.h"

#include "bedrock/assert.h"
#include "bedrock/platform.h"
#include "heap/page_tags.h"
#include "support/bits.h"

namespace bedrock::heap {
namespace {

void write_tags(uint16_t* tags, uint64_t pages, bool arena) {
    for (uint64_t page = 0; page < pages; ++page) {
        const uint16_t tag =
            !arena ? uint16_t{0}
                   : make_tag(page == 0 ? PageKind::ArenaHead : PageKind::ArenaBody,
                              static_cast<uint32_t>(page));
        __atomic_store_n(&tags[page], tag, __ATOMIC_RELAXED);
    }
}

static_assert(kMaxArenaBytes / kPageSize <= kMaxTagDistance + 1,
              "an arena body page reaches its head in one step");

} // namespace

bool Arenas::init_region(void* fit_storage, void* base, size_t bytes, Heap* owner) {
    m_owner = owner;
    m_fit.init(fit_storage, bytes);
    m_region = m_fit.add_arena(base, bytes, owner);
    return m_region != nullptr;
}

void Arenas::init_frames(void* fit_storage, PageFrameAllocator& frames, Heap* owner,
                         HeldPages& held) {
    m_owner = owner;
    m_held = &held;
    m_frames = &frames;
    m_fit.init(fit_storage, kMaxArenaBytes);
}

bool Arenas::grow_locked(size_t size, size_t alignment) {
    if (m_frames == nullptr) {
        return false;
    }
    // What one block of `size` at `alignment` needs, in an arena of its own.
    const size_t overhead = SegregatedFit::arena_overhead(kMaxArenaBytes) + kBlockHeaderBytes;
    if (size > kMaxArenaBytes || alignment > kMaxArenaBytes) {
        return false;
    }
    const size_t needed = align_up(size + alignment + overhead, kPageSize);
    if (needed > kMaxArenaBytes) {
        return false;
    }
    size_t bytes = kMinArenaBytes;
    while (bytes < kMaxArenaBytes && bytes <= m_pages * kPageSize) {
        bytes *= 2;
    }
    bytes = bytes < needed ? needed : bytes;
    for (;;) {
        const uint64_t pages = bytes / kPageSize;
        const PhysAddr phys = m_frames->allocate_pages(pages);
        if (phys != kNoPage) {
            void* base = platform::phys_to_virt(phys);
            uint16_t* tags = m_frames->page_tag(base);
            BEDROCK_ASSERT(tags != nullptr);
            Arena* arena = m_fit.add_arena(base, bytes, m_owner);
            BEDROCK_ASSERT(arena != nullptr);
            write_tags(tags, pages, true);
            m_pages += pages;
            m_held->add(pages);
            return true;
        }
        if (bytes == needed) {
            return false;
        }
        // Memory is short: a smaller arena, as long as it still fits the request.
        bytes = bytes / 2 < needed ? needed : bytes / 2;
    }
}

void Arenas::give_arena_locked(Arena& arena) {
    const uintptr_t base = SegregatedFit::arena_begin(arena);
    const uint64_t pages = (SegregatedFit::arena_end(arena) - base) / kPageSize;
    m_fit.remove_arena(arena);
    write_tags(m_frames->page_tag(reinterpret_cast<void*>(base)), pages, false);
    m_pages -= pages;
    m_held->remove(pages);
    m_frames->free_pages(m_frames->phys_of(reinterpret_cast<void*>(base)), pages);
}

void* Arenas::take(size_t size, size_t alignment, BlockUse use, size_t requested) {
    LockGuard guard(m_lock);
    void* block = m_fit.take(size, alignment, use);
    if (block == nullptr) [[unlikely]] {
        if (!grow_locked(size, alignment)) {
            return nullptr;
        }
        block = m_fit.take(size, alignment, use);
        BEDROCK_ASSERT(block != nullptr);
    }
    UseTotals& totals = m_totals[static_cast<unsigned>(use)];
    ++totals.blocks;
    ++totals.allocations;
    totals.bytes += SegregatedFit::usable_size(block);
    totals.bytes_requested += requested;
    return block;
}

void Arenas::give(void* block) {
    LockGuard guard(m_lock);
    give_locked(*arena_of(block), block);
}

bool Arenas::give_if_taken(const Arena& arena, void* block, BlockUse use) {
    LockGuard guard(m_lock);
    const SegregatedFit::Found found = SegregatedFit::find(arena, block, 0);
    if (found.block != block || found.use != use) {
        return false;
    }
    give_locked(const_cast<Arena&>(arena), block);
    return true;
}

Arena* Arenas::arena_of(const void* block) const {
    if (m_frames == nullptr) {
        return m_region;
    }
    const uint16_t* tags = m_frames->page_tag(block);
    BEDROCK_ASSERT(tags != nullptr);
    const uint16_t tag = __atomic_load_n(tags, __ATOMIC_RELAXED);
    BEDROCK_ASSERT(tag_kind(tag) == PageKind::ArenaHead || tag_kind(tag) == PageKind::ArenaBody);
    return reinterpret_cast<Arena*>(align_down(reinterpret_cast<uintptr_t>(block), kPageSize) -
                                    uintptr_t{tag_value(tag)} * kPageSize);
}

void Arenas::give_locked(Arena& arena, void* block) {
    UseTotals& totals = m_totals[static_cast<unsigned>(SegregatedFit::use_of(block))];
    --totals.blocks;
    totals.bytes -= SegregatedFit::usable_size(block);
    m_fit.give(arena, block);
    if (m_frames == nullptr || !SegregatedFit::arena_is_empty(arena)) {
        return;
    }
    if (m_spare != nullptr && m_spare != &arena && SegregatedFit::arena_is_empty(*m_spare)) {
        give_arena_locked(arena);
    } else {
        m_spare = &arena;
    }
}

SegregatedFit::Found Arenas::find(const Arena& arena, const void* address, size_t reach) {
    LockGuard guard(m_lock);
    return SegregatedFit::find(arena, address, reach);
}

void Arenas::trim() {
    LockGuard guard(m_lock);
    if (m_spare != nullptr && SegregatedFit::arena_is_empty(*m_spare)) {
        give_arena_locked(*m_spare);
    }
    m_spare = nullptr;
}

void Arenas::give_all() {
    LockGuard guard(m_lock);
    if (m_frames == nullptr) {
        return;
    }
    while (Arena* arena = m_fit.first_arena()) {
        BEDROCK_ASSERT(SegregatedFit::arena_is_empty(*arena));
        give_arena_locked(*arena);
    }
    m_spare = nullptr;
}

Arenas::UseTotals Arenas::totals(BlockUse use) {
    LockGuard guard(m_lock);
    return m_totals[static_cast<unsigned>(use)];
}

bool Arenas::check(const char** failure) {
    LockGuard guard(m_lock);
    if (!m_fit.check(failure)) {
        return false;
    }
    UseTotals counted[kBlockUses] = {};
    uint64_t pages = 0;
    bool tags_ok = true;
    m_fit.for_each_block([&](const Arena&, unsigned char* block, size_t usable, BlockUse use) {
        if (use != BlockUse::Free) {
            ++counted[static_cast<unsigned>(use)].blocks;
            counted[static_cast<unsigned>(use)].bytes += usable;
        }
        (void)block;
    });
    if (m_frames != nullptr) {
        for (Arena* arena = m_fit.first_arena(); arena != nullptr;
             arena = arena->next) {
            const uintptr_t base = SegregatedFit::arena_begin(*arena);
            const uint64_t arena_pages = (SegregatedFit::arena_end(*arena) - base) / kPageSize;
            const uint16_t* tags = m_frames->page_tag(reinterpret_cast<void*>(base));
            for (uint64_t page = 0; tags != nullptr && page < arena_pages; ++page) {
                tags_ok = tags_ok &&
                          tags[page] ==
                              make_tag(page == 0 ? PageKind::ArenaHead : PageKind::ArenaBody,
                                       static_cast<uint32_t>(page));
            }
            tags_ok = tags_ok && tags != nullptr;
            pages += arena_pages;
        }
    }
    for (unsigned use = 1; use < kBlockUses; ++use) {
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
