//! Shared pieces of Ocelot's benchmarks: the input (generated CloudTrail, deterministic), the
//! measured operations, and the ratio report read from criterion's own estimates.

use std::sync::Arc;

use ocelot_normalize::decode::{DeadLetter, Decoder, Limits, Origin, RecordSink};
use ocelot_normalize::{self as normalize, Normalizer, OcsfBatch};
use simd_json::BorrowedValue;

pub mod kafka;
pub mod report;

/// Events per iteration.
pub const EVENTS: usize = 20_000;

/// `EVENTS` realistic CloudTrail records as JSON Lines (`ocelot gen`, seed 1).
pub fn cloudtrail_jsonl(events: usize) -> Vec<u8> {
    let mut out = Vec::new();
    ocelot_pipeline::generate::cloudtrail(events, 1, 1_793_500_000_000, &mut out).expect("writing to memory");
    out
}

/// The bundled real samples of a source, one record per line (Panther test events unwrapped).
pub fn source_samples(kind: &str) -> Vec<String> {
    let panther = |text: &str| -> Vec<String> {
        text.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).filter_map(|t| t.get("event").filter(|e| e.is_object()).map(|e| e.to_string())).collect()
    };
    match kind {
        "waf" => {
            let mut v: Vec<String> = include_str!("../../samples/waf/awsdocs/waf_log_examples.jsonl").lines().map(str::to_string).collect();
            v.extend(panther(include_str!("../../tests/data/waf/panther/waf_rule_tests.jsonl")));
            v
        }
        "securityhub" => {
            let mut v: Vec<String> = include_str!("../../samples/securityhub/awsdocs/asff_doc_examples.jsonl").lines().map(str::to_string).collect();
            v.extend(include_str!("../../samples/securityhub/aws-cli/get-findings.output.jsonl").lines().map(str::to_string));
            v.extend(panther(include_str!("../../tests/data/securityhub/panther/securityfinding_rule_tests.jsonl")));
            v
        }
        "agent" => {
            // The synthetic session: every span and log record on its own line (as the decoder
            // splits them), and the MCP messages.
            let otlp = |t: &str, res: &str, scopes: &str, items: &str| -> Vec<String> {
                let v: serde_json::Value = serde_json::from_str(t).expect("bundled sample");
                let mut out = Vec::new();
                for r in v[res].as_array().into_iter().flatten() {
                    for sc in r[scopes].as_array().into_iter().flatten() {
                        for i in sc[items].as_array().into_iter().flatten() {
                            out.push(serde_json::json!({res: [{"resource": r["resource"], scopes: [{"scope": sc["scope"], items: [i]}]}]}).to_string());
                        }
                    }
                }
                out
            };
            let mut v = otlp(include_str!("../../samples/agent/session/otlp-traces.json"), "resourceSpans", "scopeSpans", "spans");
            v.extend(otlp(include_str!("../../samples/agent/session/otlp-logs.json"), "resourceLogs", "scopeLogs", "logRecords"));
            v.extend(include_str!("../../samples/agent/session/mcp.jsonl").lines().map(str::to_string));
            v.extend(panther(include_str!("../../tests/data/agent/panther/bedrock_model_invocation_rule_tests.jsonl")));
            v.extend(panther(include_str!("../../tests/data/agent/panther/anthropic_activity_rule_tests.jsonl")));
            v.extend(panther(include_str!("../../tests/data/agent/panther/openai_audit_rule_tests.jsonl")));
            v
        }
        "guardduty" => panther(include_str!("../../tests/data/guardduty/panther/guardduty_rule_tests.jsonl")),
        "shield" => {
            // One line per attack record: the DescribeAttack detail and the ListAttacks summary.
            let one_line = |t: &str| serde_json::from_str::<serde_json::Value>(t).expect("bundled sample").to_string();
            vec![one_line(include_str!("../../samples/shield/aws-cli/describe-attack.output.json")), one_line(include_str!("../../samples/shield/aws-cli/list-attacks.output.json"))]
        }
        other => panic!("no bench samples for source `{other}`"),
    }
}

/// `events` records of a source as JSON Lines: its bundled samples, repeated in order.
pub fn source_jsonl(kind: &str, events: usize) -> Vec<u8> {
    let samples = source_samples(kind);
    let mut out = Vec::new();
    for line in samples.iter().cycle().take(events) {
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out
}

struct Discard(usize);
impl RecordSink for Discard {
    fn record(&mut self, v: &BorrowedValue<'_>, _: &Origin) -> Result<(), String> {
        std::hint::black_box(v);
        self.0 += 1;
        Ok(())
    }
    fn dead_letter(&mut self, _: DeadLetter) {
        panic!("bench input must be clean");
    }
}

/// The baseline: split lines and parse each record with simd-json, nothing else.
pub fn parse_only(input: &[u8], source: &Arc<str>) -> usize {
    let mut d = Decoder::new(Limits::default());
    let mut sink = Discard(0);
    d.decode(input, source, &mut sink);
    sink.0
}

struct Normalize(Box<dyn Normalizer>);
impl RecordSink for Normalize {
    fn record(&mut self, v: &BorrowedValue<'_>, o: &Origin) -> Result<(), String> {
        self.0.append(v, o)
    }
    fn dead_letter(&mut self, d: DeadLetter) {
        panic!("bench input must be clean: {}", d.reason);
    }
}

/// The measured path: the same decoding and parsing, plus the mapping into Arrow batches.
pub fn normalize_bytes(input: &[u8], source: &Arc<str>) -> Vec<OcsfBatch> {
    normalize_bytes_as("cloudtrail", input, source)
}

/// CloudTrail with a given agent registry (built once, outside the measured loop).
pub fn normalize_bytes_with(input: &[u8], source: &Arc<str>, registry: &Arc<normalize::agents::Registry>) -> Vec<OcsfBatch> {
    let mut d = Decoder::new(Limits::default());
    let mut sink = Normalize(normalize::with_agents("cloudtrail", registry.clone()).expect("normalizer"));
    d.decode(input, source, &mut sink);
    sink.0.take_batches().expect("batches")
}

/// As [`normalize_bytes`], with the normalizer of another source kind.
pub fn normalize_bytes_as(kind: &str, input: &[u8], source: &Arc<str>) -> Vec<OcsfBatch> {
    let mut d = Decoder::new(Limits::default());
    let mut sink = Normalize(normalize::by_kind(kind).expect("normalizer"));
    d.decode(input, source, &mut sink);
    sink.0.take_batches().expect("batches")
}

/// What the agent registry reads of a CloudTrail record, owned.
pub struct OwnedCaller {
    user_agent: Option<String>,
    role_arn: Option<String>,
    session_name: Option<String>,
    source_identity: Option<String>,
}

impl OwnedCaller {
    pub fn as_caller(&self) -> normalize::agents::Caller<'_> {
        normalize::agents::Caller {
            user_agent: self.user_agent.as_deref(),
            role_arn: self.role_arn.as_deref(),
            session_name: self.session_name.as_deref(),
            source_identity: self.source_identity.as_deref(),
            tags: &[],
        }
    }
}

/// The callers of CloudTrail JSON Lines, as the CloudTrail normalizer gives them to the registry.
pub fn callers(input: &[u8]) -> Vec<OwnedCaller> {
    input
        .split(|c| *c == b'\n')
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .map(|v| {
            let id = &v["userIdentity"];
            let arn = id["arn"].as_str();
            let s = |x: Option<&str>| x.map(str::to_string);
            OwnedCaller {
                user_agent: s(v["userAgent"].as_str()),
                role_arn: s(id["sessionContext"]["sessionIssuer"]["arn"].as_str().or(arn.filter(|a| a.contains(":role/")))),
                session_name: s(arn.filter(|a| a.contains(":assumed-role/")).and_then(|a| a.rsplit('/').next())),
                source_identity: s(id["sessionContext"]["sourceIdentity"].as_str()),
            }
        })
        .collect()
}
