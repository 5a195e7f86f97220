//! Findings as OCSF Detection Finding (2004). The uid is derived from (rule, group key,
//! window), so a replay or a redelivery updates a finding instead of duplicating it.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::event::{EventSummary, Resource};
use crate::rule::RuleMeta;

/// Most related event uids and evidences one finding keeps (the count keeps counting).
pub const MAX_RELATED: usize = 100;
pub const MAX_EVIDENCES: usize = 10;
pub const MAX_RESOURCES: usize = 50;

#[derive(Debug, Clone)]
pub struct Finding {
    pub uid: String,
    pub rule: Arc<RuleMeta>,
    pub group: String,
    pub window_start: i64,
    pub first_seen: i64,
    pub last_seen: i64,
    pub count: u64,
    pub related: Vec<String>,
    pub evidences: Vec<EventSummary>,
    pub resources: Vec<Resource>,
    /// Extra facts a rule adds (approval state, thresholds...), in `finding_info.desc` and `unmapped`.
    pub context: Map<String, Value>,
    /// Hashes of the uids counted, so a redelivered event is not counted twice (bounded by the
    /// finding's life: one suppression period).
    seen: std::collections::HashSet<u64>,
}

/// The deterministic finding uid, UUID-shaped.
pub fn finding_uid(rule: &str, group: &str, window_start: i64) -> String {
    let mut h = Sha256::new();
    h.update(rule.as_bytes());
    h.update([0]);
    h.update(group.as_bytes());
    h.update([0]);
    h.update(window_start.to_be_bytes());
    let d = h.finalize();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let x: String = d[..16].iter().flat_map(|b| [HEX[usize::from(b >> 4)] as char, HEX[usize::from(b & 15)] as char]).collect();
    format!("{}-{}-{}-{}-{}", &x[..8], &x[8..12], &x[12..16], &x[16..20], &x[20..32])
}

/// ATT&CK tactic ids by the names Sigma tags use.
const TACTICS: &[(&str, &str, &str)] = &[
    ("reconnaissance", "TA0043", "Reconnaissance"),
    ("resource-development", "TA0042", "Resource Development"),
    ("initial-access", "TA0001", "Initial Access"),
    ("execution", "TA0002", "Execution"),
    ("persistence", "TA0003", "Persistence"),
    ("privilege-escalation", "TA0004", "Privilege Escalation"),
    ("defense-evasion", "TA0005", "Defense Evasion"),
    ("credential-access", "TA0006", "Credential Access"),
    ("discovery", "TA0007", "Discovery"),
    ("lateral-movement", "TA0008", "Lateral Movement"),
    ("collection", "TA0009", "Collection"),
    ("command-and-control", "TA0011", "Command and Control"),
    ("exfiltration", "TA0010", "Exfiltration"),
    ("impact", "TA0040", "Impact"),
];

fn attacks(rule: &RuleMeta) -> Vec<Value> {
    let mut out = Vec::new();
    for a in &rule.attacks {
        let (technique, sub) = match a.technique.split_once('.') {
            Some((t, _)) => (t.to_string(), Some(a.technique.clone())),
            None => (a.technique.clone(), None),
        };
        let tactics: Vec<Value> = a.tactics.iter().filter_map(|t| TACTICS.iter().find(|(n, ..)| n == t)).map(|(_, uid, name)| json!({"uid": uid, "name": name})).collect();
        let mut v = json!({"technique": {"uid": technique}, "version": "v16"});
        if let Some(sub) = sub {
            v["sub_technique"] = json!({"uid": sub});
        }
        if let Some(t) = tactics.first() {
            v["tactic"] = t.clone();
        }
        if tactics.len() > 1 {
            v["tactics"] = Value::Array(tactics);
        }
        out.push(v);
    }
    out
}

impl Finding {
    /// A finding with no event yet, first seen at `time`.
    pub fn new(rule: Arc<RuleMeta>, group: String, window_start: i64, time: i64) -> Finding {
        Finding {
            uid: finding_uid(&rule.id, &group, window_start),
            rule,
            group,
            window_start,
            first_seen: time,
            last_seen: time,
            count: 0,
            related: Vec::new(),
            evidences: Vec::new(),
            resources: Vec::new(),
            context: Map::new(),
            seen: Default::default(),
        }
    }

    /// Whether it holds all the related events and evidences it keeps: later events only count
    /// (`count_event`), and their summaries need not be built. (So resources come from the
    /// first MAX_RELATED events.)
    pub fn saturated(&self) -> bool {
        self.related.len() >= MAX_RELATED && self.evidences.len() >= MAX_EVIDENCES
    }

    /// Counts one matching event by uid and time; false when it was counted before (a
    /// redelivered event is not counted twice).
    pub fn count_event(&mut self, uid: &str, time: i64) -> bool {
        if !uid.is_empty() {
            use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
            if !self.seen.insert(BuildHasherDefault::<DefaultHasher>::default().hash_one(uid)) {
                return false;
            }
        }
        self.count += 1;
        self.first_seen = self.first_seen.min(time);
        self.last_seen = self.last_seen.max(time);
        true
    }

    /// Adds one matching event: counted, and kept as related event, resources and evidence
    /// while there is room.
    pub fn add(&mut self, e: &EventSummary) {
        if !self.count_event(&e.uid, e.time) {
            return;
        }
        if self.related.len() < MAX_RELATED && !e.uid.is_empty() {
            self.related.push(e.uid.clone());
        }
        for r in &e.resources {
            if self.resources.len() < MAX_RESOURCES && !self.resources.contains(r) {
                self.resources.push(r.clone());
            }
        }
        if self.evidences.len() < MAX_EVIDENCES {
            self.evidences.push(e.clone());
        }
    }

    /// One line for people: the rule, and who (agent, for whom, approval) or why when known.
    pub fn message(&self) -> String {
        let c = |k: &str| self.context.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
        let mut m = self.rule.title.clone();
        // A behaviour rule says in one sentence what it saw, the agent included.
        if let Some(reason) = c("reason") {
            return format!("{m}: {reason}");
        }
        if let Some(agent) = c("agent") {
            m.push_str(&format!(": agent {agent}"));
            if let Some(h) = c("human") {
                m.push_str(&format!(" working for {h}"));
            }
            if let Some(conv) = c("conversation") {
                m.push_str(&format!(", conversation {conv}"));
            }
            if let Some(a) = c("approval") {
                m.push_str(&format!(", approval {a}"));
            }
            if let Some(who) = c("approved_by") {
                m.push_str(&format!(" by {who}"));
            }
        }
        if let Some(ops) = c("operations").or(c("operation")) {
            m.push_str(&format!(" ({ops})"));
        }
        m
    }

    /// As `to_ocsf`, with OCSF `json` attributes (`unmapped`, `evidences[].data`) as text, which
    /// is how Arrow and Parquet hold them.
    pub fn to_lake_json(&self) -> Value {
        let mut f = self.to_ocsf();
        if let Some(u) = f.get_mut("unmapped") {
            *u = Value::String(u.to_string());
        }
        if let Some(Value::Array(evs)) = f.get_mut("evidences") {
            for e in evs {
                if let Some(d) = e.get_mut("data") {
                    *d = Value::String(d.to_string());
                }
            }
        }
        // Kept once, at the top level, where the projection has it.
        if let Some(info) = f.get_mut("finding_info").and_then(Value::as_object_mut) {
            info.remove("attacks");
        }
        f
    }

    /// The finding as an OCSF 1.8.0 Detection Finding.
    pub fn to_ocsf(&self) -> Value {
        let rule = &self.rule;
        let (activity_id, activity) = if self.count > 1 { (2, "Update") } else { (1, "Create") };
        let first = self.evidences.first();
        let mut info = json!({
            "uid": self.uid,
            "title": rule.title,
            "desc": rule.description,
            "types": [rule.kind],
            "analytic": {"uid": rule.id, "name": rule.title, "type_id": 1, "type": "Rule", "category": rule.kind},
            "first_seen_time": self.first_seen,
            "last_seen_time": self.last_seen,
            "related_events_count": self.count,
            "related_events": self.related.iter().map(|u| json!({"uid": u})).collect::<Vec<_>>(),
        });
        if let Some(a) = Some(attacks(rule)).filter(|a| !a.is_empty()) {
            info["attacks"] = Value::Array(a);
        }
        if !rule.references.is_empty() {
            info["src_url"] = json!(rule.references[0]);
        }
        let mut f = json!({
            "class_uid": 2004,
            "class_name": "Detection Finding",
            "category_uid": 2,
            "category_name": "Findings",
            "activity_id": activity_id,
            "activity_name": activity,
            "type_uid": 200400 + activity_id,
            "type_name": format!("Detection Finding: {activity}"),
            "time": self.last_seen,
            "start_time": self.first_seen,
            "end_time": self.last_seen,
            "count": self.count,
            "severity_id": rule.severity as i32,
            "severity": rule.severity.name(),
            "status_id": 1,
            "status": "New",
            "message": rule.title,
            "metadata": {
                "version": ocelot_schemas::OCSF_VERSION,
                "uid": self.uid,
                "product": {"name": "Ocelot", "vendor_name": "Ocelot", "version": env!("CARGO_PKG_VERSION")},
                "log_name": "findings",
                "event_code": rule.id,
            },
            "finding_info": info,
        });
        if let Some(a) = Some(attacks(rule)).filter(|a| !a.is_empty()) {
            f["attacks"] = Value::Array(a);
        }
        if let Some(actor) = first.and_then(EventSummary::actor) {
            f["actor"] = actor;
        }
        // The agent a rule established (through its tool calls) is the actor's application.
        if let Some(agent) = self.context.get("agent").and_then(Value::as_str).filter(|a| !a.is_empty()) {
            if !f["actor"].is_object() {
                f["actor"] = json!({});
            }
            f["actor"]["app_name"] = json!(agent);
        }
        f["message"] = json!(self.message());
        if let Some(e) = first {
            let mut cloud = json!({"provider": "AWS"});
            if let Some(r) = &e.region {
                cloud["region"] = json!(r);
            }
            if let Some(a) = &e.account {
                cloud["account"] = json!({"uid": a, "type": "AWS Account", "type_id": 10});
            }
            f["cloud"] = cloud;
        }
        if !self.resources.is_empty() {
            f["resources"] = Value::Array(self.resources.iter().map(Resource::to_ocsf).collect());
        }
        if !self.evidences.is_empty() {
            f["evidences"] = Value::Array(self.evidences.iter().map(EventSummary::evidence).collect());
        }
        // The profiles whose attributes the finding carries: OCSF allows `attacks` with
        // security_control, `actor` with host and `cloud` with cloud only where listed.
        let profiles: Vec<&str> = [("attacks", "security_control"), ("actor", "host"), ("cloud", "cloud")].into_iter().filter(|(k, _)| f.get(*k).is_some()).map(|(_, p)| p).collect();
        f["metadata"]["profiles"] = json!(profiles);
        let mut unmapped = self.context.clone();
        unmapped.insert("group".into(), json!(self.group));
        unmapped.insert("window_start".into(), json!(self.window_start));
        f["unmapped"] = Value::Object(unmapped);
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_is_deterministic_and_uuid_shaped() {
        let a = finding_uid("r", "g", 60_000);
        assert_eq!(a, finding_uid("r", "g", 60_000));
        assert_ne!(a, finding_uid("r", "g", 120_000));
        assert_ne!(a, finding_uid("r", "h", 60_000));
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }
}
