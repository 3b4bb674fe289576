// SPDX-License-Identifier: MIT
// CheckedLayer: the core's entry into checked mode (see checked_layer.h).
#include "checked/checked_layer.h"

#include "support/bits.h"

namespace bedrock::heap {

void* CheckedLayer::allocate(Heap& heap, size_t size, size_t alignment, Caller caller) {
    if (alignment != 0 && !is_power_of_two(alignment)) {
        return nullptr;
    }
    const size_t align = alignment < kMinCheckedAlignment ? kMinCheckedAlignment : alignment;
    if (void* guarded = guards.allocate_sampled(heap, size, align, caller)) {
        return guarded;
    }
    return blocks.allocate(heap, size, align, caller);
}

void CheckedLayer::free(Heap& heap, const BlockRef& core, void* pointer, Caller caller) {
    if (guards.holds(pointer)) {
        guards.free(heap, pointer, caller);
    } else {
        blocks.free(heap, core, pointer, caller);
    }
}

bool CheckedLayer::find_usable_size(Heap& heap, const BlockRef& core, const void* pointer,
                                    Caller caller, size_t& size) {
    CheckedBlock* header = blocks.find_live(heap, core, pointer, caller);
    if (header != nullptr && guards.holds(pointer)) {
        header = blocks.confirm_live(heap, *header, pointer, caller);
    }
    if (header == nullptr) {
        return false;
    }
    size = header->size;
    return true;
}

void CheckedLayer::check_named_size(Heap& heap, const BlockRef& core, const void* pointer,
                                    size_t named, Caller caller) {
    const CheckedBlock* header = guards.holds(pointer)
                                     ? guards.slot_header(pointer)
                                     : reinterpret_cast<const CheckedBlock*>(core.start);
    if (header != nullptr) {
        blocks.check_named_size(heap, *header, pointer, named, caller);
    }
}

bool CheckedLayer::live_block_holds(const BlockRef& core, uintptr_t start, uintptr_t end) {
    const void* pointer = reinterpret_cast<const void*>(start);
    const CheckedBlock* header = guards.holds(pointer)
                                     ? guards.slot_header(pointer)
                                     : reinterpret_cast<const CheckedBlock*>(core.start);
    return header != nullptr && blocks.live_block_holds(*header, start, end);
}

CheckedLayer::Totals CheckedLayer::totals() {
    const CheckedBlocks::QuarantineTotals quarantine = blocks.quarantine_totals();
    const uint64_t guarded = guards.live_blocks();
    return Totals{quarantine.blocks, quarantine.bytes, guarded, guarded * guards.page_bytes()};
}

} // namespace bedrock::heap
