// SPDX-License-Identifier: MIT
// What an adopter's host unit test does with Bedrock::hosted: a page frame allocator over a
// reservation of its own, a heap over it, and the default heap from hosted::start(), each used
// once. Prints "ok" and exits 0 when all work.
#include <cstdio>

#include "bedrock/heap.h"
#include "bedrock/hosted.h"
#include "bedrock/malloc.h"
#include "bedrock/page_frame_allocator.h"

namespace {
bedrock::PageFrameAllocator g_frames;
}

int main() {
    if (!bedrock::hosted::reserve_memory(g_frames, 64u << 20)) {
        return 1;
    }
    const bedrock::PhysAddr page = g_frames.allocate(0);
    bedrock::Heap* own = bedrock::heap_create(g_frames);
    bedrock::Heap* started = bedrock::hosted::start(256u << 20);
    if (page == bedrock::kNoPage || own == nullptr || started == nullptr ||
        bedrock::default_heap() != started) {
        return 1;
    }
    void* block = bedrock::heap_allocate(*own, 1000);
    void* other = bedrock_malloc(5000);
    if (block == nullptr || other == nullptr) {
        return 1;
    }
    bedrock::heap_free(*own, block);
    bedrock_free(other);
    g_frames.free(page, 0);
    std::printf("ok\n");
    return 0;
}
