//! `ocelot forward --from-lake`: the engine's findings of a time range, read back from the
//! lake's `findings` table and sent again to the `[[forward]]` targets (after an outage of a
//! target, or to fill a new one). The table holds every version of a finding; the latest of each
//! uid is sent. The uid is each target's idempotency key (Security Hub's `Id`, the webhook's
//! `Idempotency-Key`, HEC's and Elasticsearch's document id), so what a target already has is
//! updated, not duplicated.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use ocelot_lake::findings::FINDINGS_TABLE;
use ocelot_lake::{DeadLetterStore, Snapshot, Storage};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

use super::config::ForwardConfig;
use super::{DeadLetters, Forwarders};

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Resent {
    /// Finding versions read in the range.
    pub versions: usize,
    /// Findings sent (the latest version of each uid).
    pub findings: usize,
    /// Deliveries the targets refused for good or that ran out of retries (in the lake's
    /// dead-letter store).
    pub dead_lettered: usize,
}

/// Sends the latest version of every finding whose `time` is in `[since, until)`.
pub fn from_lake(lake: &Storage, targets: &[ForwardConfig], since: Option<i64>, until: Option<i64>, progress: &dyn Fn(u64, u64)) -> Result<Resent, String> {
    let snapshot = Snapshot::take(lake).map_err(|e| format!("{lake}: {e}"))?;
    let files = snapshot.table_files(FINDINGS_TABLE);
    let mut latest: BTreeMap<String, Value> = BTreeMap::new();
    let mut resent = Resent::default();
    for (i, f) in files.iter().enumerate() {
        progress(i as u64 + 1, files.len() as u64);
        let rows = read_findings(lake, f)?.ok_or_else(|| format!("{f}: listed in the lake's manifest but missing (run `ocelot lake verify`)"))?;
        for row in rows {
            let time = row["time"].as_i64().unwrap_or_default();
            if since.is_some_and(|s| time < s) || until.is_some_and(|u| time >= u) {
                continue;
            }
            let Some(uid) = row["finding_info"]["uid"].as_str().map(str::to_string) else { continue };
            resent.versions += 1;
            // The latest version: the most events counted, then the last seen.
            let rank = |v: &Value| (v["count"].as_i64().unwrap_or_default(), v["finding_info"]["last_seen_time"].as_i64().unwrap_or_default());
            if latest.get(&uid).is_none_or(|old| rank(&row) >= rank(old)) {
                latest.insert(uid, row);
            }
        }
    }
    resent.findings = latest.len();
    if latest.is_empty() {
        return Ok(resent);
    }
    let forwarders = Forwarders::start(targets, DeadLetters::new(DeadLetterStore::new(lake.clone())))?;
    // No deadline: each target retries within its own delivery settings, then dead-letters.
    let stop = AtomicBool::new(false);
    forwarders.submit(latest.into_values(), &stop);
    resent.dead_lettered = forwarders.close(&stop);
    Ok(resent)
}

/// The findings (OCSF JSON) of one file of the `findings` table; None if the file is gone.
pub(crate) fn read_findings(lake: &Storage, path: &str) -> Result<Option<Vec<Value>>, String> {
    let Some(bytes) = lake.read(path).map_err(|e| format!("{path}: {e}"))? else { return Ok(None) };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).and_then(|b| b.build()).map_err(|e| format!("{path}: {e}"))?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| format!("{path}: {e}"))?;
        rows.extend(ocelot_normalize::ocsf_json::rows(&batch).map_err(|e| format!("{path}: {e}"))?);
    }
    Ok(Some(rows))
}
