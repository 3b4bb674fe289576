// SPDX-License-Identifier: MIT
// BlockPattern: the bytes the SMP and interrupt tests write into a block they own and check
// before freeing it, so a block handed out twice, or freed memory reused while still live, shows
// up as a mismatch. The pattern depends on the block's address, the offset and a tag (the
// allocating CPU and sequence), so a block with another block's content fails too. Blocks up to
// kDenseLimit bytes are written whole; larger ones at both ends and one word per page in between
// (enough to catch overlap, cheap enough for multi-MiB blocks).
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace bedrock::kernel {

class BlockPattern {
public:
    static constexpr size_t kDenseLimit = 4096;
    static constexpr size_t kEdge = 256;
    static constexpr size_t kStride = 4096;

    static void fill(void* block, size_t size, uint64_t tag) {
        visit(block, size, tag, [](unsigned char& byte, unsigned char value) { byte = value; });
    }
    [[nodiscard]] static bool intact(const void* block, size_t size, uint64_t tag) {
        bool ok = true;
        visit(const_cast<void*>(block), size, tag,
              [&ok](unsigned char& byte, unsigned char value) { ok = ok && byte == value; });
        return ok;
    }

private:
    static unsigned char value(uintptr_t address, size_t offset, uint64_t tag) {
        return static_cast<unsigned char>(((address >> 4) ^ offset ^ (tag * 0x9E37)) * 0x9D);
    }
    template <class Visit>
    static void visit(void* block, size_t size, uint64_t tag, Visit visit_byte) {
        auto* bytes = static_cast<unsigned char*>(block);
        const auto address = reinterpret_cast<uintptr_t>(block);
        for (size_t offset = 0; offset < size;) {
            visit_byte(bytes[offset], value(address, offset, tag));
            const bool dense = size <= kDenseLimit || offset < kEdge || size - offset <= kEdge;
            offset = dense                             ? offset + 1
                     : offset + kStride < size - kEdge ? offset + kStride
                                                       : size - kEdge;
        }
    }
};

} // namespace bedrock::kernel
