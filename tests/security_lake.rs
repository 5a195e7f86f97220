//! `ocelot lake export`: the lake as Amazon Security Lake custom sources. Checked: the layout
//! (`ext/<source>/region=/accountId=/eventDay=/`, one OCSF class per source), OCSF 1.1.0 records
//! valid by our validator and by the OCSF JSON Schema of `ocsf-json-schema` (not ours), time
//! order, zstd, object sizes, and that exporting again replaces rather than duplicates.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use ocelot_lake::Snapshot;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

/// A lake of every bundled sample source (CloudTrail, WAF, Security Hub, Shield, agent sessions).
fn sample_lake(lake: &Path) {
    for (source, dir) in [("cloudtrail", "samples/cloudtrail"), ("waf", "samples/waf"), ("securityhub", "samples/securityhub"), ("shield", "samples/shield"), ("agent", "samples/agent/session")] {
        let o = ocelot().args(["normalize", "--source", source, "--lake"]).arg(lake).arg(repo().join(dir)).output().unwrap();
        assert!(o.status.code() == Some(0), "{source}: {}", String::from_utf8_lossy(&o.stderr));
    }
}

fn parquet_under(dir: &Path) -> Vec<PathBuf> {
    files_under(dir).into_iter().filter(|f| f.extension().is_some_and(|e| e == "parquet")).collect()
}

#[test]
fn the_export_is_what_a_security_lake_custom_source_takes() {
    let work = tempfile::tempdir().unwrap();
    let (lake, dest) = (work.path().join("lake"), work.path().join("bucket"));
    sample_lake(&lake);
    let export = || {
        let o = ocelot().args(["lake", "export", "--json"]).arg(&lake).arg(&dest).output().unwrap();
        let stats = serde_json::from_slice::<Value>(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
        // Exit 3: some records dead-lettered (below), as `ocelot normalize`.
        let code = if stats["invalid"] == 0 { 0 } else { 3 };
        assert_eq!(o.status.code(), Some(code), "{stats}{}", String::from_utf8_lossy(&o.stderr));
        stats
    };
    let lake_rows: u64 = Snapshot::take(&lake.as_path().into())
        .unwrap()
        .parquet_files()
        .map(|f| ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(lake.join(f)).unwrap()).unwrap().metadata().file_metadata().num_rows() as u64)
        .sum();
    let stats = export();
    let files = parquet_under(&dest);
    assert!(stats["rows"].as_u64().unwrap() > 100 && !files.is_empty(), "{stats}");
    // Every record is exported or dead-lettered with its problems, never dropped. What 1.1.0
    // requires and the samples lack: WAF's HTTP response and destination (Security Lake takes
    // WAF as a native source), a Config rule's compliance standard.
    assert_eq!(stats["rows"].as_u64().unwrap() + stats["invalid"].as_u64().unwrap(), lake_rows, "{stats}");
    assert!(stats["invalid"].as_u64().unwrap() * 10 < lake_rows, "{stats}");
    for p in stats["problems"].as_array().unwrap() {
        let p = p.as_str().unwrap();
        assert!(p.starts_with("http_activity: ") || p.starts_with("compliance_finding: compliance.standards"), "{p}");
    }
    let letters = std::fs::read_to_string(lake.join(stats["dead_letter"].as_str().unwrap())).unwrap();
    assert_eq!(letters.lines().count() as u64, stats["invalid"].as_u64().unwrap());
    for l in letters.lines() {
        let l: Value = serde_json::from_str(l).unwrap();
        assert!(l["reason"].as_str().unwrap().starts_with("not valid OCSF 1.1.0: "), "{l}");
        assert!(l["source"].as_str().unwrap().ends_with(".parquet") && l["data"].is_string(), "{l}");
    }

    // Layout: ext/<prefix>-<table>/region=/accountId=/eventDay=/<prefix>-<day>-<part>.parquet.
    let mut classes_per_source: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    let jsonl = work.path().join("export.ocsf.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&jsonl).unwrap());
    let mut rows = 0;
    for f in &files {
        let rel = f.strip_prefix(&dest).unwrap().to_string_lossy().to_string();
        let parts: Vec<&str> = rel.split('/').collect();
        assert_eq!(parts.len(), 6, "{rel}");
        assert!(parts[0] == "ext" && parts[1].starts_with("ocelot-"), "{rel}");
        assert!(parts[2].starts_with("region=") && parts[3].starts_with("accountId=") && parts[4].starts_with("eventDay="), "{rel}");
        let day = parts[4].trim_start_matches("eventDay=");
        let table = parts[5].split(&format!("-{day}-")).next().unwrap();
        assert!(parts[5].contains(&format!("-{day}-")) && lake.join(table).is_dir(), "{rel}");
        assert!(parts[1].len() <= 20, "{rel}: Security Lake takes source names of at most 20 characters");
        assert!(std::fs::metadata(f).unwrap().len() < 256 << 20);
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).unwrap()).unwrap();
        let meta = reader.metadata().clone();
        for rg in meta.row_groups() {
            for c in rg.columns() {
                assert!(matches!(c.compression(), parquet::basic::Compression::ZSTD(_)), "{rel}: {:?}", c.compression());
            }
        }
        let mut last = i64::MIN;
        for b in reader.build().unwrap() {
            let b = b.unwrap();
            rows += b.num_rows();
            for row in ocelot_schemas::batch_to_json(&b).unwrap() {
                assert_eq!(row["metadata"]["version"], "1.1.0", "{rel}");
                let t = row["time"].as_i64().unwrap();
                assert!(t >= last, "{rel}: records sorted by time");
                last = t;
                classes_per_source.entry(parts[1].to_string()).or_default().insert(row["class_uid"].as_i64().unwrap());
                assert_eq!(parts[1], format!("ocelot-{}", row["class_uid"]), "sources are named by class");
                // Ours: the 1.1.0 validator.
                let class = ocelot_schemas::schema_1_1().class(&row["class_uid"].to_string()).unwrap();
                let problems = ocelot_schemas::validate_event(ocelot_schemas::schema_1_1(), class, &row);
                assert!(problems.is_empty(), "{rel}: {problems:?}");
            }
            ocelot_normalize::ocsf_json::write_batch(&b, &mut out).unwrap();
        }
    }
    drop(out);
    assert_eq!(rows as u64, stats["rows"].as_u64().unwrap());
    // One OCSF class per custom source.
    assert!(classes_per_source.values().all(|c| c.len() == 1), "{classes_per_source:?}");
    assert!(classes_per_source.len() >= 4, "{classes_per_source:?}");
    // What 1.1.0 lacks was kept in unmapped, not dropped.
    assert!(!stats["moved"].as_object().unwrap().is_empty(), "{stats}");

    // Not ours: the OCSF 1.1.0 JSON Schema.
    let py = python_with("ocsf_json_schema, jsonschema", &["ocsf-json-schema", "jsonschema"]);
    let o = Command::new(py).arg(repo().join("tests/py/ocsf_jsonschema.py")).arg("1.1.0").arg(&jsonl).output().unwrap();
    let report: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    assert!(o.status.success() && report["invalid"] == 0, "invalid by the OCSF 1.1.0 JSON Schema: {report:#}");

    // Again: the same objects, replaced, not duplicated.
    let again = export();
    assert_eq!(again["rows"], stats["rows"]);
    let files_again = parquet_under(&dest);
    assert_eq!(files_again, files);
}

#[test]
fn a_day_range_exports_only_those_days() {
    let work = tempfile::tempdir().unwrap();
    let (lake, dest) = (work.path().join("lake"), work.path().join("bucket"));
    let input = work.path().join("org.jsonl");
    let o = ocelot().args(["gen", "cloudtrail", "--events", "3000", "--accounts", "3", "--regions", "2", "--days", "3", "--start", "2026-11-01T00:00:00Z", "-o"]).arg(&input).output().unwrap();
    assert!(o.status.success());
    assert!(ocelot().args(["normalize", "--lake"]).arg(&lake).arg(&input).output().unwrap().status.success());
    let o = ocelot().args(["lake", "export", "--since", "20261102", "--until", "20261102", "--source-prefix", "acme"]).arg(&lake).arg(&dest).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let days: BTreeSet<String> = parquet_under(&dest).iter().map(|f| f.to_string_lossy().split("eventDay=").nth(1).unwrap()[..8].to_string()).collect();
    assert_eq!(days, BTreeSet::from(["20261102".to_string()]));
    assert!(parquet_under(&dest).iter().all(|f| f.to_string_lossy().contains("/ext/acme-")));
    let bad = ocelot().args(["lake", "export", "--since", "2026-11-02"]).arg(&lake).arg(&dest).output().unwrap();
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("YYYYMMDD"));
    let bad = ocelot().args(["lake", "export", "--source-prefix", "a-much-too-long-prefix"]).arg(&lake).arg(&dest).output().unwrap();
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("20 characters"));
}
