// SPDX-License-Identifier: MIT
// libFuzzer harness for the heap: the input is a sequence of 8-byte operations applied to a
// region heap through HeapModel (tests/host/heap_model.h), which checks alignment, overlap,
// contents and, at the end of each input, that freeing everything gives every page back.
// Any divergence or heap report aborts, which libFuzzer records as a crash.
//
// Operation encoding (little end first): op % 5, slot (2 bytes), size class byte and 3 size
// bytes, alignment shift; sizes are spread over small, medium and large blocks.
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bedrock/heap.h"
#include "fuzz_sizes.h"
#include "heap_model.h"

namespace {

constexpr size_t kRegionBytes = size_t{32} << 20;
constexpr size_t kSlots = 512;

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static unsigned char* region = static_cast<unsigned char*>(aligned_alloc(64, kRegionBytes));
    bedrock::Heap* heap = bedrock::heap_create_in_region(region, kRegionBytes);
    if (heap == nullptr) {
        abort();
    }
    {
        bedrock::test::HeapModel model(*heap, kSlots);
        for (size_t at = 0; at + 8 <= size; at += 8) {
            const uint8_t* op = data + at;
            const auto kind = static_cast<bedrock::test::HeapOp>(op[0] % 5);
            const size_t slot = op[1] | (size_t{op[2]} << 8);
            const size_t alignment = size_t{1} << (op[7] % 22);
            if (!model.apply(kind, slot,
                             bedrock::test::decode_size(op + 3, size_t{1} << 20, size_t{4} << 20),
                             alignment)) {
                fprintf(stderr, "heap_fuzz: %s\n", model.error().c_str());
                abort();
            }
        }
        if (!model.free_all()) {
            fprintf(stderr, "heap_fuzz: %s\n", model.error().c_str());
            abort();
        }
    }
    if (!bedrock::heap_destroy(*heap)) {
        abort();
    }
    bedrock::set_default_heap(nullptr);
    return 0;
}
