#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Real programs under each allocator: the workloads of tests/hosted/workloads.sh (python3,
# sqlite3, git, cc, xz, sort) run with glibc's malloc and with libbedrock-malloc.so, mimalloc,
# jemalloc and tcmalloc preloaded, each measured by /usr/bin/time: wall seconds and peak resident
# set (the largest process of the workload's tree, KiB).
#   real_programs.sh PRELOAD            a table: seconds and peak RSS per program and allocator
#   real_programs.sh PRELOAD --summary  hosted.rss_vs_glibc.<program> <Bedrock's peak / glibc's>
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

# One run of workload $1 under allocator $2: prints "seconds kib".
measure() {
    local name=$1 allocator=$2 dir=$work/$1
    rm -rf "$dir" && mkdir -p "$dir"
    local preload_env=()
    [[ -n ${library[$allocator]} ]] && preload_env=(LD_PRELOAD="${library[$allocator]}")
    (cd "$dir" && env "${preload_env[@]}" /usr/bin/time -o "$work/time" -f '%e %M' \
        bash -c "$(declare -f "${name}_workload"); dir=$dir; ${name}_workload" >/dev/null 2>&1)
    cat "$work/time"
}

# The median of each column of $runs measurements.
median_of_runs() {
    local name=$1 allocator=$2
    for ((i = 0; i < runs; ++i)); do measure "$name" "$allocator"; done >"$work/runs"
    local middle=$(((runs + 1) / 2))
    echo "$(cut -d' ' -f1 "$work/runs" | sort -n | sed -n "${middle}p")" \
        "$(cut -d' ' -f2 "$work/runs" | sort -n | sed -n "${middle}p")"
}

available() { [[ -z ${library[$1]} || -e ${library[$1]} ]]; }

if [[ $mode == --summary ]]; then
    for name in $workload_names; do
        read -r _ glibc_kib < <(median_of_runs "$name" glibc)
        read -r _ bedrock_kib < <(median_of_runs "$name" bedrock)
        awk -v p="$name" -v b="$bedrock_kib" -v g="$glibc_kib" \
            'BEGIN { printf "hosted.rss_vs_glibc.%s %.2f\n", p, b / g }'
    done
    exit 0
fi

echo "real programs: wall seconds / peak RSS in MiB (median of $runs runs; the largest process)"
printf '%-8s' program
for allocator in $allocators; do printf '%16s' "$allocator"; done
printf '%12s\n' "rss/glibc"
for name in $workload_names; do
    printf '%-8s' "$name"
    glibc_kib=0 bedrock_kib=0
    for allocator in $allocators; do
        if ! available "$allocator"; then
            printf '%16s' -
            continue
        fi
        read -r seconds kib < <(median_of_runs "$name" "$allocator")
        [[ $allocator == glibc ]] && glibc_kib=$kib
        [[ $allocator == bedrock ]] && bedrock_kib=$kib
        printf '%16s' "$(awk -v s="$seconds" -v k="$kib" 'BEGIN { printf "%.2f / %.1f", s, k / 1024 }')"
    done
    awk -v b="$bedrock_kib" -v g="$glibc_kib" 'BEGIN { printf "%12.2f\n", g ? b / g : 0 }'
done
