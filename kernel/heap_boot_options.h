// HeapBootOptions: how the test kernel's default heap runs, chosen on the kernel command line
// (QEMU's -append; PVH, multiboot2 and the device tree's /chosen/bootargs all carry it):
//   bedrock.check=off|report|abort   the default heap's check level (bedrock/heap_checks.h)
//   bedrock.guard=<N>                guard pages for every Nth checked allocation (0: none)
// Words are separated by spaces; other words are ignored. A value that is not understood is
// reported in `error` and leaves that option at its default.
#pragma once

#include <stdint.h>

#include "bedrock/heap_checks.h"

namespace bedrock::kernel {

struct HeapBootOptions {
    CheckLevel level = CheckLevel::Off;
    uint32_t guard_sample_interval = 0;
    const char* error = nullptr; // the first word that was not understood, else null
    int error_length = 0;        // its length (it is not NUL-terminated)
};

[[nodiscard]] HeapBootOptions parse_heap_boot_options(const char* command_line);

} // namespace bedrock::kernel
