#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The steps of the examples suite (tests/adopt/CMakeLists.txt): Bedrock built and used the way
# an adopter does, from outside its tree. Each step works in its own directory under WORK.
#
#   adopt_test.sh install WORK NAME [cmake args...]
#       configures Bedrock's root alone (the library; BEDROCK_BUILD_TESTS=OFF), builds it and
#       installs it into WORK/prefix-NAME
#   adopt_test.sh program WORK NAME SOURCE PROGRAMS [cmake args...]
#       configures the project SOURCE into WORK/NAME, builds it, runs each of the comma-separated
#       PROGRAMS (WORK/NAME/<program>); passes when each exits 0 and its last line ends in "ok"
#   adopt_test.sh pkg-config WORK NAME PREFIX-NAME CC FILE
#       compiles the C FILE with CC -std=c11 -pedantic -Werror and the flags of the installed
#       bedrock-c.pc, runs it; passes as `program` does
#   adopt_test.sh kernel WORK NAME SOURCE ARCH [cmake args...]
#       configures and builds the example kernel SOURCE, boots it under QEMU; passes when QEMU
#       reports the kernel's success exit and the last line ends in "ok"
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
step=$1 work=$2 name=$3
shift 3
dir=$work/$name
jobs=2

configure_and_build() { # source, cmake args...
    local source=$1
    shift
    rm -rf "$dir"
    cmake -S "$source" -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >"$dir.configure.log" 2>&1 ||
        { cat "$dir.configure.log"; exit 1; }
    cmake --build "$dir" -j"$jobs"
}

# Passes when the status is the expected one and the last line of the output ends in "ok".
judge() { # output, status, expected status
    local output=$1 status=$2 expected=$3 last
    echo "$output"
    last=$(printf '%s\n' "$output" | tr -d '\r' | sed '/^$/d' | tail -n 1)
    echo "exit status $status (expected $expected)"
    [[ $status == "$expected" && $last == *ok ]] || { echo "FAIL: last line '$last'"; exit 1; }
}

case $step in
install)
    configure_and_build "$root" -DBEDROCK_BUILD_TESTS=OFF -DCMAKE_INSTALL_PREFIX="$work/prefix-$name" "$@"
    rm -rf "$work/prefix-$name"
    cmake --install "$dir"
    ;;
program)
    source=$1 programs=$2
    shift 2
    configure_and_build "$source" "$@"
    for program in ${programs//,/ }; do
        status=0
        output=$("$dir/$program" 2>&1) || status=$?
        judge "$output" "$status" 0
    done
    ;;
pkg-config)
    prefix=$work/prefix-$1 cc=$2 file=$3
    mkdir -p "$dir"
    export PKG_CONFIG_PATH=$(dirname "$(find "$prefix" -name bedrock-c.pc)")
    # shellcheck disable=SC2046 # the flags are words
    "$cc" -std=c11 -pedantic -Wall -Wextra -Wconversion -Werror -o "$dir/program" "$file" \
        $(pkg-config --cflags --libs bedrock-c)
    status=0
    output=$("$dir/program" 2>&1) || status=$?
    judge "$output" "$status" 0
    ;;
kernel)
    source=$1 arch=$2
    shift 2
    configure_and_build "$source" "$@"
    case $arch in
    x86_64)
        qemu=(qemu-system-x86_64 -M pc -m 64M -device isa-debug-exit,iobase=0xf4,iosize=0x04)
        success=33 ;; # isa-debug-exit: (16 << 1) | 1
    aarch64)
        qemu=(qemu-system-aarch64 -M virt -cpu cortex-a57 -m 64M -semihosting-config enable=on,target=native)
        success=0 ;;
    esac
    status=0
    output=$(timeout 60 "${qemu[@]}" -display none -serial stdio -monitor none -no-reboot \
        -kernel "$dir/example-kernel.elf" </dev/null 2>&1) || status=$?
    judge "$output" "$status" "$success"
    ;;
*)
    echo "adopt_test.sh: unknown step '$step'" >&2
    exit 2
    ;;
esac
