//! Behaviour rules: what an agent does against what it declared and what it usually does,
//! checks whose state outlives any SQL window (docs/detection.md, "Behaviour rules"). A rule is
//! a TOML file in `rules/behaviour/` naming one of three checks, with its parameters:
//!
//! - `out_of_scope`: a call in an account, region or service outside the agent's declared
//!   `scope`, or a mutation in one never seen for that agent once it is past its learning
//!   period (first-seen state, bounded, least recently seen forgotten first);
//! - `rate_anomaly`: an agent's mutations in one bucket exceed `factor` times its own baseline
//!   (a time-decayed mean of its active buckets) and an absolute `floor`;
//! - `foreign_client`: an agent's credentials used by a client its entry does not describe (a
//!   user agent none of its `user_agent` patterns match, a source outside `scope.source_ips`).
//!
//! They read CloudTrail rows an agent made (`actor.app_name`), and the `[[agents]]` the user
//! declared (the shipped agents declare no scope).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow::array::{ArrayRef, RecordBatch};
use regex_automata::meta::Regex;
use serde::Deserialize;

use crate::fields::{column, str_at};
use crate::rule::{Case, RuleMeta};
use ocelot_normalize::agents::{service_key, AgentRule};
use ocelot_normalize::net::Net;

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
    /// `out_of_scope`, `rate_anomaly` or `foreign_client`.
    check: String,
    #[serde(default)]
    params: toml::Table,
    /// A TOML file with the `[[agents]]` the cases run with (relative to the rules directory).
    #[serde(default)]
    agents: Option<PathBuf>,
    #[serde(default)]
    fires: Vec<PathBuf>,
    #[serde(default)]
    quiet: Vec<PathBuf>,
}

/// `out_of_scope` parameters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutOfScope {
    /// An agent's first-seen values are learnt, not reported, for this long after its first call.
    pub learn_minutes: u32,
    /// Most (agent, dimension, value) triples remembered.
    pub max_values: usize,
}

impl Default for OutOfScope {
    fn default() -> Self {
        OutOfScope { learn_minutes: 1440, max_values: 100_000 }
    }
}

/// `rate_anomaly` parameters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateAnomaly {
    pub bucket_minutes: u32,
    /// Fire when a bucket's mutations exceed `factor` x the baseline...
    pub factor: f64,
    /// ...and reach this many.
    pub floor: u64,
    /// A bucket's weight in the baseline halves every this many minutes.
    pub half_life_minutes: u32,
    /// Active buckets an agent needs in its history before its baseline is trusted.
    pub min_buckets: u32,
    /// Most agents followed; the least recently active is forgotten first.
    pub max_agents: usize,
}

impl Default for RateAnomaly {
    fn default() -> Self {
        RateAnomaly { bucket_minutes: 5, factor: 5.0, floor: 20, half_life_minutes: 1440, min_buckets: 3, max_agents: 10_000 }
    }
}

#[derive(Debug, Clone)]
pub enum Check {
    OutOfScope(OutOfScope),
    RateAnomaly(RateAnomaly),
    ForeignClient,
}

#[derive(Debug, Clone)]
pub struct BehaviourRule {
    pub meta: RuleMeta,
    pub path: PathBuf,
    pub check: Check,
    pub cases: Vec<Case>,
    /// The `[[agents]]` file the cases run with.
    pub agents: Option<PathBuf>,
}

/// The loaded behaviour rules (no state: see [`Behaviour`]).
#[derive(Debug, Clone, Default)]
pub struct BehaviourRules {
    pub rules: Vec<BehaviourRule>,
    pub rejected: Vec<(PathBuf, String)>,
}

fn params<T: for<'de> Deserialize<'de>>(t: toml::Table) -> Result<T, String> {
    T::deserialize(toml::Value::Table(t)).map_err(|e| format!("params: {}", e.to_string().trim()))
}

impl BehaviourRules {
    pub fn new(docs: Vec<(PathBuf, String)>) -> BehaviourRules {
        let mut out = BehaviourRules::default();
        for (path, text) in docs {
            match parse(&text) {
                Ok((meta, check, f)) => {
                    let cases = f.fires.into_iter().map(|events| Case { fires: true, events }).chain(f.quiet.into_iter().map(|events| Case { fires: false, events })).collect();
                    out.rules.push(BehaviourRule { meta, path, check, cases, agents: f.agents });
                }
                Err(e) => out.rejected.push((path, e)),
            }
        }
        out
    }

    pub fn load_dir(dir: &Path) -> Result<BehaviourRules, String> {
        let docs = crate::rule::read_files(dir, &["toml"])?;
        // Pattern rules are TOML too: a behaviour rule is one with a `check`.
        Ok(BehaviourRules::new(docs.into_iter().filter(|(_, t)| is_behaviour(t)).collect()))
    }

    pub fn shipped() -> BehaviourRules {
        let docs = crate::SHIPPED.iter().filter(|(p, _)| p.starts_with("behaviour/") && p.ends_with(".toml"));
        BehaviourRules::new(docs.map(|(p, t)| (PathBuf::from("rules").join(p), t.to_string())).collect())
    }
}

/// Whether a TOML file is a behaviour rule: it names a `check`.
pub fn is_behaviour(text: &str) -> bool {
    text.parse::<toml::Table>().is_ok_and(|t| t.contains_key("check"))
}

/// Whether a TOML file under a rule directory is an `[[agents]]` file for test cases, not a rule.
pub fn is_agents_file(text: &str) -> bool {
    text.parse::<toml::Table>().is_ok_and(|t| t.contains_key("agents") && !t.contains_key("id"))
}

fn parse(text: &str) -> Result<(RuleMeta, Check, RuleFile), String> {
    let mut f: RuleFile = toml::from_str(text).map_err(|e| e.to_string().replace('\n', " "))?;
    let meta = RuleMeta::from_toml("behaviour", &f.id, &f.title, &f.description, &f.severity, &f.attack, &f.tactics)?;
    let p = std::mem::take(&mut f.params);
    let check = match f.check.as_str() {
        "out_of_scope" => Check::OutOfScope(params(p)?),
        "rate_anomaly" => {
            let r: RateAnomaly = params(p)?;
            if r.bucket_minutes == 0 || r.half_life_minutes == 0 || r.factor.is_nan() || r.factor <= 0.0 {
                return Err("params: bucket_minutes, half_life_minutes and factor must be above zero".into());
            }
            Check::RateAnomaly(r)
        }
        "foreign_client" if p.is_empty() => Check::ForeignClient,
        "foreign_client" => return Err("params: foreign_client takes none (it reads the agents' user_agent patterns and scope.source_ips)".into()),
        other => return Err(format!("check `{other}`: expected out_of_scope, rate_anomaly or foreign_client")),
    };
    Ok((meta, check, f))
}

/// The OCSF columns the checks read: the agent, then where, what, and from which client.
pub const COLUMNS: [&str; 7] = ["actor.app_name", "cloud.account.uid", "cloud.region", "api.service.name", "api.operation", "http_request.user_agent", "src_endpoint.ip"];

/// One agent's declaration, compiled.
struct Profile {
    accounts: Vec<String>,
    regions: Vec<String>,
    services: Vec<String>,
    nets: Vec<Net>,
    /// Its user agents, when its entry also names its credentials (else the check is moot:
    /// the user agent is how it was recognized).
    clients: Option<Regex>,
}

impl Profile {
    fn new(a: &AgentRule) -> Result<Profile, String> {
        let lower = |v: &[String]| v.iter().map(|s| s.trim().to_ascii_lowercase()).collect::<Vec<_>>();
        let clients = if a.has_credential_patterns() && !a.user_agent.is_empty() { Some(Regex::new_many(&a.user_agent).map_err(|e| format!("agents `{}`: user_agent: {e}", a.name))?) } else { None };
        Ok(Profile {
            accounts: lower(&a.scope.accounts),
            regions: lower(&a.scope.regions),
            services: a.scope.services.iter().map(|s| service_key(s)).collect(),
            nets: a.scope.networks().map_err(|e| format!("agents `{}`: {e}", a.name))?,
            clients,
        })
    }
}

/// One hit of a behaviour rule on a row.
#[derive(Debug, Clone)]
pub struct BehaviourHit {
    pub rule: usize,
    pub row: usize,
    /// The finding's group key.
    pub group: String,
    /// The finding's window (rate buckets); else the suppression period of the event.
    pub window_start: Option<i64>,
    /// What the finding says about it (`reason`, `agent`, ...).
    pub context: Vec<(&'static str, String)>,
    /// Events the finding counts (a rate bucket's mutations), when more than the hits seen.
    pub count: Option<u64>,
}

/// First-seen (agent, dimension, value) triples, bounded.
#[derive(Default)]
struct FirstSeen {
    /// -> last seen (event time).
    values: HashMap<(String, &'static str, String), i64>,
    /// Agent -> its first call.
    since: HashMap<String, i64>,
}

impl FirstSeen {
    /// Records the value; true when it is new for an agent past its learning period.
    fn observe(&mut self, agent: &str, dim: &'static str, value: &str, time: i64, p: &OutOfScope) -> bool {
        let since = *self.since.entry(agent.to_string()).and_modify(|t| *t = (*t).min(time)).or_insert(time);
        let key = (agent.to_string(), dim, value.to_ascii_lowercase());
        if let Some(t) = self.values.get_mut(&key) {
            *t = (*t).max(time);
            return false;
        }
        self.values.insert(key, time);
        if self.values.len() > p.max_values.max(1) {
            // Forget the least recently seen tenth (amortized: not on every insert).
            let mut times: Vec<i64> = self.values.values().copied().collect();
            let cut = times.len() / 10;
            let (_, nth, _) = times.select_nth_unstable(cut);
            let nth = *nth;
            self.values.retain(|_, t| *t > nth);
            // Agents with no value left are forgotten too (one pass, not one per agent).
            let live: std::collections::HashSet<&str> = self.values.keys().map(|(a, ..)| a.as_str()).collect();
            self.since.retain(|a, _| live.contains(a.as_str()));
        }
        time - since >= i64::from(p.learn_minutes) * 60_000
    }
}

/// One agent's mutation rate.
struct Rate {
    bucket: i64,
    count: u64,
    /// Time-decayed sums over its closed active buckets: counts, and weights.
    sum: f64,
    weight: f64,
    /// Active buckets closed (for `min_buckets`).
    buckets: u32,
    /// When `sum`/`weight` were last decayed to.
    at: i64,
}

#[derive(Default)]
struct Rates {
    agents: HashMap<String, Rate>,
    late: u64,
}

impl Rates {
    /// Counts one mutation; the bucket's count, and the baseline, when the bucket is anomalous.
    fn observe(&mut self, agent: &str, time: i64, p: &RateAnomaly) -> Option<(i64, u64, f64)> {
        let size = i64::from(p.bucket_minutes) * 60_000;
        let half_life = f64::from(p.half_life_minutes) * 60_000.0;
        let bucket = time.div_euclid(size) * size;
        if !self.agents.contains_key(agent) && self.agents.len() >= p.max_agents.max(1) {
            let oldest = self.agents.iter().min_by_key(|(_, r)| r.bucket).map(|(a, _)| a.clone());
            oldest.map(|a| self.agents.remove(&a));
        }
        let r = self.agents.entry(agent.to_string()).or_insert(Rate { bucket, count: 0, sum: 0.0, weight: 0.0, buckets: 0, at: bucket });
        if bucket < r.bucket {
            // Older than the bucket being counted: that one is closed.
            self.late += 1;
            return None;
        }
        if bucket > r.bucket {
            let decay = |from: i64, to: i64| 0.5f64.powf((to - from) as f64 / half_life);
            let d = decay(r.at, r.bucket);
            r.sum = r.sum * d + r.count as f64;
            r.weight = r.weight * d + 1.0;
            r.buckets = r.buckets.saturating_add(1);
            r.at = r.bucket;
            r.bucket = bucket;
            r.count = 0;
            // A history decayed to nothing (an agent idle for many half-lives) is forgotten.
            if r.weight * decay(r.at, bucket) < 1.0 / 64.0 {
                (r.sum, r.weight, r.buckets) = (0.0, 0.0, 0);
            }
        }
        r.count += 1;
        if r.buckets < p.min_buckets || r.weight <= 0.0 {
            return None;
        }
        let baseline = r.sum / r.weight;
        (r.count >= p.floor && r.count as f64 > p.factor * baseline).then_some((bucket, r.count, baseline))
    }
}

/// The behaviour rules with their state.
pub struct Behaviour {
    pub rules: BehaviourRules,
    profiles: HashMap<String, Profile>,
    first_seen: FirstSeen,
    rates: Rates,
}

/// Counters exported as metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct BehaviourStats {
    pub first_seen_values: usize,
    pub rate_agents: usize,
    pub rate_late_events: u64,
}

fn list(v: &[String]) -> String {
    v.join(", ")
}

impl Behaviour {
    /// The rules and the declared agents (first entry of a name wins, as in the registry).
    pub fn new(rules: BehaviourRules, agents: &[AgentRule]) -> Result<Behaviour, String> {
        let mut profiles = HashMap::new();
        for a in agents {
            if !profiles.contains_key(&a.name) {
                profiles.insert(a.name.clone(), Profile::new(a)?);
            }
        }
        Ok(Behaviour { rules, profiles, first_seen: FirstSeen::default(), rates: Rates::default() })
    }

    pub fn stats(&self) -> BehaviourStats {
        BehaviourStats { first_seen_values: self.first_seen.values.len(), rate_agents: self.rates.agents.len(), rate_late_events: self.rates.late }
    }

    /// Every hit on the CloudTrail `rows` of a batch made by an agent.
    pub fn eval(&mut self, batch: &RecordBatch, rows: &[usize], time: impl Fn(usize) -> i64) -> Vec<BehaviourHit> {
        let mut hits = Vec::new();
        if self.rules.rules.is_empty() {
            return hits;
        }
        let [agent, cols @ ..]: [Option<ArrayRef>; 7] = COLUMNS.map(|c| column(batch, c));
        for &row in rows {
            let Some(name) = str_at(&agent, row) else { continue };
            let s = |i: usize| str_at(&cols[i], row);
            let (account, region, service, op, ua, ip) = (s(0), s(1), s(2).map(service_key), s(3), s(4), s(5));
            let t = time(row);
            let mutation = op.is_some_and(ocelot_normalize::verbs::is_mutation);
            let profile = self.profiles.get(name);
            for (ri, rule) in self.rules.rules.iter().enumerate() {
                let hit = |group: String, context: Vec<(&'static str, String)>| BehaviourHit { rule: ri, row, group, window_start: None, context, count: None };
                match &rule.check {
                    Check::OutOfScope(p) => {
                        let dims: [(&'static str, Option<&str>, &[String]); 3] = [
                            ("account", account, profile.map_or(&[][..], |p| &p.accounts[..])),
                            ("region", region, profile.map_or(&[][..], |p| &p.regions[..])),
                            ("service", service.as_deref(), profile.map_or(&[][..], |p| &p.services[..])),
                        ];
                        for (dim, value, declared) in dims {
                            let Some(v) = value.filter(|v| !v.is_empty()) else { continue };
                            let new = mutation && self.first_seen.observe(name, dim, v, t, p);
                            let outside = !declared.is_empty() && !declared.iter().any(|d| d.eq_ignore_ascii_case(v));
                            let reason = if outside {
                                format!("{dim} {v} is outside agent {name}'s declared scope ({})", list(declared))
                            } else if new {
                                format!("first {dim} {v} for agent {name} ({}), past its {}-minute learning period", op.unwrap_or("a call"), p.learn_minutes)
                            } else {
                                continue;
                            };
                            hits.push(hit(
                                format!("{name}|{dim}|{}", v.to_ascii_lowercase()),
                                vec![("agent", name.to_string()), ("reason", reason), ("dimension", dim.to_string()), ("value", v.to_string())],
                            ));
                        }
                    }
                    Check::RateAnomaly(p) => {
                        if !mutation {
                            continue;
                        }
                        if let Some((bucket, count, baseline)) = self.rates.observe(name, t, p) {
                            let reason = format!("{count} mutations by agent {name} in {} minutes, over {}x its baseline of {baseline:.1}", p.bucket_minutes, p.factor);
                            let context = vec![("agent", name.to_string()), ("reason", reason), ("baseline", format!("{baseline:.2}")), ("bucket_count", count.to_string())];
                            hits.push(BehaviourHit { rule: ri, row, group: name.to_string(), window_start: Some(bucket), context, count: Some(count) });
                        }
                    }
                    Check::ForeignClient => {
                        let Some(p) = profile else { continue };
                        // Calls AWS services make with the agent's role (CloudFormation, ...).
                        let by_aws = |v: &str| v.ends_with(".amazonaws.com") || v.eq_ignore_ascii_case("AWS Internal");
                        let mut reasons = Vec::new();
                        if let (Some(re), Some(ua)) = (&p.clients, ua.filter(|u| !by_aws(u)))
                            && !re.is_match(ua.to_ascii_lowercase().as_str())
                        {
                            reasons.push(("user_agent", ua.to_string(), format!("agent {name}'s credentials used by user agent `{ua}`, which none of its user_agent patterns match")));
                        }
                        if let Some(addr) = ip.filter(|_| !p.nets.is_empty()).and_then(|i| i.parse::<std::net::IpAddr>().ok())
                            && !p.nets.iter().any(|n| n.contains(addr))
                        {
                            reasons.push(("source_ip", addr.to_string(), format!("agent {name}'s credentials used from {addr}, outside its scope.source_ips")));
                        }
                        for (dim, value, reason) in reasons {
                            hits.push(hit(format!("{name}|{dim}|{value}"), vec![("agent", name.to_string()), ("reason", reason), ("dimension", dim.to_string()), ("value", value)]));
                        }
                    }
                }
            }
        }
        hits
    }
}

/// Behaviour rules as a [`Detector`] over the CloudTrail rows of each batch.
pub struct BehaviourDetector {
    behaviour: Behaviour,
    metas: Vec<std::sync::Arc<RuleMeta>>,
}

impl BehaviourDetector {
    pub fn new(behaviour: Behaviour) -> BehaviourDetector {
        let metas = behaviour.rules.rules.iter().map(|r| std::sync::Arc::new(r.meta.clone())).collect();
        BehaviourDetector { behaviour, metas }
    }
}

impl crate::detector::Detector for BehaviourDetector {
    fn rules(&self) -> usize {
        self.behaviour.rules.rules.len()
    }

    fn process(&mut self, input: &crate::detector::Input<'_>, out: &mut crate::detector::Open<'_>) {
        let summaries = input.summaries;
        for hit in self.behaviour.eval(input.batch, input.cloudtrail, |r| summaries.time(r)) {
            let ev = summaries.get(hit.row);
            let ws = hit.window_start.unwrap_or_else(|| out.period(ev.time));
            let f = out.finding(&self.metas[hit.rule], &hit.group, ws, ev.time);
            f.add(&ev);
            f.count = f.count.max(hit.count.unwrap_or(0));
            // The latest hit's reason, counts and baseline.
            for (k, v) in hit.context {
                f.context.insert(k.into(), serde_json::Value::String(v));
            }
        }
    }

    /// The learning periods and the rate baselines' half-life (a day by default).
    fn horizon_ms(&self) -> i64 {
        let minutes = |c: &Check| match c {
            Check::OutOfScope(p) => i64::from(p.learn_minutes),
            Check::RateAnomaly(p) => i64::from(p.half_life_minutes).max(i64::from(p.bucket_minutes) * i64::from(p.min_buckets + 1)),
            Check::ForeignClient => 0,
        };
        self.behaviour.rules.rules.iter().map(|r| minutes(&r.check) * 60_000).max().unwrap_or(0)
    }

    fn stats(&self, stats: &mut crate::engine::Stats) {
        let b = self.behaviour.stats();
        stats.first_seen_values += b.first_seen_values;
        stats.rate_agents += b.rate_agents;
        stats.late_events += b.rate_late_events;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_fires_over_factor_and_floor_after_history() {
        let p = RateAnomaly::default();
        let mut r = Rates::default();
        let min = 60_000;
        // Three quiet buckets of 4 mutations: no history yet, nothing fires.
        for b in 0..3 {
            for i in 0..4 {
                assert!(r.observe("a", b * 5 * min + i, &p).is_none());
            }
        }
        // A burst: fires once above 5 x 4 (and past the floor of 20), not before.
        let fired: Vec<_> = (0..25).map(|i| r.observe("a", 3 * 5 * min + i, &p)).collect();
        assert!(fired[..20].iter().all(Option::is_none));
        let (bucket, count, baseline) = fired[20].unwrap();
        assert_eq!((bucket, count), (15 * min, 21));
        assert!((baseline - 4.0).abs() < 0.01, "{baseline}");
        // A steady busy agent: 25 a bucket is its normal, never 5x.
        let mut steady = Rates::default();
        for b in 0..10 {
            for i in 0..25 {
                assert!(steady.observe("b", b * 5 * min + i, &p).is_none());
            }
        }
        // Late events (an older bucket) are counted, not folded in.
        assert!(steady.observe("b", 0, &p).is_none());
        assert_eq!(steady.late, 1);
    }

    #[test]
    fn history_decays_and_agents_are_bounded() {
        let p = RateAnomaly { max_agents: 2, half_life_minutes: 60, ..RateAnomaly::default() };
        let mut r = Rates::default();
        for b in 0..4 {
            r.observe("a", b * 300_000, &p);
        }
        // Idle for a week: the history is forgotten, so the next burst has no baseline.
        let week = 7 * 86_400_000;
        assert!((0..30).all(|i| r.observe("a", week + i, &p).is_none()));
        r.observe("b", week, &p);
        r.observe("c", week + 300_000, &p);
        assert_eq!(r.agents.len(), 2);
    }

    #[test]
    fn first_seen_learns_then_reports_and_forgets_oldest() {
        let p = OutOfScope { learn_minutes: 60, max_values: 10 };
        let mut f = FirstSeen::default();
        assert!(!f.observe("a", "region", "us-east-1", 0, &p));
        assert!(!f.observe("a", "region", "eu-west-1", 30 * 60_000, &p), "still learning");
        assert!(f.observe("a", "region", "ap-south-1", 61 * 60_000, &p));
        assert!(!f.observe("a", "region", "AP-SOUTH-1", 62 * 60_000, &p), "known now, any case");
        for i in 0..20 {
            f.observe("a", "service", &format!("s{i}"), 70 * 60_000 + i, &p);
        }
        assert!(f.values.len() <= 10);
    }

    #[test]
    fn bad_rules_name_the_problem() {
        let bad = BehaviourRules::new(vec![
            ("a.toml".into(), "id='a'\ntitle='a'\nseverity='high'\ncheck='nope'".into()),
            ("b.toml".into(), "id='b'\ntitle='b'\nseverity='high'\ncheck='rate_anomaly'\n[params]\nfactr=3".into()),
            ("c.toml".into(), "id='c'\ntitle='c'\nseverity='high'\ncheck='rate_anomaly'\n[params]\nfactor=0".into()),
        ]);
        assert!(bad.rules.is_empty());
        assert!(bad.rejected[0].1.contains("check `nope`"), "{:?}", bad.rejected);
        assert!(bad.rejected[1].1.contains("factr"), "{:?}", bad.rejected);
        assert!(bad.rejected[2].1.contains("above zero"), "{:?}", bad.rejected);
        let scope = AgentRule { name: "x".into(), scope: ocelot_normalize::agents::Scope { source_ips: vec!["10.0.0.0/33".into()], ..Default::default() }, ..Default::default() };
        assert!(Behaviour::new(BehaviourRules::default(), &[scope]).err().unwrap().contains("scope.source_ips: `10.0.0.0/33`"));
    }
}
