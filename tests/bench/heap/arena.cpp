// SPDX-License-Identifier: MIT
// Buffer and Arena (see arena.h).
#include "arena.h"

#include <sys/mman.h>

#include "bedrock/platform.h"

namespace bench {

Buffer::Buffer(size_t bytes, size_t alignment) : m_bytes(bytes) {
    const size_t mapping_bytes = bytes + 2 * kMiB;
    void* mapping = mmap(nullptr, mapping_bytes, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mapping == MAP_FAILED) {
        return;
    }
    m_mapping = mapping;
    m_mapping_bytes = mapping_bytes;
    const auto megabyte = (reinterpret_cast<uintptr_t>(mapping) + kMiB - 1) & ~uintptr_t{kMiB - 1};
    m_start = reinterpret_cast<unsigned char*>(megabyte + alignment);
}

Buffer::~Buffer() {
    if (m_mapping != nullptr) {
        munmap(m_mapping, m_mapping_bytes);
    }
}

const char* to_string(Source source) {
    return source == Source::Region ? "region" : "page frame allocator";
}

Arena::Arena(Source source, size_t bytes) {
    if (source == Source::Region) {
        m_buffer = std::make_unique<Buffer>(bytes, 4 * kKiB);
        if (!m_buffer->ok()) {
            m_failure = "mmap failed";
            return;
        }
        m_bytes = bytes;
        m_start = reinterpret_cast<uintptr_t>(m_buffer->start());
        m_heap = bedrock::heap_create_in_region(m_buffer->start(), bytes);
        if (m_heap == nullptr) {
            m_failure = "heap_create_in_region failed";
        }
        return;
    }
    m_memory = std::make_unique<SimulatedMemory>(kFramesBase + bytes);
    if (!m_memory->ok()) {
        m_failure = "mmap failed";
        return;
    }
    m_frames = std::make_unique<bedrock::PageFrameAllocator>();
    const bedrock::PhysRange range{kFramesBase, bytes};
    if (!m_frames->init(&range, 1)) {
        m_failure = "PageFrameAllocator::init failed";
        return;
    }
    m_bytes = m_frames->managed_pages() * bedrock::kPageSize;
    m_start = reinterpret_cast<uintptr_t>(bedrock::platform::phys_to_virt(kFramesBase));
    m_heap = bedrock::heap_create(*m_frames);
    if (m_heap == nullptr) {
        m_failure = "heap_create failed";
    }
}

} // namespace bench
