// SPDX-License-Identifier: MIT
// Guard pages: the pool of guarded slots and the fault explanation (see guarded_pool.h).
#include "checked/guarded_pool.h"

#include "bedrock/platform.h"
#include "checked/checked_reports.h"
#include "heap/core.h"
#include "heap/heap_state.h"
#include "report/heap_error_reports.h"
#include "support/bits.h"

namespace bedrock::heap {
namespace {

static_assert(sizeof(GuardChunk) <= kPageSize);

constinit GuardedPool* g_pools = nullptr; // pools with pages, newest first
constinit SpinLock g_pools_lock;          // writers only
constinit SpinLock g_page_access_lock;    // the platform hook is never called concurrently

bool change_page_access(void* page, Access access) {
    LockGuard guard(g_page_access_lock);
    return platform::set_page_access(page, access == Access::Accessible);
}

Access opposite(Access access) {
    return access == Access::Accessible ? Access::Inaccessible : Access::Accessible;
}

// Page index (1..15) of slot `slot` within its chunk.
constexpr size_t slot_page_index(uint32_t slot) {
    return 2 + 2 * size_t{slot % kSlotsPerChunk};
}

// What the faulting access did, as the report's detail: a read, a write, or an access (an
// instruction fetch, or MemoryAccess::Unknown: the fault handler could not tell); `freed`: the
// block it was blamed on is freed.
const char* access_detail(ErrorKind kind, MemoryAccess access, bool freed) {
    const bool write = access == MemoryAccess::Write;
    const bool read = access == MemoryAccess::Read;
    if (freed && kind == ErrorKind::BufferUnderflow) {
        return write  ? "write before the start of a freed guarded block"
               : read ? "read before the start of a freed guarded block"
                      : "access before the start of a freed guarded block";
    }
    switch (kind) {
    case ErrorKind::BufferOverflow:
        return write  ? "write past the end of a guarded block (guard page)"
               : read ? "read past the end of a guarded block (guard page)"
                      : "access past the end of a guarded block (guard page)";
    case ErrorKind::BufferUnderflow:
        return write  ? "write before the start of a guarded block (guard page)"
               : read ? "read before the start of a guarded block (guard page)"
                      : "access before the start of a guarded block (guard page)";
    default:
        return write  ? "write to a freed guarded block (its page is inaccessible)"
               : read ? "read of a freed guarded block (its page is inaccessible)"
                      : "access to a freed guarded block (its page is inaccessible)";
    }
}

} // namespace

GuardChunk& GuardedPool::chunk_holding(const void* address) const {
    const uintptr_t offset =
        reinterpret_cast<uintptr_t>(address) - reinterpret_cast<uintptr_t>(m_base);
    return *reinterpret_cast<GuardChunk*>(m_base + offset / chunk_bytes() * chunk_bytes());
}

GuardSlot& GuardedPool::slot(uint32_t index) const {
    return slot_in(m_base, index);
}

GuardSlot& GuardedPool::slot_in(unsigned char* base, uint32_t index) const {
    auto* chunk =
        reinterpret_cast<GuardChunk*>(base + size_t{index / kSlotsPerChunk} * chunk_bytes());
    return chunk->slots[index % kSlotsPerChunk];
}

unsigned char* GuardedPool::slot_page(uint32_t index) const {
    return m_base + size_t{index / kSlotsPerChunk} * chunk_bytes() +
           slot_page_index(index) * m_page;
}

platform::InterruptState GuardedPool::lock_all() {
    const platform::InterruptState previous = m_lock.lock();
    static_cast<void>(g_pools_lock.lock()); // interrupts are off: the same mask as `previous`
    static_cast<void>(g_page_access_lock.lock());
    return previous;
}

void GuardedPool::unlock_all(platform::InterruptState previous) {
    g_page_access_lock.unlock(previous);
    g_pools_lock.unlock(previous);
    m_lock.unlock(previous);
}

void GuardedPool::push_free(uint32_t index) {
    LockGuard guard(m_lock);
    slot(index).next_free = kNoSlot;
    if (m_free_tail != kNoSlot) {
        slot(m_free_tail).next_free = index;
    } else {
        m_free_head = index;
    }
    m_free_tail = index;
}

uint32_t GuardedPool::pop_free() {
    LockGuard guard(m_lock);
    const uint32_t index = m_free_head;
    if (index != kNoSlot) {
        m_free_head = slot(index).next_free;
        if (m_free_head == kNoSlot) {
            m_free_tail = kNoSlot;
        }
    }
    return index;
}

bool GuardedPool::set_chunk_access(unsigned char* chunk, Access access) {
    for (size_t page = 1; page < kChunkPages; ++page) {
        if (!change_page_access(chunk + page * m_page, access)) {
            for (size_t undo = 1; undo < page; ++undo) {
                static_cast<void>(change_page_access(chunk + undo * m_page, opposite(access)));
            }
            return false;
        }
    }
    return true;
}

bool GuardedPool::enable(Heap& heap, GuardPageOptions options) {
    if (options.slots == 0) {
        return false;
    }
    uint32_t unclaimed = 0;
    if (!__atomic_compare_exchange_n(&m_claimed, &unclaimed, uint32_t{1}, false, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED)) {
        return false; // a pool exists, or another call is making one
    }
    // In 64 bits: within 6 of UINT32_MAX slots, the sum would wrap to no chunk at all.
    const auto chunks =
        static_cast<uint32_t>((uint64_t{options.slots} + kSlotsPerChunk - 1) / kSlotsPerChunk);
    const size_t page = platform::page_granularity();
    BEDROCK_ASSERT(page >= kPageSize && is_power_of_two(page));
    const TakenBlock core =
        take_block(heap, size_t{chunks} * kChunkPages * page, page, BlockUse::Guard, 0);
    if (core.start == nullptr) {
        __atomic_store_n(&m_claimed, uint32_t{0}, __ATOMIC_RELEASE);
        return false;
    }
    unsigned char* base = core.start;
    m_heap = &heap;
    m_page = page;
    m_chunks = chunks;
    for (uint32_t chunk = 0; chunk < chunks; ++chunk) {
        *reinterpret_cast<GuardChunk*>(base + size_t{chunk} * chunk_bytes()) = GuardChunk{};
    }
    // Every slot free, in index order (no allocation reaches the FIFO before m_base is
    // published).
    const uint32_t slots = chunks * kSlotsPerChunk;
    for (uint32_t index = 0; index < slots; ++index) {
        slot_in(base, index).next_free = index + 1 < slots ? index + 1 : kNoSlot;
    }
    m_free_head = 0;
    m_free_tail = slots - 1;
    {
        LockGuard guard(g_pools_lock);
        m_next_pool = g_pools;
        __atomic_store_n(&g_pools, this, __ATOMIC_RELEASE);
    }
    for (uint32_t chunk = 0; chunk < chunks; ++chunk) {
        if (!set_chunk_access(base + size_t{chunk} * chunk_bytes(), Access::Inaccessible)) {
            abandon(heap, base, chunk);
            return false;
        }
    }
    __atomic_store_n(&m_base, base, __ATOMIC_RELEASE);
    // Released after the page size (fits() reads it once it sees an interval).
    __atomic_store_n(&m_sample_interval, options.sample_interval, __ATOMIC_RELEASE);
    return true;
}

void GuardedPool::abandon(Heap& heap, unsigned char* base, uint32_t chunks_done) {
    for (uint32_t chunk = 0; chunk < chunks_done; ++chunk) {
        static_cast<void>(
            set_chunk_access(base + size_t{chunk} * chunk_bytes(), Access::Accessible));
    }
    unlink();
    give_block(heap, find_block(heap, base));
    m_chunks = 0;
    m_free_head = m_free_tail = kNoSlot;
    __atomic_store_n(&m_claimed, uint32_t{0}, __ATOMIC_RELEASE);
}

void GuardedPool::disable(Heap& heap) {
    if (published_base() == nullptr) {
        return;
    }
    BEDROCK_ASSERT(live_blocks() == 0);
    __atomic_store_n(&m_sample_interval, uint32_t{0}, __ATOMIC_RELAXED);
    unlink();
    for (uint32_t chunk = 0; chunk < m_chunks; ++chunk) {
        static_cast<void>(
            set_chunk_access(m_base + size_t{chunk} * chunk_bytes(), Access::Accessible));
    }
    give_block(heap, find_block(heap, m_base));
    __atomic_store_n(&m_base, static_cast<unsigned char*>(nullptr), __ATOMIC_RELEASE);
    m_chunks = 0;
    m_free_head = m_free_tail = kNoSlot;
    __atomic_store_n(&m_claimed, uint32_t{0}, __ATOMIC_RELEASE);
}

void GuardedPool::unlink() {
    LockGuard guard(g_pools_lock);
    GuardedPool** link = &g_pools;
    while (*link != this) {
        link = &(*link)->m_next_pool;
    }
    __atomic_store_n(link, m_next_pool, __ATOMIC_RELEASE);
}

void* GuardedPool::allocate(Heap& heap, size_t size, size_t alignment, Caller caller) {
    const size_t span = size == 0 ? 1 : size;
    if (published_base() == nullptr || !fits(size, alignment)) {
        return nullptr;
    }
    const uint32_t index = pop_free();
    if (index == kNoSlot) {
        return nullptr;
    }
    unsigned char* page = slot_page(index);
    const uintptr_t page_end = reinterpret_cast<uintptr_t>(page) + m_page;
    const uintptr_t block = (page_end - span) & ~(uintptr_t{alignment} - 1);
    if (block < reinterpret_cast<uintptr_t>(page) ||
        !change_page_access(page, Access::Accessible)) {
        push_free(index);
        return nullptr;
    }
    GuardSlot& record = slot(index);
    if (record.header.state != BlockState::Released) {
        heap.checked.blocks.forget(record.header);
    }
    __atomic_add_fetch(&m_live_blocks, 1, __ATOMIC_RELAXED);
    heap.checked.blocks.adopt(record.header, reinterpret_cast<unsigned char*>(block), size,
                              page_end, Placement::Guarded, caller);
    return reinterpret_cast<void*>(block);
}

CheckedBlock* GuardedPool::slot_header(const void* address) {
    GuardChunk& chunk = chunk_holding(address);
    const size_t page =
        (reinterpret_cast<uintptr_t>(address) - reinterpret_cast<uintptr_t>(&chunk)) / m_page;
    return page % 2 == 0 && page >= 2 ? &chunk.slots[page / 2 - 1].header : nullptr;
}

CheckedBlock* GuardedPool::find_live(Heap& heap, const void* pointer, Caller caller) {
    const char* why = "inside a guard page of the guarded pool";
    if (CheckedBlock* slot = slot_header(pointer); slot != nullptr) {
        CheckedBlock& header = *slot;
        if (header.block == pointer) {
            return &header; // state checked by the caller under the checked-blocks lock
        }
        if (header.state != BlockState::Released && pointer > header.block &&
            reinterpret_cast<uintptr_t>(pointer) < header.block_end()) {
            heap.errors.raise(
                interior_report(header, reinterpret_cast<uintptr_t>(pointer), caller.call_site()));
            return nullptr;
        }
        why = "inside a guarded slot page, not at a block";
    }
    heap.errors.raise(misuse_report(ErrorKind::NotAllocated, reinterpret_cast<uintptr_t>(pointer),
                                    why, caller.call_site()));
    return nullptr;
}

void GuardedPool::free(Heap& heap, void* pointer, Caller caller) {
    CheckedBlock* header = find_live(heap, pointer, caller);
    if (header == nullptr || !heap.checked.blocks.retire(heap, *header, pointer, caller)) {
        return;
    }
    GuardChunk& chunk = chunk_holding(pointer);
    const auto chunk_index = static_cast<uint32_t>(
        (reinterpret_cast<uintptr_t>(&chunk) - reinterpret_cast<uintptr_t>(m_base)) /
        chunk_bytes());
    const auto in_chunk = static_cast<uint32_t>(
        (reinterpret_cast<uintptr_t>(header) - reinterpret_cast<uintptr_t>(chunk.slots)) /
        sizeof(GuardSlot));
    const uint32_t slot_index = chunk_index * kSlotsPerChunk + in_chunk;
    // Inaccessible from now on; if the platform refuses, the page stays usable but poisoned.
    if (!change_page_access(slot_page(slot_index), Access::Inaccessible)) {
        __builtin_memset(header->block, kFreedPoison, header->size);
    }
    __atomic_sub_fetch(&m_live_blocks, 1, __ATOMIC_RELAXED);
    push_free(slot_index);
}

bool GuardedPool::explain(uintptr_t address, MemoryAccess access, const void* pc) {
    const auto base = reinterpret_cast<uintptr_t>(published_base());
    if (base == 0 || address < base || address - base >= uint64_t{m_chunks} * chunk_bytes()) {
        return false;
    }
    auto* chunk = &chunk_holding(reinterpret_cast<const void*>(address));
    const size_t page = (address - base) % chunk_bytes() / m_page;
    if (page == 0) {
        return false; // the chunk's metadata page is always accessible
    }
    ErrorKind kind = ErrorKind::UseAfterFree;
    size_t nearest = page;
    if (page % 2 == 1) {
        // A guard page: the nearer slot's block is the one that ran off its page, or the other
        // one when the nearer slot holds no block (a run of over half a page past the block).
        const auto holds_block = [&](size_t slot_page) {
            const BlockState state = chunk->slots[slot_page / 2 - 1].header.state;
            return state == BlockState::Live || state == BlockState::Quarantined;
        };
        const bool has_before = page > 1;
        const bool has_after = page < kChunkPages - 1;
        const bool upper_half = (address & (m_page - 1)) >= m_page / 2;
        bool before = !has_after || (has_before && !upper_half);
        if (has_before && has_after && !holds_block(before ? page - 1 : page + 1) &&
            holds_block(before ? page + 1 : page - 1)) {
            before = !before;
        }
        nearest = before ? page - 1 : page + 1;
        kind = before ? ErrorKind::BufferOverflow : ErrorKind::BufferUnderflow;
    }
    const CheckedBlock& header = chunk->slots[nearest / 2 - 1].header;
    const auto block = reinterpret_cast<uintptr_t>(header.block);
    const bool freed = header.state == BlockState::Quarantined;
    if (freed) {
        // A freed block's page and the guards around it: a use after free, or, before its start,
        // an underflow of the freed block (so the offset says how far before).
        kind = address < block ? ErrorKind::BufferUnderflow : ErrorKind::UseAfterFree;
    } else if (header.state != BlockState::Live) {
        m_heap->errors.raise(misuse_report(ErrorKind::NotAllocated, address,
                                           "access to a guard-page pool page no block was given",
                                           pc),
                             AfterReport::Continue);
        return true;
    }
    uint64_t offset = 0;
    if (kind == ErrorKind::BufferOverflow) {
        offset = address - header.block_end() + 1;
    } else if (kind == ErrorKind::BufferUnderflow) {
        offset = block - address;
    } else {
        offset = address >= block ? address - block : 0;
    }
    ErrorReport report =
        block_report(kind, address, header, offset, access_detail(kind, access, freed), pc);
    if (freed) {
        report.freed = header.freed;
    }
    m_heap->errors.raise(report, AfterReport::Continue);
    return true;
}

bool GuardedPool::explain_any(uintptr_t address, MemoryAccess access, const void* pc) {
    for (GuardedPool* pool = __atomic_load_n(&g_pools, __ATOMIC_ACQUIRE); pool != nullptr;
         pool = pool->m_next_pool) {
        if (pool->explain(address, access, pc)) {
            return true;
        }
    }
    return false;
}

} // namespace bedrock::heap
