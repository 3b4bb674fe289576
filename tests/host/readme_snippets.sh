#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Compiles every C and C++ snippet of a Markdown file (the README) against Bedrock's public
# headers, hosted and (with clang) freestanding for AArch64, so the documentation cannot drift
# from the API. Fenced blocks by their info string:
#   ```cpp            a complete source file, compiled as it is
#   ```cpp fragment   statements: compiled as the body of a function that has
#                     bedrock::Heap& heap, bedrock::Heap& other_heap and
#                     bedrock::PageFrameAllocator& frames in scope, after every public header
#   ```c              a complete C source file (C11)
# Other blocks (sh, cmake, text) are not compiled.
#
#   tests/host/readme_snippets.sh <markdown file> <c++ compiler> <c compiler> <include dir>...
# The include directories: alloc/include and the build's generated one (bedrock/version.h).
set -euo pipefail
[[ $# -ge 4 ]] || {
    echo "usage: $0 <markdown file> <c++ compiler> <c compiler> <include dir>..." >&2
    exit 2
}
markdown=$1
cxx=$2
cc=$3
shift 3
include=$1 # the public headers, all included before a fragment
includes=()
for directory in "$@"; do includes+=(-I "$directory"); done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One file per snippet: <n>.<kind> with kind cpp, fragment or c; <n>.line holds its first line.
awk -v dir="$work" '
    /^```/ && !inside {
        info = substr($0, 4)
        kind = info == "cpp" ? "cpp" : info == "cpp fragment" ? "fragment" : info == "c" ? "c" : ""
        inside = 1
        if (kind != "") { ++count; file = dir "/" count "." kind; print NR + 1 > (dir "/" count ".line") }
        next
    }
    /^```/ && inside { inside = 0; if (kind != "") close(file); kind = ""; next }
    inside && kind != "" { print > file }
' "$markdown"

headers=$(cd "$include" && ls bedrock/*.h | grep -v -e '^bedrock/new\.h$' -e '^bedrock/assert\.h$')
# As strict as an adopter's build: a fragment's own variables may go unused, nothing else may.
warnings=(-Wall -Wextra -Werror -Wno-unused-variable -Wno-unused-but-set-variable
          -Wno-unused-function)
cxx_warnings=""
if ! "$cxx" --version | grep -q clang; then
    cxx_warnings=-Wuseless-cast # gcc's, C++ only: a cast to the type a value already has
fi
freestanding=()
if "$cxx" --version | grep -q clang; then
    freestanding=(--target=aarch64-unknown-none-elf -ffreestanding -nostdlibinc)
fi

compiled=0
failed=0
for snippet in $(ls "$work" | grep -v '\.line$' | sort -n); do
    number=${snippet%%.*}
    kind=${snippet#*.}
    line=$(cat "$work/$number.line")
    source=$work/$snippet
    case $kind in
    fragment)
        source=$work/$number-wrapped.cpp
        {
            for header in $headers; do echo "#include \"$header\""; done
            echo "void run_the_code_under_test();"
            echo "void readme_snippet([[maybe_unused]] bedrock::Heap& heap,"
            echo "                    [[maybe_unused]] bedrock::Heap& other_heap,"
            echo "                    [[maybe_unused]] bedrock::PageFrameAllocator& frames) {"
            echo "#line $line \"$markdown\""
            cat "$work/$snippet"
            echo "}"
        } >"$source"
        ;;
    cpp) cp "$work/$snippet" "$work/$number-whole.cpp"; source=$work/$number-whole.cpp ;;
    c) cp "$work/$snippet" "$work/$number-whole.c"; source=$work/$number-whole.c ;;
    esac
    if [[ $kind == c ]]; then
        compilers=("$cc -std=c11")
    else
        compilers=("$cxx -std=c++20 -fno-exceptions -fno-rtti $cxx_warnings")
    fi
    for compiler in "${compilers[@]}"; do
        for mode in hosted freestanding; do
            flags=()
            if [[ $mode == freestanding ]]; then
                ((${#freestanding[@]})) || continue
                flags=("${freestanding[@]}")
            fi
            # shellcheck disable=SC2086 # the compiler word carries its language flags
            if ! errors=$($compiler "${flags[@]}" -fsyntax-only "${warnings[@]}" "${includes[@]}" \
                "$source" 2>&1); then
                echo "FAIL: the $kind snippet at $markdown:$line ($mode):"
                echo "$errors"
                failed=$((failed + 1))
            fi
        done
    done
    compiled=$((compiled + 1))
done

echo "$compiled snippets of $markdown compiled, $failed failures"
((compiled > 0 && failed == 0))
