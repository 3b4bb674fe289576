#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds and runs the benchmarks. First the page frame allocator (tests/bench/page_frame_allocator:
# allocate+free pairs per order and a random mix, medians of 5 runs, and instructions per
# operation with callgrind; orders 0-3 take the CPU page lists, the cold pair does without); then the heap (tests/bench/heap): Bedrock's heap against glibc
# malloc, jemalloc, tcmalloc and mimalloc on the same workloads, then instructions per
# malloc+free pair with callgrind for the fixed sizes; then the cost of checked mode per level
# (compiled out, off, report, report with guard pages), time and footprint; last the heap's
# limits (tests/bench/heap/heap_limits.cpp: efficiency, trace extent, worst-case instructions per
# call, smallest region, page frame allocator metadata), the time ratios against mimalloc and
# glibc (heap_bench --summary) and the page frame allocator's order-0 pair with and without CPU
# page lists as `key value` lines; last, real programs (tests/bench/real_programs.sh: python3,
# sqlite3, git, cc, xz, sort) under glibc and libbedrock-malloc.so, mimalloc, jemalloc and
# tcmalloc preloaded: wall time and peak RSS, with hosted.rss_vs_glibc.<program> keys, then
# many_threads.c (hosted.threads.<n>.time_vs_glibc) and sliding_window.c (hosted.window.*).
#   ./bench.sh            the tables, then the key lines with how each figure was obtained
#   ./bench.sh --csv      workload,allocator,ns_per_op,footprint_ratio rows only (peers)
#   ./bench.sh --summary  the key lines only (2-3 minutes: the worst-case instruction counts
#                         single-step every heap call)
# A full run (no option) ends by drawing docs/bench-*.png with tools/plot_bench.py.
# While developing, build/bench/heap/heap_limits --quick [section...] runs shorter traces, and
# heap_limits --explain worst shows where each worst call's instructions go, per function.
set -eu
cd "$(dirname "$0")"

mode=tables
case "${1:-}" in
--csv) mode=csv ;;
--summary) mode=summary ;;
"") ;;
*) echo "usage: $0 [--csv | --summary]" >&2; exit 2 ;;
esac

source tools/ensure_packages.sh
# qemu: smp.scaling.4 boots the x86-64 test kernel; hosted: the real programs; plot: the figures.
bedrock_packages build bench hosted qemu plot || exit 1

build=build/bench
cmake -S tests/bench -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >&2
if [ "$mode" = summary ]; then
    cmake --build "$build" -j2 --target heap_bench heap_bench_mimalloc heap_limits pfa_bench \
        pfa_bench_lto >&2
else
    cmake --build "$build" -j2 >&2
fi

# Instructions per malloc+free pair of `size` bytes for `binary --run run_as`: callgrind counts
# only fixed_pairs(), which runs 1.1 x pairs times.
pairs=100000
instructions_per_pair() { # binary run_as size
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        --collect-atstart=no --toggle-collect='*fixed_pairs*' \
        "$build/heap/$1" --run "$2" "fixed-$3" "$pairs" 2>&1 >/dev/null |
        sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' |
        awk -v pairs="$pairs" '{ printf "%.0f", $1 / (pairs * 1.1) }'
}

# Instructions per operation of `binary mode arguments` in the function matching `pattern`
# (callgrind, total / 100000 operations).
pfa_build=$build/page_frame_allocator
count_instructions() { # pattern binary mode arguments...
    pattern=$1 binary=$2
    shift 2
    valgrind --tool=callgrind --callgrind-out-file=/dev/null --collect-atstart=no \
        --toggle-collect="$pattern" "$pfa_build/$binary" "$@" 2>&1 >/dev/null |
        sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' | awk '{ printf "%.0f", $1 / 100000 }'
}
# pfa.pair_instructions.order0: allocate(0) + free(0) from the calling CPU's page list, the
# allocator and the platform hooks in one link-time-optimised program (pfa_bench_lto);
# .cold: the same pair without CPU page lists, splitting a 1 GiB block down and merging it
# back up (pfa_bench, built as the other tables).
pfa_keys() {
    echo "pfa.pair_instructions.order0 $(count_instructions '*run_pairs*' pfa_bench_lto --pairs 0 100000)"
    echo "pfa.pair_instructions.order0.cold $(count_instructions '*run_pairs*' pfa_bench --cold-pairs 0 100000)"
}

# The real-program benchmark over libbedrock-malloc.so (the hosted preset's build).
real_programs() {
    cmake --preset hosted >&2 && cmake --build build/hosted -j2 --target bedrock_malloc >&2
    tests/bench/real_programs.sh build/hosted/hosted/libbedrock-malloc.so "$@"
}

if [ "$mode" = summary ]; then
    # heap.pair_instructions.16: Bedrock as shipped (checked mode compiled in, level off).
    "$build/heap/heap_limits" --summary efficiency trace worst
    pair16=$(instructions_per_pair heap_bench bedrock 16)
    echo "heap.pair_instructions.16 ${pair16:-0}"
    # Times against mimalloc and glibc (16-byte pairs, the larson-like threaded workload).
    "$build/heap/heap_bench" --summary
    "$build/heap/heap_limits" --summary region pfa
    pfa_keys
    # pfa.run_search_us.fragmented_4GiB: the slowest allocate_pages() search for free pages in a
    # row over a 4 GiB region fragmented into stretches of 1-3 free pages (median microseconds).
    "$pfa_build/pfa_bench" --run-search | sed -n 's/^\(pfa\.run_search_us\.[^ ]* [0-9]*\)$/\1/p'
    # smp.scaling.4: small-block malloc+free pairs per second on 4 CPUs over 1 CPU, in the x86-64
    # test kernel under QEMU (kernel/boot_bench.h; needs qemu-system-x86, as ./test.sh x86_64).
    cmake --preset x86_64 >&2 && cmake --build build/x86_64 -j2 --target bedrock-kernel-boot >&2
    scaling=$(build/x86_64/run-kernel -smp 4 -append bedrock.bench=1 </dev/null 2>/dev/null |
        sed -n 's/^bench: smp\.scaling\.4 \([0-9.]*\).*/\1/p')
    if [ -z "$scaling" ]; then
        echo "bench.sh: smp.scaling.4 not measured (the x86-64 kernel printed no bench line)" >&2
        unmeasured=1
    fi
    echo "smp.scaling.4 ${scaling:-0}"
    # hosted.rss_vs_glibc.<program>: peak RSS under libbedrock-malloc.so / under glibc's malloc.
    real_programs --summary
    exit "${unmeasured:-0}"
fi

if [ "$mode" = tables ]; then
    echo "page frame allocator: ns per operation (median of 5)"
    "$pfa_build/pfa_bench" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
        2>/dev/null | sed -n 's/^BM_\([^ ]*\)_median *\([0-9.]* ns\).*/  \1 \2/p'
    echo "page frame allocator: instructions per operation (callgrind; /0 from a CPU page list)"
    for order in 0 4 10 18; do
        echo "  AllocateFreePair/$order $(count_instructions '*run_pairs*' pfa_bench --pairs "$order" 100000)"
    done
    echo "  AllocateFreePairCold/0 $(count_instructions '*run_pairs*' pfa_bench --cold-pairs 0 100000)"
    echo "  AllocateFreePair/0, link-time optimised $(count_instructions '*run_pairs*' pfa_bench_lto --pairs 0 100000)"
    echo "  RandomMix $(count_instructions '*run_mix*' pfa_bench --mix 100000)"
    echo
fi

heap_build=$build/heap

if [ "$mode" = csv ]; then
    exec "$heap_build/heap_bench" --csv
fi
"$heap_build/heap_bench"

echo
echo "instructions per malloc+free pair (callgrind)"
: >"$build/instructions.csv" # size,allocator,count for tools/plot_bench.py
printf '%-10s' size
for allocator in bedrock glibc jemalloc tcmalloc mimalloc; do printf '%10s' "$allocator"; done
echo
for size in 16 64 256 1024 4096 65536; do
    printf '%-10s' "$size"
    for allocator in bedrock glibc jemalloc tcmalloc mimalloc; do
        case $allocator in
        bedrock | glibc) binary=heap_bench ;;
        *) binary=heap_bench_$allocator ;;
        esac
        count=$(instructions_per_pair "$binary" "$allocator" "$size")
        if [ "$allocator" = bedrock ] && [ "$size" = 16 ]; then pair16=$count; fi
        echo "$size,$allocator,$count" >>"$build/instructions.csv"
        printf '%10s' "$count"
    done
    echo
done

echo
echo "checked mode: cost per level (footprint = peak pages held / peak live bytes)"
"$heap_build/heap_bench" --checked

echo
echo "checked mode: instructions per malloc+free pair (callgrind)"
printf '%-10s' size
for level in compiled-out off report report+guard; do printf '%14s' "$level"; done
echo
for size in 16 256 4096; do
    printf '%-10s' "$size"
    for level in compiled-out off report report+guard; do
        case $level in
        compiled-out) binary=heap_bench_unchecked run_as=bedrock ;;
        off) binary=heap_bench run_as=bedrock ;;
        report) binary=heap_bench run_as=bedrock-report ;;
        report+guard) binary=heap_bench run_as=bedrock-guard ;;
        esac
        printf '%14s' "$(instructions_per_pair "$binary" "$run_as" "$size")"
    done
    echo
done

echo
echo "heap limits: the figures of ./bench.sh --summary"
"$heap_build/heap_limits" efficiency trace worst
echo "heap pair cost: instructions per 16-byte malloc+free pair, Bedrock as shipped (checked mode"
echo "compiled in, level off)"
echo "  callgrind: bedrock, size 16 in the first table of instructions per pair above"
echo "heap.pair_instructions.16 ${pair16:-0}"
echo "heap times against the peers: Bedrock's time / the peer's for 16-byte pairs, the peer's"
echo "time / Bedrock's (throughput) for the larson-like threaded workload; medians of 5 runs"
"$heap_build/heap_bench" --summary
"$heap_build/heap_limits" region pfa
echo "page frame allocator pairs: allocate(0) + free(0), callgrind; order0 from the calling CPU's"
echo "page list (pfa_bench_lto: the platform hooks inlined), order0.cold without CPU page lists"
pfa_keys

# The README's figures (docs/bench-*.png): time and footprint per workload, instructions per pair,
# drawn by Debian's python3 (python3-matplotlib).
"$heap_build/heap_bench" --csv >"$build/heap.csv" &&
    /usr/bin/python3 tools/plot_bench.py "$build/heap.csv" "$build/instructions.csv" docs

echo
real_programs
