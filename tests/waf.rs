//! AWS WAF logs to OCSF HTTP Activity: every bundled sample normalizes and validates, the
//! ocsf-examples WAF pairs agree with ours field by field, bad records are dead-lettered with a
//! reason, and `auto` tells WAF from CloudTrail.

mod common;

use common::*;
use serde_json::{json, Value};

fn panther_events() -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("tests/data/waf/panther/waf_rule_tests.jsonl")).unwrap();
    text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["event"].to_string()).collect()
}

#[test]
fn every_waf_sample_normalizes_and_validates() {
    let docs = normalize_file_as("waf", &repo().join("samples/waf/awsdocs/waf_log_examples.jsonl"));
    assert!(docs.dead.is_empty(), "{:?}", docs.dead);
    assert_eq!(docs.events, 7);
    assert_valid(&docs);

    let panther = panther_events();
    assert_eq!(panther.len(), 50);
    let run = normalize_as("waf", &[(panther.join("\n").as_bytes(), "panther")]);
    // Panther's hand-made fragments whose httpRequest holds only the client address are not
    // HTTP Activity by OCSF's rules: dead-lettered with the reason, never dropped.
    for d in &run.dead {
        assert!(d.reason.starts_with("incomplete WAF log record: httpRequest has no uri"), "{}", d.reason);
    }
    assert!(run.dead.len() < 20, "{}", run.dead.len());
    assert_eq!(run.rows() + run.dead.len(), 50);
    assert_valid(&run);

    let events = docs.events_json();
    assert!(events.iter().all(|(class, _)| class == "http_activity"));
    // The SQL-injection block of the AWS docs: decision, rule and what matched.
    let (_, sqli) = events.iter().find(|(_, e)| e["firewall_rule"]["uid"] == "STMTest_SQLi_XSS").expect("the SQLi example");
    assert_eq!(sqli["action_id"], 2);
    assert_eq!(sqli["disposition"], "Blocked");
    assert_eq!(sqli["firewall_rule"]["condition"], "SQL_INJECTION");
    assert_eq!(sqli["firewall_rule"]["match_details"], json!(["10", "AND", "1"]));
    assert_eq!(sqli["cloud"]["region"], "ap-southeast-2");
    assert_eq!(sqli["cloud"]["account"]["uid"], "111122223333");
    assert_eq!(sqli["policy"]["name"], "STMTest");
    assert_eq!(sqli["src_endpoint"]["ip"], "1.1.1.1");
    assert_eq!(sqli["http_request"]["user_agent"], "curl/7.61.1");
    assert_eq!(sqli["metadata"]["profiles"], json!(["cloud", "security_control", "datetime"]));
    // Every record keeps what OCSF has no field for.
    let first = &events[0].1;
    assert!(first["unmapped"]["ruleGroupList"].is_array(), "{}", first["unmapped"]);
    assert!(first["unmapped"]["rateBasedRuleList"].is_array());
    // Panther's exports write the time as RFC 3339 text.
    let p = run.events_json();
    assert!(p.iter().all(|(_, e)| e["time"].as_i64().unwrap() > 1_500_000_000_000));
    // A rule in a managed rule group: the group is the rule's category, the inner rule its name.
    let grouped = panther.iter().zip(&p).find(|(raw, _)| raw.contains("\"terminatingRule\":{"));
    if let Some((raw, (_, e))) = grouped {
        let raw: Value = serde_json::from_str(raw).unwrap();
        let g = raw["ruleGroupList"].as_array().unwrap().iter().find(|g| g["terminatingRule"].is_object()).unwrap();
        assert_eq!(e["firewall_rule"]["category"], g["ruleGroupId"]);
        assert_eq!(e["firewall_rule"]["name"], g["terminatingRule"]["ruleId"]);
    }
}

/// Differences from the ocsf-examples WAF references that are choices, not mistakes; each is
/// explained in docs/mappings/waf.md.
const KNOWN_DIFFERENCES: &[&str] = &[
    "metadata.version",              // we emit OCSF 1.8.0
    "metadata.product.name",         // "AWS WAF" in 1.5.0, "Amazon WAF" in its MAPPING.md; ours "AWS WAF"
    "metadata.product.feature.name", // ours: "Web ACL"
    "time_dt",                       // the references write a local rendering; `time` is compared exactly
    "http_request.http_headers",     // ours keeps every header as sent; the references drop the ones they map
    "firewall_rule.name",            // the references take the first rate-based rule's name even when another rule terminated
    "firewall_rule.rate_limit",      // likewise
    "tls.version",                   // the 1.1.0 reference derives 1.3 from nothing (no JA4 there)
    "tls.ja3_hash",                  // ... so ours keeps the lone JA3 unmapped (tls.version is required)
    "http_status",                   // deprecated since OCSF 1.1.0: ours is http_response.code
    "action",                        // the references deny an ALLOW (below)
    "action_id",
    "disposition",
    "disposition_id",
    "observables", // compared as a set by the harness
    "unmapped",    // compared key by key by the harness
];

#[test]
fn agrees_with_the_ocsf_examples_waf_pairs() {
    let base = repo().join("tests/data/reference/ocsf-examples/markdown");
    let pairs: Vec<_> = ["v1.1.0", "v1.5.0"]
        .iter()
        .map(|v| {
            let d = base.join(v).join("waf/4002_http_activity");
            (d.join("raw.json"), d.join("ocsf.json"))
        })
        .collect();
    // The 1.1.0 reference names its hostname observable by the raw path.
    let raw_path_name = |o: &Value| o["name"] == "httpRequest.headers[].value";
    let (compared, mismatches) = reference::compare("waf", &pairs, KNOWN_DIFFERENCES, &[], raw_path_name);
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    assert!(compared >= 40, "compared {compared} fields");

    // The disposition the raw events say: the 1.5.0 pair's request was let through
    // (`"action": "ALLOW"`, terminated by the default action), which the reference renders as
    // Denied/Blocked. Ours follows the raw event.
    let raw = std::fs::read(base.join("v1.5.0/waf/4002_http_activity/raw.json")).unwrap();
    let ours = normalize_as("waf", &[(&raw, "ref")]).events_json().remove(0).1;
    assert_eq!((ours["action_id"].as_i64(), ours["disposition_id"].as_i64()), (Some(1), Some(1)));
    assert_eq!(ours["http_request"]["url"]["hostname"], "example.com");
    assert_eq!(ours["http_request"]["url"]["url_string"], "https://example.com/pen-test/pets");
    assert_eq!(ours["unmapped"]["httpRequest"]["host"], "somewhere.someone.dev");
    assert_eq!(ours["tls"]["version"], "1.3");
    assert_eq!(ours["tls"]["ja3_hash"]["value"], "71912442e2cef8ae6f8ea3aba3fc0da9");
    assert_eq!(ours["ja4_fingerprint_list"][0]["value"], "t13d1812h1_91b4e2f43a96_a791466c72b5");
    assert_eq!(ours["http_request"]["x_forwarded_for"], json!(["1.2.3.4"]));
}

#[test]
fn bad_waf_records_are_dead_lettered_with_a_reason() {
    let good = std::fs::read_to_string(repo().join("samples/waf/awsdocs/waf_log_examples.jsonl")).unwrap();
    let good: Vec<&str> = good.lines().collect();
    let lines = [
        good[1].to_string(),
        r#"{"timestamp":1576280412771,"webaclId":"arn:aws:wafv2:us-east-1:1:regional/webacl/a/b","action":"BLOCK"}"#.to_string(),
        r#"{"webaclId":"arn:aws:wafv2:us-east-1:1:regional/webacl/a/b","httpRequest":{"clientIp":"1.2.3.4"}}"#.to_string(),
        r#"{"timestamp":"yesterday","webaclId":"x","httpRequest":{}}"#.to_string(),
        r#"{"timestamp":1576280412771,"httpRequest":{"clientIp":"1.2.3.4"}}"#.to_string(),
        r#"{"timestamp":1576280412771,"webaclId":"x","httpRequest":{"clientIp":"1.2"#.to_string(),
        good[2].to_string(),
    ];
    let run = normalize_as("waf", &[(lines.join("\n").as_bytes(), "bad.jsonl")]);
    let reasons: Vec<&str> = run.dead.iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(run.rows(), 2, "{reasons:?}");
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert!(reasons[0].contains("no httpRequest"), "{reasons:?}");
    assert!(reasons[1].contains("no timestamp"), "{reasons:?}");
    assert!(reasons[2].contains("no timestamp"), "{reasons:?}");
    assert!(reasons[3].contains("no webaclId"), "{reasons:?}");
    assert!(reasons[4].starts_with("malformed JSON") || reasons[4].starts_with("truncated JSON"), "{reasons:?}");
    // Each says where it came from.
    assert_eq!(run.dead.iter().map(|d| d.origin.line).collect::<Vec<_>>(), vec![Some(2), Some(3), Some(4), Some(5), Some(6)]);
    assert_valid(&run);
}

#[test]
fn auto_tells_waf_from_cloudtrail() {
    let waf = std::fs::read_to_string(repo().join("samples/waf/awsdocs/waf_log_examples.jsonl")).unwrap();
    let ct = std::fs::read_to_string(repo().join("samples/cloudtrail/stratus/aws.defense-evasion.cloudtrail-stop.jsonl")).unwrap();
    let mut mixed = Vec::new();
    let (mut w, mut c) = (waf.lines(), ct.lines());
    loop {
        match (w.next(), c.next()) {
            (None, None) => break,
            (a, b) => mixed.extend(a.into_iter().chain(b)),
        }
    }
    mixed.push(r#"{"hello":"world"}"#);
    let run = normalize_as("auto", &[(mixed.join("\n").as_bytes(), "mixed")]);
    let by_class = |name: &str| run.batches.iter().filter(|b| b.class.name == name).map(|b| b.batch.num_rows()).sum::<usize>();
    assert_eq!(by_class("http_activity"), 7);
    assert_eq!(by_class("api_activity") + by_class("authentication") + by_class("account_change"), ct.lines().count());
    assert_eq!(run.dead.len(), 1);
    assert!(run.dead[0].reason.starts_with("unrecognized source"), "{}", run.dead[0].reason);
    assert_valid(&run);
}

#[test]
fn sampled_requests_from_the_waf_api_normalize_and_validate() {
    let run = normalize_file_as("auto", &repo().join("samples/waf/aws-cli/get-sampled-requests.output.json"));
    assert!(run.dead.is_empty(), "{:?}", run.dead);
    assert_eq!(run.rows(), 4);
    assert_valid(&run);
    let e = run.events_json().remove(0).1;
    assert_eq!(e["class_uid"], 4002);
    assert_eq!(e["disposition"], "Blocked");
    assert_eq!(e["firewall_rule"]["category"], "AWS#AWSManagedRulesSQLiRuleSet");
    assert_eq!(e["firewall_rule"]["name"], "SQLi_BODY");
    assert_eq!(e["src_endpoint"]["ip"], "198.51.100.8", "the sample's 198.51.100.08, canonical");
    assert_eq!(e["http_request"]["http_method"], "POST");
    assert_eq!(e["time"], 1_581_541_799_564i64);
}
