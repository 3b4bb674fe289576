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

// A NUL-terminated text in a fixed buffer; what does not fit is cut off.
struct TextBuffer {
    char* text;
    size_t capacity;
    size_t length;
};

void write_to_buffer(void* context, const char* text, size_t length) {
    auto* buffer = static_cast<TextBuffer*>(context);
    for (size_t i = 0; i < length && buffer->length + 1 < buffer->capacity; ++i) {
        buffer->text[buffer->length++] = text[i];
    }
    buffer->text[buffer->length] = '\0';
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
    TextBuffer buffer{message, sizeof(message), 0};
    message[0] = '\0';
    format_to(write_to_buffer, &buffer, format, arguments);
    va_end(arguments);
    if (catching_traps()) {
        print("panic (caught by the test): %s\n", message);
        resume_if_catching(TrapKind::Panic, message, nullptr);
    }
    print("\npanic: %s\n", message);
    arch::exit(arch::ExitStatus::Failure);
}

} // namespace bedrock::kernel
