//! The Security Hub forwarder against moto's Security Hub in server mode (PyPI `moto[server]`,
//! started here on a loopback port) with moto's IAM authentication switched on, so a request
//! signed with a wrong key fails: real findings from the bundled agent session are imported,
//! read back with boto3's GetFindings with the fields we mapped, imported again without a
//! duplicate, and refused (dead-lettered, counted) when the signature is wrong.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;

use common::moto::start_moto;
use ocelot_lake::DeadLetterStore;
use ocelot_pipeline::forward::{DeadLetters, Forwarders};
use ocelot_pipeline::runtime::config::Config;
use serde_json::Value;

fn helper(python: &Path, args: &[&str]) -> Value {
    let out = Command::new(python).arg(common::repo().join("tests/security_hub.py")).args(args).output().unwrap();
    assert!(out.status.success(), "security_hub.py {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

const MIN: &str = "[kafka]\nbrokers = \"127.0.0.1:9\"\n[[inputs]]\ntopic = \"ct\"\n[lake]\npath = \"/tmp/unused\"\n";

fn forward(url: &str, id: &str, secret: &str, findings: &[Value], lake: &Path) -> usize {
    let cfg = format!("{MIN}[[forward]]\ntype = \"security_hub\"\nregion = \"us-east-1\"\naccount_id = \"123456789012\"\nendpoint_url = \"{url}\"\naccess_key_id = \"{id}\"\nsecret_access_key = \"{secret}\"\n[forward.delivery]\nmax_attempts = 2\nlinger_ms = 20\n");
    let cfg = Config::from_toml(&cfg).unwrap();
    let f = Forwarders::start(&cfg.forward, DeadLetters::new(DeadLetterStore::new(lake))).unwrap();
    f.submit(findings.iter().cloned(), &AtomicBool::new(false));
    f.close(&AtomicBool::new(false))
}

#[test]
fn findings_round_trip_through_security_hub_with_signatures_checked() {
    let python = common::python_with("moto", &["moto[server]>=5,<6", "boto3"]);
    let (_moto, url) = start_moto(&python);
    let keys = helper(&python, &["setup", &url]);
    let (id, secret) = (keys["id"].as_str().unwrap(), keys["secret"].as_str().unwrap());

    // Real findings: the detection engine over the bundled agent session.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("findings.jsonl");
    let st = common::ocelot().args(["detect", "samples/agent/session", "--agents", "samples/agents.toml", "--out"]).arg(&out).current_dir(common::repo()).status().unwrap();
    assert!(st.success());
    // The latest version of each finding (the file has every update).
    let mut latest = BTreeMap::new();
    for line in std::fs::read_to_string(&out).unwrap().lines() {
        let f: Value = serde_json::from_str(line).unwrap();
        latest.insert(f["finding_info"]["uid"].as_str().unwrap().to_string(), f);
    }
    let findings: Vec<Value> = latest.values().cloned().collect();
    assert!(findings.len() >= 5, "{} findings", findings.len());

    let lake = dir.path().join("lake");
    assert_eq!(forward(&url, id, secret, &findings, &lake), 0, "nothing dead-lettered");
    let got = helper(&python, &["get", &url, id, secret]);
    let got = got.as_array().unwrap();
    assert_eq!(got.len(), findings.len());
    for f in &findings {
        let uid = f["finding_info"]["uid"].as_str().unwrap();
        let a = got.iter().find(|a| a["Id"] == uid).unwrap_or_else(|| panic!("{uid} not in GetFindings"));
        assert_eq!(a["GeneratorId"], f["finding_info"]["analytic"]["uid"]);
        assert_eq!(a["AwsAccountId"], "123456789012");
        assert_eq!(a["ProductArn"], "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default");
        assert_eq!(a["Title"], f["finding_info"]["title"]);
        assert_eq!(a["Severity"]["Label"].as_str().unwrap(), f["severity"].as_str().unwrap().to_uppercase());
        assert!(!a["Types"].as_array().unwrap().is_empty());
        assert!(!a["Resources"].as_array().unwrap().is_empty());
        assert_eq!(a["ProductFields"]["ocelot/count"], f["count"].to_string());
        assert_eq!(a["UpdatedAt"].as_str().unwrap().len(), 24, "RFC 3339 with milliseconds: {}", a["UpdatedAt"]);
    }
    let agents: Vec<&str> = got.iter().filter_map(|a| a["ProductFields"]["ocelot/agent"].as_str()).collect();
    println!("{} findings imported into moto's Security Hub and read back; agents: {agents:?}", got.len());
    assert!(!agents.is_empty(), "the agent is carried into Security Hub");

    // A replay updates, it does not duplicate.
    assert_eq!(forward(&url, id, secret, &findings, &lake), 0);
    assert_eq!(helper(&python, &["get", &url, id, secret]).as_array().unwrap().len(), findings.len());

    // A wrong secret: moto checks the SigV4 signature and refuses; every finding is dead-lettered.
    let bad_lake = dir.path().join("bad");
    assert_eq!(forward(&url, id, "not-the-secret", &findings, &bad_lake), findings.len());
    let letters = common::files_under(&bad_lake.join("_dead_letter"));
    let text: String = letters.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
    assert_eq!(text.lines().count(), findings.len());
    assert!(text.contains("forward.security_hub") && text.contains("Signature"), "{}", text.lines().next().unwrap_or_default());
}
