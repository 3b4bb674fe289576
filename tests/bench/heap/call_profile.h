// SPDX-License-Identifier: MIT
// Where a counted call's instructions went: the addresses instruction_counter.h recorded for
// one call, attributed to the functions (inlined ones by their own name) that hold them, through
// addr2line on this executable's debug information. A development aid: `heap_limits --explain
// worst` prints the profile of each worst call, and with `--trails DIR` writes each worst call's
// instructions in the order they ran.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <vector>

namespace bench {

// Writes "function count, function count, ..." (most instructions first, namespaces and
// parameters left out, at most `out_bytes` with its terminator) for the instruction addresses
// in `trail`. Addresses outside this executable are named by their shared object's symbol.
void describe_trail(const std::vector<uintptr_t>& trail, char* out, size_t out_bytes);

// Writes `trail` to the file at `path` in the order the instructions ran, a line per run of
// consecutive instructions from one source line: "count function file:line". Returns false if
// it could not (the file, or addr2line).
bool write_trail(const std::vector<uintptr_t>& trail, const char* path);

} // namespace bench
