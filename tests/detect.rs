//! `ocelot detect` and `ocelot rules` end to end: every Stratus Red Team technique is found with
//! its key event among the finding's related events; every rule's own cases pass.

mod common;

use std::collections::BTreeSet;

use common::{ocelot, repo};
use serde_json::Value;

/// Events of a detonation that do not tell the technique apart: reconnaissance and setup that
/// every technique's tooling does, and Stratus's own clean-up.
const NOT_KEY: &[&str] = &[
    "sts:GetCallerIdentity",
    "sts:AssumeRole",
    "ec2:DescribeInstances",
    "ssm:DescribeInstanceInformation",
    "ssm:GetCommandInvocation",
    "secretsmanager:ListSecrets",
    "ssm:DescribeParameters",
    "iam:DeleteLoginProfile",
];

fn detect(args: &[&str]) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("findings.jsonl");
    let o = ocelot().arg("detect").args(args).arg("--out").arg(&out).current_dir(repo()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn every_stratus_technique_yields_a_finding_on_its_key_event() {
    let findings = detect(&["samples/cloudtrail/stratus"]);
    let related: BTreeSet<String> = findings.iter().flat_map(|f| f["finding_info"]["related_events"].as_array().unwrap().iter().map(|r| r["uid"].as_str().unwrap().to_string())).collect();
    let labels: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(repo().join("samples/provenance/stratus-labels.json")).unwrap()).unwrap();
    assert_eq!(labels.len(), 25);
    let mut missed = Vec::new();
    for t in &labels {
        let id = t["technique_id"].as_str().unwrap();
        let key: Vec<&str> = t["documented_detonation_events"].as_array().unwrap().iter().filter_map(Value::as_str).filter(|e| !NOT_KEY.contains(e)).collect();
        assert!(!key.is_empty(), "{id}: no key event");
        let text = std::fs::read_to_string(repo().join(format!("samples/cloudtrail/stratus/{id}.jsonl"))).unwrap();
        let found = text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).any(|e| {
            let name = format!("{}:{}", e["eventSource"].as_str().unwrap().split('.').next().unwrap(), e["eventName"].as_str().unwrap());
            key.contains(&name.as_str()) && related.contains(e["eventID"].as_str().unwrap())
        });
        if !found {
            missed.push(id);
        }
    }
    assert!(missed.is_empty(), "techniques without a finding on a key event: {missed:?}");
}

/// The Stratus Red Team AWS techniques without a detonation log in the bundled data: synthetic
/// key records (tests/data/cloudtrail/stratus-synthetic, written from the AWS API reference;
/// NOTICE). Each raises a finding with a key event among its related events.
#[test]
fn every_synthetic_stratus_technique_yields_a_finding_on_its_key_event() {
    let dir = repo().join("tests/data/cloudtrail/stratus-synthetic");
    let labels: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(dir.join("labels.json")).unwrap()).unwrap();
    assert!(labels.len() >= 21);
    let mut missed = Vec::new();
    for t in &labels {
        let id = t["technique_id"].as_str().unwrap();
        let findings = detect(&[dir.join(format!("{id}.jsonl")).to_str().unwrap()]);
        let related: BTreeSet<String> = findings.iter().flat_map(|f| f["finding_info"]["related_events"].as_array().unwrap().iter().map(|r| r["uid"].as_str().unwrap().to_string())).collect();
        let key: Vec<&str> = t["key_events"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        let text = std::fs::read_to_string(dir.join(format!("{id}.jsonl"))).unwrap();
        let found = text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).any(|e| {
            let name = format!("{}:{}", e["eventSource"].as_str().unwrap().split('.').next().unwrap(), e["eventName"].as_str().unwrap());
            key.contains(&name.as_str()) && related.contains(e["eventID"].as_str().unwrap())
        });
        if !found {
            missed.push(id.to_string());
        }
    }
    assert!(missed.is_empty(), "synthetic techniques without a finding on a key event: {missed:?}");
}

/// docs/detection.md's coverage table names every technique, detonated or synthetic.
#[test]
fn the_stratus_coverage_table_lists_every_technique() {
    let doc = std::fs::read_to_string(repo().join("docs/detection.md")).unwrap();
    let mut ids = Vec::new();
    for labels in ["samples/provenance/stratus-labels.json", "tests/data/cloudtrail/stratus-synthetic/labels.json"] {
        let l: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(repo().join(labels)).unwrap()).unwrap();
        ids.extend(l.iter().map(|t| t["technique_id"].as_str().unwrap().to_string()));
    }
    assert!(ids.len() >= 46, "{}", ids.len());
    let missing: Vec<&String> = ids.iter().filter(|id| !doc.contains(&format!("| `{id}` |"))).collect();
    assert!(missing.is_empty(), "not in docs/detection.md's table: {missing:?}");
}

#[test]
fn every_rule_loads_and_passes_its_own_cases() {
    let o = ocelot().args(["rules", "validate"]).current_dir(repo()).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    // Two SigmaHQ rules cannot load, by design and with a reason: one needs placeholder values,
    // one uses the legacy `near` (say so rather than guess).
    let rejected: Vec<&str> = text.lines().filter(|l| l.starts_with("REJECT")).collect();
    assert_eq!(rejected.len(), 2, "{text}");
    assert!(rejected.iter().any(|l| l.contains("placeholder %Legitimate_")) && rejected.iter().any(|l| l.contains("`| near`")));
    let o = ocelot().args(["rules", "test"]).current_dir(repo()).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert!(text.contains(" 0 failed") && text.lines().filter(|l| l.starts_with("ok")).count() >= 20, "{text}");
    let o = ocelot().args(["rules", "list"]).current_dir(repo()).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("ocelot.audit-tampering") && text.contains("T1562.008") && text.contains("AWS CloudTrail Important Change"), "{text}");
}

#[test]
fn a_lake_replay_finds_what_the_files_give() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let o = ocelot().args(["normalize", "samples/cloudtrail/stratus", "--lake"]).arg(&lake).current_dir(repo()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let uids = |fs: &[Value]| fs.iter().map(|f| f["finding_info"]["uid"].as_str().unwrap().to_string()).collect::<BTreeSet<_>>();
    let from_files = detect(&["samples/cloudtrail/stratus"]);
    let from_lake = detect(&["--lake", lake.to_str().unwrap()]);
    assert_eq!(uids(&from_files), uids(&from_lake), "same findings, same uids, from files and from the lake");
    // --since/--until narrow the replay: the Stratus detonations span 2024-07-30 .. 2024-08-01.
    let none = detect(&["--lake", lake.to_str().unwrap(), "--since", "2030-01-01T00:00:00Z"]);
    assert!(none.is_empty());
}

fn by_rule<'f>(findings: &'f [Value], rule: &str) -> Vec<&'f Value> {
    findings.iter().filter(|f| f["finding_info"]["analytic"]["uid"] == rule).collect()
}

fn ctx<'f>(f: &'f Value, key: &str) -> &'f str {
    f["unmapped"][key].as_str().unwrap_or_default()
}

#[test]
fn agent_sessions_trip_the_ai_rules_with_agent_conversation_and_approval() {
    let findings = detect(&["samples/agent/session", "samples/agent/cleanup"]);
    let schema = ocelot_schemas::schema();
    let class = schema.class("detection_finding").unwrap();
    for f in &findings {
        assert!(ocelot_schemas::validate_event(schema, class, f).is_empty(), "{f:#}");
    }

    // Rule 2: destructive changes nobody approved, each with its agent, conversation, approval.
    let unapproved = by_rule(&findings, "ocelot.agent-destructive-unapproved");
    let find = |conv: &str| unapproved.iter().find(|f| ctx(f, "conversation") == conv).unwrap_or_else(|| panic!("no rule-2 finding for {conv}: {unapproved:#?}"));
    let rejected = find("conv-7f3a9c2e");
    assert_eq!(
        (ctx(rejected, "agent"), ctx(rejected, "approval"), ctx(rejected, "tool_calls"), ctx(rejected, "operations")),
        ("infra-agent", "rejected_but_executed", "toolu_03", "TerminateInstances")
    );
    assert_eq!(ctx(rejected, "human"), "alice@example.com");
    assert_eq!(rejected["actor"]["app_name"], "infra-agent");
    let mcp = find("mcp-4d1e");
    assert_eq!((ctx(mcp, "approval"), ctx(mcp, "operations")), ("no_decision", "DeleteBucket"));
    assert_eq!(ctx(find("mcp-9b2c"), "approval"), "no_decision");
    assert_eq!(unapproved.len(), 3, "the human-approved and config-approved calls are not destructive: {unapproved:#?}");

    // Rule 1: the clean-up agent changed 14 resources in 3 minutes.
    let blast = by_rule(&findings, "ocelot.agent-blast-radius");
    assert_eq!(blast.len(), 1);
    assert_eq!((ctx(blast[0], "agent"), ctx(blast[0], "resources_changed")), ("ops-agent", "14"));
    assert_eq!(blast[0]["finding_info"]["related_events"].as_array().unwrap().len(), 14);

    // Rule 5: data destroyed, in both sessions.
    let destroyed = by_rule(&findings, "ocelot.agent-data-destruction");
    assert_eq!(destroyed.len(), 2);
    let cleanup = destroyed.iter().find(|f| ctx(f, "conversation") == "mcp-9b2c").unwrap();
    assert!(ctx(cleanup, "operations").contains("DeleteDBInstance") && ctx(cleanup, "resources_destroyed").contains("orders-db"));

    // Rule 9: the commands themselves, before any cloud call.
    let commands = by_rule(&findings, "ocelot.agent-destructive-commands");
    let cmd = |conv: &str| commands.iter().find(|f| ctx(f, "conversation") == conv).map(|f| ctx(f, "matched")).unwrap_or_default();
    assert_eq!(cmd("mcp-4d1e"), "aws s3 rb --force");
    assert!(cmd("mcp-9b2c").contains("--skip-final-snapshot") && cmd("mcp-9b2c").contains("aws s3 rb --force"), "{}", cmd("mcp-9b2c"));

    // A benign session trips none of Ocelot's rules (SigmaHQ's low-severity "AWS STS AssumeRole
    // Misuse" fires on any assumed-role call, the benign agent's included).
    let benign = detect(&["samples/agent/benign"]);
    let ours: Vec<&Value> = benign.iter().filter(|f| f["finding_info"]["analytic"]["uid"].as_str().unwrap().starts_with("ocelot.")).collect();
    assert!(ours.is_empty(), "{ours:#?}");
}

#[test]
fn behaviour_rules_say_which_agent_left_its_scope_rate_or_client() {
    const AGENTS: &str = "samples/agents.toml";
    let findings = detect(&["--agents", AGENTS, "samples/agent/astray", "detectors/rules/tests/agent-first-seen.fires.jsonl"]);
    let schema = ocelot_schemas::schema();
    let class = schema.class("detection_finding").unwrap();
    for f in &findings {
        assert!(ocelot_schemas::validate_event(schema, class, f).is_empty(), "{f:#}");
    }
    let reasons = |rule: &str| by_rule(&findings, rule).iter().map(|f| (ctx(f, "agent").to_string(), ctx(f, "reason").to_string())).collect::<BTreeSet<_>>();

    // Rule 7: outside the declared region and account; the first IAM change of an agent that
    // worked in EC2 for a day.
    let scope = reasons("ocelot.agent-out-of-scope");
    let want: BTreeSet<(String, String)> = [
        ("aws-api-mcp-server", "region eu-north-1 is outside agent aws-api-mcp-server's declared scope (us-east-1)"),
        ("aws-api-mcp-server", "account 444455556666 is outside agent aws-api-mcp-server's declared scope (111122223333)"),
        ("cursor", "first service iam for agent cursor (CreateAccessKey), past its 1440-minute learning period"),
    ]
    .map(|(a, r)| (a.to_string(), r.to_string()))
    .into();
    assert_eq!(scope, want);

    // Rule 8: 30 changes in one 5-minute bucket against a baseline of 4.
    let burst = detect(&["detectors/rules/tests/agent-rate-anomaly.fires.jsonl"]);
    let rate = by_rule(&burst, "ocelot.agent-rate-anomaly");
    assert_eq!(rate.len(), 1, "{rate:#?}");
    assert_eq!((ctx(rate[0], "agent"), ctx(rate[0], "bucket_count"), ctx(rate[0], "baseline")), ("claude-code", "30", "4.00"));
    assert_eq!(rate[0]["count"], 30);
    assert!(rate[0]["message"].as_str().unwrap().contains("30 mutations by agent claude-code in 5 minutes"), "{:#}", rate[0]);

    // Rule 11: the deploy agent's role from a browser, and from outside its network; its own
    // CLI from its own network is not reported.
    let client = by_rule(&findings, "ocelot.agent-foreign-client");
    let values: BTreeSet<&str> = client.iter().map(|f| ctx(f, "value")).collect();
    assert_eq!(values, ["192.0.2.250", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"].into());
    let related: BTreeSet<&str> = client.iter().flat_map(|f| f["finding_info"]["related_events"].as_array().unwrap().iter().map(|r| r["uid"].as_str().unwrap())).collect();
    assert_eq!(related, ["foreign-2", "foreign-3"].into());

    // The sample sessions, run with the same registry, stay inside their agents' scopes.
    let samples = detect(&["--agents", AGENTS, "samples/agent/session", "samples/agent/cleanup", "samples/agent/benign"]);
    let behaviour: Vec<&Value> = samples
        .iter()
        .filter(|f| ["ocelot.agent-out-of-scope", "ocelot.agent-rate-anomaly", "ocelot.agent-foreign-client"].contains(&f["finding_info"]["analytic"]["uid"].as_str().unwrap()))
        .collect();
    assert!(behaviour.is_empty(), "{behaviour:#?}");

    // A bad declared network stops the command with the key and the fix.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("agents.toml");
    std::fs::write(&bad, "[[agents]]\nname = 'x'\nrole_arn = ['x']\nscope = { source_ips = ['10.0.0.0/33'] }\n").unwrap();
    let o = ocelot().args(["detect", "--agents"]).arg(&bad).arg("samples/agent/benign").current_dir(repo()).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("agents[0] (`x`).scope.source_ips: `10.0.0.0/33` is not an IP address or network"), "{err}");
}

/// Panther rules and the Ocelot rules (by title) meant for the same behaviour.
const PANTHER_TWINS: &[(&str, &[&str])] = &[
    ("AWS.CloudTrail.Stopped", &["Audit or security control disabled or weakened"]),
    ("AWS.CloudTrail.EventSelectorsDisabled", &["Audit or security control disabled or weakened"]),
    ("AWS.CloudTrail.DNSLogsDeleted", &["Audit or security control disabled or weakened"]),
    ("AWS.ConfigService.DisabledDeleted", &["Audit or security control disabled or weakened"]),
    ("AWS.KMS.CustomerManagedKeyLoss", &["Audit or security control disabled or weakened"]),
    ("AWS.CloudTrail.AMIModifiedForPublicAccess", &["Image, snapshot or bucket shared with another account or made public, or an outside trust anchor"]),
    ("AWS.CloudTrail.SnapshotMadePublic", &["Image, snapshot or bucket shared with another account or made public, or an outside trust anchor"]),
    ("AWS.RDS.SnapshotShared", &["Image, snapshot or bucket shared with another account or made public, or an outside trust anchor"]),
    ("AWS.IAM.AttachAdminRolePolicy", &["Privilege escalation: admin or wildcard rights, credentials for others, trust changes"]),
    ("AWS.IAM.AttachAdminUserPolicy", &["Privilege escalation: admin or wildcard rights, credentials for others, trust changes"]),
    ("AWS.IAM.BackdoorRole", &["Privilege escalation: admin or wildcard rights, credentials for others, trust changes"]),
    ("AWS.IAM.Backdoor.User.Keys", &["Privilege escalation: admin or wildcard rights, credentials for others, trust changes"]),
    ("AWS.CloudTrail.LoginProfileCreatedOrModified", &["Privilege escalation: admin or wildcard rights, credentials for others, trust changes"]),
    ("AWS.Lambda.UpdateFunctionCode", &["Code or access path planted: Lambda code, permissions or layers, EC2 user data or SSH keys, notebook lifecycle scripts, federation tokens"]),
    ("AWS.Potential.Backdoor.Lambda", &["Code or access path planted: Lambda code, permissions or layers, EC2 user data or SSH keys, notebook lifecycle scripts, federation tokens"]),
    ("AWS.EC2.Startup.Script.Change", &["Code or access path planted: Lambda code, permissions or layers, EC2 user data or SSH keys, notebook lifecycle scripts, federation tokens"]),
    ("AWS.SSM.DecryptSSMParams", &["Secrets, SecureString parameters or EC2 Windows passwords read in bulk"]),
];

/// SigmaHQ rules (third-party, unmodified) for the same behaviour as Panther rules: reported,
/// not required to agree.
const PANTHER_SIGMA_TWINS: &[(&str, &[&str])] = &[
    ("AWS.S3.BucketDeleted", &["AWS Bucket Deleted"]),
    ("AWS.Console.LoginWithoutMFA", &["AWS Successful Console Login Without MFA"]),
    ("AWS.CloudTrail.Stopped", &["AWS CloudTrail Important Change"]),
    ("AWS.IAM.Backdoor.User.Keys", &["AWS IAM Backdoor Users Keys"]),
];

/// Panther tests labelled false that are, by design, the behaviour the Ocelot twin is for.
const BROADER_BY_DESIGN: &[(&str, &str)] = &[
    // Panther's rule is about public AMIs; ours is about sharing outside the account at all.
    ("AWS.CloudTrail.AMIModifiedForPublicAccess", "AMI Added to User"),
];

/// (labelled true and fired, true and not, false and fired, false and not) over the Panther
/// tests of the rules in `twins`, each test run alone; and the false ones that fired.
fn panther_rates(twins: &[(&str, &[&str])]) -> ([usize; 4], Vec<String>) {
    let text = std::fs::read_to_string(repo().join("tests/data/cloudtrail/panther/cloudtrail_rule_tests.jsonl")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut n = [0; 4];
    let mut false_positives = Vec::new();
    for t in text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()) {
        let Some((rule, twin)) = twins.iter().find(|(id, _)| t["rule_id"] == *id) else { continue };
        let Some(event) = t.get("event").filter(|e| e.is_object()) else { continue };
        if BROADER_BY_DESIGN.iter().any(|(r, name)| r == rule && t["test_name"] == *name) {
            continue;
        }
        // One test, one run: findings of one test do not mix with another's.
        let f = dir.path().join("event.json");
        std::fs::write(&f, event.to_string()).unwrap();
        let fired = detect(&[f.to_str().unwrap()]).iter().any(|x| twin.contains(&x["finding_info"]["title"].as_str().unwrap()));
        let label = t["expected_result"].as_bool().unwrap();
        n[usize::from(!label) * 2 + usize::from(!fired)] += 1;
        if !label && fired {
            false_positives.push(format!("{}: {}", t["rule_id"], t["test_name"]));
        }
        if label && !fired {
            println!("  missed (labelled true): {}: {}", t["rule_id"], t["test_name"]);
        }
    }
    (n, false_positives)
}

#[test]
fn panther_tests_labelled_false_do_not_fire_the_twin_rules() {
    let ([tp, fn_, fp, tn], false_positives) = panther_rates(PANTHER_TWINS);
    println!("Panther tests of {} rules with an Ocelot twin: labelled true: {tp} fired, {fn_} not; labelled false: {fp} fired, {tn} not", PANTHER_TWINS.len());
    let ([stp, sfn, sfp, stn], sigma_fp) = panther_rates(PANTHER_SIGMA_TWINS);
    println!("... with a SigmaHQ twin ({} rules): labelled true: {stp} fired, {sfn} not; labelled false: {sfp} fired, {stn} not: {sigma_fp:?}", PANTHER_SIGMA_TWINS.len());
    assert!(tp + fn_ >= 15 && fp + tn >= 15, "too few tests to mean much");
    assert!(false_positives.is_empty(), "labelled false, yet an Ocelot twin rule fired: {false_positives:#?}");
    assert!(tp * 10 >= (tp + fn_) * 7, "the twins miss too many of Panther's positives: {tp} of {}", tp + fn_);
}

#[test]
fn the_demo_shows_every_kind_of_rule_on_the_bundled_samples() {
    let dir = tempfile::tempdir().unwrap();
    let o = ocelot().args(["demo", "--lake"]).arg(dir.path().join("lake")).current_dir(repo()).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}\n{}", String::from_utf8_lossy(&o.stderr));
    for rule in ["ocelot.agent-out-of-scope", "ocelot.agent-foreign-client", "ocelot.agent-destructive-unapproved", "ocelot.agent-blast-radius", "ocelot.agent-data-destruction"] {
        assert!(text.contains(rule), "the demo's findings table lacks {rule}:\n{text}");
    }
    assert!(text.contains("approval rejected_but_executed (TerminateInstances)") && text.contains("Dead letters"), "{text}");
    // The findings went through the forwarders to the demo's receiver: HEC with the token, Slack lines.
    let hec = text.lines().find(|l| l.starts_with("Splunk HEC: ")).unwrap_or_else(|| panic!("no forwarding section:\n{text}"));
    assert!(hec.contains("token checked: true") && hec.ends_with("dead-lettered: 0") && !hec.starts_with("Splunk HEC: 0 "), "{hec}");
    assert!(text.contains("\n  [Critical] "), "no Slack line for the critical finding:\n{text}");
    // The Flight SQL step: the view over the server, a write refused.
    let flight = &text[text.find("over Arrow Flight SQL").unwrap_or_else(|| panic!("no Flight SQL section:\n{text}"))..];
    assert!(flight.lines().any(|l| l.contains("infra-agent") && l.contains("reject")), "{flight}");
    assert!(flight.contains("is refused: read-only server"), "{flight}");
    // The lake step: verified whole, and the engine's findings exported to Security Lake as
    // OCSF 1.1.0 Detection Findings (what only Ocelot has: none of them refused by 1.1.0).
    assert!(text.contains("ok: every file is as committed and the chain is whole"), "{text}");
    assert!(text.contains("source ocelot-2004: event class DETECTION_FINDING"), "{text}");
    let exported = common::files_under(&dir.path().join("lake-security-lake/ext/ocelot-2004"));
    assert!(exported.iter().any(|f| f.file_name().unwrap().to_string_lossy().starts_with("findings-")), "{exported:?}");
    assert!(!text.lines().any(|l| l.trim_start().starts_with("findings: ")), "a finding refused by OCSF 1.1.0:\n{text}");
}

/// A handful of terminations and deletions by an administrator signed in through IAM Identity
/// Center, in working hours, with no agent: routine work, no High or Critical finding
/// (docs/detection.md says how the capacity rule tells it apart).
#[test]
fn routine_human_administration_raises_nothing_high() {
    let findings = detect(&["tests/data/cloudtrail/routine-admin.jsonl"]);
    let loud: Vec<String> = findings.iter().filter(|f| f["severity_id"].as_i64().unwrap() >= 4).map(|f| format!("{}: {}", f["severity"], f["finding_info"]["title"])).collect();
    assert!(loud.is_empty(), "{loud:?}");
    // The same calls by an AI agent's role are the capacity rule's business.
    let text = std::fs::read_to_string(repo().join("tests/data/cloudtrail/routine-admin.jsonl"))
        .unwrap()
        .replace("AWSReservedSSO_AdministratorAccess_0a1b2c3d4e5f6789/alice@example.com", "claude-code-ops/session-1");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("agent.jsonl");
    std::fs::write(&f, text).unwrap();
    let findings = detect(&[f.to_str().unwrap()]);
    assert!(findings.iter().any(|f| f["finding_info"]["analytic"]["uid"] == "ocelot.capacity-removal"), "{:?}", findings.iter().map(|f| &f["finding_info"]["title"]).collect::<Vec<_>>());
}

/// The engine's findings write only paths the Detection Finding projection declares
/// (`classes::FINDING_PATHS`): a path outside it would be dropped on the way into the lake's
/// `findings` table.
#[test]
fn findings_write_only_the_paths_the_lake_keeps() {
    fn walk(v: &Value, path: &str, keep: &BTreeSet<&str>, out: &mut BTreeSet<String>) {
        if keep.contains(path) {
            return;
        }
        match v {
            Value::Null => {}
            Value::Object(m) => m.iter().for_each(|(k, v)| walk(v, &if path.is_empty() { k.clone() } else { format!("{path}.{k}") }, keep, out)),
            Value::Array(a) => a.iter().for_each(|v| walk(v, path, keep, out)),
            _ => {
                out.insert(path.to_string());
            }
        }
    }
    let keep: BTreeSet<&str> = ocelot_normalize::classes::FINDING_PATHS.iter().copied().collect();
    let findings = detect(&["samples"]);
    let rules: BTreeSet<&str> = findings.iter().filter_map(|f| f["finding_info"]["analytic"]["uid"].as_str()).collect();
    assert!(findings.len() >= 20 && rules.len() >= 10, "{} findings of {} rules", findings.len(), rules.len());
    let mut outside = BTreeSet::new();
    for f in &findings {
        walk(f, "", &keep, &mut outside);
    }
    assert!(outside.is_empty(), "paths written by findings but missing from FINDING_PATHS: {outside:?}");
}
