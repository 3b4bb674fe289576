// Slab: block carving, the free list and the allocated bitmap (invariants in slab.h).
#include "slab.h"

#include "bedrock/assert.h"

namespace bedrock::heap {
namespace {

uintptr_t first_block(const Slab* slab) {
    return reinterpret_cast<uintptr_t>(slab) + slab->layout().first_offset;
}

// The block index of `offset` bytes past block 0, exact for offset < kSlabBytes: the
// reciprocal overestimates 1/size by less than 2^-32, which moves offset/size by less than
// kSlabBytes / 2^32 < 1 / kMaxSmallSize, too little to cross an integer.
uint32_t index_of(const SlabLayout& layout, uintptr_t offset) {
    return static_cast<uint32_t>((uint64_t{offset} * layout.reciprocal) >> 32);
}
static_assert(kSlabBytes * kMaxSmallSize < (uint64_t{1} << 32));

bool bit_is_set(const uint64_t* bitmap, uint32_t index) {
    return ((bitmap[index / 64] >> (index % 64)) & 1) != 0;
}

} // namespace

Slab* slab_init(void* base, uint64_t source_address, Heap* owner, unsigned class_index) {
    auto* slab = static_cast<Slab*>(base);
    slab->run = RunHeader{kRunMagic, RunKind::Slab, static_cast<uint8_t>(class_index),
                          0,         owner,         source_address};
    slab->next = nullptr;
    slab->prev = nullptr;
    slab->free_list = nullptr;
    slab->used = 0;
    slab->fresh = 0;
    slab->unused = 0;
    const uint32_t words = (slab->layout().block_count + 63) / 64;
    for (uint32_t word = 0; word < words; ++word) {
        slab->bitmap()[word] = 0;
    }
    return slab;
}

void* slab_take(Slab* slab) {
    const SlabLayout& layout = slab->layout();
    uint32_t index;
    void* block;
    if (slab->free_list != nullptr) {
        FreeBlock* head = slab->free_list;
        slab->free_list = head->next;
        block = head;
        index = index_of(layout, reinterpret_cast<uintptr_t>(block) - first_block(slab));
    } else {
        BEDROCK_DEBUG_ASSERT(slab->fresh < layout.block_count);
        index = slab->fresh++;
        block = reinterpret_cast<void*>(first_block(slab) + size_t{index} * layout.block_size);
    }
    slab->bitmap()[index / 64] |= uint64_t{1} << (index % 64);
    ++slab->used;
    return block;
}

SlabFree slab_give(Slab* slab, void* block) {
    const SlabLayout& layout = slab->layout();
    const uintptr_t offset = reinterpret_cast<uintptr_t>(block) - first_block(slab);
    const uint32_t index = index_of(layout, offset);
    if (offset >= kSlabBytes || index >= layout.block_count ||
        size_t{index} * layout.block_size != offset) {
        return SlabFree::NotABlock;
    }
    if (!bit_is_set(slab->bitmap(), index)) {
        return SlabFree::AlreadyFree;
    }
    slab->bitmap()[index / 64] &= ~(uint64_t{1} << (index % 64));
    auto* freed = static_cast<FreeBlock*>(block);
    freed->next = slab->free_list;
    slab->free_list = freed;
    --slab->used;
    return SlabFree::Freed;
}

bool slab_check(const Slab* slab) {
    const SlabLayout& layout = slab->layout();
    if (slab->run.magic != kRunMagic || slab->run.kind != RunKind::Slab ||
        slab->fresh > layout.block_count || slab->used > slab->fresh) {
        return false;
    }
    uint32_t set_bits = 0;
    for (uint32_t word = 0; word < (layout.block_count + 63) / 64; ++word) {
        set_bits += static_cast<uint32_t>(__builtin_popcountll(slab->bitmap()[word]));
    }
    uint32_t free_blocks = 0;
    for (const FreeBlock* block = slab->free_list; block != nullptr; block = block->next) {
        const uintptr_t offset = reinterpret_cast<uintptr_t>(block) - first_block(slab);
        const uint32_t index = index_of(layout, offset);
        if (index >= slab->fresh || size_t{index} * layout.block_size != offset ||
            bit_is_set(slab->bitmap(), index) || ++free_blocks > layout.block_count) {
            return false;
        }
    }
    return set_bits == slab->used && slab->used + free_blocks == slab->fresh;
}

} // namespace bedrock::heap
