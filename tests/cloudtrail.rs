//! CloudTrail to OCSF: every bundled sample normalizes and validates, the ocsf-examples
//! reference pairs agree with our output, every envelope shape decodes, and bad input goes to
//! the dead letters with a reason.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{json, Value};

#[test]
fn every_real_sample_normalizes_and_validates() {
    let dir = repo().join("samples/cloudtrail");
    let mut total = 0;
    for sub in ["stratus", "awsdocs", "envelopes"] {
        for f in files_under(&dir.join(sub)) {
            if !f.extension().is_some_and(|e| e == "jsonl" || e == "json" || e == "gz") {
                continue;
            }
            let run = normalize_file(&f);
            assert!(run.dead.is_empty(), "{}: {:?}", f.display(), run.dead.iter().map(|d| (&d.origin, &d.reason)).collect::<Vec<_>>());
            assert!(run.events > 0, "{}", f.display());
            assert_eq!(run.rows(), run.events);
            assert_valid(&run);
            total += run.events;
        }
    }
    assert!(total >= 232 + 40, "all Stratus and AWS docs events: {total}");
}

#[test]
fn panther_test_events_normalize_and_validate() {
    // Panther rule tests wrap the CloudTrail record in "event"; three tests carry no record.
    let text = std::fs::read_to_string(repo().join("tests/data/cloudtrail/panther/cloudtrail_rule_tests.jsonl")).unwrap();
    let records: Vec<String> = text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter_map(|t| t.get("event").filter(|e| e.is_object()).map(|e| e.to_string())).collect();
    assert!(records.len() > 400, "{}", records.len());
    let joined = records.join("\n");
    let run = normalize_all(&[(joined.as_bytes(), "panther")]);
    // Some Panther tests are hand-made fragments without eventName or eventTime; they must be
    // dead-lettered with the reason, never dropped.
    assert_eq!(run.events + run.dead.len(), records.len());
    for d in &run.dead {
        // Hand-made fragments without eventName/eventTime, and times Panther redacted.
        assert!(d.reason.starts_with("not a CloudTrail record") || d.reason.starts_with("bad eventTime: `"), "{}", d.reason);
    }
    assert!(run.dead.len() < records.len() / 10, "{} of {} dead-lettered", run.dead.len(), records.len());
    assert_valid(&run);
}

#[test]
fn processing_library_edge_cases() {
    let dir = repo().join("tests/data/cloudtrail/processing-library");
    let mut expected_dead = BTreeMap::new();
    // Records with null eventName/eventTime, and the deliberately invalid JSON file.
    expected_dead.insert("SerializerAllFieldsNull.json", 1);
    expected_dead.insert("SerializerTestFileBadFieldName.json", 1);
    expected_dead.insert("SerializerTestFileNewFieldName.json", 1);
    expected_dead.insert("SerializerTestFileBadJsonFormat.json", 1);
    // One record's eventTime is "ThisIsAWrongEventTime".
    expected_dead.insert("SerializerTestFileMissField.json", 1);
    for f in files_under(&dir) {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".json") {
            continue;
        }
        let run = normalize_file(&f);
        let want = expected_dead.get(name.as_str()).copied().unwrap_or(0);
        assert_eq!(run.dead.len(), want, "{name}: {:?}", run.dead.iter().map(|d| &d.reason).collect::<Vec<_>>());
        assert_valid(&run);
        if name == "SerializerTestFileBadJsonFormat.json" {
            assert!(run.dead[0].reason.starts_with("malformed JSON") || run.dead[0].reason.starts_with("truncated JSON"), "{}", run.dead[0].reason);
        }
    }
}

/// Differences from the ocsf-examples references that are choices, not mistakes; each is
/// explained in docs/mappings/cloudtrail.md.
const KNOWN_DIFFERENCES: &[&str] = &[
    "metadata.version",              // we emit OCSF 1.8.0; the references are 1.1.0 / 1.5.0
    "metadata.product.feature.name", // eventCategory; one reference hard-codes a description
    "metadata.log_name",             // the bloblang sample puts eventType here; we use eventCategory
    "api.request.uid",               // the Authentication reference holds a literal "''"
    "observables",                   // compared as a set below
    "unmapped",                      // compared key by key below
    "time_dt",                       // the references write local offsets, one of them wrongly (UTC wall clock + "-04:00"); `time` is compared exactly
    "actor.session.created_time_dt",
    "actor.session.created_time", // the bloblang sample writes 0 for "absent"
];

/// Values in a reference that no mapping of its raw event could produce.
const UPSTREAM_SLIPS: &[(&str, &str)] = &[
    // OCSF's caption is "Identity & Access Management", without "Category".
    ("bloblang-samples/v1.1.0/cloudtrail/3001_account_change", "category_name"),
    ("bloblang-samples/v1.1.0/cloudtrail/3002_authentication", "category_name"),
    // status "Success" with status_id 99 (Other): the id contradicts the caption.
    ("bloblang-samples/v1.1.0/cloudtrail/6003_api_activity", "status_id"),
    // The bloblang sample's `user` is the actor's principal, not the user created.
    ("bloblang-samples/v1.1.0/cloudtrail/3001_account_change", "user.uid"),
];

#[test]
fn agrees_with_the_ocsf_examples_reference_pairs() {
    let base = repo().join("tests/data/reference/ocsf-examples");
    // (raw event, reference OCSF). The bloblang samples' OCSF outputs were made from the
    // markdown v1.1.0 raw events (their own raw.json files are other copies, with other ids and
    // a different year), so they are compared against those.
    let mut pairs = Vec::new();
    for v in ["markdown/v1.1.0/cloudtrail", "markdown/v1.5.0/cloudtrail"] {
        for d in std::fs::read_dir(base.join(v)).unwrap().flatten() {
            pairs.push((d.path().join("raw.json"), d.path().join("ocsf.json")));
        }
    }
    for class in ["6003_api_activity", "3002_authentication", "3001_account_change"] {
        pairs.push((base.join("markdown/v1.1.0/cloudtrail").join(class).join("raw.json"), base.join("bloblang-samples/v1.1.0/cloudtrail").join(class).join("ocsf.json")));
    }
    pairs.sort();
    assert_eq!(pairs.len(), 9);
    let (compared, mismatches) = reference::compare("cloudtrail", &pairs, KNOWN_DIFFERENCES, UPSTREAM_SLIPS, |o| o["name"] == "user.name");
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    assert!(compared > 150, "compared {compared} fields");
}

#[test]
fn all_envelope_shapes_decode_to_the_same_events() {
    // The same three records in every shape CloudTrail arrives in.
    let text = std::fs::read_to_string(repo().join("samples/cloudtrail/stratus/aws.persistence.iam-create-admin-user.jsonl")).unwrap();
    let records: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let gz = |b: &[u8]| {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    };
    let jsonl = text.clone().into_bytes();
    let pretty: Vec<u8> = records.iter().map(|r| serde_json::to_string_pretty(r).unwrap()).collect::<Vec<_>>().join("\n").into_bytes();
    let concatenated: Vec<u8> = records.iter().map(|r| r.to_string()).collect::<String>().into_bytes();
    let single = serde_json::to_vec_pretty(&records[0]).unwrap();
    let s3 = serde_json::to_vec(&json!({"Records": records})).unwrap();
    let eventbridge: Vec<u8> =
        records.iter().map(|r| json!({"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.iam", "detail": r}).to_string() + "\n").collect::<String>().into_bytes();
    let cwl = serde_json::to_vec(&json!({"messageType": "DATA_MESSAGE", "logGroup": "trail", "logEvents": records.iter().enumerate().map(|(i, r)| json!({"id": i.to_string(), "timestamp": 0, "message": r.to_string()})).collect::<Vec<_>>()})).unwrap();
    let shapes: Vec<(&str, Vec<u8>, usize)> = vec![
        ("jsonl", jsonl, 3),
        ("pretty", pretty, 3),
        ("concatenated", concatenated, 3),
        ("single", single, 1),
        ("s3", s3.clone(), 3),
        ("s3.gz", gz(&s3), 3),
        ("eventbridge", eventbridge, 3),
        ("cloudwatch", cwl.clone(), 3),
        ("cloudwatch.gz", gz(&cwl), 3),
    ];
    let uids = |run: &Run| {
        let mut u: Vec<String> = run.events_json().iter().map(|(_, e)| e["metadata"]["uid"].as_str().unwrap().to_string()).collect();
        u.sort();
        u
    };
    let want = uids(&normalize_all(&[(text.as_bytes(), "jsonl")]));
    for (name, bytes, n) in shapes {
        let run = normalize_all(&[(&bytes, name)]);
        assert!(run.dead.is_empty(), "{name}: {:?}", run.dead);
        assert_eq!(run.events, n, "{name}");
        let got = uids(&run);
        assert!(got.iter().all(|u| want.contains(u)), "{name}");
        assert_valid(&run);
    }
}

#[test]
fn bad_input_is_dead_lettered_with_a_reason_and_the_rest_survives() {
    let good = std::fs::read_to_string(repo().join("samples/cloudtrail/stratus/aws.defense-evasion.cloudtrail-stop.jsonl")).unwrap();
    let good_line = good.lines().next().unwrap();
    let mut gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(good.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    gz.truncate(gz.len() - 12);
    let huge = format!("{{\"eventName\":\"PutObject\",\"eventTime\":\"2026-01-01T00:00:00Z\",\"pad\":\"{}\"}}", "x".repeat(10 << 20));
    let mut bad_utf8 = good_line.as_bytes().to_vec();
    let at = bad_utf8.iter().position(|b| *b == b'"').unwrap() + 1;
    bad_utf8.insert(at, 0xff);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("malformed", format!("{good_line}\n{{\"eventName\": \"x\",,}}\n{good_line}\n").into_bytes(), "malformed JSON"),
        ("truncated-gzip", gz, "gzip"),
        ("no-eventName", format!("{good_line}\n{{\"eventTime\":\"2026-01-01T00:00:00Z\",\"eventSource\":\"s3.amazonaws.com\"}}\n").into_bytes(), "not a CloudTrail record: no eventName"),
        ("no-eventTime", b"{\"eventName\":\"PutObject\",\"eventSource\":\"s3.amazonaws.com\"}\n".to_vec(), "not a CloudTrail record: no eventTime"),
        ("bad-eventTime", b"{\"eventName\":\"PutObject\",\"eventTime\":\"yesterday\"}\n".to_vec(), "bad eventTime"),
        ("10MB-line", format!("{good_line}\n{huge}\n").into_bytes(), "too large"),
        ("invalid-utf8", [bad_utf8.as_slice(), b"\n", good_line.as_bytes()].concat(), "invalid UTF-8"),
        ("not-an-object", b"[1,2,3]\n".to_vec(), "not a CloudTrail record"),
    ];
    for (name, bytes, reason) in cases {
        let run = normalize_all(&[(&bytes, name)]);
        assert!(!run.dead.is_empty(), "{name}: nothing dead-lettered");
        assert!(run.dead.iter().any(|d| d.reason.starts_with(reason)), "{name}: {:?}", run.dead.iter().map(|d| &d.reason).collect::<Vec<_>>());
        for d in &run.dead {
            assert_eq!(&*d.origin.source, name);
            assert!(!d.bytes.is_empty(), "{name}: the original bytes are kept");
        }
        assert_valid(&run);
    }
    // The good records around the bad ones all survive.
    let run = normalize_all(&[(format!("{good_line}\n{{oops\n{good_line}\n").as_bytes(), "mixed")]);
    assert_eq!((run.events, run.dead.len()), (2, 1));
    assert_eq!(run.dead[0].origin.line, Some(2));
}

#[test]
fn mapping_of_a_trust_policy_change() {
    let line = std::fs::read_to_string(repo().join("samples/cloudtrail/stratus/aws.persistence.iam-backdoor-role.jsonl")).unwrap();
    let run = normalize_all(&[(line.as_bytes(), "x")]);
    let events = run.events_json();
    let e = events.iter().find(|(_, e)| e["api"]["operation"] == "UpdateAssumeRolePolicy").map(|(c, e)| (c.as_str(), e)).unwrap();
    assert_eq!(e.0, "account_change");
    let e = e.1;
    assert_eq!(e["activity_id"], 99);
    assert_eq!(e["activity_name"], "UpdateAssumeRolePolicy");
    assert_eq!(e["type_uid"], 300199);
    assert_eq!(e["type_name"], "Account Change: Other");
    assert_eq!(e["cloud"]["provider"], "AWS");
    assert_eq!(e["api"]["service"]["name"], "iam.amazonaws.com");
    assert!(e["api"]["request"]["data"].as_str().unwrap().contains("policyDocument"));
    assert!(e["user"]["name"].is_string(), "the role acted on: {}", e["user"]);
    assert_eq!(e["actor"]["user"]["type"], "IAMUser");
    assert_eq!(e["actor"]["user"]["type_id"], 1);
    assert!(e["actor"]["user"]["uid"].as_str().unwrap().starts_with("arn:aws:iam::"));
    assert!(e["src_endpoint"]["ip"].as_str().unwrap().split('.').all(|o| o == "0" || !o.starts_with('0')), "leading zeros normalized");
}
