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
    buffer[length] = '\0';
    boot.command_line = buffer;
}

} // namespace bedrock::kernel
