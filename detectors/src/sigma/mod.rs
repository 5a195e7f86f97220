//! Sigma rules over OCSF batches. rsigma-parser reads the YAML and conditions; this module
//! compiles every rule's string matching into one regex-automata automaton per field (one pass
//! per field value finds every pattern of every rule that matches it), and evaluates conditions
//! per row. A prefilter on `eventName`/`eventSource` picks the rules a row can match before any
//! other field is read.

mod compile;
pub mod correlate;
mod detector;
mod values;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use regex_automata::meta::Regex;
use regex_automata::{Input, PatternSet};

use crate::fields::{BatchFields, RowJson, Source};
use crate::rule::RuleMeta;
pub use compile::Compiled;
pub use correlate::{Aggregation, Correlation};
pub use detector::SigmaDetector;
use values::Test;

/// A loaded Sigma rule set, ready to evaluate.
pub struct SigmaSet {
    pub rules: Vec<SigmaRule>,
    /// Correlation rules (Sigma 2) and legacy `| count()` aggregations, over `rules`' matches.
    pub correlations: Vec<Correlation>,
    /// Rules that could not be loaded, with the reason (`rules validate` reports them).
    pub rejected: Vec<(PathBuf, String)>,
    fields: Vec<Source>,
    automata: Vec<Option<FieldAutomaton>>,
    pattern_count: usize,
    /// Rules that any row may match (no guard on eventName/eventSource).
    unguarded: Vec<usize>,
    /// Guard pattern -> rules it admits.
    guards: HashMap<u32, Vec<usize>>,
    guard_fields: Vec<usize>,
}

pub struct SigmaRule {
    pub meta: RuleMeta,
    pub path: PathBuf,
    expr: Expr,
    /// The legacy aggregation of the condition (`| count() by x > n`), if any.
    pub aggregation: Option<Aggregation>,
    /// The rule's `name`, by which correlations may refer to it.
    pub name: Option<String>,
    /// Whether a match is a finding of its own (false for rules only correlations use).
    pub generate: bool,
}

/// A rule's condition, over item indices.
#[derive(Debug, Clone)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    AtLeast(u64, Vec<Expr>),
    Item(Item),
}

#[derive(Debug, Clone)]
struct Item {
    field: usize,
    all: bool,
    tests: Vec<Test>,
}

struct FieldAutomaton {
    regex: Regex,
    /// Automaton pattern index -> rule set pattern id.
    ids: Vec<u32>,
}

/// Which rule matched which row of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hit {
    pub rule: usize,
    pub row: usize,
}

/// Options for loading rules.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Values of `%name%` placeholders for the `expand` modifier.
    pub placeholders: HashMap<String, Vec<String>>,
}

impl SigmaSet {
    /// Loads every `.yml`/`.yaml` under `dir` (recursively) whose logsource is AWS CloudTrail.
    pub fn load_dir(dir: &Path, opts: &LoadOptions) -> Result<SigmaSet, String> {
        compile::compile(crate::rule::read_files(dir, &["yml", "yaml"])?, opts)
    }

    /// The Sigma rules shipped in the binary (`detectors/rules/sigma/`).
    pub fn shipped(opts: &LoadOptions) -> Result<SigmaSet, String> {
        let docs = crate::SHIPPED.iter().filter(|(p, _)| p.starts_with("sigma/") && (p.ends_with(".yml") || p.ends_with(".yaml")));
        compile::compile(docs.map(|(p, t)| (PathBuf::from("rules").join(p), t.to_string())).collect(), opts)
    }

    /// Compiles rules given as (name, YAML text), e.g. embedded in tests.
    pub fn from_texts(docs: Vec<(PathBuf, String)>, opts: &LoadOptions) -> Result<SigmaSet, String> {
        compile::compile(docs, opts)
    }

    /// Evaluates every rule against every row; hits in row order.
    pub fn eval(&self, batch: &RecordBatch) -> Vec<Hit> {
        self.eval_rows(batch, &(0..batch.num_rows()).collect::<Vec<_>>())
    }

    /// Evaluates every rule against the given rows; hits in row order.
    pub fn eval_rows(&self, batch: &RecordBatch, rows: &[usize]) -> Vec<Hit> {
        let fields = BatchFields::new(batch, &self.fields);
        let mut json = RowJson::default();
        let mut s = Scratch::new(self);
        let mut candidates: Vec<usize> = Vec::new();
        let mut hits = Vec::new();
        for &row in rows {
            json.reset(row);
            s.next_row();
            // Prefilter: only rules whose guard pattern matched, plus the unguarded ones.
            candidates.clear();
            candidates.extend_from_slice(&self.unguarded);
            for &f in &self.guard_fields {
                self.run_field(f, row, &fields, &mut json, &mut s);
            }
            // Only the guard fields have run yet: these are their patterns.
            for p in &s.row_patterns {
                if let Some(rules) = self.guards.get(p) {
                    candidates.extend_from_slice(rules);
                }
            }
            if candidates.is_empty() {
                continue;
            }
            candidates.sort_unstable();
            candidates.dedup();
            for &r in &candidates {
                if self.eval_expr(&self.rules[r].expr, row, &fields, &mut json, &mut s) {
                    hits.push(Hit { rule: r, row });
                }
            }
        }
        hits
    }

    /// Reads field `f` in `row` once, and runs its automaton on the value, recording which
    /// patterns matched. A value seen before in the batch takes its recorded patterns.
    fn run_field(&self, f: usize, row: usize, fields: &BatchFields<'_>, json: &mut RowJson, s: &mut Scratch) {
        if s.done[f] == s.row {
            return;
        }
        s.done[f] = s.row;
        let Some(v) = fields.value(f, row, json) else { return };
        s.present[f] = s.row;
        let Some(a) = &self.automata[f] else { return };
        let Scratch { memo, local, row: stamp, matched, row_patterns, .. } = s;
        let (memo, local) = (&mut memo[f], &mut local[f]);
        let mut mark = |p: u32| {
            if matched[p as usize] != *stamp {
                matched[p as usize] = *stamp;
                row_patterns.push(p);
            }
        };
        if let Some(range) = memo.get(&v) {
            memo.ids[range].iter().for_each(|&p| mark(p));
            return;
        }
        local.clear();
        a.regex.which_overlapping_matches(&Input::new(v.as_ref()), local);
        let start = memo.ids.len();
        memo.ids.extend(local.iter().map(|p| a.ids[p.as_usize()]));
        memo.ids[start..].iter().for_each(|&p| mark(p));
        memo.insert(&v, start);
    }

    fn eval_expr(&self, e: &Expr, row: usize, fields: &BatchFields<'_>, json: &mut RowJson, s: &mut Scratch) -> bool {
        match e {
            Expr::And(xs) => xs.iter().all(|x| self.eval_expr(x, row, fields, json, s)),
            Expr::Or(xs) => xs.iter().any(|x| self.eval_expr(x, row, fields, json, s)),
            Expr::Not(x) => !self.eval_expr(x, row, fields, json, s),
            Expr::AtLeast(n, xs) => xs.iter().filter(|x| self.eval_expr(x, row, fields, json, s)).take(*n as usize).count() as u64 >= *n,
            Expr::Item(item) => {
                self.run_field(item.field, row, fields, json, s);
                let mut test = |t: &Test| self.eval_test(item.field, t, row, fields, json, s);
                if item.all {
                    item.tests.iter().all(&mut test)
                } else {
                    item.tests.iter().any(&mut test)
                }
            }
        }
    }

    /// A test of `field`, which `run_field` has read for this row.
    fn eval_test(&self, field: usize, t: &Test, row: usize, fields: &BatchFields<'_>, json: &mut RowJson, s: &Scratch) -> bool {
        let matched = |ids: &[u32]| ids.iter().any(|&p| s.matched[p as usize] == s.row);
        let present = s.present[field] == s.row;
        match t {
            Test::Patterns(ids) => matched(ids),
            Test::NotPatterns(ids) => present && !matched(ids),
            Test::Null => !present,
            Test::Exists(want) => present == *want,
            Test::Cidr(net) => fields.value(field, row, json).and_then(|v| v.trim().parse().ok()).is_some_and(|ip| net.contains(ip)),
            Test::Cmp(op, n) => fields.value(field, row, json).and_then(|v| v.trim().parse::<f64>().ok()).is_some_and(|v| op.holds(v, *n)),
            Test::FieldRef { other, anchor, cased } => {
                let Some(theirs) = fields.value(*other, row, json).map(|v| v.into_owned()) else { return false };
                let Some(ours) = fields.value(field, row, json) else { return false };
                let (a, b) = if *cased { (ours.into_owned(), theirs) } else { (ours.to_lowercase(), theirs.to_lowercase()) };
                match anchor {
                    values::Anchor::Whole => a == b,
                    values::Anchor::Contains => a.contains(&b),
                    values::Anchor::StartsWith => a.starts_with(&b),
                    values::Anchor::EndsWith => a.ends_with(&b),
                }
            }
        }
    }

    /// The OCSF columns a rule reads (for `rules validate`).
    pub fn columns_of(&self, rule: usize) -> Vec<&'static str> {
        let mut out = Vec::new();
        walk(&self.rules[rule].expr, &mut |i: &Item| out.extend(self.fields[i.field].columns()));
        out.sort_unstable();
        out.dedup();
        out
    }
}

fn walk(e: &Expr, f: &mut impl FnMut(&Item)) {
    match e {
        Expr::And(xs) | Expr::Or(xs) | Expr::AtLeast(_, xs) => xs.iter().for_each(|x| walk(x, f)),
        Expr::Not(x) => walk(x, f),
        Expr::Item(i) => f(i),
    }
}

/// Per-batch evaluation state. Rows are stamped with a counter, so nothing is cleared
/// between rows: a field ran, was present, or a pattern matched in this row when its stamp is
/// the row's.
struct Scratch {
    row: u32,
    /// Per field.
    done: Vec<u32>,
    present: Vec<u32>,
    /// Per pattern id.
    matched: Vec<u32>,
    /// The pattern ids matched in this row, in the order found.
    row_patterns: Vec<u32>,
    /// Per field, the patterns each value seen in this batch matched.
    memo: Vec<Memo>,
    /// Per field, the automaton's match set (reused, not reallocated).
    local: Vec<PatternSet>,
}

impl Scratch {
    fn new(set: &SigmaSet) -> Scratch {
        let n = set.fields.len();
        Scratch {
            row: 0,
            done: vec![0; n],
            present: vec![0; n],
            matched: vec![0; set.pattern_count.max(1)],
            row_patterns: Vec::new(),
            memo: (0..n).map(|_| Memo::default()).collect(),
            local: set.automata.iter().map(|a| PatternSet::new(a.as_ref().map_or(1, |a| a.regex.pattern_len()))).collect(),
        }
    }

    fn next_row(&mut self) {
        self.row += 1;
        self.row_patterns.clear();
    }
}

/// The patterns a field's values matched, by value. Event fields repeat (operations,
/// services, identity types, regions, user agents), so most values skip the automaton. A field
/// whose values rarely repeat (request parameters, ids) stops being remembered: it would only
/// cost a hash and a copy per row.
#[derive(Default)]
struct Memo {
    seen: foldhash::HashMap<Box<str>, std::ops::Range<usize>>,
    ids: Vec<u32>,
    lookups: u32,
    off: bool,
}

impl Memo {
    /// Values looked up before deciding whether remembering pays.
    const TRIAL: u32 = 256;

    fn get(&mut self, v: &str) -> Option<std::ops::Range<usize>> {
        if self.off {
            return None;
        }
        self.lookups += 1;
        self.seen.get(v).cloned()
    }

    /// Remembers that `v` matched the ids from `start` to the end of `ids`.
    fn insert(&mut self, v: &str, start: usize) {
        if self.off {
            self.ids.truncate(start);
            return;
        }
        // Past the trial, mostly new values: stop remembering this field.
        if self.lookups >= Self::TRIAL && self.seen.len() as u32 * 2 > self.lookups {
            self.off = true;
            self.seen = Default::default();
            self.ids = Vec::new();
            return;
        }
        self.seen.insert(v.into(), start..self.ids.len());
    }
}

#[cfg(test)]
mod tests {
    use super::Memo;

    #[test]
    fn memo_remembers_repeated_values_and_gives_up_on_unique_ones() {
        let mut repeated = Memo::default();
        for i in 0..1000 {
            let v = ["GetObject", "PutObject"][i % 2];
            if repeated.get(v).is_none() {
                repeated.ids.push(i as u32);
                repeated.insert(v, repeated.ids.len() - 1);
            }
        }
        assert!(!repeated.off);
        assert_eq!((repeated.seen.len(), repeated.ids.len()), (2, 2), "each value ran once");
        assert_eq!(repeated.get("PutObject"), Some(1..2));

        let mut unique = Memo::default();
        for i in 0..1000 {
            let v = format!("request-{i}");
            assert!(unique.get(&v).is_none());
            unique.ids.push(7);
            unique.insert(&v, unique.ids.len() - 1);
        }
        assert!(unique.off, "past the trial, mostly new values: no longer remembered");
        assert!(unique.seen.is_empty() && unique.ids.is_empty(), "what it held is freed");
    }
}
