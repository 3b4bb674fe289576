// SPDX-License-Identifier: MIT
// The x86-64 console (a polled 16550 UART on COM1) and the exit through QEMU's isa-debug-exit
// device. Both work from the first instruction of C++ and from exception handlers.
#include "arch/x86_64/entry.h"
#include "arch/x86_64/port_io.h"
#include "kernel/arch.h"

namespace bedrock::arch {
namespace {

using x86_64::in8;
using x86_64::out32;
using x86_64::out8;

constexpr uint16_t kCom1 = 0x3F8;
constexpr uint8_t kLineStatusTransmitEmpty = 1 << 5;

// isa-debug-exit (iobase 0xf4): writing v makes QEMU exit with status (v << 1) | 1. QEMU's own
// errors exit with 1 and a triple fault with 0, so both verdicts avoid those (see qemu.cmake).
constexpr uint16_t kDebugExitPort = 0xF4;
constexpr uint32_t kExitSuccessValue = 16; // status 33
constexpr uint32_t kExitFailureValue = 17; // status 35

void put_char(char c) {
    while ((in8(kCom1 + 5) & kLineStatusTransmitEmpty) == 0) {
    }
    out8(kCom1, static_cast<uint8_t>(c));
}

} // namespace

const char* const kName = "x86_64";

void x86_64::init_console() {
    out8(kCom1 + 1, 0x00); // no interrupts
    out8(kCom1 + 3, 0x80); // divisor latch access
    out8(kCom1 + 0, 0x01); // 115200 baud
    out8(kCom1 + 1, 0x00);
    out8(kCom1 + 3, 0x03); // 8 bits, no parity, one stop bit
    out8(kCom1 + 2, 0xC7); // FIFOs on and cleared
    out8(kCom1 + 4, 0x03); // DTR, RTS
}

void console_write(const char* text, size_t length) {
    for (size_t i = 0; i < length; ++i) {
        if (text[i] == '\n') {
            put_char('\r');
        }
        put_char(text[i]);
    }
}

void exit(ExitStatus status) {
    out32(kDebugExitPort, status == ExitStatus::Success ? kExitSuccessValue : kExitFailureValue);
    for (;;) { // only reached without the exit device
        __asm__ volatile("cli; hlt");
    }
}

} // namespace bedrock::arch
