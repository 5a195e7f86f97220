//! CloudTrail Insights records (`eventType: AwsCloudTrailInsight`) to OCSF 1.8.0 Detection
//! Finding (2004). An Insights record says that the *rate* of a call (or of its errors) was
//! unusual against the account's baseline; it is not the call. It is written as what it is: a
//! statistical detection by CloudTrail, whose finding opens with the `Start` record (activity
//! Create, status New) and closes with the `End` record (activity Close, status Resolved), both
//! under `finding_info.uid` = `sharedEventID`. The call it is about is named in the title and
//! the analytic, never in `api.operation`, so rules about that call (Sigma on `eventName`, SQL on
//! `api.operation`) do not fire on it, as they would not on the raw record.
//! `docs/mappings/cloudtrail.md` (Insights).

use ocelot_schemas::{BatchWriter, ClassDef};
use simd_json::BorrowedValue;

use super::asff::{both, Finding};
use super::columns::columns;
use super::head::Head;
use crate::json::{f64_of, get, get_path, str_of, Mapped};

columns! {
    pub struct Analytic {
        name: str = "finding_info.analytic.name",
        uid: str = "finding_info.analytic.uid",
        type_id: i32 = "finding_info.analytic.type_id",
        kind: str = "finding_info.analytic.type",
        category: str = "finding_info.analytic.category",
    }
}

pub const PATHS: &[&[&str]] = &[Head::PATHS, Finding::PATHS, Analytic::PATHS];

/// Consumed fields; `insightContext` (the statistics, attributions) stays in `unmapped` whole,
/// besides the averages quoted in the description.
pub const MAPPED: &[&str] = &[
    "eventVersion",
    "eventTime",
    "awsRegion",
    "eventID",
    "eventType",
    "recipientAccountId",
    "sharedEventID",
    "eventCategory",
    "insightDetails.state",
    "insightDetails.eventSource",
    "insightDetails.eventName",
    "insightDetails.insightType",
    "insightDetails.errorCode",
];

/// The columns of an Insights finding.
pub struct Insights {
    pub head: Head,
    pub finding: Finding,
    pub analytic: Analytic,
    pub mapped: Mapped,
}

impl Insights {
    pub fn resolve(w: &BatchWriter) -> Result<Insights, ocelot_schemas::WriterError> {
        Ok(Insights { head: Head::resolve(w)?, finding: Finding::resolve(w)?, analytic: Analytic::resolve(w)?, mapped: Mapped::new(MAPPED) })
    }

    /// Writes one Insights record (`details` is its `insightDetails`) and ends the row.
    pub fn write(&self, w: &mut BatchWriter, class: &ClassDef, v: &BorrowedValue<'_>, details: &BorrowedValue<'_>, time: i64, buf: &mut Vec<u8>) {
        let (h, f, a) = (&self.head, &self.finding, &self.analytic);
        let end = str_of(get(details, "state")) == Some("End");
        h.classify(w, class, if end { 3 } else { 1 }, None);
        h.time(w, time);
        // Unusual, not malicious: the rate rules (and an analyst) decide what it means.
        h.severity(w, 2);
        let (status_id, status) = if end { (4, "Resolved") } else { (1, "New") };
        w.i32(f.status_id, status_id);
        w.str(f.status, status);
        h.product(w, "CloudTrail", "AWS", &["cloud"]);
        w.str(h.md_log_provider, "CloudTrail");
        w.str(h.md_feature, "Insight");
        if let Some(id) = str_of(get(v, "eventID")) {
            w.str(h.md_uid, id);
        }
        if let Some(t) = str_of(get(v, "eventType")) {
            w.str(h.md_event_code, t);
        }
        if let Some(c) = str_of(get(v, "eventCategory")) {
            w.str(h.md_log_name, c);
        }
        if let Some(ver) = str_of(get(v, "eventVersion")) {
            w.str(h.md_log_version, ver);
        }
        h.aws(w, str_of(get(v, "awsRegion")), str_of(get(v, "recipientAccountId")));

        let kind = str_of(get(details, "insightType")).unwrap_or("Insight");
        let source = str_of(get(details, "eventSource")).unwrap_or("an AWS service");
        let call = str_of(get(details, "eventName")).unwrap_or("an API");
        let errors = kind == "ApiErrorRateInsight";
        let what = match (errors, str_of(get(details, "errorCode"))) {
            (true, Some(code)) => format!("{code} errors of {call} calls"),
            (true, None) => format!("errors of {call} calls"),
            _ => format!("{call} calls"),
        };
        let stats = |k: &str| f64_of(get_path(details, &["insightContext", "statistics", k, "average"]));
        let rates = match (stats("baseline"), stats("insight")) {
            (Some(b), Some(i)) => format!(" (average per minute: {i:.1} against a baseline of {b:.1})"),
            _ => String::new(),
        };
        let title = format!("Unusual rate of {what} to {source}");
        let uid = str_of(get(v, "sharedEventID")).or(str_of(get(v, "eventID"))).unwrap_or_default();
        w.str(f.fi_uid, uid);
        w.str(f.fi_title, &title);
        let phase = if end { "ended" } else { "started" };
        w.str(f.fi_desc, &format!("CloudTrail Insights: an unusual rate of {what} to {source} {phase}{rates}. This record reports a rate, not a call."));
        w.str(f.message, &title);
        w.push_str(f.fi_types, kind);
        if end {
            both(w, f.fi_last, f.fi_last_dt, time);
        } else {
            both(w, f.fi_first, f.fi_first_dt, time);
        }
        w.str(a.name, kind);
        w.str(a.uid, &format!("{source}:{call}"));
        w.i32(a.type_id, 3);
        w.str(a.kind, "Statistical");
        w.str(a.category, "CloudTrail Insights");
        h.finish_row(w, v, &self.mapped, buf);
    }
}
