// SPDX-License-Identifier: MIT
// SegregatedFit: whether a block's header can be trusted (header_holds(), size_holds()), and the
// blocks whose header could not, taken out of use (retire()). A header sits just past the end of
// the block before it: a write past that block's end (a buffer overflow of 16 bytes) rewrites its
// size, use and links, and a size or link followed from such a header could lead anywhere. The
// arena's start bitmap, which no write into a block can reach, says where blocks really start;
// a header is followed only where it agrees (layout and invariants: segregated_fit.h).
#include "heap/segregated_fit_blocks.h"

namespace bedrock::heap {

using namespace fit_detail;

bool SegregatedFit::header_holds(const Arena& arena, const void* block) const {
    const BlockHeader* header = header_of(block);
    switch (static_cast<BlockUse>(use_bits(header))) {
    case BlockUse::Free:
        return !prev_is_free(header) && size_holds(arena, block) && seal_holds(header);
    case BlockUse::Retired:
        return size_holds(arena, block);
    case BlockUse::Slab:
    case BlockUse::Medium:
    case BlockUse::Checked:
    case BlockUse::Guard:
    case BlockUse::CpuCache:
        return taken_header_holds(arena, block);
    }
    return false; // the end sentinel's use, or none
}

SegregatedFit::RetiredBlock SegregatedFit::retire(Arena& arena, void* block) {
    BlockHeader* header = header_of(block);
    BlockHeader* next = next_start_header(arena, header);
    if (confirmed(arena, next) ? prev_is_free(next) : listed(header)) {
        // Free: only a rebuild takes it off its list and out of the free bytes.
        rebuild_lists(header);
        return RetiredBlock{usable_of(header), false};
    }
    const size_t usable = retire_header(arena, header);
    record_damaged_header(address_of(block));
    return RetiredBlock{usable, true};
}

size_t SegregatedFit::retire_header(Arena& arena, BlockHeader* header) {
    BEDROCK_DEBUG_ASSERT(start_bit(arena, granule_of(arena, header)));
    BlockHeader* next = next_start_header(arena, header);
    const size_t usable = address_of(next) - address_of(header) - kBlockHeaderBytes;
    // Free before it only if the block before it (the one find() names for the byte before this
    // header, which it holds only if its own size says so) is a free block whose seal holds.
    const Found before =
        find(bounds_of(arena), reinterpret_cast<const void*>(address_of(header) - 1), ~size_t{0});
    const BlockHeader* prev = before.block != nullptr ? header_of(before.block) : nullptr;
    const Previous previous =
        prev != nullptr && is_free(prev) && next_of(prev) == header && seal_holds(prev)
            ? Previous::Free
            : Previous::Taken;
    header->link = previous == Previous::Free ? address_of(header) - address_of(prev) : 0;
    set_header(header, usable, static_cast<size_t>(BlockUse::Retired), previous);
    if (!is_free(next)) {
        next->link = 0; // a free block's link is its seal
    }
    set_prev_free(next, Previous::Taken);
    return usable;
}

template <class Visit>
void SegregatedFit::for_each_listed(Visit&& visit) const {
    for (unsigned list = 1; list <= m_last_list; ++list) {
        visit(head(list));
    }
    for (const Arena* arena = m_arenas; arena != nullptr; arena = arena->next) {
        const BlockHeader* sentinel = sentinel_of(*arena);
        for (BlockHeader* header = first_of(*arena); header != sentinel;) {
            const bool holds = confirmed(*arena, header);
            if (holds && is_free(header) && seal_holds(header)) {
                visit(load_link(&links_of(header)->next));
                visit(load_link(&links_of(header)->prev));
            }
            // A block ahead that `visit` retires starts where it did.
            header = holds ? next_of(header) : next_start_header(*arena, header);
        }
    }
}

bool SegregatedFit::listed(const BlockHeader* header) const {
    bool named = false;
    for_each_listed([&](const BlockHeader* listed) { named = named || listed == header; });
    return named;
}

void SegregatedFit::retire_listed_overwritten(const BlockHeader* damaged) {
    for_each_listed([&](BlockHeader* listed) { retire_if_overwritten(listed, damaged); });
}

void SegregatedFit::retire_if_overwritten(BlockHeader* listed, const BlockHeader* damaged) {
    if (listed == nullptr) {
        return;
    }
    for (Arena* arena = m_arenas; arena != nullptr; arena = arena->next) {
        if (address_of(listed) < address_of(first_of(*arena)) ||
            address_of(listed) >= address_of(sentinel_of(*arena))) {
            continue;
        }
        // A link that seals hold names a block start: the bitmap is asked all the same, as for
        // any header before it is followed.
        if (starts_block(*arena, listed) && !confirmed(*arena, listed)) {
            retire_found(*arena, listed, damaged);
        }
        return;
    }
}

void SegregatedFit::retire_found(Arena& arena, BlockHeader* header, const BlockHeader* damaged) {
    static_cast<void>(retire_header(arena, header));
    if (header != damaged) {
        record_damaged_header(address_of(header) + kBlockHeaderBytes);
    }
}

void SegregatedFit::record_damaged_header(uintptr_t block) {
    record_damage(&Damage::headers, &Damage::first_header, block);
}

void SegregatedFit::record_damage(uint32_t Damage::*count, uintptr_t Damage::*first,
                                  uintptr_t address) {
    if (m_damage.*count == 0) {
        m_damage.*first = address;
    }
    ++(m_damage.*count);
    __atomic_store_n(&m_damage_found, m_damage_found + 1, __ATOMIC_RELAXED);
}

} // namespace bedrock::heap
