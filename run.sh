#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds and boots Bedrock's demo/test kernel under QEMU: it prints the firmware's memory map,
# the totals, the allocators' reports and its in-kernel test results, then exits QEMU.
#
#   ./run.sh [x86_64|aarch64|all] [-- extra QEMU arguments]      (default: all)
#   ./run.sh x86_64 -- -m 8G
#   ./run.sh aarch64 --gdb [-- extra QEMU arguments]
#
# --gdb (one arch): builds, starts QEMU halted with its GDB server on :1234 (-s -S), waits
# until the port listens, then runs gdb (x86-64) or gdb-multiarch (AArch64) on the kernel's ELF,
# connected and stopped at kernel_main. The kernel's console goes to build/<arch>/gdb-console.log
# (printed when gdb exits); QEMU is stopped when gdb exits.
set -euo pipefail
cd "$(dirname "$0")"
source tools/ensure_packages.sh

usage() {
    echo "usage: $0 [x86_64|aarch64|all] [--gdb] [-- qemu arguments]" >&2
    exit 2
}

arch=all
gdb=no
while [[ $# -gt 0 && $1 != -- ]]; do
    case "$1" in
    x86_64 | aarch64 | all) arch=$1 ;;
    --gdb) gdb=yes ;;
    *) usage ;;
    esac
    shift
done
if [[ $# -gt 0 ]]; then
    shift # the --
fi
case "$arch" in
all) arches=(x86_64 aarch64) ;;
*) arches=("$arch") ;;
esac

if [[ $gdb == yes ]]; then
    [[ $arch != all ]] || { echo "$0: --gdb needs one architecture: x86_64 or aarch64" >&2; exit 2; }
    bedrock_packages build qemu gdb
    cmake --preset "$arch" >/dev/null
    cmake --build "build/$arch" -j2 --target bedrock-kernel-boot >/dev/null
    port=1234
    if ss -ltn "sport = :$port" | grep -q LISTEN; then
        echo "$0: port $port is already in use (another QEMU waiting for GDB?)" >&2
        exit 1
    fi
    elf=build/$arch/tests/kernel/bedrock-kernel.elf
    console=build/$arch/gdb-console.log
    debugger=gdb
    [[ $arch == x86_64 ]] || debugger=gdb-multiarch
    # QEMU in a session of its own, so gdb's Ctrl-C interrupts the kernel, not QEMU, and the
    # whole launcher (a shell, QEMU, tee) can be stopped as one process group.
    setsid "build/$arch/run-kernel" "$@" -s -S </dev/null >"$console" 2>&1 &
    qemu=$!
    for _ in $(seq 100); do
        ss -ltn "sport = :$port" | grep -q LISTEN && break
        kill -0 "$qemu" 2>/dev/null || break
        sleep 0.1
    done
    if ! ss -ltn "sport = :$port" | grep -q LISTEN; then
        echo "$0: QEMU did not open its GDB server on :$port" >&2
        cat "$console" >&2
        kill -- "-$qemu" 2>/dev/null || true
        exit 1
    fi
    echo "=== $arch: QEMU waits on :$port; $debugger $elf (console: $console)"
    set +e
    "$debugger" -q "$elf" -ex "target remote :$port" -ex 'break bedrock::kernel::kernel_main' \
        -ex continue
    # gdb may have detached and left the kernel running to its end: give it up to 10 s, then
    # stop QEMU.
    for _ in $(seq 100); do
        kill -0 "$qemu" 2>/dev/null || break
        sleep 0.1
    done
    kill -- "-$qemu" 2>/dev/null
    wait "$qemu"
    code=$?
    set -e
    echo "=== $arch: console output ($console):"
    cat "$console"
    echo "=== $arch: exit status $code"
    exit "$code"
fi

bedrock_packages build qemu
# QEMU's own GDB server (-s, -gdb ...) by hand: the debugger is installed all the same.
for argument in "$@"; do
    if [[ $argument == -s || $argument == -gdb ]]; then
        bedrock_packages gdb
        echo "=== attach with gdb (x86_64) or gdb-multiarch (aarch64) -ex 'target remote :1234'" \
            "build/<arch>/tests/kernel/bedrock-kernel.elf, or use ./run.sh <arch> --gdb"
        break
    fi
done

status=0
for a in "${arches[@]}"; do
    cmake --preset "$a" >/dev/null
    cmake --build "build/$a" -j2 --target bedrock-kernel-boot >/dev/null
    echo "=== $a: build/$a/run-kernel $*"
    set +e
    "build/$a/run-kernel" "$@" </dev/null
    code=$?
    set -e
    # The launcher exits 0 only when the kernel itself exited with success and its closing line
    # is its verdict, "verdict: PASS (...)".
    echo "=== $a: exit status $code"
    [[ $code == 0 ]] || status=1
done
exit $status
