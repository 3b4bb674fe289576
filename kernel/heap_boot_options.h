// SPDX-License-Identifier: MIT
// HeapBootOptions: how the test kernel's default heap runs, chosen on the kernel command line
// (QEMU's -append; PVH, multiboot2 and the device tree's /chosen/bootargs all carry it):
//   bedrock.check=off|report|abort   the default heap's check level (bedrock/heap_checks.h)
//   bedrock.guard=<N>                guard pages for every Nth checked allocation (0: none);
//                                    needs bedrock.check=report or abort
// Words are separated by spaces; the last word for an option wins. Words that do not start with
// "bedrock." belong to someone else and are ignored, and so are the test kernel's own words
// (bedrock.bench=1, boot_bench.h; bedrock.gdb_sample=1, gdb_sample.h). Every other problem is
// kept in `errors` and leaves its option at the default: a bedrock.* word that is no option, a
// value that is not understood, and bedrock.guard=N (N > 0) with checking off, which would do
// nothing.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bedrock/error_report.h"
#include "bedrock/heap_checks.h"

namespace bedrock::kernel {

struct HeapBootOptionError {
    const char* word;    // the word as written (not NUL-terminated)
    int length;          // its length
    const char* problem; // what is wrong with it, one phrase
};

struct HeapBootOptions {
    static constexpr size_t kMaxErrors = 8;

    CheckLevel level = CheckLevel::Off;
    uint32_t guard_sample_interval = 0;
    // Every problem found counts; the first kMaxErrors are kept, in command-line order.
    size_t error_count = 0;
    HeapBootOptionError errors[kMaxErrors] = {};
};

[[nodiscard]] HeapBootOptions parse_heap_boot_options(const char* command_line);

// Writes one line per problem in `options` (none if there is none), e.g.
//   heap: command line: bedrock.guard=8 ignored: needs bedrock.check=report or abort
// and, after the last, one line that lists the options.
void describe_heap_boot_option_errors(const HeapBootOptions& options, LineWriter write,
                                      void* context);

} // namespace bedrock::kernel
