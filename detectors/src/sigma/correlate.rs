//! Sigma correlation: Sigma 2 correlation rules (event_count, value_count, temporal,
//! temporal_ordered) and the legacy `condition: selection | count(field) by x > n` with
//! `timeframe`, which is read as the same thing. State is per (correlation, group) and bounded:
//! entries older than the timespan leave, a group holds at most `MAX_PER_GROUP` entries and
//! the whole state at most `MAX_GROUPS` groups (oldest evicted, counted).

use std::collections::{HashMap, VecDeque};

use rsigma_parser::{ConditionExpr, ConditionOperator, CorrelationCondition, CorrelationRule, CorrelationType, Timespan};

use super::SigmaRule;
use crate::rule::{attacks_from_tags, RuleMeta, Severity};

pub const MAX_PER_GROUP: usize = 10_000;
pub const MAX_GROUPS: usize = 100_000;

/// A legacy aggregation: `count(value_field) by by > n` over `timeframe`.
#[derive(Debug, Clone)]
pub struct Aggregation {
    pub value_field: Option<String>,
    pub by: Vec<String>,
    pub predicates: Vec<(ConditionOperator, u64)>,
    pub timespan_ms: i64,
}

/// Splits a legacy `condition: expr | count(...) by f op n` off the YAML (rsigma reads the
/// rest); the text is returned unchanged when there is none.
pub fn split_legacy(text: &str) -> Result<(String, Option<String>), String> {
    if !text.contains('|') || !(text.contains("count(") || text.contains("near ")) {
        return Ok((text.to_string(), None));
    }
    let mut doc: yaml_serde::Value = yaml_serde::from_str(text).map_err(|e| format!("YAML: {e}"))?;
    let Some(cond) = doc.get_mut("detection").and_then(|d| d.get_mut("condition")) else { return Ok((text.to_string(), None)) };
    let Some(s) = cond.as_str().map(str::to_string) else { return Ok((text.to_string(), None)) };
    let Some((expr, agg)) = s.split_once('|') else { return Ok((text.to_string(), None)) };
    if agg.trim_start().starts_with("near ") {
        return Err(format!("legacy `| near` (in `{s}`) is not supported: write it as a Sigma 2 `temporal` correlation rule"));
    }
    *cond = yaml_serde::Value::String(expr.trim().to_string());
    let text = yaml_serde::to_string(&doc).map_err(|e| format!("YAML: {e}"))?;
    Ok((text, Some(agg.trim().to_string())))
}

impl Aggregation {
    /// Parses `count() > 50`, `count(field) by group >= 3`.
    pub fn new(agg: &str, timeframe: Option<&str>) -> Result<Aggregation, String> {
        let bad = || format!("aggregation `{agg}`: expected `count([field]) [by field] <op> <number>`");
        let rest = agg.strip_prefix("count(").ok_or_else(bad)?;
        let (field, rest) = rest.split_once(')').ok_or_else(bad)?;
        let rest = rest.trim();
        let (by, rest) = match rest.strip_prefix("by ") {
            Some(r) => {
                let r = r.trim_start();
                let end = r.find(|c: char| c.is_whitespace() || "<>=!".contains(c)).unwrap_or(r.len());
                (vec![r[..end].to_string()], r[end..].trim())
            }
            None => (Vec::new(), rest),
        };
        let (op, n) = [(">=", ConditionOperator::Gte), ("<=", ConditionOperator::Lte), (">", ConditionOperator::Gt), ("<", ConditionOperator::Lt), ("=", ConditionOperator::Eq)]
            .into_iter()
            .find_map(|(s, op)| rest.strip_prefix(s).map(|n| (op, n)))
            .ok_or_else(bad)?;
        let n: u64 = n.trim().parse().map_err(|_| bad())?;
        let tf = timeframe.ok_or_else(|| format!("aggregation `{agg}` needs a `timeframe`"))?;
        let span = Timespan::parse(tf).map_err(|e| format!("timeframe `{tf}`: {e}"))?;
        let field = field.trim();
        Ok(Aggregation { value_field: (!field.is_empty()).then(|| field.to_string()), by, predicates: vec![(op, n)], timespan_ms: span.seconds as i64 * 1000 })
    }
}

#[derive(Debug, Clone)]
pub enum Kind {
    EventCount,
    ValueCount,
    Temporal(Option<ConditionExpr>),
    TemporalOrdered,
}

/// A correlation over the matches of some Sigma rules.
#[derive(Debug, Clone)]
pub struct Correlation {
    pub meta: RuleMeta,
    pub kind: Kind,
    /// Referenced rules (indices into `SigmaSet::rules`), in the declared order.
    pub rules: Vec<usize>,
    /// Per referenced rule: its id and name (conditions of `temporal` name rules).
    pub rule_names: Vec<Vec<String>>,
    /// Per referenced rule: the CloudTrail fields making the group key (aliases resolved).
    pub group_fields: Vec<Vec<String>>,
    /// Per referenced rule: the field whose distinct values `value_count` counts.
    pub value_fields: Vec<Option<String>>,
    pub predicates: Vec<(ConditionOperator, u64)>,
    pub timespan_ms: i64,
}

fn holds(predicates: &[(ConditionOperator, u64)], n: u64) -> bool {
    predicates.iter().all(|(op, v)| match op {
        ConditionOperator::Lt => n < *v,
        ConditionOperator::Lte => n <= *v,
        ConditionOperator::Gt => n > *v,
        ConditionOperator::Gte => n >= *v,
        ConditionOperator::Eq => n == *v,
        ConditionOperator::Neq => n != *v,
    })
}

impl Correlation {
    pub fn new(c: &CorrelationRule, rules: &[SigmaRule]) -> Result<Correlation, String> {
        let mut refs = Vec::new();
        for r in &c.rules {
            let i =
                rules.iter().position(|x| x.meta.id == *r || x.name.as_deref() == Some(r.as_str())).ok_or_else(|| format!("correlation `{}` refers to rule `{r}`, which is not loaded", c.title))?;
            refs.push(i);
        }
        let field_for = |name: &str, rule: usize| -> String {
            c.aliases
                .iter()
                .find(|a| a.alias == name)
                .and_then(|a| a.mapping.get(rules[rule].name.as_deref().unwrap_or_default()).or_else(|| a.mapping.get(&rules[rule].meta.id)))
                .cloned()
                .unwrap_or_else(|| name.to_string())
        };
        let group_fields = refs.iter().map(|&r| c.group_by.iter().map(|g| field_for(g, r)).collect()).collect();
        let (kind, predicates, value) = match (&c.correlation_type, &c.condition) {
            (CorrelationType::EventCount, CorrelationCondition::Threshold { predicates, .. }) => (Kind::EventCount, predicates.clone(), None),
            (CorrelationType::ValueCount, CorrelationCondition::Threshold { predicates, field, .. }) => {
                let f = field.as_ref().and_then(|f| f.first()).ok_or("value_count needs `condition.field`")?;
                (Kind::ValueCount, predicates.clone(), Some(f.clone()))
            }
            (CorrelationType::Temporal, CorrelationCondition::Threshold { predicates, .. }) => (Kind::Temporal(None), predicates.clone(), None),
            (CorrelationType::Temporal, CorrelationCondition::Extended(e)) => (Kind::Temporal(Some(e.clone())), Vec::new(), None),
            (CorrelationType::TemporalOrdered, CorrelationCondition::Threshold { predicates, .. }) => (Kind::TemporalOrdered, predicates.clone(), None),
            (t, _) => return Err(format!("correlation type `{}` is not supported (event_count, value_count, temporal, temporal_ordered are)", t.as_str())),
        };
        // Temporal rules without a threshold need every referenced rule.
        let predicates = if predicates.is_empty() && matches!(kind, Kind::Temporal(None) | Kind::TemporalOrdered) { vec![(ConditionOperator::Gte, refs.len() as u64)] } else { predicates };
        let value_fields = refs.iter().map(|&r| value.as_deref().map(|v| field_for(v, r))).collect();
        let meta = RuleMeta {
            id: c.id.clone().unwrap_or_else(|| c.title.clone()),
            title: c.title.clone(),
            description: c.description.clone().unwrap_or_default(),
            severity: c.level.as_ref().and_then(|l| Severity::parse(l.as_str())).unwrap_or(Severity::Medium),
            kind: "correlation",
            attacks: attacks_from_tags(&c.tags),
            references: c.references.clone(),
        };
        let rule_names = refs.iter().map(|&r| std::iter::once(rules[r].meta.id.clone()).chain(rules[r].name.clone()).collect()).collect();
        Ok(Correlation { meta, kind, rule_names, rules: refs, group_fields, value_fields, predicates, timespan_ms: c.timespan.seconds as i64 * 1000 })
    }

    /// The legacy aggregation of rule `i` as a correlation over that rule alone.
    pub fn from_aggregation(i: usize, rule: &SigmaRule, a: &Aggregation) -> Correlation {
        let kind = if a.value_field.is_some() { Kind::ValueCount } else { Kind::EventCount };
        Correlation {
            meta: rule.meta.clone(),
            kind,
            rules: vec![i],
            rule_names: vec![vec![rule.meta.id.clone()]],
            group_fields: vec![a.by.clone()],
            value_fields: vec![a.value_field.clone()],
            predicates: a.predicates.clone(),
            timespan_ms: a.timespan_ms,
        }
    }
}

/// One matching event fed to a correlation.
#[derive(Debug, Clone)]
pub struct Entry {
    pub time: i64,
    /// Position of the matched rule in the correlation's `rules`.
    pub rule: usize,
    pub value: Option<String>,
    pub uid: String,
}

/// A correlation whose condition held: the events of the window.
#[derive(Debug, Clone)]
pub struct Fired {
    pub correlation: usize,
    pub group: String,
    pub events: Vec<Entry>,
}

/// Windows of every (correlation, group).
#[derive(Default)]
pub struct State {
    groups: HashMap<(usize, String), VecDeque<Entry>>,
    /// Insertion order of groups, for eviction.
    order: VecDeque<(usize, String)>,
    pub evicted_groups: u64,
    pub dropped_entries: u64,
}

impl State {
    /// Adds an event; returns the window when the condition holds (the window then starts
    /// afresh, so one burst gives one firing).
    pub fn observe(&mut self, ci: usize, c: &Correlation, group: String, e: Entry) -> Option<Fired> {
        let key = (ci, group);
        if !self.groups.contains_key(&key) {
            if self.groups.len() >= MAX_GROUPS
                && let Some(old) = self.order.pop_front()
            {
                self.groups.remove(&old);
                self.evicted_groups += 1;
            }
            self.order.push_back(key.clone());
        }
        let w = self.groups.entry(key.clone()).or_default();
        // Keep event-time order even when a late event arrives.
        let at = w.iter().rposition(|x| x.time <= e.time).map_or(0, |p| p + 1);
        w.insert(at, e);
        let newest = w.back().map_or(0, |x| x.time);
        while w.front().is_some_and(|x| x.time < newest - c.timespan_ms) {
            w.pop_front();
        }
        if w.len() > MAX_PER_GROUP {
            w.pop_front();
            self.dropped_entries += 1;
        }
        let fired = match &c.kind {
            Kind::EventCount => holds(&c.predicates, w.len() as u64),
            Kind::ValueCount => {
                let mut distinct: Vec<&str> = w.iter().filter_map(|x| x.value.as_deref()).collect();
                distinct.sort_unstable();
                distinct.dedup();
                holds(&c.predicates, distinct.len() as u64)
            }
            Kind::Temporal(None) => {
                let mut seen: Vec<usize> = w.iter().map(|x| x.rule).collect();
                seen.sort_unstable();
                seen.dedup();
                holds(&c.predicates, seen.len() as u64)
            }
            Kind::Temporal(Some(_)) | Kind::TemporalOrdered => temporal(c, w),
        };
        if !fired {
            return None;
        }
        let events: Vec<Entry> = w.drain(..).collect();
        Some(Fired { correlation: ci, group: key.1, events })
    }

    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    pub fn entries(&self) -> usize {
        self.groups.values().map(VecDeque::len).sum()
    }
}

fn temporal(c: &Correlation, w: &VecDeque<Entry>) -> bool {
    match &c.kind {
        Kind::Temporal(Some(expr)) => {
            let seen = |name: &str| c.rules.iter().enumerate().any(|(pos, _)| w.iter().any(|x| x.rule == pos) && rule_named(c, pos, name));
            eval_names(expr, &seen)
        }
        _ => {
            // In order: each referenced rule matched after the previous one.
            let mut next = 0;
            for x in w {
                if x.rule == next {
                    next += 1;
                    if next == c.rules.len() {
                        return true;
                    }
                }
            }
            false
        }
    }
}

fn rule_named(c: &Correlation, pos: usize, name: &str) -> bool {
    c.rule_names.get(pos).is_some_and(|names| names.iter().any(|n| n == name))
}

fn eval_names(e: &ConditionExpr, seen: &dyn Fn(&str) -> bool) -> bool {
    match e {
        ConditionExpr::And(xs) => xs.iter().all(|x| eval_names(x, seen)),
        ConditionExpr::Or(xs) => xs.iter().any(|x| eval_names(x, seen)),
        ConditionExpr::Not(x) => !eval_names(x, seen),
        ConditionExpr::Identifier(n) => seen(n),
        ConditionExpr::Selector { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_condition_is_split() {
        let y = "title: t\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventName: list*\n  timeframe: 10m\n  condition: sel | count() > 50\n";
        let (text, agg) = split_legacy(y).unwrap();
        assert_eq!(agg.as_deref(), Some("count() > 50"));
        assert!(text.contains("condition: sel"));
        let a = Aggregation::new("count(eventName) by userIdentity.arn >= 3", Some("10m")).unwrap();
        assert_eq!(a.value_field.as_deref(), Some("eventName"));
        assert_eq!(a.by, vec!["userIdentity.arn"]);
        assert_eq!(a.timespan_ms, 600_000);
        assert!(Aggregation::new("count() > 5", None).is_err());
        assert!(Aggregation::new("sum(x) > 5", Some("1m")).is_err());
    }
}
