// CheckedBlock: the header checked mode keeps for every checked block, and the red-zone and
// poison rules around it.
//
// In-band blocks (checked slabs and checked large blocks):
//   [ CheckedBlock header, 128 bytes ][ block: size bytes ][ tail red zone ... ]
//   ^ header                           ^ block = header + 128                  ^ zone_end
// The header's last kFrontZoneBytes are the front red zone, and the sealed fields (below) come
// right before it, so a longer underflow breaks the seal; the tail red zone runs from the
// block's end to zone_end (the end of the slab block or large run: >= kMinTailZone bytes).
// Guarded blocks keep the same header in their pool chunk's metadata page (guarded_pool.h);
// their red zones are the rest of their page around the block.
//
// Invariants, for a header in state Live or Quarantined:
//   seal == seal_of(header)           (block, size, zone_end, sequence, state are intact)
//   front and tail red zones hold kRedZoneFill, unless a bug wrote there
//   Quarantined: the block's bytes hold kFreedPoison, unless a bug wrote there
// A Live or Quarantined header is linked in exactly one list (the live list or the quarantine),
// both guarded by the CheckedBlocks lock.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/error_report.h"
#include "bedrock/heap_checks.h"
#include "bedrock/phys_range.h"

namespace bedrock::heap {

enum class BlockState : uint32_t {
    Released = 0,             // given back to its slab / large run (or never used)
    Live = 0x4556494c,        // "LIVE"
    Quarantined = 0x52415551, // "QUAR"
};

inline constexpr size_t kFrontZoneBytes = 8;
inline constexpr size_t kMinTailZone = 16;

struct CheckedBlock {
    CheckedBlock* prev; // live list or quarantine
    CheckedBlock* next;
    CallTrace allocated;
    CallTrace freed;
    uint64_t sequence; // allocation number, for checkpoints
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
static_assert(kCheckedHeaderBytes % 64 == 0, "in-band blocks stay aligned to their class");

[[nodiscard]] inline uint32_t seal_of(const CheckedBlock& header) {
    uint64_t mix = reinterpret_cast<uintptr_t>(header.block) * 0x9e3779b97f4a7c15u;
    mix ^= header.size + 0x632be59bd9b4e019u + (mix << 6) + (mix >> 2);
    mix ^= header.zone_end + 0x8cb92ba72f3d8dd7u + (mix << 6) + (mix >> 2);
    mix ^= header.sequence + (mix << 6) + (mix >> 2);
    mix ^= static_cast<uint64_t>(header.state) + (mix << 6) + (mix >> 2);
    return static_cast<uint32_t>(mix ^ (mix >> 32));
}

// Whether the header sits right before its block (else it is a guarded block's, out of band).
[[nodiscard]] inline bool is_in_band(const CheckedBlock& header) {
    return header.block == reinterpret_cast<const unsigned char*>(&header + 1);
}

// Where the block's front red zone starts; it ends at the block.
[[nodiscard]] inline unsigned char* front_zone_start(const CheckedBlock& header) {
    return is_in_band(header) ? const_cast<unsigned char*>(header.front_zone)
                              : reinterpret_cast<unsigned char*>(
                                    reinterpret_cast<uintptr_t>(header.block) & ~(kPageSize - 1));
}

// The in-band header of a checked block starting at `block`.
[[nodiscard]] inline CheckedBlock* in_band_header(const void* block) {
    return reinterpret_cast<CheckedBlock*>(
        const_cast<unsigned char*>(static_cast<const unsigned char*>(block)) - kCheckedHeaderBytes);
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
