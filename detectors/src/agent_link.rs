//! Which AI-agent tool call made a CloudTrail change, and what the human decided about it.
//!
//! Agent telemetry (OTLP spans and logs, MCP) normalizes to API Activity rows: a tool call that
//! runs an AWS command carries the call as CloudTrail names it (`api.service.name`,
//! `api.operation`), the resources and region its arguments name (`resources`), its id
//! (`api.request.uid`), the tool (`api.group.name`), the agent (`actor.app_name`) and the
//! conversation (`actor.session.uid`); a `Tool Decision` row carries the decision on a call
//! (`actor.authorizations`). The linker keeps recent calls and decisions (bounded).
//!
//! A CloudTrail event is linked by everything both sides carry, not by time alone: the
//! candidates are the calls of the same service and operation (names compared without case:
//! the CLI's `delete-db-instance` is `DeleteDBInstance`) made at most a minute before it; a
//! candidate that names another region, or other resources, than the event is ruled out, and so
//! is one of another conversation than the principal's credentials are known to belong to. The
//! link is `high` confidence when the resources agree (or the credentials are the
//! conversation's), `medium` when nothing contradicts it and only one call (or one
//! conversation) fits. When calls of more than one conversation still fit, the link is
//! `ambiguous`: the agents are named, no tool call or approval is guessed.
//!
//! The credentials of a principal are learned from high-confidence links: afterwards, that
//! principal's other CloudTrail events are the conversation's too (a change made without a
//! logged tool call still names its agent), and the user agents seen with those links are the
//! agent's own clients ([`Linker::foreign_client`]). SQL rules read the links as the table
//! `agent_links`; the engine names the agent, session and approval of each change in every
//! finding whose events an agent made.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::event::{EventSummary, Summaries};
use crate::fields::{column, str_at};

/// A call is linked to CloudTrail events up to this long after it (and this little before:
/// clocks differ).
pub const LINK_AFTER_MS: i64 = 60_000;
pub const LINK_SKEW_MS: i64 = 5_000;
/// At most this many calls, decisions and learned credentials are kept (oldest go first).
pub const MAX_CALLS: usize = 100_000;

#[derive(Debug, Clone)]
struct Call {
    time: i64,
    agent: Option<String>,
    /// The person the agent works for, as its telemetry names them.
    human: Option<String>,
    conversation: Option<String>,
    tool_call: String,
    tool: Option<String>,
    /// The region the call's arguments name (`--region`), if any.
    region: Option<String>,
    /// Resource ids, names and ARNs the call's arguments name, lowercased.
    resources: Vec<String>,
}

#[derive(Debug, Clone)]
struct Decision {
    decision: String,
    source: Option<String>,
}

/// The approval state of a linked call.
pub fn approval(decision: Option<(&str, Option<&str>)>) -> &'static str {
    match decision {
        None => "no_decision",
        Some((d, _)) if matches!(d.to_ascii_lowercase().as_str(), "reject" | "rejected" | "deny" | "denied" | "block" | "abort") => "rejected_but_executed",
        Some((_, Some(src))) if src.to_ascii_lowercase().contains("user") || src.to_ascii_lowercase().contains("human") => "human_approved",
        Some(_) => "auto_approved",
    }
}

/// What the linker says of one CloudTrail event.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// `linked` or `ambiguous`.
    pub state: &'static str,
    /// `high` (resources or known credentials agree), `medium` (nothing contradicts it and only
    /// one call or conversation fits), `none` when ambiguous.
    pub confidence: &'static str,
    /// The agent; for an ambiguous link, every candidate agent (`a or b`).
    pub agent: Option<String>,
    pub human: Option<String>,
    pub conversation: Option<String>,
    pub tool_call: Option<String>,
    pub tool: Option<String>,
    /// `human_approved`, `auto_approved`, `rejected_but_executed`, `no_decision`; `ambiguous`
    /// when more than one conversation's call fits; `no_tool_call` when only the principal's
    /// learned credentials name the conversation.
    pub approval: &'static str,
    pub decision: Option<String>,
    pub decided_by: Option<String>,
    pub call_time: Option<i64>,
    /// How many calls fit (1 unless ambiguous).
    pub candidates: usize,
}

/// What a principal's credentials are known to belong to (learned from high-confidence links).
#[derive(Debug, Clone)]
struct Owner {
    agent: Option<String>,
    human: Option<String>,
    conversation: Option<String>,
    /// User agents seen on the principal's linked events: the agent's own clients.
    clients: HashSet<String>,
}

#[derive(Default)]
pub struct Linker {
    /// (service, operation), lowercase -> calls in time order.
    calls: HashMap<(String, String), VecDeque<Arc<Call>>>,
    /// (conversation, tool call id) -> decision.
    decisions: HashMap<(String, String), Decision>,
    order: VecDeque<(String, String)>,
    decision_order: VecDeque<(String, String)>,
    /// principal (`actor.user.uid`) -> whose credentials they are.
    owners: HashMap<String, Owner>,
    owner_order: VecDeque<String>,
    /// Changes not linked yet: their tool call may be read after them (another batch, another
    /// topic). Kept for [`PENDING_MS`] of event time, at most [`MAX_PENDING`].
    pending: VecDeque<EventSummary>,
    pub evicted: u64,
}

/// How long (event time) a change waits for its tool call to be read.
pub const PENDING_MS: i64 = 10 * 60_000;
pub const MAX_PENDING: usize = 10_000;

/// The first authorization's decision and policy name of each row.
fn first_authorization(batch: &RecordBatch, row: usize) -> Option<(String, Option<String>)> {
    let list = column(batch, "actor")?.as_struct_opt()?.column_by_name("authorizations")?.as_list_opt::<i32>()?.clone();
    if list.is_null(row) || list.value_length(row) == 0 {
        return None;
    }
    let items = list.value(row);
    let st = items.as_struct_opt()?;
    let decision = st.column_by_name("decision")?.as_string_opt::<i32>()?;
    if decision.is_null(0) {
        return None;
    }
    let policy = st.column_by_name("policy").and_then(|p| p.as_struct_opt().cloned()).and_then(|p| p.column_by_name("name").cloned());
    let source = policy.as_ref().and_then(|p| p.as_string_opt::<i32>()).filter(|p| p.is_valid(0)).map(|p| p.value(0).to_string());
    Some((decision.value(0).to_string(), source))
}

/// The region of a row's first resource that names one (a tool call's `--region`).
fn resource_region(resources: &Option<ArrayRef>, row: usize) -> Option<String> {
    let list = resources.as_ref()?.as_list_opt::<i32>()?;
    if list.is_null(row) {
        return None;
    }
    let items = list.value(row);
    let region = items.as_struct_opt()?.column_by_name("region").cloned();
    (0..items.len()).find_map(|i| str_at(&region, i).map(str::to_string))
}

/// The names one resource uid or name goes by, lowercased: itself, and for an ARN its last
/// part (`arn:aws:ec2:...:instance/i-1` is also `i-1`; `arn:aws:s3:::b` is also `b`).
pub fn resource_names(v: &str) -> impl Iterator<Item = String> {
    let v = v.to_ascii_lowercase();
    let tail = v.starts_with("arn:").then(|| v.rsplit([':', '/']).next().unwrap_or_default().to_string()).filter(|t| !t.is_empty());
    std::iter::once(v).chain(tail)
}

/// The names an event's resources go by (sorted, for lookups).
fn resource_keys(e: &EventSummary) -> Vec<String> {
    let mut out: Vec<String> = e.resources.iter().flat_map(|r| [&r.uid, &r.name]).flatten().flat_map(|v| resource_names(v)).collect();
    out.sort_unstable();
    out.dedup();
    out
}

impl Linker {
    /// Takes the tool calls and decisions of an API Activity batch, and learns whose
    /// credentials the principals of its CloudTrail events are.
    pub fn observe(&mut self, batch: &RecordBatch) {
        let col = |p: &str| column(batch, p);
        let (product, activity, tool, call_id) = (col("metadata.product.name"), col("activity_name"), col("api.group.name"), col("api.request.uid"));
        let (service, operation, agent, conv) = (col("api.service.name"), col("api.operation"), col("actor.app_name"), col("actor.session.uid"));
        let human = col("actor.user.name");
        let resources = batch.column_by_name("resources").cloned();
        let summaries = Summaries::new(batch);
        let mut fresh = false;
        for row in 0..batch.num_rows() {
            if str_at(&product, row) == Some("CloudTrail") {
                // Mutations only: what an agent's credentials are is learned from its changes.
                if str_at(&operation, row).is_some_and(ocelot_normalize::verbs::is_mutation) {
                    let e = summaries.get(row);
                    if e.actor_uid.is_some() {
                        self.pending.push_back(e);
                        fresh = true;
                    }
                }
                continue;
            }
            let Some(id) = str_at(&call_id, row) else { continue };
            let key = (str_at(&conv, row).unwrap_or_default().to_string(), id.to_string());
            if str_at(&activity, row) == Some("Tool Decision") {
                if let Some((decision, source)) = first_authorization(batch, row)
                    && self.decisions.insert(key.clone(), Decision { decision, source }).is_none()
                {
                    self.decision_order.push_back(key);
                }
                continue;
            }
            let (Some(svc), Some(op), Some(_)) = (str_at(&service, row), str_at(&operation, row), str_at(&tool, row)) else { continue };
            if !svc.ends_with(".amazonaws.com") || matches!(str_at(&activity, row), Some("Tool Result")) {
                continue;
            }
            let k = (svc.to_ascii_lowercase(), op.to_ascii_lowercase());
            let calls = self.calls.entry(k.clone()).or_default();
            // The same call seen twice (a span and a log record of it) is one call.
            if calls.iter().any(|c| c.tool_call == id && c.conversation.as_deref() == Some(key.0.as_str())) {
                continue;
            }
            let summary = summaries.get(row);
            let call = Arc::new(Call {
                time: summary.time,
                agent: str_at(&agent, row).map(str::to_string),
                human: str_at(&human, row).map(str::to_string),
                conversation: Some(key.0.clone()).filter(|c| !c.is_empty()),
                tool_call: id.to_string(),
                tool: str_at(&tool, row).map(str::to_string),
                region: resource_region(&resources, row),
                resources: resource_keys(&summary),
            });
            let at = calls.iter().rposition(|c| c.time <= call.time).map_or(0, |p| p + 1);
            calls.insert(at, call);
            self.order.push_back(k);
            fresh = true;
        }
        if fresh {
            self.learn();
        }
        self.bound();
    }

    /// Learns whose credentials the principals of the pending changes are, from the links their
    /// resources confirm; a linked change leaves the queue.
    fn learn(&mut self) {
        if self.calls.is_empty() {
            return;
        }
        let newest = self.pending.iter().map(|e| e.time).max().unwrap_or(i64::MIN);
        let mut keep = VecDeque::with_capacity(self.pending.len());
        for e in std::mem::take(&mut self.pending) {
            let Some(l) = self.link(&e).filter(|l| l.state == "linked" && l.confidence == "high" && l.tool_call.is_some()) else {
                if e.time >= newest.saturating_sub(PENDING_MS) {
                    keep.push_back(e);
                }
                continue;
            };
            let Some(principal) = e.actor_uid.clone() else { continue };
            let owner = self.owners.entry(principal.clone()).or_insert_with(|| {
                self.owner_order.push_back(principal.clone());
                Owner { agent: l.agent.clone(), human: l.human.clone(), conversation: l.conversation.clone(), clients: HashSet::new() }
            });
            // The latest conversation that used the credentials is theirs now.
            owner.conversation = l.conversation.clone();
            owner.agent = l.agent.clone().or(owner.agent.take());
            if let Some(ua) = e.user_agent.filter(|u| owner.clients.len() < 64 && !u.is_empty()) {
                owner.clients.insert(ua);
            }
        }
        self.pending = keep;
    }

    fn bound(&mut self) {
        while self.order.len() > MAX_CALLS {
            if let Some(k) = self.order.pop_front()
                && let Some(q) = self.calls.get_mut(&k)
            {
                q.pop_front();
                self.evicted += 1;
                if q.is_empty() {
                    self.calls.remove(&k);
                }
            }
        }
        while self.decision_order.len() > MAX_CALLS {
            if let Some(k) = self.decision_order.pop_front() {
                self.decisions.remove(&k);
            }
        }
        while self.pending.len() > MAX_PENDING {
            self.pending.pop_front();
        }
        while self.owner_order.len() > MAX_CALLS {
            if let Some(p) = self.owner_order.pop_front() {
                self.owners.remove(&p);
            }
        }
    }

    pub fn calls(&self) -> usize {
        self.order.len()
    }

    /// The link of one CloudTrail event, if any call or known credentials fit it.
    pub fn link(&self, e: &EventSummary) -> Option<Link> {
        let owner = e.actor_uid.as_ref().and_then(|p| self.owners.get(p));
        let (Some(svc), Some(op)) = (&e.service, &e.operation) else { return owner.map(Self::by_credentials) };
        let Some(calls) = self.calls.get(&(svc.to_ascii_lowercase(), op.to_ascii_lowercase())) else { return owner.map(Self::by_credentials) };
        let keys = resource_keys(e);
        // (call, strong evidence) for every call that fits.
        let mut fit: Vec<(&Call, bool)> = Vec::new();
        for c in calls.iter().rev().filter(|c| c.time - LINK_SKEW_MS <= e.time && e.time <= c.time + LINK_AFTER_MS) {
            if let (Some(a), Some(b)) = (&c.region, &e.region)
                && !a.eq_ignore_ascii_case(b)
            {
                continue;
            }
            let resources_agree = !c.resources.is_empty() && c.resources.iter().any(|r| keys.binary_search(r).is_ok());
            if !c.resources.is_empty() && !keys.is_empty() && !resources_agree {
                continue;
            }
            let credentials_agree = owner.is_some_and(|o| o.conversation.is_some() && o.conversation == c.conversation);
            if owner.is_some_and(|o| o.conversation.is_some() && o.conversation != c.conversation) && !resources_agree {
                continue;
            }
            fit.push((c, resources_agree || credentials_agree));
        }
        let strong: Vec<&Call> = fit.iter().filter(|(_, s)| *s).map(|(c, _)| *c).collect();
        let (pool, confidence) = if strong.is_empty() { (fit.iter().map(|(c, _)| *c).collect::<Vec<_>>(), "medium") } else { (strong, "high") };
        let Some(first) = pool.first() else { return owner.map(Self::by_credentials) };
        let conversations: HashSet<Option<&str>> = pool.iter().map(|c| c.conversation.as_deref()).collect();
        if conversations.len() > 1 {
            let mut agents: Vec<&str> = pool.iter().filter_map(|c| c.agent.as_deref()).collect();
            agents.sort_unstable();
            agents.dedup();
            return Some(Link {
                state: "ambiguous",
                confidence: "none",
                agent: (!agents.is_empty()).then(|| agents.join(" or ")),
                human: None,
                conversation: None,
                tool_call: None,
                tool: None,
                approval: "ambiguous",
                decision: None,
                decided_by: None,
                call_time: None,
                candidates: pool.len(),
            });
        }
        // One conversation: its latest call that fits.
        let c = first;
        let d = self.decisions.get(&(c.conversation.clone().unwrap_or_default(), c.tool_call.clone()));
        Some(Link {
            state: "linked",
            confidence,
            agent: c.agent.clone(),
            human: c.human.clone(),
            conversation: c.conversation.clone(),
            tool_call: Some(c.tool_call.clone()),
            tool: c.tool.clone(),
            approval: approval(d.map(|d| (d.decision.as_str(), d.source.as_deref()))),
            decision: d.map(|d| d.decision.clone()),
            decided_by: d.and_then(|d| d.source.clone()),
            call_time: Some(c.time),
            candidates: 1,
        })
    }

    /// A change by credentials known to be an agent's, with no tool call logged for it.
    fn by_credentials(o: &Owner) -> Link {
        Link {
            state: "linked",
            confidence: "medium",
            agent: o.agent.clone(),
            human: o.human.clone(),
            conversation: o.conversation.clone(),
            tool_call: None,
            tool: None,
            approval: "no_tool_call",
            decision: None,
            decided_by: None,
            call_time: None,
            candidates: 1,
        }
    }

    /// For credentials known to be an agent's: the agent and the clients it uses, when `e`
    /// comes from none of them (the credentials reused from another client). AWS services
    /// acting with the credentials are not clients.
    pub fn foreign_client(&self, e: &EventSummary) -> Option<(String, Vec<String>)> {
        let o = self.owners.get(e.actor_uid.as_ref()?)?;
        let ua = e.user_agent.as_deref()?;
        if o.clients.is_empty() || o.clients.contains(ua) || ua.ends_with(".amazonaws.com") || ua == "AWS Internal" {
            return None;
        }
        let mut clients: Vec<String> = o.clients.iter().cloned().collect();
        clients.sort();
        Some((o.agent.clone()?, clients))
    }

    /// The schema of `agent_links`.
    pub fn schema() -> SchemaRef {
        let s = |n: &str| Field::new(n, DataType::Utf8, true);
        Arc::new(Schema::new(vec![
            s("uid"),
            s("agent"),
            s("human"),
            s("conversation"),
            s("tool_call"),
            s("tool"),
            s("approval"),
            s("decision"),
            s("decided_by"),
            s("link"),
            s("confidence"),
            Field::new("call_time", DataType::Int64, true),
            Field::new("candidates", DataType::Int64, true),
        ]))
    }

    /// Links for the CloudTrail rows of these batches (one row per linked or ambiguous event).
    pub fn links(&self, batches: &[RecordBatch]) -> RecordBatch {
        let mut cols: [Vec<Option<String>>; 11] = Default::default();
        let (mut call_time, mut candidates) = (Vec::new(), Vec::new());
        for b in batches {
            let product = column(b, "metadata.product.name");
            let summaries = Summaries::new(b);
            for row in 0..b.num_rows() {
                if str_at(&product, row) != Some("CloudTrail") {
                    continue;
                }
                let e = summaries.get(row);
                if e.uid.is_empty() {
                    continue;
                }
                let Some(l) = self.link(&e) else { continue };
                let values = [Some(e.uid), l.agent, l.human, l.conversation, l.tool_call, l.tool, Some(l.approval.into()), l.decision, l.decided_by, Some(l.state.into()), Some(l.confidence.into())];
                for (c, v) in cols.iter_mut().zip(values) {
                    c.push(v);
                }
                call_time.push(l.call_time);
                candidates.push(Some(l.candidates as i64));
            }
        }
        let mut arrays: Vec<ArrayRef> = cols.into_iter().map(|c| Arc::new(StringArray::from(c)) as ArrayRef).collect();
        arrays.push(Arc::new(Int64Array::from(call_time)));
        arrays.push(Arc::new(Int64Array::from(candidates)));
        RecordBatch::try_new(Self::schema(), arrays).unwrap_or_else(|_| RecordBatch::new_empty(Self::schema()))
    }
}

/// The agent-link rule (`ocelot.agent-foreign-client`) as a [`Detector`]: credentials the
/// linker learned are an agent's, used from a client the agent's linked changes never came
/// from. It covers agents the registry does not know too (those it knows, the behaviour rule
/// checks against their declaration).
pub struct ForeignClient {
    meta: Arc<crate::rule::RuleMeta>,
}

impl ForeignClient {
    pub const RULE: &'static str = "ocelot.agent-foreign-client";

    pub fn new(meta: Arc<crate::rule::RuleMeta>) -> ForeignClient {
        ForeignClient { meta }
    }
}

impl crate::detector::Detector for ForeignClient {
    fn rules(&self) -> usize {
        // The rule is the behaviour rule file's, counted there.
        0
    }

    fn process(&mut self, input: &crate::detector::Input<'_>, out: &mut crate::detector::Open<'_>) {
        if input.table != "api_activity" {
            return;
        }
        for &row in input.cloudtrail {
            let ev = input.summaries.get(row);
            if ev.agent.is_some() {
                continue;
            }
            let Some((agent, clients)) = input.linker.foreign_client(&ev) else { continue };
            let ua = ev.user_agent.clone().unwrap_or_default();
            let ws = out.period(ev.time);
            let f = out.finding(&self.meta, &format!("{agent}|user_agent|{ua}"), ws, ev.time);
            f.add(&ev);
            let reason = format!("agent {agent}'s credentials (known from its telemetry) used by user agent `{ua}`, not one of the clients its changes came from ({})", clients.join("; "));
            for (k, v) in [("agent", agent), ("reason", reason), ("dimension", "user_agent".to_string()), ("value", ua)] {
                f.context.insert(k.into(), serde_json::Value::String(v));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_states() {
        assert_eq!(approval(None), "no_decision");
        assert_eq!(approval(Some(("accept", Some("config")))), "auto_approved");
        assert_eq!(approval(Some(("accept", Some("user_temporary")))), "human_approved");
        assert_eq!(approval(Some(("reject", Some("user_reject")))), "rejected_but_executed");
    }
}
