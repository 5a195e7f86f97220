//! AI-agent telemetry to OCSF 1.8.0 API Activity (6003) with the `ai_operation` profile:
//! OpenTelemetry OTLP/JSON spans and log events (GenAI and MCP semantic conventions, coding
//! agents' tool decisions such as `claude_code.tool_decision`), and MCP JSON-RPC messages, bare
//! or in Ocelot's envelope. A tool call that runs a cloud command is recorded as the AWS call it
//! makes (`api.service.name` / `api.operation` as CloudTrail names them), with the tool in
//! `api.group.name`, so agent actions join CloudTrail. The mapping: `docs/mappings/agent.md`.

use ocelot_schemas::{BatchWriter, WriterError};
use simd_json::prelude::Writable;
use simd_json::BorrowedValue;

use super::cloud_call::{parse_sdk, parse_shell, CloudCall};
use super::cloudtrail::api_activity;
use super::columns::columns;
use super::head::{obs, Head};
use super::time::parse_time_ms;
use super::{ClassWriter, Normalizer, OcsfBatch};
use crate::decode::Origin;
use crate::json::{get, i64_of, str_of};

columns! {
    pub struct Agent {
        status_id: i32 = "status_id",
        status: str = "status",
        status_detail: str = "status_detail",
        app_name: str = "actor.app_name",
        app_uid: str = "actor.app_uid",
        user_uid: str = "actor.user.uid",
        user_name: str = "actor.user.name",
        user_email: str = "actor.user.email_addr",
        session_uid: str = "actor.session.uid",
        auths: list = "actor.authorizations",
        auth_decision: str = "actor.authorizations.decision",
        auth_policy: str = "actor.authorizations.policy.name",
        operation: str = "api.operation",
        service: str = "api.service.name",
        group: str = "api.group.name",
        request_uid: str = "api.request.uid",
        request_data: str = "api.request.data",
        response_data: str = "api.response.data",
        response_error: str = "api.response.error",
        trace_uid: str = "trace.uid",
        span_uid: str = "trace.span.uid",
        span_parent: str = "trace.span.parent_uid",
        span_start: i64 = "trace.span.start_time",
        span_end: i64 = "trace.span.end_time",
        span_operation: str = "trace.span.operation",
        span_status: str = "trace.span.status_code",
        model_name: str = "ai_model.name",
        model_provider: str = "ai_model.ai_provider",
        prompt_tokens: i32 = "message_context.prompt_tokens",
        completion_tokens: i32 = "message_context.completion_tokens",
        total_tokens: i32 = "message_context.total_tokens",
        context_uid: str = "message_context.uid",
        context_app: str = "message_context.application.name",
        src_host: str = "src_endpoint.hostname",
        src_ip: str = "src_endpoint.ip",
        user_agent: str = "http_request.user_agent",
        src_name: str = "src_endpoint.name",
        dst_svc: str = "dst_endpoint.svc_name",
        resources: list = "resources",
        res_uid: str = "resources.uid",
        res_name: str = "resources.name",
        res_type: str = "resources.type",
        res_region: str = "resources.region",
    }
}

pub const PATHS: &[(&str, &[&[&str]])] = &[("api_activity", &[Head::PATHS, Agent::PATHS])];

pub struct AgentLogs {
    cw: ClassWriter,
    head: Head,
    a: Agent,
    buf: Vec<u8>,
}

impl AgentLogs {
    pub fn new() -> Result<AgentLogs, WriterError> {
        let cw = ClassWriter::new("api_activity")?;
        let (head, a) = (Head::resolve(&cw.writer)?, Agent::resolve(&cw.writer)?);
        Ok(AgentLogs { cw, head, a, buf: Vec::with_capacity(2048) })
    }
}

/// OTLP attributes (`[{"key": k, "value": {"stringValue": v}}]`) of a span or log record,
/// followed by its resource's; the first match wins.
struct Attrs<'v, 'a> {
    lists: [Option<&'v [BorrowedValue<'a>]>; 2],
}

impl<'v, 'a> Attrs<'v, 'a> {
    fn of(item: &'v BorrowedValue<'a>, resource: Option<&'v BorrowedValue<'a>>) -> Attrs<'v, 'a> {
        let list = |v: Option<&'v BorrowedValue<'a>>| match v.and_then(|v| get(v, "attributes")) {
            Some(BorrowedValue::Array(a)) => Some(a.as_slice()),
            _ => None,
        };
        Attrs { lists: [list(Some(item)), list(resource)] }
    }

    fn value(&self, key: &str) -> Option<&'v BorrowedValue<'a>> {
        self.lists.iter().flatten().flat_map(|l| l.iter()).find(|kv| str_of(get(kv, "key")) == Some(key)).and_then(|kv| get(kv, "value"))
    }

    /// A string attribute (or an int/bool/double one, as text).
    fn str(&self, key: &str) -> Option<&'v str> {
        let v = self.value(key)?;
        str_of(get(v, "stringValue")).or_else(|| str_of(get(v, "intValue")))
    }

    fn int(&self, key: &str) -> Option<i64> {
        let v = self.value(key)?;
        i64_of(get(v, "intValue")).or_else(|| i64_of(get(v, "stringValue"))).or_else(|| i64_of(get(v, "doubleValue")))
    }

    fn bool(&self, key: &str) -> Option<bool> {
        let v = self.value(key)?;
        crate::json::bool_of(get(v, "boolValue")).or_else(|| crate::json::bool_of(get(v, "stringValue")))
    }

    /// The first of several keys that is present.
    fn any(&self, keys: &[&str]) -> Option<&'v str> {
        keys.iter().find_map(|k| self.str(k))
    }
}

/// Nanoseconds since the epoch (OTLP writes them as strings) to milliseconds.
fn nanos_ms(v: Option<&BorrowedValue<'_>>) -> Option<i64> {
    i64_of(v).filter(|n| *n > 0).map(|n| n / 1_000_000)
}

pub(super) use super::cloudtrail::api_activity as verb_activity;

/// Who decided a tool call, from a coding agent's decision `source`.
fn approval(decision: &str, source: Option<&str>) -> &'static str {
    match (decision, source) {
        ("reject", _) | (_, Some("user_reject" | "user_abort")) => "approval:rejected",
        (_, Some("config")) => "approval:config",
        (_, Some(s)) if s.starts_with("user") => "approval:human",
        _ => "approval:unknown",
    }
}

/// What one record describes, before it is written.
#[derive(Default)]
pub(super) struct Event<'v> {
    pub(super) time: i64,
    /// Activity name for Other (99): "Tool Call", "Model Call", the event or method name.
    pub(super) label: String,
    pub(super) tool: Option<&'v str>,
    pub(super) service: Option<String>,
    pub(super) operation: Option<String>,
    pub(super) call_id: Option<String>,
    pub(super) arguments: Option<String>,
    pub(super) result: Option<String>,
    pub(super) failed: Option<bool>,
    pub(super) error: Option<String>,
    pub(super) calls: Vec<CloudCall>,
    pub(super) decision: Option<(&'v str, Option<&'v str>)>,
    pub(super) agent_name: Option<&'v str>,
    pub(super) agent_uid: Option<&'v str>,
    pub(super) user_uid: Option<&'v str>,
    pub(super) user_email: Option<&'v str>,
    pub(super) session: Option<&'v str>,
    pub(super) host: Option<&'v str>,
    pub(super) model: Option<&'v str>,
    pub(super) provider: Option<&'v str>,
    pub(super) tokens: (Option<i64>, Option<i64>),
    pub(super) trace: Option<(&'v str, Option<&'v str>, Option<&'v str>, Option<i64>, Option<i64>, Option<&'v str>, Option<&'v str>)>,
    pub(super) product: &'static str,
    pub(super) vendor: &'static str,
    /// The record's own id (`metadata.uid`).
    pub(super) uid: Option<&'v str>,
    pub(super) src_ip: Option<&'v str>,
    pub(super) user_agent: Option<&'v str>,
    pub(super) region: Option<&'v str>,
    pub(super) account: Option<&'v str>,
    /// Resources the record names that are not cloud calls: (uid, name, type).
    pub(super) named: Vec<(Option<&'v str>, Option<&'v str>, String)>,
    /// Activity decided by the record itself (audit logs), else from the cloud call.
    pub(super) activity: Option<i32>,
    pub(super) profiles: &'static [&'static str],
}

impl Normalizer for AgentLogs {
    fn kind(&self) -> &'static str {
        "agent"
    }

    fn append(&mut self, v: &BorrowedValue<'_>, _origin: &Origin) -> Result<(), String> {
        let mut consumed = None;
        let e = if let Some(span) = get(v, "span") {
            otlp_span(span, get(v, "resource"))?
        } else if let Some(log) = get(v, "logRecord") {
            otlp_log(log, get(v, "resource"))?
        } else if get(v, "jsonrpc").is_some() {
            mcp(v, None)?
        } else if let Some(msg) = get(v, "message").filter(|m| get(m, "jsonrpc").is_some()) {
            mcp(msg, Some(v))?
        } else if let Some(f) = super::ai_logs::format(v) {
            let (e, m) = super::ai_logs::parse(f, v)?;
            consumed = Some(m);
            e
        } else {
            return Err("not an agent record: expected an OTLP span or log record, an MCP JSON-RPC message, a Bedrock model invocation log, or an Anthropic / OpenAI audit log entry".into());
        };
        super::time::admit(e.time)?;
        write(&mut self.cw.writer, self.cw.class, &self.head, &self.a, &e);
        // What the mapping did not use: the other attributes (span, log record, resource), the
        // envelope's other fields.
        let h = &self.head;
        let w = &mut self.cw.writer;
        self.buf.clear();
        let written = match consumed {
            Some(m) => crate::json::write_unmapped(v, m, &[], &mut self.buf),
            None => unmapped(v, &mut self.buf),
        };
        if written {
            w.str(h.unmapped, std::str::from_utf8(&self.buf).unwrap_or_default());
        }
        w.end_row();
        Ok(())
    }

    fn buffered_rows(&self) -> usize {
        self.cw.writer.rows()
    }

    fn discard_partial(&mut self) {
        self.cw.writer.discard_row();
    }
    fn take_batches(&mut self) -> Result<Vec<OcsfBatch>, WriterError> {
        self.cw.batches()
    }
}

/// The cloud calls a tool's arguments make: shell command lines anywhere in them, or an
/// SDK-style `service` + `operation`.
fn cloud_calls(arguments: &str) -> Vec<CloudCall> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(arguments) else {
        return parse_shell(arguments);
    };
    let mut out = Vec::new();
    if let Some(obj) = v.as_object() {
        let text = |k: &str| obj.get(k).and_then(|x| x.as_str());
        if let (Some(svc), Some(op)) = (text("service"), text("operation").or(text("action")).or(text("api"))) {
            let params: Vec<(&str, &str)> = ["parameters", "params", "args", "input"]
                .iter()
                .filter_map(|k| obj.get(*k).and_then(|p| p.as_object()))
                .flat_map(|p| p.iter())
                .flat_map(|(k, v)| match v {
                    serde_json::Value::String(s) => vec![(k.as_str(), s.as_str())],
                    serde_json::Value::Array(a) => a.iter().filter_map(|x| x.as_str()).map(|s| (k.as_str(), s)).collect(),
                    _ => vec![],
                })
                .collect();
            out.push(parse_sdk(svc, op, &params));
            return out;
        }
    }
    fn walk(v: &serde_json::Value, out: &mut Vec<CloudCall>) {
        match v {
            serde_json::Value::String(s) if s.contains("aws ") || s.starts_with("aws") => out.extend(parse_shell(s)),
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            serde_json::Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(&v, &mut out);
    out
}

/// An attribute value as JSON text: strings as they are (GenAI attributes such as
/// `gen_ai.tool.call.arguments` hold JSON text), structured values encoded.
fn json_text(v: &BorrowedValue<'_>) -> String {
    if let Some(s) = str_of(get(v, "stringValue")) {
        return s.to_string();
    }
    let inner = match v {
        BorrowedValue::Object(o) => o.values().next().unwrap_or(v),
        _ => v,
    };
    inner.encode()
}

fn identity<'v>(e: &mut Event<'v>, at: &Attrs<'v, '_>) {
    e.agent_name = at.any(&["gen_ai.agent.name", "service.name"]);
    e.agent_uid = at.any(&["gen_ai.agent.id", "service.instance.id"]);
    e.user_uid = at.any(&["enduser.id", "user.id", "user.account_uuid"]);
    e.user_email = at.any(&["user.email", "enduser.email"]);
    e.session = at.any(&["gen_ai.conversation.id", "mcp.session.id", "session.id"]);
    e.host = at.any(&["host.name"]);
    e.model = at.any(&["gen_ai.response.model", "gen_ai.request.model", "model"]);
    e.provider = at.any(&["gen_ai.provider.name", "gen_ai.system"]);
    e.tokens = (at.int("gen_ai.usage.input_tokens").or_else(|| at.int("input_tokens")), at.int("gen_ai.usage.output_tokens").or_else(|| at.int("output_tokens")));
}

fn otlp_span<'v>(span: &'v BorrowedValue<'v>, resource: Option<&'v BorrowedValue<'v>>) -> Result<Event<'v>, String> {
    let name = str_of(get(span, "name")).ok_or("bad OTLP span: no name")?;
    let start = nanos_ms(get(span, "startTimeUnixNano")).ok_or("bad OTLP span: no startTimeUnixNano")?;
    let trace_id = str_of(get(span, "traceId")).filter(|s| !s.is_empty()).ok_or("bad OTLP span: no traceId")?;
    let at = Attrs::of(span, resource);
    let mut e = Event { time: start, product: "OpenTelemetry", vendor: "OpenTelemetry", ..Default::default() };
    identity(&mut e, &at);
    let op = at.str("gen_ai.operation.name");
    let end = nanos_ms(get(span, "endTimeUnixNano"));
    let status = get(span, "status").and_then(|s| get(s, "code"));
    let error = matches!(status.and_then(|c| str_of(Some(c)).map(|s| s.to_string()).or_else(|| i64_of(Some(c)).map(|n| n.to_string()))).as_deref(), Some("2" | "STATUS_CODE_ERROR"));
    let status_text = if error { Some("ERROR") } else { None };
    e.trace = Some((trace_id, str_of(get(span, "spanId")), str_of(get(span, "parentSpanId")).filter(|s| !s.is_empty()), Some(start), end, Some(name), status_text));
    e.failed = Some(error);
    e.error = at.str("error.type").map(str::to_string).or_else(|| get(span, "status").and_then(|s| str_of(get(s, "message"))).filter(|m| !m.is_empty()).map(str::to_string));
    let is_tool = op == Some("execute_tool") || at.str("mcp.method.name") == Some("tools/call");
    if is_tool {
        e.label = "Tool Call".into();
        e.tool = at.any(&["gen_ai.tool.name"]).or(Some(name));
        e.call_id = at.any(&["gen_ai.tool.call.id", "mcp.request.id", "jsonrpc.request.id"]).map(str::to_string);
        e.arguments = at.value("gen_ai.tool.call.arguments").map(json_text);
        e.result = at.value("gen_ai.tool.call.result").map(json_text);
        e.service = at.any(&["mcp.server.name", "server.address"]).map(str::to_string);
    } else if let Some(op) = op {
        // Model and agent calls: chat, text_completion, generate_content, invoke_agent, ...
        e.label = if op == "invoke_agent" || op == "create_agent" { "Agent Call".into() } else { "Model Call".into() };
        e.operation = Some(op.to_string());
        e.service = e.provider.map(str::to_string);
    } else if let Some(method) = at.str("mcp.method.name") {
        e.label = method.to_string();
        e.operation = Some(method.to_string());
    } else {
        e.label = name.to_string();
        e.operation = Some(name.to_string());
    }
    if let Some(args) = &e.arguments {
        e.calls = cloud_calls(args);
    }
    Ok(e)
}

fn otlp_log<'v>(log: &'v BorrowedValue<'v>, resource: Option<&'v BorrowedValue<'v>>) -> Result<Event<'v>, String> {
    let at = Attrs::of(log, resource);
    let time = nanos_ms(get(log, "timeUnixNano")).or_else(|| nanos_ms(get(log, "observedTimeUnixNano"))).or_else(|| at.str("event.timestamp").and_then(parse_time_ms));
    let time = time.ok_or("bad OTLP log record: no timeUnixNano, observedTimeUnixNano or event.timestamp")?;
    let name = str_of(get(log, "eventName")).or_else(|| at.str("event.name")).or_else(|| get(log, "body").and_then(|b| str_of(get(b, "stringValue"))));
    let name = name.ok_or("bad OTLP log record: no eventName, event.name attribute or body")?;
    let mut e = Event { time, product: "OpenTelemetry", vendor: "OpenTelemetry", ..Default::default() };
    identity(&mut e, &at);
    if let Some(t) = str_of(get(log, "traceId")).filter(|s| !s.is_empty()) {
        e.trace = Some((t, str_of(get(log, "spanId")).filter(|s| !s.is_empty()), None, None, None, None, None));
    }
    let event = name.rsplit('.').next().unwrap_or(name);
    e.tool = at.any(&["tool_name", "gen_ai.tool.name"]);
    e.call_id = at.any(&["tool_use_id", "tool_call_id", "gen_ai.tool.call.id"]).map(str::to_string);
    let decision = at.str("decision");
    let source = at.str("source").or_else(|| at.str("decision_source"));
    match event {
        "tool_decision" => {
            e.label = "Tool Decision".into();
            let d = decision.ok_or("bad tool decision event: no decision attribute")?;
            e.decision = Some((d, source));
            e.failed = Some(d == "reject");
        }
        "tool_result" | "execute_tool" => {
            e.label = "Tool Call".into();
            e.failed = at.bool("success").map(|ok| !ok);
            e.error = at.str("error").map(str::to_string);
            e.arguments = at.value("tool_parameters").or_else(|| at.value("gen_ai.tool.call.arguments")).map(json_text);
            e.result = at.value("gen_ai.tool.call.result").map(json_text);
            if let Some(d) = decision {
                e.decision = Some((d, source));
            }
        }
        _ => {
            e.label = name.to_string();
            e.operation = Some(name.to_string());
            // Claude Code's api_request events name the model, not the provider.
            if e.model.is_some() && e.provider.is_none() && name.starts_with("claude_code.") {
                e.provider = Some("anthropic");
            }
        }
    }
    e.service = e.service.take().or_else(|| at.str("service.name").map(str::to_string));
    if let Some(args) = &e.arguments {
        e.calls = cloud_calls(args);
    }
    Ok(e)
}

/// An MCP JSON-RPC message, with Ocelot's envelope when there is one:
/// `{"time", "session", "client", "server", "user", "message": {...}}`.
fn mcp<'v>(msg: &'v BorrowedValue<'v>, env: Option<&'v BorrowedValue<'v>>) -> Result<Event<'v>, String> {
    if str_of(get(msg, "jsonrpc")) != Some("2.0") {
        return Err("bad MCP message: jsonrpc must be \"2.0\"".into());
    }
    let field = |k: &str| env.and_then(|e| str_of(get(e, k)));
    // Bare messages carry no time: they get the time they were read.
    let time = match field("time") {
        Some(t) => parse_time_ms(t).ok_or_else(|| format!("bad MCP envelope: time `{t}` is not RFC 3339"))?,
        None => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64),
    };
    let mut e = Event { time, product: "MCP", vendor: "Model Context Protocol", ..Default::default() };
    e.session = field("session");
    e.agent_name = field("client");
    e.user_uid = field("user");
    e.service = field("server").map(str::to_string);
    let id = get(msg, "id").map(|i| str_of(Some(i)).map(str::to_string).unwrap_or_else(|| i.encode()));
    let method = str_of(get(msg, "method"));
    match (method, get(msg, "result"), get(msg, "error")) {
        (Some("tools/call"), _, _) => {
            let params = get(msg, "params").ok_or("bad MCP tools/call: no params")?;
            e.label = "Tool Call".into();
            e.tool = Some(str_of(get(params, "name")).ok_or("bad MCP tools/call: no params.name")?);
            e.arguments = get(params, "arguments").map(|a| a.encode());
            e.call_id = id;
        }
        (Some(m), _, _) => {
            e.label = m.to_string();
            e.operation = Some(m.to_string());
            e.call_id = id;
            e.arguments = get(msg, "params").map(|p| p.encode());
        }
        (None, Some(result), _) => {
            e.label = "Tool Result".into();
            e.operation = Some("result".into());
            e.call_id = Some(id.ok_or("bad MCP result: no id")?);
            e.failed = crate::json::bool_of(get(result, "isError"));
            e.result = Some(result.encode());
        }
        (None, None, Some(err)) => {
            e.label = "Error".into();
            e.operation = Some("error".into());
            e.call_id = id;
            e.failed = Some(true);
            e.error = str_of(get(err, "message")).map(str::to_string).or_else(|| Some(err.encode()));
        }
        _ => return Err("bad MCP message: neither a request, a result nor an error".into()),
    }
    if let Some(args) = &e.arguments {
        e.calls = cloud_calls(args);
    }
    Ok(e)
}

fn write(w: &mut BatchWriter, class: &ocelot_schemas::ClassDef, h: &Head, a: &Agent, e: &Event<'_>) {
    let call = e.calls.first();
    // A cloud call's activity is its operation's (a Delete is a Delete whoever makes it).
    let activity = e.activity.unwrap_or_else(|| call.map_or(99, |c| api_activity(&c.operation, None)));
    h.classify(w, class, activity, (activity == 99).then_some(e.label.as_str()));
    h.time(w, e.time);
    h.severity(w, 1);
    // `cloud` is listed only with the cloud attributes it requires, and they only with it.
    // A call's region is a resource's (`resources.region`, also a cloud profile attribute).
    let call_region = e.calls.iter().find_map(|c| c.region.as_deref());
    let cloud = e.region.is_some() || e.account.is_some() || call_region.is_some() || e.profiles.contains(&"cloud");
    let mut profiles = vec!["ai_operation"];
    profiles.extend(e.profiles.iter().filter(|p| **p != "cloud"));
    if cloud {
        profiles.push("cloud");
    }
    if e.trace.is_some() {
        profiles.push("trace");
    }
    h.product(w, e.product, e.vendor, &profiles);
    if let Some(u) = e.uid {
        w.str(h.md_uid, u);
    }
    if cloud {
        h.aws(w, e.region.or(call_region), e.account);
    }
    if let Some(ip) = e.src_ip {
        w.str(a.src_ip, ip);
        h.observable(w, "src_endpoint.ip", obs::IP, ip);
    }
    if let Some(ua) = e.user_agent {
        w.str(a.user_agent, ua);
    }
    // OCSF's resource needs a uid or a name: a kind alone is not one.
    for (uid, name, kind) in e.named.iter().filter(|(u, n, _)| u.is_some() || n.is_some()) {
        w.begin_item(a.resources);
        if let Some(u) = uid {
            w.str(a.res_uid, u);
        }
        if let Some(n) = name {
            w.str(a.res_name, n);
        }
        w.str(a.res_type, kind);
        w.end_item(a.resources);
    }
    w.str(h.md_log_provider, e.agent_name.unwrap_or(e.product));
    match e.failed {
        Some(true) => {
            w.i32(a.status_id, 2);
            w.str(a.status, "Failure");
        }
        Some(false) => {
            w.i32(a.status_id, 1);
            w.str(a.status, "Success");
        }
        None => {}
    }
    if let Some(err) = &e.error {
        w.str(a.status_detail, err);
        w.str(a.response_error, err);
    }

    // The actor: the agent, on whose behalf, in which session. OCSF requires an actor and a
    // source endpoint: an agent that does not name itself, with no user or address beside
    // it, is "unknown".
    let has_user = e.user_uid.is_some() || e.user_email.is_some();
    if let Some(agent) = e.agent_name.or((!has_user).then_some("unknown")) {
        w.str(a.app_name, agent);
    }
    if let Some(name) = e.agent_name.or((e.src_ip.is_none() && e.host.is_none()).then_some("unknown")) {
        w.str(a.src_name, name);
    }
    for (col, val) in [(a.app_uid, e.agent_uid), (a.user_uid, e.user_uid), (a.user_email, e.user_email), (a.session_uid, e.session), (a.src_host, e.host)] {
        if let Some(x) = val {
            w.str(col, x);
        }
    }
    if let Some(u) = e.user_uid.or(e.user_email) {
        w.str(a.user_name, u);
        h.observable(w, "actor.user.name", obs::USER_NAME, u);
    }
    if let Some((decision, source)) = e.decision {
        w.begin_item(a.auths);
        w.str(a.auth_decision, decision);
        if let Some(s) = source {
            w.str(a.auth_policy, s);
        }
        w.end_item(a.auths);
        w.push_str(h.md_labels, approval(decision, source));
    }
    if e.agent_name.is_some() {
        w.push_str(h.md_labels, "agent");
    }

    // The API: the cloud call the tool made, else the tool or operation itself.
    match call {
        Some(c) => {
            w.str(a.service, &c.service);
            w.str(a.operation, &c.operation);
            w.str(a.dst_svc, &c.service);
        }
        None => {
            if let Some(s) = &e.service {
                w.str(a.service, s);
            }
            if let Some(op) = e.operation.as_deref().or(e.tool) {
                w.str(a.operation, op);
            }
        }
    }
    if let Some(t) = e.tool {
        w.str(a.group, t);
    }
    if let Some(id) = &e.call_id {
        w.str(a.request_uid, id);
        if let Some(args) = &e.arguments {
            w.str(a.request_data, args);
        }
    }
    if let Some(r) = &e.result {
        w.str(a.response_data, r);
    }
    for c in &e.calls {
        for (id, kind) in &c.resources {
            w.begin_item(a.resources);
            if id.starts_with("arn:") {
                w.str(a.res_uid, id);
            } else {
                w.str(a.res_name, id);
            }
            if !kind.is_empty() {
                w.str(a.res_type, kind);
            }
            if let Some(r) = &c.region {
                w.str(a.res_region, r);
            }
            w.end_item(a.resources);
        }
    }

    // The model.
    if let Some(m) = e.model {
        w.str(a.model_name, m);
        w.str(a.model_provider, e.provider.unwrap_or("unknown"));
    }
    let (input, output) = e.tokens;
    let tok = |n: Option<i64>| n.and_then(|n| i32::try_from(n).ok());
    let context_uid = e.session.filter(|_| e.model.is_some() || input.is_some());
    if tok(input).is_some() || tok(output).is_some() || context_uid.is_some() {
        // OCSF's message_context names the application the messages belong to (its
        // at_least_one constraint): the agent, else the product that logged them.
        w.str(a.context_app, e.agent_name.unwrap_or(e.product));
    }
    if let Some(n) = tok(input) {
        w.i32(a.prompt_tokens, n);
    }
    if let Some(n) = tok(output) {
        w.i32(a.completion_tokens, n);
    }
    if let (Some(i), Some(o)) = (tok(input), tok(output)) {
        w.i32(a.total_tokens, i.saturating_add(o));
    }
    if let Some(s) = context_uid {
        w.str(a.context_uid, s);
    }

    if let Some((trace, span, parent, start, end, op, status)) = e.trace {
        w.str(a.trace_uid, trace);
        if let (Some(span), Some(start), Some(end)) = (span, start, end) {
            // OCSF's span requires its uid, start and end.
            w.str(a.span_uid, span);
            w.i64(a.span_start, start);
            w.i64(a.span_end, end);
            if let Some(p) = parent {
                w.str(a.span_parent, p);
            }
            if let Some(o) = op {
                w.str(a.span_operation, o);
            }
            if let Some(s) = status {
                w.str(a.span_status, s);
            }
        }
    }
}

/// Attributes the mapping reads (of spans, log records and resources).
const CONSUMED_ATTRS: &[&str] = &[
    "gen_ai.agent.name",
    "gen_ai.agent.id",
    "service.name",
    "service.instance.id",
    "enduser.id",
    "user.id",
    "user.account_uuid",
    "user.email",
    "enduser.email",
    "gen_ai.conversation.id",
    "mcp.session.id",
    "session.id",
    "host.name",
    "gen_ai.response.model",
    "gen_ai.request.model",
    "model",
    "gen_ai.provider.name",
    "gen_ai.system",
    "gen_ai.usage.input_tokens",
    "input_tokens",
    "gen_ai.usage.output_tokens",
    "output_tokens",
    "gen_ai.operation.name",
    "mcp.method.name",
    "gen_ai.tool.name",
    "gen_ai.tool.call.id",
    "mcp.request.id",
    "jsonrpc.request.id",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "mcp.server.name",
    "server.address",
    "error.type",
    "event.name",
    "event.timestamp",
    "tool_name",
    "tool_use_id",
    "tool_call_id",
    "decision",
    "source",
    "decision_source",
    "success",
    "error",
    "tool_parameters",
];

/// The unmapped part of a record as a JSON object: the attributes not read (by their key,
/// with their OTLP value), and the MCP envelope's other fields.
fn unmapped(v: &BorrowedValue<'_>, out: &mut Vec<u8>) -> bool {
    let mut m = serde_json::Map::new();
    let value = |x: &BorrowedValue<'_>| serde_json::from_str::<serde_json::Value>(&x.encode()).unwrap_or(serde_json::Value::Null);
    for part in ["span", "logRecord", "resource"] {
        let Some(BorrowedValue::Array(attrs)) = get(v, part).and_then(|p| get(p, "attributes")) else { continue };
        for kv in attrs.iter() {
            let (Some(k), Some(val)) = (str_of(get(kv, "key")), get(kv, "value")) else { continue };
            if !CONSUMED_ATTRS.contains(&k) {
                m.entry(k.to_string()).or_insert_with(|| value(val));
            }
        }
    }
    if get(v, "message").is_some()
        && let BorrowedValue::Object(o) = v
    {
        for (k, x) in o.iter().filter(|(k, _)| !matches!(k.as_ref(), "time" | "session" | "client" | "server" | "user" | "message")) {
            m.insert(k.to_string(), value(x));
        }
    }
    if m.is_empty() {
        return false;
    }
    out.extend_from_slice(serde_json::Value::Object(m).to_string().as_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approvals() {
        assert_eq!(approval("accept", Some("user_temporary")), "approval:human");
        assert_eq!(approval("accept", Some("config")), "approval:config");
        assert_eq!(approval("reject", Some("user_reject")), "approval:rejected");
        assert_eq!(approval("accept", None), "approval:unknown");
    }

    #[test]
    fn tool_arguments_name_cloud_calls() {
        let c = cloud_calls(r#"{"command":"aws s3 rb s3://old-logs --force","description":"clean up"}"#);
        assert_eq!(c[0].operation, "DeleteBucket");
        let c = cloud_calls(r#"{"service":"ec2","operation":"terminate_instances","parameters":{"InstanceIds":["i-1"]}}"#);
        assert_eq!((c[0].operation.as_str(), c[0].resources[0].0.as_str()), ("TerminateInstances", "i-1"));
        assert!(cloud_calls(r#"{"path":"/tmp/x"}"#).is_empty());
    }
}
