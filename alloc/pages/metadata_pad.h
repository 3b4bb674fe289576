// SPDX-License-Identifier: MIT
// The pad at the front of each of the page frame allocator's metadata blocks (init()'s, and each
// add_range()'s): the page before a block may be anyone's, and a write past its end lands on the
// block's first bytes. Those hold nothing the allocator follows, only a known pattern that
// check() expects, so that such a write of up to kMetadataPadBytes is found, never followed as a
// CPU page list or a free bitmap. Owns nothing but the pattern.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace bedrock::pages {

// Bytes of the pad: a whole cache line, so that the CPU page lists after it keep theirs.
inline constexpr size_t kMetadataPadBytes = 64;
inline constexpr size_t kMetadataPadWords = kMetadataPadBytes / sizeof(uint64_t);
// Word i of the pad: a fixed pattern (the allocator has no secret), different in every word.
constexpr uint64_t metadata_pad_word(size_t index) {
    return 0x6272706164000000u + index; // "brpad" and the word's index
}

inline void write_metadata_pad(void* block) {
    auto* words = static_cast<uint64_t*>(block);
    for (size_t i = 0; i < kMetadataPadWords; ++i) {
        words[i] = metadata_pad_word(i);
    }
}

[[nodiscard]] inline bool metadata_pad_holds(const void* block) {
    const auto* words = static_cast<const uint64_t*>(block);
    for (size_t i = 0; i < kMetadataPadWords; ++i) {
        if (words[i] != metadata_pad_word(i)) {
            return false;
        }
    }
    return true;
}

} // namespace bedrock::pages
