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
    // A CloudTrail Insights record about DeleteTrail rates: pySigma on the raw record does not
    // match the rules about DeleteTrail (`insightDetails.eventName` is not `eventName`); nor
    // may we (the record is a Detection Finding, not the call).
    let docs = std::fs::read_to_string(repo().join("samples/cloudtrail/awsdocs/cloudtrail_doc_examples.jsonl")).unwrap();
    for l in docs.lines().filter(|l| l.contains("\"AwsCloudTrailInsight\"")) {
        push(serde_json::from_str(&l.replace("ssm.amazonaws.com", "cloudtrail.amazonaws.com").replace("UpdateInstanceInformation", "DeleteTrail")).unwrap());
    }
    let panther = std::fs::read_to_string(repo().join("tests/data/cloudtrail/panther/cloudtrail_rule_tests.jsonl")).unwrap();
    for t in panther.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()) {
        if let Some(e) = t.get("event").filter(|e| e.is_object()) {
            push(e.clone());
        }
    }
    out
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
    let out = Command::new(common::python_with("sigma.backends.sqlite", &["pysigma", "pysigma-backend-sqlite"]))
        .arg(repo().join("tests/sigma_reference.py"))
        .arg(&rules_dir)
        .arg(&events_file)
        .output()
        .unwrap();
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

/// A CloudTrail record with what correlations group and count by.
fn record(i: usize, minute: u32, name: &str, source: &str, arn: &str, ip: &str) -> String {
    serde_json::json!({
        "eventVersion": "1.08", "eventTime": format!("2026-11-01T10:{:02}:{:02}Z", minute, i % 60), "eventSource": source,
        "eventName": name, "awsRegion": "us-east-1", "sourceIPAddress": ip, "userAgent": "aws-cli/2.15",
        "userIdentity": {"type": "IAMUser", "arn": arn, "accountId": "111122223333", "userName": arn.rsplit('/').next().unwrap()},
        "requestID": format!("req-{i}"), "eventID": format!("ev-{i}"), "eventType": "AwsApiCall", "recipientAccountId": "111122223333"
    })
    .to_string()
}

fn detect(rules: &[(&str, &str)], records: &[String]) -> Vec<ocelot_detectors::Finding> {
    let docs = rules.iter().map(|(n, t)| (PathBuf::from(n), t.to_string())).collect();
    let set = SigmaSet::from_texts(docs, &LoadOptions::default()).unwrap();
    assert!(set.rejected.is_empty(), "{:?}", set.rejected);
    let mut engine = ocelot_detectors::Engine::new(ocelot_detectors::RuleSets { sigma: set, sql: None, patterns: None, behaviour: None }, Default::default());
    let run = normalize_all(&[(records.join("\n").as_bytes(), "crafted")]);
    assert_eq!(run.events, records.len());
    let mut found = std::collections::BTreeMap::new();
    for b in &run.batches {
        for f in engine.process(&b.batch, &b.class.name) {
            found.insert(f.uid.clone(), f);
        }
    }
    found.into_values().collect()
}

fn shipped_rule(rel: &str) -> (&'static str, String) {
    ("legacy.yml", std::fs::read_to_string(repo().join("detectors/rules/sigma").join(rel)).unwrap())
}

#[test]
fn legacy_count_rules_fire_above_their_threshold_within_the_timeframe() {
    // aws_enum_listing: `eventName: list*` | count() > 50 within 10m.
    let (name, text) = shipped_rule("aws-unsupported/aws_enum_listing.yml");
    let arn = "arn:aws:iam::111122223333:user/mallory";
    let burst: Vec<String> = (0..51).map(|i| record(i, (i / 10) as u32, "ListBuckets", "s3.amazonaws.com", arn, "10.0.0.1")).collect();
    let f = detect(&[(name, &text)], &burst);
    assert_eq!(f.len(), 1, "51 listings in 6 minutes: one finding");
    assert_eq!(f[0].count, 51);
    assert_eq!(f[0].related.len(), 51);
    assert_eq!(f[0].rule.title, "Account Enumeration on AWS");
    // 50 are not more than 50; 51 spread over 50 minutes never have 51 within 10.
    assert!(detect(&[(name, &text)], &burst[..50]).is_empty());
    let spread: Vec<String> = (0..51).map(|i| record(i, i as u32, "ListBuckets", "s3.amazonaws.com", arn, "10.0.0.1")).collect();
    assert!(detect(&[(name, &text)], &spread).is_empty());

    // aws_macic_evasion: `count() by sourceIPAddress > 5` within 10m: six Macie evasions from one
    // address fire, six from six addresses do not.
    let (name, text) = shipped_rule("aws-unsupported/aws_macic_evasion.yml");
    let sel = |i: usize, ip: &str| record(i, 1, "ArchiveFindings", "macie2.amazonaws.com", arn, ip);
    let one_ip: Vec<String> = (0..6).map(|i| sel(i, "203.0.113.9")).collect();
    let found = detect(&[(name, &text)], &one_ip);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].group, "203.0.113.9");
    let many_ips: Vec<String> = (0..6).map(|i| sel(i, &format!("203.0.113.{i}"))).collect();
    assert!(detect(&[(name, &text)], &many_ips).is_empty());
}

const BASE_RULES: &str = "
title: Trail stopped
id: 6c0b0f7e-0000-4000-8000-000000000001
name: trail_stopped
logsource: {product: aws, service: cloudtrail}
detection:
  sel: {eventSource: cloudtrail.amazonaws.com, eventName: StopLogging}
  condition: sel
level: high
---
title: Trail deleted
id: 6c0b0f7e-0000-4000-8000-000000000002
name: trail_deleted
logsource: {product: aws, service: cloudtrail}
detection:
  sel: {eventSource: cloudtrail.amazonaws.com, eventName: DeleteTrail}
  condition: sel
level: high
";

#[test]
fn sigma2_correlations_event_count_value_count_temporal_and_ordered() {
    let arn = "arn:aws:iam::111122223333:user/agent-ops";
    let corr = |kind: &str, extra: &str| {
        format!("{BASE_RULES}---\ntitle: {kind} correlation\nid: 6c0b0f7e-0000-4000-8000-0000000000ff\ncorrelation:\n  type: {kind}\n  rules: [trail_stopped, trail_deleted]\n  group-by: [userIdentity.arn]\n  timespan: 5m\n{extra}level: critical\n")
    };
    let stop = |i: usize, m: u32| record(i, m, "StopLogging", "cloudtrail.amazonaws.com", arn, "10.1.1.1");
    let delete = |i: usize, m: u32| record(i, m, "DeleteTrail", "cloudtrail.amazonaws.com", arn, "10.1.1.1");

    // temporal_ordered: stop then delete within 5 minutes fires; delete then stop does not.
    let rules = corr("temporal_ordered", "");
    let f = detect(&[("c.yml", &rules)], &[stop(1, 1), delete(2, 3)]);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].rule.kind, "correlation");
    assert_eq!(f[0].related, vec!["ev-1", "ev-2"]);
    assert_eq!(f[0].group, arn);
    assert!(detect(&[("c.yml", &rules)], &[delete(1, 1), stop(2, 3)]).is_empty());
    assert!(detect(&[("c.yml", &rules)], &[stop(1, 1), delete(2, 9)]).is_empty(), "beyond the 5m timespan");
    // The base rules do not make findings of their own (no `generate: true`).
    // temporal: any order.
    assert_eq!(detect(&[("c.yml", &corr("temporal", ""))], &[delete(1, 1), stop(2, 3)]).len(), 1);

    // event_count: 3 or more of either within 5 minutes.
    let rules = corr("event_count", "  condition:\n    gte: 3\n");
    assert_eq!(detect(&[("c.yml", &rules)], &[stop(1, 1), stop(2, 2), delete(3, 3)]).len(), 1);
    assert!(detect(&[("c.yml", &rules)], &[stop(1, 1), stop(2, 2)]).is_empty());

    // value_count: distinct eventName values >= 2.
    let rules = corr("value_count", "  condition:\n    field: eventName\n    gte: 2\n");
    assert!(detect(&[("c.yml", &rules)], &[stop(1, 1), stop(2, 2), stop(3, 3)]).is_empty());
    assert_eq!(detect(&[("c.yml", &rules)], &[stop(1, 1), delete(2, 2)]).len(), 1);

    // generate: true keeps the base rules' own findings.
    let rules = corr("temporal", "generate: true\n");
    let f = detect(&[("c.yml", &rules)], &[stop(1, 1), delete(2, 3)]);
    assert_eq!(f.len(), 3, "two base findings and the correlation");
}

#[test]
fn every_finding_is_a_valid_ocsf_detection_finding_and_replays_keep_uids() {
    let out = |dir: &Path| {
        let o = common::ocelot().args(["detect", "samples/cloudtrail", "--out"]).arg(dir.join("f.jsonl")).current_dir(repo()).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read_to_string(dir.join("f.jsonl")).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let first = out(dir.path());
    let schema = ocelot_schemas::schema();
    let class = schema.class("detection_finding").unwrap();
    let mut n = 0;
    for line in first.lines() {
        let f: Value = serde_json::from_str(line).unwrap();
        let problems = ocelot_schemas::validate_event(schema, class, &f);
        assert!(problems.is_empty(), "{problems:?}\n{f:#}");
        assert!(!f["finding_info"]["related_events"].as_array().unwrap().is_empty());
        n += 1;
    }
    assert!(n >= 10, "{n} findings on the bundled CloudTrail");
    // Same input, same findings, same uids.
    assert_eq!(first, out(dir.path()));
}

#[test]
fn placeholder_rules_load_once_their_values_are_given() {
    let dir = repo().join("detectors/rules/sigma/aws-placeholder");
    let without = SigmaSet::load_dir(&dir, &LoadOptions::default()).unwrap();
    assert!(without.rules.is_empty() && without.rejected[0].1.contains("placeholder %Legitimate_"), "{:?}", without.rejected);
    let values = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let opts = LoadOptions { placeholders: [("Legitimate_Countries".to_string(), values(&["DE", "FR"])), ("Legitimate_IP_Ranges".to_string(), values(&["10.*"]))].into_iter().collect() };
    let with = SigmaSet::load_dir(&dir, &opts).unwrap();
    assert_eq!(with.rules.len(), 1, "{:?}", with.rejected);
}
