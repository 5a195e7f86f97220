"""The lake at organization scale, against DuckDB, in one run on the same file.

An organization trail's shape (`ocelot gen cloudtrail --accounts 60 --regions 4`: ~240
partitions a day) of 200,000 CloudTrail events, written by:
  - Ocelot: `ocelot normalize --lake` then `ocelot lake compact` (wall time of both commands);
  - DuckDB (PyPI), 2 threads: `read_json` -> one zstd Parquet file (wall time of the COPY).
  - DuckDB again into the same region / account / day partitions (PARTITION_BY), for what the
    layout itself costs.
Then one GROUP BY over the compacted lake:
  - `ocelot sql` (the whole command: start-up, manifest, planning, scan);
  - DuckDB over the same Parquet files (`read_parquet(..., hive_partitioning = true,
    union_by_name = true)`), timed
    in-process, and as a whole `python -c` process for a like-for-like figure.
Each timing is the median of RUNS runs after one warm-up. Answers are compared.

Run (release build): cargo build --release --bin ocelot &&
  $OCELOT_TEST_PYTHON benches/lake_org.py target/release/ocelot [EVENTS]
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import duckdb

RUNS = 3
ocelot = os.path.abspath(sys.argv[1])
events = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
work = tempfile.mkdtemp(prefix="ocelot-lake-org-")
trail = os.path.join(work, "org.jsonl")


def run(cmd, **kw):
    t = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)
    return time.perf_counter() - t, out.stdout


def du(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs if f.endswith(".parquet"))


def files(path):
    return sum(1 for d, _, fs in os.walk(path) for f in fs if f.endswith(".parquet"))


run([ocelot, "gen", "cloudtrail", "--events", str(events), "--accounts", "60", "--regions", "4", "--seed", "17", "-o", trail])
mb = os.path.getsize(trail) / 1e6

# Writes: each side RUNS times into a fresh place; medians.
oc_norm, oc_comp, oc_files, oc_bytes = [], [], 0, 0
for i in range(RUNS + 1):
    lake = os.path.join(work, f"lake{i}")
    t_norm, _ = run([ocelot, "normalize", trail, "--lake", lake])
    files_before = files(lake)
    t_comp, out = run([ocelot, "lake", "compact", lake, "--json"])
    if i > 0:
        oc_norm.append(t_norm)
        oc_comp.append(t_comp)
    oc_files, oc_bytes, oc_files_before = files(lake), du(lake), files_before
    if i < RUNS:
        shutil.rmtree(lake)
lake = os.path.join(work, f"lake{RUNS}")

con = duckdb.connect()
con.execute("SET threads = 2")
dk_write = []
for i in range(RUNS + 1):
    out = os.path.join(work, f"duck{i}.parquet")
    t = time.perf_counter()
    con.execute(f"COPY (SELECT * FROM read_json('{trail}', maximum_object_size = 16777216)) TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
    if i > 0:
        dk_write.append(time.perf_counter() - t)
    dk_bytes = os.path.getsize(out)

# The layout's own cost: DuckDB writing the same events in the same partitions (Security Lake's
# region / account / day, one table for all classes, so fewer files than Ocelot's per-class
# tables).
dk_part_write = []
for i in range(RUNS + 1):
    out = os.path.join(work, f"duckpart{i}")
    t = time.perf_counter()
    con.execute(
        f"COPY (SELECT *, awsRegion AS region, recipientAccountId AS accountId, strftime(CAST(eventTime AS TIMESTAMP), '%Y%m%d') AS eventDay "
        f"FROM read_json('{trail}', maximum_object_size = 16777216)) TO '{out}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (region, accountId, eventDay))"
    )
    if i > 0:
        dk_part_write.append(time.perf_counter() - t)
    dk_part_bytes, dk_part_files = du(out), files(out)

QUERY = "SELECT api.operation AS operation, count(*) AS n FROM {t} GROUP BY 1 ORDER BY n DESC, operation LIMIT 20"
# union_by_name: Ocelot's files leave out their all-null columns, so their schemas differ.
scan = f"read_parquet('{lake}/api_activity/**/*.parquet', hive_partitioning = true, union_by_name = true)"
oc_q, dk_q, dk_q_proc = [], [], []
for i in range(RUNS + 1):
    t, oc_out = run([ocelot, "sql", "--lake", lake, "--format", "csv", QUERY.format(t="api_activity")])
    t0 = time.perf_counter()
    dk_rows = con.execute(QUERY.format(t=scan)).fetchall()
    t1 = time.perf_counter() - t0
    tp, _ = run([sys.executable, "-c", f"import duckdb; c = duckdb.connect(); c.execute('SET threads = 2'); c.execute({QUERY.format(t=scan)!r}).fetchall()"])
    if i > 0:
        oc_q.append(t)
        dk_q.append(t1)
        dk_q_proc.append(tp)
oc_rows = [tuple(l.split(",")) for l in oc_out.strip().splitlines()[1:]]
same = [(a, str(b)) for a, b in dk_rows] == [(a, b) for a, b in oc_rows]

m = statistics.median
write = m(oc_norm) + m(oc_comp)
report = {
    "events": events,
    "input_mb": round(mb, 1),
    "ocelot": {
        "normalize_s": round(m(oc_norm), 3),
        "compact_s": round(m(oc_comp), 3),
        "write_s": round(write, 3),
        "files_after_normalize": oc_files_before,
        "files_after_compact": oc_files,
        "mb": round(oc_bytes / 1e6, 2),
        "query_s": round(m(oc_q), 3),
    },
    "duckdb": {"write_s": round(m(dk_write), 3), "mb": round(dk_bytes / 1e6, 2), "query_in_process_s": round(m(dk_q), 3), "query_process_s": round(m(dk_q_proc), 3)},
    "duckdb_partitioned": {"write_s": round(m(dk_part_write), 3), "files": dk_part_files, "mb": round(dk_part_bytes / 1e6, 2)},
    "ratios": {
        "write": round(write / m(dk_write), 2),
        "bytes": round(oc_bytes / dk_bytes, 2),
        "write_vs_partitioned": round(write / m(dk_part_write), 2),
        "bytes_vs_partitioned": round(oc_bytes / dk_part_bytes, 2),
        "query_vs_in_process": round(m(oc_q) / m(dk_q), 2),
        "query_vs_process": round(m(oc_q) / m(dk_q_proc), 2),
    },
    "same_answer": same,
}
print(json.dumps(report, indent=2))
shutil.rmtree(work)
