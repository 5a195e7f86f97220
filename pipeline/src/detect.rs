//! Detection over normalized batches: `ocelot detect` replays files or the lake through the
//! same engine the streaming runtime runs, and keeps the latest state of each finding.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::filter_record_batch;
use ocelot_detectors::{Engine, EngineOptions, Finding, LoadOptions, SigmaSet};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// The CloudTrail classes Sigma rules read, as lake tables.
pub const DETECT_TABLES: &[&str] = &["api_activity", "authentication", "account_change"];

/// The rule set: the shipped one, or every rule under `dir`.
pub fn load_rules(dir: Option<&Path>, opts: &LoadOptions) -> Result<SigmaSet, String> {
    match dir {
        Some(d) => SigmaSet::load_dir(d, opts),
        None => SigmaSet::shipped(opts),
    }
}

/// An event-time range (epoch ms, inclusive start, exclusive end).
#[derive(Debug, Clone, Copy, Default)]
pub struct TimeRange {
    pub since: Option<i64>,
    pub until: Option<i64>,
}

impl TimeRange {
    fn keeps(&self, t: i64) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }
}

/// The engine and the latest version of every finding it emitted.
pub struct Detect {
    pub engine: Engine,
    findings: BTreeMap<String, Finding>,
    range: TimeRange,
    pub events: u64,
}

impl Detect {
    pub fn new(rules: SigmaSet, opts: EngineOptions, range: TimeRange) -> Detect {
        Detect { engine: Engine::new(rules, opts), findings: BTreeMap::new(), range, events: 0 }
    }

    pub fn batch(&mut self, batch: &RecordBatch) -> io::Result<()> {
        let batch = self.in_range(batch)?;
        self.events += batch.num_rows() as u64;
        for f in self.engine.process(&batch) {
            self.findings.insert(f.uid.clone(), f);
        }
        Ok(())
    }

    fn in_range(&self, batch: &RecordBatch) -> io::Result<RecordBatch> {
        if self.range.since.is_none() && self.range.until.is_none() {
            return Ok(batch.clone());
        }
        let Some(time) = batch.column_by_name("time") else { return Ok(batch.clone()) };
        let t = time.as_primitive_opt::<arrow::datatypes::Int64Type>().ok_or_else(|| io::Error::other("`time` is not an Int64 column"))?;
        let keep: arrow::array::BooleanArray = (0..t.len()).map(|i| Some(t.is_valid(i) && self.range.keeps(t.value(i)))).collect();
        filter_record_batch(batch, &keep).map_err(io::Error::other)
    }

    /// Findings in order of first sighting.
    pub fn findings(&self) -> Vec<&Finding> {
        let mut v: Vec<&Finding> = self.findings.values().collect();
        v.sort_by(|a, b| (a.first_seen, &a.rule.id, &a.uid).cmp(&(b.first_seen, &b.rule.id, &b.uid)));
        v
    }

    /// Writes the findings as OCSF JSON lines.
    pub fn write_jsonl(&self, out: &mut dyn Write) -> io::Result<()> {
        for f in self.findings() {
            serde_json::to_writer(&mut *out, &f.to_ocsf())?;
            out.write_all(b"\n")?;
        }
        out.flush()
    }

    /// Replays the lake's CloudTrail tables, file by file in path order (partitions are by day,
    /// so this is close to event-time order).
    pub fn replay_lake(&mut self, lake: &Path) -> io::Result<()> {
        let mut files: Vec<PathBuf> = Vec::new();
        for t in DETECT_TABLES {
            let dir = lake.join(t);
            if dir.is_dir() {
                collect_parquet(&dir, &mut files)?;
            }
        }
        if files.is_empty() {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("{}: no CloudTrail tables ({}) in this lake", lake.display(), DETECT_TABLES.join(", "))));
        }
        // Day partitions first, so the engine sees time roughly in order across tables.
        files.sort_by_key(|p| (day_of(p), p.clone()));
        for f in files {
            let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&f)?).map_err(io::Error::other)?.with_batch_size(64 * 1024).build().map_err(io::Error::other)?;
            for b in reader {
                self.batch(&b.map_err(io::Error::other)?)?;
            }
        }
        Ok(())
    }
}

fn day_of(p: &Path) -> String {
    p.components().filter_map(|c| c.as_os_str().to_str()?.strip_prefix("eventDay=").map(str::to_string)).next().unwrap_or_default()
}

fn collect_parquet(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            collect_parquet(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    Ok(())
}
