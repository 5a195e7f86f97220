//! The OCSF classes Ocelot writes, and their Arrow projections: OCSF's required and
//! recommended attributes plus everything a shipped normalizer writes. Computed once.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use arrow::datatypes::SchemaRef;
use ocelot_schemas::{project, schema, ClassDef, ProjectionError};

use crate::written_paths;

/// Classes shipped normalizers write, by table name.
pub const WRITTEN_CLASSES: &[&str] = &["api_activity", "authentication", "account_change", "http_activity", "detection_finding", "compliance_finding", "vulnerability_finding"];

#[derive(Debug, thiserror::Error)]
pub enum ClassError {
    #[error("unknown OCSF class `{0}` (use a class name such as api_activity, or a class_uid such as 6003)")]
    Unknown(String),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
}

/// The class definition and its Arrow projection, by name or uid.
pub fn class_and_projection(name_or_uid: &str) -> Result<(&'static ClassDef, SchemaRef), ClassError> {
    static CACHE: OnceLock<Mutex<HashMap<String, SchemaRef>>> = OnceLock::new();
    let class = schema().class(name_or_uid).ok_or_else(|| ClassError::Unknown(name_or_uid.to_string()))?;
    let cache = CACHE.get_or_init(Default::default);
    if let Some(s) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&class.name) {
        return Ok((class, s.clone()));
    }
    let projected = project(schema(), class, &written_paths(&class.name))?;
    cache.lock().unwrap_or_else(|p| p.into_inner()).insert(class.name.clone(), projected.clone());
    Ok((class, projected))
}

/// Every OCSF path the detection engine's findings write (`ocelot_detectors::Finding::to_ocsf`):
/// the Detection Finding projection includes them, so the lake's `findings` table keeps all of
/// it. Declared here, beside the normalizers' paths, because one projection serves both (and
/// may only grow); the detectors' tests check `to_ocsf` writes nothing else.
pub const FINDING_PATHS: &[&str] = &[
    "activity_id",
    "activity_name",
    "category_name",
    "category_uid",
    "class_name",
    "class_uid",
    "type_uid",
    "type_name",
    "time",
    "start_time",
    "end_time",
    "count",
    "severity_id",
    "severity",
    "status_id",
    "status",
    "message",
    "unmapped",
    "metadata.version",
    "metadata.uid",
    "metadata.product.name",
    "metadata.product.vendor_name",
    "metadata.profiles",
    "metadata.product.version",
    "metadata.log_name",
    "metadata.event_code",
    "finding_info.uid",
    "finding_info.title",
    "finding_info.desc",
    "finding_info.types",
    "finding_info.analytic.uid",
    "finding_info.analytic.name",
    "finding_info.analytic.type_id",
    "finding_info.analytic.type",
    "finding_info.analytic.category",
    "finding_info.first_seen_time",
    "finding_info.last_seen_time",
    "finding_info.related_events_count",
    "finding_info.related_events.uid",
    "finding_info.src_url",
    "attacks.technique.uid",
    "attacks.sub_technique.uid",
    "attacks.tactic.uid",
    "attacks.tactic.name",
    "attacks.version",
    "actor.user.uid",
    "actor.user.name",
    "actor.user.type",
    "actor.user.account.uid",
    "actor.user.account.type",
    "actor.user.account.type_id",
    "actor.app_name",
    "cloud.provider",
    "cloud.region",
    "cloud.account.uid",
    "cloud.account.type",
    "cloud.account.type_id",
    "resources.uid",
    "resources.name",
    "resources.type",
    "evidences.uid",
    "evidences.data",
    "evidences.actor.user.uid",
    "evidences.actor.user.name",
    "evidences.actor.user.type",
    "evidences.actor.app_name",
    "evidences.api.operation",
    "evidences.api.service.name",
    "evidences.src_endpoint.ip",
    "evidences.resources.uid",
    "evidences.resources.name",
    "evidences.resources.type",
    "attacks.tactics.name",
    "attacks.tactics.uid",
    "evidences.actor.user.account.type",
    "evidences.actor.user.account.type_id",
    "evidences.actor.user.account.uid",
    "finding_info.attacks.sub_technique.uid",
    "finding_info.attacks.tactic.name",
    "finding_info.attacks.tactic.uid",
    "finding_info.attacks.tactics.name",
    "finding_info.attacks.tactics.uid",
    "finding_info.attacks.technique.uid",
    "finding_info.attacks.version",
];
