//! Every record Ocelot writes is valid OCSF 1.8.0, by our validator (`ocelot validate`, which
//! checks constraints and profile listing too) and by one that is not ours: the JSON Schema of
//! the PyPI package `ocsf-json-schema`, applied with `jsonschema` (tests/py/ocsf_jsonschema.py).
//! Checked: every bundled sample of every source (and the third-party test events under
//! tests/data), the demo's findings, and a generated 200,000-event CloudTrail corpus.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

/// The independent check: exit 0 and every record valid, else the first errors. `rs`: applied
/// by jsonschema-rs instead of jsonschema (the same JSON Schema; fast enough for 200,000).
fn json_schema_check(files: &[PathBuf], rs: bool) -> Value {
    let py = python_with("ocsf_json_schema, jsonschema, jsonschema_rs", &["ocsf-json-schema", "jsonschema", "jsonschema-rs"]);
    let o = Command::new(py).arg(repo().join("tests/py/ocsf_jsonschema.py")).args(rs.then_some("--rs")).arg("1.8.0").args(files).output().unwrap();
    let report: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    assert!(o.status.success() && report["invalid"] == 0, "invalid by the OCSF JSON Schema: {:#}", report);
    report
}

/// Ours, through the command users run: exit 0, and the summary.
fn ocelot_validate(files: &[PathBuf]) -> String {
    let o = ocelot().arg("validate").args(files).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "ocelot validate: {text}{}", String::from_utf8_lossy(&o.stderr));
    text
}

/// Total records the JSON Schema check saw, by class.
fn counts(report: &Value) -> BTreeMap<String, u64> {
    report["classes"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v["total"].as_u64().unwrap())).collect()
}

/// Panther's rule tests wrap each record in "event" (some tests carry none).
fn panther_records(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter_map(|t| t.get("event").filter(|e| e.is_object()).map(|e| e.to_string() + "\n")).collect::<String>().into_bytes()
}

#[test]
fn every_bundled_sample_of_every_source_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("samples.ocsf.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&out).unwrap());
    let mut per_source = BTreeMap::new();
    let mut add = |label: String, run: Run| {
        assert_valid(&run);
        for b in &run.batches {
            ocelot_normalize::ocsf_json::write_batch(&b.batch, &mut file).unwrap();
        }
        *per_source.entry(label).or_insert(0) += run.rows();
    };
    for source in ["cloudtrail", "waf", "securityhub", "shield", "agent"] {
        for f in files_under(&repo().join("samples").join(source)) {
            add(format!("samples/{source}"), normalize_file_as("auto", &f));
        }
    }
    for f in files_under(&repo().join("tests/data")) {
        let name = f.to_string_lossy().to_string();
        // Of the reference pairs, the raw events (their OCSF is another mapping's, of older OCSF).
        if name.contains("/reference/") && !name.ends_with("/raw.json") || !(name.ends_with(".json") || name.ends_with(".jsonl")) {
            continue;
        }
        let run = if name.contains("/panther/") { normalize_as("auto", &[(&panther_records(&f), &name)]) } else { normalize_file_as("auto", &f) };
        add(name.split("/tests/").nth(1).unwrap_or(&name).rsplit_once('/').map_or(name.clone(), |(d, _)| d.to_string()), run);
    }
    file.flush().unwrap();
    drop(file);
    let report = json_schema_check(std::slice::from_ref(&out), false);
    let summary = ocelot_validate(std::slice::from_ref(&out));
    eprintln!("records by source: {per_source:?}\nby class (JSON Schema): {:?}\n{summary}", counts(&report));
    // Every class every normalizer writes is in there.
    for class in ["api_activity", "authentication", "account_change", "http_activity", "detection_finding", "compliance_finding", "vulnerability_finding"] {
        assert!(counts(&report).get(class).is_some_and(|n| *n > 0), "no {class} records checked");
    }
    assert!(per_source.values().sum::<usize>() > 1200, "{per_source:?}");
}

#[test]
fn the_demo_lake_and_its_findings_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let inputs: Vec<PathBuf> = ["cloudtrail", "waf", "securityhub", "shield", "agent"].iter().map(|s| repo().join("samples").join(s)).collect();
    let agents = repo().join("samples/agents.toml");
    let o = ocelot().args(["normalize", "--lake"]).arg(&lake).arg("--agents").arg(&agents).args(&inputs).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let findings = dir.path().join("findings.jsonl");
    let o = ocelot().args(["detect", "--lake"]).arg(&lake).arg("--agents").arg(&agents).arg("--out").arg(&findings).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let n = std::fs::read_to_string(&findings).unwrap().lines().count();
    assert!(n >= 20, "the demo raises its findings: {n}");
    let report = json_schema_check(std::slice::from_ref(&findings), false);
    assert_eq!(counts(&report).get("detection_finding"), Some(&(n as u64)));
    ocelot_validate(&[findings]);
    // The lake itself, read back from Parquet.
    let summary = ocelot_validate(&[lake]);
    assert!(summary.contains("records valid by OCSF 1.8.0"), "{summary}");
}

#[test]
fn a_generated_200k_cloudtrail_corpus_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("trail.jsonl");
    let o = ocelot().args(["gen", "cloudtrail", "--events", "200000", "--seed", "7", "--output"]).arg(&raw).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ocsf = dir.path().join("trail.ocsf.jsonl");
    let o = ocelot().args(["normalize", "--format", "jsonl"]).arg(&raw).stdout(std::fs::File::create(&ocsf).unwrap()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = json_schema_check(std::slice::from_ref(&ocsf), true);
    assert_eq!(counts(&report).values().sum::<u64>(), 200_000);
    let summary = ocelot_validate(&[ocsf]);
    assert!(summary.contains("200000 of 200000 records valid"), "{summary}");
}

#[test]
fn validate_reports_each_violation_with_its_place_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    // An API Activity whose url has only a hostname, and a `_dt` without the datetime profile.
    let event = serde_json::json!({
        "activity_id": 1, "activity_name": "Create", "category_uid": 6, "category_name": "Application Activity", "class_uid": 6003, "class_name": "API Activity",
        "type_uid": 600301, "severity_id": 1, "time": 1_700_000_000_000i64, "time_dt": "2023-11-14T22:13:20Z",
        "metadata": {"product": {"name": "x", "vendor_name": "y"}, "version": "1.8.0", "profiles": ["cloud"]},
        "cloud": {"provider": "AWS"}, "actor": {"user": {"name": "alice"}}, "api": {"operation": "CreateUser"}, "src_endpoint": {"ip": "192.0.2.1"},
        "http_request": {"url": {"hostname": "iam.amazonaws.com"}}
    });
    std::fs::write(&bad, format!("{event}\n{{not json\n")).unwrap();
    let o = ocelot().arg("validate").arg(&bad).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("bad.jsonl:1: http_request.url: constraint at_least_one: needs one of url_string, path"), "{text}");
    assert!(text.contains("bad.jsonl:1: time_dt: a `_dt` attribute needs the datetime profile"), "{text}");
    assert!(text.contains("bad.jsonl:2: not a JSON object"), "{text}");
    assert!(text.contains("0 of 2 records valid"), "{text}");
}
