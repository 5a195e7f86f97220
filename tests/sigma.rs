//! Sigma over OCSF: the shipped SigmaHQ rules against every bundled CloudTrail event, compared
//! with a reference evaluator that is not ours (pySigma's SQLite backend over the raw events,
//! tests/sigma_reference.py); and the correlation forms on crafted sequences.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use arrow::array::{Array, AsArray};
use common::{files_under, normalize_all, repo};
use ocelot_detectors::{LoadOptions, SigmaSet};
use serde_json::Value;

/// Every raw CloudTrail event bundled: Stratus, AWS docs, Panther tests, processing library.
fn raw_events() -> Vec<Value> {
    let mut out = Vec::new();
    let mut push = |v: Value| match v.get("Records").and_then(Value::as_array) {
        Some(records) => out.extend(records.iter().cloned()),
        None if v.is_object() => out.push(v),
        None => {}
    };
    for dir in ["samples/cloudtrail/stratus", "samples/cloudtrail/awsdocs", "tests/data/cloudtrail/processing-library"] {
        for f in files_under(&repo().join(dir)) {
            let text = std::fs::read_to_string(&f).unwrap();
            match serde_json::from_str::<Value>(&text) {
                Ok(v) => push(v),
                Err(_) => text.lines().filter_map(|l| serde_json::from_str(l).ok()).for_each(&mut push),
            }
        }
    }
    let panther = std::fs::read_to_string(repo().join("tests/data/cloudtrail/panther/cloudtrail_rule_tests.jsonl")).unwrap();
    for t in panther.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()) {
        if let Some(e) = t.get("event").filter(|e| e.is_object()) {
            push(e.clone());
        }
    }
    out
}

/// A Python with pySigma and its SQLite backend (scripts/test.sh sets `OCELOT_TEST_PYTHON`).
fn python_with_pysigma() -> PathBuf {
    if let Ok(p) = std::env::var("OCELOT_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = repo().join("target/test-venv");
    let py = venv.join("bin/python");
    let ok = |py: &Path| Command::new(py).args(["-c", "import sigma.backends.sqlite"]).status().is_ok_and(|s| s.success());
    if !ok(&py) {
        assert!(Command::new("python3").args(["-m", "venv"]).arg(&venv).status().unwrap().success(), "python3 -m venv failed");
        let st = Command::new(&py).args(["-m", "pip", "install", "--quiet", "pysigma", "pysigma-backend-sqlite"]).status().unwrap();
        assert!(st.success(), "pip install pysigma failed (needs PyPI)");
    }
    py
}

#[test]
fn sigmahq_rules_match_exactly_what_pysigma_matches() {
    let rules_dir = repo().join("detectors/rules/sigma/aws");
    let set = SigmaSet::load_dir(&rules_dir, &LoadOptions::default()).unwrap();
    assert_eq!(set.rules.len(), 57, "every SigmaHQ AWS rule loads; rejected: {:?}", set.rejected);
    assert!(set.rejected.is_empty(), "{:?}", set.rejected);

    // Each event gets a unique eventID (Panther tests reuse theirs), the only field changed.
    let mut events = raw_events();
    for (i, e) in events.iter_mut().enumerate() {
        e["eventID"] = Value::String(format!("ev-{i:05}"));
    }
    let lines: Vec<String> = events.iter().map(Value::to_string).collect();
    let run = normalize_all(&[(lines.join("\n").as_bytes(), "sigma-test")]);
    assert!(run.events > 600, "{} events normalized", run.events);

    let mut ours = BTreeSet::new();
    let mut normalized = BTreeSet::new();
    for b in &run.batches {
        let uid = ocelot_detectors::fields::column(&b.batch, "metadata.uid").unwrap();
        let uid = uid.as_string::<i32>();
        (0..uid.len()).for_each(|i| {
            normalized.insert(uid.value(i).to_string());
        });
        for hit in set.eval(&b.batch) {
            ours.insert((set.rules[hit.rule].meta.id.clone(), uid.value(hit.row).to_string()));
        }
    }
    // The reference sees the same events: those the normalizer accepted (the others are
    // dead-lettered, with a reason, by design).
    let dir = tempfile::tempdir().unwrap();
    let kept: Vec<&String> = lines.iter().zip(&events).filter(|(_, e)| normalized.contains(e["eventID"].as_str().unwrap())).map(|(l, _)| l).collect();
    assert_eq!(kept.len(), normalized.len());
    let events_file = dir.path().join("events.jsonl");
    std::fs::write(&events_file, kept.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let out = Command::new(python_with_pysigma()).arg(repo().join("tests/sigma_reference.py")).arg(&rules_dir).arg(&events_file).output().unwrap();
    assert!(out.status.success(), "reference failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut theirs = BTreeSet::new();
    let mut unsupported = Vec::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        match cols.as_slice() {
            ["UNSUPPORTED", id, why] => unsupported.push(format!("{id}: {why}")),
            [id, ev] => {
                theirs.insert((id.to_string(), ev.to_string()));
            }
            _ => panic!("bad reference line {line}"),
        }
    }
    assert!(unsupported.is_empty(), "pySigma could not convert: {unsupported:?}");
    let only_ours: Vec<_> = ours.difference(&theirs).collect();
    let only_theirs: Vec<_> = theirs.difference(&ours).collect();
    assert!(only_ours.is_empty() && only_theirs.is_empty(), "only Ocelot: {only_ours:?}\nonly pySigma: {only_theirs:?}");
    let rules_hit: BTreeSet<&String> = ours.iter().map(|(r, _)| r).collect();
    eprintln!("{} events, {} (rule, event) matches, {} of 57 rules match something; identical to pySigma", normalized.len(), ours.len(), rules_hit.len());
    assert!(ours.len() > 50 && rules_hit.len() > 20, "{} matches over {} rules: too few to mean much", ours.len(), rules_hit.len());
}
