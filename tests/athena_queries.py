"""Test helper for tests/athena_sql.rs: runs Athena-style Security Lake queries with `ocelot sql`
and with DuckDB (a SQL engine that is not ours) over the same Parquet lake, and compares the
column names and the rows. Usage: athena_queries.py OCELOT_BINARY LAKE QUERIES_FILE (queries
separated by lines of `;`). Prints one line per query; exits 1 on any difference."""
import json
import os
import subprocess
import sys

import duckdb

ocelot, lake, queries_file = sys.argv[1:4]
text = "\n".join(l for l in open(queries_file).read().splitlines() if not l.startswith("--"))
queries = [q.strip() for q in text.split("\n;\n") if q.strip()]

con = duckdb.connect()
for table in sorted(os.listdir(lake)):
    if not table.startswith("_") and os.path.isdir(os.path.join(lake, table)):
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{lake}/{table}/**/*.parquet', hive_partitioning = true, hive_types_autocast = false, union_by_name = true)")  # eventDay stays text


def norm(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


failed = 0
for q in queries:
    cur = con.execute(q)
    want_cols = [d[0] for d in cur.description]
    want = [[norm(v) for v in row] for row in cur.fetchall()]
    out = subprocess.run([ocelot, "sql", "--lake", lake, "--format", "json", q], capture_output=True, text=True)
    if out.returncode != 0:
        print(f"FAIL (ocelot error) {q}\n  {out.stderr.strip()}")
        failed += 1
        continue
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    # ocelot's JSON leaves out null values; the column order is DuckDB's.
    got = [[norm(r.get(c)) for c in want_cols] for r in rows]
    got_cols = set().union(*[r.keys() for r in rows]) if rows else set()
    if not got_cols <= set(want_cols):
        print(f"FAIL (column names {sorted(got_cols)} vs {want_cols}) {q}")
        failed += 1
    elif got != want:
        print(f"FAIL (rows differ) {q}\n  duckdb: {want[:5]}\n  ocelot: {got[:5]}")
        failed += 1
    else:
        print(f"ok ({len(want)} rows, columns {want_cols}) {' '.join(q.split())[:110]}")
sys.exit(1 if failed else 0)
