#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs Bedrock (the library only) into WORK/prefix, then builds and runs tests/hosted/consumer
# against it with find_package(Bedrock): Bedrock::hosted as an adopter's host tests use it.
#   consumer.sh WORK C_COMPILER CXX_COMPILER
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$1 cc=$2 cxx=$3
rm -rf "$work" && mkdir -p "$work"
cmake -S "$root" -B "$work/bedrock" -DCMAKE_BUILD_TYPE=Release -DBEDROCK_BUILD_TESTS=OFF \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_INSTALL_PREFIX="$work/prefix" \
    >"$work/configure.log" 2>&1 || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/bedrock" -j2 >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
cmake --install "$work/bedrock" >/dev/null
test -f "$work/prefix/lib/libbedrock-malloc.so" || { echo "libbedrock-malloc.so not installed"; exit 1; }
cmake -S "$root/tests/hosted/consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$work/prefix" \
    -DCMAKE_CXX_COMPILER="$cxx" >"$work/consumer.log" 2>&1 || { cat "$work/consumer.log"; exit 1; }
cmake --build "$work/consumer" >>"$work/consumer.log" 2>&1 || { cat "$work/consumer.log"; exit 1; }
"$work/consumer/consumer"
