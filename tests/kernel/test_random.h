// SPDX-License-Identifier: MIT
// TestRandom: the in-kernel tests' deterministic generator (xorshift64*). A test prints or fixes
// its seed, so any failure replays exactly.
#pragma once

#include <stdint.h>

namespace bedrock::kernel {

class TestRandom {
public:
    explicit TestRandom(uint64_t seed) : m_state(seed | 1) {}
    uint64_t next() {
        m_state ^= m_state >> 12;
        m_state ^= m_state << 25;
        m_state ^= m_state >> 27;
        return m_state * 0x2545F4914F6CDD1DULL;
    }

private:
    uint64_t m_state;
};

} // namespace bedrock::kernel
