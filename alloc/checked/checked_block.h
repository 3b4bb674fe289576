// SPDX-License-Identifier: MIT
// CheckedBlock: the header checked mode keeps for every checked block, and the red-zone and
// poison rules around it.
//
// In-band blocks (checked-mode blocks of the heap's core, BlockUse::Checked), with A the
// alignment asked for (at least 16):
//   [ CheckedBlock header, 128 bytes ][ pad to A ][ block: size bytes ][ tail red zone ... ]
//   ^ header = the core block's start            ^ block = header + max(128, A)     ^ zone_end
// The header's last kFrontZoneBytes and the padding are the front red zone, and the sealed fields
// (below) come right before it, so a longer underflow breaks the seal; the tail red zone runs
// from the block's end to zone_end, the end of the core block (>= kMinTailZone bytes). The
// header is found from the core block (heap/core.h), never from the pointer being freed.
// Guarded blocks keep the same header in their pool chunk's metadata page (guarded_pool.h);
// their red zones are the rest of their slot page (a platform page) around the block.
//
// Invariants, for a header in state Live or Quarantined:
//   seal == seal_of(header)           (block, size, zone_end, sequence, family, state and the
//                                      list links prev, next are intact)
//   front and tail red zones hold kRedZoneFill, unless a bug wrote there
//   Quarantined: the block's bytes hold kFreedPoison, unless a bug wrote there
// A Live or Quarantined header is linked in exactly one list (the live list or the quarantine),
// both guarded by the CheckedBlocks lock - except the oversized block, which waits apart
// (checked_blocks.h). An in-band header's links are its first words, right after the core's
// header of its block, where a long overflow of the block before it lands: a link is followed
// only from a header whose seal holds, and a list change seals again the neighbours it relinks.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/error_report.h"
#include "bedrock/heap_checks.h"
#include "bedrock/phys_range.h"
#include "bedrock/platform.h"
#include "report/call_trace.h"
#include "support/bits.h"

namespace bedrock::heap {

enum class Placement : uint8_t {
    InBand = 0,  // at the start of its core block
    Guarded = 1, // in a guard-page chunk's metadata page
};

enum class BlockState : uint32_t {
    Released = 0,             // given back to its slab / large run (or never used)
    Live = 0x4556494c,        // "LIVE"
    Quarantined = 0x52415551, // "QUAR"
};

inline constexpr size_t kFrontZoneBytes = 8;
// Every checked block is aligned to at least this (the heap's own minimum).
inline constexpr size_t kMinCheckedAlignment = 16;
// Larger requests are refused: far beyond any memory, and the layout arithmetic cannot overflow.
inline constexpr size_t kMaxCheckedSize = ~size_t{0} >> 2;
inline constexpr size_t kMinTailZone = 16;

// The bits of a block's allocation number: 2^56 checked allocations (over two years at 10^9 a
// second) before the numbers, and with them checkpoints, would wrap.
inline constexpr unsigned kSequenceBits = 56;
inline constexpr uint64_t kSequenceMask = (uint64_t{1} << kSequenceBits) - 1;

struct CheckedBlock {
    CheckedBlock* prev; // live list or quarantine
    CheckedBlock* next;
    CallTrace allocated;
    CallTrace freed;
    uint64_t sequence : kSequenceBits; // allocation number, for checkpoints
    Placement placement : 4;           // where the header is
    CallFamily family : 4;             // the calls that allocated it, and must free it
    BlockState state;
    uint32_t seal; // seal_of(*this)
    unsigned char* block;
    uint64_t size;      // bytes asked for
    uintptr_t zone_end; // end of the tail red zone
    uint8_t front_zone[kFrontZoneBytes];

    [[nodiscard]] uintptr_t block_end() const { return reinterpret_cast<uintptr_t>(block) + size; }
};
inline constexpr size_t kCheckedHeaderBytes = 128;
static_assert(sizeof(CheckedBlock) == kCheckedHeaderBytes);
static_assert(kCheckedHeaderBytes % 16 == 0, "in-band blocks keep the heap's alignment");

[[nodiscard]] inline uint32_t seal_of(const CheckedBlock& header) {
    uint64_t mix = reinterpret_cast<uintptr_t>(header.block) * 0x9e3779b97f4a7c15u;
    mix ^= reinterpret_cast<uintptr_t>(header.prev) + 0x2545f4914f6cdd1du + (mix << 6) + (mix >> 2);
    mix ^= reinterpret_cast<uintptr_t>(header.next) + 0x94d049bb133111ebu + (mix << 6) + (mix >> 2);
    mix ^= header.size + 0x632be59bd9b4e019u + (mix << 6) + (mix >> 2);
    mix ^= header.zone_end + 0x8cb92ba72f3d8dd7u + (mix << 6) + (mix >> 2);
    mix ^= header.sequence + (static_cast<uint64_t>(header.family) << kSequenceBits) + (mix << 6) +
           (mix >> 2);
    mix ^= static_cast<uint64_t>(header.state) + (mix << 6) + (mix >> 2);
    return static_cast<uint32_t>(mix ^ (mix >> 32));
}

// Whether the header starts its core block (else it is a guarded block's, out of band).
[[nodiscard]] inline bool is_in_band(const CheckedBlock& header) {
    return header.placement == Placement::InBand;
}

// Where an in-band block starts after its header, for alignment `alignment` (>= 16).
[[nodiscard]] constexpr size_t in_band_offset(size_t alignment) {
    return alignment > kCheckedHeaderBytes ? alignment : kCheckedHeaderBytes;
}

// Where the block's front red zone starts; it ends at the block. A guarded block's is the start
// of its slot page, one platform page (platform::page_granularity(), guarded_pool.h).
[[nodiscard]] inline unsigned char* front_zone_start(const CheckedBlock& header) {
    return is_in_band(header)
               ? const_cast<unsigned char*>(header.front_zone)
               : reinterpret_cast<unsigned char*>(align_down(
                     reinterpret_cast<uintptr_t>(header.block), platform::page_granularity()));
}

// Poison and red zones are verified a word at a time (the aligned middle), bytes at the edges.
inline constexpr uint64_t kBytesInWord = 8;

[[nodiscard]] inline uint64_t repeated(uint8_t fill) {
    return 0x0101010101010101u * fill;
}

// The aligned word at `p` (a load; memcpy keeps it free of type-based aliasing assumptions).
[[nodiscard]] inline uint64_t word_at(const unsigned char* p) {
    uint64_t word;
    __builtin_memcpy(&word, p, sizeof(word));
    return word;
}

// Index of the first byte in [begin, end) that differs from `fill`, or end - begin if none.
[[nodiscard]] inline size_t first_unlike(const unsigned char* begin, const unsigned char* end,
                                         uint8_t fill) {
    const unsigned char* p = begin;
    while (p < end && reinterpret_cast<uintptr_t>(p) % kBytesInWord != 0 && *p == fill) {
        ++p;
    }
    const uint64_t pattern = repeated(fill);
    while (end - p >= static_cast<ptrdiff_t>(kBytesInWord) && word_at(p) == pattern) {
        p += kBytesInWord;
    }
    while (p < end && *p == fill) {
        ++p;
    }
    return static_cast<size_t>(p - begin);
}

// Index one past the last byte in [begin, end) that differs from `fill`, or 0 if none.
[[nodiscard]] inline size_t last_unlike_end(const unsigned char* begin, const unsigned char* end,
                                            uint8_t fill) {
    const unsigned char* p = end;
    while (p > begin && reinterpret_cast<uintptr_t>(p) % kBytesInWord != 0 && p[-1] == fill) {
        --p;
    }
    const uint64_t pattern = repeated(fill);
    while (p - begin >= static_cast<ptrdiff_t>(kBytesInWord) &&
           word_at(p - kBytesInWord) == pattern) {
        p -= kBytesInWord;
    }
    while (p > begin && p[-1] == fill) {
        --p;
    }
    return static_cast<size_t>(p - begin);
}

} // namespace bedrock::heap
