//! The batch path: inputs (files, directories, stdin) -> decoder -> normalizer -> sink.
//! `ocelot normalize` and `ocelot demo` run this; the streaming runtime reuses the same
//! decoder and normalizers.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use simd_json::BorrowedValue;

use ocelot_lake::{DeadLetterStore, LakeWriter};
use ocelot_normalize::decode::{DeadLetter, Decoder, Limits, Origin, RecordSink};
use ocelot_normalize::ocsf_json;
use ocelot_normalize::{Normalizer, OcsfBatch};

/// Where normalized batches go.
pub enum Output {
    Lake(Box<LakeWriter>),
    /// OCSF JSON lines (to stdout, for piping).
    Jsonl(Box<dyn Write + Send>),
    /// Into the detection engine (`ocelot detect`).
    Detect(Box<crate::detect::Detect>),
}

impl Output {
    fn write(&mut self, b: &OcsfBatch) -> io::Result<()> {
        match self {
            Output::Lake(l) => l.append(b),
            Output::Jsonl(w) => ocsf_json::write_batch(&b.batch, w),
            Output::Detect(d) => d.batch(&b.batch, &b.class.name),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Lake(l) => l.flush().map(|_| ()),
            Output::Jsonl(w) => w.flush(),
            Output::Detect(_) => Ok(()),
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub inputs: usize,
    pub bytes: u64,
    pub events: usize,
    pub dead_lettered: usize,
    pub control_messages: usize,
    pub per_class: std::collections::BTreeMap<String, usize>,
    /// Dead letters by the kind of their reason (`malformed JSON`, `too large`, ...).
    pub dead_by_reason: std::collections::BTreeMap<String, usize>,
    pub elapsed: Duration,
}

impl Summary {
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

pub struct Ingest {
    normalizer: Box<dyn Normalizer>,
    decoder: Decoder,
    pub output: Output,
    pub dead: DeadLetterStore,
    batch_rows: usize,
    summary: Summary,
}

struct Sink<'a> {
    normalizer: &'a mut dyn Normalizer,
    dead: &'a mut DeadLetterStore,
    summary: &'a mut Summary,
    output: &'a mut Output,
    batch_rows: usize,
}

impl Sink<'_> {
    /// Hands on the normalizer's batches once it holds `batch_rows` rows (or always, `force`).
    fn drain(&mut self, force: bool) -> io::Result<()> {
        if !force && self.normalizer.buffered_rows() < self.batch_rows {
            return Ok(());
        }
        for b in self.normalizer.take_batches().map_err(io::Error::other)? {
            *self.summary.per_class.entry(b.class.name.clone()).or_default() += b.batch.num_rows();
            self.output.write(&b)?;
        }
        Ok(())
    }
}

impl RecordSink for Sink<'_> {
    fn record(&mut self, v: &BorrowedValue<'_>, origin: &Origin) -> Result<(), String> {
        ocelot_normalize::append_guarded(&mut *self.normalizer, v, origin)?;
        self.summary.events += 1;
        Ok(())
    }
    fn dead_letter(&mut self, d: DeadLetter) {
        tracing::debug!(origin = %d.origin, reason = %d.reason, "dead-lettered");
        self.summary.dead_lettered += 1;
        self.dead.push(&d);
    }
    fn control_message(&mut self) {
        self.summary.control_messages += 1;
    }
    fn chunk_done(&mut self) -> io::Result<()> {
        self.drain(false)
    }
}

/// The sink over an `Ingest`'s parts (a macro, not a method, so the decoder stays free to borrow).
macro_rules! sink {
    ($s:ident) => {
        Sink { normalizer: $s.normalizer.as_mut(), dead: &mut $s.dead, summary: &mut $s.summary, output: &mut $s.output, batch_rows: $s.batch_rows }
    };
}

impl Ingest {
    pub fn new(normalizer: Box<dyn Normalizer>, output: Output, dead: DeadLetterStore, limits: Limits) -> Ingest {
        Ingest { normalizer, decoder: Decoder::new(limits), output, dead, batch_rows: 64 * 1024, summary: Summary::default() }
    }

    /// Decodes one whole input held in memory (a message, a test's bytes).
    pub fn input(&mut self, bytes: &[u8], source: &Arc<str>) -> io::Result<()> {
        self.summary.inputs += 1;
        self.summary.bytes += bytes.len() as u64;
        let mut sink = sink!(self);
        self.decoder.decode(bytes, source, &mut sink);
        sink.drain(false)
    }

    /// Decodes a stream: a file or stdin. JSON Lines are read a chunk at a time, so a file of
    /// any length normalizes in bounded memory; other shapes are read whole.
    pub fn reader(&mut self, r: impl Read, source: &Arc<str>) -> io::Result<()> {
        self.summary.inputs += 1;
        let read = self.decoder.decode_reader(r, source, &mut sink!(self))?;
        self.summary.bytes += read;
        Ok(())
    }

    /// Reads and decodes a file.
    pub fn file(&mut self, path: &Path) -> io::Result<()> {
        let f = std::fs::File::open(path)?;
        self.reader(io::BufReader::with_capacity(1 << 20, f), &Arc::from(path.display().to_string()))
    }

    /// Reads and decodes stdin.
    pub fn stdin(&mut self, r: impl Read) -> io::Result<()> {
        self.reader(r, &Arc::from("stdin"))
    }

    /// Flushes everything: after this, every event read is in the output or the dead letters.
    pub fn finish(&mut self, started: Instant) -> io::Result<Summary> {
        sink!(self).drain(true)?;
        self.output.flush()?;
        self.dead.flush()?;
        self.summary.elapsed = started.elapsed();
        self.summary.dead_by_reason = self.dead.by_reason.clone();
        Ok(self.summary.clone())
    }
}

/// File names read when walking a directory: JSON, JSON Lines and gzip (CloudTrail's S3 files are
/// `.json.gz`). Files named on the command line are always read.
const DATA_SUFFIXES: &[&str] = &[".json", ".jsonl", ".ndjson", ".gz", ".log"];

/// Expands the command-line inputs: files as given, directories recursively (sorted; hidden
/// files and files without a data suffix skipped), `-` for stdin.
pub fn expand_inputs(paths: &[PathBuf]) -> io::Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.path());
        for e in entries {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if p.is_dir() {
                walk(&p, out)?;
            } else if DATA_SUFFIXES.iter().any(|s| e.file_name().to_string_lossy().ends_with(s)) {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" || p.is_file() {
            out.push(p.clone());
        } else if p.is_dir() {
            walk(p, &mut out)?;
        } else {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file or directory", p.display())));
        }
    }
    Ok(out)
}
