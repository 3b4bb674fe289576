#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tools/symbolize against a known ELF: a log with a report's call sites and a fault's pc at the
# address of a known function must come back with that function's name under each line, and
# every other line unchanged.
#
#   tests/host/symbolize_test.sh <elf with debug information>
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 <elf>" >&2; exit 2; }
elf=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
address=$(llvm-nm -C --defined-only "$elf" |
    awk '$2 ~ /^[Tt]$/ && /bedrock::kernel::parse_heap_boot_options\(char const\*\)$/ && !found { print "0x" $1; found = 1 }')
[[ -n $address ]] || { echo "FAIL: parse_heap_boot_options not found in $elf" >&2; exit 1; }
padded=$(printf '0x%016x' "$address")
log=$(printf '%s\r\n' \
    "a line without addresses" \
    "expected: bedrock:   detected at $address" \
    "bedrock:   allocated at $address $address" \
    "fault: pc $padded sp 0x0000000000001000")
output=$("$root/tools/symbolize" --elf "$elf" <<<"$log")
echo "$output"
names=$(grep -c 'parse_heap_boot_options(char const\*) at kernel/heap_boot_options.cpp:[0-9]*$' <<<"$output" || true)
if [[ $names -ne 4 ]]; then
    echo "FAIL: expected 4 symbolized addresses, found $names" >&2
    exit 1
fi
if [[ $(grep -c -v '^    ' <<<"$output") -ne 4 ]] || ! grep -qx 'a line without addresses' <<<"$output"; then
    echo "FAIL: the log's own lines did not come through unchanged" >&2
    exit 1
fi
echo "symbolize: ok"
