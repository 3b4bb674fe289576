// SPDX-License-Identifier: MIT
// Helpers shared by the firmware parsers (PVH, multiboot2, device tree): copying the command
// line into storage that outlives the boot structures, and adding ranges with a clear error when
// a RangeList is full.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kernel/boot_info.h"
#include "kernel/boot_parse_result.h"

namespace bedrock::kernel {

inline constexpr size_t kCommandLineCapacity = 4096; // the PVH limit; Linux's is 2048

// Whether `c` separates command-line words (any ASCII white space, as boot loaders treat it).
constexpr bool is_word_separator(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// Copies at most `limit` bytes of the NUL-terminated `text` into the kernel's one command-line
// buffer and points boot.command_line at it. A line longer than the buffer is cut after its last
// whole word (a word is never read cut short), and boot.command_line_cut says so.
void copy_command_line(const char* text, size_t limit, BootInfo& boot);

// The messages name the limit: keep them in step with it.
static_assert(kMaxFirmwareRanges == 128);

// Adds a RAM, reserved or no-map range to `boot`; a range that overlaps or touches one already
// there is merged into it, so only separate ranges count against kMaxFirmwareRanges.
[[nodiscard]] inline BootParseResult add_ram(BootInfo& boot, uint64_t base, uint64_t size) {
    return boot.ram.add(base, size)
               ? BootParseResult{}
               : BootParseResult{"more than 128 separate RAM ranges (the kernel's limit)"};
}

[[nodiscard]] inline BootParseResult add_reserved(BootInfo& boot, uint64_t base, uint64_t size) {
    return boot.reserved.add(base, size)
               ? BootParseResult{}
               : BootParseResult{"more than 128 separate reserved ranges (the kernel's limit)"};
}

// A no-map range is reserved too; one the list cannot hold fails the boot, since it would be
// mapped.
[[nodiscard]] inline BootParseResult add_no_map(BootInfo& boot, uint64_t base, uint64_t size) {
    const BootParseResult reserved = add_reserved(boot, base, size);
    if (!reserved.ok()) {
        return reserved;
    }
    return boot.no_map.add(base, size)
               ? BootParseResult{}
               : BootParseResult{"more than 128 separate no-map reserved ranges (the kernel's "
                                 "limit): one of them would be mapped"};
}

} // namespace bedrock::kernel
