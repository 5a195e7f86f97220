//! OCSF batches to Parquet files in the Security Lake layout.
//!
//! Rows are split by partition (`cloud.region`, `cloud.account.uid`, day of `time`), buffered
//! per class and partition, and written as one zstd Parquet file when a partition reaches the
//! roll size or on [`LakeWriter::flush`]. Nothing is visible before its file is renamed into
//! place; callers treat data as durable only after `flush` (or a roll) returns.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch, StructArray, UInt32Array};
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::Int64Type;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::atomic::{unique_name, write_atomic};
use crate::normalize::time::event_day;
use crate::normalize::OcsfBatch;

#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Rows of one partition that make a file.
    pub roll_rows: usize,
    /// Arrow bytes buffered over all partitions before everything is written: bounds memory
    /// when rows spread over many partitions that each stay below `roll_rows`.
    pub max_pending_bytes: usize,
    pub zstd_level: i32,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions { roll_rows: 256 * 1024, max_pending_bytes: 128 << 20, zstd_level: 3 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Partition {
    class: &'static str,
    region: String,
    account: String,
    day: String,
}

impl Partition {
    fn dir(&self, root: &Path) -> PathBuf {
        root.join(self.class).join(format!("region={}", self.region)).join(format!("accountId={}", self.account)).join(format!("eventDay={}", self.day))
    }
}

#[derive(Debug, Default, Clone)]
pub struct LakeStats {
    pub files: usize,
    pub rows: usize,
    pub bytes: u64,
    pub rows_per_class: std::collections::BTreeMap<String, usize>,
}

pub struct LakeWriter {
    root: PathBuf,
    opts: WriterOptions,
    pending: HashMap<Partition, (Vec<RecordBatch>, usize)>,
    pending_bytes: usize,
    pub stats: LakeStats,
}

impl LakeWriter {
    pub fn new(root: impl Into<PathBuf>, opts: WriterOptions) -> LakeWriter {
        LakeWriter { root: root.into(), opts, pending: HashMap::new(), pending_bytes: 0, stats: LakeStats::default() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Buffers a batch; writes any partition that reaches the roll size.
    pub fn append(&mut self, b: &OcsfBatch) -> std::io::Result<()> {
        for part in self.buffer(b) {
            if self.pending.get(&part).is_some_and(|(_, n)| *n >= self.opts.roll_rows) {
                self.write_partition(&part)?;
            }
        }
        if self.pending_bytes > self.opts.max_pending_bytes {
            self.flush()?;
        }
        Ok(())
    }

    /// Buffers a batch and writes nothing (the streaming runtime makes a whole batch durable
    /// with one `flush`); returns the partitions it touched.
    pub fn buffer(&mut self, b: &OcsfBatch) -> Vec<Partition> {
        self.buffer_as(b.class.name.as_str(), b)
    }

    /// As `buffer`, into the table `table` (the `findings` table holds Detection Findings).
    pub fn buffer_as(&mut self, table: &'static str, b: &OcsfBatch) -> Vec<Partition> {
        let mut touched = Vec::new();
        for (part, rows) in split(b, table) {
            self.pending_bytes += rows.get_array_memory_size();
            let entry = self.pending.entry(part.clone()).or_default();
            entry.1 += rows.num_rows();
            entry.0.push(rows);
            touched.push(part);
        }
        touched
    }

    /// Writes every buffered partition; when it returns, all appended rows are durable. On an
    /// error, what was not written stays buffered: calling `flush` again retries it.
    pub fn flush(&mut self) -> std::io::Result<Vec<PathBuf>> {
        let parts: Vec<Partition> = self.pending.keys().cloned().collect();
        let mut written = Vec::new();
        for p in parts {
            if let Some(path) = self.write_partition(&p)? {
                written.push(path);
            }
        }
        Ok(written)
    }

    /// Rows buffered and not yet durable.
    pub fn pending_rows(&self) -> usize {
        self.pending.values().map(|(_, n)| n).sum()
    }

    fn write_partition(&mut self, p: &Partition) -> std::io::Result<Option<PathBuf>> {
        let Some((batches, rows)) = self.pending.get(p) else { return Ok(None) };
        let rows = *rows;
        if rows == 0 {
            self.pending.remove(p);
            return Ok(None);
        }
        let schema = batches[0].schema();
        let batch = concat_batches(&schema, batches.iter()).map_err(std::io::Error::other)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(self.opts.zstd_level).unwrap_or_default()))
            .set_created_by(format!("ocelot {}", env!("CARGO_PKG_VERSION")))
            .build();
        let path = write_atomic(&p.dir(&self.root), &unique_name("parquet"), |f| {
            let mut w = ArrowWriter::try_new(f.try_clone()?, schema.clone(), Some(props)).map_err(std::io::Error::other)?;
            w.write(&batch).map_err(std::io::Error::other)?;
            w.close().map_err(std::io::Error::other)?;
            Ok(())
        })?;
        // Only now forget the rows: a failed write keeps them for the retry.
        if let Some((batches, _)) = self.pending.remove(p) {
            self.pending_bytes = self.pending_bytes.saturating_sub(batches.iter().map(|b| b.get_array_memory_size()).sum());
        }
        self.stats.files += 1;
        self.stats.rows += rows;
        self.stats.bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        *self.stats.rows_per_class.entry(p.class.to_string()).or_default() += rows;
        Ok(Some(path))
    }
}

/// Splits a batch into its partitions (most batches hold one, and are not copied).
fn split(b: &OcsfBatch, table: &'static str) -> Vec<(Partition, RecordBatch)> {
    let batch = &b.batch;
    let cloud = batch.column_by_name("cloud").map(|c| c.as_struct());
    let region = cloud.and_then(|c| c.column_by_name("region")).map(|a| a.as_string::<i32>().clone());
    let account = cloud.and_then(|c: &StructArray| c.column_by_name("account")).and_then(|a| a.as_struct().column_by_name("uid")).map(|a| a.as_string::<i32>().clone());
    let time = batch.column_by_name("time").map(|a| a.as_primitive::<Int64Type>().clone());
    let key = |i: usize| Partition {
        class: table,
        region: clean(region.as_ref().filter(|r| r.is_valid(i)).map(|r| r.value(i))),
        account: clean(account.as_ref().filter(|a| a.is_valid(i)).map(|a| a.value(i))),
        day: time.as_ref().filter(|t| t.is_valid(i)).map_or_else(|| "unknown".into(), |t| event_day(t.value(i))),
    };
    let mut groups: Vec<(Partition, Vec<u32>)> = Vec::new();
    for i in 0..batch.num_rows() {
        let k = key(i);
        match groups.iter_mut().find(|(p, _)| *p == k) {
            Some((_, rows)) => rows.push(i as u32),
            None => groups.push((k, vec![i as u32])),
        }
    }
    if groups.len() == 1 {
        return vec![(groups.pop().unwrap().0, batch.clone())];
    }
    groups
        .into_iter()
        .map(|(p, rows)| {
            let idx = UInt32Array::from(rows);
            (p, take_record_batch(batch, &idx).expect("indices are in range"))
        })
        .collect()
}

/// A partition value safe as a path segment: `[A-Za-z0-9._-]`, anything else `_`; empty is
/// `unknown`.
fn clean(v: Option<&str>) -> String {
    match v {
        Some(s) if !s.is_empty() && s != "." && s != ".." => s.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect(),
        _ => "unknown".into(),
    }
}
