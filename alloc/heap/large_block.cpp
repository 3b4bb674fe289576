// Large blocks: one page run per block (layout and invariants in large_block.h).
#include "heap/large_block.h"

#include "bedrock/assert.h"

namespace bedrock::heap {

void* LargeBlocks::allocate(PageSource& source, Heap* owner, size_t size, size_t alignment,
                            size_t prefix, RunKind kind) {
    BEDROCK_DEBUG_ASSERT(prefix <= kMaxPrefix);
    if (size > kMaxSize || alignment > kMaxSize) {
        return nullptr;
    }
    const size_t run_offset = alignment > kSlabBytes ? alignment - kSlabBytes : 0;
    const size_t block_offset =
        alignment > kSlabBytes ? kSlabBytes
                               : (sizeof(LargeBlock) + prefix + alignment - 1) & ~(alignment - 1);
    // Even a zero-byte request gets a minimum block, as malloc(0) does.
    const size_t payload = size < kMinBlockSize ? kMinBlockSize : size;
    const size_t pages = (run_offset + block_offset + payload + kPageSize - 1) / kPageSize;
    const PageRun run = source.take(pages, alignment > kSlabBytes ? alignment : size_t{kSlabBytes});
    if (run.base == nullptr) {
        return nullptr;
    }
    auto* header =
        reinterpret_cast<LargeBlock*>(static_cast<unsigned char*>(run.base) + run_offset);
    header->run = RunHeader{kRunMagic, kind, 0, 0, owner, run.source_address};
    header->pages = pages;
    header->run_offset = static_cast<uint32_t>(run_offset);
    header->block_offset = static_cast<uint32_t>(block_offset);
    header->requested = size;
    header->prev = nullptr;
    {
        LockGuard guard(m_lock);
        header->next = m_list;
        if (m_list != nullptr) {
            m_list->prev = header;
        }
        m_list = header;
        ++m_totals.blocks;
        ++m_totals.allocations;
        m_totals.pages += pages;
        m_totals.bytes_in_use += header->usable_size();
        m_totals.bytes_requested += size;
    }
    return reinterpret_cast<unsigned char*>(header) + block_offset;
}

bool LargeBlocks::free(PageSource& source, LargeBlock* header, void* block) {
    if (!is_block(header, block)) {
        return false;
    }
    const size_t pages = header->pages;
    const PageRun run{reinterpret_cast<unsigned char*>(header) - header->run_offset,
                      header->run.source_address};
    {
        LockGuard guard(m_lock);
        if (header->prev != nullptr) {
            header->prev->next = header->next;
        } else {
            m_list = header->next;
        }
        if (header->next != nullptr) {
            header->next->prev = header->prev;
        }
        --m_totals.blocks;
        m_totals.pages -= pages;
        m_totals.bytes_in_use -= header->usable_size();
        // Cleared under the lock, so a second free of the same block is recognised by run_of()
        // as long as the pages stay unused.
        header->run.magic = 0;
    }
    source.give(run, pages);
    return true;
}

LargeBlocks::Totals LargeBlocks::totals() {
    LockGuard guard(m_lock);
    return m_totals;
}

bool LargeBlocks::check() {
    LockGuard guard(m_lock);
    uint64_t blocks = 0;
    uint64_t pages = 0;
    for (LargeBlock* block = m_list; block != nullptr; block = block->next) {
        if (block->run.magic != kRunMagic ||
            (block->run.kind != RunKind::Large && block->run.kind != RunKind::CheckedLarge) ||
            block->block_offset == 0 || block->block_offset > kSlabBytes ||
            (reinterpret_cast<uintptr_t>(block) & (kSlabBytes - 1)) != 0 ||
            block->usable_size() < block->requested ||
            (block->next != nullptr && block->next->prev != block)) {
            return false;
        }
        ++blocks;
        pages += block->pages;
    }
    return blocks == m_totals.blocks && pages == m_totals.pages;
}

} // namespace bedrock::heap
