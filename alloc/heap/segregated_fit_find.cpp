// SPDX-License-Identifier: MIT
// SegregatedFit::find(): the block holding an address, from an arena's start bitmap alone, walking
// down its three levels, whose places it derives from the arena's bounds (layout and why it may
// run without the lock: segregated_fit.h).
#include "heap/segregated_fit_blocks.h"

namespace bedrock::heap {

using namespace fit_detail;

namespace {

// The last initialised summary word in [lowest, word] (word >= lowest), or kNoWord. One step
// per top word: 64 uninitialised summary words are skipped at once.
constexpr size_t kNoWord = ~size_t{0};
size_t last_initialised_summary(const ArenaPlaces& arena, size_t word, size_t lowest) {
    const uint64_t* top = arena.top;
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
size_t last_initialised_word(const ArenaPlaces& arena, size_t word, size_t lowest) {
    for (size_t index = word / 64;; --index) {
        index = last_initialised_summary(arena, index, lowest / 64);
        if (index == kNoWord) {
            return kNoWord;
        }
        // Only `word`'s own summary word is cut at `word`.
        const uint64_t mask = index == word / 64 ? bits_up_to(word % 64) : ~uint64_t{0};
        const uint64_t initialised = load_summary(&arena.summary[index]) & mask;
        if (initialised != 0) {
            const size_t found = index * 64 + floor_log2(initialised);
            return found >= lowest ? found : kNoWord;
        }
        if (index == lowest / 64) {
            return kNoWord;
        }
    }
}

} // namespace

unsigned char* SegregatedFit::start_at_or_below(ArenaBounds arena, const void* address,
                                                size_t reach) {
    const uintptr_t at = address_of(address);
    const uintptr_t base = arena.base;
    const ArenaPlaces places = places_of(arena);
    const uintptr_t first_start = address_of(places.first) + kBlockHeaderBytes;
    BEDROCK_DEBUG_ASSERT(at - base < arena.bytes);
    if (at < first_start || at - base >= arena.bytes) {
        return nullptr; // the arena's header, start bitmap or first block header
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
        word = last_initialised_word(places, word, lowest_granule / 64);
        if (word == kNoWord) {
            return nullptr;
        }
        map = load_word(&places.start[word]);
        if (word == granule / 64) {
            map &= bits_up_to(granule % 64);
        }
        if (map != 0) {
            break;
        }
        if (word == lowest_granule / 64) {
            return nullptr;
        }
        --word;
    }
    const size_t start_granule = word * 64 + floor_log2(map);
    if (start_granule < lowest_granule) {
        return nullptr;
    }
    return reinterpret_cast<unsigned char*>(base + start_granule * kGranule);
}

SegregatedFit::Found SegregatedFit::find(ArenaBounds arena, const void* address, size_t reach) {
    unsigned char* block = start_at_or_below(arena, address, reach);
    if (block == nullptr) {
        return Found{};
    }
    // The bitmap named a real block start: only now is a header read, that block's own.
    const uintptr_t at = address_of(address);
    const BlockHeader* header = header_of(block);
    const size_t size_and_flags = load_size_and_flags(header);
    const size_t usable = size_and_flags & kSizeMask;
    if (at - address_of(block) >= usable) {
        return Found{}; // the next block's header (or the end sentinel)
    }
    return Found{block, usable, static_cast<BlockUse>(size_and_flags & kUseMask)};
}

} // namespace bedrock::heap
