//! Findings into the lake: the `findings` table holds every version the engine emitted of each
//! finding (a finding updated by later hits is written again, same uid, higher count), with the
//! Detection Finding projection.

use ocelot_detectors::Finding;
use ocelot_normalize::classes::class_and_projection;
use ocelot_normalize::OcsfBatch;

/// The lake table of the engine's findings.
pub const FINDINGS_TABLE: &str = "findings";

/// The OCSF class of a lake table: its name, except `findings`, which holds Detection Findings.
pub fn class_of(table: &str) -> &str {
    if table == FINDINGS_TABLE {
        "detection_finding"
    } else {
        table
    }
}

/// Findings converted at a time: each is a JSON tree (its related events and evidences) on the
/// way to Arrow, and a detect stage catching up flushes thousands at once (all at once, they
/// were the peak of a routed replica's memory in heaptrack).
const CHUNK: usize = 256;

/// Findings as one Detection Finding batch.
pub fn to_batch(findings: &[Finding]) -> Result<OcsfBatch, String> {
    let (class, schema) = class_and_projection(class_of(FINDINGS_TABLE)).map_err(|e| e.to_string())?;
    let mut decoder = arrow::json::ReaderBuilder::new(schema.clone()).with_batch_size(CHUNK).build_decoder().map_err(|e| e.to_string())?;
    let mut batches = Vec::with_capacity(findings.len().div_ceil(CHUNK));
    for chunk in findings.chunks(CHUNK) {
        let rows: Vec<serde_json::Value> = chunk.iter().map(Finding::to_lake_json).collect();
        decoder.serialize(&rows).map_err(|e| format!("findings to Arrow: {e}"))?;
        batches.extend(decoder.flush().map_err(|e| e.to_string())?);
    }
    if batches.is_empty() {
        return Err("no findings".into());
    }
    let batch = arrow::compute::concat_batches(&schema, &batches).map_err(|e| e.to_string())?;
    Ok(OcsfBatch { class, batch })
}
