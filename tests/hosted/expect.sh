#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs a command and judges its exit and its stderr (the hosted suite's misuse and environment
# tests):
#   expect.sh STATUS REQUIRED FORBIDDEN -- COMMAND...
# STATUS is the exit status wanted, "signal" for death by any signal (abort, a guard-page fault),
# or a signal's name (SEGV, ABRT) for death by that one; REQUIRED is an extended regular
# expression stderr must match ("-" for none); FORBIDDEN one it must not match ("-" for none).
# Prints the output, then the verdict.
set -uo pipefail
status_wanted=$1 required=$2 forbidden=$3
shift 4
errors=$(mktemp)
trap 'rm -f "$errors"' EXIT
"$@" 2>"$errors"
status=$?
cat "$errors"
if [[ $status_wanted =~ ^[A-Z]+$ ]]; then
    signal=$(kill -l "$status_wanted") || exit 1
    if ((status != 128 + signal)); then
        echo "FAIL: exit status $status, wanted death by SIG$status_wanted"
        exit 1
    fi
elif [[ $status_wanted == signal ]]; then
    ((status > 128)) || { echo "FAIL: exit status $status, wanted death by a signal"; exit 1; }
elif ((status != status_wanted)); then
    echo "FAIL: exit status $status, wanted $status_wanted"
    exit 1
fi
if [[ $required != - ]] && ! grep -Eq "$required" "$errors"; then
    echo "FAIL: stderr does not match '$required'"
    exit 1
fi
if [[ $forbidden != - ]] && grep -Eq "$forbidden" "$errors"; then
    echo "FAIL: stderr matches '$forbidden'"
    exit 1
fi
echo "ok"
