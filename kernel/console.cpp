// SPDX-License-Identifier: MIT
// Console output and the panic path, on top of arch::console_write and arch::exit.
#include "kernel/console.h"

#include "kernel/arch.h"
#include "kernel/format.h"
#include "kernel/trap.h"

namespace bedrock::kernel {
namespace {

void write_to_console(void*, const char* text, size_t length) {
    arch::console_write(text, length);
}

} // namespace

void vprint(const char* format, va_list arguments) {
    format_to(write_to_console, nullptr, format, arguments);
}

void print(const char* format, ...) {
    va_list arguments;
    va_start(arguments, format);
    vprint(format, arguments);
    va_end(arguments);
}

void panic(const char* format, ...) {
    char message[192];
    va_list arguments;
    va_start(arguments, format);
    vformat(message, sizeof(message), format, arguments);
    va_end(arguments);
    if (catching_traps()) {
        print("panic (caught by the test): %s\n", message);
        resume_if_catching(TrapKind::Panic, message, nullptr);
    }
    print("\npanic: %s\n", message);
    arch::exit(arch::ExitStatus::Failure);
}

} // namespace bedrock::kernel
