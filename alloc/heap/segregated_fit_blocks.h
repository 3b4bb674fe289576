// SPDX-License-Identifier: MIT
// The block headers, free-list links and start bitmap of a SegregatedFit's arenas as the fit's
// own files (segregated_fit.cpp, segregated_fit_find.cpp, segregated_fit_check.cpp) read and
// write them: field access, addresses, the start bitmap's words and the seal of a free block's
// links. Layout, invariants and which accesses are lock-free: segregated_fit.h. Private to the
// fit: nothing outside it includes this file.
#pragma once

#include "heap/segregated_fit.h"

namespace bedrock::heap {
namespace fit_detail {

// Header fields. A header is addressed as its own pointer; its block starts 16 bytes later.
// Read plainly under the lock (no other thread writes them then); written with atomic stores,
// since find() may read size_and_flags without the lock.
inline size_t usable_of(const BlockHeader* header) {
    return header->size_and_flags & kSizeMask;
}
inline size_t use_bits(const BlockHeader* header) {
    return header->size_and_flags & kUseMask;
}
inline bool is_free(const BlockHeader* header) {
    return use_bits(header) == static_cast<size_t>(BlockUse::Free);
}
inline bool prev_is_free(const BlockHeader* header) {
    return (header->size_and_flags & kPrevFree) != 0;
}

inline void store_size_and_flags(BlockHeader* header, size_t value) {
    __atomic_store_n(&header->size_and_flags, value, __ATOMIC_RELAXED);
}
// Whether the block physically before a header's block is free (the TLSF prev-free flag).
enum class Previous { Taken, Free };
constexpr size_t flag_of(Previous previous) {
    return previous == Previous::Free ? kPrevFree : 0;
}
inline void set_header(BlockHeader* header, size_t usable, size_t use, Previous previous) {
    BEDROCK_DEBUG_ASSERT(is_aligned(usable, kGranule) && use <= kUseMask);
    store_size_and_flags(header, usable | flag_of(previous) | use);
}
inline void set_prev_free(BlockHeader* header, Previous previous) {
    store_size_and_flags(header, (header->size_and_flags & ~kPrevFree) | flag_of(previous));
}

inline uintptr_t address_of(const void* pointer) {
    return reinterpret_cast<uintptr_t>(pointer);
}
inline BlockHeader* header_at(uintptr_t address) {
    return reinterpret_cast<BlockHeader*>(address);
}
inline unsigned char* start_of(BlockHeader* header) {
    return reinterpret_cast<unsigned char*>(header) + kBlockHeaderBytes;
}
inline BlockHeader* next_of(const BlockHeader* header) {
    return header_at(address_of(header) + kBlockHeaderBytes + usable_of(header));
}
inline FreeLinks* links_of(BlockHeader* header) {
    return reinterpret_cast<FreeLinks*>(header + 1);
}
inline const FreeLinks* links_of(const BlockHeader* header) {
    return reinterpret_cast<const FreeLinks*>(header + 1);
}

inline BlockHeader* first_of(const Arena& arena) {
    return static_cast<BlockHeader*>(arena.first);
}
inline BlockHeader* sentinel_of(const Arena& arena) {
    return header_at(address_of(&arena) + arena.bytes - kBlockHeaderBytes);
}
// The start bitmap: bit g stands for the granule at arena base + 16 g, and counts only if the
// summary says its word is initialised. Every load and store of either level is atomic, since
// find() reads them without the lock; a summary bit is published (release) after the word it
// initialises and read (acquire) before it. Stores happen under the lock only, so a writer loads,
// modifies and stores: no read-modify-write instruction.
inline uint64_t load_word(const uint64_t* word) {
    return __atomic_load_n(word, __ATOMIC_RELAXED);
}
inline void store_word(uint64_t* word, uint64_t value) {
    __atomic_store_n(word, value, __ATOMIC_RELAXED);
}
inline uint64_t load_summary(const uint64_t* word) {
    return __atomic_load_n(word, __ATOMIC_ACQUIRE);
}
inline void publish_summary(uint64_t* word, uint64_t value) {
    __atomic_store_n(word, value, __ATOMIC_RELEASE);
}
// Bits 0 .. bit of a word.
inline uint64_t bits_up_to(size_t bit) {
    return ~uint64_t{0} >> (63 - bit);
}

inline size_t granule_of(const Arena& arena, const BlockHeader* header) {
    return (address_of(header) + kBlockHeaderBytes - address_of(&arena)) / kGranule;
}
inline bool start_bit(const Arena& arena, size_t granule) {
    return ((logical_word(arena, granule / 64) >> (granule % 64)) & 1) != 0;
}
// Whether `header` is a block's header or the end sentinel, from the start bitmap alone: what
// the fit's debug assertions check of a neighbour, whose own header a write past the end of the
// block before it may have made read free, taken or anything else.
inline bool starts_block(const Arena& arena, const BlockHeader* header) {
    return header == sentinel_of(arena) || start_bit(arena, granule_of(arena, header));
}

// The granule of the first block start after granule `granule` of `arena`, or the end sentinel's
// (the arena's end) if none: O(words walked).
inline size_t next_start_after(const Arena& arena, size_t granule) {
    const size_t end = arena.bytes / kGranule;
    for (size_t at = granule + 1; at < end; at = (at / 64 + 1) * 64) {
        const uint64_t bits = logical_word(arena, at / 64) >> (at % 64);
        if (bits != 0) {
            const size_t found = at + static_cast<size_t>(__builtin_ctzll(bits));
            return found < end ? found : end;
        }
    }
    return end;
}

// The header of the first block start after `header`'s block start (or the end sentinel), from
// the start bitmap alone, whatever `header` says: where a walk goes on past an overwritten header.
// O(words walked).
inline BlockHeader* next_start_header(const Arena& arena, const BlockHeader* header) {
    return header_at(address_of(&arena) +
                     next_start_after(arena, granule_of(arena, header)) * kGranule -
                     kBlockHeaderBytes);
}

} // namespace fit_detail

inline uint64_t SegregatedFit::seal_term(unsigned word, uintptr_t stored) const {
    const uint64_t mixed = stored * m_seal_keys[word]; // an odd key: a bijection
    const unsigned rotation = fit_detail::kSealRotations[word];
    return rotation == 0 ? mixed : mixed << rotation | mixed >> (64 - rotation);
}
inline uint64_t SegregatedFit::seal_term(fit_detail::LinkField which, uintptr_t stored) const {
    return seal_term(static_cast<unsigned>(which), stored);
}
inline uint64_t SegregatedFit::size_seal_term(const BlockHeader* node) const {
    return seal_term(fit_detail::kSealedSize, node->size_and_flags & ~fit_detail::kPrevFree);
}

// The terms start from a key (odd, so never 0): a free block whose three link words and header
// link all read 0 - a zeroed header over a slab's first words, say - does not pass for sealed.
inline uint64_t SegregatedFit::seal_of(const BlockHeader* node) const {
    const fit_detail::FreeLinks* links = links_of(node);
    return m_seal_keys[0] ^ seal_term(fit_detail::LinkField::Next, links->next) ^
           seal_term(fit_detail::LinkField::Prev, links->prev) ^
           seal_term(fit_detail::LinkField::Arena, links->arena) ^ size_seal_term(node);
}

inline bool SegregatedFit::confirmed(const Arena& arena, BlockHeader* header) {
    return header == fit_detail::sentinel_of(arena)
               ? sentinel_holds(header)
               : size_holds(arena, fit_detail::start_of(header));
}

} // namespace bedrock::heap
