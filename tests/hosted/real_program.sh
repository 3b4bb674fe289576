#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A real, allocation-heavy program from Debian under libbedrock-malloc.so:
#   real_program.sh PRELOAD WORK NAME
# runs workload NAME (tests/hosted/workloads.sh) without the preload, then with it at
# BEDROCK_CHECK=off and at BEDROCK_CHECK=report; passes when each run gives the same stdout and exit status as the run
# without, and no stderr holds a Bedrock report ("bedrock:"), each from a fresh WORK/NAME.
set -uo pipefail
preload=$1 work=$2 name=$3
dir=$work/$name

# shellcheck source=tests/hosted/workloads.sh
source "$(dirname "${BASH_SOURCE[0]}")/workloads.sh"

run() { # label, env...
    local label=$1
    shift
    rm -rf "$dir" && mkdir -p "$dir"
    (cd "$dir" && env "$@" bash -c "$(declare -f "${name}_workload"); dir=$dir; ${name}_workload") \
        >"$work/$name.$label.out" 2>"$work/$name.$label.err"
    echo $? >"$work/$name.$label.status"
}

declare -F "${name}_workload" >/dev/null || { echo "unknown workload $name"; exit 2; }
run plain
run off LD_PRELOAD="$preload" BEDROCK_CHECK=off
run report LD_PRELOAD="$preload" BEDROCK_CHECK=report
verdict=0
for label in plain off report; do
    echo "--- $label: exit $(cat "$work/$name.$label.status")"
    cat "$work/$name.$label.out"
done
for label in off report; do
    if ! cmp -s "$work/$name.plain.out" "$work/$name.$label.out" ||
        ! cmp -s "$work/$name.plain.status" "$work/$name.$label.status"; then
        echo "FAIL: $label: output or exit status differs from the run without Bedrock"
        verdict=1
    fi
    if grep -q 'bedrock:' "$work/$name.$label.err"; then
        echo "FAIL: $label: Bedrock reported:"
        grep -m 20 'bedrock:' "$work/$name.$label.err"
        verdict=1
    fi
done
[[ $(cat "$work/$name.plain.status") == 0 ]] || { echo "FAIL: the workload fails without Bedrock"; verdict=1; }
((verdict == 0)) && echo ok
exit $verdict
