//! The Parquet lake: written in the Security Lake layout, read back equal by a reader that is
//! not ours (pyarrow, in a venv the test makes), queried with SQL through the CLI.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use common::*;
use ocelot_lake::{LakeWriter, WriterOptions};
use serde_json::Value;

fn sample_inputs() -> Vec<PathBuf> {
    let dir = repo().join("samples/cloudtrail");
    let mut files = files_under(&dir.join("stratus"));
    files.retain(|f| f.extension().is_some_and(|e| e == "jsonl"));
    files.push(dir.join("awsdocs/cloudtrail_doc_examples.jsonl"));
    files
}

/// Drops nulls and maps datetimes to epoch ms, so pyarrow rows compare with OCSF JSON.
const READ_BACK: &str = r#"
import sys, json, datetime, pathlib
import pyarrow.parquet as pq
def clean(v):
    if isinstance(v, dict):
        return {k: clean(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [clean(x) for x in v]
    if isinstance(v, datetime.datetime):
        return int(v.timestamp() * 1000)
    return v
out = {}
for f in sorted(pathlib.Path(sys.argv[1]).rglob("*.parquet")):
    cls = f.relative_to(sys.argv[1]).parts[0]
    rows = pq.read_table(f).to_pylist()
    out.setdefault(cls, []).extend(clean(r) for r in rows)
json.dump(out, sys.stdout)
"#;

fn ms_of(v: &Value) -> Value {
    match v.as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()) {
        Some(d) => Value::from(d.timestamp_millis()),
        None => v.clone(),
    }
}

#[test]
fn lake_layout_and_pyarrow_reads_back_equal() {
    let inputs: Vec<(Vec<u8>, String)> = sample_inputs().iter().map(|p| (std::fs::read(p).unwrap(), p.display().to_string())).collect();
    let refs: Vec<(&[u8], &str)> = inputs.iter().map(|(b, n)| (b.as_slice(), n.as_str())).collect();
    let run = normalize_all(&refs);
    assert!(run.dead.is_empty());
    let lake = tempfile::tempdir().unwrap();
    let mut w = LakeWriter::new(lake.path(), WriterOptions::default());
    for b in &run.batches {
        w.append(b).unwrap();
    }
    w.flush().unwrap();
    assert_eq!(w.stats.rows, run.rows());

    // Security Lake layout, and no temporary file left visible.
    let files: Vec<PathBuf> = files_under(lake.path()).into_iter().filter(|f| !f.strip_prefix(lake.path()).unwrap().starts_with("_ocelot")).collect();
    assert!(!files.is_empty());
    for f in &files {
        let rel = f.strip_prefix(lake.path()).unwrap().to_string_lossy().to_string();
        let parts: Vec<&str> = rel.split('/').collect();
        assert_eq!(parts.len(), 5, "{rel}");
        // CloudTrail Insights records are detection findings.
        assert!(["api_activity", "authentication", "account_change", "detection_finding"].contains(&parts[0]), "{rel}");
        assert!(parts[1].starts_with("region=") && parts[2].starts_with("accountId=") && parts[3].starts_with("eventDay="), "{rel}");
        assert!(parts[4].ends_with(".parquet") && !parts[4].starts_with('.'), "{rel}");
    }

    // pyarrow reads every row back, equal to what we wrote.
    let py = common::python_with("pyarrow", &["pyarrow"]);
    let out = Command::new(py).arg("-c").arg(READ_BACK).arg(lake.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let theirs: BTreeMap<String, Vec<Value>> = serde_json::from_slice(&out.stdout).unwrap();
    let mut ours: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for b in &run.batches {
        for mut row in ocelot_schemas::batch_to_json(&b.batch).unwrap() {
            // Arrow timestamps (every `*_dt`) read back as epoch milliseconds.
            for pointer in ["/time_dt", "/actor/session/created_time_dt", "/finding_info/first_seen_time_dt", "/finding_info/last_seen_time_dt"] {
                if let Some(v) = row.pointer_mut(pointer) {
                    *v = ms_of(v);
                }
            }
            ours.entry(b.class.name.clone()).or_default().push(row);
        }
    }
    // Rows compare whole; sample event ids repeat (AWS docs reuse "EXAMPLE" ids), so both sides
    // are sorted by their full text.
    assert_eq!(ours.keys().collect::<Vec<_>>(), theirs.keys().collect::<Vec<_>>());
    for (class, rows) in ours {
        let sorted = |rows: &[Value]| {
            let mut t: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
            t.sort();
            t
        };
        let (a, b) = (sorted(&rows), sorted(&theirs[&class]));
        assert_eq!(a.len(), b.len(), "{class}");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y, "{class}: a row differs");
        }
    }
}

#[test]
fn sql_answers_a_nested_group_by() {
    let lake = tempfile::tempdir().unwrap();
    let st = ocelot().arg("normalize").args(sample_inputs()).arg("--lake").arg(lake.path()).output().unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));

    // The expected answer, from the in-memory OCSF events.
    let inputs: Vec<(Vec<u8>, String)> = sample_inputs().iter().map(|p| (std::fs::read(p).unwrap(), p.display().to_string())).collect();
    let refs: Vec<(&[u8], &str)> = inputs.iter().map(|(b, n)| (b.as_slice(), n.as_str())).collect();
    let mut want: BTreeMap<(String, String), i64> = BTreeMap::new();
    for (class, e) in normalize_all(&refs).events_json() {
        if class == "api_activity" {
            let svc = e["actor"]["user"]["name"].as_str().unwrap_or("").to_string();
            let region = e["cloud"]["region"].as_str().unwrap_or("").to_string();
            *want.entry((svc, region)).or_default() += 1;
        }
    }

    // `actor.user.name` as written in Security Lake queries: `user` is a SQL keyword.
    let sql = "SELECT actor.user.name AS who, cloud.region AS region, count(*) AS n FROM api_activity GROUP BY actor.user.name, cloud.region";
    let out = ocelot().args(["sql", sql, "--format", "json", "--lake"]).arg(lake.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut got = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        got.insert((v["who"].as_str().unwrap_or("").to_string(), v["region"].as_str().unwrap_or("").to_string()), v["n"].as_i64().unwrap());
    }
    assert_eq!(got, want);
    assert!(got.len() > 10);

    // DataFusion's struct syntax and the partition columns answer too.
    let out =
        ocelot().args(["sql", "SELECT count(*) AS n FROM account_change WHERE \"user\"['name'] IS NOT NULL AND eventDay LIKE '20%'", "--format", "csv", "--lake"]).arg(lake.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let n: i64 = String::from_utf8(out.stdout).unwrap().lines().nth(1).unwrap().parse().unwrap();
    assert!(n > 5, "{n}");
}

#[test]
fn normalize_cli_dead_letters_strict_and_jsonl() {
    let lake = tempfile::tempdir().unwrap();
    let broken = repo().join("samples/cloudtrail/broken");
    let good = repo().join("samples/cloudtrail/stratus/aws.defense-evasion.cloudtrail-stop.jsonl");
    let out = ocelot().arg("normalize").arg(&broken).arg(&good).arg("--lake").arg(lake.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("3 dead-lettered"), "{summary}");
    let strict = ocelot().arg("normalize").arg(&broken).arg("--strict").arg("--lake").arg(lake.path()).output().unwrap();
    assert_eq!(strict.status.code(), Some(3));

    // Each dead letter names its source, position and reason, and keeps the bytes.
    let dl: Vec<Value> =
        files_under(&lake.path().join("_dead_letter")).iter().flat_map(|f| std::fs::read_to_string(f).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect::<Vec<Value>>()).collect();
    assert_eq!(dl.len(), 6, "two runs of three: {dl:#?}");
    for d in &dl {
        assert!(d["source"].as_str().unwrap().contains("broken"), "{d}");
        assert!(d["reason"].as_str().unwrap().len() > 5);
        assert!(d["data"].as_str().is_some_and(|s| !s.is_empty()));
    }

    // JSON lines: valid OCSF, one per event.
    let out = ocelot().arg("normalize").arg(&good).args(["--format", "jsonl"]).output().unwrap();
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), std::fs::read_to_string(&good).unwrap().lines().count());
    let schema = ocelot_schemas::schema();
    for e in &lines {
        let class = schema.class(&e["class_uid"].to_string()).unwrap();
        assert!(ocelot_schemas::validate_event(schema, class, e).is_empty());
        assert!(e["unmapped"].is_object(), "unmapped is an object in OCSF JSON");
    }

    // Malformed command lines fail with a message that names the fix.
    let out = ocelot().arg("normalize").arg(&good).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--lake DIR is required"));
}

/// A normalizer that panics on a record dead-letters that record and goes on; the rows around it
/// keep their own values (the half-written row is dropped, not shifted into the next).
#[test]
fn a_normalizer_panic_dead_letters_its_record_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("ct.jsonl");
    let made = ocelot().args(["gen", "cloudtrail", "--events", "3000", "--seed", "9", "-o"]).arg(&input).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let records: Vec<Value> = std::fs::read_to_string(&input).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let victim = "DescribeInstances";
    let hit = records.iter().filter(|r| r["eventName"] == victim).count();
    assert!(hit > 10 && hit < records.len() / 2, "{hit} {victim} records");
    let lake = dir.path().join("lake");
    let out = ocelot().arg("normalize").arg(&input).arg("--lake").arg(&lake).args(["--format", "jsonl"]).env("OCELOT_FAULT_PANIC_EVENT", victim).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), records.len() - hit);
    // Exactly the other records came out, each with its own values (a half-written row left
    // behind would lend the next record its uid, operation and region).
    let expected: std::collections::BTreeSet<&str> = records.iter().filter(|r| r["eventName"] != victim).map(|r| r["eventID"].as_str().unwrap()).collect();
    let got: std::collections::BTreeSet<&str> = lines.iter().map(|e| e["metadata"]["uid"].as_str().unwrap()).collect();
    assert!(got == expected, "{} uids differ", got.symmetric_difference(&expected).count());
    let by_uid: std::collections::HashMap<&str, &Value> = records.iter().map(|r| (r["eventID"].as_str().unwrap(), r)).collect();
    for e in &lines {
        let r = by_uid[e["metadata"]["uid"].as_str().unwrap()];
        assert_eq!(e["api"]["operation"], r["eventName"], "{e}");
        assert_eq!(e["cloud"]["region"], r["awsRegion"], "{e}");
    }
    let dl: Vec<Value> =
        files_under(&lake.join("_dead_letter")).iter().flat_map(|f| std::fs::read_to_string(f).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect::<Vec<Value>>()).collect();
    assert_eq!(dl.len(), hit);
    assert!(dl.iter().all(|d| d["reason"].as_str().unwrap().contains("normalizer panic: fault injected")), "{:#?}", dl[0]);
}

#[test]
fn schema_and_gen_commands() {
    let out = ocelot().args(["schema", "6003"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("API Activity (api_activity)"), "{text}");
    assert!(text.contains("actor.user.name") && text.contains("time_dt") && text.contains("Timestamp(ms"));
    let out = ocelot().args(["schema", "no_such_class"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));

    let a = ocelot().args(["gen", "cloudtrail", "--events", "500", "--seed", "3"]).output().unwrap();
    let b = ocelot().args(["gen", "cloudtrail", "--events", "500", "--seed", "3"]).output().unwrap();
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout, "deterministic by seed");
    let run = normalize_all(&[(&a.stdout, "gen")]);
    assert_eq!((run.events, run.dead.len()), (500, 0));
    assert_valid(&run);
}
