//! AI services' own logs, for the agent normalizer: Amazon Bedrock model invocation logs
//! (model calls), and the Anthropic and OpenAI organisation audit logs (who changed API keys,
//! roles, SSO, MCP servers...). Each becomes API Activity with the ai_operation profile
//! (`docs/mappings/agent.md`).

use std::sync::OnceLock;

use simd_json::BorrowedValue;

use super::agent::{verb_activity, Event};
use super::time::parse_time_ms;
use crate::json::{get, get_path, i64_of, str_of, Mapped};

/// The AI services' log formats this module reads.
#[derive(Clone, Copy)]
pub(crate) enum Format {
    Bedrock,
    OpenAi,
    Anthropic,
}

/// Which format a record is in, from the keys only it has (used by `auto` too).
pub(crate) fn format(v: &BorrowedValue<'_>) -> Option<Format> {
    if str_of(get(v, "schemaType")) == Some("ModelInvocationLog") {
        Some(Format::Bedrock)
    } else if get(v, "actor").is_none() {
        None
    } else if str_of(get(v, "object")) == Some("organization.audit_log") || get(v, "effective_at").is_some() {
        Some(Format::OpenAi)
    } else if get(v, "organization_id").is_some() {
        Some(Format::Anthropic)
    } else {
        None
    }
}

/// Parses a record of a known format, with what its mapping consumes (the rest goes to
/// `unmapped`).
pub(super) fn parse<'v>(f: Format, v: &'v BorrowedValue<'v>) -> Result<(Event<'v>, &'static Mapped), String> {
    static BEDROCK: OnceLock<Mapped> = OnceLock::new();
    static OPENAI: OnceLock<Mapped> = OnceLock::new();
    static ANTHROPIC: OnceLock<Mapped> = OnceLock::new();
    Ok(match f {
        Format::Bedrock => (
            bedrock(v)?,
            BEDROCK.get_or_init(|| {
                Mapped::new(&[
                    "timestamp",
                    "accountId",
                    "region",
                    "requestId",
                    "operation",
                    "modelId",
                    "identity.arn",
                    "input.inputBodyJson",
                    "output.outputBodyJson",
                    "input.inputTokenCount",
                    "output.outputTokenCount",
                ])
            }),
        ),
        Format::OpenAi => (
            openai(v)?,
            OPENAI.get_or_init(|| {
                Mapped::new(&[
                    "id",
                    "type",
                    "effective_at",
                    "actor.session.user.id",
                    "actor.session.user.email",
                    "actor.session.ip_address",
                    "actor.session.user_agent",
                    "actor.api_key.id",
                    "actor.api_key.user.id",
                    "actor.api_key.user.email",
                ])
            }),
        ),
        Format::Anthropic => (
            anthropic(v)?,
            ANTHROPIC.get_or_init(|| {
                Mapped::new(&[
                    "id",
                    "type",
                    "created_at",
                    "actor.user_id",
                    "actor.email_address",
                    "actor.api_key_id",
                    "actor.ip_address",
                    "actor.user_agent",
                    "mcp_server_id",
                    "mcp_server_name",
                    "resource_id",
                    "resource_type",
                    "target_id",
                    "target_type",
                ])
            }),
        ),
    })
}

/// The activity an audit event's verb names: created, deleted, updated, viewed...
fn audit_activity(verb: &str) -> i32 {
    match verb {
        "created" | "granted" | "sent" | "connected" | "added" | "enabled" | "activated" => 1,
        "viewed" | "read" | "listed" => 2,
        "updated" | "toggled" | "transferred" | "changed" => 3,
        "deleted" | "revoked" | "deactivated" | "disabled" | "removed" => 4,
        _ => 99,
    }
}

/// A Bedrock model invocation log record: the model call.
fn bedrock<'v>(v: &'v BorrowedValue<'v>) -> Result<Event<'v>, String> {
    let t = str_of(get(v, "timestamp")).ok_or("bad Bedrock invocation log: no timestamp")?;
    let time = parse_time_ms(t).ok_or_else(|| format!("bad Bedrock invocation log: timestamp `{t}` is not a time"))?;
    let op = str_of(get(v, "operation")).ok_or("bad Bedrock invocation log: no operation")?;
    let model = str_of(get(v, "modelId"));
    let arn = str_of(get_path(v, &["identity", "arn"]));
    let mut e = Event { time, product: "Amazon Bedrock", vendor: "AWS", profiles: &["cloud"], ..Default::default() };
    e.label = "Model Call".into();
    e.service = Some("bedrock.amazonaws.com".into());
    e.operation = Some(op.to_string());
    // InvokeModel / Converse: the verb table's answer (Other for Converse).
    e.activity = Some(verb_activity(op, None));
    e.call_id = str_of(get(v, "requestId")).map(str::to_string);
    e.uid = str_of(get(v, "requestId"));
    e.arguments = get_path(v, &["input", "inputBodyJson"]).map(simd_json::prelude::Writable::encode);
    e.result = get_path(v, &["output", "outputBodyJson"]).map(simd_json::prelude::Writable::encode);
    e.model = model;
    // Bedrock model ids start with the provider: anthropic.claude-..., amazon.titan-..., meta.llama...
    e.provider = model.and_then(|m| m.split('.').find(|p| !matches!(*p, "us" | "eu" | "apac" | "global"))).or(Some("aws.bedrock"));
    let usage = get_path(v, &["output", "outputBodyJson", "usage"]);
    e.tokens = (
        i64_of(get_path(v, &["input", "inputTokenCount"])).filter(|n| *n > 0).or_else(|| usage.and_then(|u| i64_of(get(u, "inputTokens")))),
        i64_of(get_path(v, &["output", "outputTokenCount"])).filter(|n| *n > 0).or_else(|| usage.and_then(|u| i64_of(get(u, "outputTokens")))),
    );
    e.user_uid = arn;
    e.agent_name = arn.filter(|a| a.contains(":assumed-role/")).and_then(|a| a.rsplit('/').next());
    e.region = str_of(get(v, "region"));
    e.account = str_of(get(v, "accountId"));
    Ok(e)
}

/// An OpenAI organisation audit log entry (`/v1/organization/audit_logs`).
fn openai<'v>(v: &'v BorrowedValue<'v>) -> Result<Event<'v>, String> {
    let kind = str_of(get(v, "type")).ok_or("bad OpenAI audit log entry: no type")?;
    let secs = i64_of(get(v, "effective_at")).ok_or("bad OpenAI audit log entry: effective_at is not epoch seconds")?;
    let mut e = Event { time: secs * 1000, product: "OpenAI Platform", vendor: "OpenAI", ..Default::default() };
    e.uid = str_of(get(v, "id"));
    e.label = kind.to_string();
    e.service = Some("openai".into());
    e.operation = Some(kind.to_string());
    let verb = kind.rsplit('.').next().unwrap_or("");
    e.activity = Some(audit_activity(verb));
    e.failed = Some(verb == "failed");
    let actor = get(v, "actor");
    let session = actor.and_then(|a| get(a, "session"));
    let key = actor.and_then(|a| get(a, "api_key"));
    e.user_uid = session.and_then(|s| str_of(get_path(s, &["user", "id"]))).or_else(|| key.and_then(|k| str_of(get_path(k, &["user", "id"])).or_else(|| str_of(get(k, "id")))));
    e.user_email = session.and_then(|s| str_of(get_path(s, &["user", "email"]))).or_else(|| key.and_then(|k| str_of(get_path(k, &["user", "email"]))));
    e.src_ip = session.and_then(|s| str_of(get(s, "ip_address")));
    e.user_agent = session.and_then(|s| str_of(get(s, "user_agent")));
    // The changed object is under the type's name with `_` (`api_key.created` -> `api_key_created`).
    let detail_key = kind.replace('.', "_");
    if let Some(obj) = get(v, &detail_key) {
        let prefix = kind.rsplit_once('.').map_or(kind, |(p, _)| p);
        e.named.push((str_of(get(obj, "id")), None, format!("openai.{prefix}")));
    }
    Ok(e)
}

/// An Anthropic organisation activity (audit) log entry.
fn anthropic<'v>(v: &'v BorrowedValue<'v>) -> Result<Event<'v>, String> {
    let kind = str_of(get(v, "type")).ok_or("bad Anthropic audit log entry: no type")?;
    let t = str_of(get(v, "created_at")).ok_or("bad Anthropic audit log entry: no created_at")?;
    let time = parse_time_ms(t).ok_or_else(|| format!("bad Anthropic audit log entry: created_at `{t}` is not RFC 3339"))?;
    let mut e = Event { time, product: "Anthropic Console", vendor: "Anthropic", ..Default::default() };
    e.uid = str_of(get(v, "id"));
    e.label = kind.to_string();
    e.service = Some("anthropic".into());
    e.operation = Some(kind.to_string());
    let verb = kind.rsplit('_').next().unwrap_or("");
    e.activity = Some(audit_activity(verb));
    e.failed = Some(verb == "failed");
    let actor = get(v, "actor");
    let field = |k: &str| actor.and_then(|a| str_of(get(a, k)));
    e.user_uid = field("user_id").or_else(|| field("api_key_id"));
    e.user_email = field("email_address");
    e.src_ip = field("ip_address");
    e.user_agent = field("user_agent");
    // What the event is about: an MCP server, a resource, a target.
    if get(v, "mcp_server_id").is_some() || get(v, "mcp_server_name").is_some() {
        e.named.push((str_of(get(v, "mcp_server_id")), str_of(get(v, "mcp_server_name")), "anthropic.mcp_server".into()));
    }
    for (id, kind_key) in [("resource_id", "resource_type"), ("target_id", "target_type")] {
        if let Some(rid) = str_of(get(v, id)) {
            e.named.push((Some(rid), None, format!("anthropic.{}", str_of(get(v, kind_key)).unwrap_or("resource"))));
        }
    }
    Ok(e)
}
