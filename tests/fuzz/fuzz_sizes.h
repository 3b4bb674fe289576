// SPDX-License-Identifier: MIT
// The fuzz harnesses' size decoding: four bytes of an operation give a request size, spread over
// tiny, small, medium and large blocks so every part of the heap is reached.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/heap.h"

namespace bedrock::test {

// bytes[0] % 4 picks the range: below 257, up to the largest small block, below `medium`, below
// `large`; bytes[1..3] (little end first) give the size within it.
inline size_t decode_size(const uint8_t* bytes, size_t medium, size_t large) {
    const size_t raw = bytes[1] | (size_t{bytes[2]} << 8) | (size_t{bytes[3]} << 16);
    switch (bytes[0] % 4) {
    case 0:
        return raw % 257;
    case 1:
        return raw % (kMaxSmallBlock + 1);
    case 2:
        return raw % medium;
    default:
        return raw % large;
    }
}

} // namespace bedrock::test
