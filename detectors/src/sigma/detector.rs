//! Sigma rules and their correlations as a [`Detector`]: single-event rules group their hits by
//! principal (actor and account) within the suppression period; a correlation fires once per
//! qualifying window with the hits that made it.

use std::sync::Arc;

use super::correlate::{Entry, State};
use super::SigmaSet;
use crate::detector::{Detector, Input, Open};
use crate::engine::Stats;
use crate::event::{EventSummary, Summaries};
use crate::fields::{BatchFields, RowJson, Source};
use crate::finding::Finding;
use crate::rule::RuleMeta;

pub struct SigmaDetector {
    set: SigmaSet,
    metas: Vec<Arc<RuleMeta>>,
    corr_metas: Vec<Arc<RuleMeta>>,
    /// Per Sigma rule: the (correlation, position in it) that use its hits.
    uses: Vec<Vec<(usize, usize)>>,
    corr_sources: Vec<Source>,
    /// Per correlation, per referenced rule: indices into `corr_sources` of the group fields
    /// and of the value field.
    corr_fields: Vec<Vec<(Vec<usize>, Option<usize>)>>,
    state: State,
    hits: u64,
}

impl SigmaDetector {
    pub fn new(set: SigmaSet) -> SigmaDetector {
        let metas = set.rules.iter().map(|r| Arc::new(r.meta.clone())).collect();
        let corr_metas = set.correlations.iter().map(|c| Arc::new(c.meta.clone())).collect();
        let mut uses = vec![Vec::new(); set.rules.len()];
        let mut corr_sources: Vec<Source> = Vec::new();
        let mut source = |name: &str| {
            let s = Source::of(Some(name));
            corr_sources.iter().position(|x| *x == s).unwrap_or_else(|| {
                corr_sources.push(s);
                corr_sources.len() - 1
            })
        };
        let mut corr_fields = Vec::new();
        for (ci, c) in set.correlations.iter().enumerate() {
            let mut per_rule = Vec::new();
            for (pos, &r) in c.rules.iter().enumerate() {
                uses[r].push((ci, pos));
                let group = c.group_fields[pos].iter().map(|f| source(f)).collect();
                let value = c.value_fields[pos].as_deref().map(&mut source);
                per_rule.push((group, value));
            }
            corr_fields.push(per_rule);
        }
        SigmaDetector { set, metas, corr_metas, uses, corr_sources, corr_fields, state: State::default(), hits: 0 }
    }
}

impl Detector for SigmaDetector {
    fn rules(&self) -> usize {
        self.set.rules.len()
    }

    fn process(&mut self, input: &Input<'_>, out: &mut Open<'_>) {
        let (batch, summaries) = (input.batch, input.summaries);
        let hits = self.set.eval_rows(batch, input.cloudtrail);
        self.hits += hits.len() as u64;
        let corr_values = (!self.set.correlations.is_empty()).then(|| BatchFields::new(batch, &self.corr_sources));
        let mut json = RowJson::default();
        // Hits come in row order: one summary per row, and only if a finding still keeps
        // evidence (most hits of a busy rule only count). The uid of (rule, principal, period)
        // is computed once per batch: a busy principal hits the same finding row after row.
        let mut row_summary: Option<(usize, EventSummary)> = None;
        let mut uids: foldhash::HashMap<(usize, &str, &str, i64), String> = Default::default();
        for hit in hits {
            let row = hit.row;
            let time = summaries.time(row);
            if self.set.rules[hit.rule].generate {
                let (actor, account) = summaries.principal_parts(row);
                let ws = out.period(time);
                let key = (hit.rule, actor, account, ws);
                let f = match uids.get(&key).and_then(|u| out.get_mut(u)) {
                    Some(f) => f,
                    None => {
                        let f = out.finding(&self.metas[hit.rule], &format!("{actor}|{account}"), ws, time);
                        uids.insert(key, f.uid.clone());
                        f
                    }
                };
                match summaries.uid_ref(row) {
                    Some(uid) if f.saturated() => {
                        f.count_event(uid, time);
                    }
                    _ => f.add(summary_of(&mut row_summary, summaries, row)),
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
                let c = &self.set.correlations[ci];
                let entry = Entry { time, rule: pos, value, uid: uid.clone() };
                if let Some(fired) = self.state.observe(ci, c, group.join("|"), entry) {
                    let ev = summary_of(&mut row_summary, summaries, row);
                    let first = fired.events.iter().map(|e| e.time).min().unwrap_or(ev.time);
                    let span = c.timespan_ms.max(1);
                    let mut f = Finding::new(self.corr_metas[ci].clone(), fired.group.clone(), first.div_euclid(span) * span, ev.time);
                    f.add(ev);
                    f.count = fired.events.len() as u64;
                    f.first_seen = first;
                    f.related = fired.events.iter().map(|e| e.uid.clone()).take(crate::finding::MAX_RELATED).collect();
                    f.context.insert("correlation".into(), serde_json::json!({"group_by": c.group_fields[pos], "timespan_ms": c.timespan_ms}));
                    out.insert(f);
                }
            }
        }
    }

    /// Correlations fire as their hits arrive: no window waits for the watermark.
    fn flush(&mut self, _linker: &crate::agent_link::Linker, _out: &mut Open<'_>) {}

    fn horizon_ms(&self) -> i64 {
        self.set.correlations.iter().map(|c| c.timespan_ms).max().unwrap_or(0)
    }

    fn stats(&self, stats: &mut Stats) {
        stats.hits += self.hits;
        stats.correlation_groups += self.state.groups();
        stats.correlation_entries += self.state.entries();
    }
}

/// The summary of `row`, built once however many rules hit it.
fn summary_of<'c>(cache: &'c mut Option<(usize, EventSummary)>, summaries: &Summaries, row: usize) -> &'c EventSummary {
    if cache.as_ref().is_none_or(|(r, _)| *r != row) {
        *cache = Some((row, summaries.get(row)));
    }
    &cache.as_ref().expect("just filled").1
}
