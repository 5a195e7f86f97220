//! Shared helpers for the integration tests: normalize bytes in memory, read the bundled data.
#![allow(dead_code)]

pub mod kafka;
pub mod moto;
pub mod reference;
pub mod webhook;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ocelot_normalize::decode::{DeadLetter, Decoder, Limits, Origin, RecordSink};
use ocelot_normalize::{self as normalize, Normalizer, OcsfBatch};
use serde_json::Value;
use simd_json::BorrowedValue;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[derive(Default)]
pub struct Run {
    pub batches: Vec<OcsfBatch>,
    pub dead: Vec<DeadLetter>,
    pub events: usize,
}

impl Run {
    /// All events as OCSF JSON (unmapped parsed into an object), with their class name.
    pub fn events_json(&self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for b in &self.batches {
            for mut row in ocelot_schemas::batch_to_json(&b.batch).unwrap() {
                if let Some(u) = row.get_mut("unmapped") {
                    *u = serde_json::from_str(u.as_str().unwrap()).unwrap();
                }
                out.push((b.class.name.clone(), row));
            }
        }
        out
    }

    pub fn rows(&self) -> usize {
        self.batches.iter().map(|b| b.batch.num_rows()).sum()
    }
}

struct Sink<'a>(&'a mut dyn Normalizer, &'a mut Run);

impl RecordSink for Sink<'_> {
    fn record(&mut self, v: &BorrowedValue<'_>, o: &Origin) -> Result<(), String> {
        self.0.append(v, o)?;
        self.1.events += 1;
        Ok(())
    }
    fn dead_letter(&mut self, d: DeadLetter) {
        self.1.dead.push(d);
    }
}

/// Normalizes inputs as CloudTrail, in memory.
pub fn normalize_all(inputs: &[(&[u8], &str)]) -> Run {
    normalize_as("cloudtrail", inputs)
}

/// Normalizes inputs with the normalizer of a source kind (or `auto`), in memory.
pub fn normalize_as(kind: &str, inputs: &[(&[u8], &str)]) -> Run {
    let mut n = normalize::by_kind(kind).unwrap();
    let mut run = Run::default();
    let mut d = Decoder::new(Limits::default());
    for (bytes, name) in inputs {
        d.decode(bytes, &Arc::from(*name), &mut Sink(n.as_mut(), &mut run));
    }
    run.batches = n.take_batches().unwrap();
    run
}

pub fn normalize_file(path: &Path) -> Run {
    normalize_file_as("cloudtrail", path)
}

pub fn normalize_file_as(kind: &str, path: &Path) -> Run {
    let bytes = std::fs::read(path).unwrap();
    normalize_as(kind, &[(&bytes, &path.display().to_string())])
}

/// Fails with every violation of every event.
pub fn assert_valid(run: &Run) {
    let schema = ocelot_schemas::schema();
    let mut problems = Vec::new();
    for b in &run.batches {
        for (row, v) in ocelot_schemas::validate_batch(schema, b.class, &b.batch).unwrap() {
            problems.push(format!("{} row {row}: {v}", b.class.name));
        }
    }
    assert!(problems.is_empty(), "{} violations, first: {:#?}", problems.len(), &problems[..problems.len().min(20)]);
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The `ocelot` binary built for these tests.
pub fn ocelot() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_ocelot"))
}

/// A Python that can `import module`: `OCELOT_TEST_PYTHON` if set (scripts/test.sh makes one with
/// everything the tests need), else a venv made once under target/ with `packages` from PyPI.
#[allow(dead_code)]
pub fn python_with(module: &str, packages: &[&str]) -> PathBuf {
    use std::process::Command;
    if let Ok(p) = std::env::var("OCELOT_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = repo().join("target/test-venv");
    let py = venv.join("bin/python");
    let ok = |py: &Path| Command::new(py).args(["-c", &format!("import {module}")]).status().is_ok_and(|s| s.success());
    if !ok(&py) {
        let st = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().expect("python3 is needed for the tests that use a reference reader");
        assert!(st.success(), "python3 -m venv failed");
        let st = Command::new(&py).args(["-m", "pip", "install", "--quiet"]).args(packages).status().unwrap();
        assert!(st.success(), "pip install {packages:?} failed (needs PyPI)");
    }
    py
}
