#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Lists Bedrock's source files that lack an `SPDX-License-Identifier: MIT` line in their first
# five lines, and exits 1 if there is any. Source files: *.cpp *.h *.c *.S *.ld *.cmake
# CMakeLists.txt *.sh *.py, tracked or new (not ignored), outside build/.
#
#   tools/check_spdx.sh                      every source file
#   tools/check_spdx.sh --added-since REF    only files added since REF's merge base (and new,
#                                            untracked ones): what a branch adds must carry it
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    echo "usage: $0 [--added-since REF]" >&2
    exit 2
}

since=
case $# in
0) ;;
2) [[ $1 == --added-since ]] || usage; since=$2 ;;
*) usage ;;
esac

is_source() {
    case "$1" in
    build/* | */build/*) return 1 ;;
    *.cpp | *.h | *.c | *.S | *.ld | *.cmake | CMakeLists.txt | */CMakeLists.txt | *.sh | *.py) return 0 ;;
    *) return 1 ;;
    esac
}

list_files() {
    if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        [[ -z $since ]] || { echo "check_spdx: not a git work tree; nothing checked" >&2; return 0; }
        find . -path ./build -prune -o -type f -print | sed 's|^\./||'
        return 0
    fi
    if [[ -z $since ]]; then
        git ls-files --cached --others --exclude-standard
        return 0
    fi
    local base
    if ! base=$(git merge-base "$since" HEAD 2>/dev/null); then
        echo "check_spdx: no merge base with '$since'; nothing checked" >&2
        return 0
    fi
    git diff --name-only --diff-filter=A "$base"
    git ls-files --others --exclude-standard
}

# One awk over every non-empty source file (a process per file took seconds) lists those whose
# first five lines lack the line; an empty file lacks it too.
checked=0 nonempty=() missing=()
while IFS= read -r file; do
    [[ -f $file ]] && is_source "$file" || continue
    checked=$((checked + 1))
    if [[ -s $file ]]; then
        nonempty+=("$file")
    else
        missing+=("$file")
    fi
done < <(list_files | sort -u)
if ((${#nonempty[@]})); then
    mapfile -t -O "${#missing[@]}" missing < <(awk '
        FNR == 1 { if (NR > 1 && !found) print previous; found = 0; previous = FILENAME }
        FNR <= 5 && /SPDX-License-Identifier: MIT/ { found = 1 }
        END { if (!found) print previous }' "${nonempty[@]}")
fi
if ((${#missing[@]} > 0)); then
    printf '%s\n' "${missing[@]}"
    echo "check_spdx: ${#missing[@]} of $checked source files lack" \
        "'SPDX-License-Identifier: MIT'" >&2
    exit 1
fi
echo "check_spdx: all $checked source files carry 'SPDX-License-Identifier: MIT'"
