#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs one QEMU boot for run_qemu.cmake with a deadline, and shows where every CPU is when the
# boot does not end in time: a hung test is then a bug report, not just a time-out.
#
#   qemu_deadline.sh <seconds> <kernel ELF with debug information | -> <launcher> [qemu args...]
#
# The launcher (cmake/qemu.cmake) runs with a gdbstub on a private Unix socket. Past the deadline
# gdb-multiarch attaches, which stops every virtual CPU, prints each one's backtrace against the
# ELF, and kills QEMU; the launcher's whole process group is then killed too. Exit status: the
# launcher's own, or 124 after a time-out. Without gdb-multiarch or an ELF ("-") the time-out is
# still reported, only without the backtraces.
set -u
deadline=$1
symbols=$2
launcher=$3
shift 3

dir=$(mktemp -d) || exit 125
trap 'rm -rf "$dir"' EXIT
socket=$dir/gdb.sock

# A process group of its own, so that a time-out can end the launcher, tee and QEMU together.
# Its output is shown once it ends (or at the deadline, before the report).
setsid "$launcher" "$@" -gdb "unix:$socket,server=on,wait=off" </dev/null >"$dir/output" &
pid=$!

# Five looks a second: a boot that ends early is not held up by more than 200 ms.
looks=$((deadline * 5))
while kill -0 "$pid" 2>/dev/null; do
    if [ "$looks" -eq 0 ]; then
        cat "$dir/output"
        echo
        # A kernel that printed its verdict has called its exit: then QEMU is what hangs.
        if tr -d '\r' <"$dir/output" | sed '/^$/d' | tail -n 1 | grep -q '^verdict: '; then
            echo "qemu_deadline: the kernel printed its verdict, but QEMU had not exited after" \
                "$deadline s; where each CPU is:"
        else
            echo "qemu_deadline: no verdict after $deadline s; where each CPU is:"
        fi
        gdb=$(command -v gdb-multiarch || true)
        grace=0
        if [ -n "$gdb" ] && [ "$symbols" != "-" ] && [ -S "$socket" ]; then
            grace=25 # looks: gdb's kill ends QEMU, and so the launcher
            # CPUs with the same backtrace (idle ones, say) are listed once, under all their names.
            timeout 30 "$gdb" -batch -nx "$symbols" -ex "target remote $socket" \
                -ex "set print frame-arguments none" -ex "set print address off" \
                -ex "thread apply all backtrace 24" -ex "kill" 2>/dev/null |
                awk '/^Thread [0-9]+ \(/ {
                         flush(); body = ""
                         match($0, /CPU#[0-9]+ \[[a-z]+/)
                         name = substr($0, RSTART + 4, RLENGTH - 4); sub(/ \[/, " (", name)
                         name = name ")"; next
                     }
                     /^#[0-9]+ +\?\? \(\)$/ { next } # past the outermost frame
                     /^#/ { body = body $0 "\n" }
                     function flush() {
                         if (name == "") return
                         if (!(body in cpus)) order[++count] = body
                         cpus[body] = name (cpus[body] == "" ? "" : ", ") cpus[body]
                     }
                     END {
                         flush()
                         for (i = 1; i <= count; ++i)
                             printf "CPU %s:\n%s\n", cpus[order[i]], order[i]
                     }'
        else
            echo "qemu_deadline: (no backtraces: needs gdb-multiarch and the kernel's ELF)"
        fi
        # Up to 5 s for gdb's kill to end QEMU; then whatever is left of the group goes.
        while kill -0 "$pid" 2>/dev/null && [ "$grace" -gt 0 ]; do
            grace=$((grace - 1))
            sleep 0.2
        done
        kill -9 "-$pid" 2>/dev/null # the group (dash takes no "--")
        wait "$pid" 2>/dev/null
        exit 124
    fi
    looks=$((looks - 1))
    sleep 0.2
done
wait "$pid"
status=$?
cat "$dir/output"
exit "$status"
