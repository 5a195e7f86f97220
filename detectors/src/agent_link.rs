//! Which AI-agent tool call made a CloudTrail change, and what the human decided about it.
//!
//! Agent telemetry (OTLP spans and logs, MCP) normalizes to API Activity rows: a tool call that
//! runs an AWS command carries the call as CloudTrail names it (`api.service.name`,
//! `api.operation`), its id (`api.request.uid`), the tool (`api.group.name`), the agent
//! (`actor.app_name`) and the conversation (`actor.session.uid`); a `Tool Decision` row carries
//! the decision on a call (`actor.authorizations`). The linker keeps recent calls and decisions
//! (bounded) and links a CloudTrail event to the latest call of the same service and operation
//! made at most a minute before it (operation names compared without case: the CLI's
//! `delete-db-instance` is CloudTrail's `DeleteDBInstance`). SQL rules read the links as the
//! table `agent_links`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::fields::{column, str_at};

/// A call is linked to CloudTrail events up to this long after it (and this little before:
/// clocks differ).
pub const LINK_AFTER_MS: i64 = 60_000;
pub const LINK_SKEW_MS: i64 = 5_000;
/// At most this many calls and decisions are kept (oldest go first).
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

#[derive(Default)]
pub struct Linker {
    /// (service, operation), lowercase -> calls in time order.
    calls: HashMap<(String, String), VecDeque<Arc<Call>>>,
    /// (conversation, tool call id) -> decision.
    decisions: HashMap<(String, String), Decision>,
    order: VecDeque<(String, String)>,
    decision_order: VecDeque<(String, String)>,
    pub evicted: u64,
}

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

impl Linker {
    /// Takes the tool calls and decisions of an API Activity batch.
    pub fn observe(&mut self, batch: &RecordBatch) {
        let col = |p: &str| column(batch, p);
        let (product, activity, tool, call_id) = (col("metadata.product.name"), col("activity_name"), col("api.group.name"), col("api.request.uid"));
        let (service, operation, agent, conv) = (col("api.service.name"), col("api.operation"), col("actor.app_name"), col("actor.session.uid"));
        let human = col("actor.user.name");
        let time = batch.column_by_name("time").and_then(|t| t.as_primitive_opt::<arrow::datatypes::Int64Type>().cloned());
        let Some(time) = time else { return };
        for row in 0..batch.num_rows() {
            if str_at(&product, row) == Some("CloudTrail") {
                continue;
            }
            let Some(id) = str_at(&call_id, row) else { continue };
            let key = (str_at(&conv, row).unwrap_or_default().to_string(), id.to_string());
            if str_at(&activity, row) == Some("Tool Decision") {
                if let Some((decision, source)) = first_authorization(batch, row) {
                    if self.decisions.insert(key.clone(), Decision { decision, source }).is_none() {
                        self.decision_order.push_back(key);
                    }
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
            let call = Arc::new(Call { time: time.value(row), agent: str_at(&agent, row).map(str::to_string), human: str_at(&human, row).map(str::to_string), conversation: Some(key.0.clone()).filter(|c| !c.is_empty()), tool_call: id.to_string(), tool: str_at(&tool, row).map(str::to_string) });
            let at = calls.iter().rposition(|c| c.time <= call.time).map_or(0, |p| p + 1);
            calls.insert(at, call);
            self.order.push_back(k);
        }
        self.bound();
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
    }

    pub fn calls(&self) -> usize {
        self.order.len()
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
            Field::new("call_time", DataType::Int64, true),
        ]))
    }

    /// Links for the CloudTrail rows of these batches (one row per linked event).
    pub fn links(&self, batches: &[RecordBatch]) -> RecordBatch {
        let mut cols: [Vec<Option<String>>; 9] = Default::default();
        let mut call_time = Vec::new();
        for b in batches {
            let (product, uid, service, operation) = (column(b, "metadata.product.name"), column(b, "metadata.uid"), column(b, "api.service.name"), column(b, "api.operation"));
            let Some(time) = b.column_by_name("time").and_then(|t| t.as_primitive_opt::<arrow::datatypes::Int64Type>().cloned()) else { continue };
            for row in 0..b.num_rows() {
                if str_at(&product, row) != Some("CloudTrail") {
                    continue;
                }
                let (Some(u), Some(svc), Some(op)) = (str_at(&uid, row), str_at(&service, row), str_at(&operation, row)) else { continue };
                let t = time.value(row);
                let Some(calls) = self.calls.get(&(svc.to_ascii_lowercase(), op.to_ascii_lowercase())) else { continue };
                let Some(call) = calls.iter().rev().find(|c| c.time - LINK_SKEW_MS <= t && t <= c.time + LINK_AFTER_MS) else { continue };
                let d = self.decisions.get(&(call.conversation.clone().unwrap_or_default(), call.tool_call.clone()));
                let values = [
                    Some(u.to_string()),
                    call.agent.clone(),
                    call.human.clone(),
                    call.conversation.clone(),
                    Some(call.tool_call.clone()),
                    call.tool.clone(),
                    Some(approval(d.map(|d| (d.decision.as_str(), d.source.as_deref()))).to_string()),
                    d.map(|d| d.decision.clone()),
                    d.and_then(|d| d.source.clone()),
                ];
                for (c, v) in cols.iter_mut().zip(values) {
                    c.push(v);
                }
                call_time.push(Some(call.time));
            }
        }
        let mut arrays: Vec<ArrayRef> = cols.into_iter().map(|c| Arc::new(StringArray::from(c)) as ArrayRef).collect();
        arrays.push(Arc::new(Int64Array::from(call_time)));
        RecordBatch::try_new(Self::schema(), arrays).unwrap_or_else(|_| RecordBatch::new_empty(Self::schema()))
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
