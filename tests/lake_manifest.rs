//! The lake at organization scale: the manifest (commit protocol and tamper evidence),
//! compaction (atomic for readers, crash-safe), many writers on one lake, and the
//! organization-shaped generator. Rows are counted by `ocelot sql` (which reads what the
//! manifest lists) and by pyarrow over the same files (a reader that is not ours).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use ocelot_lake::{LakeWriter, Snapshot, WriterOptions};
use ocelot_normalize::OcsfBatch;

/// An org trail: `events` CloudTrail records over 12 accounts x 3 regions.
fn org_events(events: usize, seed: u64) -> Vec<u8> {
    let out = ocelot().args(["gen", "cloudtrail", "--events", &events.to_string(), "--seed", &seed.to_string(), "--accounts", "12", "--regions", "3"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Writes `input` to `lake` as the streaming runtime does: a flush every `per_flush` rows, so
/// each partition gets many small files. Returns rows written per class.
fn stream_into(lake: &Path, input: &[u8], per_flush: usize) -> BTreeMap<String, usize> {
    let run = normalize_all(&[(input, "org.jsonl")]);
    assert!(run.dead.is_empty());
    let mut w = LakeWriter::new(lake, WriterOptions { small_files: true, ..WriterOptions::default() });
    for b in &run.batches {
        let mut off = 0;
        while off < b.batch.num_rows() {
            let len = per_flush.min(b.batch.num_rows() - off);
            w.buffer(&OcsfBatch { class: b.class, batch: b.batch.slice(off, len) });
            w.flush().unwrap();
            off += len;
        }
    }
    w.stats.rows_per_class.clone()
}

/// Rows per table as `ocelot sql` counts them.
fn sql_counts(lake: &Path) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for t in ["api_activity", "authentication", "account_change", "detection_finding"] {
        let o = ocelot().args(["sql", &format!("SELECT count(*) AS n FROM {t}"), "--format", "csv", "--lake"]).arg(lake).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let n: usize = String::from_utf8_lossy(&o.stdout).lines().nth(1).unwrap().trim().parse().unwrap();
        if n > 0 {
            out.insert(t.to_string(), n);
        }
    }
    out
}

/// Rows of the listed files, read by pyarrow.
fn pyarrow_rows(files: &[PathBuf]) -> usize {
    let py = python_with("pyarrow", &["pyarrow"]);
    let script = "import sys, pyarrow.parquet as pq\nprint(sum(pq.ParquetFile(f).metadata.num_rows for f in sys.argv[1:]))";
    let out = Command::new(py).arg("-c").arg(script).args(files).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Every row of the event tables as JSON, in uid order, as `ocelot sql` reads them.
fn all_rows(lake: &Path) -> String {
    let mut out = String::new();
    for t in ["api_activity", "authentication", "account_change"] {
        let o = ocelot().args(["sql", &format!("SELECT * FROM {t} ORDER BY metadata.uid"), "--format", "json", "--lake"]).arg(lake).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out.push_str(&String::from_utf8_lossy(&o.stdout));
    }
    assert!(out.len() > 1_000_000, "{} bytes of rows", out.len());
    out
}

/// Leaf columns of a Parquet file.
fn leaf_columns(f: &Path) -> usize {
    parquet::file::reader::FileReader::metadata(&parquet::file::serialized_reader::SerializedFileReader::new(std::fs::File::open(f).unwrap()).unwrap()).file_metadata().schema_descr().num_columns()
}

fn live_parquet(lake: &Path) -> Vec<PathBuf> {
    Snapshot::take(&lake.into()).unwrap().files.iter().filter(|f| f.ends_with(".parquet")).map(|f| lake.join(f)).collect()
}

fn verify(lake: &Path) -> (bool, String) {
    let o = ocelot().args(["lake", "verify"]).arg(lake).output().unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stdout).to_string())
}

fn copy_dir(from: &Path, to: &Path) {
    for f in files_under(from) {
        let rel = f.strip_prefix(from).unwrap();
        std::fs::create_dir_all(to.join(rel).parent().unwrap()).unwrap();
        std::fs::copy(&f, to.join(rel)).unwrap();
    }
}

#[test]
fn compaction_swaps_small_files_for_large_ones_without_changing_a_row() {
    let lake = tempfile::tempdir().unwrap();
    let written = stream_into(lake.path(), &org_events(20_000, 5), 500);
    let before = live_parquet(lake.path());
    assert_eq!(sql_counts(lake.path()), written);
    let codec = |f: &PathBuf| {
        use parquet::file::reader::FileReader;
        parquet::file::reader::SerializedFileReader::new(std::fs::File::open(f).unwrap()).unwrap().metadata().row_group(0).column(0).compression()
    };
    assert!(before.iter().all(|f| codec(f) == parquet::basic::Compression::SNAPPY), "the streaming writer's files are Snappy");
    // Small files leave out their all-null columns, each its own: read through the table's
    // schema, every row is whole, before compaction and after it (which merges the columns).
    let narrower = before.iter().filter(|f| leaf_columns(f) < leaf_columns(&before[0]).max(leaf_columns(&before[1]))).count();
    assert!(narrower > 0, "every small file has the same columns");
    let rows_before = all_rows(lake.path());
    let o = ocelot().args(["lake", "compact", "--json"]).arg(lake.path()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stats: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let after = live_parquet(lake.path());
    // One file per partition afterwards (each partition is far below the target size).
    let partitions: std::collections::HashSet<&Path> = after.iter().map(|f| f.parent().unwrap()).collect();
    assert_eq!(after.len(), partitions.len(), "{} files for {} partitions", after.len(), partitions.len());
    assert!(before.len() >= 3 * after.len(), "{} files before, {} after", before.len(), after.len());
    assert_eq!(stats["files_out"].as_u64().unwrap() as usize, stats["partitions"].as_u64().unwrap() as usize);
    assert!(stats["bytes_out"].as_u64() < stats["bytes_in"].as_u64(), "{stats}");
    // Same rows by our reader and by pyarrow; the replaced files are gone (retain 0).
    assert_eq!(sql_counts(lake.path()), written);
    assert_eq!(all_rows(lake.path()), rows_before, "a row changed in compaction");
    assert_eq!(pyarrow_rows(&after), written.values().sum::<usize>());
    // (A partition with a single file keeps it.) The streaming writer's files are Snappy; what
    // compaction writes is zstd.
    assert!(before.iter().filter(|f| !after.contains(f)).all(|f| !f.exists()));
    assert!(after.iter().filter(|f| !before.contains(f)).all(|f| matches!(codec(f), parquet::basic::Compression::ZSTD(_))));
    let (ok, report) = verify(lake.path());
    assert!(ok, "{report}");
}

#[test]
fn a_compaction_killed_at_any_point_loses_and_duplicates_nothing() {
    let base = tempfile::tempdir().unwrap();
    let written = stream_into(base.path(), &org_events(6_000, 6), 300);
    let total: usize = written.values().sum();
    // Deterministic crash points (abort, as kill -9 would), then real kill -9 at varied times.
    for fault in ["after_write", "after_commit"] {
        let lake = tempfile::tempdir().unwrap();
        copy_dir(base.path(), lake.path());
        let o = ocelot().args(["lake", "compact"]).arg(lake.path()).env("OCELOT_FAULT_COMPACT", fault).output().unwrap();
        assert!(!o.status.success(), "the fault {fault} was not reached");
        assert_eq!(sql_counts(lake.path()), written, "right after the crash ({fault})");
        // The next compaction finishes the job and cleans up after the crash.
        let o = ocelot().args(["lake", "compact"]).arg(lake.path()).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(sql_counts(lake.path()), written, "after the next compaction ({fault})");
        assert_eq!(pyarrow_rows(&live_parquet(lake.path())), total);
        // A merged file written but never committed (after_write; or, after_commit, another
        // group's, merged in parallel) is younger than the grace period: it is reported as not
        // in the manifest until the clean-up removes it. Nothing else may be wrong.
        let o = ocelot().args(["lake", "verify", "--json"]).arg(lake.path()).output().unwrap();
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(report["problems"].as_array().unwrap().iter().all(|p| p["kind"] == "added"), "{fault}: {report:#}");
    }
    for delay_ms in [20u64, 60, 150, 400] {
        let lake = tempfile::tempdir().unwrap();
        copy_dir(base.path(), lake.path());
        let mut child = ocelot().args(["lake", "compact"]).arg(lake.path()).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(sql_counts(lake.path()), written, "killed after {delay_ms} ms");
    }
}

#[test]
fn a_cancelled_compaction_leaves_nothing_uncommitted() {
    // What `ocelot run` does at shutdown: the pass is cancelled after its first swap, while
    // the other thread is mid-merge; what that merge wrote must go, or `lake verify` would
    // report it as added outside Ocelot.
    let lake = tempfile::tempdir().unwrap();
    let written = stream_into(lake.path(), &org_events(6_000, 8), 200);
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let opts = ocelot_lake::CompactOptions { threads: 2, ..Default::default() };
    let stats = ocelot_lake::compact(&lake.path().into(), &opts, &cancel, &|done, total| {
        assert!(total > 4, "too few merges to cancel in the middle: {total}");
        if done == 1 {
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    })
    .unwrap();
    assert!(stats.files_out >= 1 && stats.partitions > stats.files_out, "{stats:?}");
    assert_eq!(sql_counts(lake.path()), written);
    let (ok, report) = verify(lake.path());
    assert!(ok, "{report}");
    let on_disk: Vec<PathBuf> = files_under(lake.path()).into_iter().filter(|f| f.extension().is_some_and(|e| e == "parquet")).collect();
    assert_eq!(on_disk.len(), live_parquet(lake.path()).len(), "files on disk that the manifest does not list");
}

#[test]
fn two_writers_on_one_lake_keep_every_row() {
    let lake = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    std::fs::write(&a, org_events(8_000, 11)).unwrap();
    std::fs::write(&b, org_events(8_000, 12)).unwrap();
    // Two processes (two `ocelot normalize` at once: the same writer `ocelot run` uses), into
    // the same partitions of one lake.
    let spawn = |f: &Path| ocelot().args(["normalize", "--lake"]).arg(lake.path()).arg(f).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let (pa, pb) = (spawn(&a), spawn(&b));
    for p in [pa, pb] {
        let o = p.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let counts = sql_counts(lake.path());
    assert_eq!(counts.values().sum::<usize>(), 16_000, "{counts:?}");
    let (ok, report) = verify(lake.path());
    assert!(ok, "{report}");
    // Every file is named once: nothing was replaced.
    let names: Vec<String> = live_parquet(lake.path()).iter().map(|f| f.file_name().unwrap().to_string_lossy().to_string()).collect();
    let unique: std::collections::HashSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len());
}

#[test]
fn verify_reports_files_changed_removed_or_added_outside_ocelot() {
    let lake = tempfile::tempdir().unwrap();
    stream_into(lake.path(), &org_events(3_000, 7), 1_000);
    let (ok, report) = verify(lake.path());
    assert!(ok, "{report}");
    let files = live_parquet(lake.path());
    assert!(files.len() >= 3);

    let edited = tempfile::tempdir().unwrap();
    copy_dir(lake.path(), edited.path());
    let f = edited.path().join(files[0].strip_prefix(lake.path()).unwrap());
    let mut bytes = std::fs::read(&f).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&f, bytes).unwrap();
    let (ok, report) = verify(edited.path());
    assert!(!ok && report.contains("changed outside Ocelot"), "{report}");

    let removed = tempfile::tempdir().unwrap();
    copy_dir(lake.path(), removed.path());
    std::fs::remove_file(removed.path().join(files[1].strip_prefix(lake.path()).unwrap())).unwrap();
    let (ok, report) = verify(removed.path());
    assert!(!ok && report.contains("removed outside Ocelot"), "{report}");

    let added = tempfile::tempdir().unwrap();
    copy_dir(lake.path(), added.path());
    let rel = files[2].strip_prefix(lake.path()).unwrap();
    std::fs::copy(added.path().join(rel), added.path().join(rel).with_file_name("extra.parquet")).unwrap();
    let (ok, report) = verify(added.path());
    assert!(!ok && report.contains("added outside Ocelot") && report.contains("extra.parquet"), "{report}");

    // An entry edited (a file dropped from the record) breaks the chain at the next entry.
    let rewritten = tempfile::tempdir().unwrap();
    copy_dir(lake.path(), rewritten.path());
    // (Entry 0 marks the lake as having a manifest; entry 1 holds the first files.)
    let entry = rewritten.path().join("_ocelot/manifest/00000000000000000001.json");
    let mut e: serde_json::Value = serde_json::from_slice(&std::fs::read(&entry).unwrap()).unwrap();
    e["add"].as_array_mut().unwrap().pop();
    std::fs::write(&entry, serde_json::to_vec(&e).unwrap()).unwrap();
    let (ok, report) = verify(rewritten.path());
    assert!(!ok && report.contains("broken chain at entry 2"), "{report}");

    // A chain rewritten from the start verifies on its own, but not against the head recorded.
    let head = |lake: &Path| {
        let o = ocelot().args(["lake", "verify", "--json"]).arg(lake).output().unwrap();
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["head"].as_str().unwrap().to_string()
    };
    let recorded = head(lake.path());
    let o = ocelot().args(["lake", "verify", "--expect-head", &recorded]).arg(lake.path()).output().unwrap();
    assert!(o.status.success());
    let o = ocelot().args(["lake", "verify", "--expect-head", &"0".repeat(64)]).arg(lake.path()).output().unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stdout).contains("not the"));
}

#[test]
fn readers_see_only_committed_files_and_leftovers_are_cleaned_at_start() {
    let lake = tempfile::tempdir().unwrap();
    let written = stream_into(lake.path(), &org_events(2_000, 8), 2_000);
    let some = live_parquet(lake.path())[0].clone();
    // A file no entry lists (a write that crashed before its commit): not read.
    let orphan = some.with_file_name("0000000000001-00000000deadbeef.parquet");
    std::fs::copy(&some, &orphan).unwrap();
    let tmp = some.with_file_name(".half-written.parquet.tmp");
    std::fs::write(&tmp, b"PAR1").unwrap();
    assert_eq!(sql_counts(lake.path()), written);
    // Aged past the grace period, the next writer removes both when it starts.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for f in [&orphan, &tmp] {
        std::fs::File::options().write(true).open(f).unwrap().set_modified(old).unwrap();
    }
    stream_into(lake.path(), &org_events(100, 9), 100);
    assert!(!orphan.exists() && !tmp.exists());
    let (ok, report) = verify(lake.path());
    assert!(ok, "{report}");
}

#[test]
fn a_lake_written_before_the_manifest_is_adopted_whole() {
    let lake = tempfile::tempdir().unwrap();
    let written = stream_into(lake.path(), &org_events(2_000, 10), 500);
    std::fs::remove_dir_all(lake.path().join("_ocelot")).unwrap();
    // Read as its directory listing...
    assert_eq!(sql_counts(lake.path()), written);
    // ...and the next writer records the files already there.
    let more = stream_into(lake.path(), &org_events(500, 13), 500);
    let mut expected = written.clone();
    for (k, v) in more {
        *expected.entry(k).or_default() += v;
    }
    assert_eq!(sql_counts(lake.path()), expected);
    let (ok, report) = verify(lake.path());
    assert!(ok, "{report}");
}

/// `ocelot normalize` of an organization trail: one file per partition and table, one row
/// group each, and min/max statistics only on the filter columns (a partition of hundreds of
/// rows is a small file, whoever writes it: statistics of ~180 columns were most of its
/// footer).
#[test]
fn normalize_writes_one_row_group_per_partition_with_small_footers() {
    let dir = tempfile::tempdir().unwrap();
    let (input, lake) = (dir.path().join("org.jsonl"), dir.path().join("lake"));
    std::fs::write(&input, org_events(20_000, 21)).unwrap();
    let o = ocelot().args(["normalize", "--lake"]).arg(&lake).arg(&input).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let files = live_parquet(&lake);
    let partitions: std::collections::HashSet<&Path> = files.iter().map(|f| f.parent().unwrap()).collect();
    assert_eq!(files.len(), partitions.len(), "one file per partition");
    assert!(files.len() >= 12 * 3, "{} files for 12 accounts x 3 regions", files.len());
    for f in &files {
        let meta = parquet::file::reader::SerializedFileReader::new(std::fs::File::open(f).unwrap()).unwrap();
        let meta = parquet::file::reader::FileReader::metadata(&meta);
        assert_eq!(meta.num_row_groups(), 1, "{}", f.display());
        for c in meta.row_group(0).columns() {
            let path = c.column_path().string();
            let filter = ["time", "class_uid", "severity_id", "activity_id", "status_id"].contains(&path.as_str());
            assert_eq!(c.statistics().is_some(), filter, "{}: statistics of {path}", f.display());
        }
    }
}
