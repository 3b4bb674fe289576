// SPDX-License-Identifier: MIT
// Reading firmware tables byte by byte at their physical addresses: what the ACPI parser
// (acpi.cpp) and the MultiProcessor Specification parser (mp_table.cpp) share.
//
// The kernel runs identity-mapped, so a physical address is read where it points (the host tests
// build tables in host memory and use host addresses as physical ones). Values are little-endian
// and may be unaligned, so they are assembled from bytes. Callers bound every read by a length
// they have checked.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace bedrock::kernel {

[[nodiscard]] inline const uint8_t* firmware_bytes_at(uint64_t physical) {
    return reinterpret_cast<const uint8_t*>(static_cast<uintptr_t>(physical));
}

// The `size`-byte (at most 8) little-endian value at `bytes`.
[[nodiscard]] inline uint64_t read_le(const uint8_t* bytes, unsigned size) {
    uint64_t value = 0;
    for (unsigned i = size; i-- > 0;) {
        value = (value << 8) | bytes[i];
    }
    return value;
}

[[nodiscard]] inline uint16_t read_u16(const uint8_t* bytes) {
    return static_cast<uint16_t>(read_le(bytes, 2));
}

[[nodiscard]] inline uint32_t read_u32(const uint8_t* bytes) {
    return static_cast<uint32_t>(read_le(bytes, 4));
}

// Whether the `length` bytes at `bytes` sum to 0 mod 256: the checksum rule of every ACPI and MP
// structure.
[[nodiscard]] inline bool sums_to_zero(const uint8_t* bytes, uint64_t length) {
    uint8_t sum = 0;
    for (uint64_t i = 0; i < length; ++i) {
        sum = static_cast<uint8_t>(sum + bytes[i]);
    }
    return sum == 0;
}

// Whether `bytes` starts with the characters of `signature` (its terminating 0 not compared).
[[nodiscard]] inline bool has_signature(const uint8_t* bytes, const char* signature) {
    for (size_t i = 0; signature[i] != '\0'; ++i) {
        if (bytes[i] != static_cast<uint8_t>(signature[i])) {
            return false;
        }
    }
    return true;
}

// The first `alignment`-aligned address (a power of two) in [base, base + length) where a
// `size`-byte structure fits whole and `valid(address)` holds, or 0: the search for a firmware
// structure by its signature in a BIOS area.
template <class Valid>
[[nodiscard]] uint64_t find_aligned_structure(uint64_t base, uint64_t length, uint64_t alignment,
                                              uint64_t size, Valid valid) {
    const uint64_t end = base + length;
    for (uint64_t candidate = (base + alignment - 1) & ~(alignment - 1);
         candidate < end && end - candidate >= size; candidate += alignment) {
        if (valid(candidate)) {
            return candidate;
        }
    }
    return 0;
}

} // namespace bedrock::kernel
