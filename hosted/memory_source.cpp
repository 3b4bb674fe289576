// SPDX-License-Identifier: MIT
// The memory hooks of bedrock/platform.h for a host process, and the reservations behind them:
// reserve_memory() maps address space with MAP_NORESERVE (the kernel commits a page when it is
// first touched) and hands it to a page frame allocator as its RAM. "Physical" addresses are
// the virtual addresses of the reservations, so phys_to_virt is the identity and needs no
// table: any number of reservations, for any number of allocators, coexist.
// Invariant: every reservation is aligned to kReservationAlignment (a maximum buddy block), so
// a block's physical alignment is its virtual alignment.
// State: start()'s page frame allocator, constant-initialised (no static constructor), and a
// flag that lets start() run once.
#include <sys/mman.h>

#include <atomic>

#include "bedrock/hosted.h"
#include "bedrock/platform.h"

namespace bedrock {
namespace {

constexpr uint64_t kReservationAlignment = kPageSize << kMaxOrder; // 1 GiB

PageFrameAllocator g_frames;
std::atomic<bool> g_started{false};

} // namespace

namespace hosted {

bool reserve_memory(PageFrameAllocator& frames, uint64_t bytes) {
    bytes = (bytes + kPageSize - 1) & ~(kPageSize - 1);
    if (bytes == 0 || bytes > (uint64_t{1} << 46)) {
        write_to_stderr("bedrock: hosted: reservation size out of range\n");
        return false;
    }
    // Map an alignment's worth more, then give back what lies outside the aligned part.
    const size_t mapped = static_cast<size_t>(bytes + kReservationAlignment);
    void* mapping = mmap(nullptr, mapped, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mapping == MAP_FAILED) {
        write_to_stderr("bedrock: hosted: mmap of the memory reservation failed\n");
        return false;
    }
    const auto start = reinterpret_cast<uintptr_t>(mapping);
    const uintptr_t base = (start + kReservationAlignment - 1) & ~(kReservationAlignment - 1);
    const uintptr_t end = start + mapped;
    if (base > start) {
        munmap(mapping, base - start);
    }
    if (end > base + bytes) {
        munmap(reinterpret_cast<void*>(base + bytes), end - (base + bytes));
    }
    const PhysRange range{base, bytes};
    if (!frames.init(&range, 1)) {
        munmap(reinterpret_cast<void*>(base), static_cast<size_t>(bytes));
        write_to_stderr("bedrock: hosted: the page frame allocator refused the reservation\n");
        return false;
    }
    return true;
}

Heap* start(uint64_t bytes) {
    if (g_started.exchange(true)) {
        write_to_stderr("bedrock: hosted: start() called twice\n");
        return nullptr;
    }
    if (!reserve_memory(g_frames, bytes)) {
        return nullptr;
    }
    Heap* heap = heap_create(g_frames);
    if (heap == nullptr) {
        write_to_stderr("bedrock: hosted: no memory for the heap's state\n");
        return nullptr;
    }
    set_default_heap(heap);
    return heap;
}

PageFrameAllocator& page_frames() {
    return g_frames;
}

} // namespace hosted

namespace platform {

void* phys_to_virt(PhysAddr phys) {
    return reinterpret_cast<void*>(static_cast<uintptr_t>(phys));
}

bool set_page_access(void* page, bool accessible) {
    return mprotect(page, kPageSize, accessible ? PROT_READ | PROT_WRITE : PROT_NONE) == 0;
}

} // namespace platform
} // namespace bedrock
