// SPDX-License-Identifier: MIT
// TextLine: one line of report text built in a fixed buffer, for the reports the allocators
// print themselves (statistics, errors, leaks). No printf in the portable core.
// Invariant: the buffer always holds a NUL-terminated string; text beyond it is cut off.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/error_report.h"

namespace bedrock {

class TextLine {
public:
    TextLine& text(const char* text) {
        while (*text != '\0' && m_length + 1 < sizeof(m_buffer)) {
            m_buffer[m_length++] = *text++;
        }
        m_buffer[m_length] = '\0';
        return *this;
    }
    // `value` in decimal, right-aligned in `width` columns.
    TextLine& number(uint64_t value, unsigned width = 0) {
        char digits[21];
        unsigned count = 0;
        do {
            digits[count++] = static_cast<char>('0' + value % 10);
            value /= 10;
        } while (value != 0);
        return pad(count, width).reversed(digits, count);
    }
    // "0x" and `value` in lower-case hexadecimal, without leading zeros.
    TextLine& hex(uint64_t value) {
        char digits[16];
        unsigned count = 0;
        do {
            digits[count++] = "0123456789abcdef"[value % 16];
            value /= 16;
        } while (value != 0);
        return text("0x").reversed(digits, count);
    }
    TextLine& hex(const void* pointer) { return hex(reinterpret_cast<uintptr_t>(pointer)); }
    // The non-null frames of `trace`, each as " 0x...".
    TextLine& trace(const CallTrace& trace) {
        for (const void* frame : trace.frames) {
            if (frame != nullptr) {
                text(" ").hex(frame);
            }
        }
        return *this;
    }
    void write(LineWriter writer, void* context) const { writer(context, m_buffer); }

private:
    TextLine& pad(unsigned count, unsigned width) {
        for (unsigned column = count; column < width; ++column) {
            text(" ");
        }
        return *this;
    }
    TextLine& reversed(const char* digits, unsigned count) {
        char ordered[22];
        for (unsigned i = 0; i < count; ++i) {
            ordered[i] = digits[count - 1 - i];
        }
        ordered[count] = '\0';
        return text(ordered);
    }

    char m_buffer[160] = {};
    size_t m_length = 0;
};

} // namespace bedrock
