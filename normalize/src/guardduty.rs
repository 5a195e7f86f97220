//! Amazon GuardDuty findings in GuardDuty's own format (GetFindings, the EventBridge "GuardDuty
//! Finding" detail, S3 exports) to OCSF 1.8.0 Detection Finding (2004). GuardDuty findings that
//! come through Security Hub are ASFF (`asff.rs`); both give the same `finding_info.uid` (the
//! finding ARN), so the two routes meet. The mapping: `docs/mappings/guardduty.md`.

use ocelot_schemas::WriterError;
use simd_json::BorrowedValue;

use super::asff::{both, write_action, ActionKeys, Evidence, Finding};
use super::columns::columns;
use super::head::{obs, Head};
use super::time::parse_time_ms;
use super::{ClassWriter, Normalizer, OcsfBatch};
use crate::decode::Origin;
use crate::json::{bool_of, encode, f64_of, get, get_path, i64_of, str_of, Mapped};

columns! {
    pub struct Gd {
        is_alert: bool = "is_alert",
        count: i32 = "count",
        uid_alt: str = "finding_info.uid_alt",
        res_name: str = "resources.name",
    }
}

pub const PATHS: &[(&str, &[&[&str]])] = &[("detection_finding", &[Head::PATHS, Finding::PATHS, Evidence::PATHS, Gd::PATHS])];

/// Consumed fields; `resource` (its details), `service.additionalInfo`, `service.evidence`
/// and the rest of `service.action` stay in `unmapped`.
const MAPPED: &[&str] = &[
    "schemaVersion",
    "accountId",
    "region",
    "partition",
    "id",
    "arn",
    "type",
    "title",
    "description",
    "severity",
    "createdAt",
    "updatedAt",
    "service.serviceName",
    "service.detectorId",
    "service.featureName",
    "service.archived",
    "service.count",
    "service.eventFirstSeen",
    "service.eventLastSeen",
    "service.action.actionType",
    "service.action.awsApiCallAction.api",
    "service.action.awsApiCallAction.serviceName",
    "service.action.awsApiCallAction.remoteIpDetails.ipAddressV4",
    "service.action.awsApiCallAction.remoteIpDetails.country.countryName",
    "service.action.awsApiCallAction.remoteIpDetails.city.cityName",
    "service.action.awsApiCallAction.errorCode",
    "service.action.networkConnectionAction.remoteIpDetails.ipAddressV4",
    "service.action.networkConnectionAction.remotePortDetails.port",
    "service.action.networkConnectionAction.localPortDetails.port",
    "service.action.networkConnectionAction.protocol",
    "service.action.networkConnectionAction.connectionDirection",
    "service.action.dnsRequestAction.domain",
];

pub struct GuardDuty {
    cw: ClassWriter,
    head: Head,
    finding: Finding,
    evidence: Evidence,
    gd: Gd,
    mapped: Mapped,
    buf: Vec<u8>,
}

impl GuardDuty {
    pub fn new() -> Result<GuardDuty, WriterError> {
        let cw = ClassWriter::new("detection_finding")?;
        let (head, finding, evidence, gd) = (Head::resolve(&cw.writer)?, Finding::resolve(&cw.writer)?, Evidence::resolve(&cw.writer)?, Gd::resolve(&cw.writer)?);
        Ok(GuardDuty { cw, head, finding, evidence, gd, mapped: Mapped::new(MAPPED), buf: Vec::with_capacity(4096) })
    }
}

/// GuardDuty's severity scale: 1.0-3.9 Low, 4.0-6.9 Medium, 7.0-8.9 High, 9.0-10.0 Critical.
fn severity(score: f64) -> i32 {
    match score {
        s if s >= 9.0 => 5,
        s if s >= 7.0 => 4,
        s if s >= 4.0 => 3,
        s if s > 0.0 => 2,
        _ => 1,
    }
}

/// The resource a finding is about: its type and the id GuardDuty gives it.
fn resource_uid<'v>(r: &'v BorrowedValue<'_>) -> Option<&'v str> {
    str_of(get_path(r, &["instanceDetails", "instanceId"]))
        .or_else(|| str_of(get_path(r, &["accessKeyDetails", "accessKeyId"])))
        .or_else(|| str_of(get_path(r, &["eksClusterDetails", "arn"])))
        .or_else(|| str_of(get_path(r, &["ecsClusterDetails", "arn"])))
        .or_else(|| str_of(get_path(r, &["lambdaDetails", "functionArn"])))
        .or_else(|| str_of(get_path(r, &["rdsDbInstanceDetails", "dbInstanceArn"])))
        .or_else(|| match get(r, "s3BucketDetails") {
            Some(BorrowedValue::Array(b)) => b.first().and_then(|b| str_of(get(b, "arn"))),
            _ => None,
        })
}

impl Normalizer for GuardDuty {
    fn kind(&self) -> &'static str {
        "guardduty"
    }

    fn append(&mut self, v: &BorrowedValue<'_>, _origin: &Origin) -> Result<(), String> {
        let id = str_of(get(v, "id")).filter(|s| !s.is_empty()).ok_or("not a GuardDuty finding: no id")?;
        let kind = str_of(get(v, "type")).filter(|s| !s.is_empty()).ok_or("not a GuardDuty finding: no type")?;
        let time = |key: &str| -> Result<Option<i64>, String> {
            match str_of(get(v, key)) {
                None => Ok(None),
                Some(t) => parse_time_ms(t).map(Some).ok_or_else(|| format!("bad GuardDuty finding: {key} `{t}` is not a time")),
            }
        };
        let created = time("createdAt")?;
        let updated = super::time::admit(time("updatedAt")?.or(created).ok_or("not a GuardDuty finding: no updatedAt or createdAt")?)?;
        let score = f64_of(get(v, "severity")).ok_or("not a GuardDuty finding: no numeric severity")?;
        let uid = str_of(get(v, "arn")).unwrap_or(id);
        let service = get(v, "service");
        let archived = service.and_then(|s| bool_of(get(s, "archived"))).unwrap_or(false);
        let (w, h, f, e, g) = (&mut self.cw.writer, &self.head, &self.finding, &self.evidence, &self.gd);

        let activity = if archived {
            3
        } else if created.is_some_and(|c| c < updated) {
            2
        } else {
            1
        };
        h.classify(w, self.cw.class, activity, None);
        h.time(w, updated);
        h.severity(w, severity(score));
        let (sid, sname) = if archived { (5, "Archived") } else { (1, "New") };
        w.i32(f.status_id, sid);
        w.str(f.status, sname);
        w.bool(g.is_alert, !archived);
        if let Some(n) = service.and_then(|s| i64_of(get(s, "count"))).and_then(|n| i32::try_from(n).ok()) {
            w.i32(g.count, n);
        }
        h.product(w, "GuardDuty", "AWS", &["cloud"]);
        w.str(h.md_uid, uid);
        w.str(h.md_log_provider, "GuardDuty");
        if let Some(s) = str_of(get(v, "schemaVersion")) {
            w.str(h.md_log_version, s);
        }
        if let Some(feature) = service.and_then(|s| str_of(get(s, "featureName"))) {
            w.str(h.md_feature, feature);
        }
        if let Some(d) = service.and_then(|s| str_of(get(s, "detectorId"))) {
            w.str(f.md_feature_uid, d);
        }
        h.aws(w, str_of(get(v, "region")), str_of(get(v, "accountId")));

        w.str(f.fi_uid, uid);
        if uid != id {
            w.str(g.uid_alt, id);
        }
        w.push_str(f.fi_types, kind);
        for (col, key) in [(f.fi_title, "title"), (f.fi_desc, "description")] {
            if let Some(s) = str_of(get(v, key)) {
                w.str(col, s);
            }
        }
        if let Some(c) = created {
            both(w, f.fi_created, f.fi_created_dt, c);
        }
        both(w, f.fi_modified, f.fi_modified_dt, updated);
        if let Some(s) = service {
            for (ms, dt, key) in [(f.fi_first, f.fi_first_dt, "eventFirstSeen"), (f.fi_last, f.fi_last_dt, "eventLastSeen")] {
                if let Some(t) = str_of(get(s, key)).and_then(parse_time_ms) {
                    both(w, ms, dt, t);
                }
            }
        }

        // The resource: its type, id and details (JSON text).
        if let Some(r) = get(v, "resource").filter(|r| matches!(r, BorrowedValue::Object(o) if !o.is_empty())) {
            w.begin_item(f.resources);
            if let Some(t) = str_of(get(r, "resourceType")) {
                w.str(f.res_type, t);
            }
            let rid = resource_uid(r);
            if let Some(rid) = rid {
                w.str(f.res_uid, rid);
            }
            // OCSF's resource needs a uid or a name: one GuardDuty gives no id of (an attack
            // sequence) is named by its type; its details are in `data`.
            match str_of(get_path(r, &["accessKeyDetails", "userName"])).or_else(|| rid.is_none().then(|| str_of(get(r, "resourceType"))).flatten()) {
                Some(name) => w.str(g.res_name, name),
                None if rid.is_none() => w.str(g.res_name, "unknown"),
                None => {}
            }
            if let Some(p) = str_of(get(v, "partition")) {
                w.str(f.res_partition, p);
            }
            if let Some(region) = str_of(get(v, "region")) {
                w.str(f.res_region, region);
            }
            w.str(f.res_data, encode(r, &mut self.buf));
            w.end_item(f.resources);
            if let Some(rid) = rid {
                h.observable(w, "resources.uid", obs::RESOURCE_UID, rid);
            }
        }

        if let Some(action) = service.and_then(|s| get(s, "action")) {
            write_action(w, h, e, action, &ActionKeys::GUARDDUTY);
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
    fn severity_scale() {
        assert_eq!(severity(9.0), 5);
        assert_eq!(severity(8.9), 4);
        assert_eq!(severity(5.0), 3);
        assert_eq!(severity(1.0), 2);
    }
}
