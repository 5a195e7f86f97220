//! The engine `ocelot run` and `ocelot detect` share: OCSF batches in, findings out.
//!
//! Single-event rules group their hits by principal (actor and account) within a suppression
//! period: repeated hits update one finding (count, last seen, related events) whose uid is
//! derived from (rule, group, period). Correlations fire once per qualifying window. State is
//! bounded: open findings leave once their period is over (they were already emitted), and
//! correlation windows are bounded per group and in number of groups.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};

use crate::agent_link::Linker;
use crate::behaviour::{Behaviour, BehaviourRules};
use crate::event::{EventSummary, Summaries};
use crate::fields::{column, str_at, BatchFields, RowJson, Source};
use crate::finding::Finding;
use crate::pattern::PatternRules;
use crate::rule::RuleMeta;
use crate::sigma::correlate::{Entry, State};
use crate::sigma::SigmaSet;
use crate::sql::{self, SqlSet};
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

pub struct Engine {
    /// Rule files that did not load (`RuleSets::rejected`), kept to report.
    rejected: Vec<(std::path::PathBuf, String)>,
    sigma: SigmaSet,
    sql: Option<SqlSet>,
    sql_metas: Vec<Arc<RuleMeta>>,
    patterns: Option<PatternRules>,
    pattern_metas: Vec<Arc<RuleMeta>>,
    behaviour: Option<Behaviour>,
    behaviour_metas: Vec<Arc<RuleMeta>>,
    metas: Vec<Arc<RuleMeta>>,
    corr_metas: Vec<Arc<RuleMeta>>,
    /// Per Sigma rule: the (correlation, position in it) that use its hits.
    uses: Vec<Vec<(usize, usize)>>,
    corr_sources: Vec<Source>,
    /// Per correlation, per referenced rule: indices into `corr_sources` of the group fields
    /// and of the value field.
    corr_fields: Vec<Vec<(Vec<usize>, Option<usize>)>>,
    state: State,
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
        let behaviour_metas = behaviour.as_ref().map(|b| b.rules.iter().map(|r| Arc::new(r.meta.clone())).collect()).unwrap_or_default();
        // The registry was checked when the config loaded; a bad entry here only disables these rules.
        let behaviour = behaviour.and_then(|b| Behaviour::new(b, &opts.agents).map_err(|e| rejected.push(("[[agents]]".into(), e))).ok());
        let pattern_metas = patterns.as_ref().map(|p| p.rules.iter().map(|r| Arc::new(r.meta.clone())).collect()).unwrap_or_default();
        let sql_metas = sql.as_ref().map(|s| s.rules.iter().map(|r| Arc::new(r.meta.clone())).collect()).unwrap_or_default();
        let metas = sigma.rules.iter().map(|r| Arc::new(r.meta.clone())).collect();
        let corr_metas = sigma.correlations.iter().map(|c| Arc::new(c.meta.clone())).collect();
        let mut uses = vec![Vec::new(); sigma.rules.len()];
        let mut corr_sources: Vec<Source> = Vec::new();
        let mut source = |name: &str| {
            let s = Source::of(Some(name));
            corr_sources.iter().position(|x| *x == s).unwrap_or_else(|| {
                corr_sources.push(s);
                corr_sources.len() - 1
            })
        };
        let mut corr_fields = Vec::new();
        for (ci, c) in sigma.correlations.iter().enumerate() {
            let mut per_rule = Vec::new();
            for (pos, &r) in c.rules.iter().enumerate() {
                uses[r].push((ci, pos));
                let group = c.group_fields[pos].iter().map(|f| source(f)).collect();
                let value = c.value_fields[pos].as_deref().map(&mut source);
                per_rule.push((group, value));
            }
            corr_fields.push(per_rule);
        }
        Engine {
            rejected,
            sigma,
            sql,
            sql_metas,
            patterns,
            pattern_metas,
            behaviour,
            behaviour_metas,
            metas,
            corr_metas,
            uses,
            corr_sources,
            corr_fields,
            state: State::default(),
            linker: Linker::default(),
            open: HashMap::new(),
            watermark: i64::MIN,
            opts,
            stats: Stats::default(),
        }
    }

    pub fn rules(&self) -> &SigmaSet {
        &self.sigma
    }

    pub fn sql(&self) -> Option<&SqlSet> {
        self.sql.as_ref()
    }

    pub fn patterns(&self) -> Option<&PatternRules> {
        self.patterns.as_ref()
    }

    pub fn behaviour(&self) -> Option<&Behaviour> {
        self.behaviour.as_ref()
    }

    pub fn rejected(&self) -> &[(std::path::PathBuf, String)] {
        &self.rejected
    }

    pub fn stats(&self) -> Stats {
        let b = self.behaviour.as_ref().map(Behaviour::stats).unwrap_or_default();
        let sql: Vec<sql::RuleStats> = self.sql.as_ref().map(|s| (0..s.rules.len()).map(|i| s.stats(i)).collect()).unwrap_or_default();
        Stats {
            open_findings: self.open.len(),
            correlation_groups: self.state.groups(),
            correlation_entries: self.state.entries(),
            sql_buffered_bytes: sql.iter().map(|s| s.buffered_bytes).sum(),
            sql_budget_exceeded: sql.iter().map(|s| s.budget_exceeded).sum(),
            linked_calls: self.linker.calls(),
            first_seen_values: b.first_seen_values,
            rate_agents: b.rate_agents,
            late_events: sql.iter().map(|s| s.late_events).sum::<u64>() + b.rate_late_events,
            ..self.stats
        }
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
        let hits = self.sigma.eval_rows(batch, &rows);
        self.stats.hits += hits.len() as u64;
        let corr_values = (!self.sigma.correlations.is_empty()).then(|| BatchFields::new(batch, &self.corr_sources));
        let mut json = RowJson::default();
        let mut touched: BTreeSet<String> = BTreeSet::new();
        // Hits come in row order: one summary per row, and only if a finding still keeps
        // evidence (most hits of a busy rule only count). The uid of (rule, principal, period)
        // is computed once per batch: a busy principal hits the same finding row after row.
        let mut row_summary: Option<(usize, EventSummary)> = None;
        let mut uids: foldhash::HashMap<(usize, &str, &str, i64), String> = Default::default();
        for hit in hits {
            let row = hit.row;
            let time = summaries.time(row);
            if self.sigma.rules[hit.rule].generate {
                let (actor, account) = summaries.principal_parts(row);
                let ws = time.div_euclid(self.opts.suppression_ms) * self.opts.suppression_ms;
                let f = match uids.get(&(hit.rule, actor, account, ws)).and_then(|u| self.open.get_mut(u)) {
                    Some(f) => f,
                    None => {
                        let f = open_finding(&mut self.open, &mut touched, &self.metas[hit.rule], &format!("{actor}|{account}"), ws, time);
                        uids.insert((hit.rule, actor, account, ws), f.uid.clone());
                        f
                    }
                };
                match summaries.uid_ref(row) {
                    Some(uid) if f.saturated() => {
                        f.count_event(uid, time);
                    }
                    _ => f.add(summary_of(&mut row_summary, &summaries, row)),
                }
            }
            let Some(values) = corr_values.as_ref().filter(|_| !self.uses[hit.rule].is_empty()) else { continue };
            // A correlation keeps the uid and time of each hit; the summary is built when it fires.
            let uid = summaries.uid(row).unwrap_or_default();
            for &(ci, pos) in &self.uses[hit.rule] {
                json.reset(hit.row);
                let (group_idx, value_idx) = &self.corr_fields[ci][pos];
                let group: Vec<String> = group_idx.iter().map(|&i| values.value(i, hit.row, &mut json).map(|v| v.into_owned()).unwrap_or_default()).collect();
                let value = value_idx.and_then(|i| values.value(i, hit.row, &mut json).map(|v| v.into_owned()));
                let c = &self.sigma.correlations[ci];
                let entry = Entry { time, rule: pos, value, uid: uid.clone() };
                if let Some(fired) = self.state.observe(ci, c, group.join("|"), entry) {
                    let ev = summary_of(&mut row_summary, &summaries, row);
                    let first = fired.events.iter().map(|e| e.time).min().unwrap_or(ev.time);
                    let span = c.timespan_ms.max(1);
                    let mut f = Finding::new(self.corr_metas[ci].clone(), fired.group.clone(), first.div_euclid(span) * span, ev.time);
                    f.add(ev);
                    f.count = fired.events.len() as u64;
                    f.first_seen = first;
                    f.related = fired.events.iter().map(|e| e.uid.clone()).take(crate::finding::MAX_RELATED).collect();
                    f.context.insert("correlation".into(), serde_json::json!({"group_by": c.group_fields[pos], "timespan_ms": c.timespan_ms}));
                    touched.insert(f.uid.clone());
                    self.open.insert(f.uid.clone(), f);
                }
            }
        }
        if let Some(p) = &self.patterns {
            // The columns hits read, resolved once per batch.
            let mut cols: HashMap<&str, Option<arrow::array::ArrayRef>> = HashMap::new();
            const WHO: [(&str, &str); 3] = [("agent", "actor.app_name"), ("conversation", "actor.session.uid"), ("human", "actor.user.name")];
            for path in p.rules.iter().flat_map(|r| r.group_by.iter().map(String::as_str)).chain(WHO.map(|(_, p)| p)) {
                cols.entry(path).or_insert_with(|| column(batch, path));
            }
            let text = |path: &str, row: usize| cols.get(path).and_then(|c| str_at(c, row)).map(str::to_string);
            for hit in p.eval(batch, table) {
                let rule = &p.rules[hit.rule];
                let ev = summaries.get(hit.row);
                let group = rule.group_by.iter().map(|c| text(c, hit.row).unwrap_or_default()).collect::<Vec<_>>().join("|");
                let ws = ev.time.div_euclid(self.opts.suppression_ms) * self.opts.suppression_ms;
                let f = open_finding(&mut self.open, &mut touched, &self.pattern_metas[hit.rule], &group, ws, ev.time);
                f.add(&ev);
                let mut matched: Vec<String> = f.context.get("matched").and_then(|m| m.as_str()).map(|m| m.split(", ").map(str::to_string).collect()).unwrap_or_default();
                for m in hit.matched {
                    if !matched.contains(&m) {
                        matched.push(m);
                    }
                }
                f.context.insert("matched".into(), serde_json::Value::String(matched.join(", ")));
                f.context.entry("text").or_insert_with(|| serde_json::Value::String(hit.text.chars().take(500).collect()));
                // Who: the agent, its conversation and the person it works for, as telemetry names them.
                for (key, path) in WHO {
                    if let Some(v) = text(path, hit.row) {
                        f.context.entry(key).or_insert(serde_json::Value::String(v));
                    }
                }
            }
        }
        if let Some(b) = self.behaviour.as_mut() {
            for hit in b.eval(batch, &rows, |r| summaries.time(r)) {
                let ev = summaries.get(hit.row);
                let ws = hit.window_start.unwrap_or_else(|| ev.time.div_euclid(self.opts.suppression_ms) * self.opts.suppression_ms);
                let f = open_finding(&mut self.open, &mut touched, &self.behaviour_metas[hit.rule], &hit.group, ws, ev.time);
                f.add(&ev);
                f.count = f.count.max(hit.count.unwrap_or(0));
                // The latest hit's reason, counts and baseline.
                for (k, v) in hit.context {
                    f.context.insert(k.into(), serde_json::Value::String(v));
                }
            }
        }
        if table == "api_activity" {
            self.linker.observe(batch);
            // Credentials the linker learned are an agent's, used from a client the agent's
            // linked changes never came from: credential reuse, for agents the registry does
            // not know too (those it knows, the behaviour rule checks by their declaration).
            if let Some(meta) = self.behaviour_metas.iter().find(|m| m.id == "ocelot.agent-foreign-client").cloned() {
                for &row in &rows {
                    let ev = summaries.get(row);
                    if ev.agent.is_some() {
                        continue;
                    }
                    let Some((agent, clients)) = self.linker.foreign_client(&ev) else { continue };
                    let ua = ev.user_agent.clone().unwrap_or_default();
                    let ws = ev.time.div_euclid(self.opts.suppression_ms) * self.opts.suppression_ms;
                    let f = open_finding(&mut self.open, &mut touched, &meta, &format!("{agent}|user_agent|{ua}"), ws, ev.time);
                    f.add(&ev);
                    let reason = format!("agent {agent}'s credentials (known from its telemetry) used by user agent `{ua}`, not one of the clients its changes came from ({})", clients.join("; "));
                    for (k, v) in [("agent", agent), ("reason", reason), ("dimension", "user_agent".to_string()), ("value", ua)] {
                        f.context.insert(k.into(), serde_json::Value::String(v));
                    }
                }
            }
        }
        if let Some(sql) = self.sql.as_mut() {
            let watermark = if self.opts.hold_windows { i64::MIN } else { self.watermark };
            let outputs = sql.process(batch, table, watermark, &self.linker);
            for o in outputs {
                for uid in self.sql_findings(o) {
                    touched.insert(uid);
                }
            }
        }
        for u in &touched {
            if let Some(f) = self.open.get_mut(u) {
                name_agents(&self.linker, f);
            }
        }
        let out: Vec<Finding> = touched.iter().filter_map(|u| self.open.get(u).cloned()).collect();
        self.stats.findings_emitted += out.len() as u64;
        // Periods that are over cannot be updated any more by events in order; keep one more
        // period for late events.
        let horizon = self.watermark.saturating_sub(2 * self.opts.suppression_ms);
        self.open.retain(|_, f| f.window_start >= horizon || f.rule.kind == "correlation" && f.last_seen >= horizon);
        out
    }

    /// Evaluates every open window (end of a replay, shutdown); returns the findings made.
    pub fn finish(&mut self) -> Vec<Finding> {
        let Some(sql) = self.sql.as_mut() else { return Vec::new() };
        let outputs = sql.flush(&self.linker);
        let mut touched = BTreeSet::new();
        for o in outputs {
            touched.extend(self.sql_findings(o));
        }
        // A replay's order is the files', not time's: a tool call read after the finding that
        // cites its change is seen now. Every open finding names its agents again.
        if self.opts.hold_windows {
            touched.extend(self.open.keys().cloned());
        }
        for u in &touched {
            if let Some(f) = self.open.get_mut(u) {
                name_agents(&self.linker, f);
            }
        }
        let out: Vec<Finding> = touched.iter().filter_map(|u| self.open.get(u).cloned()).collect();
        self.stats.findings_emitted += out.len() as u64;
        out
    }

    /// One finding per result row of a SQL rule; returns their uids.
    fn sql_findings(&mut self, o: sql::Output) -> Vec<String> {
        let rule = &self.sql.as_ref().expect("outputs come from the SQL set").rules[o.rule];
        let meta = self.sql_metas[o.rule].clone();
        // The rows the query read, by uid (borrowed: nothing is copied for the rows no result
        // names). A summary is built only for an event a finding still keeps as evidence.
        let summaries: Vec<Summaries> = o.inputs.iter().map(Summaries::new).collect();
        let mut by_uid: foldhash::HashMap<std::borrow::Cow<str>, (usize, usize)> = Default::default();
        for (b, s) in summaries.iter().enumerate() {
            for r in 0..o.inputs[b].num_rows() {
                by_uid.entry(s.uid_cow(r).unwrap_or_default()).or_insert((b, r));
            }
        }
        let mut built: HashMap<(usize, usize), EventSummary> = HashMap::new();
        let mut made = Vec::new();
        for row in 0..o.rows.num_rows() {
            let uids = uids_at(&o.rows, row);
            // (time, uid, where) of the events the result names that the query read, oldest first.
            let mut evs: Vec<(i64, &str, (usize, usize))> =
                uids.iter().take(crate::finding::MAX_RELATED).filter_map(|u| by_uid.get(u.as_str()).map(|&(b, r)| (summaries[b].time(r), u.as_str(), (b, r)))).collect();
            evs.sort_by_key(|e| e.0);
            let Some(&(first, ..)) = evs.first() else { continue };
            let group = if rule.group_by.is_empty() { "-".to_string() } else { rule.group_by.iter().map(|g| sql::text_at(&o.rows, g, row).unwrap_or_default()).collect::<Vec<_>>().join("|") };
            let ws = o.window_start.unwrap_or_else(|| first.div_euclid(self.opts.suppression_ms) * self.opts.suppression_ms);
            let fresh = Finding::new(meta.clone(), group, ws, first);
            let f = self.open.entry(fresh.uid.clone()).or_insert(fresh);
            for (time, uid, (b, r)) in evs {
                if f.saturated() {
                    f.count_event(uid, time);
                } else {
                    f.add(built.entry((b, r)).or_insert_with(|| summaries[b].get(r)));
                }
            }
            // Every event the result names counts, evidence kept or not.
            f.count = f.count.max(uids.len() as u64);
            for (i, field) in o.rows.schema().fields().iter().enumerate() {
                if matches!(field.name().as_str(), "uids" | "uid") || o.rows.column(i).is_null(row) {
                    continue;
                }
                if let Some(v) = sql::text_at(&o.rows, field.name(), row) {
                    f.context.insert(field.name().clone(), serde_json::Value::String(v));
                }
            }
            made.push(f.uid.clone());
        }
        made
    }
}

/// The summary of `row`, built once however many rules hit it.
fn summary_of<'c>(cache: &'c mut Option<(usize, EventSummary)>, summaries: &Summaries, row: usize) -> &'c EventSummary {
    if cache.as_ref().is_none_or(|(r, _)| *r != row) {
        *cache = Some((row, summaries.get(row)));
    }
    &cache.as_ref().expect("just filled").1
}

/// The open finding of (rule, group, window), made (first seen at `time`) when there is none;
/// marked touched (emitted after the batch). Nothing is built when it exists but its uid.
fn open_finding<'o>(open: &'o mut HashMap<String, Finding>, touched: &mut BTreeSet<String>, rule: &Arc<RuleMeta>, group: &str, window_start: i64, time: i64) -> &'o mut Finding {
    let uid = crate::finding::finding_uid(&rule.id, group, window_start);
    if !touched.contains(&uid) {
        touched.insert(uid.clone());
    }
    match open.entry(uid) {
        MapEntry::Occupied(e) => e.into_mut(),
        MapEntry::Vacant(e) => e.insert(Finding::new(rule.clone(), group.to_string(), window_start, time)),
    }
}

/// The evidence uids of a result row: a `uids` list or a `uid` string.
fn uids_at(rows: &RecordBatch, row: usize) -> Vec<String> {
    if let Some(list) = rows.column_by_name("uids").and_then(|c| c.as_list_opt::<i32>().cloned()) {
        if list.is_null(row) {
            return Vec::new();
        }
        let v = list.value(row);
        return match v.as_string_opt::<i32>() {
            Some(s) => s.iter().flatten().map(str::to_string).collect(),
            None => Vec::new(),
        };
    }
    sql::text_at(rows, "uid", row).into_iter().collect()
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
