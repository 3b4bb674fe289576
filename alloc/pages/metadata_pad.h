// SPDX-License-Identifier: MIT
// The pad at the front of each of the page frame allocator's metadata blocks (init()'s, and each
// add_range()'s): the page before a block may be anyone's, and a write past its end lands on the
// block's first bytes. They hold nothing the allocator follows, only an OverflowPad that check()
// expects, so that such a write of up to kMetadataPadBytes is found, never followed as a CPU page
// list or a free bitmap.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "support/overflow_pad.h"

namespace bedrock::pages {

// A whole cache line, so that the CPU page lists after it keep theirs.
using MetadataPad = OverflowPad<8>;
inline constexpr size_t kMetadataPadBytes = sizeof(MetadataPad);
inline constexpr size_t kMetadataPadWords = kMetadataPadBytes / sizeof(uint64_t);
static_assert(kMetadataPadBytes == 64);
// The pad's key: fixed (the allocator has no secret), "brpad".
inline constexpr uint64_t kMetadataPadKey = 0x6272706164000000u;

inline void write_metadata_pad(void* block) {
    static_cast<MetadataPad*>(block)->write(kMetadataPadKey);
}

[[nodiscard]] inline bool metadata_pad_holds(const void* block) {
    return static_cast<const MetadataPad*>(block)->holds(kMetadataPadKey);
}

} // namespace bedrock::pages
