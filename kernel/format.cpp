// SPDX-License-Identifier: MIT
// The kernel's printf engine; see format.h for what it accepts.
#include "kernel/format.h"

#include <stdint.h>

namespace bedrock::kernel {
namespace {

struct Spec {
    bool left_justify = false;
    bool zero_pad = false;
    size_t width = 0;
};

void pad(FormatSink sink, void* context, char fill, size_t count) {
    char chunk[16];
    for (char& c : chunk) {
        c = fill;
    }
    while (count > 0) {
        const size_t n = count < sizeof(chunk) ? count : sizeof(chunk);
        sink(context, chunk, n);
        count -= n;
    }
}

void emit_field(FormatSink sink, void* context, const Spec& spec, const char* text, size_t length) {
    const size_t padding = spec.width > length ? spec.width - length : 0;
    if (!spec.left_justify) {
        pad(sink, context, spec.zero_pad ? '0' : ' ', padding);
    }
    sink(context, text, length);
    if (spec.left_justify) {
        pad(sink, context, ' ', padding);
    }
}

void emit_number(FormatSink sink, void* context, Spec spec, uint64_t magnitude, bool negative,
                 unsigned base, bool upper, const char* prefix) {
    const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char buffer[24];
    size_t at = sizeof(buffer);
    do {
        buffer[--at] = digits[magnitude % base];
        magnitude /= base;
    } while (magnitude != 0);
    size_t prefix_length = 0;
    while (prefix[prefix_length] != '\0') {
        ++prefix_length;
    }
    const size_t sign_length = (negative ? 1 : 0) + prefix_length;
    const size_t digit_count = sizeof(buffer) - at;
    if (spec.zero_pad && !spec.left_justify) {
        // Zeros go between the sign/prefix and the digits.
        if (negative) {
            sink(context, "-", 1);
        }
        sink(context, prefix, prefix_length);
        const size_t used = sign_length + digit_count;
        pad(sink, context, '0', spec.width > used ? spec.width - used : 0);
        sink(context, buffer + at, digit_count);
        return;
    }
    if (negative) {
        buffer[--at] = '-';
    }
    for (size_t i = prefix_length; i > 0; --i) {
        buffer[--at] = prefix[i - 1];
    }
    emit_field(sink, context, spec, buffer + at, sizeof(buffer) - at);
}

enum class Length { Int, Long, LongLong, Size };

uint64_t unsigned_argument(va_list& arguments, Length length) {
    switch (length) {
    case Length::Int:
        return va_arg(arguments, unsigned int);
    case Length::Long:
        return va_arg(arguments, unsigned long);
    case Length::LongLong:
        return va_arg(arguments, unsigned long long);
    case Length::Size:
        return va_arg(arguments, size_t);
    }
    return 0;
}

int64_t signed_argument(va_list& arguments, Length length) {
    switch (length) {
    case Length::Int:
        return va_arg(arguments, int);
    case Length::Long:
        return va_arg(arguments, long);
    case Length::LongLong:
        return va_arg(arguments, long long);
    case Length::Size:
        return static_cast<int64_t>(va_arg(arguments, size_t));
    }
    return 0;
}

struct BufferSink {
    char* buffer;
    size_t capacity;
    size_t length;
};

void write_to_buffer(void* context, const char* text, size_t length) {
    auto& out = *static_cast<BufferSink*>(context);
    for (size_t i = 0; i < length; ++i, ++out.length) {
        if (out.length + 1 < out.capacity) {
            out.buffer[out.length] = text[i];
        }
    }
}

} // namespace

void format_to(FormatSink sink, void* context, const char* format, va_list arguments) {
    va_list args;
    va_copy(args, arguments);
    const char* p = format;
    while (*p != '\0') {
        const char* literal = p;
        while (*p != '\0' && *p != '%') {
            ++p;
        }
        if (p != literal) {
            sink(context, literal, static_cast<size_t>(p - literal));
        }
        if (*p == '\0') {
            break;
        }
        const char* conversion_start = p++;
        Spec spec;
        for (;; ++p) {
            if (*p == '-') {
                spec.left_justify = true;
            } else if (*p == '0') {
                spec.zero_pad = true;
            } else {
                break;
            }
        }
        if (*p == '*') {
            const int width = va_arg(args, int);
            spec.width = width > 0 ? static_cast<size_t>(width) : 0;
            ++p;
        }
        while (*p >= '0' && *p <= '9') {
            spec.width = spec.width * 10 + static_cast<size_t>(*p - '0');
            ++p;
        }
        Length length = Length::Int;
        if (*p == 'z') {
            length = Length::Size;
            ++p;
        } else if (*p == 'l') {
            length = Length::Long;
            if (*++p == 'l') {
                length = Length::LongLong;
                ++p;
            }
        }
        switch (*p) {
        case 'd':
        case 'i': {
            const int64_t value = signed_argument(args, length);
            const uint64_t magnitude = value < 0 ? uint64_t{0} - static_cast<uint64_t>(value)
                                                 : static_cast<uint64_t>(value);
            emit_number(sink, context, spec, magnitude, value < 0, 10, false, "");
            break;
        }
        case 'u':
            emit_number(sink, context, spec, unsigned_argument(args, length), false, 10, false, "");
            break;
        case 'x':
        case 'X':
            emit_number(sink, context, spec, unsigned_argument(args, length), false, 16, *p == 'X',
                        "");
            break;
        case 'p':
            emit_number(sink, context, spec, reinterpret_cast<uintptr_t>(va_arg(args, void*)),
                        false, 16, false, "0x");
            break;
        case 's': {
            const char* text = va_arg(args, const char*);
            if (text == nullptr) {
                text = "(null)";
            }
            size_t n = 0;
            while (text[n] != '\0') {
                ++n;
            }
            emit_field(sink, context, spec, text, n);
            break;
        }
        case 'c': {
            const char c = static_cast<char>(va_arg(args, int));
            emit_field(sink, context, spec, &c, 1);
            break;
        }
        case '%':
            sink(context, "%", 1);
            break;
        default:
            // Unknown conversion: show it as written instead of guessing an argument.
            if (*p == '\0') {
                sink(context, conversion_start, static_cast<size_t>(p - conversion_start));
                va_end(args);
                return;
            }
            sink(context, conversion_start, static_cast<size_t>(p + 1 - conversion_start));
            break;
        }
        ++p;
    }
    va_end(args);
}

size_t vformat(char* buffer, size_t capacity, const char* format, va_list arguments) {
    BufferSink out{buffer, capacity, 0};
    format_to(write_to_buffer, &out, format, arguments);
    if (capacity > 0) {
        buffer[out.length < capacity ? out.length : capacity - 1] = '\0';
    }
    return out.length;
}

size_t format(char* buffer, size_t capacity, const char* format, ...) {
    va_list arguments;
    va_start(arguments, format);
    const size_t length = vformat(buffer, capacity, format, arguments);
    va_end(arguments);
    return length;
}

} // namespace bedrock::kernel
