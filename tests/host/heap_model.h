// SPDX-License-Identifier: MIT
// HeapModel: a reference model of one heap for the randomized differential test and the fuzz
// harness. It applies an operation (malloc, calloc, memalign, realloc, free) to the heap and to
// a model of the live blocks, and checks after each one that
//   - every block is aligned as asked and holds at least the size asked for;
//   - no two live blocks overlap (over their usable sizes);
//   - every block still holds the pattern derived from its own address (written at
//     allocation, verified before free and realloc; realloc must keep the common prefix);
//   - calloc memory is zero;
// and at the end that freeing everything leaves no block and no page held.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <map>
#include <string>
#include <vector>

#include "bedrock/heap.h"

namespace bedrock::test {

enum class HeapOp : uint8_t { Malloc, Calloc, Memalign, Realloc, Free };

class HeapModel {
public:
    // `slots`: the most blocks live at once; an operation names a slot. Calloc goes through the
    // C API, so the model makes `heap` the default heap.
    HeapModel(Heap& heap, size_t slots) : m_heap(heap), m_slots(slots) { set_default_heap(&heap); }

    // Applies `op` to slot `slot % slots`: an allocation into an empty slot, a free or realloc
    // of an occupied one (allocation ops on an occupied slot free it first). Returns false with
    // error() set at the first divergence.
    bool apply(HeapOp op, size_t slot, size_t size, size_t alignment);
    // Frees every live block and checks that the heap is empty and consistent.
    bool free_all();

    // The live block in slot `slot % slots` (null base: none), for harnesses that misuse it.
    struct LiveBlock {
        unsigned char* base = nullptr;
        size_t size = 0; // the size asked for
    };
    [[nodiscard]] LiveBlock block_in(size_t slot) const {
        const Block& block = m_slots[slot % m_slots.size()];
        return LiveBlock{block.base, block.size};
    }
    // Whether [begin, end) overlaps a live block's usable bytes.
    [[nodiscard]] bool overlaps_live(uintptr_t begin, uintptr_t end) const;
    // Whether a live block starts at `address`.
    [[nodiscard]] bool is_live_start(uintptr_t address) const {
        return m_by_address.count(address) != 0;
    }
    // Checks every live block's pattern and usable size (misuse must leave them intact).
    bool verify_all();
    // Drops the live block starting at `address` from the model without freeing it (a harness
    // that damaged the heap's header of that block frees it itself); returns whether there was
    // one.
    bool forget(uintptr_t address);

    [[nodiscard]] const std::string& error() const { return m_error; }
    [[nodiscard]] uint64_t failed_allocations() const { return m_failed_allocations; }
    [[nodiscard]] size_t live() const { return m_by_address.size(); }

private:
    struct Block {
        unsigned char* base = nullptr;
        size_t size = 0;
    };

    bool fail(const std::string& message);
    bool admit(const Block& block, size_t alignment, bool zeroed);
    bool release(size_t slot);
    bool verify(const Block& block, size_t length, uintptr_t pattern_address);
    static void fill(const Block& block);

    Heap& m_heap;
    std::vector<Block> m_slots;
    std::map<uintptr_t, size_t> m_by_address; // start -> usable end
    std::string m_error;
    uint64_t m_failed_allocations = 0;
};

} // namespace bedrock::test
