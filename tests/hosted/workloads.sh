# SPDX-License-Identifier: MIT
# The real-program workloads, sourced by tests/hosted/real_program.sh (the same output with and
# without libbedrock-malloc.so) and tests/bench/real_programs.sh (time and peak RSS against the
# peers). Each NAME_workload runs in a fresh directory $dir (set by the caller), uses only
# Debian's programs and prints only what is deterministic (checksums, counts, query results).
workload_names="python sqlite git cc xz sort"

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
