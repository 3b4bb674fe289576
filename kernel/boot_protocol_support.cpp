// SPDX-License-Identifier: MIT
// Shared helpers of the firmware parsers; see boot_protocol_support.h.
#include "kernel/boot_protocol_support.h"

namespace bedrock::kernel {

void copy_command_line(const char* text, size_t limit, BootInfo& boot) {
    static char buffer[kCommandLineCapacity];
    size_t length = 0;
    while (length < limit && length + 1 < kCommandLineCapacity && text[length] != '\0') {
        buffer[length] = text[length];
        ++length;
    }
    const bool cut = length < limit && text[length] != '\0';
    // Cut inside a word: the word goes too, so that "guard=100" is never read as "guard=1".
    if (cut && !is_word_separator(text[length])) {
        while (length > 0 && !is_word_separator(buffer[length - 1])) {
            --length;
        }
    }
    buffer[length] = '\0';
    boot.command_line = buffer;
    boot.command_line_cut = cut;
}

} // namespace bedrock::kernel
