// SPDX-License-Identifier: MIT
// SegregatedFit: the operations (layout, invariants and which accesses are lock-free in
// segregated_fit.h).
#include "heap/segregated_fit.h"

#include "bedrock/memory_routines.h"

namespace bedrock::heap {

using fit_detail::arena_header_bytes;
using fit_detail::BlockHeader;
using fit_detail::FreeLinks;
using fit_detail::kFirstLevelCount;
using fit_detail::kPrevFree;
using fit_detail::kSecondLevelCount;
using fit_detail::kSentinelUse;
using fit_detail::kSizeMask;
using fit_detail::kUseMask;
using fit_detail::LinkField;
using fit_detail::list_of;
using fit_detail::load_size_and_flags;
using fit_detail::logical_word;

namespace {

// Header fields. A header is addressed as its own pointer; its block starts 16 bytes later.
// Read plainly under the lock (no other thread writes them then); written with atomic stores,
// since find() may read size_and_flags without the lock.
size_t usable_of(const BlockHeader* header) {
    return header->size_and_flags & kSizeMask;
}
size_t use_bits(const BlockHeader* header) {
    return header->size_and_flags & kUseMask;
}
bool is_free(const BlockHeader* header) {
    return use_bits(header) == static_cast<size_t>(BlockUse::Free);
}
bool prev_is_free(const BlockHeader* header) {
    return (header->size_and_flags & kPrevFree) != 0;
}

void store_size_and_flags(BlockHeader* header, size_t value) {
    __atomic_store_n(&header->size_and_flags, value, __ATOMIC_RELAXED);
}
// Whether the block physically before a header's block is free (the TLSF prev-free flag).
enum class Previous { Taken, Free };
constexpr size_t flag_of(Previous previous) {
    return previous == Previous::Free ? kPrevFree : 0;
}
void set_header(BlockHeader* header, size_t usable, size_t use, Previous previous) {
    BEDROCK_DEBUG_ASSERT(is_aligned(usable, kGranule) && use <= kUseMask);
    store_size_and_flags(header, usable | flag_of(previous) | use);
}
void set_prev_free(BlockHeader* header, Previous previous) {
    store_size_and_flags(header, (header->size_and_flags & ~kPrevFree) | flag_of(previous));
}

uintptr_t address_of(const void* pointer) {
    return reinterpret_cast<uintptr_t>(pointer);
}
BlockHeader* header_at(uintptr_t address) {
    return reinterpret_cast<BlockHeader*>(address);
}
unsigned char* start_of(BlockHeader* header) {
    return reinterpret_cast<unsigned char*>(header) + kBlockHeaderBytes;
}
BlockHeader* next_of(const BlockHeader* header) {
    return header_at(address_of(header) + kBlockHeaderBytes + usable_of(header));
}
FreeLinks* links_of(BlockHeader* header) {
    return reinterpret_cast<FreeLinks*>(header + 1);
}
const FreeLinks* links_of(const BlockHeader* header) {
    return reinterpret_cast<const FreeLinks*>(header + 1);
}

// Where an arena of `bytes` at `base` keeps its summary, start bitmap and first block header (what
// add_arena() records in its header and check() verifies).
struct ArenaPlaces {
    uint64_t* summary;
    uint64_t* start;
    void* first;
};
ArenaPlaces places_of(uintptr_t base, size_t bytes) {
    auto* summary =
        reinterpret_cast<uint64_t*>(base + sizeof(Arena)) + fit_detail::top_words(bytes);
    return ArenaPlaces{summary, summary + fit_detail::summary_words(bytes),
                       reinterpret_cast<void*>(base + arena_header_bytes(bytes))};
}

BlockHeader* first_of(const Arena& arena) {
    return static_cast<BlockHeader*>(arena.first);
}
BlockHeader* sentinel_of(const Arena& arena) {
    return header_at(address_of(&arena) + arena.bytes - kBlockHeaderBytes);
}
// The start bitmap: bit g stands for the granule at arena base + 16 g, and counts only if the
// summary says its word is initialised. Every load and store of either level is atomic, since
// find() reads them without the lock; a summary bit is published (release) after the word it
// initialises and read (acquire) before it. Stores happen under the lock only, so a writer loads,
// modifies and stores: no read-modify-write instruction.
uint64_t load_word(const uint64_t* word) {
    return __atomic_load_n(word, __ATOMIC_RELAXED);
}
void store_word(uint64_t* word, uint64_t value) {
    __atomic_store_n(word, value, __ATOMIC_RELAXED);
}
uint64_t load_summary(const uint64_t* word) {
    return __atomic_load_n(word, __ATOMIC_ACQUIRE);
}
void publish_summary(uint64_t* word, uint64_t value) {
    __atomic_store_n(word, value, __ATOMIC_RELEASE);
}
// Bits 0 .. bit of a word.
uint64_t bits_up_to(size_t bit) {
    return ~uint64_t{0} >> (63 - bit);
}

size_t granule_of(const Arena& arena, const BlockHeader* header) {
    return (address_of(header) + kBlockHeaderBytes - address_of(&arena)) / kGranule;
}
bool start_bit(const Arena& arena, size_t granule) {
    return ((logical_word(arena, granule / 64) >> (granule % 64)) & 1) != 0;
}
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

// The last initialised summary word in [lowest, word] (word >= lowest), or kNoWord. One step
// per top word: 64 uninitialised summary words are skipped at once.
constexpr size_t kNoWord = ~size_t{0};
size_t last_initialised_summary(const Arena& arena, size_t word, size_t lowest) {
    const uint64_t* top = arena.top_bits();
    size_t index = word / 64;
    uint64_t initialised = load_summary(&top[index]) & bits_up_to(word % 64);
    while (initialised == 0) {
        if (index == lowest / 64) {
            return kNoWord;
        }
        initialised = load_summary(&top[--index]);
    }
    const size_t found = index * 64 + floor_log2(initialised);
    return found >= lowest ? found : kNoWord;
}

// The last initialised start bitmap word in [lowest, word] (word >= lowest), or kNoWord. One step
// per initialised summary word and per top word: uninitialised words are skipped 64 or 4096 at
// once.
size_t last_initialised_word(const Arena& arena, size_t word, size_t lowest) {
    for (size_t index = word / 64;; --index) {
        index = last_initialised_summary(arena, index, lowest / 64);
        if (index == kNoWord) {
            return kNoWord;
        }
        // Only `word`'s own summary word is cut at `word`.
        const uint64_t mask = index == word / 64 ? bits_up_to(word % 64) : ~uint64_t{0};
        const uint64_t initialised = load_summary(&arena.summary_bits()[index]) & mask;
        if (initialised != 0) {
            const size_t found = index * 64 + floor_log2(initialised);
            return found >= lowest ? found : kNoWord;
        }
        if (index == lowest / 64) {
            return kNoWord;
        }
    }
}

// Makes `next` (a taken block or the sentinel) follow `header` physically: it links back only
// to a free predecessor, the one it may merge with.
void link_next(BlockHeader* header, BlockHeader* next) {
    BEDROCK_DEBUG_ASSERT(!is_free(next));
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
    if (bytes != 0) {
        bedrock_memset(storage, 0, bytes);
    }
}

inline uint64_t SegregatedFit::seal_term(LinkField which, uintptr_t stored) const {
    const auto field = static_cast<unsigned>(which);
    const uint64_t mixed = stored * m_seal_keys[field]; // an odd key: a bijection
    const unsigned rotation = fit_detail::kSealRotations[field];
    return rotation == 0 ? mixed : mixed << rotation | mixed >> (64 - rotation);
}

inline uint64_t SegregatedFit::seal_of(const BlockHeader* node) const {
    const FreeLinks* links = links_of(node);
    return seal_term(LinkField::Next, links->next) ^ seal_term(LinkField::Prev, links->prev) ^
           seal_term(LinkField::Arena, links->arena);
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

// A free block goes to the head of its list `list` (== list_of(usable)):
//   head(l) -> [header] -> old head -> ...     and the bitmaps gain the list's bits.
void SegregatedFit::insert_free(Arena& arena, BlockHeader* header, size_t usable, unsigned list) {
    BEDROCK_DEBUG_ASSERT(usable >= kMinUsable && list == list_of(usable) && list <= m_last_list);
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
    m_totals.free_bytes += usable;
}

// A free block of `usable` bytes takes the place of `old`, a free block on the same list `list`
// (a split's remainder, or a merged block), so the list stays non-empty and the bitmaps as they
// are. `header` may be `old` itself (its size changes); they never overlap otherwise.
//   ... -> [old] -> ...   becomes   ... -> [header] -> ...
void SegregatedFit::replace_free(Arena& arena, BlockHeader* old, BlockHeader* header, size_t usable,
                                 unsigned list) {
    BEDROCK_DEBUG_ASSERT(is_free(old) && list_of(usable_of(old)) == list &&
                         list_of(usable) == list);
    m_totals.free_bytes = m_totals.free_bytes - usable_of(old) + usable;
    if (header == old) {
        return;
    }
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

// Unlinks a free block from its list `list` (== list_of(its usable bytes), which the caller knows
// or computes once); the bitmaps lose the list's bits when it empties.
void SegregatedFit::remove_free(BlockHeader* header, unsigned list) {
    BEDROCK_DEBUG_ASSERT(is_free(header) && list == list_of(usable_of(header)));
    BEDROCK_DEBUG_ASSERT(seal_holds(header));
    const size_t usable = usable_of(header);
    const FreeLinks* links = links_of(header);
    BlockHeader* next = load_link(&links->next);
    BlockHeader* prev = load_link(&links->prev);
    if (next != nullptr) {
        relink(next, LinkField::Prev, header, prev);
    }
    if (prev != nullptr) {
        relink(prev, LinkField::Next, header, next);
    } else {
        BEDROCK_DEBUG_ASSERT(head(list) == header);
        head(list) = next;
        if (next == nullptr) {
            const unsigned first = list / kSecondLevelCount;
            m_second_level[first] &= static_cast<uint16_t>(~(1u << (list % kSecondLevelCount)));
            if (m_second_level[first] == 0) {
                m_first_level &= ~(uint64_t{1} << first);
            }
        }
    }
    BEDROCK_DEBUG_ASSERT(m_totals.free_bytes >= usable);
    m_totals.free_bytes -= usable;
}

// The first non-empty list at index >= `list`, or 0 (list 0 is never used). O(1): two bit scans.
unsigned SegregatedFit::search(unsigned list) const {
    if (list > m_last_list) {
        return 0;
    }
    unsigned first = list / kSecondLevelCount;
    uint32_t second_map = m_second_level[first] & (~0u << (list % kSecondLevelCount));
    if (second_map == 0) {
        const uint64_t first_map =
            first + 1 < 64 ? m_first_level & (~uint64_t{0} << (first + 1)) : 0;
        if (first_map == 0) {
            return 0;
        }
        first = lowest_set_bit(first_map);
        second_map = m_second_level[first];
        BEDROCK_DEBUG_ASSERT(second_map != 0);
    }
    return first * kSecondLevelCount + lowest_set_bit(second_map);
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

// Every list anew from the arenas' blocks, walked from header to header while the start bitmap
// agrees with each header's size (an arena whose headers were overwritten keeps its free blocks
// from there on out of the lists). O(blocks).
void SegregatedFit::rebuild_lists(const BlockHeader* damaged) {
    if (m_damage.count == 0) {
        m_damage.first = address_of(damaged) + kBlockHeaderBytes;
    }
    __atomic_store_n(&m_damage.count, m_damage.count + 1, __ATOMIC_RELAXED);
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
            const size_t usable = usable_of(header);
            BlockHeader* next = header_at(address_of(header) + kBlockHeaderBytes + usable);
            if (usable < kMinUsable || address_of(next) > address_of(sentinel) ||
                (next != sentinel && !start_bit(*arena, granule_of(*arena, next)))) {
                break;
            }
            if (is_free(header)) {
                insert_free(*arena, header, usable, list_of(usable));
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
    arena->next = nullptr;
    arena->prev = m_last_arena;
    arena->bytes = bytes;
    arena->owner = owner;
    const ArenaPlaces places = places_of(address_of(arena), bytes);
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
    insert_free(*arena, first, usable, list_of(usable));
    ++m_totals.arenas;
    m_totals.arena_bytes += bytes;
    return arena;
}

bool SegregatedFit::arena_is_empty(const Arena& arena) {
    const BlockHeader* first = first_of(arena);
    return is_free(first) && next_of(first) == sentinel_of(arena);
}

void SegregatedFit::remove_arena(Arena& arena) {
    BEDROCK_DEBUG_ASSERT(arena_is_empty(arena));
    BlockHeader* first = first_of(arena);
    if (ensure_listed(first)) {
        remove_free(first, list_of(usable_of(first)));
    }
    (arena.prev != nullptr ? arena.prev->next : m_arenas) = arena.next;
    (arena.next != nullptr ? arena.next->prev : m_last_arena) = arena.prev;
    arena.next = nullptr;
    arena.prev = nullptr;
    --m_totals.arenas;
    m_totals.arena_bytes -= arena.bytes;
}

void* SegregatedFit::take(size_t size, size_t alignment, BlockUse use) {
    BEDROCK_DEBUG_ASSERT(use != BlockUse::Free && is_power_of_two(alignment));
    if (alignment < kGranule) {
        alignment = kGranule;
    }
    if (size > m_max_usable || alignment > m_max_usable) {
        return nullptr;
    }
    const size_t usable = size < kMinUsable ? kMinUsable : align_up(size, kGranule);
    // Any free block of `needed` bytes holds an aligned block: the gap before the aligned start
    // is at most alignment + kMinBlockBytes - 16 (at least kMinBlockBytes when not 0, see
    // placement()).
    const size_t needed =
        alignment > kGranule ? usable + alignment + kMinBlockBytes - kGranule : usable;
    // list_fitting(needed), from the list_of(needed) a failed search probes.
    const unsigned needed_list = list_of(needed);
    unsigned list = 0;
    BlockHeader* header = nullptr;
    // Twice at most: a block whose links are damaged is left out of the rebuilt lists.
    for (unsigned attempt = 0; attempt < 2 && header == nullptr; ++attempt) {
        list =
            search(fit_detail::list_min_size(needed_list) < needed ? needed_list + 1 : needed_list);
        if (list != 0) [[likely]] {
            header = head(list);
        } else {
            list = needed_list < m_last_list ? needed_list : m_last_list;
            header = probe(list, usable, alignment);
            if (header == nullptr) {
                return nullptr;
            }
        }
        // Its links and arena are followed only once its seal holds (a write after free reaches
        // the links, not the header that seals them).
        if (!ensure_listed(header)) [[unlikely]] {
            header = nullptr;
        }
    }
    if (header == nullptr) {
        return nullptr;
    }
    Arena& arena = arena_of_free(header);
    BEDROCK_DEBUG_ASSERT(!prev_is_free(header) && placement(header, usable, alignment) != 0);
    size_t available = usable_of(header);
    // The block's predecessor: taken (blocks are coalesced), unless a gap is split off below.
    size_t link = 0;
    // Whether `header` is still on `list` (a remainder may take its place there).
    bool listed = true;

    // A gap before the aligned start stays free (its predecessor is taken: no merge):
    //   [ hdr | gap ...... ][ hdr' | block ......... ]
    //   ^ header (free)      ^ placed - 16 (taken)
    if (alignment > kGranule) {
        const uintptr_t placed = placement(header, usable, alignment);
        if (placed != address_of(start_of(header))) {
            const size_t gap = placed - address_of(start_of(header));
            BlockHeader* gap_header = header;
            remove_free(gap_header, list);
            listed = false;
            header = header_at(placed - kBlockHeaderBytes);
            available -= gap;
            link = gap;
            BEDROCK_DEBUG_ASSERT(gap >= kMinBlockBytes);
            set_header(gap_header, gap - kBlockHeaderBytes, static_cast<size_t>(BlockUse::Free),
                       Previous::Taken);
            mark_start(arena, header);
            insert_free(arena, gap_header, gap - kBlockHeaderBytes,
                        list_of(gap - kBlockHeaderBytes));
        }
    }

    // A remainder that can hold a block of its own is split off and stays free (on the list the
    // block was on, in its place, when its size still maps there):
    //   [ hdr | block (usable) ][ hdr'' | rest ... ][ next (taken) ]
    // `next` followed the free block taken from, so its prev_free flag is already set.
    BlockHeader* next = header_at(address_of(header) + kBlockHeaderBytes + available);
    BEDROCK_DEBUG_ASSERT(!is_free(next) && prev_is_free(next));
    if (available - usable >= kMinBlockBytes) {
        BlockHeader* rest = header_at(address_of(header) + kBlockHeaderBytes + usable);
        const size_t rest_usable = available - usable - kBlockHeaderBytes;
        const unsigned rest_list = list_of(rest_usable);
        if (listed && rest_list == list) {
            replace_free(arena, header, rest, rest_usable, list);
        } else {
            if (listed) {
                remove_free(header, list);
            }
            insert_free(arena, rest, rest_usable, rest_list);
        }
        available = usable;
        set_header(rest, rest_usable, static_cast<size_t>(BlockUse::Free), Previous::Taken);
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
    return start_of(header);
}

//   [ header: taken | next: free ............ ][ after ]
//   [ header: taken, grown ......... | rest: free ][ after ]     (or no rest, if too small)
bool SegregatedFit::grow(Arena& arena, void* block, size_t size) {
    BlockHeader* header = header_of(block);
    BEDROCK_DEBUG_ASSERT(!is_free(header) && start_bit(arena, granule_of(arena, header)));
    const size_t usable = usable_of(header);
    const size_t wanted = size < kMinUsable ? kMinUsable : align_up(size, kGranule);
    if (wanted <= usable) {
        return true;
    }
    BlockHeader* next = next_of(header);
    if (!is_free(next) || size > m_max_usable) {
        return false;
    }
    const size_t next_usable = usable_of(next);
    size_t available = usable + kBlockHeaderBytes + next_usable;
    if (available < wanted || !ensure_listed(next)) {
        return false;
    }
    BlockHeader* after = next_of(next);
    BEDROCK_DEBUG_ASSERT(!is_free(after) && prev_is_free(after));
    remove_free(next, list_of(next_usable));
    unmark_start(arena, next);
    if (available - wanted >= kMinBlockBytes) {
        BlockHeader* rest = header_at(address_of(header) + kBlockHeaderBytes + wanted);
        const size_t rest_usable = available - wanted - kBlockHeaderBytes;
        insert_free(arena, rest, rest_usable, list_of(rest_usable));
        set_header(rest, rest_usable, static_cast<size_t>(BlockUse::Free), Previous::Taken);
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

bool SegregatedFit::give(Arena& arena, void* block) {
    BlockHeader* header = header_of(block);
    BEDROCK_DEBUG_ASSERT(address_of(header) >= address_of(first_of(arena)) &&
                         address_of(header) < address_of(sentinel_of(arena)));
    BEDROCK_DEBUG_ASSERT(!is_free(header) && use_bits(header) != kSentinelUse);
    BEDROCK_DEBUG_ASSERT(start_bit(arena, granule_of(arena, header)));
    const size_t size_and_flags = header->size_and_flags;
    size_t usable = size_and_flags & kSizeMask;
    BlockHeader* next = header_at(address_of(block) + usable);
    // A free neighbour merged with, and its list: the merged block takes its place there if its
    // size still maps to that list.
    BlockHeader* neighbour = nullptr;
    unsigned neighbour_list = 0;

    // Both neighbours' seals are checked before anything changes (a rebuild walks the headers
    // and the start bitmap as they stand); a rebuild for the second may leave the first out of
    // the lists (under new keys), so the first is checked again then.
    const uint64_t rebuilds = m_rebuilds;
    bool merge_next = is_free(next) && ensure_listed(next);
    const bool merge_prev = (size_and_flags & kPrevFree) != 0 &&
                            ensure_listed(header_at(address_of(header) - header->link));
    if (m_rebuilds != rebuilds) [[unlikely]] {
        merge_next = merge_next && seal_holds(next);
    }

    //   [ prev: free? ][ header: given ][ next: free? ]  ->  [ one free block ][ taken ]
    if (merge_next) {
        BEDROCK_DEBUG_ASSERT(&arena_of_free(next) == &arena);
        const size_t next_usable = usable_of(next);
        neighbour = next;
        neighbour_list = list_of(next_usable);
        unmark_start(arena, next);
        usable += kBlockHeaderBytes + next_usable;
        next = header_at(address_of(next) + kBlockHeaderBytes + next_usable);
    }
    if (merge_prev) {
        BlockHeader* prev = header_at(address_of(header) - header->link);
        BEDROCK_DEBUG_ASSERT(next_of(prev) == header && &arena_of_free(prev) == &arena);
        const size_t prev_usable = usable_of(prev);
        if (neighbour != nullptr) {
            remove_free(neighbour, neighbour_list);
        }
        neighbour = prev;
        neighbour_list = list_of(prev_usable);
        unmark_start(arena, header);
        usable += kBlockHeaderBytes + prev_usable;
        header = prev;
    }
    // The list work reads the neighbours' sizes, so it comes before the merged header is written.
    const unsigned list = list_of(usable);
    if (neighbour != nullptr && neighbour_list == list) {
        replace_free(arena, neighbour, header, usable, list);
    } else {
        if (neighbour != nullptr) {
            remove_free(neighbour, neighbour_list);
        }
        insert_free(arena, header, usable, list);
    }
    // The merged block's predecessor is taken: free blocks never touch.
    set_header(header, usable, static_cast<size_t>(BlockUse::Free), Previous::Taken);
    BEDROCK_DEBUG_ASSERT(next_of(header) == next && !is_free(next));
    next->link = address_of(next) - address_of(header);
    set_prev_free(next, Previous::Free);
    return next == sentinel_of(arena) && header == first_of(arena);
}

SegregatedFit::Found SegregatedFit::find(const Arena& arena, const void* address, size_t reach) {
    const uintptr_t at = address_of(address);
    const uintptr_t base = arena_begin(arena);
    const uintptr_t first_start = address_of(first_of(arena)) + kBlockHeaderBytes;
    BEDROCK_DEBUG_ASSERT(at >= base && at < arena_end(arena));
    if (at < first_start || at >= arena_end(arena)) {
        return Found{}; // the arena's header, start bitmap or first block header
    }
    // The lowest granule a start may be at: at - reach, but not before the first block.
    const uintptr_t lowest =
        at - first_start <= reach ? first_start : align_up(at - reach, kGranule);
    const size_t lowest_granule = (lowest - base) / kGranule;
    const size_t granule = (at - base) / kGranule;
    // Down from `granule`'s word: the initialised words the summary names, the first with a bit
    // at or below `granule`. Uninitialised words read as zeros and are never loaded.
    size_t word = granule / 64;
    uint64_t map = 0;
    while (true) {
        word = last_initialised_word(arena, word, lowest_granule / 64);
        if (word == kNoWord) {
            return Found{};
        }
        map = load_word(&arena.start_bits()[word]);
        if (word == granule / 64) {
            map &= bits_up_to(granule % 64);
        }
        if (map != 0) {
            break;
        }
        if (word == lowest_granule / 64) {
            return Found{};
        }
        --word;
    }
    const size_t start_granule = word * 64 + floor_log2(map);
    if (start_granule < lowest_granule) {
        return Found{};
    }
    // The bitmap named a real block start: only now is a header read, that block's own.
    auto* block = reinterpret_cast<unsigned char*>(base + start_granule * kGranule);
    const BlockHeader* header = header_of(block);
    const size_t size_and_flags = load_size_and_flags(header);
    const size_t usable = size_and_flags & kSizeMask;
    if (at - address_of(block) >= usable) {
        return Found{}; // the next block's header (or the end sentinel)
    }
    return Found{block, usable, static_cast<BlockUse>(size_and_flags & kUseMask)};
}

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
        const ArenaPlaces places = places_of(address_of(arena), arena->bytes);
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
            if (use_bits(header) > static_cast<size_t>(BlockUse::CpuCache)) {
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
