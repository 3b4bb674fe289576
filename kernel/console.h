// SPDX-License-Identifier: MIT
// The kernel console: formatted output to the arch's serial port (see format.h for the
// conversions). Safe from fault handlers and with interrupts off; never allocates. Output of
// concurrent callers may interleave.
#pragma once

#include <stdarg.h>

namespace bedrock::kernel {

void print(const char* format, ...) __attribute__((format(printf, 1, 2)));
void vprint(const char* format, va_list arguments);

// Prints the message and exits QEMU with a failure status. Usable at any stage of boot.
[[noreturn]] void panic(const char* format, ...) __attribute__((format(printf, 1, 2)));

} // namespace bedrock::kernel
