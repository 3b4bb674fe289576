// SPDX-License-Identifier: MIT
// The boot benchmark: a few `bench: <key> <value>` lines in every boot log, on both arches.
//
//   bench: heap.pair_ns.64 <n>      one bedrock_malloc(64) + bedrock_free() pair on the default
//                                   heap, in nanoseconds of arch::nanoseconds()
//   bench: pfa.pair_ns.order0 <n>   one page_frame_allocator().allocate(0) + free() pair
// Under QEMU's `-icount shift=0` the virtual clock advances one nanosecond per guest
// instruction, so these figures are instructions per pair, repeatable to the instruction (no
// host noise). Without -icount they are host-speed nanoseconds.
//
// With `bedrock.bench=1` on the command line, and more than one CPU online, also the scaling of
// small-block malloc/free pairs (each CPU on its own blocks, for kScalingWindow):
//   bench: smp.ops_per_second.1 <n>    the boot CPU alone
//   bench: smp.ops_per_second.<N> <n>  all N CPUs at once (summed)
//   bench: smp.scaling.<N> <ratio>     the second over the first, two decimals
// -icount serialises the virtual CPUs, so the scaling figure is only meaningful without it.
#pragma once

namespace bedrock::kernel {

// The command-line word that adds the SMP scaling figures.
inline constexpr char kBootBenchOption[] = "bedrock.bench=1";

// Runs after the allocators and secondary CPUs are up, before the tests. Boot CPU only.
void run_boot_benchmark(const char* command_line);

} // namespace bedrock::kernel
