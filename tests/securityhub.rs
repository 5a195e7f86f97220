//! Security Hub findings (ASFF) to OCSF findings: every bundled sample normalizes and validates,
//! the ocsf-examples Security Hub pairs agree with ours field by field, findings arrive bare,
//! in API bodies and in EventBridge events, and bad findings are dead-lettered with a reason.

mod common;

use common::*;
use serde_json::{json, Value};

fn panther_findings() -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("tests/data/securityhub/panther/securityfinding_rule_tests.jsonl")).unwrap();
    text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["event"].to_string()).collect()
}

fn count(run: &Run, class: &str) -> usize {
    run.batches.iter().filter(|b| b.class.name == class).map(|b| b.batch.num_rows()).sum()
}

#[test]
fn every_asff_sample_normalizes_and_validates() {
    let mut total = 0;
    for f in files_under(&repo().join("samples/securityhub")) {
        let run = normalize_file_as("securityhub", &f);
        assert!(run.dead.is_empty(), "{}: {:?}", f.display(), run.dead.iter().map(|d| &d.reason).collect::<Vec<_>>());
        assert_valid(&run);
        total += run.rows();
    }
    assert_eq!(total, 9 + 2, "AWS docs and AWS CLI findings");
    let panther = panther_findings();
    let run = normalize_as("securityhub", &[(panther.join("\n").as_bytes(), "panther")]);
    assert!(run.dead.is_empty(), "{:?}", run.dead.iter().map(|d| &d.reason).collect::<Vec<_>>());
    assert_eq!(run.rows(), 10);
    assert_valid(&run);
    // GuardDuty's decoy findings through Security Hub: the API call is the evidence.
    let events = run.events_json();
    let (_, first) = &events[0];
    assert_eq!(first["class_uid"], 2004);
    assert!(first["evidences"][0]["api"]["operation"].is_string(), "{}", first["evidences"]);
    assert!(first["finding_info"]["uid"].is_string());
}

#[test]
fn control_findings_are_compliance_findings() {
    let run = normalize_file_as("securityhub", &repo().join("samples/securityhub/awsdocs/asff_doc_examples.jsonl"));
    assert_eq!(count(&run, "compliance_finding"), 8, "the control findings of the AWS docs");
    let events = run.events_json();
    let (_, fsbp) = events.iter().find(|(_, e)| e["compliance"]["control"] == "CloudTrail.2").expect("FSBP CloudTrail.2");
    assert_eq!(fsbp["class_uid"], 2003);
    assert_eq!(fsbp["compliance"]["status"], "FAILED");
    assert_eq!(fsbp["compliance"]["status_id"], 3);
    assert_eq!(fsbp["severity_id"], 3);
    assert_eq!(fsbp["activity_id"], 2, "updated after it was created");
    assert_eq!(fsbp["cloud"]["region"], "us-east-2");
    assert_eq!(fsbp["remediation"]["references"][0], "https://docs.aws.amazon.com/console/securityhub/CloudTrail.2/remediation");
    assert!(fsbp["resources"][0]["uid"].is_string());
}

/// Differences from the ocsf-examples Security Hub references (OCSF 1.1.0) that are choices,
/// not mistakes; each is explained in docs/mappings/asff.md.
const KNOWN_DIFFERENCES: &[&str] = &[
    "metadata.version",    // we emit OCSF 1.8.0
    "metadata.profiles",   // the GuardDuty reference adds `linux` with no process data mapped
    "metadata.extensions", // likewise
    "metadata.product.feature.name",
    "time_dt",
    "finding_info.created_time_dt",
    "finding_info.modified_time_dt",
    "finding_info.first_seen_time_dt",
    "finding_info.last_seen_time_dt",
    "metadata.processed_time_dt", // local renderings; the epoch values are compared
    "resource",                   // deprecated single resource: ours is `resources`
    "resources[0].criticality",
    "evidences",            // compared below: GuardDuty's ProductFields are kept unmapped
    "vulnerabilities",      // compared below
    "compliance.standards", // ours: AssociatedStandards[].StandardsId as written; the reference strips the prefix
    "observables",          // compared as a set by the harness
    "unmapped",             // compared key by key by the harness
];

#[test]
fn agrees_with_the_ocsf_examples_security_hub_pairs() {
    let base = repo().join("tests/data/reference/ocsf-examples/markdown/v1.1.0/securityhub");
    let mut pairs: Vec<_> = std::fs::read_dir(&base).unwrap().flatten().map(|d| (d.path().join("raw.json"), d.path().join("ocsf.json"))).collect();
    pairs.sort();
    assert_eq!(pairs.len(), 3);
    // The references name the single `resource` observable `resource.uid`; ours `resources.uid`.
    let renamed = |o: &Value| o["name"] == "resource.uid" || o["name"].as_str().is_some_and(|n| n.starts_with("resources[]") || n.starts_with("evidences[]"));
    let (compared, mismatches) = reference::compare("securityhub", &pairs, KNOWN_DIFFERENCES, &[], renamed);
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    assert!(compared >= 60, "compared {compared} fields");

    // The vulnerability: CVE, CVSS and the package, as the Inspector reference has them.
    let raw = std::fs::read(base.join("2002_vulnerability_finding_inspector/raw.json")).unwrap();
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(base.join("2002_vulnerability_finding_inspector/ocsf.json")).unwrap()).unwrap();
    let ours = normalize_as("securityhub", &[(&raw, "ref")]).events_json().remove(0).1;
    let (o, r) = (&ours["vulnerabilities"][0], &reference["vulnerabilities"][0]);
    assert_eq!(o["cve"]["uid"], r["cve"]["uid"]);
    assert_eq!(o["cve"]["cvss"][0]["base_score"], r["cve"]["cvss"][0]["base_score"]);
    assert_eq!(o["cve"]["cvss"][0]["vector_string"], r["cve"]["cvss"][0]["vector_string"]);
    for k in ["name", "version", "fixed_in_version", "package_manager", "release", "architecture", "epoch"] {
        assert_eq!(o["affected_packages"][0][k], r["affected_packages"][0][k], "{k}");
    }
    assert_eq!(o["is_fix_available"], r["is_fix_available"]);
    // The GuardDuty API call: operation, service and caller IP as the reference's evidence.
    let raw = std::fs::read(base.join("2004_detection_finding_guardduty/raw.json")).unwrap();
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(base.join("2004_detection_finding_guardduty/ocsf.json")).unwrap()).unwrap();
    let ours = normalize_as("securityhub", &[(&raw, "ref")]).events_json().remove(0).1;
    assert_eq!(ours["evidences"][0]["api"], reference["evidences"][0]["api"]);
    assert_eq!(ours["evidences"][0]["src_endpoint"]["ip"], reference["evidences"][0]["src_endpoint"]["ip"]);
}

#[test]
fn findings_arrive_bare_in_api_bodies_and_in_eventbridge_events() {
    let docs = std::fs::read_to_string(repo().join("samples/securityhub/awsdocs/asff_doc_examples.jsonl")).unwrap();
    let findings: Vec<Value> = docs.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let eventbridge = json!({
        "version": "0", "id": "8e5622f9-d81c-4d81-612a-9319e7ee2506", "detail-type": "Security Hub Findings - Imported",
        "source": "aws.securityhub", "account": "123456789012", "time": "2024-01-01T00:00:00Z", "region": "us-east-1",
        "resources": [], "detail": {"findings": findings}
    });
    let api_body = json!({"Findings": findings});
    for (name, bytes) in [("eventbridge", eventbridge.to_string()), ("GetFindings", api_body.to_string())] {
        let run = normalize_as("securityhub", &[(bytes.as_bytes(), name)]);
        assert!(run.dead.is_empty(), "{name}: {:?}", run.dead);
        assert_eq!(run.rows(), findings.len(), "{name}");
        assert_valid(&run);
    }
}

#[test]
fn bad_findings_are_dead_lettered_with_a_reason() {
    let docs = std::fs::read_to_string(repo().join("samples/securityhub/awsdocs/asff_doc_examples.jsonl")).unwrap();
    let good: Value = serde_json::from_str(docs.lines().next().unwrap()).unwrap();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        v.to_string()
    };
    let lines = [
        with(&|v| v["Types"] = json!(["Made Up Namespace/Category"])),
        with(&|v| v.as_object_mut().unwrap().remove("Id").map(|_| ()).unwrap()),
        with(&|v| v["UpdatedAt"] = json!("last tuesday")),
        with(&|v| v["Types"] = json!("TTPs/Discovery")),
        good.to_string(),
        r#"{"SchemaVersion":"2018-10-08","Id":"x","ProductArn":"#.to_string(),
    ];
    let run = normalize_as("securityhub", &[(lines.join("\n").as_bytes(), "bad.jsonl")]);
    let reasons: Vec<&str> = run.dead.iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(run.rows(), 1, "{reasons:?}");
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert!(reasons[0].starts_with("unknown ASFF finding type `Made Up Namespace/Category`"), "{reasons:?}");
    assert!(reasons[1].contains("no Id"), "{reasons:?}");
    assert!(reasons[2].contains("UpdatedAt `last tuesday`"), "{reasons:?}");
    assert!(reasons[3].contains("Types is not a list"), "{reasons:?}");
    assert!(reasons[4].starts_with("malformed JSON") || reasons[4].starts_with("truncated JSON"), "{reasons:?}");
}

#[test]
fn auto_tells_cloudtrail_waf_and_security_hub_apart() {
    // All three sources interleaved line by line in one file.
    let read = |p: &str| std::fs::read_to_string(repo().join(p)).unwrap();
    let sources =
        [read("samples/cloudtrail/stratus/aws.defense-evasion.cloudtrail-stop.jsonl"), read("samples/waf/awsdocs/waf_log_examples.jsonl"), read("samples/securityhub/awsdocs/asff_doc_examples.jsonl")];
    let mut iters: Vec<_> = sources.iter().map(|s| s.lines()).collect();
    let mut mixed = Vec::new();
    loop {
        let row: Vec<&str> = iters.iter_mut().filter_map(|i| i.next()).collect();
        if row.is_empty() {
            break;
        }
        mixed.extend(row);
    }
    let run = normalize_as("auto", &[(mixed.join("\n").as_bytes(), "mixed")]);
    assert!(run.dead.is_empty(), "{:?}", run.dead);
    let findings = count(&run, "detection_finding") + count(&run, "compliance_finding") + count(&run, "vulnerability_finding");
    assert_eq!(findings, 9);
    assert_eq!(count(&run, "http_activity"), 7);
    assert_eq!(run.rows(), 9 + 7 + sources[0].lines().count());
    assert_valid(&run);
}
