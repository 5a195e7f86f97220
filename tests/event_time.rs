//! Event time that a broken clock or an attacker controls: one record dated 2099 must not make
//! every later, correctly dated event late, and `normalize` dead-letters it with the reason.

mod common;

use common::*;
use ocelot_pipeline::detect::{EngineSpec, Mode};
use serde_json::{json, Value};

const MINUTE: i64 = 60_000;

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A TerminateInstances call by `who` at `ms`.
fn terminate(who: &str, ms: i64, n: usize) -> Value {
    json!({
        "eventVersion": "1.09", "eventTime": rfc3339(ms), "eventSource": "ec2.amazonaws.com", "eventName": "TerminateInstances",
        "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.9", "userAgent": "Boto3/1.34.0", "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333", "readOnly": false, "requestID": format!("req-{who}-{n}"), "eventID": format!("evt-{who}-{n}"),
        "userIdentity": {"type": "AssumedRole", "principalId": format!("AROA:{who}"), "arn": format!("arn:aws:sts::111122223333:assumed-role/Ops/{who}"), "accountId": "111122223333"},
        "requestParameters": {"instancesSet": {"items": [{"instanceId": format!("i-{n:017}")}]}}
    })
}

#[test]
fn a_2099_record_between_two_halves_of_an_attack_does_not_hide_it() {
    // The engine is fed the 2099 record here (normalize would dead-letter it: the next test).
    ocelot_normalize::time::set_bounds(0, 0);
    let now = ocelot_normalize::time::now_ms();
    // A 10-minute window of the capacity rule, well behind the clock (CloudTrail arrives late).
    let base = (now - 40 * MINUTE) / (10 * MINUTE) * (10 * MINUTE);
    let first = terminate("cleanup", base + MINUTE, 1);
    let forged = terminate("clock", chrono::DateTime::parse_from_rfc3339("2099-01-01T00:00:00Z").unwrap().timestamp_millis(), 9);
    let second = [terminate("cleanup", base + 2 * MINUTE, 2), terminate("cleanup", base + 3 * MINUTE, 3)];
    let mut engine = EngineSpec::shipped(Mode::STREAM).build().unwrap();
    let mut findings = Vec::new();
    for part in [vec![first], vec![forged], second.to_vec()] {
        let text: String = part.iter().map(|e| e.to_string() + "\n").collect();
        let run = normalize_all(&[(text.as_bytes(), "attack")]);
        assert!(run.dead.is_empty(), "{:?}", run.dead.iter().map(|d| &d.reason).collect::<Vec<_>>());
        for b in &run.batches {
            findings.extend(engine.process(&b.batch, &b.class.name));
        }
    }
    findings.extend(engine.finish());
    let stats = engine.stats();
    assert_eq!(stats.future_events, 1, "the 2099 record is counted");
    assert_eq!(stats.late_events, 0, "no event of the attack came after its window closed");
    let capacity: Vec<_> = findings.iter().filter(|f| f.rule.id == "ocelot.capacity-removal").collect();
    assert!(!capacity.is_empty(), "the capacity rule fires on the three terminations: {:?}", findings.iter().map(|f| &f.rule.id).collect::<Vec<_>>());
    assert!(capacity.iter().any(|f| f.related.iter().any(|u| u == "evt-cleanup-3")), "the second half is in the finding");
}

#[test]
fn normalize_dead_letters_a_far_future_record_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("trail.jsonl");
    let now = chrono::Utc::now().timestamp_millis();
    let records = [terminate("a", now - MINUTE, 1), terminate("b", chrono::DateTime::parse_from_rfc3339("2099-01-01T00:00:00Z").unwrap().timestamp_millis(), 2)];
    std::fs::write(&input, records.iter().map(|r| r.to_string() + "\n").collect::<String>()).unwrap();
    let lake = dir.path().join("lake");
    let o = ocelot().args(["normalize", "--lake"]).arg(&lake).arg(&input).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dead: Vec<Value> =
        files_under(&lake.join("_dead_letter")).iter().flat_map(|f| std::fs::read_to_string(f).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect::<Vec<Value>>()).collect();
    assert_eq!(dead.len(), 1, "{dead:?}");
    let reason = dead[0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("event time in the future: 2099-01-01T00:00:00Z"), "{reason}");
    assert!(dead[0]["data"].as_str().unwrap().contains("evt-b-2"));
    // The good record is in the lake.
    assert!(files_under(&lake.join("api_activity")).iter().any(|p| p.extension().is_some_and(|e| e == "parquet")));
}
