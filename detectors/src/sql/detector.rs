//! SQL rules as a [`Detector`]: one finding per result row of a rule's query, keyed by the
//! rule's `group_by` values and its window (or the suppression period of its first event).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};

use super::{text_at, Output, SqlSet};
use crate::agent_link::Linker;
use crate::detector::{Detector, Input, Open};
use crate::engine::Stats;
use crate::event::{EventSummary, Summaries};
use crate::rule::RuleMeta;

pub struct SqlDetector {
    set: SqlSet,
    metas: Vec<Arc<RuleMeta>>,
}

impl SqlDetector {
    pub fn new(set: SqlSet) -> SqlDetector {
        let metas = set.rules.iter().map(|r| Arc::new(r.meta.clone())).collect();
        SqlDetector { set, metas }
    }

    /// One finding per result row.
    fn findings(&self, o: Output, out: &mut Open<'_>) {
        let rule = &self.set.rules[o.rule];
        let meta = &self.metas[o.rule];
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
        for row in 0..o.rows.num_rows() {
            let uids = uids_at(&o.rows, row);
            // (time, uid, where) of the events the result names that the query read, oldest first.
            let mut evs: Vec<(i64, &str, (usize, usize))> =
                uids.iter().take(crate::finding::MAX_RELATED).filter_map(|u| by_uid.get(u.as_str()).map(|&(b, r)| (summaries[b].time(r), u.as_str(), (b, r)))).collect();
            evs.sort_by_key(|e| e.0);
            let Some(&(first, ..)) = evs.first() else { continue };
            let group = if rule.group_by.is_empty() { "-".to_string() } else { rule.group_by.iter().map(|g| text_at(&o.rows, g, row).unwrap_or_default()).collect::<Vec<_>>().join("|") };
            let ws = o.window_start.unwrap_or_else(|| out.period(first));
            let f = out.finding(meta, &group, ws, first);
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
                if let Some(v) = text_at(&o.rows, field.name(), row) {
                    f.context.insert(field.name().clone(), serde_json::Value::String(v));
                }
            }
        }
    }
}

impl Detector for SqlDetector {
    fn rules(&self) -> usize {
        self.set.rules.len()
    }

    fn process(&mut self, input: &Input<'_>, out: &mut Open<'_>) {
        for o in self.set.process(input.batch, input.table, input.linker) {
            self.findings(o, out);
        }
    }

    fn advance(&mut self, watermark: i64, linker: &Linker, out: &mut Open<'_>) {
        for o in self.set.advance(watermark, linker) {
            self.findings(o, out);
        }
    }

    fn horizon_ms(&self) -> i64 {
        self.set.rules.iter().filter_map(|r| r.window.as_ref().map(|w| w.size_ms + r.lateness_ms)).max().unwrap_or(0)
    }

    fn stats(&self, stats: &mut Stats) {
        for i in 0..self.set.rules.len() {
            let s = self.set.stats(i);
            stats.sql_buffered_bytes += s.buffered_bytes;
            stats.sql_budget_exceeded += s.budget_exceeded;
            stats.late_events += s.late_events;
        }
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
    text_at(rows, "uid", row).into_iter().collect()
}
