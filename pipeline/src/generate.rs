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

/// Real AWS commercial regions, for organization-shaped data.
pub const ALL_REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-east-1",
    "ca-central-1",
    "ca-west-1",
    "sa-east-1",
    "me-south-1",
    "me-central-1",
    "af-south-1",
    "il-central-1",
    "mx-central-1",
];

/// The spread of an organization trail: `accounts` accounts, `regions` regions, events spread
/// evenly over `days` days.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub accounts: usize,
    pub regions: usize,
    pub days: u32,
}

impl Shape {
    pub fn check(&self) -> Result<(), String> {
        if self.accounts == 0 || self.accounts > 100_000 {
            return Err(format!("--accounts {}: give 1 to 100000", self.accounts));
        }
        if self.regions == 0 || self.regions > ALL_REGIONS.len() {
            return Err(format!("--regions {}: give 1 to {} (the commercial regions)", self.regions, ALL_REGIONS.len()));
        }
        if self.days == 0 {
            return Err("--days 0: give 1 or more".into());
        }
        Ok(())
    }
}

/// As `cloudtrail`, across `shape.accounts` accounts (12-digit ids) and the first
/// `shape.regions` regions of [`ALL_REGIONS`], spread over `shape.days` days.
pub fn cloudtrail_org(events: usize, seed: u64, start_ms: i64, shape: Shape, out: &mut dyn Write) -> io::Result<()> {
    shape.check().map_err(io::Error::other)?;
    let accounts: Vec<String> = (0..shape.accounts).map(|i| format!("{:012}", 100_000_000_000u64 + (i as u64) * 7_919_113)).collect();
    let accounts: Vec<&str> = accounts.iter().map(String::as_str).collect();
    let span = shape.days as i64 * 86_400_000;
    let step = (span / events.max(1) as i64).max(1);
    write_events(events, seed, start_ms, 1000, &accounts, &ALL_REGIONS[..shape.regions], step, out)
}

/// As `cloudtrail`, with `per_mille` of the records drawn from all the samples and the rest
/// from the read-only ones (Describe, List, Get...): closer to the everyday traffic of an
/// account, where reads are most calls.
pub fn cloudtrail_mixed(events: usize, seed: u64, start_ms: i64, per_mille: usize, out: &mut dyn Write) -> io::Result<()> {
    write_events(events, seed, start_ms, per_mille, ACCOUNTS, REGIONS, 20, out)
}

/// Events `mean_step_ms` apart on average (0 to twice that), accounts and regions drawn evenly.
fn write_events(events: usize, seed: u64, start_ms: i64, per_mille: usize, accounts: &[&str], regions: &[&str], mean_step_ms: i64, out: &mut dyn Write) -> io::Result<()> {
    let templates = templates();
    let reads: Vec<Value> = templates
        .iter()
        .filter(|t| {
            let name = t.get("eventName").and_then(Value::as_str).unwrap_or_default();
            ocelot_normalize::verbs::activity_id(name, t.get("readOnly").and_then(Value::as_bool)) == 2
        })
        .cloned()
        .collect();
    let mut rng = Rng::new(seed);
    let mut t = start_ms;
    let mut line = Vec::with_capacity(4096);
    for _ in 0..events {
        let pool = if reads.is_empty() || rng.below(1000) < per_mille { &templates } else { &reads };
        let mut e = rng.pick(pool).clone();
        t += rng.below(2 * mean_step_ms as usize) as i64;
        vary(&mut e, &mut rng, t, accounts, regions);
        line.clear();
        serde_json::to_writer(&mut line, &e)?;
        line.push(b'\n');
        out.write_all(&line)?;
    }
    Ok(())
}

fn vary(e: &mut Value, rng: &mut Rng, t_ms: i64, accounts: &[&str], regions: &[&str]) {
    let account = *rng.pick(accounts);
    let region = *rng.pick(regions);
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

    #[test]
    fn an_org_trail_spans_its_accounts_regions_and_days() {
        let mut out = Vec::new();
        cloudtrail_org(20_000, 3, 1_700_006_400_000, Shape { accounts: 60, regions: 4, days: 2 }, &mut out).unwrap();
        let events: Vec<Value> = out.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
        let set = |k: &str| events.iter().map(|e| e[k].as_str().unwrap().to_string()).collect::<std::collections::HashSet<_>>();
        assert_eq!(set("recipientAccountId").len(), 60);
        assert_eq!(set("awsRegion"), ALL_REGIONS[..4].iter().map(|s| s.to_string()).collect());
        let days: std::collections::HashSet<_> = events.iter().map(|e| e["eventTime"].as_str().unwrap()[..10].to_string()).collect();
        assert!((2..=3).contains(&days.len()), "{days:?}");
        assert!(Shape { accounts: 1, regions: 99, days: 1 }.check().unwrap_err().contains("--regions"));
    }
}
