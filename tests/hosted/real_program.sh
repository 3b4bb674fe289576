#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A real, allocation-heavy program from Debian under libbedrock-malloc.so:
#   real_program.sh PRELOAD WORK NAME
# runs workload NAME (below) without the preload, then with it at BEDROCK_CHECK=off and at
# BEDROCK_CHECK=report; passes when each run gives the same stdout and exit status as the run
# without, and no stderr holds a Bedrock report ("bedrock:"). Each workload starts from a fresh
# WORK/NAME directory and prints only what is deterministic (checksums, counts, query results).
set -uo pipefail
preload=$1 work=$2 name=$3
dir=$work/$name

python_workload() {
    /usr/bin/python3 - <<'PY'
import hashlib, json
table = {}
for i in range(150000):
    table[f"key{i}"] = [i, str(i) * (i % 7), {"n": i % 97}]
groups = {}
for key, value in table.items():
    groups.setdefault(value[2]["n"], []).append(key)
text = json.dumps({k: len(v) for k, v in sorted(groups.items())})
words = sorted(set(" ".join(str(i * 7919 % 100003) for i in range(200000)).split()))
print(len(table), len(words), hashlib.sha256(text.encode()).hexdigest())
PY
}

sqlite_workload() {
    sqlite3 "$dir/test.db" <<'SQL'
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, payload BLOB);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000)
INSERT INTO t SELECT i, 'name' || (i * 7919 % 60000), i % 113, zeroblob(i % 500) FROM n;
CREATE INDEX t_name ON t(name);
SELECT grp, count(*), sum(length(payload)) FROM t GROUP BY grp ORDER BY grp LIMIT 5;
SELECT count(DISTINCT name) FROM t;
SELECT name FROM t WHERE name LIKE 'name123%' ORDER BY name LIMIT 3;
UPDATE t SET name = upper(name) WHERE id % 3 = 0;
SELECT count(*) FROM t WHERE name GLOB 'NAME*';
PRAGMA integrity_check;
SQL
}

git_workload() {
    export GIT_AUTHOR_NAME=Bedrock GIT_AUTHOR_EMAIL=bedrock@example.org
    export GIT_COMMITTER_NAME=Bedrock GIT_COMMITTER_EMAIL=bedrock@example.org
    export GIT_AUTHOR_DATE="2026-01-01T00:00:00Z" GIT_COMMITTER_DATE="2026-01-01T00:00:00Z"
    export GIT_CONFIG_NOSYSTEM=1 HOME=$dir
    git init -q -b main "$dir/repo" && cd "$dir/repo" || return 1
    for round in 1 2 3; do
        for i in $(seq 1 60); do
            seq "$i" "$((i * round * 20))" >"file$i.txt"
        done
        git add -A && git commit -q -m "round $round"
    done
    git log --stat --format='%H %s' | sha256sum
    git gc -q && git fsck --strict 2>&1 && git count-objects
    git diff HEAD~2 --stat | tail -n 1
}

cc_workload() {
    for i in $(seq 1 250); do
        printf 'struct s%d { int a[%d]; double d; };\n' "$i" "$i"
        printf 'static int f%d(struct s%d *s, int n) { int t = 0; for (int k = 0; k < n && k < %d; ++k) t += s->a[k] * %d; return t + (int)s->d; }\n' "$i" "$i" "$i" "$i"
        printf 'int g%d(int n) { struct s%d s = {{0}, %d.5}; for (int k = 0; k < %d; ++k) s.a[k] = k ^ n; return f%d(&s, n); }\n' "$i" "$i" "$i" "$i" "$i"
    done >"$dir/unit.c"
    cc -O2 -c "$dir/unit.c" -o "$dir/unit.o" && sha256sum <"$dir/unit.o"
}

xz_workload() {
    awk 'BEGIN { for (i = 0; i < 200000; ++i) print i * 7919 % 1000003, "line", i % 977 }' \
        >"$dir/data"
    xz -T2 -3 --block-size=1MiB -c "$dir/data" >"$dir/data.xz" && sha256sum <"$dir/data.xz"
    xz -T2 -d -c "$dir/data.xz" | sha256sum
}

sort_workload() {
    awk 'BEGIN { for (i = 0; i < 600000; ++i) print (i * 7919) % 1000003, "x" i % 31 }' \
        >"$dir/data"
    sort --parallel=2 -S 64M -k2,2 -k1,1n "$dir/data" | sha256sum
    sort --parallel=2 -u -n "$dir/data" | wc -l
}

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
