//! GuardDuty findings in GuardDuty's own format to Detection Findings; the same finding through
//! Security Hub (ASFF) gets the same finding uid.

mod common;

use common::*;
use serde_json::{json, Value};

fn findings() -> Vec<Value> {
    let text = std::fs::read_to_string(repo().join("tests/data/guardduty/panther/guardduty_rule_tests.jsonl")).unwrap();
    text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["event"].clone()).collect()
}

#[test]
fn guardduty_findings_normalize_and_validate() {
    let findings = findings();
    assert_eq!(findings.len(), 8);
    let lines: Vec<String> = findings.iter().map(|f| f.to_string()).collect();
    let run = normalize_as("guardduty", &[(lines.join("\n").as_bytes(), "panther")]);
    assert!(run.dead.is_empty(), "{:?}", run.dead.iter().map(|d| &d.reason).collect::<Vec<_>>());
    assert_eq!(run.rows(), 8);
    assert_valid(&run);
    let events = run.events_json();
    let (_, seq) = &events[0];
    assert_eq!(seq["class_uid"], 2004);
    assert_eq!(seq["severity_id"], 5, "severity 9 is Critical");
    assert_eq!(seq["finding_info"]["types"], json!(["AttackSequence:IAM/CompromisedCredentials"]));
    assert_eq!(seq["finding_info"]["uid"], findings[0]["arn"]);
    assert_eq!(seq["finding_info"]["uid_alt"], findings[0]["id"]);
    assert_eq!(seq["metadata"]["product"]["feature"]["name"], "Correlation");
    assert_eq!(seq["cloud"]["region"], "us-east-1");
    let (_, api) = &events[2];
    assert_eq!(api["evidences"][0]["api"]["operation"], "PutRolePolicy");
    assert_eq!(api["evidences"][0]["api"]["service"]["name"], "iam.amazonaws.com");
    assert_eq!(api["severity_id"], 4, "severity 8 is High");
    // The affected resources and the caller's domain are kept.
    assert!(api["unmapped"]["service"]["action"]["awsApiCallAction"]["affectedResources"].is_object(), "{}", api["unmapped"]);

    // As EventBridge delivers them.
    let eb = json!({"version": "0", "detail-type": "GuardDuty Finding", "source": "aws.guardduty", "detail": findings[2]});
    let run = normalize_as("auto", &[(eb.to_string().as_bytes(), "eventbridge")]);
    assert_eq!(run.rows(), 1, "{:?}", run.dead);
    assert_valid(&run);
}

#[test]
fn the_same_finding_through_security_hub_has_the_same_uid() {
    let raw = std::fs::read(repo().join("tests/data/reference/ocsf-examples/markdown/v1.1.0/securityhub/2004_detection_finding_guardduty/raw.json")).unwrap();
    let via_hub = normalize_as("securityhub", &[(&raw, "asff")]).events_json().remove(0).1;
    let asff: Value = serde_json::from_slice(&raw).unwrap();
    // GuardDuty's own record of it: the ARN the ASFF Id holds.
    let native = json!({
        "schemaVersion": "2.0", "accountId": asff["AwsAccountId"], "region": asff["Region"], "partition": "aws",
        "id": asff["Id"].as_str().unwrap().rsplit('/').next().unwrap(), "arn": asff["Id"], "type": "Stealth:IAMUser/CloudTrailLoggingDisabled",
        "title": asff["Title"], "description": asff["Description"], "severity": 2, "createdAt": asff["CreatedAt"], "updatedAt": asff["UpdatedAt"],
        "resource": {"resourceType": "AccessKey", "accessKeyDetails": {"accessKeyId": "ASIATMJPC7EXAMPLE", "userName": "Admin"}},
        "service": {"serviceName": "guardduty", "archived": false, "count": 1,
            "action": {"actionType": "AWS_API_CALL", "awsApiCallAction": {"api": "DeleteTrail", "serviceName": "cloudtrail.amazonaws.com",
                "remoteIpDetails": {"ipAddressV4": "52.94.133.131", "country": {"countryName": "United States"}}}}}
    });
    let own = normalize_as("auto", &[(native.to_string().as_bytes(), "native")]).events_json().remove(0).1;
    assert_eq!(own["finding_info"]["uid"], via_hub["finding_info"]["uid"]);
    assert_eq!(own["evidences"][0]["api"], via_hub["evidences"][0]["api"]);
    assert_eq!(own["evidences"][0]["src_endpoint"]["ip"], via_hub["evidences"][0]["src_endpoint"]["ip"]);
    assert_eq!(own["severity_id"], via_hub["severity_id"]);
}

#[test]
fn bad_guardduty_findings_are_dead_lettered() {
    let good = findings()[2].clone();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        v.to_string()
    };
    let lines = [with(&|v| v["severity"] = json!("very")), with(&|v| v["updatedAt"] = json!("not a time")), with(&|v| v["id"] = json!("")), good.to_string()];
    let run = normalize_as("guardduty", &[(lines.join("\n").as_bytes(), "bad")]);
    let reasons: Vec<&str> = run.dead.iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(run.rows(), 1, "{reasons:?}");
    assert!(reasons[0].contains("severity"), "{reasons:?}");
    assert!(reasons[1].contains("updatedAt `not a time`"), "{reasons:?}");
    assert!(reasons[2].contains("no id"), "{reasons:?}");
}
