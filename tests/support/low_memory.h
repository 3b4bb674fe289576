// SPDX-License-Identifier: MIT
// Firmware structures for the host tests of the kernel's table parsers (ACPI, the MP table):
// LowMemory, one mapping below 4 GiB (MAP_32BIT, as firmware keeps its tables in low physical
// memory) that the parsers read at its addresses as the kernel reads physical memory, with an
// inaccessible page after it, so that a read past a structure placed at its end faults; and
// the little-endian writer and the checksum such structures carry.
// Invariant: every placed structure lies in [base(), base() + size()).
#pragma once

#include <sys/mman.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace bedrock::test {

using FirmwareBytes = std::vector<uint8_t>;

// Appends the `size` low bytes of `value`, least significant first.
inline void put(FirmwareBytes& bytes, uint64_t value, unsigned size) {
    for (unsigned i = 0; i < size; ++i) {
        bytes.push_back(static_cast<uint8_t>(value >> (8 * i)));
    }
}

// The byte that makes the `length` bytes at `bytes`, plus it, sum to 0 mod 256.
inline uint8_t checksum_of(const uint8_t* bytes, size_t length) {
    uint8_t sum = 0;
    for (size_t i = 0; i < length; ++i) {
        sum = static_cast<uint8_t>(sum + bytes[i]);
    }
    return static_cast<uint8_t>(-sum);
}

// Sets the byte at `checksum` so that all of `bytes` sums to 0 mod 256.
inline void seal(FirmwareBytes& bytes, size_t checksum) {
    bytes[checksum] = 0;
    bytes[checksum] = checksum_of(bytes.data(), bytes.size());
}

class LowMemory {
public:
    static constexpr size_t kGuardBytes = 4096;

    explicit LowMemory(size_t bytes) : m_size(bytes) {
        void* memory = mmap(nullptr, m_size + kGuardBytes, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
        EXPECT_NE(memory, MAP_FAILED);
        m_base = static_cast<uint8_t*>(memory);
        EXPECT_EQ(mprotect(m_base + m_size, kGuardBytes, PROT_NONE), 0);
    }
    ~LowMemory() { munmap(m_base, m_size + kGuardBytes); }
    LowMemory(const LowMemory&) = delete;
    LowMemory& operator=(const LowMemory&) = delete;

    // Copies `bytes` in after the last structure placed this way, `skip` bytes after the next
    // 16-byte boundary, and returns its address.
    uint64_t place_next(const FirmwareBytes& bytes, size_t skip = 0) {
        m_next = ((m_next + 15) & ~size_t{15}) + skip;
        const uint64_t placed = place_at(bytes, m_next);
        m_next += bytes.size();
        return placed;
    }
    // Copies `bytes` in at `offset` and returns its address.
    uint64_t place_at(const FirmwareBytes& bytes, size_t offset) {
        EXPECT_LE(offset + bytes.size(), m_size);
        std::memcpy(m_base + offset, bytes.data(), bytes.size());
        return address(offset);
    }
    // Places `bytes` so that they end where the mapping does (the inaccessible page follows).
    uint64_t place_at_end(const FirmwareBytes& bytes) {
        return place_at(bytes, m_size - bytes.size());
    }

    uint64_t address(size_t offset) const { return reinterpret_cast<uintptr_t>(m_base + offset); }
    uint8_t* at(uint64_t address) { return reinterpret_cast<uint8_t*>(address); }
    uint64_t base() const { return address(0); }
    size_t size() const { return m_size; }

private:
    uint8_t* m_base = nullptr;
    size_t m_size;
    size_t m_next = 0;
};

} // namespace bedrock::test
