// SPDX-License-Identifier: MIT
// HeapModel: see heap_model.h.
#include "heap_model.h"

#include <stdio.h>
#include <string.h>

#include "bedrock/heap_checks.h"
#include "bedrock/malloc.h"

namespace bedrock::test {
namespace {

// The pattern byte at `offset` in a block that was allocated at `address`.
unsigned char pattern_byte(uintptr_t address, size_t offset) {
    const uint64_t word = (address ^ (offset >> 3)) * 0x9E3779B97F4A7C15ULL;
    return static_cast<unsigned char>(word >> (8 * (offset & 7)));
}

std::string hex(const void* pointer) {
    char text[32];
    snprintf(text, sizeof(text), "%p", pointer);
    return text;
}

} // namespace

bool HeapModel::fail(const std::string& message) {
    if (m_error.empty()) {
        m_error = message;
    }
    return false;
}

void HeapModel::fill(const Block& block) {
    const auto address = reinterpret_cast<uintptr_t>(block.base);
    for (size_t offset = 0; offset < block.size; ++offset) {
        block.base[offset] = pattern_byte(address, offset);
    }
}

bool HeapModel::verify(const Block& block, size_t length, uintptr_t pattern_address) {
    for (size_t offset = 0; offset < length; ++offset) {
        if (block.base[offset] != pattern_byte(pattern_address, offset)) {
            return fail("block " + hex(block.base) + " of " + std::to_string(block.size) +
                        " bytes: pattern damaged at offset " + std::to_string(offset));
        }
    }
    return true;
}

bool HeapModel::admit(const Block& block, size_t alignment, bool zeroed) {
    const auto start = reinterpret_cast<uintptr_t>(block.base);
    if (alignment < kHeapMinAlignment) {
        alignment = kHeapMinAlignment;
    }
    if ((start & (alignment - 1)) != 0) {
        return fail("block " + hex(block.base) + " not aligned to " + std::to_string(alignment));
    }
    const size_t usable = heap_usable_size(m_heap, block.base);
    // A checked block's usable size is exactly its size, 0 included.
    if (usable < block.size || (usable == 0 && heap_check_level(m_heap) == CheckLevel::Off)) {
        return fail("block " + hex(block.base) + " usable " + std::to_string(usable) +
                    " < requested " + std::to_string(block.size));
    }
    const uintptr_t end = start + usable;
    auto next = m_by_address.lower_bound(start);
    if (next != m_by_address.end() && next->first < end) {
        return fail("block " + hex(block.base) + " overlaps a live block at " +
                    hex(reinterpret_cast<void*>(next->first)));
    }
    if (next != m_by_address.begin() && std::prev(next)->second > start) {
        return fail("block " + hex(block.base) + " overlaps the live block before it");
    }
    if (zeroed) {
        for (size_t offset = 0; offset < block.size; ++offset) {
            if (block.base[offset] != 0) {
                return fail("calloc block " + hex(block.base) + " not zero at " +
                            std::to_string(offset));
            }
        }
    }
    m_by_address.emplace(start, end);
    return true;
}

bool HeapModel::release(size_t slot) {
    Block& block = m_slots[slot];
    if (!verify(block, block.size, reinterpret_cast<uintptr_t>(block.base))) {
        return false;
    }
    m_by_address.erase(reinterpret_cast<uintptr_t>(block.base));
    heap_free(m_heap, block.base);
    block = Block{};
    return true;
}

bool HeapModel::forget(uintptr_t address) {
    if (m_by_address.erase(address) == 0) {
        return false;
    }
    for (Block& block : m_slots) {
        if (reinterpret_cast<uintptr_t>(block.base) == address) {
            block = Block{};
        }
    }
    return true;
}

bool HeapModel::apply(HeapOp op, size_t slot, size_t size, size_t alignment) {
    slot %= m_slots.size();
    Block& block = m_slots[slot];
    if (op == HeapOp::Free) {
        return block.base == nullptr || release(slot);
    }
    if (op == HeapOp::Realloc && block.base != nullptr) {
        const Block old = block;
        auto* moved = static_cast<unsigned char*>(heap_reallocate(m_heap, old.base, size));
        if (moved == nullptr) {
            ++m_failed_allocations;
            return verify(old, old.size, reinterpret_cast<uintptr_t>(old.base));
        }
        const size_t kept = old.size < size ? old.size : size;
        m_by_address.erase(reinterpret_cast<uintptr_t>(old.base));
        block = Block{moved, size};
        if (!verify(block, kept, reinterpret_cast<uintptr_t>(old.base)) ||
            !admit(block, 0, false)) {
            return false;
        }
        fill(block);
        return true;
    }
    if (block.base != nullptr && !release(slot)) {
        return false;
    }
    void* base = nullptr;
    switch (op) {
    case HeapOp::Malloc:
    case HeapOp::Realloc:
        base = op == HeapOp::Malloc ? heap_allocate(m_heap, size)
                                    : heap_reallocate(m_heap, nullptr, size);
        alignment = 0;
        break;
    case HeapOp::Calloc:
        // Through the C API (this heap is the default heap), in two factors to exercise the
        // multiplication.
        base = bedrock_calloc(size / 16 + 1, 16);
        size = (size / 16 + 1) * 16;
        alignment = 0;
        break;
    case HeapOp::Memalign:
        base = heap_allocate(m_heap, size, alignment);
        break;
    case HeapOp::Free:
        break;
    }
    if (base == nullptr) {
        ++m_failed_allocations;
        return true;
    }
    block = Block{static_cast<unsigned char*>(base), size};
    if (!admit(block, alignment, op == HeapOp::Calloc)) {
        return false;
    }
    fill(block);
    return true;
}

bool HeapModel::overlaps_live(uintptr_t begin, uintptr_t end) const {
    auto next = m_by_address.lower_bound(begin);
    if (next != m_by_address.end() && next->first < end) {
        return true;
    }
    return next != m_by_address.begin() && std::prev(next)->second > begin;
}

bool HeapModel::verify_all() {
    for (const Block& block : m_slots) {
        if (block.base == nullptr) {
            continue;
        }
        const auto start = reinterpret_cast<uintptr_t>(block.base);
        const auto found = m_by_address.find(start);
        if (found == m_by_address.end() ||
            heap_usable_size(m_heap, block.base) != found->second - start) {
            return fail("live block " + hex(block.base) + " lost its usable size");
        }
        if (!verify(block, block.size, start)) {
            return false;
        }
    }
    return true;
}

bool HeapModel::free_all() {
    for (size_t slot = 0; slot < m_slots.size(); ++slot) {
        if (m_slots[slot].base != nullptr && !release(slot)) {
            return false;
        }
    }
    if (!heap_check(m_heap)) {
        return fail("heap_check() fails after freeing everything");
    }
    const HeapStatistics statistics = heap_statistics(m_heap);
    if (statistics.blocks_in_use != 0 || statistics.bytes_in_use != 0) {
        return fail(std::to_string(statistics.blocks_in_use) + " blocks still in use");
    }
    heap_flush_quarantine(m_heap); // checked mode's freed blocks, held to catch writes after free
    heap_trim(m_heap);
    const HeapStatistics trimmed = heap_statistics(m_heap);
    for (const SizeClassStatistics& cls : trimmed.classes) {
        if (cls.slabs != 0) {
            return fail(std::to_string(cls.slabs) + " slabs of " + std::to_string(cls.block_size) +
                        " bytes still held after trim");
        }
    }
    if (trimmed.medium_blocks != 0 || trimmed.large_blocks != 0 || trimmed.large_pages != 0) {
        return fail("medium or large blocks still held after trim");
    }
    return true;
}

} // namespace bedrock::test
