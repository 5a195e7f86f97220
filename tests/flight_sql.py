"""Queries `ocelot serve` with the Apache Arrow ADBC Flight SQL driver (PyPI
adbc-driver-flightsql), a client that is not ours. Run by tests/flight_sql.rs.

usage: flight_sql.py URL USER PASSWORD TOKEN [CA_PEM_FILE]

Prints one JSON object per case: {"case": ..., "ok": true/false, ...}. A case is ok when the
server did what it must (answered, or refused with the expected error).
"""
import json
import sys
import time

import adbc_driver_flightsql.dbapi as flight
from adbc_driver_flightsql import DatabaseOptions

url, user, password, token = sys.argv[1:5]
ca = open(sys.argv[5]).read() if len(sys.argv) > 5 else None

QUERY = ("SELECT api.operation, count(*) AS n FROM api_activity "
         "WHERE actor.user.name IS NOT NULL GROUP BY api.operation ORDER BY n DESC, api.operation LIMIT 10")


def connect(**kwargs):
    options = dict(kwargs.pop("db_kwargs", {}))
    if ca:
        options[DatabaseOptions.TLS_ROOT_CERTS.value] = ca
    return flight.connect(url, db_kwargs=options, **kwargs)


def report(case, ok, **detail):
    print(json.dumps({"case": case, "ok": ok, **detail}, default=str), flush=True)


def run(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetch_arrow_table()


def refused(case, conn, sql, expect):
    try:
        run(conn, sql)
        report(case, False, error="the server ran it")
    except Exception as e:  # the driver raises its own error classes per gRPC status
        report(case, expect.lower() in str(e).lower(), error=str(e)[:400])


# Basic auth: the driver hands user and password to the Flight handshake, then uses the token.
basic = connect(db_kwargs={"username": user, "password": password})
table = run(basic, QUERY)
report("basic_auth_query", table.num_rows > 0, columns=table.column_names, rows=table.to_pylist())

# A bearer token from the config, as a header.
bearer = connect(db_kwargs={DatabaseOptions.AUTHORIZATION_HEADER.value: f"Bearer {token}"})
table = run(bearer, "SELECT operation, agent, approval FROM agent_mutations ORDER BY time_dt")
report("bearer_token_view", table.num_rows > 0, rows=table.to_pylist())

# Catalog metadata, as BI tools list it.
objects = bearer.adbc_get_objects(depth="tables").read_all().to_pylist()
tables = sorted(t["table_name"] for c in objects for s in c["catalog_db_schemas"] for t in s["db_schema_tables"])
report("get_objects", "api_activity" in tables and "agent_mutations" in tables, tables=tables)

# Without credentials, or with wrong ones: nothing.
for case, kwargs in [("no_credentials", {}),
                     ("wrong_password", {"username": user, "password": password + "x"}),
                     ("wrong_token", {DatabaseOptions.AUTHORIZATION_HEADER.value: "Bearer not-a-token"})]:
    try:
        conn = connect(db_kwargs=kwargs)
        run(conn, "SELECT 1")
        report(case, False, error="answered without valid credentials")
    except Exception as e:
        report(case, "unauthenticated" in str(e).lower() or "unauthorized" in str(e).lower(), error=str(e)[:300])

# Read-only: each of these is refused with a clear error.
refused("create_external_table", bearer, "CREATE EXTERNAL TABLE passwd (line VARCHAR) STORED AS CSV LOCATION '/etc/passwd'", "read-only")
refused("copy_to_file", bearer, "COPY (SELECT 1 AS x) TO '/tmp/ocelot-flight-copy.csv' STORED AS CSV", "read-only")
refused("insert", bearer, "INSERT INTO findings SELECT * FROM findings", "read-only")
refused("set", bearer, "SET datafusion.execution.batch_size = 1", "read-only")
refused("create_view", bearer, "CREATE VIEW v AS SELECT 1", "read-only")
refused("file_as_table", bearer, "SELECT * FROM '/etc/passwd'", "not found")

# A runaway query is cut off by the timeout, a greedy one by the memory limit; the server
# answers the next query as before.
started = time.monotonic()
refused("runaway_timeout", bearer, "SELECT count(*) FROM generate_series(1, 100000000000) AS t(x) WHERE x % 7 = 3", "query_timeout_secs")
print(json.dumps({"case": "runaway_seconds", "ok": True, "seconds": round(time.monotonic() - started, 2)}), flush=True)
# Sorting 1 GB of rows must hold them all: far over the 64 MB the test config allows.
refused("memory_limit", bearer, "SELECT x, repeat(CAST(x AS VARCHAR), 2000) AS s FROM generate_series(1, 100000) AS t(x) ORDER BY s DESC, x", "query_memory_mb")
table = run(bearer, "SELECT count(*) AS n FROM api_activity")
report("alive_after_limits", table.num_rows == 1, n=table.column("n")[0].as_py())

# Prepared statements, as JDBC drivers use them.
with bearer.cursor() as cur:
    cur.adbc_prepare(QUERY)
    cur.execute(QUERY)
    rows = cur.fetch_arrow_table().to_pylist()
report("prepared_statement", len(rows) > 0, rows=rows)
