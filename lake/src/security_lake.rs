//! Amazon Security Lake custom sources: the lake's partitions exported as Security Lake expects
//! from a custom source (its user guide, "Collecting data from custom sources"):
//!
//! - one custom source per OCSF class, each under its own prefix:
//!   `ext/<source>/region=<region>/accountId=<account>/eventDay=<YYYYMMDD>/`, named
//!   `<prefix>-<class_uid>` (`ocelot-6003`): Security Lake takes names of at most 20
//!   characters, which `ocelot-compliance_finding` is not;
//! - OCSF **1.1.0** records (Security Lake's version): what 1.1.0 does not define (attributes,
//!   enum values, profiles added since) moves to `unmapped` under `ocsf_1_8_0.<path>`, and each
//!   record is checked by the 1.1.0 validator (a record that still fails is not exported: it
//!   goes to the lake's dead-letter store with the problems and the lake file it came from);
//! - Parquet, zstd, records sorted by time, data pages of at most 1 MiB, objects (and so row
//!   groups) of at most 256 MB;
//! - an object per table, partition and day (`<table>-<day>-<part>.parquet`; the engine's
//!   `findings` and the normalized `detection_finding` share class 2004 and so a source):
//!   exporting a day again replaces its objects, so a daily run (Security Lake asks for
//!   deliveries between 5 minutes and 1 day apart) is idempotent and picks up late events.

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use ocelot_schemas::{schema, schema_1_1, validate_event, AttrType, Attribute, Requirement, Scalar, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde_json::{Map, Value};

use super::dead_letter::DeadLetterStore;
use super::snapshot::Snapshot;
use super::storage::Storage;
use ocelot_normalize::decode::{DeadLetter, Origin};

/// Where what 1.1.0 lacks goes, inside `unmapped`.
pub const UNMAPPED_KEY: &str = "ocsf_1_8_0";
/// Objects are cut at this size (Security Lake: at most 256 MB).
const MAX_OBJECT_BYTES: usize = 200 << 20;

#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Custom source names are `<prefix>-<class_uid>` (`ocelot-6003`); at most
    /// [`MAX_SOURCE_PREFIX`] characters.
    pub source_prefix: String,
    /// Days to export, `YYYYMMDD`, inclusive (None: every day).
    pub since: Option<String>,
    pub until: Option<String>,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct ExportStats {
    pub partitions: usize,
    pub objects: usize,
    pub rows: u64,
    pub bytes: u64,
    /// Records 1.1.0 still refuses after the conversion (not exported: dead-lettered).
    pub invalid: u64,
    /// The dead-letter file (in the lake) holding them.
    pub dead_letter: Option<String>,
    /// The first problems of those, `path: problem`.
    pub problems: Vec<String>,
    /// Attributes moved to `unmapped` (by 1.8.0 path), with counts.
    pub moved: BTreeMap<String, u64>,
    /// The custom sources written to (`ocelot-6003`) with the event class each is registered
    /// for (`API_ACTIVITY`).
    pub sources: BTreeMap<String, String>,
    /// Tables whose class 1.1.0 does not have.
    pub skipped_tables: Vec<String>,
}

/// The custom source's name for a table.
pub fn source_name(prefix: &str, class_uid: i32) -> String {
    format!("{prefix}-{class_uid}")
}

/// The longest source prefix: Security Lake takes source names of at most 20 characters
/// (they go into the name of the IAM role it makes for the source).
pub const MAX_SOURCE_PREFIX: usize = 15;

/// Exports the lake's partitions (per table, region, account and day) to `dest`, the
/// Security Lake bucket (or any directory). `progress` is told (partitions done, total).
pub fn export(lake: &Storage, dest: &Storage, opts: &ExportOptions, progress: &dyn Fn(u64, u64)) -> std::io::Result<ExportStats> {
    let snapshot = Snapshot::take(lake)?;
    // table -> partition dir (relative) -> files
    let mut parts: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for f in snapshot.parquet_files() {
        let Some((dir, _)) = f.rsplit_once('/') else { continue };
        let Some((table, partition)) = dir.split_once('/') else { continue };
        let day = partition.rsplit('/').next().and_then(|d| d.strip_prefix("eventDay=")).unwrap_or_default();
        if opts.since.as_deref().is_some_and(|s| day < s) || opts.until.as_deref().is_some_and(|u| day > u) {
            continue;
        }
        parts.entry((table.to_string(), partition.to_string())).or_default().push(f.clone());
    }
    let mut stats = ExportStats::default();
    let mut dead = DeadLetterStore::new(lake.clone());
    let total = parts.len() as u64;
    for (i, ((table, partition), files)) in parts.into_iter().enumerate() {
        progress(i as u64 + 1, total);
        // The findings table holds Detection Findings.
        let class_name = crate::findings::class_of(&table);
        let (Some(_), Some(c11)) = (schema().class(class_name), schema_1_1().class(class_name)) else {
            if !stats.skipped_tables.contains(&table) {
                stats.skipped_tables.push(table.clone());
            }
            continue;
        };
        let mut out = Vec::new();
        for f in &files {
            let bytes = lake.read(f)?.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, format!("{f}: listed in the manifest but missing")))?;
            let source: std::sync::Arc<str> = f.as_str().into();
            let mut offset = 0u64;
            for b in ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()? {
                for mut row in ocelot_schemas::batch_to_json(&b.map_err(std::io::Error::other)?).map_err(std::io::Error::other)? {
                    for k in downgrade(&mut row, &c11.attributes, c11.uid, &c11.profiles) {
                        *stats.moved.entry(k).or_default() += 1;
                    }
                    let problems = validate_event(schema_1_1(), c11, &row);
                    if problems.is_empty() {
                        out.push(row);
                    } else {
                        stats.invalid += 1;
                        let reason = problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                        if stats.problems.len() < 20 {
                            stats.problems.push(format!("{table}: {reason}"));
                        }
                        let origin = Origin { source: source.clone(), line: None, offset, index: None };
                        dead.push(&DeadLetter { origin, reason: format!("not valid OCSF 1.1.0: {reason}"), bytes: serde_json::to_vec(&row)? });
                    }
                    offset += 1;
                }
            }
        }
        if out.is_empty() {
            continue;
        }
        out.sort_by_key(|r| r.get("time").and_then(Value::as_i64).unwrap_or(0));
        let batch = to_batch(schema_1_1(), c11, out)?;
        let source = source_name(&opts.source_prefix, c11.uid);
        stats.sources.entry(source.clone()).or_insert_with(|| c11.name.to_uppercase());
        let dir = format!("ext/{source}/{partition}");
        let day = partition.rsplit('/').next().and_then(|d| d.strip_prefix("eventDay=")).unwrap_or("unknown");
        let written = write_objects(dest, &dir, &format!("{table}-{day}"), &batch)?;
        stats.partitions += 1;
        stats.objects += written.len();
        stats.rows += batch.num_rows() as u64;
        stats.bytes += written.iter().sum::<u64>();
    }
    stats.dead_letter = dead.flush()?;
    Ok(stats)
}

/// Rewrites one 1.8.0 record as 1.1.0; returns the 1.8.0 paths moved to `unmapped`.
pub fn downgrade(row: &mut Value, attrs11: &BTreeMap<String, Attribute>, class_uid: i32, profiles11: &[String]) -> Vec<String> {
    let Some(obj) = row.as_object_mut() else { return Vec::new() };
    let mut moved = Map::new();
    fit(obj, attrs11, schema_1_1(), "", &mut moved);
    // Observables must name an attribute path of the 1.1.0 class.
    if let Some(Value::Array(list)) = obj.get_mut("observables") {
        let (keep, gone): (Vec<Value>, Vec<Value>) = std::mem::take(list).into_iter().partition(|o| o.get("name").and_then(Value::as_str).is_none_or(|n| schema_1_1().has_path(attrs11, n)));
        *list = keep;
        if !gone.is_empty() {
            moved.insert("observables".into(), Value::Array(gone));
        }
    }
    // An AWS service calling (CloudTrail's `sourceIPAddress: signin.amazonaws.com`) is a
    // domain in 1.8.0's endpoint; 1.1.0's endpoint needs one of ip, name, svc_name, ...
    for side in ["src_endpoint", "dst_endpoint"] {
        if let Some(Value::Object(e)) = obj.get_mut(side)
            && e.keys().all(|k| k == "domain")
            && let Some(d) = e.get("domain").cloned()
        {
            e.insert("svc_name".into(), d);
        }
    }
    // `unmapped` (a JSON string in the lake) gets what 1.1.0 lacks, under one key.
    let mut unmapped = match obj.remove("unmapped") {
        Some(Value::String(s)) => serde_json::from_str::<Value>(&s).ok().and_then(|v| v.as_object().cloned()).unwrap_or_default(),
        Some(Value::Object(o)) => o,
        _ => Map::new(),
    };
    let paths: Vec<String> = moved.keys().cloned().collect();
    if !moved.is_empty() {
        unmapped.insert(UNMAPPED_KEY.into(), Value::Object(moved));
    }
    if !unmapped.is_empty() {
        obj.insert("unmapped".into(), Value::Object(unmapped));
    }
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("version".into(), Value::from("1.1.0"));
        if let Some(Value::Array(ps)) = meta.get_mut("profiles") {
            ps.retain(|p| p.as_str().is_some_and(|p| profiles11.iter().any(|q| q == p)));
        }
    }
    if let Some(a) = obj.get("activity_id").and_then(Value::as_i64) {
        obj.insert("type_uid".into(), Value::from(class_uid as i64 * 100 + a));
    }
    // An enum 1.1.0 requires and the record does not have is Unknown (0), as OCSF says it is
    // when the source does not tell (a finding's `action_id`: required by 1.1.0's
    // security_control profile, optional since).
    let listed: Vec<String> = obj.get("metadata").and_then(|m| m.get("profiles")).and_then(Value::as_array).into_iter().flatten().filter_map(|p| p.as_str().map(str::to_string)).collect();
    for (k, a) in attrs11 {
        if a.requirement == Requirement::Required
            && a.profile.as_ref().is_none_or(|p| listed.contains(p))
            && obj.get(k).is_none_or(Value::is_null)
            && let Some(unknown) = a.enum_values.as_ref().and_then(|e| e.get(&0))
        {
            obj.insert(k.clone(), Value::from(0));
            if let Some(sib) = &a.sibling {
                obj.insert(sib.clone(), Value::from(unknown.clone()));
            }
        }
    }
    paths
}

/// Keeps the attributes 1.1.0 defines (recursively), moving the rest to `moved` by path.
fn fit(obj: &mut Map<String, Value>, attrs: &BTreeMap<String, Attribute>, schema: &Schema, prefix: &str, moved: &mut Map<String, Value>) {
    let keys: Vec<String> = obj.keys().cloned().collect();
    for k in keys {
        let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        if k == "unmapped" && prefix.is_empty() {
            continue;
        }
        let Some(a) = attrs.get(&k) else {
            if let Some(v) = obj.remove(&k) {
                moved.insert(path, v);
            }
            continue;
        };
        match (&a.ty, obj.get_mut(&k)) {
            (AttrType::Object(name), Some(v)) => {
                let Some(def) = schema.object(name) else { continue };
                match v {
                    Value::Object(o) => fit(o, &def.attributes, schema, &path, moved),
                    Value::Array(items) => {
                        for it in items.iter_mut() {
                            if let Value::Object(o) = it {
                                fit(o, &def.attributes, schema, &path, moved);
                            }
                        }
                    }
                    _ => {}
                }
            }
            (AttrType::Scalar(_), Some(v)) => {
                // An enum value 1.1.0 does not know becomes Other (99), the value kept.
                if let (Some(values), Some(n)) = (&a.enum_values, v.as_i64())
                    && !values.contains_key(&n)
                {
                    moved.insert(path.clone(), v.clone());
                    if values.contains_key(&99) {
                        *v = Value::from(99);
                        if let Some(sib) = &a.sibling {
                            obj.insert(sib.clone(), Value::from(values[&99].clone()));
                        }
                    } else {
                        obj.remove(&k);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Records as an Arrow batch of the class's 1.1.0 projection (the attributes they carry).
fn to_batch(schema: &Schema, class: &ocelot_schemas::ClassDef, mut rows: Vec<Value>) -> std::io::Result<RecordBatch> {
    // JSON-typed attributes are JSON text in Arrow.
    for r in &mut rows {
        stringify_json(r, &class.attributes, schema);
    }
    let mut paths: std::collections::BTreeSet<String> = Default::default();
    for r in &rows {
        leaves(r, "", &mut paths);
    }
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let arrow_schema = ocelot_schemas::project(schema, class, &refs).map_err(std::io::Error::other)?;
    let mut decoder = arrow::json::ReaderBuilder::new(arrow_schema).build_decoder().map_err(std::io::Error::other)?;
    decoder.serialize(&rows).map_err(std::io::Error::other)?;
    decoder.flush().map_err(std::io::Error::other)?.ok_or_else(|| std::io::Error::other("no rows"))
}

fn leaves(v: &Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
    match v {
        Value::Object(o) if prefix != "unmapped" => {
            for (k, x) in o {
                leaves(x, &if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, out);
            }
        }
        Value::Array(items) => {
            for it in items {
                leaves(it, prefix, out);
            }
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

fn stringify_json(v: &mut Value, attrs: &BTreeMap<String, Attribute>, schema: &Schema) {
    let Some(obj) = v.as_object_mut() else { return };
    for (k, x) in obj.iter_mut() {
        let Some(a) = attrs.get(k) else { continue };
        match &a.ty {
            AttrType::Scalar(Scalar::Json) if !x.is_string() => *x = Value::String(x.to_string()),
            AttrType::Object(name) => {
                if let Some(def) = schema.object(name) {
                    match x {
                        Value::Array(items) => items.iter_mut().for_each(|it| stringify_json(it, &def.attributes, schema)),
                        x => stringify_json(x, &def.attributes, schema),
                    }
                }
            }
            _ => {}
        }
    }
}

/// Writes the batch as `<stem>-<part>.parquet` objects of at most `MAX_OBJECT_BYTES`; deletes
/// parts of an earlier export of the same day beyond those written. Returns their sizes.
fn write_objects(dest: &Storage, dir: &str, stem: &str, batch: &RecordBatch) -> std::io::Result<Vec<u64>> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_data_page_size_limit(1 << 20)
        .set_max_row_group_row_count(Some(128 * 1024))
        .set_created_by(format!("ocelot {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut sizes = Vec::new();
    let mut start = 0;
    let chunk = 64 * 1024;
    while start < batch.num_rows() {
        let name = format!("{dir}/{stem}-{:03}.parquet", sizes.len());
        let mut w = ArrowWriter::try_new(dest.create(&name)?, batch.schema(), Some(props.clone()))?;
        while start < batch.num_rows() && w.bytes_written() + w.in_progress_size() < MAX_OBJECT_BYTES {
            let n = chunk.min(batch.num_rows() - start);
            w.write(&batch.slice(start, n))?;
            start += n;
        }
        let written = w.into_inner()?.finish()?;
        sizes.push(written.bytes);
    }
    // Parts left from an earlier, larger export of the same day.
    for old in dest.list(dir)? {
        let name = old.rel.rsplit('/').next().unwrap_or_default();
        if let Some(part) = name.strip_prefix(&format!("{stem}-")).and_then(|p| p.strip_suffix(".parquet")).and_then(|p| p.parse::<usize>().ok())
            && part >= sizes.len()
        {
            dest.delete(&old.rel)?;
        }
    }
    Ok(sizes)
}
