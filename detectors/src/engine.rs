//! The engine `ocelot run` and `ocelot detect` share: OCSF batches in, findings out. It runs
//! every rule family through one interface (`detector.rs`) and keeps what they share: the
//! watermark, the agent linker and the open findings.
//!
//! Single-event rules group their hits by principal (actor and account) within a suppression
//! period: repeated hits update one finding (count, last seen, related events) whose uid is
//! derived from (rule, group, period). Correlations fire once per qualifying window. State is
//! bounded: open findings leave once their period is over (they were already emitted), and
//! correlation windows are bounded per group and in number of groups.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};

use crate::agent_link::{ForeignClient, Linker};
use crate::behaviour::{Behaviour, BehaviourDetector, BehaviourRules};
use crate::detector::{Detector, Input, Open};
use crate::event::Summaries;
use crate::fields::column;
use crate::finding::Finding;
use crate::pattern::{PatternDetector, PatternRules};
use crate::sigma::{SigmaDetector, SigmaSet};
use crate::sql::{SqlDetector, SqlSet};
use ocelot_normalize::agents::AgentRule;

/// Every kind of rule an engine runs.
pub struct RuleSets {
    pub sigma: SigmaSet,
    pub sql: Option<SqlSet>,
    pub patterns: Option<PatternRules>,
    pub behaviour: Option<BehaviourRules>,
}

impl RuleSets {
    /// Rule files that did not load, of every kind, with the reason.
    pub fn rejected(&self) -> Vec<&(std::path::PathBuf, String)> {
        let (sql, patterns, behaviour) = (self.sql.iter().flat_map(|s| &s.rejected), self.patterns.iter().flat_map(|p| &p.rejected), self.behaviour.iter().flat_map(|b| &b.rejected));
        self.sigma.rejected.iter().chain(sql).chain(patterns).chain(behaviour).collect()
    }
}

/// Default of [`EngineOptions::max_skew_ms`]: five minutes.
pub const DEFAULT_MAX_SKEW_MS: i64 = 300_000;

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Hits of one rule by one principal within this period update one finding.
    pub suppression_ms: i64,
    /// Keep every SQL window open until `finish` (replays of files, whose order need not be
    /// event-time order: nothing is late then). Streaming closes windows on the watermark.
    pub hold_windows: bool,
    /// The agents the user declared (`[[agents]]`): the scopes behaviour rules check.
    pub agents: Vec<AgentRule>,
    /// How far ahead of the processing clock an event time may move the watermark. An event
    /// dated later (a wrong clock, or a record forged to make every later event late) is still
    /// evaluated, but moves the watermark no further than now + this, and is counted.
    pub max_skew_ms: i64,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { suppression_ms: 3_600_000, hold_windows: false, agents: Vec::new(), max_skew_ms: DEFAULT_MAX_SKEW_MS }
    }
}

/// Counters the runtime exports as metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub events: u64,
    pub hits: u64,
    pub findings_emitted: u64,
    pub open_findings: usize,
    pub correlation_groups: usize,
    pub correlation_entries: usize,
    /// Bytes the SQL rules' windows hold.
    pub sql_buffered_bytes: usize,
    /// Events older than their closed SQL window or rate bucket.
    pub late_events: u64,
    /// Events dated beyond the processing clock plus `max_skew_ms`, which did not move the
    /// watermark.
    pub future_events: u64,
    pub sql_budget_exceeded: u64,
    /// Agent tool calls the linker holds.
    pub linked_calls: usize,
    /// (agent, dimension, value) triples the first-seen state holds.
    pub first_seen_values: usize,
    /// Agents whose mutation rate is followed.
    pub rate_agents: usize,
}

impl std::ops::AddAssign for Stats {
    /// Sums the counters of several engines (a detect stage runs one per route partition).
    fn add_assign(&mut self, o: Stats) {
        self.events += o.events;
        self.hits += o.hits;
        self.findings_emitted += o.findings_emitted;
        self.open_findings += o.open_findings;
        self.correlation_groups += o.correlation_groups;
        self.correlation_entries += o.correlation_entries;
        self.sql_buffered_bytes += o.sql_buffered_bytes;
        self.late_events += o.late_events;
        self.future_events += o.future_events;
        self.sql_budget_exceeded += o.sql_budget_exceeded;
        self.linked_calls += o.linked_calls;
        self.first_seen_values += o.first_seen_values;
        self.rate_agents += o.rate_agents;
    }
}

pub struct Engine {
    /// Rule files that did not load (`RuleSets::rejected`), kept to report.
    rejected: Vec<(std::path::PathBuf, String)>,
    /// Every rule family, in the order they see a batch.
    detectors: Vec<Box<dyn Detector>>,
    linker: Linker,
    open: HashMap<String, Finding>,
    watermark: i64,
    opts: EngineOptions,
    stats: Stats,
}

impl Engine {
    pub fn new(rules: RuleSets, opts: EngineOptions) -> Engine {
        let mut rejected: Vec<_> = rules.rejected().into_iter().cloned().collect();
        let RuleSets { sigma, sql, patterns, behaviour } = rules;
        let mut detectors: Vec<Box<dyn Detector>> = vec![Box::new(SigmaDetector::new(sigma))];
        detectors.extend(patterns.map(|p| Box::new(PatternDetector::new(p)) as Box<dyn Detector>));
        if let Some(b) = behaviour {
            // The agent-link rule is declared with the behaviour rules, and runs on the linker.
            let foreign = b.rules.iter().find(|r| r.meta.id == ForeignClient::RULE).map(|r| ForeignClient::new(Arc::new(r.meta.clone())));
            // The registry was checked when the config loaded; a bad entry here only disables these rules.
            match Behaviour::new(b, &opts.agents) {
                Ok(b) => detectors.push(Box::new(BehaviourDetector::new(b))),
                Err(e) => rejected.push(("[[agents]]".into(), e)),
            }
            detectors.extend(foreign.map(|f| Box::new(f) as Box<dyn Detector>));
        }
        detectors.extend(sql.map(|s| Box::new(SqlDetector::new(s)) as Box<dyn Detector>));
        Engine { rejected, detectors, linker: Linker::default(), open: HashMap::new(), watermark: i64::MIN, opts, stats: Stats::default() }
    }

    /// How many rules the engine runs, of every kind.
    pub fn rule_count(&self) -> usize {
        self.detectors.iter().map(|d| d.rules()).sum()
    }

    /// The newest event time seen (capped by the processing clock plus the allowed skew).
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// How far back in event time the engine's state reaches: every detector's horizon, the
    /// open findings' two suppression periods, and the agent linker's pending calls.
    pub fn horizon_ms(&self) -> i64 {
        let own = (2 * self.opts.suppression_ms).max(crate::agent_link::PENDING_MS);
        self.detectors.iter().map(|d| d.horizon_ms()).fold(own, i64::max)
    }

    pub fn rejected(&self) -> &[(std::path::PathBuf, String)] {
        &self.rejected
    }

    pub fn stats(&self) -> Stats {
        let mut s = Stats { open_findings: self.open.len(), linked_calls: self.linker.calls(), ..self.stats };
        for d in &self.detectors {
            d.stats(&mut s);
        }
        s
    }

    /// Runs every rule over a batch of OCSF class `table` (`api_activity`...); returns the
    /// findings it created or updated (each once).
    pub fn process(&mut self, batch: &RecordBatch, table: &str) -> Vec<Finding> {
        let filled = with_uids(batch);
        let batch = &filled;
        // Sigma rules for AWS CloudTrail read CloudTrail's events only.
        let product = column(batch, "metadata.product.name");
        let rows: Vec<usize> = match product.as_ref().and_then(|p| p.as_string_opt::<i32>()) {
            Some(p) => (0..batch.num_rows()).filter(|&i| p.is_valid(i) && p.value(i) == "CloudTrail").collect(),
            None => Vec::new(),
        };
        self.stats.events += batch.num_rows() as u64;
        let summaries = Summaries::new(batch);
        // The watermark follows event time, but never past the processing clock plus the
        // allowed skew: one record dated 2099 must not make every later event late.
        let ceiling = now_ms().saturating_add(self.opts.max_skew_ms);
        let mut newest = i64::MIN;
        for r in 0..batch.num_rows() {
            let t = summaries.time(r);
            if t > ceiling {
                self.stats.future_events += 1;
            } else {
                newest = newest.max(t);
            }
        }
        self.watermark = self.watermark.max(newest);
        if table == "api_activity" {
            self.linker.observe(batch);
        }
        let mut touched = BTreeSet::new();
        let mut out = Open::new(&mut self.open, &mut touched, self.opts.suppression_ms);
        let input = Input { batch, table, summaries: &summaries, cloudtrail: &rows, linker: &self.linker };
        for d in &mut self.detectors {
            d.process(&input, &mut out);
        }
        // A replay holds every window until `finish` (its order is the files', not time's).
        let watermark = if self.opts.hold_windows { i64::MIN } else { self.watermark };
        for d in &mut self.detectors {
            d.advance(watermark, &self.linker, &mut out);
        }
        let out = self.emit(&touched);
        // Periods that are over cannot be updated any more by events in order; keep one more
        // period for late events.
        let horizon = self.watermark.saturating_sub(2 * self.opts.suppression_ms);
        self.open.retain(|_, f| f.window_start >= horizon || f.rule.kind == "correlation" && f.last_seen >= horizon);
        out
    }

    /// Evaluates every open window (end of a replay, shutdown); returns the findings made.
    pub fn finish(&mut self) -> Vec<Finding> {
        let mut touched = BTreeSet::new();
        let mut out = Open::new(&mut self.open, &mut touched, self.opts.suppression_ms);
        for d in &mut self.detectors {
            d.flush(&self.linker, &mut out);
        }
        // A replay's order is the files', not time's: a tool call read after the finding that
        // cites its change is seen now. Every open finding names its agents again.
        if self.opts.hold_windows {
            touched.extend(self.open.keys().cloned());
        }
        self.emit(&touched)
    }

    /// The touched findings, each naming the agents behind its events.
    fn emit(&mut self, touched: &BTreeSet<String>) -> Vec<Finding> {
        let mut out = Vec::with_capacity(touched.len());
        for u in touched {
            if let Some(f) = self.open.get_mut(u) {
                name_agents(&self.linker, f);
                out.push(f.clone());
            }
        }
        self.stats.findings_emitted += out.len() as u64;
        out
    }
}

/// The batch with every null `metadata.uid` filled by the summary's derived uid, so that rules
/// (SQL rules select `metadata.uid`) can name every event they find. Untouched, and not copied,
/// when every row has one (CloudTrail's eventID, almost always).
fn with_uids(batch: &RecordBatch) -> RecordBatch {
    use arrow::array::{ArrayRef, StringArray, StructArray};
    let Some(meta) = batch.column_by_name("metadata").and_then(|m| m.as_struct_opt().cloned()) else { return batch.clone() };
    let Some(uid) = meta.column_by_name("uid").and_then(|u| u.as_string_opt::<i32>().cloned()) else { return batch.clone() };
    if uid.null_count() == 0 {
        return batch.clone();
    }
    let summaries = Summaries::new(batch);
    let filled: StringArray = (0..batch.num_rows()).map(|r| summaries.uid(r)).collect();
    let (fields, mut columns, nulls) = meta.into_parts();
    let Some(i) = fields.iter().position(|f| f.name() == "uid") else { return batch.clone() };
    columns[i] = Arc::new(filled) as ArrayRef;
    let Ok(meta) = StructArray::try_new(fields, columns, nulls) else { return batch.clone() };
    let Some(m) = batch.schema().index_of("metadata").ok() else { return batch.clone() };
    let mut cols = batch.columns().to_vec();
    cols[m] = Arc::new(meta);
    RecordBatch::try_new(batch.schema(), cols).unwrap_or_else(|_| batch.clone())
}
/// Names, in a finding whose cited events an AI agent made (whatever rule raised it), the agent,
/// its session and the approval of each change: structured in `agent_changes` (the finding's
/// `unmapped`), summed up in `agent`, `conversation`, `approval` and `human`, which the message
/// and `actor.app_name` show. An agent the registry recognized on the CloudTrail record, with no
/// tool call seen, is named with approval `no_decision`.
fn name_agents(linker: &Linker, f: &mut Finding) {
    let mut changes = Vec::new();
    let (mut agents, mut sessions, mut approvals, mut humans) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for e in &f.evidences {
        let link = linker.link(e);
        let agent = link.as_ref().and_then(|l| l.agent.clone()).or_else(|| e.agent.clone());
        let Some(agent) = agent else { continue };
        let approval = link.as_ref().map_or("no_decision", |l| l.approval);
        let mut c = serde_json::Map::new();
        c.insert("event_uid".into(), e.uid.clone().into());
        if let Some(op) = &e.operation {
            c.insert("operation".into(), op.clone().into());
        }
        c.insert("agent".into(), agent.clone().into());
        c.insert("approval".into(), approval.into());
        c.insert("link".into(), link.as_ref().map_or("registry", |l| l.state).into());
        if let Some(l) = &link {
            c.insert("confidence".into(), l.confidence.into());
            for (k, v) in [("session", &l.conversation), ("tool_call", &l.tool_call), ("tool", &l.tool), ("decided_by", &l.decided_by), ("human", &l.human)] {
                if let Some(v) = v {
                    c.insert(k.into(), v.clone().into());
                }
            }
            if l.candidates > 1 {
                c.insert("candidates".into(), l.candidates.into());
            }
            sessions.extend(l.conversation.clone());
            if l.approval == "human_approved" {
                humans.extend(l.human.clone());
            }
        }
        agents.push(agent);
        approvals.push(approval.to_string());
        changes.push(serde_json::Value::Object(c));
    }
    if changes.is_empty() {
        return;
    }
    let joined = |mut v: Vec<String>| {
        v.sort();
        v.dedup();
        v.join(", ")
    };
    let ctx = &mut f.context;
    // What a rule established itself (its own agent link, a behaviour rule's reason) stays.
    for (k, v) in [("agent", joined(agents)), ("conversation", joined(sessions)), ("approval", joined(approvals)), ("approved_by", joined(humans))] {
        if !v.is_empty() && ctx.get(k).and_then(serde_json::Value::as_str).is_none_or(str::is_empty) {
            ctx.insert(k.into(), v.into());
        }
    }
    ctx.insert("agent_changes".into(), serde_json::Value::Array(changes));
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
