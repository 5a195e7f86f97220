//! `ocelot validate`: is this OCSF valid by the schema's own rules? Reads OCSF JSON lines files
//! or a lake (its Parquet files, at any depth; dead letters left out), checks every record with
//! the validator of `ocelot-schemas` (required attributes, types, enums, constraints, profiles,
//! observables) against the class its `class_uid` names, and prints a summary per class and the
//! first violations with where they are. Exit 1 if any record is invalid.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

/// How many violations are printed in full (the counts cover all of them).
const SHOWN: usize = 20;

#[derive(Default)]
pub struct Report {
    /// class name -> (valid, total)
    pub per_class: BTreeMap<String, (u64, u64)>,
    /// (where, path: problem) of the first violations.
    pub first: Vec<(String, String)>,
    pub violations: u64,
    pub invalid: u64,
}

impl Report {
    pub fn check(&mut self, event: &Value, at: impl FnOnce() -> String) {
        let schema = ocelot_schemas::schema();
        let uid = event.get("class_uid").and_then(Value::as_i64);
        let Some(class) = uid.and_then(|u| schema.class(&u.to_string())) else {
            self.per_class.entry("(no known class_uid)".into()).or_default().1 += 1;
            self.invalid += 1;
            self.violations += 1;
            self.note(at(), format!("class_uid: {} is not an OCSF {} class", uid.map_or("missing".into(), |u| u.to_string()), schema.version));
            return;
        };
        let problems = ocelot_schemas::validate_event(schema, class, event);
        let counts = self.per_class.entry(class.name.clone()).or_default();
        counts.1 += 1;
        if problems.is_empty() {
            counts.0 += 1;
            return;
        }
        self.invalid += 1;
        self.violations += problems.len() as u64;
        let at = at();
        for p in problems {
            self.note(at.clone(), p.to_string());
        }
    }

    fn note(&mut self, at: String, what: String) {
        if self.first.len() < SHOWN {
            self.first.push((at, what));
        }
    }

    pub fn print(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(out, "{:<28} {:>10} {:>10}", "class", "valid", "records")?;
        for (class, (valid, total)) in &self.per_class {
            writeln!(out, "{class:<28} {valid:>10} {total:>10}")?;
        }
        let total: u64 = self.per_class.values().map(|c| c.1).sum();
        writeln!(out, "{} of {total} records valid by OCSF {}", total - self.invalid, ocelot_schemas::schema().version)?;
        if self.invalid > 0 {
            writeln!(out, "{} invalid records, {} violations; the first:", self.invalid, self.violations)?;
            for (at, what) in &self.first {
                writeln!(out, "  {at}: {what}")?;
            }
        }
        Ok(())
    }
}

/// Validates files: `.parquet` files and directories of them (a lake), anything else as OCSF
/// JSON lines.
pub fn run(inputs: &[PathBuf]) -> Result<Report> {
    let mut report = Report::default();
    for input in inputs {
        if input.is_dir() {
            for f in parquet_files(input)? {
                parquet_file(&f, &mut report)?;
            }
        } else if input.extension().is_some_and(|e| e == "parquet") {
            parquet_file(input, &mut report)?;
        } else {
            json_lines(input, &mut report)?;
        }
    }
    Ok(report)
}

fn json_lines(path: &Path, report: &mut Report) -> Result<()> {
    let reader: Box<dyn BufRead> =
        if path.as_os_str() == "-" { Box::new(std::io::stdin().lock()) } else { Box::new(std::io::BufReader::new(std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?)) };
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), i + 1);
        match serde_json::from_str::<Value>(&line) {
            Ok(event) => report.check(&event, at),
            Err(e) => {
                report.per_class.entry("(not JSON)".into()).or_default().1 += 1;
                report.invalid += 1;
                report.violations += 1;
                report.note(at(), format!("not a JSON object: {e}"));
            }
        }
    }
    Ok(())
}

fn parquet_file(path: &Path, report: &mut Report) -> Result<()> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).with_context(|| format!("{} is not a Parquet file", path.display()))?.build()?;
    let mut row = 0usize;
    for batch in reader {
        let batch = batch.with_context(|| format!("reading {}", path.display()))?;
        for mut event in ocelot_schemas::batch_to_json(&batch)? {
            row += 1;
            // `unmapped` is a JSON string in the lake, an object in OCSF JSON.
            if let Some(u) = event.get_mut("unmapped")
                && let Some(parsed) = u.as_str().and_then(|s| serde_json::from_str::<Value>(s).ok())
            {
                *u = parsed;
            }
            report.check(&event, || format!("{} row {row}", path.display()));
        }
    }
    Ok(())
}

/// The Parquet files under a lake directory, sorted; `_dead_letter` and hidden (temporary)
/// names are skipped.
fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>> {
    // A lake: the files its manifest lists (dead letters left out).
    if dir.join(ocelot_lake::manifest::MANIFEST_DIR).is_dir() {
        let snapshot = ocelot_lake::Snapshot::take(&dir.into()).with_context(|| format!("reading the manifest of {}", dir.display()))?;
        return Ok(snapshot.parquet_files().map(|f| dir.join(f)).collect());
    }
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let p = e?.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name.starts_with('_') || name.starts_with('.') {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if name.ends_with(".parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}
