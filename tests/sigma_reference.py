#!/usr/bin/env python3
"""Reference Sigma evaluator for tests/sigma.rs: pySigma's SQLite backend, not ours.

Usage: sigma_reference.py RULES_DIR EVENTS.jsonl
Prints one `rule_id<TAB>eventID` line per match, and `UNSUPPORTED<TAB>rule_id<TAB>why` for rules
pySigma cannot convert.

The raw CloudTrail events become one SQLite row each, with a column for every field path (dotted,
as Sigma rules name them). A path's value follows the rule Ocelot's field mapping documents
(detectors/src/fields.rs, `lookup`): objects are entered by key, an array on the way applies the
rest of the path to each member and yields the JSON list of what they hold, an object or array is
its compact JSON text. Columns are `COLLATE NOCASE`, since Sigma matching is case-insensitive
(the backend's `=` would otherwise compare case-sensitively); `REGEXP` is Python's `re.search`.
"""
import json
import pathlib
import re
import sqlite3
import sys

from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection

MISSING = object()


def paths(v, prefix=()):
    if isinstance(v, dict):
        for k, x in v.items():
            p = prefix + (k,)
            yield p
            yield from paths(x, p)
    elif isinstance(v, list):
        for x in v:
            yield from paths(x, prefix)


def descend(v, path):
    if not path:
        return v
    if isinstance(v, dict):
        return descend(v[path[0]], path[1:]) if path[0] in v else MISSING
    if isinstance(v, list):
        found = [d for d in (descend(x, path) for x in v) if d is not MISSING]
        return found if found else MISSING
    return MISSING


def text(v):
    if v is MISSING or v is None:
        return None
    if isinstance(v, str):
        return v
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def main():
    rules_dir, events_path = pathlib.Path(sys.argv[1]), sys.argv[2]
    events = [json.loads(line) for line in open(events_path, encoding="utf-8") if line.strip()]
    rows, columns = [], {}
    for e in events:
        row = {}
        for p in set(paths(e)):
            name = ".".join(p)
            row[name] = text(descend(e, list(p)))
            columns.setdefault(name.lower(), name)
        rows.append(row)
    db = sqlite3.connect(":memory:")
    db.create_function("REGEXP", 2, lambda pattern, value: value is not None and re.search(pattern, value) is not None)
    cols = sorted(columns.values())
    db.execute("CREATE TABLE logs (" + ", ".join(f'"{c}" TEXT COLLATE NOCASE' for c in cols) + ")")
    for row in rows:
        keys = [k for k in row if k.lower() in columns and columns[k.lower()] == k]
        db.execute(
            "INSERT INTO logs (" + ", ".join(f'"{k}"' for k in keys) + ") VALUES (" + ", ".join("?" * len(keys)) + ")",
            [row[k] for k in keys],
        )
    backend = sqliteBackend()
    for f in sorted(rules_dir.rglob("*.yml")):
        coll = SigmaCollection.from_yaml(f.read_text(encoding="utf-8"))
        for rule in coll.rules:
            rid = str(rule.id)
            try:
                queries = backend.convert_rule(rule)
            except Exception as err:  # pySigma raises its own error types for what it cannot convert
                print(f"UNSUPPORTED\t{rid}\t{type(err).__name__}: {err}".replace("\n", " "))
                continue
            for q in queries:
                q = q.replace("SELECT * FROM logs", "SELECT eventID FROM logs", 1)
                while True:
                    try:
                        result = db.execute(q).fetchall()
                        break
                    except sqlite3.OperationalError as err:
                        # A field no event has is null in every row, as in Ocelot.
                        missing = re.match(r"no such column: (.+)", str(err))
                        if not missing:
                            raise
                        db.execute(f'ALTER TABLE logs ADD COLUMN "{missing.group(1)}" TEXT COLLATE NOCASE')
                for (event_id,) in result:
                    print(f"{rid}\t{event_id}")


if __name__ == "__main__":
    main()
