// SPDX-License-Identifier: MIT
// The GDB sample: with `bedrock.gdb_sample=1` on the command line, the kernel allocates a known
// set of blocks on the default heap (and one on a region heap of its own), frees two of them,
// prints the heap's figures and the blocks' addresses as `gdb-sample:` lines, and calls
// bedrock_gdb_sample_stop() with them all in place, so that a debugger stopped there sees a heap
// with live, cached and free blocks. tools/gdb/bedrock.py's test (tests/gdb/) compares what its
// commands print with those lines. Everything is freed again before the tests run.
#pragma once

#include <stdint.h>

namespace bedrock::kernel {

// The sample's addresses, for the debugger (`bedrock block bedrock::kernel::g_gdb_sample.live`).
struct GdbSample {
    void* live;           // a live 48-byte block
    void* cached;         // a freed 48-byte block, now in the boot CPU's cache
    void* medium;         // a live 5000-byte medium block
    void* freed_medium;   // a freed medium block
    void* large;          // a live 2 MiB block: a large run
    const void* not_heap; // an address in the kernel image: no heap's
    void* region_heap;    // a heap over a 64 KiB region of the kernel image's .bss
    void* region_block;   // a live 100-byte block of it
};
extern GdbSample g_gdb_sample;

// The command-line word that runs the sample.
inline constexpr char kGdbSampleOption[] = "bedrock.gdb_sample=1";

// Runs the sample if the command line asks for it. Boot CPU only, before the tests.
void run_gdb_sample(const char* command_line);

} // namespace bedrock::kernel

// Where the debugger stops: does nothing, never inlined.
extern "C" void bedrock_gdb_sample_stop();
