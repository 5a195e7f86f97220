"""Validates OCSF JSON lines with a validator that is not ours: the OCSF JSON Schema generated
by the PyPI package `ocsf-json-schema` (from the OCSF server's own export of the schema, with
the classes' and objects' `at_least_one` / `just_one` constraints and each profile's attributes
allowed only when the record lists the profile), applied by `jsonschema` (Draft 2020-12).

Usage: python ocsf_jsonschema.py [--rs] VERSION FILE... ; prints one JSON object: per class
{"valid": n, "total": n}, and the first errors with file, line and path. Exit 1 if any record
is invalid. `--rs` applies the same JSON Schema with `jsonschema-rs` (a Draft 2020-12 validator
in Rust, PyPI `jsonschema-rs`), some fifty times faster, for corpora of hundreds of thousands.
"""
import json
import sys

from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema


def validator(schema, rs):
    if rs:
        import jsonschema_rs

        v = jsonschema_rs.Draft202012Validator(schema)
        return lambda event: [(list(e.instance_path), e.message) for e in v.iter_errors(event)]
    from jsonschema import Draft202012Validator

    v = Draft202012Validator(schema)
    return lambda event: [(list(e.absolute_path), e.message) for e in v.iter_errors(event)]


def main():
    args = sys.argv[1:]
    rs = args[0] == "--rs"
    if rs:
        args = args[1:]
    version, files = args[0], args[1:]
    ocsf = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=version))
    validators = {}
    per_class, errors, invalid = {}, [], 0
    for path in files:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                event = json.loads(line)
                try:
                    cls = ocsf.lookup_class_name_from_uid(event.get("class_uid"))
                except ValueError as e:
                    invalid += 1
                    per_class.setdefault("(unknown class_uid)", {"valid": 0, "total": 0})["total"] += 1
                    errors.append({"at": f"{path}:{n}", "path": "class_uid", "error": str(e)})
                    continue
                profiles = tuple(sorted(set((event.get("metadata") or {}).get("profiles") or [])))
                key = (cls, profiles)
                if key not in validators:
                    validators[key] = validator(ocsf.get_class_schema(cls, list(profiles)), rs)
                counts = per_class.setdefault(cls, {"valid": 0, "total": 0})
                counts["total"] += 1
                found = validators[key](event)
                if not found:
                    counts["valid"] += 1
                    continue
                invalid += 1
                for where, message in found[:3]:
                    if len(errors) < 30:
                        errors.append({"at": f"{path}:{n}", "path": "/".join(str(p) for p in where), "error": message[:300]})
    engine = "jsonschema-rs" if rs else "jsonschema"
    print(json.dumps({"version": version, "validator": engine, "classes": per_class, "invalid": invalid, "errors": errors}, indent=1))
    sys.exit(1 if invalid else 0)


if __name__ == "__main__":
    main()
