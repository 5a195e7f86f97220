//! Streaming test helpers: the broker and process harness (shared with the benchmark), and
//! checks of what reached the lake.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use ocelot_benches::kafka::*;

/// `ocelot run --config config` (this build's binary).
pub fn ocelot(config: &Path, env: &[(&str, String)]) -> Ocelot {
    Ocelot::start(Path::new(env!("CARGO_BIN_EXE_ocelot")), config, env)
}

/// Parquet files of the lake's event tables (not the engine's `findings`): the files its
/// manifest lists, as Ocelot's readers see them.
pub fn event_files(lake: &Path) -> Vec<PathBuf> {
    let snapshot = ocelot_lake::Snapshot::take(&lake.into()).unwrap();
    snapshot.files.iter().filter(|f| f.ends_with(".parquet") && !f.starts_with("findings/")).map(|f| lake.join(f)).collect()
}

/// Every `metadata.uid` in the lake (all event classes), read with the parquet crate's reader.
pub fn lake_uids(lake: &Path) -> Vec<String> {
    use arrow::array::{AsArray, StructArray};
    let mut out = Vec::new();
    for f in event_files(lake) {
        let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&f).unwrap()).unwrap().build().unwrap();
        for b in r {
            let b = b.unwrap();
            let meta: &StructArray = b.column_by_name("metadata").unwrap().as_struct();
            let uid = meta.column_by_name("uid").unwrap().as_string::<i32>();
            out.extend(uid.iter().map(|u| u.unwrap_or_default().to_string()));
        }
    }
    out
}

/// The (uid, rule id) of every finding version in the lake's `findings` table (the files its
/// manifest lists), read with the parquet crate.
pub fn lake_findings(lake: &Path) -> Vec<(String, String)> {
    use arrow::array::{AsArray, StructArray};
    let snapshot = ocelot_lake::Snapshot::take(&lake.into()).unwrap();
    let mut out = Vec::new();
    for f in snapshot.table_files("findings") {
        let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(lake.join(f)).unwrap()).unwrap().build().unwrap();
        for b in r {
            let b = b.unwrap();
            let info: &StructArray = b.column_by_name("finding_info").unwrap().as_struct();
            let rule: &StructArray = info.column_by_name("analytic").unwrap().as_struct();
            let rules = rule.column_by_name("uid").unwrap().as_string::<i32>();
            let uids = info.column_by_name("uid").unwrap().as_string::<i32>();
            out.extend(uids.iter().zip(rules.iter()).map(|(u, r)| (u.unwrap_or_default().to_string(), r.unwrap_or_default().to_string())));
        }
    }
    out
}

/// Rows per event class table in the lake (`lake/<class>/...parquet`), read with the parquet crate.
pub fn lake_rows_per_class(lake: &Path) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for f in event_files(lake) {
        let class = f.strip_prefix(lake).unwrap().components().next().unwrap().as_os_str().to_string_lossy().to_string();
        let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&f).unwrap()).unwrap();
        *out.entry(class).or_default() += r.metadata().file_metadata().num_rows() as usize;
    }
    out
}

/// `ocelot gen cloudtrail`: n JSON lines, and their eventIDs.
pub fn gen_events(n: usize, seed: u64) -> (Vec<Vec<u8>>, Vec<String>) {
    let out = Command::new(env!("CARGO_BIN_EXE_ocelot")).args(["gen", "cloudtrail", "--events", &n.to_string(), "--seed", &seed.to_string()]).output().unwrap();
    assert!(out.status.success());
    let lines: Vec<Vec<u8>> = out.stdout.split(|c| *c == b'\n').filter(|l| !l.is_empty()).map(|l| l.to_vec()).collect();
    let ids = lines.iter().map(|l| serde_json::from_slice::<serde_json::Value>(l).unwrap()["eventID"].as_str().unwrap().to_string()).collect();
    (lines, ids)
}

/// A config for one input topic, in `dir`; `extra` is appended TOML.
pub fn write_config(dir: &Path, broker: &Broker, topic: &str, lake: &Path, extra: &str) -> PathBuf {
    let p = dir.join("ocelot.toml");
    std::fs::write(
        &p,
        format!(
            "shutdown_timeout_secs = 20\n[kafka]\nbrokers = \"{}\"\ngroup_id = \"ocelot-test\"\n[kafka.settings]\n\"session.timeout.ms\" = 10000\n\"heartbeat.interval.ms\" = 1000\n\n[[inputs]]\ntopic = \"{topic}\"\nsource = \"cloudtrail\"\n\n[lake]\npath = \"{}\"\n\n{extra}",
            broker.addr(),
            lake.display()
        ),
    )
    .unwrap();
    p
}

/// Counts of each id in `found`; returns (missing ids, duplicate rows).
pub fn compare(expected: &[String], found: &[String]) -> (Vec<String>, usize) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for f in found {
        *counts.entry(f.as_str()).or_default() += 1;
    }
    let missing = expected.iter().filter(|e| !counts.contains_key(e.as_str())).cloned().collect();
    let dups = counts.values().map(|c| c - 1).sum();
    (missing, dups)
}

/// The uid of every finding version in the lake's `findings` table.
pub fn lake_finding_uids(lake: &Path) -> Vec<String> {
    lake_findings(lake).into_iter().map(|(u, _)| u).collect()
}
