//! The OCSF classes Ocelot writes, and their Arrow projections: OCSF's required and
//! recommended attributes plus everything a shipped normalizer writes. Computed once.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use arrow::datatypes::SchemaRef;
use ocelot_schemas::{project, schema, ClassDef, ProjectionError};

use crate::normalize::written_paths;

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
