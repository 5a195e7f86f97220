//! AWS Security Hub findings (ASFF, AwsSecurityFinding) to OCSF 1.8.0 findings: Compliance
//! Finding (2003) for control checks, Vulnerability Finding (2002) for findings with
//! vulnerabilities (Inspector), Detection Finding (2004) for the rest (GuardDuty, Macie, Shield,
//! Access Analyzer, partner products...). The mapping and its reasons: `docs/mappings/asff.md`.

use ocelot_schemas::{BatchWriter, WriterError};
use simd_json::BorrowedValue;

use super::columns::columns;
use super::head::{obs, parse_arn, Head};
use super::time::parse_time_ms;
use super::{ClassWriter, Normalizer, OcsfBatch};
use crate::decode::Origin;
use crate::json::{encode, f64_of, get, get_path, i64_of, is_null, str_of, write_members_except, Consumed, Mapped};

columns! {
    /// What every finding class carries.
    pub struct Finding {
        md_product_uid: str = "metadata.product.uid",
        md_feature_uid: str = "metadata.product.feature.uid",
        md_processed: i64 = "metadata.processed_time",
        md_processed_dt: ts = "metadata.processed_time_dt",
        status_id: i32 = "status_id",
        status: str = "status",
        confidence_score: i32 = "confidence_score",
        message: str = "message",
        fi_uid: str = "finding_info.uid",
        fi_title: str = "finding_info.title",
        fi_desc: str = "finding_info.desc",
        fi_types: list = "finding_info.types",
        fi_src_url: str = "finding_info.src_url",
        fi_created: i64 = "finding_info.created_time",
        fi_created_dt: ts = "finding_info.created_time_dt",
        fi_modified: i64 = "finding_info.modified_time",
        fi_modified_dt: ts = "finding_info.modified_time_dt",
        fi_first: i64 = "finding_info.first_seen_time",
        fi_first_dt: ts = "finding_info.first_seen_time_dt",
        fi_last: i64 = "finding_info.last_seen_time",
        fi_last_dt: ts = "finding_info.last_seen_time_dt",
        resources: list = "resources",
        res_uid: str = "resources.uid",
        res_type: str = "resources.type",
        res_partition: str = "resources.cloud_partition",
        res_region: str = "resources.region",
        res_labels: list = "resources.labels",
        res_data: str = "resources.data",
        res_owner: str = "resources.owner.account.uid",
    }
}

columns! {
    pub struct Remediation {
        desc: str = "remediation.desc",
        references: list = "remediation.references",
    }
}

columns! {
    /// Detection Finding: what was seen (GuardDuty's action) as evidence.
    pub struct Evidence {
        evidences: list = "evidences",
        api_operation: str = "evidences.api.operation",
        api_service: str = "evidences.api.service.name",
        api_error: str = "evidences.api.response.error",
        src_ip: str = "evidences.src_endpoint.ip",
        src_country: str = "evidences.src_endpoint.location.country",
        src_city: str = "evidences.src_endpoint.location.city",
        src_port: i32 = "evidences.src_endpoint.port",
        dst_ip: str = "evidences.dst_endpoint.ip",
        dst_port: i32 = "evidences.dst_endpoint.port",
        protocol: str = "evidences.connection_info.protocol_name",
        direction: str = "evidences.connection_info.direction",
        direction_id: i32 = "evidences.connection_info.direction_id",
        query: str = "evidences.query.hostname",
    }
}

columns! {
    pub struct Compliance {
        control: str = "compliance.control",
        status: str = "compliance.status",
        status_id: i32 = "compliance.status_id",
        status_code: str = "compliance.status_code",
        status_detail: str = "compliance.status_detail",
        requirements: list = "compliance.requirements",
        standards: list = "compliance.standards",
    }
}

columns! {
    pub struct Vulns {
        list: list = "vulnerabilities",
        cve_uid: str = "vulnerabilities.cve.uid",
        cve_created: i64 = "vulnerabilities.cve.created_time",
        cve_modified: i64 = "vulnerabilities.cve.modified_time",
        cve_references: list = "vulnerabilities.cve.references",
        cvss: list = "vulnerabilities.cve.cvss",
        cvss_score: f64 = "vulnerabilities.cve.cvss.base_score",
        cvss_vector: str = "vulnerabilities.cve.cvss.vector_string",
        cvss_version: str = "vulnerabilities.cve.cvss.version",
        cvss_source: str = "vulnerabilities.cve.cvss.vendor_name",
        epss: str = "vulnerabilities.cve.epss.score",
        references: list = "vulnerabilities.references",
        related: list = "vulnerabilities.related_vulnerabilities",
        vendor: str = "vulnerabilities.vendor_name",
        severity: str = "vulnerabilities.severity",
        fix: bool = "vulnerabilities.is_fix_available",
        exploit: bool = "vulnerabilities.is_exploit_available",
        title: str = "vulnerabilities.title",
        desc: str = "vulnerabilities.desc",
        rem_desc: str = "vulnerabilities.remediation.desc",
        rem_refs: list = "vulnerabilities.remediation.references",
        pkgs: list = "vulnerabilities.affected_packages",
        pkg_name: str = "vulnerabilities.affected_packages.name",
        pkg_version: str = "vulnerabilities.affected_packages.version",
        pkg_epoch: i32 = "vulnerabilities.affected_packages.epoch",
        pkg_release: str = "vulnerabilities.affected_packages.release",
        pkg_arch: str = "vulnerabilities.affected_packages.architecture",
        pkg_manager: str = "vulnerabilities.affected_packages.package_manager",
        pkg_fixed: str = "vulnerabilities.affected_packages.fixed_in_version",
        pkg_path: str = "vulnerabilities.affected_packages.path",
        pkg_fix: str = "vulnerabilities.affected_packages.remediation.desc",
    }
}

pub const PATHS: &[(&str, &[&[&str]])] = &[
    ("detection_finding", &[Head::PATHS, Finding::PATHS, Remediation::PATHS, Evidence::PATHS]),
    ("compliance_finding", &[Head::PATHS, Finding::PATHS, Remediation::PATHS, Compliance::PATHS]),
    ("vulnerability_finding", &[Head::PATHS, Finding::PATHS, Vulns::PATHS]),
];

/// ASFF fields the mapping consumes; the rest (ProductFields, FindingProviderFields,
/// UserDefinedFields, Network, Process, RelatedFindings, RecordState and the deprecated
/// WorkflowState, which only refine the status, ...) stays in `unmapped`.
const MAPPED: &[&str] = &[
    "SchemaVersion",
    "Id",
    "ProductArn",
    "ProductName",
    "CompanyName",
    "Region",
    "GeneratorId",
    "AwsAccountId",
    "Types",
    "FirstObservedAt",
    "LastObservedAt",
    "CreatedAt",
    "UpdatedAt",
    "ProcessedAt",
    "Severity.Label",
    "Confidence",
    "Title",
    "Description",
    "Remediation.Recommendation.Text",
    "Remediation.Recommendation.Url",
    "SourceUrl",
    "Resources",
    "Compliance.Status",
    "Compliance.SecurityControlId",
    "Compliance.RelatedRequirements",
    "Compliance.AssociatedStandards",
    "Compliance.StatusReasons",
    "Workflow.Status",
    "Note.Text",
    "Vulnerabilities",
    "Action.ActionType",
    "Action.AwsApiCallAction.Api",
    "Action.AwsApiCallAction.ServiceName",
    "Action.AwsApiCallAction.RemoteIpDetails.IpAddressV4",
    "Action.AwsApiCallAction.RemoteIpDetails.Country.CountryName",
    "Action.AwsApiCallAction.RemoteIpDetails.City.CityName",
    "Action.NetworkConnectionAction.RemoteIpDetails.IpAddressV4",
    "Action.NetworkConnectionAction.RemoteIpDetails.Country.CountryName",
    "Action.NetworkConnectionAction.RemoteIpDetails.City.CityName",
    "Action.NetworkConnectionAction.RemotePortDetails.Port",
    "Action.NetworkConnectionAction.LocalPortDetails.Port",
    "Action.NetworkConnectionAction.Protocol",
    "Action.NetworkConnectionAction.ConnectionDirection",
    "Action.PortProbeAction.PortProbeDetails",
    "Action.DnsRequestAction.Domain",
];

/// Keys of a `Resources[]` item the mapping writes.
const RESOURCE_KEYS: &[&str] = &["Id", "Type", "Partition", "Region", "Tags", "Details", "Owner"];
/// Keys of a `Vulnerabilities[]` item the mapping writes (`Vendor`'s members all are).
const VULN_KEYS: &[&str] = &["Id", "Vendor", "Cvss", "EpssScore", "ReferenceUrls", "RelatedVulnerabilities", "FixAvailable", "ExploitAvailable", "VulnerablePackages"];

const VENDOR_KEYS: &[&str] = &["Name", "VendorSeverity", "VendorCreatedAt", "VendorUpdatedAt", "Url"];
const CVSS_KEYS: &[&str] = &["BaseScore", "Version", "BaseVector", "Source"];
const PACKAGE_KEYS: &[&str] = &["Name", "Version", "Epoch", "Release", "Architecture", "PackageManager", "FixedInVersion", "FilePath", "Remediation"];

fn vulns_fully_mapped(list: Option<&BorrowedValue<'_>>) -> bool {
    all_items_within(list, VULN_KEYS)
        && match list {
            Some(BorrowedValue::Array(items)) => items.iter().all(|vu| {
                all_items_within(get(vu, "Cvss"), CVSS_KEYS)
                    && all_items_within(get(vu, "VulnerablePackages"), PACKAGE_KEYS)
                    && get(vu, "Vendor").is_none_or(|v| matches!(v, BorrowedValue::Object(o) if o.keys().all(|k| VENDOR_KEYS.contains(&k.as_ref()))))
            }),
            _ => true,
        }
}

/// True if `list` is absent, or a list of objects whose keys are all in `keys`.
fn all_items_within(list: Option<&BorrowedValue<'_>>, keys: &[&str]) -> bool {
    match list {
        None => true,
        Some(BorrowedValue::Array(items)) => items.iter().all(|i| match i {
            BorrowedValue::Object(o) => o.keys().all(|k| keys.contains(&k.as_ref())),
            _ => false,
        }),
        Some(_) => false,
    }
}

/// The top-level namespaces of ASFF `Types` ("namespace/category/classifier").
const TYPE_NAMESPACES: &[&str] = &["Software and Configuration Checks", "TTPs", "Effects", "Unusual Behaviors", "Sensitive Data Identifications"];

#[derive(Clone, Copy)]
enum Class {
    Detection,
    Compliance,
    Vulnerability,
}

pub struct Asff {
    detection: (ClassWriter, Head, Finding, Remediation, Evidence),
    compliance: (ClassWriter, Head, Finding, Remediation, Compliance),
    vulnerability: (ClassWriter, Head, Finding, Vulns),
    mapped: Mapped,
    buf: Vec<u8>,
}

impl Asff {
    pub fn new() -> Result<Asff, WriterError> {
        let d = ClassWriter::new("detection_finding")?;
        let c = ClassWriter::new("compliance_finding")?;
        let v = ClassWriter::new("vulnerability_finding")?;
        let detection = (Head::resolve(&d.writer)?, Finding::resolve(&d.writer)?, Remediation::resolve(&d.writer)?, Evidence::resolve(&d.writer)?);
        let compliance = (Head::resolve(&c.writer)?, Finding::resolve(&c.writer)?, Remediation::resolve(&c.writer)?, Compliance::resolve(&c.writer)?);
        let vulnerability = (Head::resolve(&v.writer)?, Finding::resolve(&v.writer)?, Vulns::resolve(&v.writer)?);
        Ok(Asff {
            detection: (d, detection.0, detection.1, detection.2, detection.3),
            compliance: (c, compliance.0, compliance.1, compliance.2, compliance.3),
            vulnerability: (v, vulnerability.0, vulnerability.1, vulnerability.2),
            mapped: Mapped::new(MAPPED),
            buf: Vec::with_capacity(4096),
        })
    }
}

/// The fields every class reads, checked once.
struct Rec<'v> {
    v: &'v BorrowedValue<'v>,
    id: &'v str,
    product_arn: &'v str,
    updated: i64,
    created: Option<i64>,
}

fn time_of(v: &BorrowedValue<'_>, key: &str) -> Result<Option<i64>, String> {
    match str_of(get(v, key)) {
        None => Ok(None),
        Some(t) => parse_time_ms(t).map(Some).ok_or_else(|| format!("bad ASFF finding: {key} `{t}` is not an RFC 3339 time")),
    }
}

fn check<'v>(v: &'v BorrowedValue<'v>) -> Result<(Rec<'v>, Class), String> {
    if !matches!(v, BorrowedValue::Object(_)) {
        return Err("not an ASFF finding: expected a JSON object".into());
    }
    let id = str_of(get(v, "Id")).filter(|s| !s.is_empty()).ok_or("not an ASFF finding: no Id")?;
    let product_arn = str_of(get(v, "ProductArn")).filter(|s| !s.is_empty()).ok_or("not an ASFF finding: no ProductArn")?;
    let created = time_of(v, "CreatedAt")?;
    let updated = super::time::admit(time_of(v, "UpdatedAt")?.or(created).ok_or("not an ASFF finding: no UpdatedAt or CreatedAt")?)?;
    if let Some(types) = get(v, "Types") {
        let BorrowedValue::Array(types) = types else { return Err("bad ASFF finding: Types is not a list".into()) };
        for t in types.iter() {
            let t = str_of(Some(t)).ok_or("bad ASFF finding: a Types entry is not a string")?;
            let ns = t.split('/').next().unwrap_or("");
            if !TYPE_NAMESPACES.contains(&ns) {
                return Err(format!("unknown ASFF finding type `{t}`: the namespace must be one of {}", TYPE_NAMESPACES.join(", ")));
            }
        }
    }
    let class = if get_path(v, &["Compliance", "Status"]).is_some() {
        Class::Compliance
    } else if matches!(get(v, "Vulnerabilities"), Some(BorrowedValue::Array(a)) if !a.is_empty()) {
        Class::Vulnerability
    } else {
        Class::Detection
    };
    Ok((Rec { v, id, product_arn, updated, created }, class))
}

impl Normalizer for Asff {
    fn kind(&self) -> &'static str {
        "securityhub"
    }

    fn append(&mut self, v: &BorrowedValue<'_>, _origin: &Origin) -> Result<(), String> {
        let (r, class) = check(v)?;
        let buf = &mut self.buf;
        match class {
            Class::Detection => {
                let (cw, h, f, rem, ev) = &mut self.detection;
                write_finding(&mut cw.writer, cw.class, h, f, &r, buf);
                write_remediation(&mut cw.writer, rem, v);
                write_evidence(&mut cw.writer, h, ev, v);
            }
            Class::Compliance => {
                let (cw, h, f, rem, c) = &mut self.compliance;
                write_finding(&mut cw.writer, cw.class, h, f, &r, buf);
                write_remediation(&mut cw.writer, rem, v);
                write_compliance(&mut cw.writer, c, v);
            }
            Class::Vulnerability => {
                let (cw, h, f, vu) = &mut self.vulnerability;
                write_finding(&mut cw.writer, cw.class, h, f, &r, buf);
                write_vulnerabilities(&mut cw.writer, vu, v);
            }
        }
        let (w, h) = match class {
            Class::Detection => (&mut self.detection.0.writer, &self.detection.1),
            Class::Compliance => (&mut self.compliance.0.writer, &self.compliance.1),
            Class::Vulnerability => (&mut self.vulnerability.0.writer, &self.vulnerability.1),
        };
        self.buf.clear();
        // Lists are consumed whole only when every item holds nothing but mapped keys;
        // otherwise the list stays in `unmapped` too, so nothing is lost.
        let keep_resources = !all_items_within(get(v, "Resources"), RESOURCE_KEYS);
        let keep_vulns = !vulns_fully_mapped(get(v, "Vulnerabilities"));
        let mapped = &self.mapped;
        let consumed = |_: usize, k: &str| match mapped.find(k) {
            _ if keep_resources && k == "Resources" || keep_vulns && k == "Vulnerabilities" => Consumed::Nothing,
            Some(None) => Consumed::Whole,
            Some(Some(sub)) => Consumed::Part(sub),
            None => Consumed::Nothing,
        };
        if write_members_except(v, consumed, &mut self.buf) {
            w.str(h.unmapped, std::str::from_utf8(&self.buf).unwrap_or_default());
        }
        w.end_row();
        Ok(())
    }

    fn buffered_rows(&self) -> usize {
        self.detection.0.writer.rows() + self.compliance.0.writer.rows() + self.vulnerability.0.writer.rows()
    }

    fn discard_partial(&mut self) {
        self.detection.0.writer.discard_row();
        self.compliance.0.writer.discard_row();
        self.vulnerability.0.writer.discard_row();
    }
    fn take_batches(&mut self) -> Result<Vec<OcsfBatch>, WriterError> {
        let mut out = Vec::new();
        self.detection.0.take(&mut out)?;
        self.compliance.0.take(&mut out)?;
        self.vulnerability.0.take(&mut out)?;
        Ok(out)
    }
}

/// OCSF severity from the ASFF label, else from the normalized score (0-100) as ASFF defines
/// the label ranges.
fn severity(v: &BorrowedValue<'_>) -> i32 {
    let label = str_of(get_path(v, &["Severity", "Label"])).or_else(|| str_of(get_path(v, &["FindingProviderFields", "Severity", "Label"])));
    match label {
        Some("INFORMATIONAL") => 1,
        Some("LOW") => 2,
        Some("MEDIUM") => 3,
        Some("HIGH") => 4,
        Some("CRITICAL") => 5,
        _ => match i64_of(get_path(v, &["Severity", "Normalized"])) {
            Some(0) => 1,
            Some(1..=39) => 2,
            Some(40..=69) => 3,
            Some(70..=89) => 4,
            Some(90..=100) => 5,
            _ => 0,
        },
    }
}

/// Finding status from the record state and the workflow.
fn status(v: &BorrowedValue<'_>) -> Option<(i32, &'static str)> {
    if str_of(get(v, "RecordState")) == Some("ARCHIVED") {
        return Some((5, "Archived"));
    }
    match str_of(get_path(v, &["Workflow", "Status"])).or_else(|| str_of(get(v, "WorkflowState"))) {
        Some("NEW") => Some((1, "New")),
        Some("NOTIFIED") | Some("ASSIGNED") | Some("IN_PROGRESS") => Some((2, "In Progress")),
        Some("SUPPRESSED") | Some("DEFERRED") => Some((3, "Suppressed")),
        Some("RESOLVED") => Some((4, "Resolved")),
        _ => None,
    }
}

/// An epoch-ms time and its `_dt` twin.
pub(super) fn both(w: &mut BatchWriter, ms: ocelot_schemas::I64Col, dt: ocelot_schemas::TsCol, t: i64) {
    w.i64(ms, t);
    w.ts(dt, t);
}

fn write_finding(w: &mut BatchWriter, class: &ocelot_schemas::ClassDef, h: &Head, f: &Finding, r: &Rec<'_>, buf: &mut Vec<u8>) {
    let v = r.v;
    // Create when first reported, Update after, Close when archived.
    let activity = if str_of(get(v, "RecordState")) == Some("ARCHIVED") {
        3
    } else if r.created.is_some_and(|c| c < r.updated) {
        2
    } else {
        1
    };
    h.classify(w, class, activity, None);
    h.time(w, r.updated);
    h.severity(w, severity(v));
    if let Some((id, name)) = status(v) {
        w.i32(f.status_id, id);
        w.str(f.status, name);
    }

    // The product that found it.
    let product = str_of(get(v, "ProductName")).or_else(|| r.product_arn.rsplit('/').next()).unwrap_or("Security Hub");
    let vendor = str_of(get(v, "CompanyName")).unwrap_or("AWS");
    h.product(w, product, vendor, &["cloud"]);
    w.str(h.md_uid, r.id);
    w.str(h.md_log_provider, "Security Hub");
    w.str(f.md_product_uid, r.product_arn);
    if let Some(g) = str_of(get(v, "GeneratorId")) {
        w.str(f.md_feature_uid, g);
    }
    if let Some(s) = str_of(get(v, "SchemaVersion")) {
        w.str(h.md_log_version, s);
    }
    if let Some(t) = str_of(get(v, "ProcessedAt")).and_then(parse_time_ms) {
        both(w, f.md_processed, f.md_processed_dt, t);
    }
    let region = str_of(get(v, "Region")).or_else(|| parse_arn(r.id).map(|a| a.region)).or_else(|| parse_arn(r.product_arn).map(|a| a.region));
    h.aws(w, region, str_of(get(v, "AwsAccountId")));

    // The finding.
    w.str(f.fi_uid, r.id);
    for (col, key) in [(f.fi_title, "Title"), (f.fi_desc, "Description"), (f.fi_src_url, "SourceUrl")] {
        if let Some(s) = str_of(get(v, key)) {
            w.str(col, s);
        }
    }
    if let Some(BorrowedValue::Array(types)) = get(v, "Types") {
        for t in types.iter().filter_map(|t| str_of(Some(t))) {
            w.push_str(f.fi_types, t);
        }
    }
    if let Some(c) = r.created {
        both(w, f.fi_created, f.fi_created_dt, c);
    }
    both(w, f.fi_modified, f.fi_modified_dt, r.updated);
    for (ms, dt, key) in [(f.fi_first, f.fi_first_dt, "FirstObservedAt"), (f.fi_last, f.fi_last_dt, "LastObservedAt")] {
        if let Some(t) = str_of(get(v, key)).and_then(parse_time_ms) {
            both(w, ms, dt, t);
        }
    }
    if let Some(c) = i64_of(get(v, "Confidence")).and_then(|c| i32::try_from(c).ok()) {
        w.i32(f.confidence_score, c);
    }
    if let Some(n) = str_of(get_path(v, &["Note", "Text"])) {
        w.str(f.message, n);
    }

    // The resources it is about.
    if let Some(BorrowedValue::Array(resources)) = get(v, "Resources") {
        for res in resources.iter() {
            w.begin_item(f.resources);
            for (col, key) in [(f.res_uid, "Id"), (f.res_type, "Type"), (f.res_partition, "Partition"), (f.res_region, "Region")] {
                if let Some(s) = str_of(get(res, key)) {
                    w.str(col, s);
                }
            }
            if let Some(BorrowedValue::Object(tags)) = get(res, "Tags") {
                for (k, val) in tags.iter() {
                    if let Some(val) = str_of(Some(val)) {
                        w.push_str(f.res_labels, &format!("{k}:{val}"));
                    }
                }
            }
            if let Some(d) = get(res, "Details").filter(|d| !is_null(d)) {
                w.str(f.res_data, encode(d, buf));
            }
            if let Some(owner) = str_of(get_path(res, &["Owner", "AccountId"])) {
                w.str(f.res_owner, owner);
            }
            w.end_item(f.resources);
            if let Some(id) = str_of(get(res, "Id")) {
                h.observable(w, "resources.uid", obs::RESOURCE_UID, id);
            }
        }
    }
}

fn write_remediation(w: &mut BatchWriter, c: &Remediation, v: &BorrowedValue<'_>) {
    // OCSF requires remediation.desc: a URL without text is not mapped (it stays in unmapped).
    let Some(text) = str_of(get_path(v, &["Remediation", "Recommendation", "Text"])) else { return };
    w.str(c.desc, text);
    if let Some(url) = str_of(get_path(v, &["Remediation", "Recommendation", "Url"])) {
        w.push_str(c.references, url);
    }
}

/// GuardDuty (and kin) say what they saw in `Action`: an API call, a connection, a probe, a
/// DNS request. Each is one evidence.
fn write_evidence(w: &mut BatchWriter, h: &Head, e: &Evidence, v: &BorrowedValue<'_>) {
    match get(v, "Action") {
        Some(action) => write_action(w, h, e, action, &ActionKeys::ASFF),
        None => write_guardduty_product_fields(w, h, e, v),
    }
}

/// The key names of a GuardDuty-style action: ASFF writes them in PascalCase, GuardDuty's own
/// findings in lowerCamelCase; the shape is the same.
pub(super) struct ActionKeys {
    api_call: &'static str,
    api: &'static str,
    service: &'static str,
    error: &'static str,
    remote: &'static str,
    ipv4: &'static str,
    country: [&'static str; 2],
    city: [&'static str; 2],
    network: &'static str,
    remote_port: &'static str,
    local_port: &'static str,
    port: &'static str,
    protocol: &'static str,
    direction: &'static str,
    probe: [&'static str; 2],
    dns: [&'static str; 2],
}

impl ActionKeys {
    pub(super) const ASFF: ActionKeys = ActionKeys {
        api_call: "AwsApiCallAction",
        api: "Api",
        service: "ServiceName",
        error: "ErrorCode",
        remote: "RemoteIpDetails",
        ipv4: "IpAddressV4",
        country: ["Country", "CountryName"],
        city: ["City", "CityName"],
        network: "NetworkConnectionAction",
        remote_port: "RemotePortDetails",
        local_port: "LocalPortDetails",
        port: "Port",
        protocol: "Protocol",
        direction: "ConnectionDirection",
        probe: ["PortProbeAction", "PortProbeDetails"],
        dns: ["DnsRequestAction", "Domain"],
    };
    pub(super) const GUARDDUTY: ActionKeys = ActionKeys {
        api_call: "awsApiCallAction",
        api: "api",
        service: "serviceName",
        error: "errorCode",
        remote: "remoteIpDetails",
        ipv4: "ipAddressV4",
        country: ["country", "countryName"],
        city: ["city", "cityName"],
        network: "networkConnectionAction",
        remote_port: "remotePortDetails",
        local_port: "localPortDetails",
        port: "port",
        protocol: "protocol",
        direction: "connectionDirection",
        probe: ["portProbeAction", "portProbeDetails"],
        dns: ["dnsRequestAction", "domain"],
    };
}

/// What GuardDuty (and kin) saw, as evidence: an API call, a connection, port probes, a DNS
/// request, one evidence each. GuardDuty writes empty objects for the kinds of action that did
/// not happen: those give none.
pub(super) fn write_action(w: &mut BatchWriter, h: &Head, e: &Evidence, action: &BorrowedValue<'_>, k: &ActionKeys) {
    let mut ips = Vec::new();
    let port = |a: &BorrowedValue<'_>, key: &str| i64_of(get_path(a, &[key, k.port])).and_then(|p| i32::try_from(p).ok());
    let has_ip = |a: &BorrowedValue<'_>| get_path(a, &[k.remote, k.ipv4]).is_some();
    if let Some(api) = get(action, k.api_call).filter(|a| get(a, k.api).is_some()) {
        w.begin_item(e.evidences);
        for (col, key) in [(e.api_operation, k.api), (e.api_service, k.service), (e.api_error, k.error)] {
            if let Some(s) = str_of(get(api, key)) {
                w.str(col, s);
            }
        }
        ips.extend(remote_ip(api, w, e, k));
        w.end_item(e.evidences);
    }
    if let Some(net) = get(action, k.network).filter(|n| has_ip(n) || port(n, k.local_port).is_some()) {
        w.begin_item(e.evidences);
        ips.extend(remote_ip(net, w, e, k));
        if let Some(p) = port(net, k.remote_port) {
            w.i32(e.src_port, p);
        }
        if let Some(p) = port(net, k.local_port) {
            w.i32(e.dst_port, p);
        }
        if let Some(p) = str_of(get(net, k.protocol)) {
            w.str(e.protocol, p);
        }
        let direction = match str_of(get(net, k.direction)) {
            Some("INBOUND") => Some((1, "Inbound")),
            Some("OUTBOUND") => Some((2, "Outbound")),
            _ => None,
        };
        if let Some((id, name)) = direction {
            w.i32(e.direction_id, id);
            w.str(e.direction, name);
        }
        w.end_item(e.evidences);
    }
    if let Some(BorrowedValue::Array(probes)) = get_path(action, &k.probe) {
        for p in probes.iter().filter(|p| has_ip(p)) {
            w.begin_item(e.evidences);
            ips.extend(remote_ip(p, w, e, k));
            if let Some(port) = port(p, k.local_port) {
                w.i32(e.dst_port, port);
            }
            w.end_item(e.evidences);
        }
    }
    if let Some(d) = str_of(get_path(action, &k.dns)) {
        w.begin_item(e.evidences);
        w.str(e.query, d);
        w.end_item(e.evidences);
        h.observable(w, "evidences.query.hostname", obs::HOSTNAME, d);
    }
    for ip in ips {
        h.observable(w, "evidences.src_endpoint.ip", obs::IP, ip);
    }
}

/// GuardDuty findings imported without `Action` carry the API call only in their flat
/// `ProductFields` (which also stay in `unmapped`, whole).
fn write_guardduty_product_fields(w: &mut BatchWriter, h: &Head, e: &Evidence, v: &BorrowedValue<'_>) {
    const API: &str = "aws/guardduty/service/action/awsApiCallAction/";
    let Some(pf) = get(v, "ProductFields") else { return };
    let field = |k: &str| str_of(get(pf, &format!("{API}{k}"))).filter(|s| !s.is_empty());
    let Some(op) = field("api") else { return };
    w.begin_item(e.evidences);
    w.str(e.api_operation, op);
    if let Some(s) = field("serviceName") {
        w.str(e.api_service, s);
    }
    let ip = field("remoteIpDetails/ipAddressV4");
    if let Some(ip) = ip {
        w.str(e.src_ip, ip);
    }
    if let Some(c) = field("remoteIpDetails/country/countryName") {
        w.str(e.src_country, c);
    }
    if let Some(c) = field("remoteIpDetails/city/cityName") {
        w.str(e.src_city, c);
    }
    w.end_item(e.evidences);
    if let Some(ip) = ip {
        h.observable(w, "evidences.src_endpoint.ip", obs::IP, ip);
    }
}

/// The remote side of an action: the source endpoint. Returns its IP.
fn remote_ip<'v>(a: &'v BorrowedValue<'_>, w: &mut BatchWriter, e: &Evidence, k: &ActionKeys) -> Option<&'v str> {
    let remote = get(a, k.remote)?;
    let ip = str_of(get(remote, k.ipv4));
    if let Some(ip) = ip {
        w.str(e.src_ip, ip);
    }
    if let Some(c) = str_of(get_path(remote, &k.country)) {
        w.str(e.src_country, c);
    }
    if let Some(c) = str_of(get_path(remote, &k.city)) {
        w.str(e.src_city, c);
    }
    ip
}

fn write_compliance(w: &mut BatchWriter, c: &Compliance, v: &BorrowedValue<'_>) {
    let Some(comp) = get(v, "Compliance") else { return };
    if let Some(s) = str_of(get(comp, "Status")) {
        w.str(c.status, s);
        match s {
            "PASSED" => w.i32(c.status_id, 1),
            "WARNING" => w.i32(c.status_id, 2),
            "FAILED" => w.i32(c.status_id, 3),
            _ => {} // NOT_AVAILABLE: OCSF has no id for it; the word stays in status
        }
    }
    // The control: the consolidated control id, else the generator's last part ("PCI.Lambda.2").
    let control = str_of(get(comp, "SecurityControlId")).or_else(|| str_of(get(v, "GeneratorId")).and_then(|g| g.rsplit('/').next()));
    if let Some(ctl) = control {
        w.str(c.control, ctl);
    }
    if let Some(BorrowedValue::Array(reqs)) = get(comp, "RelatedRequirements") {
        for r in reqs.iter().filter_map(|r| str_of(Some(r))) {
            w.push_str(c.requirements, r);
        }
    }
    if let Some(BorrowedValue::Array(stds)) = get(comp, "AssociatedStandards") {
        for s in stds.iter().filter_map(|s| str_of(get(s, "StandardsId"))) {
            w.push_str(c.standards, s);
        }
    }
    if let Some(BorrowedValue::Array(reasons)) = get(comp, "StatusReasons")
        && let Some(first) = reasons.first()
    {
        if let Some(code) = str_of(get(first, "ReasonCode")) {
            w.str(c.status_code, code);
        }
        if let Some(d) = str_of(get(first, "Description")) {
            w.str(c.status_detail, d);
        }
    }
}

fn write_vulnerabilities(w: &mut BatchWriter, c: &Vulns, v: &BorrowedValue<'_>) {
    let Some(BorrowedValue::Array(vulns)) = get(v, "Vulnerabilities") else { return };
    let rem_text = str_of(get_path(v, &["Remediation", "Recommendation", "Text"]));
    let rem_url = str_of(get_path(v, &["Remediation", "Recommendation", "Url"]));
    for vu in vulns.iter() {
        w.begin_item(c.list);
        if let Some(id) = str_of(get(vu, "Id")) {
            w.str(c.cve_uid, id);
            w.str(c.title, id);
        }
        if let Some(t) = str_of(get(v, "Description")) {
            w.str(c.desc, t);
        }
        if let Some(vendor) = get(vu, "Vendor") {
            if let Some(n) = str_of(get(vendor, "Name")) {
                w.str(c.vendor, n);
            }
            if let Some(sev) = str_of(get(vendor, "VendorSeverity")) {
                w.str(c.severity, sev);
            }
            if let Some(t) = str_of(get(vendor, "VendorCreatedAt")).and_then(parse_time_ms) {
                w.i64(c.cve_created, t);
            }
            if let Some(t) = str_of(get(vendor, "VendorUpdatedAt")).and_then(parse_time_ms) {
                w.i64(c.cve_modified, t);
            }
            if let Some(u) = str_of(get(vendor, "Url")) {
                w.push_str(c.cve_references, u);
            }
        }
        if let Some(BorrowedValue::Array(cvss)) = get(vu, "Cvss") {
            for s in cvss.iter() {
                let (Some(score), Some(version)) = (f64_of(get(s, "BaseScore")), str_of(get(s, "Version"))) else { continue };
                w.begin_item(c.cvss);
                w.f64(c.cvss_score, score);
                w.str(c.cvss_version, version);
                if let Some(vec) = str_of(get(s, "BaseVector")) {
                    w.str(c.cvss_vector, vec);
                }
                if let Some(src) = str_of(get(s, "Source")) {
                    w.str(c.cvss_source, src);
                }
                w.end_item(c.cvss);
            }
        }
        if let Some(score) = f64_of(get(vu, "EpssScore")) {
            w.str(c.epss, &score.to_string());
        }
        for (col, key) in [(c.references, "ReferenceUrls"), (c.related, "RelatedVulnerabilities")] {
            if let Some(BorrowedValue::Array(items)) = get(vu, key) {
                for i in items.iter().filter_map(|i| str_of(Some(i))) {
                    w.push_str(col, i);
                }
            }
        }
        // YES / NO / PARTIAL: a partial fix is a fix available.
        for (col, key) in [(c.fix, "FixAvailable"), (c.exploit, "ExploitAvailable")] {
            match str_of(get(vu, key)) {
                Some("YES") | Some("PARTIAL") => w.bool(col, true),
                Some("NO") => w.bool(col, false),
                _ => {}
            }
        }
        if let Some(text) = rem_text {
            w.str(c.rem_desc, text);
            if let Some(u) = rem_url {
                w.push_str(c.rem_refs, u);
            }
        }
        if let Some(BorrowedValue::Array(pkgs)) = get(vu, "VulnerablePackages") {
            for p in pkgs.iter() {
                w.begin_item(c.pkgs);
                for (col, key) in [
                    (c.pkg_name, "Name"),
                    (c.pkg_version, "Version"),
                    (c.pkg_release, "Release"),
                    (c.pkg_arch, "Architecture"),
                    (c.pkg_manager, "PackageManager"),
                    (c.pkg_fixed, "FixedInVersion"),
                    (c.pkg_path, "FilePath"),
                    (c.pkg_fix, "Remediation"),
                ] {
                    if let Some(s) = str_of(get(p, key)) {
                        w.str(col, s);
                    }
                }
                if let Some(e) = i64_of(get(p, "Epoch")).and_then(|e| i32::try_from(e).ok()) {
                    w.i32(c.pkg_epoch, e);
                }
                w.end_item(c.pkgs);
            }
        }
        w.end_item(c.list);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_from_label_or_score() {
        let mut b = br#"{"Severity":{"Label":"HIGH","Normalized":10}}"#.to_vec();
        assert_eq!(severity(&simd_json::to_borrowed_value(&mut b).unwrap()), 4);
        let mut b = br#"{"Severity":{"Normalized":45}}"#.to_vec();
        assert_eq!(severity(&simd_json::to_borrowed_value(&mut b).unwrap()), 3);
        let mut b = br#"{"RecordState":"ARCHIVED","Workflow":{"Status":"NEW"}}"#.to_vec();
        assert_eq!(status(&simd_json::to_borrowed_value(&mut b).unwrap()), Some((5, "Archived")));
    }
}
