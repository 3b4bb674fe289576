#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages Bedrock's commands need, if any are missing. Sourced by run.sh,
# test.sh and bench.sh; takes the package groups to check as arguments:
#   build  - clang, lld, llvm tools, CMake, make, clang-format; gcc, g++ and pkg-config (the
#            examples suite builds Bedrock as adopters do, with gcc too)
#   qemu   - QEMU for both architectures, GRUB and xorriso for the GRUB boot test, dtc,
#            gdb-multiarch for the gdb_heap_inspector tests (tools/gdb/bedrock.py)
#   host   - GoogleTest, clang's sanitizer/fuzzer runtime
#   bench  - Google Benchmark, valgrind, the peer allocators (jemalloc, tcmalloc, mimalloc)
#   hosted - the real programs the hosted suite runs under libbedrock-malloc.so (python3,
#            sqlite3, git, xz, coreutils' sort, gcc from build)
#   gdb    - gdb for the x86-64 kernel, gdb-multiarch for the AArch64 one (./run.sh --gdb)
#   plot   - matplotlib for bench.sh's figures (tools/plot_bench.py)
# As root it runs apt-get; otherwise it prints the exact command and exits non-zero.

bedrock_packages() {
    local -a wanted=()
    local group
    for group in "$@"; do
        case "$group" in
        build) wanted+=(clang lld llvm cmake make clang-format gcc g++ pkg-config) ;;
        qemu) wanted+=(qemu-system-x86 qemu-system-arm grub-pc-bin grub-common xorriso mtools
                       device-tree-compiler gdb-multiarch) ;;
        host) wanted+=(libgtest-dev libclang-rt-14-dev) ;;
        bench) wanted+=(libbenchmark-dev valgrind libjemalloc-dev libgoogle-perftools-dev
                        libmimalloc-dev) ;;
        hosted) wanted+=(python3 sqlite3 git xz-utils coreutils) ;;
        gdb) wanted+=(gdb gdb-multiarch) ;;
        plot) wanted+=(python3-matplotlib) ;;
        *) echo "ensure_packages: unknown group '$group'" >&2; return 2 ;;
        esac
    done
    local -a missing=()
    local package
    for package in "${wanted[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$package")
        fi
    done
    ((${#missing[@]} == 0)) && return 0

    local command="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
    if [[ $(id -u) -ne 0 ]]; then
        echo "Bedrock needs these Debian packages: ${missing[*]}" >&2
        echo "Run as root:  $command" >&2
        return 1
    fi
    # On stderr: a caller's stdout may be its result (./bench.sh --summary: key value lines only).
    echo "Installing: ${missing[*]}" >&2
    apt-get update -qq >&2 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
}
