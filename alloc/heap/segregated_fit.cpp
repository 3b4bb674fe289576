// SPDX-License-Identifier: MIT
// SegregatedFit: its lists, take(), give(), grow(), shrink() and its arenas (layout, invariants and
// which accesses are lock-free in segregated_fit.h; find() and check() have files of their own).
#include "heap/segregated_fit_blocks.h"

#include "bedrock/memory_routines.h"

namespace bedrock::heap {

using namespace fit_detail;

namespace {

// Sets the start bit of a new block start.
void mark_start(Arena& arena, const BlockHeader* header) {
    const size_t granule = granule_of(arena, header);
    BEDROCK_DEBUG_ASSERT(!start_bit(arena, granule));
    const size_t word = granule / 64;
    const size_t summary_word = word / 64;
    const uint64_t bit = uint64_t{1} << (granule % 64);
    const uint64_t summary_bit = uint64_t{1} << (word % 64);
    const uint64_t top_bit = uint64_t{1} << (summary_word % 64);
    uint64_t* top = &arena.top_bits()[summary_word / 64];
    uint64_t* summary = &arena.summary_bits()[summary_word];
    uint64_t* bits = &arena.start_bits()[word];
    const uint64_t top_now = load_word(top);
    if ((top_now & top_bit) == 0) {
        // Neither the summary word nor the word is initialised: each is overwritten whole, then
        // published, bottom up.
        store_word(bits, bit);
        publish_summary(summary, summary_bit);
        publish_summary(top, top_now | top_bit);
        return;
    }
    const uint64_t initialised = load_word(summary);
    if ((initialised & summary_bit) != 0) {
        store_word(bits, load_word(bits) | bit);
    } else {
        // The word's memory is garbage: overwrite it whole, then publish it.
        store_word(bits, bit);
        publish_summary(summary, initialised | summary_bit);
    }
}
// A block start's word is initialised (its bit is set, which counts only in an initialised
// word), so its bit is cleared in place.
void unmark_start(Arena& arena, const BlockHeader* header) {
    const size_t granule = granule_of(arena, header);
    BEDROCK_DEBUG_ASSERT(start_bit(arena, granule));
    const size_t word = granule / 64;
    uint64_t* bits = &arena.start_bits()[word];
    store_word(bits, load_word(bits) & ~(uint64_t{1} << (granule % 64)));
}

// Makes `next` (a taken block or the sentinel, though a write past `header`'s block may have
// made its header read otherwise) follow `header` physically: it links back only to a free
// predecessor, the one it may merge with.
void link_next(BlockHeader* header, BlockHeader* next) {
    next->link = is_free(header) ? address_of(next) - address_of(header) : 0;
    set_prev_free(next, is_free(header) ? Previous::Free : Previous::Taken);
}

// Where a block of `usable` bytes aligned to `alignment` starts inside free block `header`, or 0
// if it does not fit. A gap before it must hold a free block of its own (>= kMinBlockBytes).
uintptr_t placement(const BlockHeader* header, size_t usable, size_t alignment) {
    const uintptr_t start = address_of(header) + kBlockHeaderBytes;
    uintptr_t placed = start;
    if (!is_aligned(start, alignment)) {
        placed = align_up(start + kMinBlockBytes, alignment);
    }
    const size_t gap = placed - start;
    return gap <= usable_of(header) && usable_of(header) - gap >= usable ? placed : 0;
}

} // namespace

void SegregatedFit::init(void* storage, size_t max_arena_bytes, uintptr_t secret) {
    BEDROCK_DEBUG_ASSERT(is_aligned(address_of(storage), alignof(BlockHeader*)));
    const size_t bytes = storage_bytes(max_arena_bytes);
    m_heads = static_cast<BlockHeader**>(storage);
    m_last_list = static_cast<unsigned>(bytes / sizeof(BlockHeader*));
    m_max_arena_bytes = max_arena_bytes;
    m_max_usable = fit_detail::fresh_usable(align_down(max_arena_bytes, kGranule));
    m_first_level = 0;
    for (uint16_t& map : m_second_level) {
        map = 0;
    }
    m_arenas = nullptr;
    m_last_arena = nullptr;
    m_totals = FitTotals{};
    m_secret = secret;
    m_rebuilds = 0;
    derive_seal_keys();
    m_damage = Damage{};
    m_damage_found = 0;
    if (bytes != 0) {
        bedrock_memset(storage, 0, bytes);
    }
}

void SegregatedFit::write_links(BlockHeader* node, const BlockHeader* next, const BlockHeader* prev,
                                const Arena& arena) {
    FreeLinks* links = links_of(node);
    links->next = encode(next, &links->next);
    links->prev = encode(prev, &links->prev);
    links->arena = encode(&arena, &links->arena);
    node->link = seal_of(node);
}

inline void SegregatedFit::relink(BlockHeader* node, LinkField which, const BlockHeader* old,
                                  const BlockHeader* value) {
    uintptr_t* field = which == LinkField::Next ? &links_of(node)->next : &links_of(node)->prev;
    const uintptr_t stored = encode(value, field);
    node->link ^= seal_term(which, encode(old, field)) ^ seal_term(which, stored);
    *field = stored;
}

Arena& SegregatedFit::arena_of_free(const BlockHeader* node) const {
    BEDROCK_DEBUG_ASSERT(is_free(node) && seal_holds(node));
    return *reinterpret_cast<Arena*>(load_link(&links_of(node)->arena));
}

// Keys for the seals from the secret and the rebuild count, each word mixed (splitmix64's
// finaliser) so that no key is a simple function of another.
void SegregatedFit::derive_seal_keys() {
    uint64_t state = m_secret ^ (m_rebuilds * fit_detail::kSealKeyStep);
    for (uint64_t& key : m_seal_keys) {
        state += fit_detail::kSealKeyStep;
        uint64_t mixed = state;
        mixed = (mixed ^ (mixed >> 30)) * 0xbf58476d1ce4e5b9u;
        mixed = (mixed ^ (mixed >> 27)) * 0x94d049bb133111ebu;
        key = (mixed ^ (mixed >> 31)) | 1; // odd (see seal_term)
    }
}

bool SegregatedFit::ensure_listed(const BlockHeader* node) {
    if (seal_holds(node)) [[likely]] {
        return true;
    }
    rebuild_lists(node);
    return seal_holds(node);
}

// A free block goes to the head of its list `list` (== list_of(its usable bytes)), its links all
// written anew (its told mark is the caller's):
//   head(l) -> [header] -> old head -> ...     and the bitmaps gain the list's bits.
// The caller counts its bytes in the totals.
inline void SegregatedFit::push_free(Arena& arena, BlockHeader* header, unsigned list) {
    BEDROCK_DEBUG_ASSERT(usable_of(header) >= kMinUsable && list == list_of(usable_of(header)) &&
                         list <= m_last_list);
    BlockHeader*& first = head(list);
    write_links(header, first, nullptr, arena);
    if (first != nullptr) {
        relink(first, LinkField::Prev, nullptr, header);
    } else {
        m_second_level[list / kSecondLevelCount] |=
            static_cast<uint16_t>(1u << (list % kSecondLevelCount));
        m_first_level |= uint64_t{1} << (list / kSecondLevelCount);
    }
    first = header;
}

// A free block takes the place of `old`, a free block on the same list `list` (a split's
// remainder), so the list stays non-empty and the bitmaps as they are; they never overlap.
//   ... -> [old] -> ...   becomes   ... -> [header] -> ...
// Its told mark is the caller's; the caller counts the bytes in the totals.
inline void SegregatedFit::replace_free(Arena& arena, BlockHeader* old, BlockHeader* header,
                                        unsigned list) {
    BEDROCK_DEBUG_ASSERT(is_free(old) && list_of(usable_of(old)) == list &&
                         list_of(usable_of(header)) == list && header != old);
    BEDROCK_DEBUG_ASSERT(seal_holds(old));
    const FreeLinks* from = links_of(old);
    BlockHeader* next = load_link(&from->next);
    BlockHeader* prev = load_link(&from->prev);
    write_links(header, next, prev, arena);
    if (next != nullptr) {
        relink(next, LinkField::Prev, old, header);
    }
    if (prev != nullptr) {
        relink(prev, LinkField::Next, old, header);
    } else {
        head(list) = header;
    }
}

// Unlinks `header`, the head of list `list`, whose next link (its seal checked) is `next`; the
// bitmaps lose the list's bits when it empties. The caller counts its bytes in the totals.
inline void SegregatedFit::pop_head(unsigned list, const BlockHeader* header, BlockHeader* next) {
    BEDROCK_DEBUG_ASSERT(head(list) == header);
    head(list) = next;
    if (next != nullptr) {
        relink(next, LinkField::Prev, header, nullptr);
        return;
    }
    const unsigned first = list / kSecondLevelCount;
    m_second_level[first] &= static_cast<uint16_t>(~(1u << (list % kSecondLevelCount)));
    if (m_second_level[first] == 0) {
        m_first_level &= ~(uint64_t{1} << first);
    }
}

// Unlinks a free block (its seal checked) from its list: `list`, or 0 to have it computed from
// the block's size only when it is needed (the block heads its list); the bitmaps lose the
// list's bits when it empties. The caller counts its bytes in the totals.
inline void SegregatedFit::remove_free(BlockHeader* header, unsigned list) {
    BEDROCK_DEBUG_ASSERT(is_free(header) && (list == 0 || list == list_of(usable_of(header))));
    BEDROCK_DEBUG_ASSERT(seal_holds(header));
    const FreeLinks* links = links_of(header);
    BlockHeader* next = load_link(&links->next);
    BlockHeader* prev = load_link(&links->prev);
    if (prev != nullptr) {
        if (next != nullptr) {
            relink(next, LinkField::Prev, header, prev);
        }
        relink(prev, LinkField::Next, header, next);
        return;
    }
    pop_head(list != 0 ? list : list_of(usable_of(header)), header, next);
}

// The first non-empty list at index >= `list`, or 0 (list 0 is never used). O(1): two bit scans.
unsigned SegregatedFit::search(unsigned list) const {
    if (list > m_last_list) {
        return 0;
    }
    unsigned first = list / kSecondLevelCount;
    uint32_t second_map = m_second_level[first] & (~0u << (list % kSecondLevelCount));
    if (second_map == 0) {
        // first < kFirstLevelCount <= 63 (list <= m_last_list): the shift is below 64.
        const uint64_t first_map = m_first_level & (~uint64_t{0} << (first + 1));
        if (first_map == 0) {
            return 0;
        }
        first = lowest_set_bit(first_map);
        second_map = m_second_level[first];
        BEDROCK_DEBUG_ASSERT(second_map != 0);
    }
    return first * kSecondLevelCount + lowest_set_bit(second_map);
}

void SegregatedFit::visit_free_blocks(size_t least, FreeBlockVisitor visit, void* context) {
    if (least > m_max_usable) {
        return;
    }
    const unsigned lowest =
        list_fitting(least < kMinUsable ? kMinUsable : align_up(least, kGranule));
    for (unsigned list = search_down(m_last_list); list >= lowest && list != 0;
         list = search_down(list - 1)) {
        for (BlockHeader* node = head(list); node != nullptr;
             node = load_link(&links_of(node)->next)) {
            if (!seal_holds(node)) [[unlikely]] {
                static_cast<void>(ensure_listed(node)); // rebuilds the lists, records the damage
                return;
            }
            bool told = links_of(node)->told != 0;
            const bool more = visit(context, start_of(node), usable_of(node), told);
            links_of(node)->told = told ? 1 : 0;
            if (!more) {
                return;
            }
        }
    }
}

unsigned SegregatedFit::search_down(unsigned list) const {
    unsigned first = list / kSecondLevelCount;
    uint32_t second_map = m_second_level[first] & ((2u << (list % kSecondLevelCount)) - 1);
    if (second_map == 0) {
        const uint64_t first_map = m_first_level & ((uint64_t{1} << first) - 1);
        if (first_map == 0) {
            return 0;
        }
        first = floor_log2(first_map);
        second_map = m_second_level[first];
        BEDROCK_DEBUG_ASSERT(second_map != 0);
    }
    return first * kSecondLevelCount + floor_log2(second_map);
}

// After the good-fit search for `needed` bytes failed: up to kFallbackProbes blocks of `list`, the
// list `needed` rounds down to (or the last list), each tried exactly for `usable` bytes aligned
// to `alignment`. O(1). Inline: a take() that fails is the heap's longest malloc.
[[gnu::always_inline]] inline BlockHeader* SegregatedFit::probe(unsigned list, size_t usable,
                                                                size_t alignment) {
    BlockHeader* header = head(list);
    for (unsigned i = 0; i < kFallbackProbes && header != nullptr; ++i) {
        // Every block start is 16-aligned: a plain request fits any block big enough.
        if (alignment <= kGranule ? usable_of(header) >= usable
                                  : placement(header, usable, alignment) != 0) {
            return header;
        }
        if (!ensure_listed(header)) {
            return nullptr;
        }
        header = load_link(&links_of(header)->next);
    }
    return nullptr;
}

// Every list anew from the arenas' blocks, walked from header to header where the start bitmap
// agrees with a header's size, and past an overwritten header to the next block start the bitmap
// names (that block is not listed; retired if the old lists name it or the next block, its header
// holding, says it was free). O(blocks + lists), plus O(bytes / 1 KiB) past each overwritten one.
void SegregatedFit::rebuild_lists(const BlockHeader* damaged) {
    record_damage(&Damage::links, &Damage::first_link, address_of(damaged) + kBlockHeaderBytes);
    retire_listed_overwritten(damaged);
    // New keys: a free block the walk below cannot reach keeps a seal that never holds again.
    ++m_rebuilds;
    derive_seal_keys();
    for (unsigned list = 1; list <= m_last_list; ++list) {
        head(list) = nullptr;
    }
    m_first_level = 0;
    for (uint16_t& map : m_second_level) {
        map = 0;
    }
    m_totals.free_bytes = 0;
    for (Arena* arena = m_arenas; arena != nullptr; arena = arena->next) {
        BlockHeader* sentinel = sentinel_of(*arena);
        for (BlockHeader* header = first_of(*arena); header != sentinel;) {
            // Past a size the start bitmap does not confirm (an overwritten header), the walk
            // goes on at the next block start.
            const bool holds = confirmed(*arena, header);
            BlockHeader* next = holds ? next_of(header) : next_start_header(*arena, header);
            // Free only if the next block says so too: a taken block whose header was
            // overwritten to read free is never listed (its successor, across its bytes, still
            // says its predecessor is taken), and a free block whose header was overwritten is
            // retired (its owner, whose call would retire a taken one, gave it back already).
            // A successor whose own header does not hold says nothing: the block is left as it
            // is (taken, or free and named by no list, retire_listed_overwritten()).
            if (holds && is_free(header) && prev_is_free(next)) {
                const size_t usable = usable_of(header);
                push_free(*arena, header, list_of(usable));
                links_of(header)->told = 0;
                m_totals.free_bytes += usable;
            } else if (!holds && prev_is_free(next) && confirmed(*arena, next)) {
                retire_found(*arena, header, damaged);
            }
            header = next;
        }
    }
}

Arena* SegregatedFit::add_arena(void* base, size_t bytes, void* owner) {
    BEDROCK_DEBUG_ASSERT(is_aligned(address_of(base), kGranule) && is_aligned(bytes, kGranule));
    BEDROCK_DEBUG_ASSERT(bytes <= m_max_arena_bytes);
    const size_t usable = fit_detail::fresh_usable(bytes);
    if (usable == 0 || bytes > m_max_arena_bytes) {
        return nullptr;
    }
    auto* arena = static_cast<Arena*>(base);
    arena->pad.write(m_secret);
    arena->next = nullptr;
    arena->prev = m_last_arena;
    // A lookup without the caller's lock may load it (the caller's ArenaBounds, when its page
    // tags give no length): an atomic store.
    __atomic_store_n(&arena->bytes, bytes, __ATOMIC_RELAXED);
    arena->owner = owner;
    const ArenaPlaces places = places_of(ArenaBounds{address_of(arena), bytes});
    arena->summary = places.summary;
    arena->start = places.start;
    arena->first = places.first;
    // Only the top level: every summary and start bitmap word then reads as zeros, whatever its
    // memory holds.
    uint64_t* top = arena->top_bits();
    for (size_t word = 0; word < fit_detail::top_words(bytes); ++word) {
        store_word(&top[word], 0);
    }
    (m_last_arena != nullptr ? m_last_arena->next : m_arenas) = arena;
    m_last_arena = arena;

    //   [ Arena | summary | bitmap ][ first: free, `usable` bytes ][ sentinel: 0 bytes, taken ]
    BlockHeader* first = first_of(*arena);
    BlockHeader* sentinel = sentinel_of(*arena);
    set_header(first, usable, static_cast<size_t>(BlockUse::Free), Previous::Taken);
    set_header(sentinel, 0, kSentinelUse, Previous::Free);
    BEDROCK_DEBUG_ASSERT(next_of(first) == sentinel);
    link_next(first, sentinel);
    mark_start(*arena, first);
    push_free(*arena, first, list_of(usable));
    links_of(first)->told = 0;
    m_totals.free_bytes += usable;
    ++m_totals.arenas;
    m_totals.arena_bytes += bytes;
    return arena;
}

size_t SegregatedFit::repair_pads(uintptr_t& first) {
    size_t repaired = 0;
    for (Arena* arena = m_arenas; arena != nullptr; arena = arena->next) {
        if (!arena->pad.holds(m_secret)) {
            first = repaired == 0 ? arena_begin(*arena) : first;
            ++repaired;
            arena->pad.write(m_secret);
        }
    }
    return repaired;
}

bool SegregatedFit::arena_is_empty(const Arena& arena) {
    const BlockHeader* first = first_of(arena);
    return is_free(first) && next_of(first) == sentinel_of(arena);
}

void SegregatedFit::remove_arena(Arena& arena) {
    // A write past the memory before it, made since the last check: its last chance to be found.
    if (!arena.pad.holds(m_secret)) [[unlikely]] {
        record_damage(&Damage::pads, &Damage::first_pad, arena_begin(arena));
    }
    BlockHeader* const sentinel = sentinel_of(arena);
    // From block start to block start: by a header's size where the start bitmap confirms it, else
    // (an overwritten header) by the bitmap.
    for (BlockHeader* header = first_of(arena); header < sentinel;
         header = size_holds(arena, start_of(header)) ? next_of(header)
                                                      : next_start_header(arena, header)) {
        // A free block whose seal does not hold even after a rebuild is on no list.
        if (is_free(header) && ensure_listed(header)) {
            remove_free(header, 0);
            m_totals.free_bytes -= usable_of(header);
        }
    }
    (arena.prev != nullptr ? arena.prev->next : m_arenas) = arena.next;
    (arena.next != nullptr ? arena.next->prev : m_last_arena) = arena.prev;
    arena.next = nullptr;
    arena.prev = nullptr;
    --m_totals.arenas;
    m_totals.arena_bytes -= arena.bytes;
}

// Good fit: the head of the first non-empty list whose every block holds `needed` bytes; failing
// that, a probe of the list `needed` rounds down to (or the last list). Inline: it is take()'s
// every call.
[[gnu::always_inline]] inline SegregatedFit::Choice
SegregatedFit::choose(size_t needed, size_t usable, size_t alignment) {
    const unsigned list = search(list_fitting(needed));
    if (list != 0) [[likely]] {
        return {head(list), list};
    }
    const unsigned below = list_of(needed) < m_last_list ? list_of(needed) : m_last_list;
    return {probe(below, usable, alignment), below};
}

// After the chosen block's seal failed and the lists were rebuilt without it: one more choice,
// its seal checked too. Out of line: reached only after damage.
[[gnu::noinline, gnu::cold]] SegregatedFit::Choice
SegregatedFit::choose_again(size_t needed, size_t usable, size_t alignment) {
    const Choice choice = choose(needed, usable, alignment);
    if (choice.header != nullptr && !ensure_listed(choice.header)) {
        return {nullptr, 0};
    }
    return choice;
}

// The common take(): no alignment beyond a granule, and the good-fit search finds a list whose
// head's seal holds. The head is taken from the front; a remainder that can hold a block of its
// own stays free, in the head's place when its size maps to the same list:
//   head(list) -> [ hdr | block (usable) ][ hdr'' | rest ... ][ next (taken) ]
// A failed search or a damaged seal goes on in take_placed(), which handles every case.
void* SegregatedFit::take_head(size_t size, BlockUse use) {
    BEDROCK_DEBUG_ASSERT(use != BlockUse::Free && size <= m_max_usable);
    const size_t usable = size < kMinUsable ? kMinUsable : align_up(size, kGranule);
    // First the head of the list `usable` falls in, if it is big enough: a block freed at this
    // size is taken again before the search splits one of a larger list (a program that frees
    // and allocates one size again and again reuses its blocks, where a search from the first
    // list whose every block fits left them free and split fresh memory, which the tells then
    // gave back and the program faulted in again). Else the search from the next list, whose
    // every block fits. A size is trusted once its seal holds (below).
    unsigned list = list_of(usable);
    BlockHeader* header = head(list); // usable <= m_max_usable: list <= m_last_list
    if (header == nullptr || usable_of(header) < usable) {
        list = search(list + 1);
        if (list == 0) [[unlikely]] {
            return take_placed(size, kGranule, use);
        }
        header = head(list);
    }
    if (!seal_holds(header)) [[unlikely]] {
        return take_placed(size, kGranule, use);
    }
    const FreeLinks* links = links_of(header);
    BlockHeader* next = load_link(&links->next);
    Arena& arena = *reinterpret_cast<Arena*>(load_link(&links->arena));
    const uintptr_t told = links->told;
    const size_t taken_from = usable_of(header);
    BEDROCK_DEBUG_ASSERT(load_link(&links->prev) == nullptr && taken_from >= usable);
    BlockHeader* after = header_at(address_of(header) + kBlockHeaderBytes + taken_from);
    BEDROCK_DEBUG_ASSERT(starts_block(arena, after));
    size_t available = taken_from;
    if (taken_from - usable >= kMinBlockBytes) {
        BlockHeader* rest = header_at(address_of(header) + kBlockHeaderBytes + usable);
        const size_t rest_usable = taken_from - usable - kBlockHeaderBytes;
        const unsigned rest_list = list_of(rest_usable);
        set_header(rest, rest_usable, static_cast<size_t>(BlockUse::Free), Previous::Taken);
        if (rest_list == list) {
            write_links(rest, next, nullptr, arena);
            if (next != nullptr) {
                relink(next, LinkField::Prev, header, rest);
            }
            head(list) = rest;
        } else {
            pop_head(list, header, next);
            push_free(arena, rest, rest_list);
        }
        links_of(rest)->told = told;
        mark_start(arena, rest);
        after->link = address_of(after) - address_of(rest);
        available = usable;
        m_totals.free_bytes -= usable + kBlockHeaderBytes;
    } else {
        pop_head(list, header, next);
        after->link = 0;
        set_prev_free(after, Previous::Taken);
        m_totals.free_bytes -= taken_from;
    }
    header->link = 0;
    set_header(header, available, static_cast<size_t>(use), Previous::Taken);
    return start_of(header);
}

// take_placed()'s choice for an alignment beyond every block's size (a region heap asked for an
// alignment near or beyond its region's size): no search can be sure of a block, but an arena
// of at most m_max_arena_bytes holds at most two multiples of it, and each is tried exactly: the
// free block whose bytes hold it, if `usable` bytes placed there fit. Out of line: such requests
// are rare. O(arenas * (1 + arena bytes / 1 KiB)): find() from each multiple.
[[gnu::noinline, gnu::cold]] SegregatedFit::Choice
SegregatedFit::choose_at_multiples(size_t usable, size_t alignment) const {
    for (const Arena* arena = m_arenas; arena != nullptr; arena = arena->next) {
        const uintptr_t first = address_of(first_of(*arena)) + kBlockHeaderBytes;
        const uintptr_t end = arena_end(*arena);
        for (uintptr_t point = align_up(first, uintptr_t{alignment}); point >= first && point < end;
             point += alignment) {
            const Found found = find(bounds_of(*arena), reinterpret_cast<void*>(point), ~size_t{0});
            if (found.block != nullptr && found.use == BlockUse::Free) {
                BlockHeader* header = header_of(found.block);
                if (placement(header, usable, alignment) != 0) {
                    return {header, list_of(found.usable)};
                }
            }
        }
    }
    return {nullptr, 0};
}

void* SegregatedFit::take_placed(size_t size, size_t alignment, BlockUse use) {
    if (alignment < kGranule) {
        alignment = kGranule;
    }
    if (size > m_max_usable) {
        return nullptr;
    }
    const size_t usable = size < kMinUsable ? kMinUsable : align_up(size, kGranule);
    // Any free block of `needed` bytes holds an aligned block (see placement()). Beyond every
    // block's size, or when no free block is that large and the arenas hold few multiples of the
    // alignment (kFallbackProbes at most: an alignment near an arena's size), the multiples are
    // tried instead: a smaller free block may still hold one with room after it.
    const size_t needed = alignment <= m_max_usable ? bytes_to_place(size, alignment) : 0;
    Choice choice = needed != 0 ? choose(needed, usable, alignment) : Choice{nullptr, 0};
    if (choice.header == nullptr &&
        (needed == 0 || m_totals.arena_bytes / alignment <= kFallbackProbes)) [[unlikely]] {
        choice = choose_at_multiples(usable, alignment);
    }
    // Its links and arena are followed only once its seal holds (a write after free reaches the
    // links, not the header that seals them).
    if (choice.header != nullptr && !ensure_listed(choice.header)) [[unlikely]] {
        choice = needed != 0 ? choose_again(needed, usable, alignment) : Choice{nullptr, 0};
    }
    if (choice.header == nullptr) {
        return nullptr;
    }
    BlockHeader* header = choice.header;
    const unsigned list = choice.list;
    Arena& arena = arena_of_free(header);
    // What is left free of it was not written: it keeps the block's told mark.
    const uintptr_t told = links_of(header)->told;
    BEDROCK_DEBUG_ASSERT(!prev_is_free(header) && placement(header, usable, alignment) != 0);
    const size_t taken_from = usable_of(header);
    size_t available = taken_from;
    size_t still_free = 0; // of `taken_from`, usable bytes of free blocks after the call
    // The block's predecessor: taken (blocks are coalesced), unless a gap is split off below.
    size_t link = 0;
    // Whether `header` is still on `list` (a remainder may take its place there).
    bool listed = true;

    // A gap before the aligned start stays free where it is (its predecessor is taken: no
    // merge), on its list unless its smaller size maps to another:
    //   [ hdr | gap ...... ][ hdr' | block ......... ]
    //   ^ header (free)      ^ placed - 16 (taken)
    if (alignment > kGranule) {
        const uintptr_t placed = placement(header, usable, alignment);
        if (placed != address_of(start_of(header))) {
            const size_t gap = placed - address_of(start_of(header));
            BEDROCK_DEBUG_ASSERT(gap >= kMinBlockBytes);
            BlockHeader* gap_header = header;
            const unsigned gap_list = list_of(gap - kBlockHeaderBytes);
            if (gap_list != list) {
                remove_free(gap_header, list);
            }
            const size_t old_size_and_flags = gap_header->size_and_flags;
            set_header(gap_header, gap - kBlockHeaderBytes, static_cast<size_t>(BlockUse::Free),
                       Previous::Taken);
            if (gap_list != list) {
                push_free(arena, gap_header, gap_list);
            } else {
                reseal_size(gap_header, old_size_and_flags);
            }
            still_free = gap - kBlockHeaderBytes;
            listed = false;
            header = header_at(placed - kBlockHeaderBytes);
            available -= gap;
            link = gap;
            mark_start(arena, header);
        }
    }

    // A remainder that can hold a block of its own is split off and stays free (on the list the
    // block was on, in its place, when its size still maps there):
    //   [ hdr | block (usable) ][ hdr'' | rest ... ][ next (taken) ]
    // `next` followed the free block taken from, so its prev_free flag is already set.
    BlockHeader* next = header_at(address_of(header) + kBlockHeaderBytes + available);
    BEDROCK_DEBUG_ASSERT(starts_block(arena, next));
    if (available - usable >= kMinBlockBytes) {
        BlockHeader* rest = header_at(address_of(header) + kBlockHeaderBytes + usable);
        const size_t rest_usable = available - usable - kBlockHeaderBytes;
        const unsigned rest_list = list_of(rest_usable);
        set_header(rest, rest_usable, static_cast<size_t>(BlockUse::Free), Previous::Taken);
        if (listed && rest_list == list) {
            replace_free(arena, header, rest, list);
        } else {
            if (listed) {
                remove_free(header, list);
            }
            push_free(arena, rest, rest_list);
        }
        links_of(rest)->told = told;
        still_free += rest_usable;
        available = usable;
        mark_start(arena, rest);
        next->link = address_of(next) - address_of(rest);
    } else {
        if (listed) {
            remove_free(header, list);
        }
        next->link = 0;
        set_prev_free(next, Previous::Taken);
    }
    // The header is written once, with its final size.
    header->link = link;
    set_header(header, available, static_cast<size_t>(use),
               link != 0 ? Previous::Free : Previous::Taken);
    m_totals.free_bytes = m_totals.free_bytes - taken_from + still_free;
    return start_of(header);
}

//   [ header: taken | next: free ............ ][ after ]
//   [ header: taken, grown ......... | rest: free ][ after ]     (or no rest, if too small)
bool SegregatedFit::grow(Arena& arena, void* block, size_t size) {
    BlockHeader* header = header_of(block);
    BEDROCK_DEBUG_ASSERT(!is_free(header) && start_bit(arena, granule_of(arena, header)));
    // Refused before it is rounded: a size within a granule of SIZE_MAX would round to 0 and
    // pass for one the block already holds.
    if (size > m_max_usable) {
        return false;
    }
    const size_t usable = usable_of(header);
    const size_t wanted = size < kMinUsable ? kMinUsable : align_up(size, kGranule);
    if (wanted <= usable) {
        return true;
    }
    BlockHeader* next = next_of(header);
    if (next == sentinel_of(arena)) {
        if (!sentinel_holds(next)) [[unlikely]] {
            repair_sentinel(arena);
        }
        return false;
    }
    if (!is_free(next)) {
        return false;
    }
    const size_t next_usable = usable_of(next);
    size_t available = usable + kBlockHeaderBytes + next_usable;
    if (available < wanted || !ensure_listed(next)) {
        return false;
    }
    BlockHeader* after = next_of(next);
    BEDROCK_DEBUG_ASSERT(starts_block(arena, after));
    const uintptr_t told = links_of(next)->told;
    remove_free(next, 0);
    unmark_start(arena, next);
    m_totals.free_bytes -= next_usable;
    if (available - wanted >= kMinBlockBytes) {
        BlockHeader* rest = header_at(address_of(header) + kBlockHeaderBytes + wanted);
        const size_t rest_usable = available - wanted - kBlockHeaderBytes;
        set_header(rest, rest_usable, static_cast<size_t>(BlockUse::Free), Previous::Taken);
        push_free(arena, rest, list_of(rest_usable));
        links_of(rest)->told = told;
        m_totals.free_bytes += rest_usable;
        mark_start(arena, rest);
        after->link = address_of(after) - address_of(rest);
        available = wanted;
    } else {
        after->link = 0;
        set_prev_free(after, Previous::Taken);
    }
    store_size_and_flags(header, available | (header->size_and_flags & ~kSizeMask));
    return true;
}

//   [ header: taken ........................ ][ next: free? ][ after ]
//   [ header: taken, shrunk | rest: free (with next) ......... ][ after ]
bool SegregatedFit::shrink(Arena& arena, void* block, size_t size) {
    BlockHeader* header = header_of(block);
    BEDROCK_DEBUG_ASSERT(!is_free(header) && start_bit(arena, granule_of(arena, header)));
    const size_t usable = usable_of(header);
    const size_t wanted = size < kMinUsable ? kMinUsable : align_up(size, kGranule);
    if (size > usable || wanted >= usable) {
        return false;
    }
    BlockHeader* next = next_of(header);
    BlockHeader* after = next;
    const BlockHeader* sentinel = sentinel_of(arena);
    if (next == sentinel && !sentinel_holds(next)) [[unlikely]] {
        repair_sentinel(arena);
    }
    // The free block after it, its seal checked before its links are followed, joins the rest.
    const bool merge_next = next != sentinel && is_free(next) && ensure_listed(next);
    if (!merge_next && usable - wanted < kMinBlockBytes) {
        return false;
    }
    size_t rest_usable = usable - wanted - kBlockHeaderBytes;
    if (merge_next) {
        after = next_of(next);
        BEDROCK_DEBUG_ASSERT(starts_block(arena, after));
        remove_free(next, 0);
        unmark_start(arena, next);
        rest_usable += kBlockHeaderBytes + usable_of(next);
        m_totals.free_bytes -= usable_of(next);
    }
    BlockHeader* rest = header_at(address_of(header) + kBlockHeaderBytes + wanted);
    set_header(rest, rest_usable, static_cast<size_t>(BlockUse::Free), Previous::Taken);
    push_free(arena, rest, list_of(rest_usable));
    links_of(rest)->told = 0; // it holds the block's written bytes
    m_totals.free_bytes += rest_usable;
    mark_start(arena, rest);
    after->link = address_of(after) - address_of(rest);
    set_prev_free(after, Previous::Free);
    store_size_and_flags(header, wanted | (header->size_and_flags & ~kSizeMask));
    return true;
}

// give()'s neighbours when a seal did not hold: the lists rebuilt once (recording the first
// damaged neighbour), then each neighbour merged with only if the rebuild listed it (a rebuild
// walks the headers and the start bitmap as they stand, so nothing has changed before it). Out of
// line: reached only after damage.
[[gnu::noinline, gnu::cold]] void
SegregatedFit::recheck_neighbours(const BlockHeader* next, bool& merge_next, BlockHeader*& prev) {
    rebuild_lists(merge_next && !seal_holds(next) ? next : prev);
    // The rebuild may have retired either (an overwritten header).
    merge_next = merge_next && is_free(next) && seal_holds(next);
    if (prev != nullptr && !(is_free(prev) && seal_holds(prev))) {
        prev = nullptr;
    }
}

// An end sentinel overwritten by a write past the arena's last block (a taken block: the
// sentinel's prev-free flag is clear), written anew and recorded as a damaged header at the
// arena's end. Out of line: reached only after damage.
[[gnu::noinline, gnu::cold]] void SegregatedFit::repair_sentinel(Arena& arena) {
    BlockHeader* sentinel = sentinel_of(arena);
    sentinel->link = 0;
    set_header(sentinel, 0, kSentinelUse, Previous::Taken);
    record_damaged_header(arena_end(arena));
}

bool SegregatedFit::give(Arena& arena, void* block) {
    BlockHeader* header = header_of(block);
    BEDROCK_DEBUG_ASSERT(address_of(header) >= address_of(first_of(arena)) &&
                         address_of(header) < address_of(sentinel_of(arena)));
    BEDROCK_DEBUG_ASSERT(!is_free(header) && use_bits(header) != kSentinelUse);
    BEDROCK_DEBUG_ASSERT(start_bit(arena, granule_of(arena, header)));
    const size_t size_and_flags = header->size_and_flags;
    size_t usable = size_and_flags & kSizeMask;
    BlockHeader* next = header_at(address_of(block) + usable);
    BlockHeader* prev =
        (size_and_flags & kPrevFree) != 0 ? header_at(address_of(header) - header->link) : nullptr;
    // Both neighbours' seals are checked before anything changes: their links are followed.
    // The end sentinel is never merged with (its "links" would lie past the arena's end); one
    // overwritten by a write past the last block is written anew.
    const BlockHeader* sentinel = sentinel_of(arena);
    if (next == sentinel && !sentinel_holds(next)) [[unlikely]] {
        repair_sentinel(arena);
    }
    bool merge_next = next != sentinel && is_free(next);
    if ((merge_next && !seal_holds(next)) || (prev != nullptr && !seal_holds(prev))) [[unlikely]] {
        recheck_neighbours(next, merge_next, prev);
    }
    m_totals.free_bytes += usable;
    // Whether the merged block stays where `prev` is on its list (its size still maps there).
    bool listed = false;

    //   [ prev: free? ][ header: given ][ next: free? ]  ->  [ one free block ][ taken ]
    if (merge_next) {
        BEDROCK_DEBUG_ASSERT(&arena_of_free(next) == &arena);
        remove_free(next, 0);
        unmark_start(arena, next);
        usable += kBlockHeaderBytes + usable_of(next);
        m_totals.free_bytes += kBlockHeaderBytes;
        next = header_at(address_of(block) + usable);
    }
    if (prev != nullptr) {
        // The merged block starts at `prev`, which keeps its place, and its list unless the
        // larger size maps to another.
        BEDROCK_DEBUG_ASSERT(next_of(prev) == header && &arena_of_free(prev) == &arena);
        const size_t prev_usable = usable_of(prev);
        unmark_start(arena, header);
        usable += kBlockHeaderBytes + prev_usable;
        m_totals.free_bytes += kBlockHeaderBytes;
        const unsigned prev_list = list_of(prev_usable);
        header = prev;
        listed = prev_list == list_of(usable);
        if (!listed) {
            remove_free(header, prev_list);
        }
    }
    // The merged block's predecessor is taken: free blocks never touch.
    const size_t old_size_and_flags = header->size_and_flags;
    set_header(header, usable, static_cast<size_t>(BlockUse::Free), Previous::Taken);
    if (!listed) {
        push_free(arena, header, list_of(usable));
    } else {
        reseal_size(header, old_size_and_flags);
    }
    links_of(header)->told = 0; // it holds freed memory
    BEDROCK_DEBUG_ASSERT(next_of(header) == next && starts_block(arena, next));
    next->link = address_of(next) - address_of(header);
    set_prev_free(next, Previous::Free);
    return next == sentinel_of(arena) && header == first_of(arena);
}

} // namespace bedrock::heap
