#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Real programs under each allocator: the workloads of tests/hosted/workloads.sh (python3,
# sqlite3, git, cc, xz, sort) run with glibc's malloc and with libbedrock-malloc.so, mimalloc,
# jemalloc and tcmalloc preloaded, each measured by /usr/bin/time: wall seconds, peak resident
# set (the largest process of the workload's tree, KiB) and minor page faults.
#   real_programs.sh PRELOAD            a table: seconds and peak RSS per program and allocator,
#                                       then seconds of many_threads.c per thread count, then
#                                       seconds and page faults of sliding_window.c
#   real_programs.sh PRELOAD --summary  hosted.rss_vs_glibc.<program> <Bedrock's peak / glibc's>,
#                                       hosted.threads.<n>.time_vs_glibc <Bedrock's seconds /
#                                       glibc's>, and hosted.window.time_vs_glibc and
#                                       hosted.window.faults_vs_glibc (sliding_window.c)
# Thread counts: 64, 256, 300 and 1100 (libbedrock-malloc.so has 1024 CPU slots: 76 threads on
# its shared path).
# Each figure is the median of RUNS runs (default 3; environment RUNS=n). A peer whose library is
# not installed is left out (its column shows "-"). Work files go to a temporary directory.
set -uo pipefail
preload=$(realpath "$1")
mode=${2:-table}
runs=${RUNS:-3}
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=tests/hosted/workloads.sh
source "$here/../hosted/workloads.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

libdir=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
declare -A library=([glibc]="" [bedrock]=$preload [mimalloc]=$libdir/libmimalloc.so.2
    [jemalloc]=$libdir/libjemalloc.so.2 [tcmalloc]=$libdir/libtcmalloc_minimal.so.4)
allocators="glibc bedrock mimalloc jemalloc tcmalloc"

thread_counts="64 256 300 1100"
threads_program=$work/many_threads
cc -O2 -pthread "$here/many_threads.c" -o "$threads_program" || exit 1
window_program=$work/sliding_window
cc -O2 "$here/sliding_window.c" -o "$window_program" || exit 1

# One run of $1 under allocator $2: prints "seconds kib faults". $1: a workload of
# workloads.sh, threads-<n> (many_threads.c with n threads) or window (sliding_window.c).
measure() {
    local name=$1 allocator=$2 dir=$work/$1 command
    rm -rf "$dir" && mkdir -p "$dir"
    if [[ $name == threads-* ]]; then
        command=("$threads_program" "${name#threads-}")
    elif [[ $name == window ]]; then
        command=("$window_program")
    else
        command=(bash -c "$(declare -f "${name}_workload"); dir=$dir; ${name}_workload")
    fi
    local preload_env=()
    [[ -n ${library[$allocator]} ]] && preload_env=(LD_PRELOAD="${library[$allocator]}")
    (cd "$dir" && env "${preload_env[@]}" /usr/bin/time -o "$work/time" -f '%e %M %R' \
        "${command[@]}" >/dev/null 2>&1)
    cat "$work/time"
}

# The median of each column of $runs measurements.
median_of_runs() {
    local name=$1 allocator=$2
    for ((i = 0; i < runs; ++i)); do measure "$name" "$allocator"; done >"$work/runs"
    local middle=$(((runs + 1) / 2))
    local medians=()
    for column in 1 2 3; do
        medians+=("$(cut -d' ' -f"$column" "$work/runs" | sort -n | sed -n "${middle}p")")
    done
    echo "${medians[@]}"
}

available() { [[ -z ${library[$1]} || -e ${library[$1]} ]]; }

# The ratio of column $2 (1: seconds, 2: KiB, 3: faults) of Bedrock's median for $1 to glibc's.
ratio_to_glibc() {
    local bedrock glibc
    bedrock=$(median_of_runs "$1" bedrock | cut -d' ' -f"$2")
    glibc=$(median_of_runs "$1" glibc | cut -d' ' -f"$2")
    awk -v b="$bedrock" -v g="$glibc" 'BEGIN { printf "%.2f", b / g }'
}

if [[ $mode == --summary ]]; then
    for name in $workload_names; do
        echo "hosted.rss_vs_glibc.$name $(ratio_to_glibc "$name" 2)"
    done
    for threads in $thread_counts; do
        echo "hosted.threads.$threads.time_vs_glibc $(ratio_to_glibc "threads-$threads" 1)"
    done
    echo "hosted.window.time_vs_glibc $(ratio_to_glibc window 1)"
    echo "hosted.window.faults_vs_glibc $(ratio_to_glibc window 3)"
    exit 0
fi

# A table: a row per name of $3..., a column per allocator (seconds / MiB), and Bedrock's
# column $2 (1: seconds, 2: KiB) over glibc's, headed $1.
table() {
    local heading=$1 column=$2
    shift 2
    printf '%-12s' "$heading"
    for allocator in $allocators; do printf '%16s' "$allocator"; done
    printf '%12s\n' "$([[ $column == 1 ]] && echo time || echo rss)/glibc"
    for name in "$@"; do
        printf '%-12s' "$name"
        local glibc=0 bedrock=0 seconds kib
        for allocator in $allocators; do
            if ! available "$allocator"; then
                printf '%16s' -
                continue
            fi
            read -r seconds kib _ < <(median_of_runs "$name" "$allocator")
            local chosen=$seconds
            [[ $column == 2 ]] && chosen=$kib
            [[ $allocator == glibc ]] && glibc=$chosen
            [[ $allocator == bedrock ]] && bedrock=$chosen
            printf '%16s' "$(awk -v s="$seconds" -v k="$kib" 'BEGIN { printf "%.2f / %.1f", s, k / 1024 }')"
        done
        awk -v b="$bedrock" -v g="$glibc" 'BEGIN { printf "%12.2f\n", g ? b / g : 0 }'
    done
}

echo "real programs: wall seconds / peak RSS in MiB (median of $runs runs; the largest process)"
# shellcheck disable=SC2086 # one name per word
table program 2 $workload_names
echo "many threads (many_threads.c): wall seconds / peak RSS in MiB (median of $runs runs)"
thread_runs=()
for threads in $thread_counts; do thread_runs+=("threads-$threads"); done
table threads 1 "${thread_runs[@]}"
echo "one size freed and allocated again (sliding_window.c): wall seconds / peak RSS in MiB"
table window 1 window
