//! CloudTrail Insights records are findings about the rate of a call, never the call: mapped to
//! Detection Finding (docs/mappings/cloudtrail.md), and no rule about the call fires on them.

mod common;

use common::*;
use serde_json::Value;

/// The two AWS-documented Insights records (Start and End of one insight).
fn documented() -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("samples/cloudtrail/awsdocs/cloudtrail_doc_examples.jsonl")).unwrap();
    text.lines().filter(|l| l.contains("\"AwsCloudTrailInsight\"")).map(str::to_string).collect()
}

#[test]
fn insights_are_detection_findings_that_open_and_close() {
    let records = documented();
    assert_eq!(records.len(), 2);
    let run = normalize_all(&[(records.join("\n").as_bytes(), "insights")]);
    assert!(run.dead.is_empty());
    assert_valid(&run);
    let events = run.events_json();
    assert_eq!(events.len(), 2);
    for (class, e) in &events {
        assert_eq!(class, "detection_finding");
        assert!(e.get("api").is_none(), "an Insights record is not the call: {e:#}");
        assert_eq!(e["finding_info"]["uid"], "EXAMPLE2-1729-42f1-b735-5d8c0EXAMPLE");
        assert_eq!(e["finding_info"]["analytic"]["uid"], "ssm.amazonaws.com:UpdateInstanceInformation");
        assert_eq!(e["finding_info"]["types"][0], "ApiCallRateInsight");
        assert!(e["finding_info"]["title"].as_str().unwrap().contains("Unusual rate of UpdateInstanceInformation calls"));
        assert!(e["finding_info"]["desc"].as_str().unwrap().contains("664.0 against a baseline of 85.4"));
        assert_eq!(e["cloud"]["account"]["uid"], "123456789012");
    }
    let activities: Vec<i64> = events.iter().map(|(_, e)| e["activity_id"].as_i64().unwrap()).collect();
    assert_eq!(activities, [1, 3], "Start creates the finding, End closes it");
    assert_eq!(events[1].1["status_id"], 4);
}

#[test]
fn no_rule_about_the_call_fires_on_an_insight_about_it() {
    // The documented record, about DeleteTrail: SigmaHQ's "CloudTrail logging disabled" and our
    // audit-tampering rule match DeleteTrail calls; a rate of them is not one.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("insight.jsonl");
    let text: String = documented().iter().map(|l| l.replace("ssm.amazonaws.com", "cloudtrail.amazonaws.com").replace("UpdateInstanceInformation", "DeleteTrail") + "\n").collect();
    std::fs::write(&input, &text).unwrap();
    let out = dir.path().join("findings.jsonl");
    let o = ocelot().arg("detect").arg(&input).arg("--out").arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let findings: Vec<Value> = std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(findings.is_empty(), "rules fired on an Insights record: {:?}", findings.iter().map(|f| &f["finding_info"]["title"]).collect::<Vec<_>>());

    // The same call as a real event does fire them: the rules are there, the insight is not one.
    let call = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDA0","arn":"arn:aws:iam::123456789012:user/mallory","accountId":"123456789012","userName":"mallory"},"eventTime":"2019-11-14T00:51:30Z","eventSource":"cloudtrail.amazonaws.com","eventName":"DeleteTrail","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7","userAgent":"aws-cli/2.0","requestParameters":{"name":"org-trail"},"responseElements":null,"requestID":"r1","eventID":"e-delete-trail","eventType":"AwsApiCall","recipientAccountId":"123456789012"}"#;
    std::fs::write(&input, format!("{text}{call}\n")).unwrap();
    let o = ocelot().arg("detect").arg(&input).arg("--out").arg(&out).output().unwrap();
    assert!(o.status.success());
    let findings: Vec<Value> = std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!findings.is_empty(), "DeleteTrail itself raises a finding");
    for f in &findings {
        let related: Vec<&str> = f["finding_info"]["related_events"].as_array().unwrap().iter().filter_map(|r| r["uid"].as_str()).collect();
        assert_eq!(related, ["e-delete-trail"], "{}", f["finding_info"]["title"]);
    }
}
