//! Sigma documents to [`SigmaSet`]: conditions to expressions over items, values to tests,
//! string tests to patterns grouped per field into one automaton each, and per-rule guards
//! on `eventName`/`eventSource` for the prefilter.

use std::collections::HashMap;
use std::path::PathBuf;

use regex_automata::meta::{Config, Regex};
use regex_automata::MatchKind;
use rsigma_parser::{ConditionExpr, Detection, DetectionItem, LogSource, Modifier, Quantifier, SelectorPattern, SigmaString, SigmaValue};

use super::correlate::{self, Aggregation, Correlation};
use super::values::{self, Anchor, Cmp, Test};
use super::{Expr, FieldAutomaton, Item, LoadOptions, SigmaRule, SigmaSet};
use crate::fields::Source;
use crate::rule::{attacks_from_tags, RuleMeta, Severity};
use ocelot_normalize::net::Net;

/// Statistics of a compiled set, for `rules list` and benches.
#[derive(Debug, Clone, Copy)]
pub struct Compiled {
    pub rules: usize,
    pub patterns: usize,
    pub automata: usize,
}

#[derive(Default)]
struct Builder {
    fields: Vec<Source>,
    /// (field, regex) per pattern id.
    patterns: Vec<(usize, String)>,
}

impl Builder {
    fn field(&mut self, s: Source) -> usize {
        match self.fields.iter().position(|f| *f == s) {
            Some(i) => i,
            None => {
                self.fields.push(s);
                self.fields.len() - 1
            }
        }
    }

    fn pattern(&mut self, field: usize, regex: String) -> u32 {
        self.patterns.push((field, regex));
        (self.patterns.len() - 1) as u32
    }

    fn item(&mut self, di: &DetectionItem, opts: &LoadOptions) -> Result<Item, String> {
        let mods = &di.field.modifiers;
        let has = |m: Modifier| mods.contains(&m);
        for m in [Modifier::Minute, Modifier::Hour, Modifier::Day, Modifier::Week, Modifier::Month, Modifier::Year] {
            if has(m) {
                return Err(format!("modifier `{m:?}` (timestamp parts) is not supported on CloudTrail fields").to_lowercase());
            }
        }
        let field = self.field(Source::of(di.field.name.as_deref()));
        let cased = has(Modifier::Cased);
        let anchor = if has(Modifier::Contains) {
            Anchor::Contains
        } else if has(Modifier::StartsWith) {
            Anchor::StartsWith
        } else if has(Modifier::EndsWith) {
            Anchor::EndsWith
        } else {
            Anchor::Whole
        };
        let cmp = [(Modifier::Gt, Cmp::Gt), (Modifier::Gte, Cmp::Gte), (Modifier::Lt, Cmp::Lt), (Modifier::Lte, Cmp::Lte)].into_iter().find(|(m, _)| has(*m)).map(|(_, c)| c);
        let name = di.field.name.as_deref().unwrap_or("keywords");
        let mut tests = Vec::new();
        for v in &di.values {
            let text = values::scalar_text(v);
            if has(Modifier::Exists) {
                let want = matches!(v, SigmaValue::Bool(true)) || text.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("true"));
                tests.push(Test::Exists(want));
            } else if has(Modifier::FieldRef) {
                let other = text.ok_or_else(|| format!("{name}|fieldref needs a field name"))?;
                tests.push(Test::FieldRef { other: self.field(Source::of(Some(&other))), anchor, cased });
            } else if let Some(op) = cmp {
                tests.push(Test::Cmp(op, values::number(v).ok_or_else(|| format!("{name}: `{v}` is not a number"))?));
            } else if has(Modifier::Cidr) {
                let t = text.unwrap_or_default();
                tests.push(Test::Cidr(Net::parse(&t).ok_or_else(|| format!("{name}|cidr: `{t}` is not a network"))?));
            } else if matches!(v, SigmaValue::Null) {
                tests.push(Test::Null);
            } else if has(Modifier::Re) {
                let p = values::regex_pattern(&text.unwrap_or_default(), mods);
                Regex::new(&p).map_err(|e| format!("{name}|re: {e}"))?;
                let id = self.pattern(field, p);
                tests.push(Test::Patterns(vec![id]));
            } else {
                let strings = match v {
                    SigmaValue::String(s) if has(Modifier::Expand) => values::expand(&s.original, &opts.placeholders)?.iter().map(|s| SigmaString::new(s)).collect(),
                    SigmaValue::String(s) => vec![s.clone()],
                    // Numbers and booleans compare as their text.
                    other => vec![SigmaString::from_raw(&values::scalar_text(other).unwrap_or_default())],
                };
                let encoded = [Modifier::Base64, Modifier::Base64Offset, Modifier::Wide, Modifier::Utf16, Modifier::Utf16be].into_iter().any(has);
                let mut ids = Vec::new();
                for s in strings {
                    if encoded {
                        let plain = s.as_plain().ok_or_else(|| format!("{name}: base64/utf16 modifiers need a value without wildcards"))?;
                        for e in values::encodings(&plain, mods) {
                            let p = values::string_pattern(&SigmaString::from_raw(&e), anchor, cased, false);
                            ids.push(self.pattern(field, p));
                        }
                    } else {
                        let p = values::string_pattern(&s, anchor, cased, has(Modifier::WindAsh));
                        ids.push(self.pattern(field, p));
                    }
                }
                tests.push(if has(Modifier::Neq) { Test::NotPatterns(ids) } else { Test::Patterns(ids) });
            }
        }
        Ok(Item { field, all: has(Modifier::All), tests })
    }

    fn detection(&mut self, d: &Detection, opts: &LoadOptions) -> Result<Expr, String> {
        Ok(match d {
            Detection::AllOf(items) => Expr::And(items.iter().map(|i| self.item(i, opts).map(Expr::Item)).collect::<Result<_, _>>()?),
            Detection::AnyOf(ds) => Expr::Or(ds.iter().map(|d| self.detection(d, opts)).collect::<Result<_, _>>()?),
            Detection::And(ds) => Expr::And(ds.iter().map(|d| self.detection(d, opts)).collect::<Result<_, _>>()?),
            Detection::Keywords(values) => {
                let field = self.field(Source::Keywords);
                let mut ids = Vec::new();
                for v in values {
                    let s = match v {
                        SigmaValue::String(s) => s.clone(),
                        other => SigmaString::from_raw(&values::scalar_text(other).unwrap_or_default()),
                    };
                    ids.push(self.pattern(field, values::string_pattern(&s, Anchor::Contains, false, false)));
                }
                Expr::Item(Item { field, all: false, tests: vec![Test::Patterns(ids)] })
            }
            Detection::ArrayMatch { .. } | Detection::Conditional { .. } => return Err("array object-scope blocks (`field[any]:`) are not supported".into()),
        })
    }
}

fn condition(c: &ConditionExpr, named: &HashMap<String, Expr>) -> Result<Expr, String> {
    Ok(match c {
        ConditionExpr::And(xs) => Expr::And(xs.iter().map(|x| condition(x, named)).collect::<Result<_, _>>()?),
        ConditionExpr::Or(xs) => Expr::Or(xs.iter().map(|x| condition(x, named)).collect::<Result<_, _>>()?),
        ConditionExpr::Not(x) => Expr::Not(Box::new(condition(x, named)?)),
        ConditionExpr::Identifier(id) => named.get(id).cloned().ok_or_else(|| format!("condition names `{id}`, which the detection does not define"))?,
        ConditionExpr::Selector { quantifier, pattern } => {
            let mut names: Vec<&String> = named
                .keys()
                .filter(|n| match pattern {
                    SelectorPattern::Them => !n.starts_with('_'),
                    SelectorPattern::Pattern(p) => glob(p, n),
                })
                .collect();
            names.sort();
            if names.is_empty() {
                return Err(format!("`{quantifier} of {pattern}` selects no detection"));
            }
            let xs = names.into_iter().map(|n| named[n].clone()).collect();
            match quantifier {
                Quantifier::Any => Expr::Or(xs),
                Quantifier::All => Expr::And(xs),
                Quantifier::Count(n) => Expr::AtLeast(*n, xs),
            }
        }
    })
}

/// How costly reading an item's field is: a column, or JSON to parse.
fn cost(e: &Expr, fields: &[Source]) -> u8 {
    match e {
        Expr::Item(i) => match fields[i.field] {
            Source::Columns(..) | Source::Flag { .. } => 0,
            Source::Json { .. } => 1,
            Source::Unmapped(_) | Source::Keywords => 2,
        },
        Expr::And(xs) | Expr::Or(xs) | Expr::AtLeast(_, xs) => xs.iter().map(|x| cost(x, fields)).max().unwrap_or(0),
        Expr::Not(x) => cost(x, fields),
    }
}

fn order_by_cost(e: &mut Expr, fields: &[Source]) {
    match e {
        Expr::And(xs) => {
            xs.iter_mut().for_each(|x| order_by_cost(x, fields));
            xs.sort_by_key(|x| cost(x, fields));
        }
        Expr::Or(xs) | Expr::AtLeast(_, xs) => xs.iter_mut().for_each(|x| order_by_cost(x, fields)),
        Expr::Not(x) => order_by_cost(x, fields),
        Expr::Item(_) => {}
    }
}

fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => name.len() >= head.len() && name.starts_with(head) && (0..=name.len() - head.len()).any(|i| name.is_char_boundary(head.len() + i) && glob(tail, &name[head.len() + i..])),
    }
}

fn is_cloudtrail(l: &LogSource) -> bool {
    l.product.as_deref() == Some("aws") && l.service.as_deref().is_none_or(|s| s == "cloudtrail")
}

/// Patterns of `e` that some row must match for `e` to hold, on the guard fields.
fn guard(e: &Expr, guard_fields: &[usize]) -> Option<Vec<u32>> {
    match e {
        Expr::Item(i) if guard_fields.contains(&i.field) => {
            let ids = |t: &Test| match t {
                Test::Patterns(ids) if !ids.is_empty() => Some(ids.clone()),
                _ => None,
            };
            if i.all {
                i.tests.iter().find_map(ids)
            } else {
                i.tests.iter().map(ids).collect::<Option<Vec<_>>>().map(|v| v.concat()).filter(|v| !v.is_empty())
            }
        }
        Expr::Item(_) | Expr::Not(_) => None,
        Expr::And(xs) => xs.iter().filter_map(|x| guard(x, guard_fields)).min_by_key(Vec::len),
        Expr::Or(xs) | Expr::AtLeast(_, xs) => {
            if xs.is_empty() || matches!(e, Expr::AtLeast(0, _)) {
                return None;
            }
            xs.iter().map(|x| guard(x, guard_fields)).collect::<Option<Vec<_>>>().map(|v| v.concat())
        }
    }
}

pub(super) fn compile(docs: Vec<(PathBuf, String)>, opts: &LoadOptions) -> Result<SigmaSet, String> {
    let mut b = Builder::default();
    let guard_fields = [b.field(Source::of(Some("eventName"))), b.field(Source::of(Some("eventSource")))];
    let mut rules = Vec::new();
    let mut rejected = Vec::new();
    let mut correlation_rules = Vec::new();
    for (path, text) in docs {
        // The legacy `condition: x | count() ... > n` is ours to read; rsigma gets the rest.
        let (text, aggregation) = match correlate::split_legacy(&text) {
            Ok(split) => split,
            Err(e) => {
                rejected.push((path, e));
                continue;
            }
        };
        let coll = match rsigma_parser::parse_sigma_yaml(&text) {
            Ok(c) => c,
            Err(e) => {
                rejected.push((path, e.to_string()));
                continue;
            }
        };
        rejected.extend(coll.errors.iter().map(|e| (path.clone(), e.clone())));
        for r in &coll.rules {
            if !is_cloudtrail(&r.logsource) {
                rejected.push((path.clone(), "logsource is not `product: aws` (`service: cloudtrail`)".into()));
                continue;
            }
            let mark = (b.patterns.len(), b.fields.len());
            let expr = (|| {
                let mut named = HashMap::new();
                // In name order, so what a rule compiles to (and its first error) is stable.
                let mut names: Vec<&String> = r.detection.named.keys().collect();
                names.sort();
                for name in names {
                    named.insert(name.clone(), b.detection(&r.detection.named[name], opts)?);
                }
                let conds = r.detection.conditions.iter().map(|c| condition(c, &named)).collect::<Result<Vec<_>, String>>()?;
                Ok::<_, String>(if conds.len() == 1 { conds.into_iter().next().unwrap_or(Expr::Or(vec![])) } else { Expr::Or(conds) })
            })();
            let expr = match expr {
                Ok(e) => e,
                Err(e) => {
                    b.patterns.truncate(mark.0);
                    b.fields.truncate(mark.1.max(guard_fields.len()));
                    rejected.push((path.clone(), e));
                    continue;
                }
            };
            let aggregation = match (&aggregation, &r.detection.timeframe) {
                (Some(a), tf) => match Aggregation::new(a, tf.as_deref()) {
                    Ok(a) => Some(a),
                    Err(e) => {
                        rejected.push((path.clone(), e));
                        continue;
                    }
                },
                (None, _) => None,
            };
            let id = r.id.clone().unwrap_or_else(|| r.title.clone());
            let meta = RuleMeta {
                id,
                title: r.title.clone(),
                description: r.description.clone().unwrap_or_default(),
                severity: r.level.as_ref().and_then(|l| Severity::parse(l.as_str())).unwrap_or(Severity::Medium),
                kind: if aggregation.is_some() { "correlation" } else { "sigma" },
                attacks: attacks_from_tags(&r.tags),
                references: r.references.clone(),
            };
            rules.push(SigmaRule { meta, path: path.clone(), expr, generate: aggregation.is_none(), aggregation, name: r.name.clone() });
        }
        for c in &coll.correlations {
            correlation_rules.push((path.clone(), c.clone()));
        }
    }
    let mut correlations: Vec<Correlation> = rules.iter().enumerate().filter_map(|(i, r)| r.aggregation.as_ref().map(|a| Correlation::from_aggregation(i, r, a))).collect();
    for (path, c) in correlation_rules {
        match Correlation::new(&c, &rules) {
            Ok(corr) => {
                // Rules a correlation uses are findings of their own only with `generate: true`.
                if !c.generate {
                    corr.rules.iter().for_each(|&r| rules[r].generate = false);
                }
                correlations.push(corr);
            }
            Err(e) => rejected.push((path, e)),
        }
    }

    // One automaton per field over every rule's patterns on it.
    let mut per_field: Vec<Vec<u32>> = vec![Vec::new(); b.fields.len()];
    for (id, (f, _)) in b.patterns.iter().enumerate() {
        per_field[*f].push(id as u32);
    }
    let automata = per_field
        .into_iter()
        .map(|ids| {
            if ids.is_empty() {
                return Ok(None);
            }
            let pats: Vec<&str> = ids.iter().map(|&i| b.patterns[i as usize].1.as_str()).collect();
            // Each pattern compiled alone when its rule loaded; together they can only exceed
            // the size limit, which is raised far above what rule packs need.
            let config = Config::new().match_kind(MatchKind::All).nfa_size_limit(Some(256 << 20)).hybrid_cache_capacity(8 << 20);
            let regex = Regex::builder().configure(config).build_many(&pats).map_err(|e| format!("the {} patterns on one field do not compile together: {e}", pats.len()))?;
            Ok(Some(FieldAutomaton { regex, ids }))
        })
        .collect::<Result<_, String>>()?;
    // Within an AND, columns before JSON: a cheap item that fails spares the parse.
    for r in &mut rules {
        order_by_cost(&mut r.expr, &b.fields);
    }
    let mut unguarded = Vec::new();
    let mut guards: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, r) in rules.iter().enumerate() {
        match guard(&r.expr, &guard_fields) {
            Some(ids) => ids.into_iter().for_each(|p| guards.entry(p).or_default().push(i)),
            None => unguarded.push(i),
        }
    }
    Ok(SigmaSet { rules, correlations, rejected, pattern_count: b.patterns.len(), fields: b.fields, automata, unguarded, guards, guard_fields: guard_fields.to_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("filter_main_*", "filter_main_ip"));
        assert!(glob("sel*", "sel"));
        assert!(!glob("sel*x", "selection"));
        assert!(glob("*", "anything"));
    }
}
