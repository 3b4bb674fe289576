// SPDX-License-Identifier: MIT
// x86 port I/O, the one way this kernel reaches devices on x86-64 (COM1, the PIT, the ACPI PM
// timer, the exit device): none of them needs a mapping.
#pragma once

#include <stdint.h>

namespace bedrock::arch::x86_64 {

inline void out8(uint16_t port, uint8_t value) {
    __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}
inline void out32(uint16_t port, uint32_t value) {
    __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port));
}
inline uint8_t in8(uint16_t port) {
    uint8_t value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}
inline uint32_t in32(uint16_t port) {
    uint32_t value;
    __asm__ volatile("inl %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

} // namespace bedrock::arch::x86_64
