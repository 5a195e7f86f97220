//! The agent registry on CloudTrail: shipped agents recognized, users' `[[agents]]` first,
//! no false positives on the Stratus and AWS-docs samples, bad rules refused with the key.

mod common;

use common::*;
use serde_json::Value;

fn app_names(run: &Run) -> Vec<Option<String>> {
    run.events_json().iter().map(|(_, e)| e["actor"]["app_name"].as_str().map(str::to_string)).collect()
}

#[test]
fn the_session_cloudtrail_is_recognized_as_claude_code_and_nothing_else_is() {
    let run = normalize_file(&repo().join("samples/agent/session/cloudtrail.jsonl"));
    assert_valid(&run);
    assert_eq!(app_names(&run), vec![Some("claude-code".to_string()); 5]);
    let labels: Vec<Value> = run.events_json().iter().map(|(_, e)| e["metadata"]["labels"].clone()).collect();
    assert!(labels.iter().all(|l| l == &serde_json::json!(["agent:claude-code"])), "{labels:?}");

    // The real samples were made by people and red-team tools: no agent among them.
    let mut samples = 0;
    for sub in ["stratus", "awsdocs"] {
        for f in files_under(&repo().join("samples/cloudtrail").join(sub)) {
            let run = normalize_file(&f);
            samples += run.rows();
            assert!(app_names(&run).iter().all(Option::is_none), "{}: {:?}", f.display(), app_names(&run));
        }
    }
    assert!(samples > 250);
}

#[test]
fn user_agents_come_first_and_sql_finds_every_agent_action() {
    let dir = tempfile::tempdir().unwrap();
    let agents = dir.path().join("agents.toml");
    std::fs::write(&agents, "[[agents]]\nname = \"deploy-bot\"\nuid = \"bot-7\"\nsession_name = ['^claude-code-alice$']\n").unwrap();
    let lake = dir.path().join("lake");
    let st = ocelot()
        .arg("normalize")
        .arg(repo().join("samples/agent/session/cloudtrail.jsonl"))
        .arg(repo().join("samples/cloudtrail/stratus"))
        .args(["--agents"])
        .arg(&agents)
        .arg("--lake")
        .arg(&lake)
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let sql = "SELECT agent, uid, count(*) AS n FROM (SELECT actor.app_name AS agent, actor.app_uid AS uid FROM api_activity UNION ALL SELECT actor.app_name, actor.app_uid FROM account_change) WHERE agent IS NOT NULL GROUP BY 1, 2";
    let out = ocelot().args(["sql", sql, "--format", "csv", "--lake"]).arg(&lake).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "agent,uid,n\ndeploy-bot,bot-7,5");

    // A bad rule stops the command, naming the key.
    std::fs::write(&agents, "[[agents]]\nname = \"x\"\nuser_agent = ['(']\n").unwrap();
    let out = ocelot().arg("normalize").arg(repo().join("samples/agent/session/cloudtrail.jsonl")).arg("--agents").arg(&agents).args(["--format", "jsonl"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("agents[].user_agent: bad regex `(` of agent `x`"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn session_tags_on_assume_role_name_the_agent() {
    let assume = serde_json::json!({
        "eventVersion": "1.08", "eventTime": "2026-11-20T14:02:00Z", "eventSource": "sts.amazonaws.com", "eventName": "AssumeRole",
        "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.42", "userAgent": "aws-sdk-go-v2/1.30.0",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/ci", "accountId": "111122223333", "userName": "ci"},
        "requestParameters": {"roleArn": "arn:aws:iam::111122223333:role/AgentDeployRole", "roleSessionName": "s-42", "tags": [{"key": "Agent", "value": "Deploy-Bot"}]},
        "eventID": "evt-assume-1", "requestID": "req-assume-1", "recipientAccountId": "111122223333"
    });
    let dir = tempfile::tempdir().unwrap();
    let (input, agents) = (dir.path().join("assume.json"), dir.path().join("agents.toml"));
    std::fs::write(&input, assume.to_string()).unwrap();
    std::fs::write(&agents, "builtin_agents = false\n[[agents]]\nname = \"deploy-bot\"\nprincipal_tags = { agent = 'deploy-.*' }\n").unwrap();
    let out = ocelot().arg("normalize").arg(&input).arg("--agents").arg(&agents).args(["--format", "jsonl"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["actor"]["app_name"], "deploy-bot");
}
