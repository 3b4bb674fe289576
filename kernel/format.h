// SPDX-License-Identifier: MIT
// A small printf for the kernel console: %d %i %u %x %X %p %s %c %%, the length modifiers
// l, ll and z, the flags '-' (left-justify) and '0' (zero-pad), and a field width (digits or *).
// Anything else is printed verbatim so a bad format string shows up in the output rather than
// reading a wrong argument. Never allocates; output goes to a sink in chunks.
#pragma once

#include <stdarg.h>
#include <stddef.h>

namespace bedrock::kernel {

using FormatSink = void (*)(void* context, const char* text, size_t length);

void format_to(FormatSink sink, void* context, const char* format, va_list arguments);

// snprintf-like: writes at most capacity - 1 characters and a terminating NUL (if capacity > 0).
// Returns the length the full output would have had.
size_t format(char* buffer, size_t capacity, const char* format, ...)
    __attribute__((format(printf, 3, 4)));
size_t vformat(char* buffer, size_t capacity, const char* format, va_list arguments);

} // namespace bedrock::kernel
