// Console output and the panic path, on top of arch::console_write and arch::exit.
#include "kernel/console.h"

#include "kernel/arch.h"
#include "kernel/format.h"

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
    print("\npanic: ");
    va_list arguments;
    va_start(arguments, format);
    vprint(format, arguments);
    va_end(arguments);
    print("\n");
    arch::exit(arch::ExitStatus::Failure);
}

} // namespace bedrock::kernel
