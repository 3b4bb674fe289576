#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Draws ./bench.sh's heap results against the peer allocators as PNG figures (matplotlib, Agg):
#   bench-time.png          time per operation for each workload (heap_bench --csv)
#   bench-instructions.png  instructions per malloc+free pair for each block size (callgrind)
#   bench-footprint.png     peak footprint / peak live bytes for each workload (heap_bench --csv)
# Inputs: heap_bench's CSV (workload,allocator,ns_per_op,footprint_ratio) and bench.sh's
# instruction counts as size,allocator,instructions lines.
#   tools/plot_bench.py HEAP_CSV INSTRUCTIONS_CSV OUTPUT_DIR
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after the backend is chosen)

ALLOCATORS = ["bedrock", "glibc", "jemalloc", "tcmalloc", "mimalloc"]
COLOURS = {"bedrock": "#b5482d", "glibc": "#7f7f7f", "jemalloc": "#4c72b0",
           "tcmalloc": "#55a868", "mimalloc": "#8172b2"}


def read_rows(path, fields):
    with open(path, newline="") as source:
        rows = [row for row in csv.reader(source) if row and row[0] != fields[0]]
    return [dict(zip(fields, row)) for row in rows]


def grouped_bars(groups, values, title, ylabel, path, log=False):
    """values[allocator][group] -> bar height; one cluster of bars per group."""
    figure, axes = plt.subplots(figsize=(10, 4.2), dpi=100)
    present = [name for name in ALLOCATORS if name in values]
    width = 0.8 / len(present)
    for index, name in enumerate(present):
        xs = [g + (index - (len(present) - 1) / 2) * width for g in range(len(groups))]
        heights = [values[name].get(group, 0) for group in groups]
        axes.bar(xs, heights, width, label=name, color=COLOURS[name])
    axes.set_xticks(range(len(groups)))
    axes.set_xticklabels(groups)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    if log:
        axes.set_yscale("log")
    axes.grid(axis="y", alpha=0.3)
    axes.legend(ncol=len(present), fontsize="small", loc="upper left")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: plot_bench.py HEAP_CSV INSTRUCTIONS_CSV OUTPUT_DIR")
    heap_csv, instructions_csv, out = sys.argv[1:]

    heap = read_rows(heap_csv, ["workload", "allocator", "ns_per_op", "footprint_ratio"])
    workloads = list(dict.fromkeys(row["workload"] for row in heap))
    times, footprints = {}, {}
    for row in heap:
        times.setdefault(row["allocator"], {})[row["workload"]] = float(row["ns_per_op"])
        footprints.setdefault(row["allocator"], {})[row["workload"]] = float(
            row["footprint_ratio"])
    grouped_bars(workloads, times, "Heap: time per operation (lower is better)", "ns per operation",
                 f"{out}/bench-time.png", log=True)
    grouped_bars(workloads, footprints,
                 "Heap: peak footprint / peak live bytes (lower is better)", "ratio",
                 f"{out}/bench-footprint.png", log=True)

    counts = read_rows(instructions_csv, ["size", "allocator", "instructions"])
    sizes = list(dict.fromkeys(row["size"] for row in counts))
    instructions = {}
    for row in counts:
        if row["instructions"]:
            instructions.setdefault(row["allocator"], {})[row["size"]] = float(row["instructions"])
    grouped_bars([f"{size} B" for size in sizes],
                 {name: {f"{size} B": value for size, value in by_size.items()}
                  for name, by_size in instructions.items()},
                 "Heap: instructions per malloc+free pair (callgrind, lower is better)",
                 "instructions per pair", f"{out}/bench-instructions.png", log=True)


if __name__ == "__main__":
    main()
