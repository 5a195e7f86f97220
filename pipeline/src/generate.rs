//! `ocelot gen cloudtrail`: realistic CloudTrail JSON Lines for load tests, made by varying
//! real sample events (Stratus Red Team detonations and AWS documentation examples, bundled in
//! `pipeline/data/gen/`): identities, times, ids, regions, accounts and source IPs change, the
//! shape and the mix of event names are the samples'. Deterministic for a seed.

use std::io::{self, Write};

use serde_json::{json, Value};

static TEMPLATES: &str = include_str!("../data/gen/cloudtrail-templates.jsonl");

const ACCOUNTS: &[&str] = &["111122223333", "444455556666", "777788889999"];
const REGIONS: &[&str] = &["us-east-1", "us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"];
const USERS: &[&str] = &["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "deploy-bot", "ci-runner"];
const ROLES: &[(&str, &str)] = &[
    ("Admin", "alice@example.com"),
    ("DevOps", "bob@example.com"),
    ("ReadOnly", "auditor"),
    ("terraform-apply", "github-actions-1234"),
    ("AgentOpsRole", "claude-code-session-7f3a"),
    ("AgentOpsRole", "copilot-agent-42"),
];

/// splitmix64: small, fast, and the same on every platform.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    pub fn uuid(&mut self) -> String {
        let (a, b) = (self.next_u64(), self.next_u64());
        format!("{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}", a >> 32, (a >> 16) & 0xffff, a & 0xfff, (b >> 48) & 0x3fff | 0x8000, b & 0xffff_ffff_ffff)
    }
}

/// The bundled sample events the generator varies.
pub fn templates() -> Vec<Value> {
    TEMPLATES.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter(|v| v.get("eventName").is_some()).collect()
}

/// Generates `events` CloudTrail records as JSON Lines into `out`, starting at `start_ms`,
/// 0-40 ms apart, each drawn from all the samples (most of them attack detonations).
pub fn cloudtrail(events: usize, seed: u64, start_ms: i64, out: &mut dyn Write) -> io::Result<()> {
    cloudtrail_mixed(events, seed, start_ms, 1000, out)
}

/// As `cloudtrail`, with `per_mille` of the records drawn from all the samples and the rest
/// from the read-only ones (Describe, List, Get...): closer to the everyday traffic of an
/// account, where reads are most calls.
pub fn cloudtrail_mixed(events: usize, seed: u64, start_ms: i64, per_mille: usize, out: &mut dyn Write) -> io::Result<()> {
    let templates = templates();
    let reads: Vec<Value> = templates
        .iter()
        .filter(|t| {
            let name = t.get("eventName").and_then(Value::as_str).unwrap_or_default();
            ocelot_detectors::verbs::activity_id(name, t.get("readOnly").and_then(Value::as_bool)) == 2
        })
        .cloned()
        .collect();
    let mut rng = Rng::new(seed);
    let mut t = start_ms;
    let mut line = Vec::with_capacity(4096);
    for _ in 0..events {
        let pool = if reads.is_empty() || rng.below(1000) < per_mille { &templates } else { &reads };
        let mut e = rng.pick(pool).clone();
        t += rng.below(40) as i64;
        vary(&mut e, &mut rng, t);
        line.clear();
        serde_json::to_writer(&mut line, &e)?;
        line.push(b'\n');
        out.write_all(&line)?;
    }
    Ok(())
}

fn vary(e: &mut Value, rng: &mut Rng, t_ms: i64) {
    let account = *rng.pick(ACCOUNTS);
    let region = *rng.pick(REGIONS);
    let time = chrono::DateTime::from_timestamp_millis(t_ms).unwrap_or_default().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let o = e.as_object_mut().expect("templates are objects");
    o.insert("eventID".into(), json!(rng.uuid()));
    o.insert("requestID".into(), json!(rng.uuid()));
    o.insert("eventTime".into(), json!(time));
    o.insert("awsRegion".into(), json!(region));
    o.insert("recipientAccountId".into(), json!(account));
    if o.get("sourceIPAddress").and_then(Value::as_str).is_some_and(|s| s.chars().next().is_some_and(|c| c.is_ascii_digit())) {
        // Documentation ranges (RFC 5737) and a few well-known public blocks.
        let ip = match rng.below(3) {
            0 => format!("198.51.100.{}", rng.below(254) + 1),
            1 => format!("203.0.113.{}", rng.below(254) + 1),
            _ => format!("192.0.2.{}", rng.below(254) + 1),
        };
        o.insert("sourceIPAddress".into(), json!(ip));
    }
    let key = format!("AKIA{:016X}", rng.next_u64());
    let identity = if rng.below(3) == 0 {
        let user = *rng.pick(USERS);
        json!({"type": "IAMUser", "principalId": format!("AIDA{:016X}", rng.next_u64()), "arn": format!("arn:aws:iam::{account}:user/{user}"),
               "accountId": account, "accessKeyId": key, "userName": user})
    } else {
        let (role, session) = *rng.pick(ROLES);
        let role_id = format!("AROA{:016X}", rng.next_u64() >> 8);
        json!({"type": "AssumedRole", "principalId": format!("{role_id}:{session}"),
               "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/{session}"), "accountId": account,
               "accessKeyId": key.replacen("AKIA", "ASIA", 1),
               "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": role_id, "arn": format!("arn:aws:iam::{account}:role/{role}"),
                                  "accountId": account, "userName": role},
                                  "attributes": {"creationDate": time, "mfaAuthenticated": "false"}}})
    };
    // Keep service principals (AWSService) as they are: they are part of the mix.
    if o.get("userIdentity").and_then(|u| u.get("type")).and_then(Value::as_str) != Some("AWSService") {
        o.insert("userIdentity".into(), identity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_by_seed_and_varied() {
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        cloudtrail(200, 7, 1_700_000_000_000, &mut a).unwrap();
        cloudtrail(200, 7, 1_700_000_000_000, &mut b).unwrap();
        cloudtrail(200, 8, 1_700_000_000_000, &mut c).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let events: Vec<Value> = a.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
        assert_eq!(events.len(), 200);
        let ids: std::collections::HashSet<_> = events.iter().map(|e| e["eventID"].as_str().unwrap().to_string()).collect();
        assert_eq!(ids.len(), 200, "event ids are unique");
        let names: std::collections::HashSet<_> = events.iter().map(|e| e["eventName"].as_str().unwrap()).collect();
        assert!(names.len() > 30, "a mix of event names: {}", names.len());
    }
}
