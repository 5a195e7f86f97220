//! Compaction: the small files of a partition (a streaming writer makes one per batch and
//! partition) merged into files of the target size, swapped in by one manifest entry.
//!
//! Readers see the old files or the new one, never both and never neither: the new file is
//! written whole (temp + rename) while the manifest still lists the old ones, then one entry
//! removes the old and adds the new. kill -9 at any point loses nothing and duplicates
//! nothing: before the entry, the new file is an orphan no reader lists (removed by the next
//! clean-up); after it, the old files are replaced ones, deleted `retain` later. Two
//! compactors racing for the same files cannot both win: the manifest refuses an entry that
//! removes a file another entry already removed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ArrowWriter;
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaDataReader;

use super::atomic::unique_name;
use super::manifest::{CommitError, FileEntry, Manifest};
use super::storage::{FileWriter, Storage, Written};
use super::writer::{writer_properties, DEFAULT_TARGET_FILE_BYTES};

#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Size of the files compaction makes.
    pub target_file_bytes: u64,
    /// A partition is compacted when it has at least this many small files (smaller than half
    /// the target).
    pub min_files: usize,
    pub zstd_level: i32,
    /// Replaced files are deleted this long after the swap, so a query planned before it can
    /// still read them (0 for a batch run with no concurrent readers).
    pub retain: Duration,
    /// Partitions compacted at once.
    pub threads: usize,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions { target_file_bytes: DEFAULT_TARGET_FILE_BYTES, min_files: 2, zstd_level: 3, retain: Duration::ZERO, threads: std::thread::available_parallelism().map_or(1, |n| n.get()) }
    }
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct CompactStats {
    pub partitions: usize,
    pub files_in: usize,
    pub bytes_in: u64,
    pub files_out: usize,
    pub bytes_out: u64,
    pub rows: u64,
    /// Swaps given up because another process replaced the same files first.
    pub conflicts: usize,
    /// Replaced files deleted.
    pub deleted: usize,
}

/// One planned merge: small files of one partition, in the order they were written.
struct Group {
    files: Vec<FileEntry>,
}

/// Compacts every partition of the lake at `root` that has enough small files. `progress` is
/// told (groups done, groups planned). When `cancel` is set, merges stop at the next input
/// file and what they wrote is deleted, so a stopping `ocelot run` leaves no uncommitted file
/// behind (`lake verify` would report it as added outside Ocelot until the next clean-up).
pub fn compact(storage: &Storage, opts: &CompactOptions, cancel: &AtomicBool, progress: &(dyn Fn(u64, u64) + Sync)) -> std::io::Result<CompactStats> {
    let mut m = Manifest::open(storage)?;
    // Leftovers of crashed writers and compactions first.
    m.clean(super::writer::ORPHAN_GRACE, opts.retain)?;
    // Crash tests: die (as kill -9 would) right after the first merged file is written, or
    // right after its swap is committed.
    let fault = std::env::var("OCELOT_FAULT_COMPACT").unwrap_or_default();
    let groups = plan(&m, opts);
    let mut stats = CompactStats { partitions: groups.iter().map(|g| partition_of(&g.files[0].path)).collect::<std::collections::HashSet<_>>().len(), ..Default::default() };
    let total = groups.len() as u64;
    let done = std::sync::atomic::AtomicU64::new(0);
    let failed_flag = AtomicBool::new(false);
    // Groups are merged in parallel; each swap is committed as soon as its file is written.
    let (tx, rx) = std::sync::mpsc::channel::<(Group, std::io::Result<Vec<(Written, u64)>>)>();
    let threads = opts.threads.clamp(1, groups.len().max(1));
    let queue = std::sync::Mutex::new(groups.into_iter());
    // The first error ends the pass: no new merges start, and what the others still deliver is
    // deleted rather than committed.
    let mut failed: Option<std::io::Error> = None;
    let stopping = || cancel.load(Ordering::Relaxed);
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (tx, queue, failed_flag) = (tx.clone(), &queue, &failed_flag);
            s.spawn(move || loop {
                if stopping() || failed_flag.load(Ordering::Relaxed) {
                    break;
                }
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                let Some(g) = next else { break };
                let out = merge(storage, &g, opts, cancel);
                if tx.send((g, out)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        for (g, out) in rx {
            let written = match out {
                Ok(w) => w,
                Err(e) => {
                    failed_flag.store(true, Ordering::Relaxed);
                    failed.get_or_insert(e);
                    continue;
                }
            };
            if failed.is_some() || stopping() {
                discard(storage, &written);
                continue;
            }
            if fault == "after_write" {
                std::process::abort();
            }
            let add: Vec<FileEntry> = written.iter().map(|(w, rows)| FileEntry { path: w.rel.clone(), sha256: w.sha256.clone(), bytes: w.bytes, rows: *rows }).collect();
            let remove: Vec<String> = g.files.iter().map(|f| f.path.clone()).collect();
            match m.commit_replace(add.clone(), remove) {
                Ok(_) => {
                    stats.files_in += g.files.len();
                    stats.bytes_in += g.files.iter().map(|f| f.bytes).sum::<u64>();
                    stats.files_out += add.len();
                    stats.bytes_out += add.iter().map(|f| f.bytes).sum::<u64>();
                    stats.rows += add.iter().map(|f| f.rows).sum::<u64>();
                    if fault == "after_commit" {
                        std::process::abort();
                    }
                }
                Err(CommitError::Conflict(path)) => {
                    tracing::info!(%path, "compaction: another process replaced these files first; this merge is dropped");
                    stats.conflicts += 1;
                    discard(storage, &written);
                }
                Err(e) => {
                    // Whether the entry landed is unknown (an S3 timeout, say): the file stays
                    // for the next clean-up, which keeps it if the entry did land.
                    failed_flag.store(true, Ordering::Relaxed);
                    failed.get_or_insert(e.into());
                }
            }
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
        }
    });
    match failed {
        // A cancelled pass is not a failed one: what it committed stays, the rest is gone.
        Some(e) if !(stopping() && e.kind() == std::io::ErrorKind::Interrupted) => return Err(e),
        _ => {}
    }
    stats.deleted = m.delete_replaced(opts.retain);
    Ok(stats)
}

/// Deletes merged files that will not be committed.
fn discard(storage: &Storage, written: &[(Written, u64)]) {
    for (w, _) in written {
        if let Err(e) = storage.delete(&w.rel) {
            tracing::warn!(path = %w.rel, error = %e, "compaction: an uncommitted merged file could not be deleted; the next clean-up removes it");
        }
    }
}

/// The merges worth doing: per partition, its small Parquet files in name (time) order, cut
/// into groups of about the target size; a group of one file is left alone.
fn plan(m: &Manifest, opts: &CompactOptions) -> Vec<Group> {
    let mut by_partition: BTreeMap<&str, Vec<&FileEntry>> = BTreeMap::new();
    for (path, f) in m.live() {
        if path.ends_with(".parquet") && f.bytes < opts.target_file_bytes / 2 {
            by_partition.entry(partition_of(path)).or_default().push(f);
        }
    }
    let mut groups = Vec::new();
    for (_, files) in by_partition {
        if files.len() < opts.min_files.max(2) {
            continue;
        }
        let mut cur: Vec<FileEntry> = Vec::new();
        let mut bytes = 0;
        for f in files {
            cur.push(f.clone());
            bytes += f.bytes;
            if bytes >= opts.target_file_bytes {
                groups.push(Group { files: std::mem::take(&mut cur) });
                bytes = 0;
            }
        }
        if cur.len() >= 2 {
            groups.push(Group { files: cur });
        }
    }
    groups
}

/// `api_activity/region=x/accountId=y/eventDay=z` of a file's path.
fn partition_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// Writes the rows of a group's files as one new file in the same directory, with the union of
/// their columns (files leave out their all-null columns, [`crate::sparse`]). Files whose
/// columns the table's schema does not hold (none Ocelot writes) are merged one file per schema.
fn merge(storage: &Storage, g: &Group, opts: &CompactOptions, cancel: &AtomicBool) -> std::io::Result<Vec<(Written, u64)>> {
    let mut out: Vec<(Written, u64)> = Vec::new();
    match merge_into(&mut out, storage, g, opts, cancel) {
        Ok(()) => Ok(out),
        Err(e) => {
            // Files already finished (one per schema) are not committed either.
            discard(storage, &out);
            Err(e)
        }
    }
}

fn merge_into(out: &mut Vec<(Written, u64)>, storage: &Storage, g: &Group, opts: &CompactOptions, cancel: &AtomicBool) -> std::io::Result<()> {
    let dir = partition_of(&g.files[0].path);
    let props = writer_properties(opts.zstd_level, true, false);
    let schemas = g.files.iter().map(|f| file_schema(storage, f)).collect::<std::io::Result<Vec<_>>>()?;
    let union = table_schema(dir).and_then(|full| crate::sparse::union(&full, &schemas));
    let mut cur: Option<(ArrowWriter<FileWriter>, u64, SchemaRef)> = None;
    for (f, schema) in g.files.iter().zip(schemas) {
        if cancel.load(Ordering::Relaxed) {
            // The open writer is dropped unfinished (its temporary goes with it).
            return Err(std::io::Error::new(std::io::ErrorKind::Interrupted, "compaction cancelled"));
        }
        let target = union.clone().unwrap_or_else(|| schema.clone());
        if cur.as_ref().is_some_and(|(_, _, s)| *s != target) {
            let (w, rows, _) = cur.take().expect("checked");
            out.push((w.into_inner()?.finish()?, rows));
        }
        let (w, rows, _) = match &mut cur {
            Some(c) => c,
            c => {
                let file = storage.create(&format!("{dir}/{}", unique_name("parquet")))?;
                c.insert((ArrowWriter::try_new(file, target.clone(), Some(props.clone()))?, 0, target.clone()))
            }
        };
        let bytes = storage.read(&f.path)?.ok_or_else(|| missing(&f.path))?;
        for b in ParquetRecordBatchReaderBuilder::try_new(bytes)?.with_batch_size(64 * 1024).build()? {
            let b = crate::sparse::conform(&b.map_err(std::io::Error::other)?, &target).map_err(std::io::Error::other)?;
            *rows += b.num_rows() as u64;
            w.write(&b)?;
        }
    }
    if let Some((w, rows, _)) = cur {
        out.push((w.into_inner()?.finish()?, rows));
    }
    Ok(())
}

fn missing(path: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotFound, format!("{path} is listed in the manifest but missing (run `ocelot lake verify`)"))
}

/// The schema of the table a partition directory belongs to (`api_activity/region=...`).
fn table_schema(dir: &str) -> Option<SchemaRef> {
    let table = dir.split('/').next()?;
    ocelot_normalize::classes::class_and_projection(crate::findings::class_of(table)).ok().map(|(_, s)| s)
}

/// A file's Arrow schema, from its footer alone: a range read of the file's tail, so on S3 the
/// data is not fetched twice.
fn file_schema(storage: &Storage, f: &FileEntry) -> std::io::Result<SchemaRef> {
    let mut want = f.bytes.min(64 * 1024);
    loop {
        let tail = storage.read_range(&f.path, f.bytes - want..f.bytes)?.ok_or_else(|| missing(&f.path))?;
        let mut reader = ParquetMetaDataReader::new();
        match reader.try_parse_sized(&tail, f.bytes) {
            Ok(()) => {
                let meta = ArrowReaderMetadata::try_new(std::sync::Arc::new(reader.finish()?), ArrowReaderOptions::default())?;
                return Ok(meta.schema().clone());
            }
            Err(ParquetError::NeedMoreData(n)) if n as u64 > want && n as u64 <= f.bytes => want = n as u64,
            Err(e) => return Err(std::io::Error::other(format!("{}: {e}", f.path))),
        }
    }
}
