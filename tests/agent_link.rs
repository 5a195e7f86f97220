//! Which tool call made which CloudTrail change, when two agents do the same operations at the
//! same time: each change is linked to its own call (by resources and region, not by time
//! alone) and its own approval, in `agent_mutations` and in every finding that cites it; a
//! change that calls of two sessions fit is `ambiguous`, not guessed.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::Value;

const DATA: &str = "tests/data/agent/concurrent";

/// (event uid) -> (agent, session, tool call, approval) as the engine and the view must say.
fn expected() -> BTreeMap<&'static str, (&'static str, &'static str, &'static str, &'static str)> {
    BTreeMap::from([
        ("evt-concurrent-1", ("cost-agent", "sess-b", "21", "rejected_but_executed")),
        ("evt-concurrent-2", ("ops-agent", "sess-a", "21", "human_approved")),
        ("evt-concurrent-3", ("cost-agent", "sess-b", "22", "no_decision")),
        ("evt-concurrent-4", ("ops-agent", "sess-a", "22", "auto_approved")),
    ])
}

#[test]
fn each_change_is_linked_to_its_own_call_in_agent_mutations() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let o = ocelot().args(["normalize", "--lake"]).arg(&lake).arg(repo().join(DATA)).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let sql = "SELECT event_uid, agent, session, tool_call, approval, link, confidence, candidates FROM agent_mutations ORDER BY event_uid";
    let o = ocelot().args(["sql", "--format", "json", "--lake"]).arg(&lake).arg(sql).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let rows: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .flat_map(|l| match serde_json::from_str::<Value>(l) {
            Ok(Value::Array(a)) => a,
            Ok(v) => vec![v],
            Err(e) => panic!("{e}: {l}"),
        })
        .collect();
    let by_uid: BTreeMap<&str, &Value> = rows.iter().map(|r| (r["event_uid"].as_str().unwrap(), r)).collect();
    let view_approval = |a: &str| match a {
        "rejected_but_executed" => "reject",
        "human_approved" | "auto_approved" => "accept",
        _ => "none seen",
    };
    for (uid, (agent, session, call, approval)) in expected() {
        let r = by_uid.get(uid).unwrap_or_else(|| panic!("{uid} not in agent_mutations: {text}"));
        assert_eq!((r["agent"].as_str(), r["session"].as_str(), r["tool_call"].as_str()), (Some(agent), Some(session), Some(call)), "{uid}: {r}");
        assert_eq!(r["approval"].as_str(), Some(view_approval(approval)), "{uid}: {r}");
        assert_eq!((r["link"].as_str(), r["confidence"].as_str()), (Some("linked"), Some("high")), "{uid}: {r}");
    }
    // CreateVpc names no resource: both sessions' calls fit, and the view says so.
    let vpc = by_uid["evt-concurrent-5"];
    assert_eq!(vpc["approval"], "ambiguous", "{vpc}");
    assert_eq!(vpc["link"], "ambiguous");
    assert_eq!(vpc["candidates"], 2);
    assert_eq!(vpc["agent"], "cost-agent or ops-agent");
    assert!(vpc["tool_call"].is_null());
}

#[test]
fn every_finding_names_the_agent_session_and_approval_of_each_change() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("findings.jsonl");
    let o = ocelot().arg("detect").arg(repo().join(DATA)).arg("--out").arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let findings: Vec<Value> = std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let want = expected();
    let mut seen = BTreeMap::new();
    for f in &findings {
        let rule = f["finding_info"]["analytic"]["uid"].as_str().unwrap();
        for c in f["unmapped"]["agent_changes"].as_array().into_iter().flatten() {
            let uid = c["event_uid"].as_str().unwrap();
            *seen.entry(uid.to_string()).or_insert(0) += 1;
            if let Some((agent, session, call, approval)) = want.get(uid) {
                let got = (c["agent"].as_str(), c["session"].as_str(), c["tool_call"].as_str(), c["approval"].as_str());
                assert_eq!(got, (Some(*agent), Some(*session), Some(*call), Some(*approval)), "{rule} on {uid}: {c}");
            }
        }
        // The message names the agent of a finding whose changes one agent made.
        let agents: std::collections::BTreeSet<&str> = f["unmapped"]["agent_changes"].as_array().into_iter().flatten().filter_map(|c| c["agent"].as_str()).collect();
        if agents.len() == 1 {
            let agent = agents.first().unwrap();
            assert!(f["message"].as_str().unwrap().contains(agent), "{rule}: {}", f["message"]);
            assert_eq!(f["actor"]["app_name"].as_str(), Some(*agent), "{rule}");
        }
    }
    for uid in want.keys() {
        assert!(seen.contains_key(*uid), "no finding cites {uid}: {:?}", findings.iter().map(|f| &f["finding_info"]["title"]).collect::<Vec<_>>());
    }
}

#[test]
fn an_agent_known_only_from_its_telemetry_is_named_and_its_credentials_reuse_flagged() {
    // ops-agent is in no registry: its credentials are learned from the changes its calls made.
    // The same role session then calls from a browser, with no tool call behind it.
    let dir = tempfile::tempdir().unwrap();
    for f in ["mcp.jsonl", "decisions-otlp-logs.json", "cloudtrail.jsonl"] {
        std::fs::copy(repo().join(DATA).join(f), dir.path().join(f)).unwrap();
    }
    let line = std::fs::read_to_string(repo().join(DATA).join("cloudtrail.jsonl")).unwrap().lines().nth(1).unwrap().to_string();
    let mut reuse: Value = serde_json::from_str(&line).unwrap();
    reuse["eventTime"] = "2026-11-24T15:20:00Z".into();
    reuse["eventName"] = "AuthorizeSecurityGroupIngress".into();
    reuse["requestParameters"] =
        serde_json::json!({"groupId": "sg-0aaa0000000000001", "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}});
    reuse["userAgent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0".into();
    reuse["eventID"] = "evt-concurrent-reuse".into();
    std::fs::write(dir.path().join("zz-later.jsonl"), format!("{reuse}\n")).unwrap();
    let out = dir.path().join("findings.jsonl");
    let o = ocelot().arg("detect").arg(dir.path()).arg("--out").arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let findings: Vec<Value> = std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let cites = |f: &Value| f["finding_info"]["related_events"].as_array().unwrap().iter().any(|r| r["uid"] == "evt-concurrent-reuse");
    let foreign: Vec<&Value> = findings.iter().filter(|f| f["finding_info"]["analytic"]["uid"] == "ocelot.agent-foreign-client" && cites(f)).collect();
    assert_eq!(foreign.len(), 1, "{:?}", findings.iter().map(|f| (&f["finding_info"]["analytic"]["uid"], &f["message"])).collect::<Vec<_>>());
    assert!(foreign[0]["message"].as_str().unwrap().contains("agent ops-agent's credentials (known from its telemetry) used by user agent `Mozilla/5.0"), "{}", foreign[0]["message"]);
    // Any finding on that change names ops-agent, with no tool call behind it.
    for f in findings.iter().filter(|f| cites(f)) {
        let c = f["unmapped"]["agent_changes"].as_array().unwrap().iter().find(|c| c["event_uid"] == "evt-concurrent-reuse").unwrap();
        assert_eq!((c["agent"].as_str(), c["approval"].as_str()), (Some("ops-agent"), Some("no_tool_call")), "{c}");
    }
}
