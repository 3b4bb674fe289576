// SPDX-License-Identifier: MIT
// OverflowPad: words at the front of metadata that may follow anyone's memory (a page the page
// frame allocator handed out, a large run's last page), where a write past the end of that
// memory lands first. Nothing reads a pad but the checks: it holds a function of a key and its
// own address, so that a write of up to its size is found (holds() false) and never followed.
// Owns only its words; the owner of the metadata writes and checks it.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace bedrock {

template <size_t kWords>
struct OverflowPad {
    uint64_t words[kWords];

    void write(uint64_t key) {
        for (size_t i = 0; i < kWords; ++i) {
            words[i] = expected(key, i);
        }
    }
    [[nodiscard]] bool holds(uint64_t key) const {
        for (size_t i = 0; i < kWords; ++i) {
            if (words[i] != expected(key, i)) {
                return false;
            }
        }
        return true;
    }

private:
    [[nodiscard]] uint64_t expected(uint64_t key, size_t index) const {
        return key ^ (reinterpret_cast<uintptr_t>(this) + index);
    }
};

} // namespace bedrock
