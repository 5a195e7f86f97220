//! AWS Shield: Advanced attack records to Detection Findings (both API shapes), and Shield API
//! calls in CloudTrail through the CloudTrail normalizer.

mod common;

use common::*;
use serde_json::{json, Value};

#[test]
fn attack_records_normalize_and_validate() {
    let run = normalize_file_as("shield", &repo().join("samples/shield/aws-cli/describe-attack.output.json"));
    assert!(run.dead.is_empty(), "{:?}", run.dead);
    assert_valid(&run);
    let e = run.events_json().remove(0).1;
    assert_eq!(e["class_uid"], 2004);
    assert_eq!(e["finding_info"]["uid"], "a1b2c3d4-5678-90ab-cdef-EXAMPLE22222");
    assert_eq!(e["finding_info"]["types"], json!(["SYN_FLOOD"]));
    assert_eq!(e["finding_info"]["first_seen_time"], 1_576_024_927_457i64);
    assert_eq!(e["finding_info"]["last_seen_time"], 1_576_025_647_457i64);
    assert_eq!(e["finding_info"]["attacks"][0]["technique"]["uid"], "T1498");
    assert_eq!(e["finding_info"]["attacks"][0]["tactic"]["uid"], "TA0040");
    assert_eq!(e["resources"][0]["uid"], "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/testElb");
    assert_eq!(e["cloud"]["region"], "us-west-2");
    assert_eq!(e["status"], "Resolved");
    // The six attacked IPs and the five top source IPs are evidence; the source IPs observables.
    let ev = e["evidences"].as_array().unwrap();
    assert_eq!(ev.iter().filter(|x| x["dst_endpoint"]["ip"].is_string()).count(), 6);
    assert_eq!(ev.iter().filter(|x| x["src_endpoint"]["ip"].is_string()).count(), 5);
    assert!(e["observables"].as_array().unwrap().iter().any(|o| o["value"] == "198.51.100.5"));
    // Counters, countries and ASNs are kept.
    assert!(e["unmapped"]["AttackProperties"].is_array());
    assert!(e["unmapped"]["SubResources"].is_array());

    let run = normalize_file_as("shield", &repo().join("samples/shield/aws-cli/list-attacks.output.json"));
    assert!(run.dead.is_empty(), "{:?}", run.dead);
    assert_valid(&run);
    let e = run.events_json().remove(0).1;
    assert_eq!(e["resources"][0]["type"], "AWS::CloudFront::Distribution");
    assert_eq!(e["cloud"]["account"]["uid"], "123456789012");
    assert!(e["cloud"]["region"].is_null(), "CloudFront is global");
}

#[test]
fn an_ongoing_attack_is_new_and_bad_records_are_dead_lettered() {
    let lines = [
        json!({"AttackId": "a-1", "ResourceArn": "arn:aws:ec2:us-east-1:111122223333:eip-allocation/eipalloc-1", "StartTime": "2026-11-01T10:00:00Z",
               "AttackVectors": [{"VectorType": "UDP_REFLECTION"}]})
        .to_string(),
        json!({"AttackId": "a-2", "ResourceArn": "arn:aws:cloudfront::1:distribution/E", "StartTime": "soon"}).to_string(),
        json!({"AttackId": "a-3", "StartTime": 1.0}).to_string(),
        json!({"AttackId": "a-4", "ResourceArn": "arn:aws:cloudfront::1:distribution/E", "StartTime": 1.0, "EndTime": "later"}).to_string(),
    ];
    let run = normalize_as("shield", &[(lines.join("\n").as_bytes(), "attacks.jsonl")]);
    let reasons: Vec<&str> = run.dead.iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(run.rows(), 1, "{reasons:?}");
    assert!(reasons[0].contains("no StartTime"), "{reasons:?}");
    assert!(reasons[1].contains("no ResourceArn"), "{reasons:?}");
    assert!(reasons[2].contains("EndTime"), "{reasons:?}");
    assert_valid(&run);
    let e = run.events_json().remove(0).1;
    assert_eq!(e["status"], "New");
    assert_eq!(e["finding_info"]["attacks"][0]["sub_technique"]["uid"], "T1498.002");
    assert_eq!(e["resources"][0]["type"], "AWS::EC2::EIP");
}

#[test]
fn shield_api_calls_in_cloudtrail_are_api_activity() {
    let text = std::fs::read_to_string(repo().join("samples/cloudtrail/awsdocs/cloudtrail_doc_examples.jsonl")).unwrap();
    let shield: Vec<&str> = text.lines().filter(|l| l.contains("\"shield.amazonaws.com\"")).collect();
    assert_eq!(shield.len(), 2);
    let run = normalize_as("auto", &[(shield.join("\n").as_bytes(), "shield-cloudtrail")]);
    assert!(run.dead.is_empty());
    assert_valid(&run);
    let ops: Vec<(String, i64)> = run
        .events_json()
        .iter()
        .map(|(c, e)| {
            assert_eq!(c, "api_activity");
            assert_eq!(e["api"]["service"]["name"], "shield.amazonaws.com");
            (e["api"]["operation"].as_str().unwrap().to_string(), e["activity_id"].as_i64().unwrap())
        })
        .collect();
    assert!(ops.contains(&("DeleteProtection".to_string(), 4)), "{ops:?}");
    assert!(ops.contains(&("ListProtections".to_string(), 2)), "{ops:?}");
    // And a CreateProtection call (built from the DeleteProtection record) is a Create.
    let mut create: Value = serde_json::from_str(shield.iter().find(|l| l.contains("DeleteProtection")).unwrap()).unwrap();
    create["eventName"] = json!("CreateProtection");
    let run = normalize_as("auto", &[(create.to_string().as_bytes(), "create")]);
    assert_eq!(run.events_json()[0].1["activity_id"], 1);
}

#[test]
fn auto_recognizes_attack_records_in_both_api_shapes() {
    let detail = std::fs::read_to_string(repo().join("samples/shield/aws-cli/describe-attack.output.json")).unwrap();
    let list = std::fs::read_to_string(repo().join("samples/shield/aws-cli/list-attacks.output.json")).unwrap();
    let one_line = |t: &str| serde_json::from_str::<Value>(t).unwrap().to_string();
    let waf = std::fs::read_to_string(repo().join("samples/waf/awsdocs/waf_log_examples.jsonl")).unwrap();
    let input = [one_line(&detail), waf.lines().next().unwrap().to_string(), one_line(&list)].join("\n");
    let run = normalize_as("auto", &[(input.as_bytes(), "mixed")]);
    assert!(run.dead.is_empty(), "{:?}", run.dead);
    let classes: Vec<String> = run.events_json().into_iter().map(|(c, _)| c).collect();
    assert_eq!(classes.iter().filter(|c| *c == "detection_finding").count(), 2);
    assert_eq!(classes.iter().filter(|c| *c == "http_activity").count(), 1);
}
