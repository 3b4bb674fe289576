// SPDX-License-Identifier: MIT
// Arenas for heap_limits: a fresh Bedrock heap over a memory region or over a page frame
// allocator, made only through the public API (bedrock/heap.h, bedrock/page_frame_allocator.h).
//
// Placement is fixed so that every run measures the same thing wherever mmap puts the memory:
//   Buffer         starts `alignment` bytes past a 1 MiB boundary: aligned to exactly what was
//                  asked for (not to twice that), the least a caller can rely on
//   Source::Frames the page frame allocator manages the simulated physical range
//                  [kFramesBase, kFramesBase + bytes): one zone, one region, every buddy block
//                  naturally aligned
// An arena lives in one process (heap_limits runs each in a child of its own): the heap's
// global list of heap memory only grows, and a second simulated memory cannot coexist.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <memory>

#include "bedrock/heap.h"
#include "bedrock/page_frame_allocator.h"
#include "simulated_memory.h"

namespace bench {

inline constexpr size_t kKiB = 1024;
inline constexpr size_t kMiB = 1024 * kKiB;
inline constexpr bedrock::PhysAddr kFramesBase = bedrock::PhysAddr{1} << 30;

// `bytes` of reserved address space (MAP_NORESERVE) starting at exactly `alignment` (a power
// of two below 1 MiB).
class Buffer {
public:
    Buffer(size_t bytes, size_t alignment);
    ~Buffer();
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;

    [[nodiscard]] bool ok() const { return m_mapping != nullptr; }
    [[nodiscard]] unsigned char* start() const { return m_start; }
    [[nodiscard]] size_t bytes() const { return m_bytes; }

private:
    void* m_mapping = nullptr;
    size_t m_mapping_bytes = 0;
    unsigned char* m_start = nullptr;
    size_t m_bytes = 0;
};

enum class Source { Region, Frames };

[[nodiscard]] const char* to_string(Source source);

// A fresh heap: heap_create_in_region over a 4 KiB-aligned buffer of `bytes`, or heap_create
// over a page frame allocator that manages `bytes` of simulated physical memory.
class Arena {
public:
    Arena(Source source, size_t bytes);
    Arena(const Arena&) = delete;
    Arena& operator=(const Arena&) = delete;

    // Null when the arena could not be made; failure() then says why.
    [[nodiscard]] bedrock::Heap* heap() const { return m_heap; }
    [[nodiscard]] const char* failure() const { return m_failure; }
    // The bytes the heap may use: the region's size, or the pages the allocator manages.
    [[nodiscard]] uint64_t bytes() const { return m_bytes; }
    // The lowest address of the arena (the region's start, or the managed range's).
    [[nodiscard]] uintptr_t start() const { return m_start; }
    // The page frame allocator, or null for a region heap.
    [[nodiscard]] bedrock::PageFrameAllocator* frames() const { return m_frames.get(); }

private:
    std::unique_ptr<Buffer> m_buffer;
    std::unique_ptr<SimulatedMemory> m_memory;
    std::unique_ptr<bedrock::PageFrameAllocator> m_frames;
    bedrock::Heap* m_heap = nullptr;
    const char* m_failure = nullptr;
    uint64_t m_bytes = 0;
    uintptr_t m_start = 0;
};

} // namespace bench
