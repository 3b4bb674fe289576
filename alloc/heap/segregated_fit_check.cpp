// SPDX-License-Identifier: MIT
// SegregatedFit::check(): walks every arena, list and bitmap and names the first invariant of
// segregated_fit.h that does not hold.
#include "heap/segregated_fit_blocks.h"

namespace bedrock::heap {

using namespace fit_detail;

bool SegregatedFit::check(const char** failure) const {
    const auto fail = [failure](const char* invariant) {
        if (failure != nullptr) {
            *failure = invariant;
        }
        return false;
    };
    size_t free_bytes = 0;
    size_t free_blocks = 0;
    size_t arenas = 0;
    size_t arena_bytes = 0;
    const Arena* previous_arena = nullptr;
    for (const Arena* arena = m_arenas; arena != nullptr; arena = arena->next) {
        if (arena->prev != previous_arena || arenas == m_totals.arenas) {
            return fail("arena list: links or length disagree with the arena count");
        }
        if (!is_aligned(address_of(arena), kGranule) || !is_aligned(arena->bytes, kGranule) ||
            arena->bytes > m_max_arena_bytes || fit_detail::fresh_usable(arena->bytes) == 0) {
            return fail("arena bounds: misaligned, too large or too small");
        }
        if (!arena->pad.holds(m_secret)) {
            return fail("layout: an arena's pad was overwritten (a write past the end of the "
                        "memory before it)");
        }
        const ArenaPlaces places = places_of(bounds_of(*arena));
        if (arena->summary != places.summary || arena->start != places.start ||
            arena->first != places.first) {
            return fail("layout: the arena's kept level and first block addresses are not its own");
        }
        ++arenas;
        arena_bytes += arena->bytes;
        previous_arena = arena;

        const BlockHeader* sentinel = sentinel_of(*arena);
        const BlockHeader* previous = nullptr;
        size_t blocks = 0;
        for (const BlockHeader* header = first_of(*arena); header != sentinel;
             header = next_of(header)) {
            const size_t usable = usable_of(header);
            if (usable < kMinUsable) {
                return fail("sizes: a block is smaller than the minimum");
            }
            if (usable > address_of(sentinel) - address_of(header) - kBlockHeaderBytes) {
                return fail("tiling: a block runs past the end sentinel");
            }
            if (use_bits(header) > static_cast<size_t>(BlockUse::Retired)) {
                return fail("a block's use is not a BlockUse");
            }
            const bool previous_free = previous != nullptr && is_free(previous);
            if (prev_is_free(header) != previous_free) {
                return fail("prev flag: prev_free(next(h)) != free(h)");
            }
            if (is_free(header)) {
                if (previous_free) {
                    return fail("coalesced: two physically adjacent free blocks");
                }
                if (!seal_holds(header) || load_link(&links_of(header)->arena) !=
                                               reinterpret_cast<const BlockHeader*>(arena)) {
                    return fail("links: a free block's seal does not hold, or its arena link is "
                                "not its arena (written after free)");
                }
                free_bytes += usable;
                ++free_blocks;
            } else if (header->link !=
                       (previous_free ? address_of(header) - address_of(previous) : 0)) {
                return fail("links: a taken block's link is not its free predecessor (or 0)");
            }
            if (!start_bit(*arena, granule_of(*arena, header))) {
                return fail("start bits: a block start has no bit");
            }
            ++blocks;
            previous = header;
        }
        if (use_bits(sentinel) != kSentinelUse || usable_of(sentinel) != 0) {
            return fail("tiling: the end sentinel is damaged");
        }
        const bool last_free = previous != nullptr && is_free(previous);
        if (prev_is_free(sentinel) != last_free ||
            sentinel->link != (last_free ? address_of(sentinel) - address_of(previous) : 0)) {
            return fail("prev flag: the end sentinel disagrees with the last block");
        }
        const size_t words = fit_detail::start_bitmap_words(arena->bytes);
        size_t bits = 0;
        for (size_t word = 0; word < words; ++word) {
            bits += popcount(logical_word(*arena, word));
        }
        if (bits != blocks) {
            return fail("start bits: a bit is set where no block starts");
        }
        const uint64_t last_summary = fit_detail::logical_summary(*arena, (words - 1) / 64);
        if (words % 64 != 0 && (last_summary >> (words % 64)) != 0) {
            return fail("summary: a bit beyond the last start bitmap word");
        }
        const size_t summaries = fit_detail::summary_words(arena->bytes);
        const uint64_t last_top = arena->top_bits()[(summaries - 1) / 64];
        if (summaries % 64 != 0 && (last_top >> (summaries % 64)) != 0) {
            return fail("summary: a top bit beyond the last summary word");
        }
    }
    if (previous_arena != m_last_arena || arenas != m_totals.arenas ||
        arena_bytes != m_totals.arena_bytes) {
        return fail("totals: arena count or bytes disagree with the arena list");
    }
    if (free_bytes != m_totals.free_bytes) {
        return fail("totals: free bytes disagree with the free blocks");
    }
    return check_lists(free_blocks, failure);
}

// The lists and bitmaps part of check(), after the walk counted `free_blocks`.
bool SegregatedFit::check_lists(size_t free_blocks, const char** failure) const {
    const auto fail = [failure](const char* invariant) {
        if (failure != nullptr) {
            *failure = invariant;
        }
        return false;
    };
    size_t listed = 0;
    for (unsigned list = 1; list <= m_last_list; ++list) {
        const bool bit =
            ((m_second_level[list / kSecondLevelCount] >> (list % kSecondLevelCount)) & 1) != 0;
        if (bit != (head(list) != nullptr)) {
            return fail("bitmaps: a second-level bit disagrees with its list");
        }
        const BlockHeader* previous = nullptr;
        for (const BlockHeader* node = head(list); node != nullptr;) {
            if (++listed > free_blocks) {
                return fail("lists: more list nodes than free blocks (a cycle or a stray node)");
            }
            // Each node came from the head or a sealed link: its seal is checked before any of
            // its links is read.
            if (!seal_holds(node)) {
                return fail("lists: a node's seal does not hold (its links written after free)");
            }
            if (load_link(&links_of(node)->prev) != previous) {
                return fail("lists: a node's prev link is not the node before it");
            }
            const Arena* owner = m_arenas;
            while (owner != nullptr && reinterpret_cast<const BlockHeader*>(owner) !=
                                           load_link(&links_of(node)->arena)) {
                owner = owner->next;
            }
            if (owner == nullptr || address_of(node) < address_of(first_of(*owner)) ||
                address_of(node) >= address_of(sentinel_of(*owner)) ||
                !start_bit(*owner, granule_of(*owner, node))) {
                return fail("lists: a node is not a block of an arena");
            }
            if (!is_free(node) || list_of(usable_of(node)) != list) {
                return fail("lists: a node is not free or not on the list its size maps to");
            }
            previous = node;
            node = load_link(&links_of(node)->next);
        }
    }
    if (listed != free_blocks) {
        return fail("lists: a free block is on no list");
    }
    const unsigned last_level = m_last_list / kSecondLevelCount;
    if ((m_second_level[0] & 1) != 0 ||
        ((m_second_level[last_level] >> (m_last_list % kSecondLevelCount)) >> 1) != 0) {
        return fail("bitmaps: a second-level bit for list 0 or beyond the last list");
    }
    for (unsigned first = 0; first < kFirstLevelCount; ++first) {
        if (first > last_level && m_second_level[first] != 0) {
            return fail("bitmaps: a second-level bit beyond the last list");
        }
        if (((m_first_level >> first) & 1) != (m_second_level[first] != 0 ? 1u : 0u)) {
            return fail("bitmaps: a first-level bit disagrees with its second-level map");
        }
    }
    if ((m_first_level >> kFirstLevelCount) != 0) {
        return fail("bitmaps: a first-level bit beyond the last level");
    }
    return true;
}

} // namespace bedrock::heap
