//! OCSF Detection Finding -> AWS Security Finding Format (ASFF), as Security Hub's
//! BatchImportFindings takes it from a custom integration. The table is in
//! docs/mappings/asff-out.md; the limits come from the Security Hub API reference.

use chrono::{SecondsFormat, TimeZone, Utc};
use serde_json::{json, Map, Value};

/// Security Hub refuses a finding above 240 KB.
pub const MAX_FINDING_BYTES: usize = 240 * 1024;
/// Evidence copies kept in ProductFields, and the characters of each.
const EVIDENCES: usize = 5;
const EVIDENCE_CHARS: usize = 2_000;

/// Where findings are imported: the account and region of the Security Hub that receives
/// them, and the product ARN (a custom integration's default product unless configured).
#[derive(Debug, Clone)]
pub struct Target {
    pub account: String,
    pub region: String,
    pub partition: String,
    pub product_arn: String,
}

impl Target {
    pub fn new(account: &str, region: &str, product_arn: Option<&str>) -> Target {
        let partition = if region.starts_with("cn-") {
            "aws-cn"
        } else if region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        };
        let product_arn = product_arn.map_or_else(|| format!("arn:{partition}:securityhub:{region}:{account}:product/{account}/default"), str::to_string);
        Target { account: account.into(), region: region.into(), partition: partition.into(), product_arn }
    }
}

/// The ASFF finding; `Err` when even without its evidences it is above the size limit.
pub fn from_ocsf(f: &Value, t: &Target) -> Result<Value, String> {
    let s = |p: &str| f.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let ms = |p: &str| f.pointer(p).and_then(Value::as_i64);
    let time = |v: Option<i64>| v.and_then(|m| Utc.timestamp_millis_opt(m).single()).map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true));
    let first = time(ms("/start_time").or(ms("/time"))).unwrap_or_default();
    let last = time(ms("/end_time").or(ms("/time"))).unwrap_or_default();
    let severity_id = f.get("severity_id").and_then(Value::as_i64).unwrap_or(0);
    let label = match severity_id {
        1 => "INFORMATIONAL",
        2 => "LOW",
        3 => "MEDIUM",
        4 => "HIGH",
        5 | 6 => "CRITICAL",
        _ => "INFORMATIONAL",
    };
    // The account the events happened in; `AwsAccountId` is the importing account (Security Hub
    // requires it for a custom integration's default product), so this one is a resource.
    let account = [s("/cloud/account/uid"), s("/actor/user/account/uid")].into_iter().find(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()));
    let region = Some(s("/cloud/region")).filter(|r| !r.is_empty()).unwrap_or(&t.region);
    let mut types: Vec<String> = Vec::new();
    for a in f.get("attacks").and_then(Value::as_array).into_iter().flatten() {
        if let Some(name) = a.pointer("/tactic/name").and_then(Value::as_str) {
            let ty = format!("TTPs/{name}");
            if !types.contains(&ty) {
                types.push(ty);
            }
        }
    }
    if types.is_empty() {
        types.push("Unusual Behaviors/User".into());
    }
    let mut resources: Vec<Value> = f.get("resources").and_then(Value::as_array).into_iter().flatten().take(32).filter_map(|r| resource(r, region, &t.partition)).collect();
    if let Some(a) = account.filter(|_| resources.len() < 32) {
        resources.push(json!({"Type": "AwsAccount", "Id": format!("AWS::::Account:{a}"), "Partition": t.partition, "Region": region}));
    }
    if resources.is_empty() {
        resources.push(json!({"Type": "AwsAccount", "Id": format!("AWS::::Account:{}", t.account), "Partition": t.partition, "Region": region}));
    }
    let mut fields = Map::new();
    let mut field = |k: &str, v: &str| {
        if !v.is_empty() {
            fields.insert(format!("ocelot/{k}"), json!(cut(v, 4096)));
        }
    };
    field("rule_id", s("/finding_info/analytic/uid"));
    field("count", &f.get("count").and_then(Value::as_u64).unwrap_or(1).to_string());
    field("principal", s("/actor/user/uid"));
    field("agent", s("/actor/app_name"));
    for k in ["human", "conversation", "tool_call", "approval"] {
        field(k, f.pointer(&format!("/unmapped/{k}")).and_then(Value::as_str).unwrap_or_default());
    }
    let related: Vec<&str> = f.pointer("/finding_info/related_events").and_then(Value::as_array).into_iter().flatten().filter_map(|e| e.get("uid").and_then(Value::as_str)).take(20).collect();
    field("related_events", &related.join(","));
    let mut out = json!({
        "SchemaVersion": "2018-10-08",
        "Id": s("/finding_info/uid"),
        "ProductArn": t.product_arn,
        "GeneratorId": cut(s("/finding_info/analytic/uid"), 512),
        "AwsAccountId": t.account,
        "Types": types,
        "CreatedAt": first,
        "UpdatedAt": last,
        "FirstObservedAt": first,
        "LastObservedAt": last,
        "Severity": {"Label": label, "Original": s("/severity")},
        "Criticality": severity_id.clamp(1, 5) * 20,
        // Where a finding provider sets severity, types and criticality, so later imports
        // update them (the top-level ones are the analyst's once the finding exists).
        "FindingProviderFields": {"Severity": {"Label": label, "Original": s("/severity")}, "Types": types, "Criticality": severity_id.clamp(1, 5) * 20},
        "Title": cut(s("/finding_info/title"), 256),
        "Description": cut(Some(s("/message")).filter(|m| !m.is_empty()).unwrap_or(s("/finding_info/title")), 1024),
        "Resources": resources,
        "ProductFields": fields,
        "ProductName": "Ocelot",
        "CompanyName": "Ocelot",
        "Region": region,
        "RecordState": "ACTIVE",
    });
    if let Some(u) = f.pointer("/finding_info/src_url").and_then(Value::as_str).filter(|u| u.starts_with("http")) {
        out["SourceUrl"] = json!(u);
    }
    // The key events, trimmed: with every other field bounded too (resources, ProductFields
    // values), a finding stays far below Security Hub's limit.
    let evidences = f.get("evidences").and_then(Value::as_array).cloned().unwrap_or_default();
    for (i, e) in evidences.iter().take(EVIDENCES).enumerate() {
        out["ProductFields"][format!("ocelot/evidence/{i}")] = json!(cut(&e.to_string(), EVIDENCE_CHARS));
    }
    match size(&out) {
        n if n > MAX_FINDING_BYTES => Err(format!("the ASFF finding is {n} bytes, above Security Hub's {MAX_FINDING_BYTES}")),
        _ => Ok(out),
    }
}

fn size(v: &Value) -> usize {
    serde_json::to_vec(v).map_or(usize::MAX, |b| b.len())
}

/// An OCSF resource as an ASFF resource: `AWS::S3::Bucket` -> `AwsS3Bucket` (ASFF's names
/// follow CloudFormation's), `Other` when the type is unknown.
fn resource(r: &Value, region: &str, partition: &str) -> Option<Value> {
    let id = [r.get("uid"), r.get("name")].into_iter().flatten().filter_map(Value::as_str).find(|v| !v.is_empty())?;
    let ty = r.get("type").and_then(Value::as_str).filter(|t| t.starts_with("AWS::")).map(|t| t.split("::").collect::<String>().replacen("AWS", "Aws", 1)).unwrap_or_else(|| "Other".into());
    Some(json!({"Type": ty, "Id": cut(id, 512), "Partition": partition, "Region": region}))
}

/// At most `n` characters.
fn cut(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding() -> Value {
        json!({
            "class_uid": 2004, "time": 1_793_500_060_000i64, "start_time": 1_793_500_000_000i64, "end_time": 1_793_500_060_000i64,
            "severity_id": 4, "severity": "High", "count": 3, "message": "Agent deletes data without human approval",
            "finding_info": {"uid": "5b3c...", "title": "Agent data destruction", "analytic": {"uid": "ocelot.agent-data-destruction"},
                "related_events": [{"uid": "ev-1"}, {"uid": "ev-2"}], "src_url": "https://example.com/rule"},
            "attacks": [{"technique": {"uid": "T1485"}, "tactic": {"uid": "TA0040", "name": "Impact"}}],
            "actor": {"user": {"uid": "arn:aws:sts::111122223333:assumed-role/agent/s"}, "app_name": "claude-code"},
            "cloud": {"region": "eu-west-1", "account": {"uid": "111122223333"}},
            "resources": [{"uid": "arn:aws:s3:::logs", "type": "AWS::S3::Bucket"}, {"uid": "db-1", "type": "rds instance"}],
            "evidences": [{"api": {"operation": "DeleteBucket"}, "data": "x".repeat(10_000)}],
            "unmapped": {"approval": "auto_approved"},
        })
    }

    #[test]
    fn maps_the_fields_security_hub_reads() {
        let a = from_ocsf(&finding(), &Target::new("999999999999", "us-east-1", None)).unwrap();
        assert_eq!(a["Id"], "5b3c...");
        assert_eq!(a["ProductArn"], "arn:aws:securityhub:us-east-1:999999999999:product/999999999999/default");
        assert_eq!(a["GeneratorId"], "ocelot.agent-data-destruction");
        assert_eq!(a["AwsAccountId"], "999999999999", "the importing account");
        assert_eq!(a["Types"], json!(["TTPs/Impact"]));
        assert_eq!(a["Severity"]["Label"], "HIGH");
        assert_eq!(a["CreatedAt"], "2026-11-01T02:26:40.000Z");
        assert_eq!(a["UpdatedAt"], "2026-11-01T02:27:40.000Z");
        assert_eq!(a["Resources"][0], json!({"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::logs", "Partition": "aws", "Region": "eu-west-1"}));
        assert_eq!(a["Resources"][1]["Type"], "Other");
        assert_eq!(a["Resources"][2]["Id"], "AWS::::Account:111122223333", "the events' account");
        assert_eq!(a["FindingProviderFields"]["Severity"]["Label"], "HIGH");
        assert_eq!(a["ProductFields"]["ocelot/agent"], "claude-code");
        assert_eq!(a["ProductFields"]["ocelot/approval"], "auto_approved");
        assert_eq!(a["ProductFields"]["ocelot/related_events"], "ev-1,ev-2");
        assert_eq!(a["ProductFields"]["ocelot/evidence/0"].as_str().unwrap().chars().count(), EVIDENCE_CHARS);
        assert_eq!(a["SourceUrl"], "https://example.com/rule");
    }

    #[test]
    fn a_finding_with_huge_parts_stays_under_the_limit() {
        let mut f = finding();
        f["evidences"] = Value::Array((0..50).map(|i| json!({"n": i, "data": "y".repeat(100_000)})).collect());
        f["resources"] = Value::Array((0..500).map(|i| json!({"uid": format!("arn:aws:s3:::b{i}{}", "q".repeat(2_000))})).collect());
        f["finding_info"]["title"] = json!("t".repeat(1000));
        f["unmapped"]["approval"] = json!("z".repeat(300_000));
        let a = from_ocsf(&f, &Target::new("999999999999", "us-east-1", None)).unwrap();
        assert_eq!(a["Title"].as_str().unwrap().len(), 256);
        assert_eq!(a["Resources"].as_array().unwrap().len(), 32);
        assert!(a["ProductFields"].get("ocelot/evidence/5").is_none());
        assert!(size(&a) <= MAX_FINDING_BYTES, "{}", size(&a));
    }
}
