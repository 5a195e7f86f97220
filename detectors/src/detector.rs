//! The one interface every rule family implements (Sigma and its correlations, SQL, pattern,
//! behaviour and agent-link rules): the engine (`engine.rs`) holds a list of them and feeds each
//! the same batch, then the watermark, then the end of input.
//!
//! What detectors share is kept out of them: the open findings (suppression and uids are the
//! engine's, so a finding is one finding whichever family touches it), the agent linker (SQL
//! rules read its links, every finding names its agents from it) and the watermark.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::RecordBatch;

use crate::agent_link::Linker;
use crate::engine::Stats;
use crate::event::Summaries;
use crate::finding::{finding_uid, Finding};
use crate::rule::RuleMeta;

/// A rule family the engine runs.
pub trait Detector: Send {
    /// How many rules it runs.
    fn rules(&self) -> usize;
    /// Evaluates a batch; the findings it creates or updates go to `out`.
    fn process(&mut self, input: &Input<'_>, out: &mut Open<'_>);
    /// Event time has reached `watermark`: evaluate the windows it completes.
    fn advance(&mut self, _watermark: i64, _linker: &Linker, _out: &mut Open<'_>) {}
    /// The input is over (end of a replay, shutdown): evaluate every window still open.
    fn flush(&mut self, linker: &Linker, out: &mut Open<'_>) {
        self.advance(i64::MAX, linker, out);
    }
    /// Adds its counters to the engine's.
    fn stats(&self, _stats: &mut Stats) {}
    /// How far back in event time its state reaches (windows, correlation spans, baselines):
    /// replaying that much of its input rebuilds the state. The detect stage checkpoints by it
    /// (`ocelot-pipeline`'s `detect_stage.rs`).
    fn horizon_ms(&self) -> i64 {
        0
    }
}

/// One batch as every detector sees it.
pub struct Input<'a> {
    pub batch: &'a RecordBatch,
    /// Its OCSF class table (`api_activity`...).
    pub table: &'a str,
    pub summaries: &'a Summaries,
    /// The rows that are CloudTrail events (what Sigma and behaviour rules read).
    pub cloudtrail: &'a [usize],
    /// Tool calls and their approvals, this batch's included.
    pub linker: &'a Linker,
}

/// The engine's open findings, as a detector adds to them. A finding is keyed by (rule, group,
/// window start): whichever detector touches it, repeated hits update the one finding.
pub struct Open<'a> {
    open: &'a mut HashMap<String, Finding>,
    touched: &'a mut BTreeSet<String>,
    suppression_ms: i64,
}

impl<'a> Open<'a> {
    pub(crate) fn new(open: &'a mut HashMap<String, Finding>, touched: &'a mut BTreeSet<String>, suppression_ms: i64) -> Open<'a> {
        Open { open, touched, suppression_ms }
    }

    /// The start of the suppression period `time` falls in.
    pub fn period(&self, time: i64) -> i64 {
        time.div_euclid(self.suppression_ms) * self.suppression_ms
    }

    /// The open finding of (rule, group, window), made (first seen at `time`) when there is
    /// none; emitted after the batch. Nothing is built when it exists but its uid.
    pub fn finding(&mut self, rule: &Arc<RuleMeta>, group: &str, window_start: i64, time: i64) -> &mut Finding {
        let uid = finding_uid(&rule.id, group, window_start);
        if !self.touched.contains(&uid) {
            self.touched.insert(uid.clone());
        }
        match self.open.entry(uid) {
            MapEntry::Occupied(e) => e.into_mut(),
            MapEntry::Vacant(e) => e.insert(Finding::new(rule.clone(), group.to_string(), window_start, time)),
        }
    }

    /// An open finding by uid, marked to be emitted.
    pub fn get_mut(&mut self, uid: &str) -> Option<&mut Finding> {
        let f = self.open.get_mut(uid)?;
        if !self.touched.contains(uid) {
            self.touched.insert(uid.to_string());
        }
        Some(f)
    }

    /// A finding made whole (a fired correlation), replacing one of the same uid.
    pub fn insert(&mut self, f: Finding) {
        self.touched.insert(f.uid.clone());
        self.open.insert(f.uid.clone(), f);
    }
}
