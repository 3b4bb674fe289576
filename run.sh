#!/usr/bin/env bash
# Builds and boots Bedrock's demo/test kernel under QEMU: it prints the firmware's memory map,
# the totals, the allocators' reports and its in-kernel test results, then exits QEMU.
#
#   ./run.sh [x86_64|aarch64|all] [-- extra QEMU arguments]      (default: all)
#   ./run.sh x86_64 -- -m 8G
#   ./run.sh aarch64 -- -m 3G -s -S       (wait for GDB on :1234)
set -euo pipefail
cd "$(dirname "$0")"
source tools/ensure_packages.sh

arch=all
if [[ $# -gt 0 && $1 != -- ]]; then
    arch=$1
    shift
fi
if [[ $# -gt 0 ]]; then
    [[ $1 == -- ]] || { echo "usage: $0 [x86_64|aarch64|all] [-- qemu arguments]" >&2; exit 2; }
    shift
fi
case "$arch" in
all) arches=(x86_64 aarch64) ;;
x86_64 | aarch64) arches=("$arch") ;;
*) echo "usage: $0 [x86_64|aarch64|all] [-- qemu arguments]" >&2; exit 2 ;;
esac

bedrock_packages build qemu

status=0
for a in "${arches[@]}"; do
    cmake --preset "$a" >/dev/null
    cmake --build "build/$a" -j2 --target bedrock-kernel >/dev/null
    echo "=== $a: build/$a/run-kernel $*"
    set +e
    "build/$a/run-kernel" "$@" </dev/null
    code=$?
    set -e
    # The launcher exits 0 only when the kernel itself exited with success.
    echo "=== $a: exit status $code"
    [[ $code == 0 ]] || status=1
done
exit $status
