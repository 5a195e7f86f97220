//! OCSF batches to Parquet files in the Security Lake layout.
//!
//! Rows are split by partition (`cloud.region`, `cloud.account.uid`, day of `time`) and
//! buffered per class and partition. A partition's buffered rows go out as a row group of that
//! partition's open file when it reaches `roll_rows`, or when the buffer as a whole passes
//! `max_pending_bytes`; a file is closed when it reaches `target_file_bytes`, and on
//! [`LakeWriter::flush`], which also records the closed files in the manifest: only then are
//! they part of the lake, and only then may a caller count the rows as durable.
//!
//! So the streaming runtime, which flushes every batch, writes one small file per partition
//! and batch (compaction merges them later, [`super::compact`]), while a batch job such as
//! `ocelot normalize --lake` that flushes once at the end writes large files directly.
//! Partitions are written in parallel, one thread per core.

use std::collections::HashMap;

use arrow::array::{Array, AsArray, RecordBatch, StructArray, UInt32Array};
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::Int64Type;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::atomic::unique_name;
use super::manifest::{Manifest, Op};
use super::storage::{FileWriter, Storage, Written};
use ocelot_normalize::time::event_day;
use ocelot_normalize::OcsfBatch;

#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Rows of one partition buffered before they go out as a row group.
    pub roll_rows: usize,
    /// Arrow bytes buffered over all partitions before all of them go out: bounds memory when
    /// rows spread over many partitions that each stay below `roll_rows`.
    pub max_pending_bytes: usize,
    pub zstd_level: i32,
    /// A file is closed once it holds this many bytes.
    pub target_file_bytes: u64,
    /// Threads writing partitions at once (default: the cores available).
    pub threads: usize,
    /// Files will be small (the streaming runtime flushes every batch): statistics only where
    /// they pay, and Snappy (see [`writer_properties`]). Compaction rewrites them as large
    /// zstd files.
    pub small_files: bool,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            roll_rows: 256 * 1024,
            max_pending_bytes: 256 << 20,
            zstd_level: 3,
            target_file_bytes: DEFAULT_TARGET_FILE_BYTES,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            small_files: false,
        }
    }
}

/// Files of this size are what compaction makes and a batch job writes (Athena's and Security
/// Lake's advice: 128 MB to 1 GB).
pub const DEFAULT_TARGET_FILE_BYTES: u64 = 192 << 20;

/// From this many rows a file gets the large-file settings (statistics on every column).
const LARGE_FILE_ROWS: usize = 64 * 1024;

/// Columns whose min/max statistics are worth their footer bytes: the ones queries filter on.
const STATS_COLUMNS: &[&str] = &["time", "class_uid", "severity_id", "activity_id", "status_id"];

/// Parquet settings. A small file (a streaming flush: hundreds of rows) keeps statistics only
/// on the columns queries filter by and no page index, since per-column statistics and page
/// indexes of ~600 leaf columns were a third of its bytes; a large file (compaction, batch
/// jobs) has them all. `snappy`: the streaming runtime's files, which compaction rewrites with
/// zstd within minutes: Snappy costs a third more bytes for that while, and spares the write
/// the zstd contexts the parquet crate makes for every column chunk (a sixth of its CPU).
pub fn writer_properties(zstd_level: i32, large: bool, snappy: bool) -> WriterProperties {
    let compression = if snappy { Compression::SNAPPY } else { Compression::ZSTD(ZstdLevel::try_new(zstd_level).unwrap_or_default()) };
    let mut b = WriterProperties::builder().set_compression(compression).set_created_by(format!("ocelot {}", env!("CARGO_PKG_VERSION")));
    if large {
        b = b.set_statistics_enabled(EnabledStatistics::Chunk).set_max_row_group_row_count(Some(1 << 20));
    } else {
        // One page per column: an offset index (page locations) has nothing to skip.
        b = b.set_statistics_enabled(EnabledStatistics::None).set_offset_index_disabled(true);
        for c in STATS_COLUMNS {
            b = b.set_column_statistics_enabled(ColumnPath::from(*c), EnabledStatistics::Chunk);
        }
    }
    b.build()
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Partition {
    pub class: &'static str,
    pub region: String,
    pub account: String,
    pub day: String,
}

impl Partition {
    /// Its directory, relative to the lake root.
    pub fn dir(&self) -> String {
        format!("{}/region={}/accountId={}/eventDay={}", self.class, self.region, self.account, self.day)
    }
}

#[derive(Debug, Default, Clone)]
pub struct LakeStats {
    pub files: usize,
    pub rows: usize,
    pub bytes: u64,
    pub rows_per_class: std::collections::BTreeMap<String, usize>,
}

#[derive(Default)]
struct Buffered {
    batches: Vec<RecordBatch>,
    rows: usize,
    bytes: usize,
}

/// A partition's file being written: row groups so far, not yet visible.
struct OpenFile {
    writer: ArrowWriter<FileWriter>,
    rows: u64,
    /// Its columns: those of its first rows (`sparse`).
    schema: arrow::datatypes::SchemaRef,
}

pub struct LakeWriter {
    storage: Storage,
    opts: WriterOptions,
    pending: HashMap<Partition, Buffered>,
    pending_bytes: usize,
    open: HashMap<Partition, OpenFile>,
    /// Closed (durable) files not yet in the manifest, with their rows and class.
    closed: Vec<(Written, u64, &'static str)>,
    manifest: Option<Manifest>,
    pub stats: LakeStats,
}

impl LakeWriter {
    pub fn new(storage: impl Into<Storage>, opts: WriterOptions) -> LakeWriter {
        LakeWriter { storage: storage.into(), opts, pending: HashMap::new(), pending_bytes: 0, open: HashMap::new(), closed: Vec::new(), manifest: None, stats: LakeStats::default() }
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Buffers a batch; partitions that reach `roll_rows`, or all when the buffer is full, go
    /// out as row groups (not yet durable: see [`LakeWriter::flush`]).
    pub fn append(&mut self, b: &OcsfBatch) -> std::io::Result<()> {
        let touched = self.buffer(b);
        let full: Vec<Partition> = touched.into_iter().filter(|p| self.pending.get(p).is_some_and(|b| b.rows >= self.opts.roll_rows)).collect();
        if self.pending_bytes > self.opts.max_pending_bytes {
            // The largest partitions go out until half the budget is free: the many small ones
            // of an organization trail stay buffered, to leave as one row group at the end
            // (each row group repeats the footer's metadata of every column).
            let mut by_size: Vec<(usize, Partition)> = self.pending.iter().map(|(p, b)| (b.bytes, p.clone())).collect();
            by_size.sort_by_key(|b| std::cmp::Reverse(b.0));
            let (mut left, mut out) = (self.pending_bytes, Vec::new());
            for (bytes, p) in by_size {
                if left <= self.opts.max_pending_bytes / 2 {
                    break;
                }
                left -= bytes;
                out.push(p);
            }
            self.spill(out, false)?;
        } else if !full.is_empty() {
            self.spill(full, false)?;
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
            let bytes = rows.get_array_memory_size();
            self.pending_bytes += bytes;
            let entry = self.pending.entry(part.clone()).or_default();
            entry.rows += rows.num_rows();
            entry.bytes += bytes;
            entry.batches.push(rows);
            touched.push(part);
        }
        touched
    }

    /// Writes every buffered row, closes every open file and records the files in the
    /// manifest; when it returns, all appended rows are durable and visible. On an error, rows
    /// not written stay buffered and files not recorded stay listed: calling `flush` again
    /// retries.
    pub fn flush(&mut self) -> std::io::Result<Vec<String>> {
        let parts: Vec<Partition> = self.pending.keys().chain(self.open.keys()).cloned().collect::<std::collections::HashSet<_>>().into_iter().collect();
        self.spill(parts, true)?;
        if self.closed.is_empty() {
            return Ok(Vec::new());
        }
        let files: Vec<(Written, u64)> = self.closed.iter().map(|(w, r, _)| (w.clone(), *r)).collect();
        self.manifest()?.commit_files(Op::Append, &files)?;
        let mut paths = Vec::with_capacity(self.closed.len());
        for (w, rows, class) in self.closed.drain(..) {
            self.stats.files += 1;
            self.stats.rows += rows as usize;
            self.stats.bytes += w.bytes;
            *self.stats.rows_per_class.entry(class.to_string()).or_default() += rows as usize;
            paths.push(w.rel);
        }
        Ok(paths)
    }

    /// Rows buffered and not yet durable.
    pub fn pending_rows(&self) -> usize {
        self.pending.values().map(|b| b.rows).sum::<usize>() + self.open.values().map(|o| o.rows as usize).sum::<usize>()
    }

    /// Writes the buffered rows of `parts` into their open files, in parallel, and closes the
    /// files that are full (or all of them, with `close`).
    /// The lake's manifest, opened before this writer's first file: a lake without one is
    /// adopted then, so the adoption can only take in files of writers that predate the
    /// manifest, never another live writer's files before it records them.
    fn manifest(&mut self) -> std::io::Result<&mut Manifest> {
        if self.manifest.is_none() {
            let mut m = Manifest::open(&self.storage)?;
            // Leftovers of a crashed writer (ours before a restart, or another host's).
            match m.clean(ORPHAN_GRACE, ORPHAN_GRACE) {
                Ok(0) => {}
                Ok(n) => tracing::info!(files = n, "lake: removed files left by an interrupted write"),
                Err(e) => tracing::warn!(error = %e, "lake: leftovers of interrupted writes not removed"),
            }
            self.manifest = Some(m);
        }
        Ok(self.manifest.as_mut().expect("opened above"))
    }

    fn spill(&mut self, parts: Vec<Partition>, close: bool) -> std::io::Result<()> {
        self.manifest()?;
        let mut work: Vec<(Partition, Buffered, Option<OpenFile>)> = parts
            .into_iter()
            .map(|p| {
                let b = self.pending.remove(&p).unwrap_or_default();
                self.pending_bytes = self.pending_bytes.saturating_sub(b.bytes);
                let o = self.open.remove(&p);
                (p, b, o)
            })
            .collect();
        if work.is_empty() {
            return Ok(());
        }
        let threads = self.opts.threads.clamp(1, work.len());
        let per = work.len().div_ceil(threads);
        let (storage, opts) = (&self.storage, &self.opts);
        let results: Vec<(Partition, Result<Outcome, (Buffered, std::io::Error)>)> = std::thread::scope(|s| {
            let handles: Vec<_> = std::iter::from_fn(|| (!work.is_empty()).then(|| work.drain(..per.min(work.len())).collect::<Vec<_>>()))
                .map(|chunk| {
                    s.spawn(move || {
                        chunk
                            .into_iter()
                            .map(|(p, b, o)| {
                                let r = write_part(storage, opts, &p, b, o, close);
                                (p, r)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().expect("a lake writer thread panicked")).collect()
        });
        let mut first_err = None;
        for (p, r) in results {
            match r {
                Ok(Outcome { open, closed }) => {
                    if let Some(o) = open {
                        self.open.insert(p.clone(), o);
                    }
                    for (w, rows) in closed {
                        self.closed.push((w, rows, p.class));
                    }
                }
                Err((b, e)) => {
                    // Keep the rows for the retry.
                    self.pending_bytes += b.bytes;
                    self.pending.insert(p, b);
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// A crashed writer's files are removed by the next one after this long (a live writer records
/// its files within moments of writing them).
pub const ORPHAN_GRACE: std::time::Duration = std::time::Duration::from_secs(600);

struct Outcome {
    open: Option<OpenFile>,
    closed: Vec<(Written, u64)>,
}

/// One partition's share of a spill: its rows as one row group of its open file (opened if
/// needed); the file closed when full or when `close`.
fn write_part(storage: &Storage, opts: &WriterOptions, p: &Partition, b: Buffered, open: Option<OpenFile>, close: bool) -> Result<Outcome, (Buffered, std::io::Error)> {
    let res = (|| {
        // Files leave out their all-null columns (`sparse`).
        let batch = match b.rows {
            0 => None,
            _ => Some(super::sparse::without_null_columns(&concat_batches(&b.batches[0].schema(), b.batches.iter()).map_err(std::io::Error::other)?)),
        };
        let mut closed = Vec::new();
        let mut file = open;
        // An open file takes more rows if its columns hold theirs; if not, it is closed and the
        // rows start a new file (compaction merges the two).
        if let (Some(o), Some(batch)) = (&file, &batch)
            && !super::sparse::holds(&o.schema, &batch.schema())
        {
            closed.push(finish(file.take().expect("checked"))?);
        }
        if let (None, Some(batch)) = (&file, &batch) {
            let f = storage.create(&format!("{}/{}", p.dir(), unique_name("parquet")))?;
            // A file closed at once with few rows is a small file, whoever writes it (an
            // organization trail's partitions hold hundreds of rows).
            let large = !opts.small_files && (!close || b.rows >= LARGE_FILE_ROWS);
            let writer = ArrowWriter::try_new(f, batch.schema(), Some(writer_properties(opts.zstd_level, large, opts.small_files))).map_err(std::io::Error::other)?;
            file = Some(OpenFile { writer, rows: 0, schema: batch.schema() });
        }
        if let (Some(o), Some(batch)) = (file.as_mut(), &batch) {
            o.writer.write(&super::sparse::conform(batch, &o.schema).map_err(std::io::Error::other)?).map_err(std::io::Error::other)?;
            // End the row group here: what was buffered leaves memory.
            o.writer.flush().map_err(std::io::Error::other)?;
            o.rows += batch.num_rows() as u64;
        }
        let full = file.as_ref().is_some_and(|o| o.writer.bytes_written() as u64 >= opts.target_file_bytes);
        if (close || full)
            && let Some(o) = file.take()
        {
            closed.push(finish(o)?);
        }
        Ok(Outcome { open: file, closed })
    })();
    // On success the rows are in the file; on failure they go back to the buffer (a file that
    // failed half-way is dropped, its temporary removed).
    res.map_err(|e| (b, e))
}

/// Closes a partition's file: written whole and durable, not yet in the manifest.
fn finish(o: OpenFile) -> std::io::Result<(Written, u64)> {
    Ok((o.writer.into_inner().map_err(std::io::Error::other)?.finish()?, o.rows))
}

/// Splits a batch into its partitions (most batches hold one, and are not copied). Rows are
/// grouped by borrowed keys and a day number; the partition's strings are made once per group.
fn split(b: &OcsfBatch, table: &'static str) -> Vec<(Partition, RecordBatch)> {
    let batch = &b.batch;
    let cloud = batch.column_by_name("cloud").map(|c| c.as_struct());
    let region = cloud.and_then(|c| c.column_by_name("region")).map(|a| a.as_string::<i32>().clone());
    let account = cloud.and_then(|c: &StructArray| c.column_by_name("account")).and_then(|a| a.as_struct().column_by_name("uid")).map(|a| a.as_string::<i32>().clone());
    let time = batch.column_by_name("time").map(|a| a.as_primitive::<Int64Type>().clone());
    let key = |i: usize| -> (Option<&str>, Option<&str>, Option<i64>) {
        (
            region.as_ref().filter(|r| r.is_valid(i)).map(|r| r.value(i)),
            account.as_ref().filter(|a| a.is_valid(i)).map(|a| a.value(i)),
            time.as_ref().filter(|t| t.is_valid(i)).map(|t| t.value(i).div_euclid(86_400_000)),
        )
    };
    let mut index: HashMap<(Option<&str>, Option<&str>, Option<i64>), usize> = HashMap::new();
    let mut groups: Vec<Vec<u32>> = Vec::new();
    let mut keys = Vec::new();
    for i in 0..batch.num_rows() {
        let k = key(i);
        let g = *index.entry(k).or_insert_with(|| {
            groups.push(Vec::new());
            keys.push(k);
            groups.len() - 1
        });
        groups[g].push(i as u32);
    }
    let part =
        |(r, a, d): (Option<&str>, Option<&str>, Option<i64>)| Partition { class: table, region: clean(r), account: clean(a), day: d.map_or_else(|| "unknown".into(), |d| event_day(d * 86_400_000)) };
    if groups.len() <= 1 {
        return keys.into_iter().map(|k| (part(k), batch.clone())).collect();
    }
    keys.into_iter()
        .zip(groups)
        .map(|(k, rows)| {
            let idx = UInt32Array::from(rows);
            (part(k), take_record_batch(batch, &idx).expect("indices are in range"))
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
