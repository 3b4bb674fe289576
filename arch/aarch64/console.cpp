// SPDX-License-Identifier: MIT
// The AArch64 console (QEMU virt's PL011 UART, polled) and the exit through semihosting
// SYS_EXIT. Both work from the first instruction of C++ (the early map covers the UART as
// Device memory) and from exception handlers.
#include <stdint.h>

#include "kernel/arch.h"

namespace bedrock::arch {
namespace {

constexpr uintptr_t kPl011Base = 0x09000000; // virt's UART0
constexpr uintptr_t kPl011Data = 0x00;
constexpr uintptr_t kPl011Flags = 0x18;
constexpr uint32_t kTransmitFifoFull = 1 << 5;

// Semihosting SYS_EXIT with ADP_Stopped_ApplicationExit: QEMU exits with the given code. QEMU's
// own errors exit with 1, so failure is 3 (see qemu.cmake).
constexpr uint64_t kSysExit = 0x18;
constexpr uint64_t kApplicationExit = 0x20026;
constexpr uint64_t kExitSuccessCode = 0;
constexpr uint64_t kExitFailureCode = 3;

volatile uint32_t& pl011(uintptr_t offset) {
    return *reinterpret_cast<volatile uint32_t*>(kPl011Base + offset);
}

void put_char(char c) {
    while ((pl011(kPl011Flags) & kTransmitFifoFull) != 0) {
    }
    pl011(kPl011Data) = static_cast<uint8_t>(c);
}

} // namespace

const char* const kName = "aarch64";

void console_write(const char* text, size_t length) {
    for (size_t i = 0; i < length; ++i) {
        put_char(text[i]);
    }
}

void exit(ExitStatus status) {
    const uint64_t block[2] = {kApplicationExit,
                               status == ExitStatus::Success ? kExitSuccessCode : kExitFailureCode};
    register uint64_t operation __asm__("x0") = kSysExit;
    register const uint64_t* parameters __asm__("x1") = block;
    __asm__ volatile("hlt #0xf000" : : "r"(operation), "r"(parameters) : "memory");
    for (;;) { // only reached without semihosting
        __asm__ volatile("wfe");
    }
}

uint64_t nanoseconds() {
    uint64_t ticks;
    uint64_t frequency;
    __asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(ticks));
    __asm__ volatile("mrs %0, cntfrq_el0" : "=r"(frequency));
    if (frequency == 0) {
        return 0;
    }
    constexpr uint64_t kNanosecondsPerSecond = 1000000000;
    return ticks / frequency * kNanosecondsPerSecond +
           ticks % frequency * kNanosecondsPerSecond / frequency;
}

} // namespace bedrock::arch
