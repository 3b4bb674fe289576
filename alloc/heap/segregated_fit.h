// SPDX-License-Identifier: MIT
// SegregatedFit: a two-level segregated fit block allocator (TLSF, Masmano et al. 2004) over
// arenas, spans of memory the caller hands in and takes back whole. Ownership is decided out of
// band: the caller knows which arena an address belongs to (from its page map) and asks find()
// only inside that arena; find() trusts the arena's start bitmap, never bytes near the address.
//
// Owns: the free lists and their bitmaps (in caller-provided storage and in this object), the
// list of arenas, and inside each arena its header, start bitmap (with its summary and top level),
// block headers and end sentinel.
//
// Locking: the caller serialises every call on one SegregatedFit under its lock, except find(),
// which it may call without the lock for an address inside a block that stays taken while find()
// runs (the free() fast path: a slab with a live block), while other CPUs take and give other
// blocks of the same arena under the lock. For that, every read find() makes of shared metadata
// is an atomic load, and every write of that metadata (by take(), give() and add_arena(), under
// the lock) is an atomic store of the whole updated word:
//   - start-bitmap words: loads and stores relaxed;
//   - summary and top words: stores release, loads acquire (a word published as initialised
//     must not be read with its garbage from before, see below);
//   - the size_and_flags word of a block header: loads and stores relaxed.
// Writers are serialised by the lock, so they load, modify and store a word (no read-modify-write
// instruction). Why a lock-free reader is safe: it relies only on the bits of its own block B,
// which stays taken while it reads. B's start bit, the summary bit of B's start word, the zeroes of
// B's interior and B's usable bytes and use were all written before B was handed out, hence before
// find() (the caller's lock and its handing out of B order them), and no writer changes them while
// B is taken; summary and top bits, once set, stay set for the life of the arena. Everything else
// it reads (other bits of the same words, B's prev_free bit) is concurrently rewritten, but each
// load sees either the old or the new whole word, and neither changes what find() returns for an
// address in B. One cross-word order matters: a writer that initialises the word holding the
// address (for a block after B) stores the word before it publishes its summary bit (release), and
// one that initialises a summary word stores it before it publishes its top bit; find() loads the
// top word, then the summary word (acquire each), then the word, so it never sees a bit set over a
// word's old garbage. The caller re-checks under its lock before acting on anything but a live
// block of its own: for any other address, find() without the lock may answer wrongly (but reads
// only the arena's metadata, so it cannot fault). Nor does it read the arena's header: the caller
// gives the arena's bounds (ArenaBounds, from its page tags), and the levels' places are derived
// from them, so an arena given back meanwhile, its header overwritten by the memory's next owner,
// leads find() nowhere outside the arena (whose words it may then load as that owner stores
// them: its answer is one of those the lock holder re-checks).
//
// Arena layout (A = arena base, 16-aligned; bytes = its length, a multiple of 16):
//   [ Arena | top | summary | start bitmap | gap ][ hdr | block 0 ] ... [ hdr | block n-1 ][ end ]
//   ^ A                                           ^ A + arena_header_bytes(bytes) A + bytes - 16 ^
// The Arena header begins with its 16-byte pad (Arena::pad), and the gap rounds the levels up to
// a granule. Each block is a 16-byte header followed by its usable bytes; its "start" (what
// take() returns) is the address just after the header. `end` is a header of size 0 (the end
// sentinel, never free), so every block has a physical successor with a header.
//
// Start bitmap, three levels: start bitmap word w holds bits 64 w .. 64 w + 63, bit g for the
// granule at A + 16 g (one word per KiB of arena); summary bit w (bit w % 64 of summary word
// w / 64, one word per 64 KiB of arena) says whether word w is initialised, and top bit s (bit
// s % 64 of top word s / 64, one word per 4 MiB) whether summary word s is. The logical bits are
//   summary(w) == top(w / 64) && bit w % 64 of summary word w / 64
//   start(g)   == summary(g / 64) && bit g % 64 of word g / 64
// so a word whose bit one level up is 0 reads as all zeros whatever its memory holds. Setting a
// bit in such a word writes the whole word (just that bit), then sets its bit one level up (the
// same way, if that word is not initialised either); clearing a bit in it does nothing.
// add_arena() therefore zeroes only the top words: O(bytes / 4 MiB).
//
// Header: word 0 `link`, word 1 `usable | prev_free << 3 | use` (use in bits 0..2).
//   taken block or sentinel h:  h.link == (prev_free(h) ? h - previous(h) : 0)
//   free block h:               h.link == seal(h)      (see hardened links below)
// As in TLSF, a block links back only to a free predecessor, the one give() merges it with; a
// free block's predecessor is never free, so its word holds the seal of its list links instead.
// A free block's first 24 usable bytes hold those links: next and prev on its list, and its
// arena (so take() finds it in O(1)), each encoded.
//
// Invariants (checked by check()), for every arena A and every block h of A:
//   layout:     the arena header's summary, start and first are where `bytes` puts them; its
//               pad holds (its key: the fit's secret)
//   tiling:     first(A) == A + arena_header_bytes(bytes);  next(h) == h + 16 + usable(h);
//               walking next() from first(A) reaches A + bytes - 16 (the sentinel) exactly
//   sizes:      usable(h) % 16 == 0,  usable(h) >= 16
//   coalesced:  free(h)  =>  !free(next(h))
//   prev flag:  prev_free(next(h)) == free(h);  prev_free(first(A)) == false
//   links:      as above, for taken blocks and the sentinel; a free block's seal holds and its
//               arena link decodes to A
//   start bits: start(g) == 1  <=>  A + 16 g is a block start    (the logical, summary-gated bit)
//   summary:    summary(w) == 0 for every w >= the start bitmap's word count, and top(s) == 0 for
//               every s >= the summary's word count
//   lists:      free(h)  <=>  h is on list list_of(usable(h)), exactly once; every list node is
//               a free block of some arena
//   bitmaps:    bit l % 16 of second_level[l / 16] == (list l non-empty);
//               bit f of first_level == (second_level[f] != 0)
//   totals:     free_bytes == sum of usable(h) over free h; arena count and bytes match the list
// Lists (SL = 16 per first level; sizes below 256 share a linear first level):
//   list_of(s) = s / 16                                            for s < 256
//   list_of(s) = 16 (floor_log2(s) - 7) + (s >> (floor_log2(s) - 4)) - 16   for s >= 256
// so list l holds sizes [min_size(l), min_size(l + 1)) and take() searches from the first list
// whose min_size is >= the request: any block found there fits (good fit, O(1)). Before that it
// takes the head of the request's own list if that block is big enough: a block freed at the
// request's size is there.
//
// Hardened links (as Linux's SLAB_FREELIST_HARDENED, with a check on every link followed): a
// free block's links live in its own usable bytes, which a write after free can reach, so each
// is stored encoded, field == value ^ secret ^ &field, and the block's header - which a write
// after free through the block's own pointer cannot reach - holds their seal, a keyed function
// of the three stored words and of its own size and use:
//   seal(h) == key_next ^ term_next(next field) ^ term_prev(prev field) ^ term_arena(arena field)
//              ^ term_size(size_and_flags(h) without prev_free)
//   term_f(w) == rotl(w * key_f, rotation_f)
// The size is sealed because a free block's header may lie inside memory a block freed earlier
// held (a merge, then a split that leaves the rest free where the freed block was), so a write
// through a stale pointer reaches it too: a size it changed would have the next take, merge or
// grow run over the blocks after it. The prev_free flag is left out: it always reads taken
// while the block is free (free blocks never touch), and the free of the block before a
// header that reads taken sets it. With odd keys derived from the secret and the count of
// rebuilds, each term is a bijection of its word, so a change to any one stored word always
// breaks the seal, and the leading key (never 0) keeps a header and links that all read 0 from
// passing for sealed. A block's links
// are followed only after its seal is checked (take(), give(), grow(), shrink(), probe() and
// remove_arena() check each block they unlink or walk past), so every link followed is one this
// fit wrote. A neighbour's seal is updated in place when one of its links changes: its term for
// the old value (known: the block being unlinked) is swapped for the new one, so a write after
// free into the neighbour stays detectable. A seal that does not hold means damage: the lists are
// rebuilt from the arenas' block headers under new keys (O(blocks)), so a free block the rebuild
// could not reach (headers damaged too) never passes a check again; the damage is recorded for the
// caller to report (corrupt-metadata), and the call goes on. So a write after free can cost a
// rebuild, never a link followed to anything but the arenas' free blocks; no link check reads
// memory outside the block and its list neighbours. Cost: one seal computed per block unlinked or
// walked past, two terms per neighbour updated.
//
// Overwritten headers (segregated_fit_headers.cpp): a header lies just past the end of the block
// before it, where a write past that block's end lands, and its size is followed only where the
// start bitmap confirms it (a block start, or the end sentinel, lies exactly there). The caller
// checks a block's header before give() (taken_header_holds(): one start bit); give(), grow()
// and shrink() never merge with or grow into the end sentinel (one that no longer reads as one is
// written anew); a rebuild lists a block as free only if its successor's prev-free flag agrees, and
// steps over a header the bitmap does not confirm, retiring the block if the old lists name it or
// its successor, whose own header holds, says it was free (a taken one is retired by its owner's
// next call; a successor's overwritten flag says nothing). A header that does not hold is retired:
// written anew from the bitmap with use Retired, which nothing takes, gives back or names as live.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/assert.h"
#include "support/bits.h"
#include "support/overflow_pad.h"

namespace bedrock::heap {

inline constexpr size_t kGranule = 16;          // every block start and size is a multiple
inline constexpr size_t kBlockHeaderBytes = 16; // inline header just before each block
inline constexpr size_t kMinUsable = 32;        // a free block holds its links and told mark
inline constexpr size_t kMinBlockBytes = kBlockHeaderBytes + kMinUsable; // header + body

// What a block is used for, kept in its header's low 3 bits. Free and Retired are the fit's own;
// the others are the caller's.
// CpuCache: the storage of one CPU's cache of the heap's size classes (cpu_cache.h).
// Retired: taken out of use for good, its header found overwritten (retire()): never taken, given
// back or named as a live block.
enum class BlockUse : uint8_t {
    Free = 0,
    Slab = 1,
    Medium = 2,
    Checked = 3,
    Guard = 4,
    CpuCache = 5,
    Retired = 6
};

namespace fit_detail {

// Words of the start bitmap of an arena of `bytes`: one bit per granule, whole 64-bit words.
constexpr size_t start_bitmap_words(size_t bytes) {
    return divide_rounding_up(bytes, kGranule * 64);
}

// Words of its summary: one bit per start bitmap word, whole 64-bit words.
constexpr size_t summary_words(size_t bytes) {
    // ceil(ceil(b / 1024) / 64) == ceil(b / 65536): one shift on the free() fast path.
    return (bytes + kGranule * 64 * 64 - 1) / (kGranule * 64 * 64);
}
static_assert(summary_words(1) == 1 && summary_words(65536) == 1 && summary_words(65537) == 2);

// Words of the top level: one bit per summary word, whole 64-bit words.
constexpr size_t top_words(size_t bytes) {
    return (bytes + kGranule * 64 * 64 * 64 - 1) / (kGranule * 64 * 64 * 64);
}
static_assert(top_words(1) == 1 && top_words(4 << 20) == 1 && top_words((4 << 20) + 1) == 2);

} // namespace fit_detail

// The header at the front of each arena; the top level, the summary and then the start bitmap
// follow it.
struct Arena {
    // Where a write past the end of the memory before the arena (a large run's last page, say)
    // lands first: nothing the fit follows, but a pad keyed with the fit's secret that check()
    // expects, so that such a write of up to 16 bytes is found and reported, never followed as
    // a link or a length.
    OverflowPad<2> pad;
    Arena* next; // in the fit's list of arenas, in the order they were added
    Arena* prev;
    // The whole span, from this header to the end sentinel inclusive. Stored atomically: a lookup
    // without the caller's lock may load it (when the caller's tags give no length).
    size_t bytes;
    void* owner; // the caller's cookie, for debuggers (the heap decides ownership from tags)
    // Where the summary, the start bitmap and the first block's header are: derived from
    // `bytes` when the arena is added, kept so that take() and give() under the caller's lock
    // need not derive them again (a lookup without the lock derives them from ArenaBounds).
    uint64_t* summary;
    uint64_t* start;
    void* first;

    // The raw words of the three levels (see the file comment: a word below the top means
    // something only where its bit one level up is set).
    [[nodiscard]] uint64_t* top_bits() { return reinterpret_cast<uint64_t*>(this + 1); }
    [[nodiscard]] const uint64_t* top_bits() const {
        return reinterpret_cast<const uint64_t*>(this + 1);
    }
    [[nodiscard]] uint64_t* summary_bits() { return summary; }
    [[nodiscard]] const uint64_t* summary_bits() const { return summary; }
    [[nodiscard]] uint64_t* start_bits() { return start; }
    [[nodiscard]] const uint64_t* start_bits() const { return start; }
};
static_assert(sizeof(Arena) == 72 && alignof(Arena) <= kGranule);

// An arena as a lookup names it: its base and its length. A lookup made without the caller's lock
// takes both from the caller's own metadata (page tags), never from the arena's header: an arena
// given back meanwhile leaves its header to the memory's next owner, who may overwrite it. Every
// place find() reads is derived from the two (fit_detail::places_of()), so such a lookup reads
// nothing outside [base, base + bytes), whatever the header holds.
struct ArenaBounds {
    uintptr_t base;
    size_t bytes;
};

namespace fit_detail {

struct BlockHeader {
    size_t link;           // see the file comment: previous block, or the arena if free
    size_t size_and_flags; // usable | prev_free << 3 | use
};
static_assert(sizeof(BlockHeader) == kBlockHeaderBytes);

// size_and_flags as find() reads it, possibly without the lock (see the file comment).
inline size_t load_size_and_flags(const BlockHeader* header) {
    return __atomic_load_n(&header->size_and_flags, __ATOMIC_RELAXED);
}

// Summary word `word` of an arena as it counts: 0 where its top bit says it is not initialised,
// whatever its memory holds. The top word is loaded (acquire) before it, as lock-free readers
// must (see the file comment).
inline uint64_t logical_summary(const uint64_t* top, const uint64_t* summary, size_t word) {
    const uint64_t initialised = __atomic_load_n(&top[word / 64], __ATOMIC_ACQUIRE) >> (word % 64);
    return (initialised & 1) != 0 ? __atomic_load_n(&summary[word], __ATOMIC_ACQUIRE) : 0;
}
// Start bitmap word `word` as it counts, the same way one level down.
inline uint64_t logical_word(const uint64_t* top, const uint64_t* summary,
                             const uint64_t* start_bits, size_t word) {
    const uint64_t initialised = logical_summary(top, summary, word / 64) >> (word % 64);
    return (initialised & 1) != 0 ? __atomic_load_n(&start_bits[word], __ATOMIC_RELAXED) : 0;
}
inline uint64_t logical_summary(const Arena& arena, size_t word) {
    return logical_summary(arena.top_bits(), arena.summary_bits(), word);
}
inline uint64_t logical_word(const Arena& arena, size_t word) {
    return logical_word(arena.top_bits(), arena.summary_bits(), arena.start_bits(), word);
}

// At the start of a free block's usable bytes: three links, each encoded and all three sealed
// in its header (see the file comment), and whether the block's whole pages past this struct
// were told unused since it was last written (a hint, neither encoded nor sealed: a write after
// free that changes it changes only whether those pages are told of again).
struct FreeLinks {
    uintptr_t next;  // the next block on its list, or null
    uintptr_t prev;  // the previous one, or null (the list's head)
    uintptr_t arena; // its arena
    uintptr_t told;  // 1: its pages are told unused (see visit_free_blocks()); else 0
};
// Which of a free block's links: indexes the seal's keys and rotations. The seal also covers
// the header's size and use (kSealedSize: its last key and rotation).
enum class LinkField : uint8_t { Next, Prev, Arena };
inline constexpr unsigned kLinkFields = 3;
inline constexpr unsigned kSealedSize = kLinkFields;
inline constexpr unsigned kSealedWords = kLinkFields + 1;
inline constexpr uint64_t kSealKeyStep = 0x9e3779b97f4a7c15u; // between the keys' seeds
inline constexpr unsigned kSealRotations[kSealedWords] = {0, 23, 47, 35};
static_assert(sizeof(FreeLinks) <= kMinUsable);

inline constexpr size_t kUseMask = 7;
inline constexpr size_t kPrevFree = 8;
inline constexpr size_t kSizeMask = ~size_t{kGranule - 1};
inline constexpr size_t kSentinelUse = 7; // the end sentinel's use bits; no BlockUse has it

inline constexpr unsigned kSecondLevelLog2 = 4;
inline constexpr unsigned kSecondLevelCount = 1u << kSecondLevelLog2; // SL = 16
inline constexpr unsigned kLinearLog2 = 8;                            // sizes < 256: linear
static_assert(kGranule << kSecondLevelLog2 == size_t{1} << kLinearLog2);
// First levels for any size_t: level 0 (linear) and one per power of two from 2^8 to 2^63.
inline constexpr unsigned kFirstLevelCount = 64 - kLinearLog2 + 1;
// The first-level bitmap is one word, and search() shifts it by a first level plus one.
static_assert(kFirstLevelCount < 64);

// The list holding free blocks of `usable` bytes (rounds down). Precondition: usable >= 16.
// Without a branch: a size below 256 counts as in the doubling from 256, where the formula gives
// 16 (8 - 8) + (usable >> 4) == usable / 16, the linear level.
constexpr unsigned list_of(size_t usable) {
    const unsigned log = floor_log2(usable | (size_t{1} << kLinearLog2));
    const auto second = static_cast<unsigned>(usable >> (log - kSecondLevelLog2));
    return (log - kLinearLog2) * kSecondLevelCount + second;
}

// The smallest size list `list` holds.
constexpr size_t list_min_size(unsigned list) {
    const unsigned first = list / kSecondLevelCount;
    const unsigned second = list % kSecondLevelCount;
    if (first == 0) {
        return second * kGranule;
    }
    return size_t{kSecondLevelCount + second} << (first + kLinearLog2 - 1 - kSecondLevelLog2);
}

// The first list all of whose blocks hold `usable` bytes (rounds up): the one after the list of
// `usable` - 1 (the list of `usable` itself when `usable` is its smallest size, else the next).
// Precondition: 16 <= usable < 2^63.
constexpr unsigned list_fitting(size_t usable) {
    return list_of(usable - 1) + 1;
}

// Whether list_fitting() names the least list whose smallest size is at least `usable`, at every
// list boundary up to `limit` bytes (and one byte either side of it).
constexpr bool list_fitting_is_least(size_t limit) {
    for (unsigned list = 2; list_min_size(list) <= limit; ++list) {
        const size_t min = list_min_size(list);
        if (list_fitting(min) != list || list_fitting(min - 1) != list ||
            list_fitting(min + 1) != list + 1) {
            return false;
        }
    }
    return true;
}

static_assert(list_of(16) == 1 && list_of(255) == 15 && list_of(256) == 16 && list_of(511) == 31 &&
              list_of(512) == 32 && list_of(~size_t{0}) == kFirstLevelCount * 16 - 1);
static_assert(list_min_size(16) == 256 && list_min_size(31) == 496 && list_min_size(32) == 512);
static_assert(list_fitting(257) == 17 && list_fitting(272) == 17 && list_fitting(273) == 18);
static_assert(list_fitting_is_least(size_t{1} << 40));

// Bytes from the arena base to its first block's header.
constexpr size_t arena_header_bytes(size_t bytes) {
    return align_up(sizeof(Arena) +
                        (top_words(bytes) + summary_words(bytes) + start_bitmap_words(bytes)) * 8,
                    kGranule);
}
static_assert(arena_header_bytes(32 * 1024) == align_up(72 + 2 * 8 + 32 * 8, 16) &&
              arena_header_bytes(64 * 1024 + 16) == align_up(72 + 3 * 8 + 65 * 8, 16));

// The usable bytes of the single free block of a fresh arena of `bytes` (0: too small).
constexpr size_t fresh_usable(size_t bytes) {
    const size_t overhead = arena_header_bytes(bytes) + 2 * kBlockHeaderBytes;
    return bytes >= overhead + kMinUsable ? bytes - overhead : 0;
}

// Where the arena of `bounds` keeps its three levels and its first block header: what
// add_arena() records in the header, check() verifies, and a lookup without the lock derives.
struct ArenaPlaces {
    uint64_t* top;
    uint64_t* summary;
    uint64_t* start;
    void* first;
};
inline ArenaPlaces places_of(ArenaBounds bounds) {
    auto* top = reinterpret_cast<uint64_t*>(bounds.base + sizeof(Arena));
    uint64_t* summary = top + top_words(bounds.bytes);
    return ArenaPlaces{top, summary, summary + summary_words(bounds.bytes),
                       reinterpret_cast<void*>(bounds.base + arena_header_bytes(bounds.bytes))};
}

} // namespace fit_detail

// Totals for statistics. O(1): kept up to date by every operation.
struct FitTotals {
    size_t free_bytes = 0;  // usable bytes of all free blocks
    size_t arenas = 0;      // arenas added and not removed
    size_t arena_bytes = 0; // their spans together
};

class SegregatedFit {
public:
    constexpr SegregatedFit() = default;
    SegregatedFit(const SegregatedFit&) = delete;
    SegregatedFit& operator=(const SegregatedFit&) = delete;

    // Bytes of free-list heads for a fit whose arenas are at most `max_arena_bytes` long: one
    // pointer per list that a block of such an arena can be on (8 B per list, 16 lists per
    // doubling). The bitmaps live in this object (a fixed 8 + 2 * 57 bytes). 0 if no arena
    // that small can hold a block.
    [[nodiscard]] static constexpr size_t storage_bytes(size_t max_arena_bytes) {
        const size_t usable = fit_detail::fresh_usable(align_down(max_arena_bytes, kGranule));
        return usable == 0 ? 0 : fit_detail::list_of(usable) * sizeof(fit_detail::BlockHeader*);
    }

    // Sets up an empty fit. `storage`: storage_bytes(max_arena_bytes) bytes, 8-aligned, owned by
    // the caller for the fit's lifetime (its contents are overwritten); `secret` encodes and
    // seals the list links. O(storage bytes).
    void init(void* storage, size_t max_arena_bytes, uintptr_t secret);

    // Damage found since the last call, for the caller to report once its lock is released: free
    // blocks with a damaged list link (the lists were rebuilt each time), blocks whose own
    // header did not hold (retire()), and arenas removed with their pad changed (remove_arena());
    // for each, how many and the first.
    struct Damage {
        uint32_t links = 0;
        uint32_t headers = 0;
        uint32_t pads = 0;
        uintptr_t first_link = 0;   // the block's start
        uintptr_t first_header = 0; // the block's start
        uintptr_t first_pad = 0;    // the arena's base
    };
    [[nodiscard]] Damage take_damage() {
        const Damage damage = m_damage;
        m_damage = Damage{};
        __atomic_store_n(&m_damage_found, uint32_t{0}, __ATOMIC_RELAXED);
        return damage;
    }
    // Whether take_damage() has something: one relaxed load, callable without the lock.
    [[nodiscard]] bool damage_pending() const {
        return __atomic_load_n(&m_damage_found, __ATOMIC_RELAXED) != 0;
    }
    // Takes `block`, a block start of `arena` whose header does not hold (header_holds()), out of
    // use for good and records it for take_damage(): its header is written anew from the start
    // bitmap (its size up to the next block start, its prev-free flag from the block before it)
    // with use Retired, and the next block's prev-free flag cleared, so that the arena tiles
    // again and nothing its old header said is followed. A block that was free (a stale free of
    // it: the block after it, its header holding, says so, or the lists name it) is left to a
    // rebuild of the lists instead, which retires it or, its header holding but not its seal,
    // lists it anew (recorded as link damage); nothing is counted then. O(its bytes / 1 KiB + the
    // block before it's bytes / 1 KiB) for a taken block (two walks of the start bitmap), plus
    // O(blocks + lists) when the block after it cannot say, and a rebuild for a free one.
    struct RetiredBlock {
        size_t usable; // of the block retired
        bool taken;    // false: it was free, and none of the caller's totals counted it
    };
    RetiredBlock retire(Arena& arena, void* block);

    // Bytes an arena of `bytes` spends on its header, top level, summary, start bitmap (bytes /
    // 128 + bytes / 8192 + bytes / 524288, each rounded up to whole words) and end sentinel.
    // Each block
    // then spends kBlockHeaderBytes more, so a fresh arena's one free block has
    // bytes - arena_overhead(bytes) - kBlockHeaderBytes usable bytes.
    [[nodiscard]] static constexpr size_t arena_overhead(size_t bytes) {
        return fit_detail::arena_header_bytes(bytes) + kBlockHeaderBytes;
    }
    // The usable bytes of a free block that take() is sure to place `size` bytes at `alignment`
    // in (a power of two): the usable size in granules and, for an aligned
    // block, room for the gap before it (at most alignment + kMinBlockBytes - kGranule, since a
    // gap must hold a free block of its own). An arena grown for one request needs that much.
    [[nodiscard]] static constexpr size_t bytes_to_place(size_t size, size_t alignment) {
        const size_t usable = size < kMinUsable ? kMinUsable : align_up(size, kGranule);
        return alignment > kGranule ? usable + alignment + kMinBlockBytes - kGranule : usable;
    }

    // Makes [base, base + bytes) an arena whose remaining span is one free block, appended to
    // the list of arenas. Preconditions: base 16-aligned, bytes a multiple of 16 and <= the
    // fit's max_arena_bytes, the span disjoint from every arena. Returns null if the span cannot
    // hold a minimum block (nothing changes). O(bytes / 4 MiB): zeroes the top level only; the
    // summary's and the start bitmap's memory may hold anything.
    Arena* add_arena(void* base, size_t bytes, void* owner);

    // Unlinks an arena with its free blocks; the caller then owns its memory again, its taken
    // blocks included (precondition: the caller uses none of them any more, as when a heap is
    // destroyed with blocks it took out of use after finding them damaged). O(1) for an empty
    // arena (arena_is_empty()), else O(blocks): it steps by a header's size only where the start
    // bitmap confirms it (O(bytes / 1 KiB) more past an overwritten one).
    void remove_arena(Arena& arena);

    // Whether one free block spans the arena (nothing taken). O(1).
    [[nodiscard]] static bool arena_is_empty(const Arena& arena);

    // The arenas whose pad (Arena::pad: their first 16 bytes) a write past the end of the memory
    // before them changed: each pad written anew; returns how many, and the first one's base in
    // `first`. For check()'s caller, before check() (which fails on such a pad). O(arenas).
    size_t repair_pads(uintptr_t& first);

    // A block of at least `size` usable bytes (0 -> the minimum block, kMinUsable bytes) whose
    // start is aligned to `alignment` (a power of two; below 16 means 16), its header marked `use`
    // (not Free). Null if no free block fits (nothing changes): the caller may add an arena and
    // retry. O(1): the head of the list `size` falls in if it is big enough (a size freed and
    // allocated again reuses its blocks), else good fit, searching from the first list whose
    // every block fits; an aligned request searches for size + alignment + 32 and gives the
    // leading gap back as a free block. When that search fails, up to kFallbackProbes blocks of
    // the list below are tried exactly, so a request close to an arena's whole free block still
    // succeeds. An alignment beyond every
    // block's size (a region heap's, near its region's size) tries the free blocks holding its
    // multiples instead, at most two per arena: O(arenas * arena bytes / 1 KiB). Remainders smaller
    // than a minimum block (kMinBlockBytes, 48) stay in the taken block.
    [[nodiscard]] void* take(size_t size, size_t alignment, BlockUse use) {
        return alignment <= kGranule && size <= m_max_usable ? take_head(size, use)
                                                             : take_placed(size, alignment, use);
    }
    static constexpr unsigned kFallbackProbes = 8;

    // Gives back `block`, a taken block start of `arena` (precondition: the caller checked it,
    // e.g. is_block_start(arena, block) and use_of(block) != Free under its lock). Merges it with
    // free physical neighbours (an arena's blocks only). Returns whether the arena is now empty
    // (arena_is_empty(arena)), so the caller can release whole arenas. O(1).
    bool give(Arena& arena, void* block);

    // Whether a block (taken or free) starts at `address`, from the start bitmap alone: the cheap
    // re-check under the caller's lock of what find() or this answered without it. Like find(),
    // it reads only the arena's metadata and may be called without the lock, its answer then
    // re-checked under it. Precondition: `address` 16-aligned, arena.base <= address <
    // arena.base + arena.bytes. O(1).
    [[nodiscard]] static bool is_block_start(ArenaBounds arena, const void* address);
    // Whether the header of `block`, a block start of `arena`, says what the arena's own metadata
    // allows, so that give(), grow() and shrink() may follow it: its size ends where the start
    // bitmap puts the next block (or the end sentinel); its use is one the fit knows; a free
    // block's seal holds and its prev-free flag is clear; a taken block's prev-free flag, if set,
    // comes with a link back of a whole block or more that stays inside the arena (give() checks
    // the seal of the free block it names, which no other place passes). The header sits just past
    // the end of the block before it, where a write past that block's end lands (or just before
    // `block`, for one before its start): a size or link read from a header that does not hold
    // could point anywhere, mapped or not. Under the caller's lock. O(1): one start bit, and a
    // seal.
    [[nodiscard]] bool header_holds(const Arena& arena, const void* block) const;
    // header_holds() for a block its caller took (any use but Free and Retired), as give() needs
    // it: inline, on every medium free. A block that reads free or retired does not hold.
    [[nodiscard, gnu::always_inline]] static bool taken_header_holds(const Arena& arena,
                                                                     const void* block);
    // The size part of header_holds(): the next block start (or the end sentinel) lies exactly
    // where the header's size ends. Under the caller's lock; O(1): one start bit.
    [[nodiscard, gnu::always_inline]] static bool size_holds(const Arena& arena, const void* block);
    // The same re-check under the caller's lock when the caller saw `address`'s start bit set
    // (is_block_start() or find(), with or without the lock) while `arena` was already the one it
    // is now: a summary or top bit, once set, stays set for the arena's life, so the start
    // bitmap word alone decides. One load. Precondition as is_block_start().
    [[nodiscard]] static bool is_block_start_seen(const Arena& arena, const void* address);

    // Grows taken block `block` of `arena` in place to at least `size` usable bytes by taking
    // the front of the free block right after it (the rest stays free), and returns true; or
    // returns false, changing nothing, when that neighbour is taken or too small, or `size` is
    // beyond any block of the fit. A `size` the block already holds returns true at once. O(1).
    [[nodiscard]] bool grow(Arena& arena, void* block, size_t size);
    // Shrinks taken block `block` of `arena` in place to the usable bytes `size` rounds to (at
    // least kMinUsable), the rest becoming a free block merged with a free block right after it,
    // and returns true; or returns false, changing nothing, when no free block fits in the rest
    // (less than kMinBlockBytes, and the block after it taken). The caller has checked the
    // block's header (taken_header_holds()). O(1).
    [[nodiscard]] bool shrink(Arena& arena, void* block, size_t size);

    // What find() found.
    struct Found {
        unsigned char* block = nullptr; // null: no block holds the address within reach
        size_t usable = 0;
        BlockUse use = BlockUse::Free;
    };
    // The block whose usable bytes hold `address`, deciding from allocator metadata only.
    // Precondition: arena.base <= address < arena.base + arena.bytes. The start bitmap names the
    // last block start s <= address with address - s <= reach; only then is s's header read.
    // Never reads the bytes at or near `address` (so data that looks like a header cannot
    // mislead it). Null if there is no such start, or `address` is in the arena's header,
    // bitmaps, a block header or the end sentinel. O(reach / 1024 + 1): one step per initialised
    // start bitmap word (1 KiB of arena), initialised summary word (64 KiB) and top word (4 MiB)
    // in reach.
    // May be called without the caller's lock for an address inside a block that stays taken
    // meanwhile (see the file comment), with bounds that do not come from the arena's header
    // (ArenaBounds); its answer for any other address must then be re-checked under the lock.
    // Reads nothing outside [arena.base, arena.base + arena.bytes).
    [[nodiscard]] static Found find(ArenaBounds arena, const void* address, size_t reach);
    // The block start find() names for `address` (the last one at or below it within `reach`),
    // or null, from the start bitmap alone: its header is not read. Same locking rules.
    [[nodiscard]] static unsigned char* start_at_or_below(ArenaBounds arena, const void* address,
                                                          size_t reach);
    // find() for an address whose block starts in the address's own start-bitmap word or one of
    // the kNearWords - 1 before it (up to 64 granules each: any block of a slab), inline: the
    // free() fast path. Otherwise the same as find(arena, address, reach). Same locking rules.
    static constexpr size_t kNearWords = 5;
    [[nodiscard]] [[gnu::always_inline]] static Found find_near(ArenaBounds arena,
                                                                const void* address, size_t reach);

    // Of a block start (taken or free). Like find(), safe without the lock on a block that stays
    // taken meanwhile.
    [[nodiscard]] static size_t usable_size(const void* block) {
        return fit_detail::load_size_and_flags(header_of(block)) & fit_detail::kSizeMask;
    }
    [[nodiscard]] static BlockUse use_of(const void* block) {
        return static_cast<BlockUse>(fit_detail::load_size_and_flags(header_of(block)) &
                                     fit_detail::kUseMask);
    }
    [[nodiscard]] static uintptr_t arena_begin(const Arena& arena) {
        return reinterpret_cast<uintptr_t>(&arena);
    }
    [[nodiscard]] static uintptr_t arena_end(const Arena& arena) {
        return arena_begin(arena) + arena.bytes;
    }
    // An arena's bounds as its header says: for the caller holding its lock (or whose arena
    // cannot be given back, a region heap's).
    [[nodiscard]] static ArenaBounds bounds_of(const Arena& arena) {
        return ArenaBounds{arena_begin(arena), arena.bytes};
    }

    // The arenas in the order they were added (for walks; null-terminated via Arena::next).
    [[nodiscard]] Arena* first_arena() const { return m_arenas; }

    // The bytes at the start of a free block that hold its list links and told mark; the rest of
    // its usable bytes hold nothing the fit reads.
    static constexpr size_t kFreeLinksBytes = sizeof(fit_detail::FreeLinks);

    // Visits every block of every arena, arenas in the order they were added and each arena's
    // blocks in address order: f(Arena&, unsigned char* block, size_t usable, BlockUse).
    // O(blocks). `f` must not change the fit.
    template <class F>
    void for_each_block(F&& f) const;
    // Visits the free blocks on the lists whose every block holds at least `least` usable bytes,
    // from the lists alone, the largest lists first (the blocks take() reaches last), until
    // visit(context, block, usable, told) returns false. `told` is the block's told mark: false
    // for a block made by a give or a shrink (it holds freed or written memory) or by
    // add_arena(), inherited by the free part of a block split by take() or grow(), which do
    // not write past its links; the visitor sets it once it has told of the block's pages past
    // kFreeLinksBytes. A block whose seal does not hold ends the walk (the lists are rebuilt, as
    // take() does on damage).
    // O(blocks visited + lists), not O(blocks). `visit` must not change the fit.
    using FreeBlockVisitor = bool (*)(void* context, unsigned char* block, size_t usable,
                                      bool& told);
    void visit_free_blocks(size_t least, FreeBlockVisitor visit, void* context);

    [[nodiscard]] FitTotals totals() const { return m_totals; }

    // Walks everything and verifies every invariant in the file comment. On failure returns false
    // and, if `failure` is not null, sets it to the invariant that does not hold. O(blocks +
    // start bitmap words + lists * arenas).
    [[nodiscard]] bool check(const char** failure = nullptr) const;

private:
    using BlockHeader = fit_detail::BlockHeader;

    [[nodiscard]] static BlockHeader* header_of(const void* block) {
        return reinterpret_cast<BlockHeader*>(reinterpret_cast<uintptr_t>(block) -
                                              kBlockHeaderBytes);
    }

    [[nodiscard]] BlockHeader*& head(unsigned list) {
        BEDROCK_DEBUG_ASSERT(list >= 1 && list <= m_last_list);
        return m_heads[list - 1];
    }
    [[nodiscard]] BlockHeader* head(unsigned list) const {
        BEDROCK_DEBUG_ASSERT(list >= 1 && list <= m_last_list);
        return m_heads[list - 1];
    }
    // The list operations, inline: take() and give() make one to three each.
    [[gnu::always_inline]] void push_free(Arena& arena, BlockHeader* header, unsigned list);
    [[gnu::always_inline]] void replace_free(Arena& arena, BlockHeader* old, BlockHeader* header,
                                             unsigned list);
    [[gnu::always_inline]] void remove_free(BlockHeader* header, unsigned list);
    [[gnu::always_inline]] void pop_head(unsigned list, const BlockHeader* header,
                                         BlockHeader* next);
    // take() of a plain block from the head of the list its search finds (segregated_fit.cpp),
    // and take() for every case: an aligned request, a probe after the search failed, damage.
    [[nodiscard]] void* take_head(size_t size, BlockUse use);
    [[nodiscard]] void* take_placed(size_t size, size_t alignment, BlockUse use);
    void recheck_neighbours(const BlockHeader* next, bool& merge_next, BlockHeader*& prev);
    // Whether the end sentinel's header reads as one: size 0, the sentinel's use, either flag.
    [[nodiscard]] static bool sentinel_holds(const BlockHeader* sentinel) {
        return (fit_detail::load_size_and_flags(sentinel) & ~fit_detail::kPrevFree) ==
               fit_detail::kSentinelUse;
    }
    void repair_sentinel(Arena& arena);
    // retire() without recording the damage: the header of the block at `header` written anew
    // from the start bitmap with use Retired, the next block's prev-free flag cleared; returns
    // its usable bytes.
    size_t retire_header(Arena& arena, BlockHeader* header);
    void record_damaged_header(uintptr_t block);
    // For rebuild_lists(), before the lists go (under the old keys): each block whose header does
    // not hold but which the lists name - a list's head, or a list link of a free block whose
    // seal holds - was free, and is retired (recorded unless it is `damaged`, the block the
    // rebuild is for). The block after it cannot say so when a write past the end of each
    // overwrote both headers: only the lists then tell a free block from a taken one, which
    // is left for its owner's next call. O(lists + blocks, + arenas per block named).
    void retire_listed_overwritten(const BlockHeader* damaged);
    void retire_if_overwritten(BlockHeader* listed, const BlockHeader* damaged);
    // retire_header() of a block a rebuild found overwritten, recorded unless it is `damaged`
    // (the block the rebuild is for, recorded as link damage).
    void retire_found(Arena& arena, BlockHeader* header, const BlockHeader* damaged);
    // Whether the start bitmap confirms `header`'s size (size_holds()), or, for the end
    // sentinel, whether it reads as one: whether its flags may be trusted.
    [[nodiscard]] static bool confirmed(const Arena& arena, BlockHeader* header);
    // Whether the lists name `header`: a list's head, or a list link of a free block whose seal
    // holds. O(blocks + lists).
    [[nodiscard]] bool listed(const BlockHeader* header) const;
    // visit(BlockHeader*) for each list's head and each list link of every free block whose seal
    // holds (null ones too), walking the arenas' blocks as a rebuild does.
    template <class Visit>
    void for_each_listed(Visit&& visit) const;
    // Counts one more damage of `kind` at `address`, the first of its kind remembered.
    void record_damage(uint32_t Damage::*count, uintptr_t Damage::*first, uintptr_t address);
    [[nodiscard]] unsigned search(unsigned list) const;
    // The last non-empty list at index <= `list`, or 0. O(1).
    [[nodiscard]] unsigned search_down(unsigned list) const;
    [[nodiscard]] BlockHeader* probe(unsigned list, size_t usable, size_t alignment);
    // A free block for take() and the list it is on: `header` null when none is found.
    struct Choice {
        BlockHeader* header;
        unsigned list;
    };
    [[nodiscard]] Choice choose(size_t needed, size_t usable, size_t alignment);
    [[nodiscard]] Choice choose_at_multiples(size_t usable, size_t alignment) const;
    [[nodiscard]] Choice choose_again(size_t needed, size_t usable, size_t alignment);

    // Hardened links (see the file comment).
    [[nodiscard]] uintptr_t encode(const void* value, const uintptr_t* field) const {
        return reinterpret_cast<uintptr_t>(value) ^ m_secret ^ reinterpret_cast<uintptr_t>(field);
    }
    [[nodiscard]] BlockHeader* load_link(const uintptr_t* field) const {
        return reinterpret_cast<BlockHeader*>(encode(reinterpret_cast<const void*>(*field), field));
    }
    [[nodiscard, gnu::always_inline]] uint64_t seal_term(unsigned word, uintptr_t stored) const;
    [[nodiscard, gnu::always_inline]] uint64_t seal_term(fit_detail::LinkField which,
                                                         uintptr_t stored) const;
    [[nodiscard, gnu::always_inline]] uint64_t size_seal_term(const BlockHeader* node) const;
    // A free block whose size changes on its list (a merge, an aligned take's gap) keeps its
    // seal: the size term of `old_size_and_flags` is swapped for the header's own.
    void reseal_size(BlockHeader* node, size_t old_size_and_flags) {
        node->link ^=
            seal_term(fit_detail::kSealedSize, old_size_and_flags & ~fit_detail::kPrevFree) ^
            size_seal_term(node);
    }
    [[nodiscard, gnu::always_inline]] uint64_t seal_of(const BlockHeader* node) const;
    [[nodiscard]] bool seal_holds(const BlockHeader* node) const {
        return node->link == seal_of(node);
    }
    // Writes all three links of free block `node` and its seal (not its told mark).
    void write_links(BlockHeader* node, const BlockHeader* next, const BlockHeader* prev,
                     const Arena& arena);
    // Changes one list link of free block `node` from `old` (what its seal says it is) to
    // `value`, and the seal with it.
    [[gnu::always_inline]] void relink(BlockHeader* node, fit_detail::LinkField which,
                                       const BlockHeader* old, const BlockHeader* value);
    // Whether free block `node`'s links may be followed (its seal holds), after rebuilding the
    // lists if they may not; false only if the arenas' block headers are damaged too, which left
    // it out of the rebuilt lists.
    [[nodiscard]] bool ensure_listed(const BlockHeader* node);
    // The arena of a free block whose seal holds.
    [[nodiscard]] Arena& arena_of_free(const BlockHeader* node) const;
    void rebuild_lists(const BlockHeader* damaged);
    void derive_seal_keys();
    [[nodiscard]] bool check_lists(size_t free_blocks, const char** failure) const;

    BlockHeader** m_heads = nullptr; // lists 1 .. m_last_list (list 0, sizes < 16, is never used)
    unsigned m_last_list = 0;        // list_of(the largest block an arena can have)
    uint32_t m_rebuilds = 0;         // the seal keys' generation
    size_t m_max_arena_bytes = 0;
    size_t m_max_usable = 0; // of the largest block an arena can have
    uint64_t m_first_level = 0;
    uint16_t m_second_level[fit_detail::kFirstLevelCount] = {};
    uint32_t m_damage_found = 0; // how much m_damage holds: loaded without the lock
    Arena* m_arenas = nullptr;
    Arena* m_last_arena = nullptr;
    FitTotals m_totals;
    uintptr_t m_secret = 0;
    uint64_t m_seal_keys[fit_detail::kSealedWords] = {};
    Damage m_damage; // under the caller's lock
};

template <class F>
void SegregatedFit::for_each_block(F&& f) const {
    for (Arena* arena = m_arenas; arena != nullptr; arena = arena->next) {
        auto at = arena_begin(*arena) + fit_detail::arena_header_bytes(arena->bytes);
        const uintptr_t sentinel = arena_end(*arena) - kBlockHeaderBytes;
        while (at < sentinel) {
            auto* block = reinterpret_cast<unsigned char*>(at + kBlockHeaderBytes);
            const size_t usable = usable_size(block);
            f(*arena, block, usable, use_of(block));
            at += kBlockHeaderBytes + usable;
        }
    }
}

inline bool SegregatedFit::is_block_start(ArenaBounds arena, const void* address) {
    const auto at = reinterpret_cast<uintptr_t>(address);
    BEDROCK_DEBUG_ASSERT(is_aligned(at, kGranule) && at - arena.base < arena.bytes);
    // The logical bit (see the file comment), loaded as find() loads it.
    const fit_detail::ArenaPlaces places = fit_detail::places_of(arena);
    const size_t granule = (at - arena.base) / kGranule;
    return ((fit_detail::logical_word(places.top, places.summary, places.start, granule / 64) >>
             (granule % 64)) &
            1) != 0;
}

inline bool SegregatedFit::size_holds(const Arena& arena, const void* block) {
    const size_t usable = fit_detail::load_size_and_flags(header_of(block)) & fit_detail::kSizeMask;
    const auto at = reinterpret_cast<uintptr_t>(block);
    const uintptr_t end = arena_end(arena);
    BEDROCK_DEBUG_ASSERT(at < end - kBlockHeaderBytes);
    if (usable < kMinUsable || usable > end - at - kBlockHeaderBytes) {
        return false;
    }
    const uintptr_t next = at + usable + kBlockHeaderBytes;
    const size_t granule = (next - arena_begin(arena)) / kGranule;
    return next == end ||
           ((fit_detail::logical_word(arena, granule / 64) >> (granule % 64)) & 1) != 0;
}

inline bool SegregatedFit::taken_header_holds(const Arena& arena, const void* block) {
    const BlockHeader* header = header_of(block);
    const size_t flags = header->size_and_flags;
    // Slab .. CpuCache, a size that holds, and a link back inside the arena if one is flagged.
    if ((flags & fit_detail::kUseMask) - 1 >= static_cast<size_t>(BlockUse::CpuCache) ||
        !size_holds(arena, block)) {
        return false;
    }
    const size_t link = header->link;
    return (flags & fit_detail::kPrevFree) == 0 ||
           (link % kGranule == 0 && link >= kMinBlockBytes &&
            reinterpret_cast<uintptr_t>(header) - reinterpret_cast<uintptr_t>(arena.first) >= link);
}

inline bool SegregatedFit::is_block_start_seen(const Arena& arena, const void* address) {
    const size_t granule = (reinterpret_cast<uintptr_t>(address) - arena_begin(arena)) / kGranule;
    BEDROCK_DEBUG_ASSERT(
        fit_detail::logical_summary(arena, granule / 64 / 64) >> (granule / 64 % 64) & 1);
    return ((arena.start_bits()[granule / 64] >> (granule % 64)) & 1) != 0;
}

inline SegregatedFit::Found SegregatedFit::find_near(ArenaBounds arena, const void* address,
                                                     size_t reach) {
    const auto at = reinterpret_cast<uintptr_t>(address);
    const uintptr_t base = arena.base;
    if (at - base < arena.bytes) [[likely]] {
        // Bits below the first block's start are never set: the walk down stops at a start or
        // after kNearWords words, and find() takes the rest.
        const size_t granule = (at - base) / kGranule;
        const fit_detail::ArenaPlaces places = fit_detail::places_of(arena);
        const uint64_t* top = places.top;
        const uint64_t* summary = places.summary;
        const uint64_t* start_bits = places.start;
        uint64_t mask = ~uint64_t{0} >> (63 - granule % 64);
        size_t word = granule / 64;
        for (size_t steps = 0; steps < kNearWords && word != ~size_t{0}; ++steps, --word) {
            const uint64_t map = fit_detail::logical_word(top, summary, start_bits, word) & mask;
            if (map != 0) {
                auto* block = reinterpret_cast<unsigned char*>(
                    base + (word * 64 + 63 - static_cast<size_t>(__builtin_clzll(map))) * kGranule);
                const size_t size_and_flags = fit_detail::load_size_and_flags(header_of(block));
                const size_t usable = size_and_flags & fit_detail::kSizeMask;
                if (at - reinterpret_cast<uintptr_t>(block) >= usable) {
                    return Found{}; // the next block's header (or the end sentinel)
                }
                return Found{block, usable,
                             static_cast<BlockUse>(size_and_flags & fit_detail::kUseMask)};
            }
            mask = ~uint64_t{0};
        }
    }
    return find(arena, address, reach);
}

} // namespace bedrock::heap
