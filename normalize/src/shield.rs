//! AWS Shield Advanced attack records (`DescribeAttack`'s AttackDetail, `ListAttacks`'
//! AttackSummary) to OCSF 1.8.0 Detection Finding (2004): a DDoS event on a protected resource.
//! The mapping and its reasons: `docs/mappings/shield.md`.

use ocelot_schemas::WriterError;
use simd_json::BorrowedValue;

use super::asff::{both, Evidence, Finding};
use super::columns::columns;
use super::head::{obs, parse_arn, Head};
use super::time::parse_time_ms;
use super::{ClassWriter, Normalizer, OcsfBatch};
use crate::decode::Origin;
use crate::json::{f64_of, get, str_of, Mapped};

columns! {
    pub struct Ddos {
        is_alert: bool = "is_alert",
        attacks: list = "finding_info.attacks",
        tactic_uid: str = "finding_info.attacks.tactic.uid",
        tactic_name: str = "finding_info.attacks.tactic.name",
        technique_uid: str = "finding_info.attacks.technique.uid",
        technique_name: str = "finding_info.attacks.technique.name",
        sub_uid: str = "finding_info.attacks.sub_technique.uid",
        sub_name: str = "finding_info.attacks.sub_technique.name",
        ev_url: str = "evidences.url.url_string",
        res_name: str = "resources.name",
    }
}

pub const PATHS: &[(&str, &[&[&str]])] = &[("detection_finding", &[Head::PATHS, Finding::PATHS, Evidence::PATHS, Ddos::PATHS])];

/// Consumed fields. Counters, mitigations and the top contributors other than source IPs stay
/// in `unmapped` (they are the numbers of the attack; OCSF has no place for them).
const MAPPED: &[&str] = &["AttackId", "ResourceArn", "StartTime", "EndTime", "AttackVectors"];

pub struct Shield {
    cw: ClassWriter,
    head: Head,
    finding: Finding,
    evidence: Evidence,
    ddos: Ddos,
    mapped: Mapped,
    buf: Vec<u8>,
}

impl Shield {
    pub fn new() -> Result<Shield, WriterError> {
        let cw = ClassWriter::new("detection_finding")?;
        let (head, finding, evidence, ddos) = (Head::resolve(&cw.writer)?, Finding::resolve(&cw.writer)?, Evidence::resolve(&cw.writer)?, Ddos::resolve(&cw.writer)?);
        Ok(Shield { cw, head, finding, evidence, ddos, mapped: Mapped::new(MAPPED), buf: Vec::with_capacity(2048) })
    }
}

/// Shield's timestamps: epoch seconds with a fraction (the API's JSON), or RFC 3339 text. A
/// number past year 9999 (or not finite) is not a time: OCSF's `_dt` text of it does not exist
/// (found by the fuzz target: such a record made the whole batch unrenderable).
fn attack_time(v: Option<&BorrowedValue<'_>>) -> Option<i64> {
    match v? {
        BorrowedValue::String(s) => parse_time_ms(s),
        n => f64_of(Some(n)).filter(|s| s.is_finite() && (0.0..=crate::time::MAX_EPOCH_SECS).contains(s)).map(|s| (s * 1000.0).round() as i64),
    }
}

/// The CloudFormation-style type of a protected resource, from its ARN.
fn resource_type(service: &str, resource: &str) -> &'static str {
    match (service, resource.split('/').next().unwrap_or("")) {
        ("cloudfront", _) => "AWS::CloudFront::Distribution",
        ("elasticloadbalancing", "loadbalancer") if resource.starts_with("loadbalancer/app/") => "AWS::ElasticLoadBalancingV2::LoadBalancer",
        ("elasticloadbalancing", "loadbalancer") if resource.starts_with("loadbalancer/net/") => "AWS::ElasticLoadBalancingV2::LoadBalancer",
        ("elasticloadbalancing", _) => "AWS::ElasticLoadBalancing::LoadBalancer",
        ("ec2", "eip-allocation") | ("ec2", "elastic-ip") => "AWS::EC2::EIP",
        ("route53", _) => "AWS::Route53::HostedZone",
        ("globalaccelerator", _) => "AWS::GlobalAccelerator::Accelerator",
        _ => "",
    }
}

/// MITRE ATT&CK for a DDoS vector: application-layer floods exhaust the endpoint (T1499),
/// the rest flood the network (T1498), reflection attacks by amplification.
fn attack_technique(vector: &str) -> (&'static str, &'static str, &'static str, &'static str) {
    let v = vector.to_ascii_uppercase();
    if v.starts_with("REQUEST_FLOOD") || v.starts_with("HTTP") || v.contains("APPLICATION") {
        ("T1499", "Endpoint Denial of Service", "T1499.002", "Service Exhaustion Flood")
    } else if v.contains("REFLECTION") || v.contains("AMPLIFICATION") {
        ("T1498", "Network Denial of Service", "T1498.002", "Reflection Amplification")
    } else {
        ("T1498", "Network Denial of Service", "T1498.001", "Direct Network Flood")
    }
}

/// The attack vectors of a record: `AttackVectors[]` (summaries) or the vectors of every
/// sub-resource (details), without repeats.
fn vectors<'v>(v: &'v BorrowedValue<'_>) -> Vec<&'v str> {
    let mut out: Vec<&str> = Vec::new();
    let mut add = |list: Option<&'v BorrowedValue<'_>>| {
        if let Some(BorrowedValue::Array(items)) = list {
            for t in items.iter().filter_map(|i| str_of(get(i, "VectorType"))) {
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        }
    };
    add(get(v, "AttackVectors"));
    if let Some(BorrowedValue::Array(subs)) = get(v, "SubResources") {
        for s in subs.iter() {
            add(get(s, "AttackVectors"));
        }
    }
    out
}

impl Normalizer for Shield {
    fn kind(&self) -> &'static str {
        "shield"
    }

    fn append(&mut self, v: &BorrowedValue<'_>, _origin: &Origin) -> Result<(), String> {
        let id = str_of(get(v, "AttackId")).filter(|s| !s.is_empty()).ok_or("not a Shield attack record: no AttackId")?;
        let arn = str_of(get(v, "ResourceArn")).filter(|s| !s.is_empty()).ok_or("not a Shield attack record: no ResourceArn")?;
        let start = attack_time(get(v, "StartTime")).ok_or("not a Shield attack record: no StartTime (epoch seconds or RFC 3339)")?;
        let end = match get(v, "EndTime") {
            None => None,
            Some(t) => Some(attack_time(Some(t)).ok_or("bad Shield attack record: EndTime is neither epoch seconds nor RFC 3339")?),
        };
        super::time::admit(end.unwrap_or(start))?;
        let (w, h, f, e, d) = (&mut self.cw.writer, &self.head, &self.finding, &self.evidence, &self.ddos);
        let vecs = vectors(v);

        // One finding per attack; it is resolved when Shield gives its end.
        h.classify(w, self.cw.class, 1, None);
        h.time(w, end.unwrap_or(start));
        h.severity(w, 4);
        let (status_id, status) = if end.is_some() { (4, "Resolved") } else { (1, "New") };
        w.i32(f.status_id, status_id);
        w.str(f.status, status);
        w.bool(d.is_alert, true);
        h.product(w, "AWS Shield Advanced", "AWS", &["cloud"]);
        w.str(h.md_uid, id);
        w.str(h.md_log_provider, "AWS Shield");
        let parsed = parse_arn(arn);
        // CloudFront and Route 53 are global: their ARNs carry no region.
        h.aws(w, parsed.as_ref().map(|a| a.region), parsed.as_ref().map(|a| a.account));

        w.str(f.fi_uid, id);
        let vector_text = if vecs.is_empty() { "unknown vector".to_string() } else { vecs.join(", ") };
        w.str(f.fi_title, &format!("DDoS attack on {arn}: {vector_text}"));
        w.str(f.fi_desc, &format!("AWS Shield Advanced detected a DDoS attack ({vector_text}) on the protected resource {arn}."));
        for t in &vecs {
            w.push_str(f.fi_types, t);
        }
        both(w, f.fi_created, f.fi_created_dt, start);
        both(w, f.fi_first, f.fi_first_dt, start);
        if let Some(end) = end {
            both(w, f.fi_last, f.fi_last_dt, end);
            both(w, f.fi_modified, f.fi_modified_dt, end);
        }
        let mut techniques: Vec<(&str, &str, &str, &str)> = vecs.iter().map(|t| attack_technique(t)).collect();
        techniques.dedup();
        for (tid, tname, sid, sname) in techniques {
            w.begin_item(d.attacks);
            w.str(d.tactic_uid, "TA0040");
            w.str(d.tactic_name, "Impact");
            w.str(d.technique_uid, tid);
            w.str(d.technique_name, tname);
            w.str(d.sub_uid, sid);
            w.str(d.sub_name, sname);
            w.end_item(d.attacks);
        }

        // The protected resource.
        w.begin_item(f.resources);
        w.str(f.res_uid, arn);
        if let Some(a) = &parsed {
            let kind = resource_type(a.service, a.resource);
            if !kind.is_empty() {
                w.str(f.res_type, kind);
            }
            if let Some(name) = a.resource.rsplit('/').next().filter(|n| !n.is_empty()) {
                w.str(d.res_name, name);
            }
            if !a.region.is_empty() {
                w.str(f.res_region, a.region);
            }
        }
        w.end_item(f.resources);
        h.observable(w, "resources.uid", obs::RESOURCE_UID, arn);

        // Evidence: the attacked sub-resources (IPs, URLs) and the top source IPs.
        if let Some(BorrowedValue::Array(subs)) = get(v, "SubResources") {
            for s in subs.iter() {
                let Some(sid) = str_of(get(s, "Id")) else { continue };
                w.begin_item(e.evidences);
                if str_of(get(s, "Type")) == Some("URL") {
                    w.str(d.ev_url, sid);
                } else {
                    w.str(e.dst_ip, sid);
                }
                w.end_item(e.evidences);
            }
        }
        let mut sources = Vec::new();
        if let Some(BorrowedValue::Array(props)) = get(v, "AttackProperties") {
            for p in props.iter().filter(|p| str_of(get(p, "AttackPropertyIdentifier")) == Some("SOURCE_IP_ADDRESS")) {
                if let Some(BorrowedValue::Array(top)) = get(p, "TopContributors") {
                    sources.extend(top.iter().filter_map(|c| str_of(get(c, "Name"))));
                }
            }
        }
        for ip in &sources {
            w.begin_item(e.evidences);
            w.str(e.src_ip, ip);
            w.end_item(e.evidences);
            h.observable(w, "evidences.src_endpoint.ip", obs::IP, ip);
        }

        h.finish_row(w, v, &self.mapped, &mut self.buf);
        Ok(())
    }

    fn buffered_rows(&self) -> usize {
        self.cw.writer.rows()
    }

    fn discard_partial(&mut self) {
        self.cw.writer.discard_row();
    }
    fn take_batches(&mut self) -> Result<Vec<OcsfBatch>, WriterError> {
        self.cw.batches()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_map_to_attack_techniques() {
        assert_eq!(attack_technique("SYN_FLOOD").2, "T1498.001");
        assert_eq!(attack_technique("UDP_REFLECTION").2, "T1498.002");
        assert_eq!(attack_technique("REQUEST_FLOOD").0, "T1499");
        assert_eq!(resource_type("cloudfront", "distribution/E1"), "AWS::CloudFront::Distribution");
        assert_eq!(resource_type("elasticloadbalancing", "loadbalancer/testElb"), "AWS::ElasticLoadBalancing::LoadBalancer");
    }

    #[test]
    fn a_time_past_year_9999_is_not_a_time() {
        assert_eq!(attack_time(Some(&BorrowedValue::from(1_529_280_000.5))), Some(1_529_280_000_500));
        for bad in [1.5e39, f64::NAN, f64::INFINITY, -1.0] {
            assert_eq!(attack_time(Some(&BorrowedValue::from(bad))), None, "{bad}");
        }
    }
}
