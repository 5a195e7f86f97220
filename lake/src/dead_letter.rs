//! The dead-letter store: every input that could not become an OCSF event, as JSON lines in
//! `LAKE/_dead_letter/eventDay=<YYYYMMDD>/<file>.jsonl`, each with the original bytes (text, or
//! base64 when not UTF-8), where they came from and why. Files are written atomically and
//! recorded in the lake's manifest like every other file.

use std::io::Write;

use base64::Engine;
use serde::Serialize;

use super::atomic::unique_name;
use super::manifest::{Manifest, Op};
use super::storage::Storage;
use super::DEAD_LETTER_DIR;
use ocelot_normalize::decode::DeadLetter;

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    offset: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<u32>,
    reason: &'a str,
    size: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_base64: Option<String>,
}

pub struct DeadLetterStore {
    /// `None`: dead letters go to stderr as JSON lines (for `normalize --format jsonl`
    /// without a lake).
    lake: Option<Storage>,
    pending: Vec<u8>,
    pending_count: usize,
    manifest: Option<Manifest>,
    pub total: usize,
    pub by_reason: std::collections::BTreeMap<String, usize>,
}

impl DeadLetterStore {
    pub fn new(lake: impl Into<Storage>) -> DeadLetterStore {
        DeadLetterStore { lake: Some(lake.into()), pending: Vec::new(), pending_count: 0, manifest: None, total: 0, by_reason: Default::default() }
    }

    pub fn to_stderr() -> DeadLetterStore {
        DeadLetterStore { lake: None, pending: Vec::new(), pending_count: 0, manifest: None, total: 0, by_reason: Default::default() }
    }

    pub fn push(&mut self, d: &DeadLetter) {
        let now = chrono::Utc::now();
        let (data, data_base64) = match std::str::from_utf8(&d.bytes) {
            Ok(s) => (Some(s), None),
            Err(_) => (None, Some(base64::engine::general_purpose::STANDARD.encode(&d.bytes))),
        };
        let line = Line {
            time: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            source: &d.origin.source,
            line: d.origin.line,
            offset: d.origin.offset,
            index: d.origin.index,
            reason: &d.reason,
            size: d.bytes.len(),
            data,
            data_base64,
        };
        // Serializing plain strings and numbers cannot fail.
        let _ = serde_json::to_writer(&mut self.pending, &line);
        self.pending.push(b'\n');
        self.pending_count += 1;
        self.total += 1;
        *self.by_reason.entry(reason_kind(&d.reason).to_string()).or_default() += 1;
    }

    /// Writes what is pending as one file; returns its path in the lake, if anything was
    /// pending.
    pub fn flush(&mut self) -> std::io::Result<Option<String>> {
        if self.pending_count == 0 {
            return Ok(None);
        }
        let Some(lake) = &self.lake else {
            std::io::stderr().write_all(&self.pending)?;
            self.pending.clear();
            self.pending_count = 0;
            return Ok(None);
        };
        // The manifest first: see LakeWriter's.
        let manifest = match &mut self.manifest {
            Some(m) => m,
            m => m.insert(Manifest::open(lake)?),
        };
        let day = chrono::Utc::now().format("%Y%m%d").to_string();
        let written = lake.put(&format!("{DEAD_LETTER_DIR}/eventDay={day}/{}", unique_name("jsonl")), &self.pending)?;
        let path = written.rel.clone();
        manifest.commit_files(Op::Append, &[(written, self.pending_count as u64)])?;
        self.pending.clear();
        self.pending_count = 0;
        Ok(Some(path))
    }
}

/// The reason without its details (`malformed JSON: ...` -> `malformed JSON`), for counting.
pub fn reason_kind(reason: &str) -> &str {
    reason.split(':').next().unwrap_or(reason).trim()
}
