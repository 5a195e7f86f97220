//! AI-agent telemetry to OCSF API Activity with the ai_operation profile: the synthetic agent
//! session (OTLP traces and logs, MCP messages, and the CloudTrail events the session caused),
//! the MCP specification's example messages, bad input, and the SQL join of tool calls to
//! CloudTrail that the README shows.

mod common;

use common::*;
use serde_json::{json, Value};

fn session() -> std::path::PathBuf {
    repo().join("samples/agent/session")
}

fn agent_events(run: &Run) -> Vec<Value> {
    run.events_json().into_iter().map(|(_, e)| e).filter(|e| e["metadata"]["product"]["name"] != "CloudTrail").collect()
}

#[test]
fn the_synthetic_session_normalizes_and_validates() {
    let mut all = Vec::new();
    for f in ["otlp-traces.json", "otlp-logs.json", "mcp.jsonl"] {
        let run = normalize_file_as("agent", &session().join(f));
        assert!(run.dead.is_empty(), "{f}: {:?}", run.dead);
        assert_valid(&run);
        all.extend(agent_events(&run));
    }
    assert_eq!(all.len(), 6 + 7 + 6);
    for e in &all {
        assert_eq!(e["class_uid"], 6003);
        assert!(e["metadata"]["profiles"].as_array().unwrap().contains(&json!("ai_operation")), "{e}");
        assert_eq!(e["actor"]["app_name"], "infra-agent");
    }
    // A Bash tool call that ran `aws ec2 terminate-instances`: the AWS call, as CloudTrail names it.
    let term = all.iter().find(|e| e["api"]["request"]["uid"] == "toolu_03" && e["trace"]["span"]["uid"].is_string()).unwrap();
    assert_eq!(term["api"]["service"]["name"], "ec2.amazonaws.com");
    assert_eq!(term["api"]["operation"], "TerminateInstances");
    assert_eq!(term["api"]["group"]["name"], "Bash");
    assert_eq!(term["activity_id"], 4, "a termination is a Delete");
    assert_eq!(term["resources"][0]["name"], "i-0abc123def4567890");
    assert_eq!(term["resources"][0]["type"], "AWS::EC2::Instance");
    assert_eq!(term["actor"]["user"]["uid"], "alice@example.com");
    assert_eq!(term["actor"]["session"]["uid"], "conv-7f3a9c2e");
    assert!(term["api"]["request"]["data"].as_str().unwrap().contains("terminate-instances"));
    assert_eq!(term["trace"]["uid"], "5b8efff798038103d269b633813fc60c");
    // The human decisions: who decided, and the verdict.
    let decision = |id: &str| all.iter().find(|e| e["api"]["request"]["uid"] == id && e["activity_name"] == "Tool Decision").unwrap().clone();
    assert_eq!(decision("toolu_01")["actor"]["authorizations"][0], json!({"decision": "accept", "policy": {"name": "user_temporary"}}));
    assert!(decision("toolu_01")["metadata"]["labels"].as_array().unwrap().contains(&json!("approval:human")));
    assert!(decision("toolu_02")["metadata"]["labels"].as_array().unwrap().contains(&json!("approval:config")));
    assert!(decision("toolu_03")["metadata"]["labels"].as_array().unwrap().contains(&json!("approval:rejected")));
    // The model call: model, provider, tokens.
    let chat = all.iter().find(|e| e["api"]["operation"] == "chat").unwrap();
    assert_eq!(chat["ai_model"], json!({"ai_provider": "anthropic", "name": "claude-sonnet-4-5-20250929"}));
    assert_eq!(chat["message_context"]["total_tokens"], 18231 + 742);
    // The MCP call to an AWS server: `aws s3 rb` is a DeleteBucket.
    let rb = all.iter().find(|e| e["api"]["group"]["name"] == "call_aws" && e["api"]["request"]["uid"] == "11").unwrap();
    assert_eq!((rb["api"]["operation"].as_str(), rb["resources"][0]["name"].as_str()), (Some("DeleteBucket"), Some("acme-tmp-artifacts")));
    assert_eq!(rb["time"], 1_795_183_490_000i64);
}

#[test]
fn the_mcp_specification_examples_normalize() {
    let run = normalize_file_as("agent", &repo().join("tests/data/agent/mcp/examples-2026-07-28.jsonl"));
    assert!(run.dead.is_empty(), "{:?}", run.dead);
    assert_eq!(run.rows(), 32);
    assert_valid(&run);
    let events = run.events_json();
    let call = events.iter().find(|(_, e)| e["api"]["group"]["name"] == "get_weather").expect("the tools/call example");
    assert_eq!(call.1["api"]["request"]["uid"], "call-tool-example");
    assert_eq!(serde_json::from_str::<Value>(call.1["api"]["request"]["data"].as_str().unwrap()).unwrap(), json!({"location": "New York"}));
}

#[test]
fn bad_agent_records_are_dead_lettered_with_a_reason() {
    let traces = std::fs::read_to_string(session().join("otlp-traces.json")).unwrap();
    let one_line: String = serde_json::from_str::<Value>(&traces).unwrap().to_string();
    let mut no_trace: Value = serde_json::from_str(&traces).unwrap();
    no_trace["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["traceId"] = json!("");
    let lines = [
        r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#.to_string(),                                         // good
        no_trace.to_string(),                                                                              // one span without a trace id
        one_line[..one_line.len() / 2].to_string(),                                                        // truncated OTLP
        r#"{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"x"}}"#.to_string(),             // wrong JSON-RPC version
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{}}}"#.to_string(),         // tools/call without a tool
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"#.to_string(),                  // malformed
        r#"{"time":"noon","session":"s","message":{"jsonrpc":"2.0","id":1,"method":"ping"}}"#.to_string(), // bad envelope time
    ];
    let run = normalize_as("agent", &[(lines.join("\n").as_bytes(), "bad.jsonl")]);
    let reasons: Vec<&str> = run.dead.iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(reasons.len(), 6, "{reasons:?}");
    assert_eq!(run.dead.iter().map(|d| d.origin.line).collect::<Vec<_>>(), [2, 3, 4, 5, 6, 7].map(Some));
    assert!(reasons[0].contains("no traceId"), "{reasons:?}");
    assert_eq!(run.dead[0].origin.index, Some(1), "the span's place in the request");
    assert!(reasons[1].starts_with("malformed JSON") || reasons[1].starts_with("truncated JSON"), "{reasons:?}");
    assert!(reasons[2].contains("jsonrpc must be"), "{reasons:?}");
    assert!(reasons[3].contains("no params.name"), "{reasons:?}");
    assert!(reasons[4].starts_with("malformed JSON") || reasons[4].starts_with("truncated JSON"), "{reasons:?}");
    assert!(reasons[5].contains("time `noon`"), "{reasons:?}");
    // The ping, and the other spans of the request with the bad one, survive.
    assert_eq!(run.rows(), 1 + 5);
    assert_valid(&run);
}

fn panther_events(file: &str) -> String {
    let text = std::fs::read_to_string(repo().join("tests/data/agent/panther").join(file)).unwrap();
    text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["event"].to_string()).collect::<Vec<_>>().join("\n")
}

#[test]
fn bedrock_invocations_and_anthropic_and_openai_audit_logs_normalize_and_validate() {
    for (file, n) in [("bedrock_model_invocation_rule_tests.jsonl", 8), ("anthropic_activity_rule_tests.jsonl", 38), ("openai_audit_rule_tests.jsonl", 33)] {
        let input = panther_events(file);
        let run = normalize_as("auto", &[(input.as_bytes(), file)]);
        assert!(run.dead.is_empty(), "{file}: {:?}", run.dead.iter().map(|d| &d.reason).collect::<Vec<_>>());
        assert_eq!(run.rows(), n, "{file}");
        assert_valid(&run);
    }
    let bedrock = normalize_as("agent", &[(panther_events("bedrock_model_invocation_rule_tests.jsonl").as_bytes(), "b")]).events_json();
    let (_, first) = &bedrock[0];
    assert_eq!(first["ai_model"], json!({"ai_provider": "anthropic", "name": "anthropic.claude-3-haiku-20240307-v1:0"}));
    assert_eq!(first["api"]["service"]["name"], "bedrock.amazonaws.com");
    assert_eq!(first["api"]["operation"], "Converse");
    assert_eq!(first["cloud"]["region"], "us-west-2");
    assert_eq!(first["actor"]["user"]["uid"], "arn:aws:sts::111111111111:assumed-role/role_details/suspicious.user");
    let anthropic = normalize_as("agent", &[(panther_events("anthropic_activity_rule_tests.jsonl").as_bytes(), "a")]).events_json();
    let (_, mcp) = anthropic.iter().find(|(_, e)| e["api"]["operation"] == "mcp_server_created").expect("an MCP server creation");
    assert_eq!(mcp["activity_id"], 1);
    assert_eq!(mcp["resources"][0]["type"], "anthropic.mcp_server");
    let (_, failed) = anthropic.iter().find(|(_, e)| e["api"]["operation"] == "sso_login_failed").expect("a failed SSO login");
    assert_eq!(failed["status"], "Failure");
    let openai = normalize_as("agent", &[(panther_events("openai_audit_rule_tests.jsonl").as_bytes(), "o")]).events_json();
    let (_, key) = openai.iter().find(|(_, e)| e["api"]["operation"] == "api_key.deleted").expect("an API key deletion");
    assert_eq!(key["activity_id"], 4);
    assert_eq!(key["resources"][0]["type"], "openai.api_key");
}
