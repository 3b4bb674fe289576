// SPDX-License-Identifier: MIT
// Size classes: which block size serves a small request, and how a slab of each class is laid
// out. Owns the class table (compile-time constants, no state, no lock).
//
// Classes: 16, 32, ..., 128 in steps of 16, then four classes per doubling up to kMaxSmallSize
// (2048):
//   class(i) = 16 * (i + 1)                                  for i < 8
//   class(i) = (128 << g) + (k + 1) * (32 << g)              for i = 8 + 4g + k, k < 4
// so every request r <= kMaxSmallSize gets class_size(class_of(r)) >= max(r, 1), and above 128
// bytes the rounding loses less than a fifth of the block:
//   class_size(class_of(r)) - r < class_size(class_of(r)) / 5          (r > 128)
// Requests above kMaxSmallSize are medium blocks, sized to 16 bytes (segregated_fit.h): the
// classes stop where a class's rounding would waste more than a medium block's header.
//
// A slab is one medium block of slab_bytes(i) carved into equal blocks (see slab.h):
//   [ Slab header | allocated bitmap | pad to 16 ][ block 0 ][ block 1 ] ... [ tail < size ]
//   first_offset + blocks * size <= slab_bytes < first_offset + (blocks + 1) * size
// Slabs are small and depend on the class (about 2 KiB, at least two blocks), so one slab per
// class costs about 54 KiB in all, and a heap starts in a region of about 8 KiB (room for its
// state and the largest slab, kMaxSlabBytes).
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace bedrock::heap {

inline constexpr size_t kMinBlockSize = 16;   // also the alignment malloc() guarantees
inline constexpr size_t kMaxSmallSize = 2048; // larger requests are medium or large blocks
inline constexpr unsigned kSizeClassCount = 24;
inline constexpr unsigned kMinBlocksPerSlab = 2;
inline constexpr size_t kSmallSlabBytes = 2048;
// Bytes of the fixed slab header before the bitmap (checked against sizeof(Slab) in slab.cpp).
inline constexpr size_t kSlabHeaderBytes = 32;

// The block size of class `index` (< kSizeClassCount).
constexpr size_t class_size(unsigned index) {
    if (index < 8) {
        return kMinBlockSize * (index + 1);
    }
    const unsigned group = (index - 8) / 4;
    const unsigned step = (index - 8) % 4;
    return (size_t{128} << group) + (step + 1) * (size_t{32} << group);
}

// The smallest class whose blocks hold `size` bytes (size <= kMaxSmallSize; 0 maps to class 0),
// found by scanning the classes: what the table below is built from.
constexpr unsigned smallest_class_holding(size_t size) {
    unsigned index = 0;
    while (class_size(index) < size) {
        ++index;
    }
    return index;
}

// Every class size is a multiple of kMinBlockSize, so the class of a request depends only on its
// size rounded up to 16 bytes (its granule): one byte per granule, 0 to kMaxSmallSize / 16.
struct ClassOfGranule {
    uint8_t index[kMaxSmallSize / kMinBlockSize + 1];
};
constexpr ClassOfGranule class_of_granule() {
    ClassOfGranule table{};
    for (size_t granule = 0; granule <= kMaxSmallSize / kMinBlockSize; ++granule) {
        table.index[granule] =
            static_cast<uint8_t>(smallest_class_holding(granule * kMinBlockSize));
    }
    return table;
}
inline constexpr ClassOfGranule kClassOfGranule = class_of_granule();

// The smallest class whose blocks hold `size` bytes (size <= kMaxSmallSize; 0 maps to class 0).
// O(1): one table load, on the malloc fast path.
constexpr unsigned class_of(size_t size) {
    return kClassOfGranule.index[(size + kMinBlockSize - 1) / kMinBlockSize];
}

struct SlabLayout {
    uint32_t block_size;
    uint32_t first_offset; // offset of block 0 from the slab's start
    uint32_t block_count;
    uint32_t slab_bytes; // the medium block a slab takes
    uint32_t reciprocal; // ceil(2^32 / block_size): offset / size as a multiply, see slab.h
};

constexpr SlabLayout slab_layout(unsigned index) {
    const size_t size = class_size(index);
    size_t blocks = kSmallSlabBytes / size;
    blocks = blocks < kMinBlocksPerSlab ? kMinBlocksPerSlab : blocks;
    const size_t bitmap_bytes = ((blocks + 63) / 64) * 8;
    const size_t first =
        (kSlabHeaderBytes + bitmap_bytes + kMinBlockSize - 1) & ~(kMinBlockSize - 1);
    return SlabLayout{static_cast<uint32_t>(size), static_cast<uint32_t>(first),
                      static_cast<uint32_t>(blocks), static_cast<uint32_t>(first + blocks * size),
                      static_cast<uint32_t>((uint64_t{1} << 32) / size + 1)};
}

// The table, computed at compile time.
extern const SlabLayout kSlabLayouts[kSizeClassCount];

// The largest slab: how far back from a block the start of its slab can be.
inline constexpr size_t kMaxSlabBytes = kMinBlocksPerSlab * kMaxSmallSize + 64;
// The smallest slab of any class.
constexpr size_t smallest_slab_bytes() {
    size_t least = kMaxSlabBytes;
    for (unsigned index = 0; index < kSizeClassCount; ++index) {
        least = slab_layout(index).slab_bytes < least ? slab_layout(index).slab_bytes : least;
    }
    return least;
}
inline constexpr size_t kMinSlabBytes = smallest_slab_bytes();
static_assert(kMinSlabBytes == 1584);

static_assert(class_size(kSizeClassCount - 1) == kMaxSmallSize);
static_assert(kSizeClassCount < 256, "a class index fits the table's bytes");
static_assert(
    [] {
        for (unsigned index = 0; index < kSizeClassCount; ++index) {
            if (class_size(index) % kMinBlockSize != 0) {
                return false;
            }
        }
        return true;
    }(),
    "every class size is a whole number of granules, so class_of() may round to one");
static_assert(class_of(kMaxSmallSize) == kSizeClassCount - 1);
static_assert(class_of(129) == 8 && class_size(8) == 160);
static_assert(class_of(257) == 12 && class_size(12) == 320);

} // namespace bedrock::heap
