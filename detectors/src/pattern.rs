//! Pattern detectors: multi-pattern regex-automata sets over string columns, from TOML rules
//! (`rules/patterns/*.toml`, docs/detection/patterns.md). Every pattern of every rule on one
//! column is in one automaton, so each value is scanned once whatever the number of rules.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use regex_automata::meta::{Config, Regex};
use regex_automata::{Input, MatchKind, PatternSet};
use serde::Deserialize;

use crate::detector::{Detector, Open};
use crate::fields::{column, str_at};
use crate::rule::RuleMeta;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    id: String,
    title: String,
    #[serde(default)]
    description: String,
    severity: String,
    #[serde(default)]
    attack: Vec<String>,
    #[serde(default)]
    tactics: Vec<String>,
    /// The class table the rule reads.
    table: String,
    /// String columns to scan (OCSF dotted paths).
    columns: Vec<String>,
    /// Only rows of AI-agent telemetry (the `ai_operation` profile).
    #[serde(default)]
    agents_only: bool,
    /// Columns whose values make the finding's group key.
    #[serde(default)]
    group_by: Vec<String>,
    patterns: Vec<PatternDef>,
    #[serde(default)]
    fires: Vec<PathBuf>,
    #[serde(default)]
    quiet: Vec<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatternDef {
    name: String,
    regex: String,
    /// Case-sensitive (default: not).
    #[serde(default)]
    cased: bool,
}

#[derive(Debug, Clone)]
pub struct PatternRule {
    pub meta: RuleMeta,
    pub path: PathBuf,
    pub table: String,
    pub columns: Vec<String>,
    pub agents_only: bool,
    pub group_by: Vec<String>,
    /// Pattern names, in declared order.
    pub names: Vec<String>,
    pub cases: Vec<crate::rule::Case>,
}

/// One rule hit: which patterns matched which row, and the text they matched in.
#[derive(Debug, Clone)]
pub struct PatternHit {
    pub rule: usize,
    pub row: usize,
    pub matched: Vec<String>,
    pub text: String,
}

struct ColumnAutomaton {
    column: String,
    regex: Regex,
    /// Automaton pattern -> (rule, pattern name index).
    owner: Vec<(usize, usize)>,
    /// Every rule on the column reads agent telemetry only: other rows are not scanned.
    agents_only: bool,
}

pub struct PatternRules {
    pub rules: Vec<PatternRule>,
    pub rejected: Vec<(PathBuf, String)>,
    automata: Vec<ColumnAutomaton>,
}

impl PatternRules {
    pub fn new(docs: Vec<(PathBuf, String)>) -> Result<PatternRules, String> {
        let mut rules = Vec::new();
        let mut rejected = Vec::new();
        // column -> (regex text, rule, name index)
        let mut per_column: HashMap<String, Vec<(String, usize, usize)>> = HashMap::new();
        for (path, text) in docs {
            let parsed: RuleFile = match toml::from_str(&text) {
                Ok(r) => r,
                Err(e) => {
                    rejected.push((path, e.to_string().replace('\n', " ")));
                    continue;
                }
            };
            let meta = match RuleMeta::from_toml("pattern", &parsed.id, &parsed.title, &parsed.description, &parsed.severity, &parsed.attack, &parsed.tactics) {
                Ok(m) => m,
                Err(e) => {
                    rejected.push((path, e));
                    continue;
                }
            };
            let mut regexes = Vec::new();
            let mut bad = None;
            for p in &parsed.patterns {
                let re = if p.cased { p.regex.clone() } else { format!("(?i:{})", p.regex) };
                if let Err(e) = Regex::new(&re) {
                    bad = Some(format!("pattern `{}`: {}", p.name, e.to_string().replace('\n', " ")));
                    break;
                }
                regexes.push(re);
            }
            if let Some(b) = bad {
                rejected.push((path, b));
                continue;
            }
            let i = rules.len();
            for c in &parsed.columns {
                for (n, re) in regexes.iter().enumerate() {
                    per_column.entry(c.clone()).or_default().push((re.clone(), i, n));
                }
            }
            let cases =
                parsed.fires.into_iter().map(|events| crate::rule::Case { fires: true, events }).chain(parsed.quiet.into_iter().map(|events| crate::rule::Case { fires: false, events })).collect();
            rules.push(PatternRule {
                meta,
                path,
                table: parsed.table,
                columns: parsed.columns,
                agents_only: parsed.agents_only,
                group_by: parsed.group_by,
                names: parsed.patterns.into_iter().map(|p| p.name).collect(),
                cases,
            });
        }
        let mut automata = Vec::new();
        let mut columns: Vec<_> = per_column.into_iter().collect();
        columns.sort_by(|a, b| a.0.cmp(&b.0));
        for (column, pats) in columns {
            let texts: Vec<&str> = pats.iter().map(|(r, ..)| r.as_str()).collect();
            let regex = Regex::builder().configure(Config::new().match_kind(MatchKind::All)).build_many(&texts).map_err(|e| format!("patterns on {column}: {e}"))?;
            let agents_only = pats.iter().all(|(_, r, _)| rules[*r].agents_only);
            automata.push(ColumnAutomaton { column, regex, owner: pats.iter().map(|(_, r, n)| (*r, *n)).collect(), agents_only });
        }
        Ok(PatternRules { rules, rejected, automata })
    }

    pub fn load_dir(dir: &Path) -> Result<PatternRules, String> {
        // Behaviour rules (they name a `check`) and the `[[agents]]` of test cases are TOML too.
        let docs = crate::rule::read_files(dir, &["toml"])?;
        PatternRules::new(docs.into_iter().filter(|(_, t)| !crate::behaviour::is_behaviour(t) && !crate::behaviour::is_agents_file(t)).collect())
    }

    pub fn shipped() -> Result<PatternRules, String> {
        let docs = crate::SHIPPED.iter().filter(|(p, _)| p.starts_with("patterns/") && p.ends_with(".toml"));
        PatternRules::new(docs.map(|(p, t)| (PathBuf::from("rules").join(p), t.to_string())).collect())
    }

    /// Scans a batch of class `table`: every hit, in row order.
    pub fn eval(&self, batch: &RecordBatch, table: &str) -> Vec<PatternHit> {
        if !self.rules.iter().any(|r| r.table == table) {
            return Vec::new();
        }
        let agent_rows = crate::fields::ai_operation_rows(batch);
        let any_agent = agent_rows.iter().any(|&a| a);
        let mut hits: HashMap<(usize, usize), PatternHit> = HashMap::new();
        for a in &self.automata {
            if a.agents_only && !any_agent {
                continue;
            }
            let Some(col) = column(batch, &a.column) else { continue };
            let Some(strs) = col.as_string_opt::<i32>() else { continue };
            let mut set = PatternSet::new(a.regex.pattern_len());
            for (row, &by_agent) in agent_rows.iter().enumerate().take(strs.len()) {
                if strs.is_null(row) || a.agents_only && !by_agent {
                    continue;
                }
                set.clear();
                a.regex.which_overlapping_matches(&Input::new(strs.value(row)), &mut set);
                for p in set.iter() {
                    let (rule, name) = a.owner[p.as_usize()];
                    let r = &self.rules[rule];
                    if r.table != table || r.agents_only && !agent_rows[row] {
                        continue;
                    }
                    let h = hits.entry((rule, row)).or_insert_with(|| PatternHit { rule, row, matched: Vec::new(), text: strs.value(row).to_string() });
                    if !h.matched.contains(&r.names[name]) {
                        h.matched.push(r.names[name].clone());
                    }
                }
            }
        }
        let mut out: Vec<PatternHit> = hits.into_values().collect();
        out.sort_by_key(|h| (h.row, h.rule));
        out
    }
}

/// Pattern rules as a [`Detector`]: a hit opens (or updates) the finding of its rule and group
/// within the suppression period, naming what matched and who (agent, conversation, human).
pub struct PatternDetector {
    rules: PatternRules,
    metas: Vec<std::sync::Arc<RuleMeta>>,
}

impl PatternDetector {
    pub fn new(rules: PatternRules) -> PatternDetector {
        let metas = rules.rules.iter().map(|r| std::sync::Arc::new(r.meta.clone())).collect();
        PatternDetector { rules, metas }
    }
}

impl Detector for PatternDetector {
    fn rules(&self) -> usize {
        self.rules.rules.len()
    }

    fn process(&mut self, input: &crate::detector::Input<'_>, out: &mut Open<'_>) {
        let batch = input.batch;
        // The columns hits read, resolved once per batch.
        let mut cols: HashMap<&str, Option<arrow::array::ArrayRef>> = HashMap::new();
        const WHO: [(&str, &str); 3] = [("agent", "actor.app_name"), ("conversation", "actor.session.uid"), ("human", "actor.user.name")];
        for path in self.rules.rules.iter().flat_map(|r| r.group_by.iter().map(String::as_str)).chain(WHO.map(|(_, p)| p)) {
            cols.entry(path).or_insert_with(|| column(batch, path));
        }
        let text = |path: &str, row: usize| cols.get(path).and_then(|c| str_at(c, row)).map(str::to_string);
        for hit in self.rules.eval(batch, input.table) {
            let rule = &self.rules.rules[hit.rule];
            let ev = input.summaries.get(hit.row);
            let group = rule.group_by.iter().map(|c| text(c, hit.row).unwrap_or_default()).collect::<Vec<_>>().join("|");
            let ws = out.period(ev.time);
            let f = out.finding(&self.metas[hit.rule], &group, ws, ev.time);
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
}
