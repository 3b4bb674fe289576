#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs every Bedrock test: the host unit tests (plain, under ASan+UBSan, and the thread tests
# under ThreadSanitizer), then libbedrock-malloc.so under real programs (hosted), then the test
# kernel under QEMU on x86-64 and AArch64 at several memory sizes, then the examples suite
# (Bedrock installed and used from outside its tree, the example kernels booted under QEMU).
# Installs what is missing first (see tools/ensure_packages.sh).
# The last line is "N passed, N failed" over all suites; the exit status is non-zero on any
# failure (a suite that does not build counts as one failure).
#
#   ./test.sh                 all suites
#   ./test.sh host            one or more of: host host-asan host-tsan hosted x86_64 aarch64
#                             examples
set -uo pipefail
cd "$(dirname "$0")"
source tools/ensure_packages.sh
bedrock_packages build qemu host bench hosted || exit 1

suites=("$@")
((${#suites[@]})) || suites=(host host-asan host-tsan hosted x86_64 aarch64 examples)
jobs=$(nproc)
passed=0
failed=0
summary=()

for suite in "${suites[@]}"; do
    echo "=== $suite: configure and build"
    log="build/$suite-build.log"
    mkdir -p build
    if ! { cmake --preset "$suite" && cmake --build --preset "$suite" -j"$jobs"; } >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "=== $suite: BUILD FAILED (log: $log)"
        failed=$((failed + 1))
        summary+=("$suite: build failed")
        continue
    fi
    echo "=== $suite: test"
    output=$(ctest --preset "$suite" -j"$jobs" --timeout 600 2>&1)
    echo "$output" | grep -Ev '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed' || true
    # ctest's closing count: "NN% tests passed, F tests failed out of T".
    counts=$(echo "$output" | sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\1 \2/p' | tail -n 1)
    if [[ -z $counts ]]; then
        echo "=== $suite: no test summary from ctest"
        failed=$((failed + 1))
        summary+=("$suite: no result")
        continue
    fi
    read -r suite_failed suite_total <<<"$counts"
    if ((suite_total == 0)); then
        suite_failed=1 # a suite that ran nothing proves nothing
    fi
    passed=$((passed + suite_total - suite_failed))
    failed=$((failed + suite_failed))
    summary+=("$suite: $((suite_total - suite_failed)) passed, $suite_failed failed")
done

echo "=== summary"
printf '  %s\n' "${summary[@]}"
echo "$passed passed, $failed failed"
((failed == 0))
