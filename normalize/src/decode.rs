//! Decoders: from the bytes of a file, a stdin stream or a message to parsed source records.
//!
//! The shape is detected, no flag needed:
//! - gzip (magic `1f 8b`), decompressed with a cap against gzip bombs;
//! - JSON Lines (the first value ends on its first line): each line is one value, so a bad
//!   line costs only itself;
//! - otherwise a stream of JSON values, pretty-printed or not, one after another;
//! - each value may be an envelope: the S3 delivery file `{"Records":[...]}`, an EventBridge
//!   event (`{"detail-type":..., "detail":{...}}`, or `"detail":{"findings":[...]}` from
//!   Security Hub), a Security Hub API body `{"Findings":[...]}`, Shield's
//!   `{"AttackSummaries":[...]}` and `{"Attack":{...}}`, OpenTelemetry OTLP/JSON trace and log
//!   export requests (one record per span / log record, with its resource), a CloudWatch Logs
//!   subscription payload
//!   (`{"logEvents":[{"message":"<record>"}]}`), or a bare record.
//!
//! Every record reaches the [`RecordSink`] parsed (simd-json, borrowed from a reused buffer);
//! everything that cannot become a record goes to it as a dead letter with the reason and its
//! origin. Nothing is dropped.

use std::io::Read;
use std::sync::Arc;

use memchr::memchr;
use simd_json::{BorrowedValue, Buffers};

use crate::json::{get, str_of};

/// Where a record came from: the input (file path, `stdin`, `topic/partition`), and the
/// position in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub source: Arc<str>,
    /// 1-based line number, for line-oriented input.
    pub line: Option<u64>,
    /// Byte offset of the value in the (decompressed) input, or the Kafka offset.
    pub offset: u64,
    /// Position inside an envelope (`Records[i]`, `logEvents[i]`).
    pub index: Option<u32>,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.source)?;
        match self.line {
            Some(l) => write!(f, ":{l}")?,
            None => write!(f, "@{}", self.offset)?,
        }
        if let Some(i) = self.index {
            write!(f, "[{i}]")?;
        }
        Ok(())
    }
}

/// Why an input could not become an OCSF event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub origin: Origin,
    pub reason: String,
    pub bytes: Vec<u8>,
}

/// What the decoder hands on.
pub trait RecordSink {
    /// One parsed source record. Returning `Err(reason)` dead-letters it.
    fn record(&mut self, value: &BorrowedValue<'_>, origin: &Origin) -> Result<(), String>;
    fn dead_letter(&mut self, letter: DeadLetter);
    /// A CloudWatch Logs control message: carries no event; counted, not stored.
    fn control_message(&mut self) {}
    /// A chunk of a stream is done (see [`Decoder::decode_reader`]): a chance to hand on
    /// buffered batches.
    fn chunk_done(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads until `buf` holds `want` more bytes than it did, or the end; true at the end.
fn fill(r: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> std::io::Result<bool> {
    let target = buf.len() + want;
    while buf.len() < target {
        let n = r.by_ref().take((target - buf.len()) as u64).read_to_end(buf)?;
        if n == 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A single record larger than this is dead-lettered (envelopes may be larger).
    pub max_event_bytes: usize,
    /// Decompressed size cap for one gzip input (gzip bombs). 256 MiB: a CloudTrail delivery
    /// file or a Kafka message is far smaller, and a bomb stops there instead of at 1 GiB.
    pub max_decompressed_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_event_bytes: 1 << 20, max_decompressed_bytes: 256 << 20 }
    }
}

/// Reusable decoder state (parse buffers).
pub struct Decoder {
    pub limits: Limits,
    scratch: Vec<u8>,
    inner: Vec<u8>,
    buffers: Buffers,
}

impl Decoder {
    pub fn new(limits: Limits) -> Decoder {
        Decoder { limits, scratch: Vec::new(), inner: Vec::new(), buffers: Buffers::default() }
    }

    /// Decodes one whole input (a file, a message).
    pub fn decode(&mut self, input: &[u8], source: &Arc<str>, sink: &mut dyn RecordSink) {
        if input.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            let cap = self.limits.max_decompressed_bytes;
            let res = flate2::read::MultiGzDecoder::new(input).take(cap as u64 + 1).read_to_end(&mut out);
            let origin = Origin { source: source.clone(), line: None, offset: 0, index: None };
            match res {
                Ok(_) if out.len() > cap => {
                    return sink.dead_letter(DeadLetter { origin, reason: format!("gzip: input expands past the {cap}-byte cap (a gzip bomb?)"), bytes: input.to_vec() });
                }
                Ok(_) => {}
                Err(e) => {
                    // Keep what was readable; the whole original goes to the dead letters too.
                    sink.dead_letter(DeadLetter { origin, reason: format!("gzip: {e} after {} decompressed bytes; the readable part was decoded", out.len()), bytes: input.to_vec() });
                }
            }
            return self.decode_text(&out, source, sink);
        }
        self.decode_text(input, source, sink)
    }

    /// Decodes whole lines of JSON Lines; `offset` and `lines_before` place them in the input.
    /// Returns the number of lines.
    fn decode_lines(&mut self, input: &[u8], offset: u64, lines_before: u64, source: &Arc<str>, sink: &mut dyn RecordSink) -> u64 {
        let mut start = 0;
        let mut line_no = lines_before;
        while start < input.len() {
            line_no += 1;
            let end = memchr(b'\n', &input[start..]).map_or(input.len(), |i| start + i);
            let line = trim(&input[start..end]);
            if !line.is_empty() {
                let origin = Origin { source: source.clone(), line: Some(line_no), offset: offset + start as u64, index: None };
                self.value(line, origin, sink);
            }
            start = end + 1;
        }
        line_no - lines_before
    }

    /// Decodes a stream. JSON Lines are decoded a chunk at a time, so memory stays bounded
    /// however long the stream (by the chunk and the longest line); after each chunk the sink's
    /// [`RecordSink::chunk_done`] runs. Gzip, JSON streams and envelopes are read whole (an S3
    /// delivery file is one JSON value). Returns the bytes read.
    pub fn decode_reader(&mut self, mut r: impl Read, source: &Arc<str>, sink: &mut dyn RecordSink) -> std::io::Result<u64> {
        const CHUNK: usize = 8 << 20;
        let mut buf = Vec::with_capacity(CHUNK);
        let mut eof = fill(&mut r, &mut buf, CHUNK)?;
        let first = skip_ws(&buf, 0);
        if buf.starts_with(&[0x1f, 0x8b]) || first >= buf.len() || !is_json_lines(&buf, first) {
            r.read_to_end(&mut buf)?;
            self.decode(&buf, source, sink);
            sink.chunk_done()?;
            return Ok(buf.len() as u64);
        }
        let (mut offset, mut lines) = (0u64, 0u64);
        loop {
            // Whole lines only; the tail of a chunk waits for the next one.
            let end = if eof { buf.len() } else { memchr::memrchr(b'\n', &buf).map_or(0, |i| i + 1) };
            lines += self.decode_lines(&buf[..end], offset, lines, source, sink);
            sink.chunk_done()?;
            offset += end as u64;
            buf.drain(..end);
            if eof {
                return Ok(offset);
            }
            eof = fill(&mut r, &mut buf, CHUNK)?;
        }
    }

    fn decode_text(&mut self, input: &[u8], source: &Arc<str>, sink: &mut dyn RecordSink) {
        let origin = |offset: usize, line: Option<u64>| Origin { source: source.clone(), line, offset: offset as u64, index: None };
        let first = skip_ws(input, 0);
        if first >= input.len() {
            return;
        }
        if is_json_lines(input, first) {
            self.decode_lines(input, 0, 0, source, sink);
            return;
        }
        let mut pos = first;
        while pos < input.len() {
            match value_end(input, pos) {
                Ok(end) => {
                    self.value(&input[pos..end], origin(pos, None), sink);
                    pos = skip_ws(input, end);
                }
                Err(Stop::NotJson) => {
                    let end = memchr(b'\n', &input[pos..]).map_or(input.len(), |i| pos + i);
                    sink.dead_letter(DeadLetter { origin: origin(pos, None), reason: "not JSON: expected `{` or `[`".into(), bytes: input[pos..end].to_vec() });
                    pos = skip_ws(input, end);
                }
                Err(Stop::Truncated) => {
                    sink.dead_letter(DeadLetter { origin: origin(pos, None), reason: "truncated JSON: input ends inside a value".into(), bytes: input[pos..].to_vec() });
                    return;
                }
            }
        }
    }

    /// One top-level JSON value: parse it, unwrap envelopes, hand on the records.
    fn value(&mut self, bytes: &[u8], origin: Origin, sink: &mut dyn RecordSink) {
        self.scratch.clear();
        self.scratch.extend_from_slice(bytes);
        let parsed = simd_json::borrowed::to_value_with_buffers(&mut self.scratch, &mut self.buffers);
        let value = match parsed {
            Ok(v) => v,
            Err(e) => return sink.dead_letter(DeadLetter { origin, reason: parse_reason(bytes, &e), bytes: bytes.to_vec() }),
        };
        let limits = self.limits;
        let deliver = |v: &BorrowedValue<'_>, origin: Origin, size: usize, raw: &dyn Fn() -> Vec<u8>, sink: &mut dyn RecordSink| {
            if size > limits.max_event_bytes {
                return sink.dead_letter(DeadLetter { origin, reason: format!("too large: event of {size} bytes exceeds max_event_bytes ({})", limits.max_event_bytes), bytes: raw() });
            }
            if let Err(reason) = sink.record(v, &origin) {
                sink.dead_letter(DeadLetter { origin, reason, bytes: raw() });
            }
        };
        match envelope(&value) {
            Envelope::Records(items) => {
                // Elements of a delivery file are not size-checked: the envelope as a whole was
                // accepted, and re-encoding each element just to measure it would cost more.
                for (i, item) in items.iter().enumerate() {
                    let o = Origin { index: Some(i as u32), ..origin.clone() };
                    deliver(item, o, 0, &|| simd_json::prelude::Writable::encode(item).into_bytes(), sink);
                }
            }
            Envelope::LogEvents(items) => {
                for (i, item) in items.iter().enumerate() {
                    let o = Origin { index: Some(i as u32), ..origin.clone() };
                    let Some(msg) = str_of(get(item, "message")) else {
                        sink.dead_letter(DeadLetter { origin: o, reason: "CloudWatch Logs: event without a string `message`".into(), bytes: simd_json::prelude::Writable::encode(item).into_bytes() });
                        continue;
                    };
                    // The message is a record of its own: parse a copy, keep the original for
                    // the dead letters.
                    self.inner.clear();
                    self.inner.extend_from_slice(msg.as_bytes());
                    let raw = || msg.as_bytes().to_vec();
                    match simd_json::borrowed::to_value_with_buffers(&mut self.inner, &mut self.buffers) {
                        Ok(v) => deliver(&v, o, msg.len(), &raw, sink),
                        Err(e) => sink.dead_letter(DeadLetter { origin: o, reason: parse_reason(msg.as_bytes(), &e), bytes: raw() }),
                    }
                }
            }
            Envelope::Otlp(kind, resources) => {
                // One record per span / log record, with its resource and scope beside it
                // (`{"resource":..,"scope":..,"span":..}`), so a bad one costs only itself.
                let (scopes_key, items_key, item_name) = match kind {
                    OtlpKind::Spans => ("scopeSpans", "spans", "span"),
                    OtlpKind::Logs => ("scopeLogs", "logRecords", "logRecord"),
                };
                let mut i = 0u32;
                for res in resources.iter() {
                    let resource = get(res, "resource").cloned().unwrap_or_else(|| BorrowedValue::Object(Box::default()));
                    let Some(BorrowedValue::Array(scopes)) = get(res, scopes_key) else { continue };
                    for sc in scopes.iter() {
                        let scope = get(sc, "scope").cloned().unwrap_or_else(|| BorrowedValue::Object(Box::default()));
                        let Some(BorrowedValue::Array(items)) = get(sc, items_key) else { continue };
                        for item in items.iter() {
                            let mut o = simd_json::borrowed::Object::with_capacity(3);
                            o.insert("resource".into(), resource.clone());
                            o.insert("scope".into(), scope.clone());
                            o.insert(item_name.into(), item.clone());
                            let record = BorrowedValue::Object(Box::new(o));
                            let o = Origin { index: Some(i), ..origin.clone() };
                            deliver(&record, o, 0, &|| simd_json::prelude::Writable::encode(&record).into_bytes(), sink);
                            i += 1;
                        }
                    }
                }
            }
            Envelope::Control => sink.control_message(),
            Envelope::Detail(detail) => deliver(detail, origin, bytes.len(), &|| bytes.to_vec(), sink),
            Envelope::Bare => deliver(&value, origin, bytes.len(), &|| bytes.to_vec(), sink),
        }
    }
}

#[derive(Clone, Copy)]
enum OtlpKind {
    Spans,
    Logs,
}

enum Envelope<'v, 'a> {
    Records(&'v [BorrowedValue<'a>]),
    /// OTLP/JSON ExportTraceServiceRequest (`resourceSpans`) or ExportLogsServiceRequest
    /// (`resourceLogs`).
    Otlp(OtlpKind, &'v [BorrowedValue<'a>]),
    LogEvents(&'v [BorrowedValue<'a>]),
    Control,
    Detail(&'v BorrowedValue<'a>),
    Bare,
}

fn envelope<'v, 'a>(v: &'v BorrowedValue<'a>) -> Envelope<'v, 'a> {
    let BorrowedValue::Object(o) = v else { return Envelope::Bare };
    // S3 delivery files (`Records`), Security Hub API bodies (`Findings`: GetFindings output,
    // BatchImportFindings input), Shield's ListAttacks output (`AttackSummaries`), WAF's
    // GetSampledRequests output (`SampledRequests`).
    for key in ["Records", "Findings", "AttackSummaries", "SampledRequests"] {
        if let Some(BorrowedValue::Array(items)) = o.get(key) {
            return Envelope::Records(items);
        }
    }
    if let Some(BorrowedValue::Array(items)) = o.get("resourceSpans") {
        return Envelope::Otlp(OtlpKind::Spans, items);
    }
    if let Some(BorrowedValue::Array(items)) = o.get("resourceLogs") {
        return Envelope::Otlp(OtlpKind::Logs, items);
    }
    if let Some(BorrowedValue::Array(items)) = o.get("logEvents") {
        return Envelope::LogEvents(items);
    }
    if str_of(o.get("messageType")) == Some("CONTROL_MESSAGE") {
        return Envelope::Control;
    }
    // Shield's DescribeAttack output: `{"Attack": {...}}`.
    if let (1, Some(attack @ BorrowedValue::Object(_))) = (o.len(), o.get("Attack")) {
        return Envelope::Detail(attack);
    }
    if let (Some(_), Some(detail @ BorrowedValue::Object(_))) = (o.get("detail-type"), o.get("detail")) {
        // "Security Hub Findings - Imported" (and kin) carry a list of ASFF findings.
        if let Some(BorrowedValue::Array(items)) = get(detail, "findings") {
            return Envelope::Records(items);
        }
        return Envelope::Detail(detail);
    }
    Envelope::Bare
}

fn parse_reason(bytes: &[u8], e: &simd_json::Error) -> String {
    match std::str::from_utf8(bytes) {
        Err(u) => format!("invalid UTF-8: at byte {}", u.valid_up_to()),
        Ok(_) => format!("malformed JSON: {e}"),
    }
}

/// JSON Lines when the first value ends on its own line. When the first value cannot be
/// delimited (a broken first line), the shape of the next lines decides: lines that each start
/// with `{` after one that ends with `}` are JSON Lines; anything else is a JSON stream.
fn is_json_lines(input: &[u8], first: usize) -> bool {
    let line_end = memchr(b'\n', &input[first..]).map_or(input.len(), |i| first + i);
    match value_end(input, first) {
        Ok(end) if end <= line_end => trim(&input[end..line_end]).is_empty(),
        Ok(_) => false,
        Err(_) => {
            let first_line = trim(&input[first..line_end]);
            let next = input[line_end.min(input.len())..].split(|b| *b == b'\n').map(trim).find(|l| !l.is_empty());
            first_line.ends_with(b"}") && next.is_some_and(|l| l.starts_with(b"{"))
        }
    }
}

enum Stop {
    NotJson,
    Truncated,
}

/// The end (exclusive) of the JSON object or array starting at `start`: a scan that tracks
/// strings and escapes, not a parse (the parser checks the value afterwards).
fn value_end(input: &[u8], start: usize) -> Result<usize, Stop> {
    if !matches!(input.get(start), Some(b'{' | b'[')) {
        return Err(Stop::NotJson);
    }
    let mut depth = 0usize;
    let mut i = start;
    while i < input.len() {
        match input[i] {
            b'"' => {
                i += 1;
                loop {
                    let Some(j) = memchr::memchr2(b'"', b'\\', &input[i..]) else { return Err(Stop::Truncated) };
                    i += j;
                    if input[i] == b'\\' {
                        i += 2;
                    } else {
                        break;
                    }
                    if i >= input.len() {
                        return Err(Stop::Truncated);
                    }
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    Err(Stop::Truncated)
}

fn skip_ws(input: &[u8], mut i: usize) -> usize {
    // A UTF-8 byte order mark at the start is whitespace too.
    if input[i..].starts_with(&[0xef, 0xbb, 0xbf]) {
        i += 3;
    }
    while i < input.len() && input[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let e = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(s, |e| e + 1);
    &b[s..e]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect {
        records: Vec<(String, Origin)>,
        dead: Vec<DeadLetter>,
    }
    impl RecordSink for Collect {
        fn record(&mut self, v: &BorrowedValue<'_>, origin: &Origin) -> Result<(), String> {
            match str_of(get(v, "eventName")) {
                Some(n) => {
                    self.records.push((n.to_string(), origin.clone()));
                    Ok(())
                }
                None => Err("no eventName".into()),
            }
        }
        fn dead_letter(&mut self, l: DeadLetter) {
            self.dead.push(l);
        }
    }

    fn run(input: &[u8]) -> Collect {
        let mut c = Collect::default();
        Decoder::new(Limits::default()).decode(input, &Arc::from("t"), &mut c);
        c
    }

    fn names(c: &Collect) -> Vec<&str> {
        c.records.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn streams_decode_in_chunks_with_the_same_origins() {
        // Long enough for several 8 MiB chunks, with lines cut at every chunk boundary.
        let mut input = Vec::new();
        let mut n = 0;
        while input.len() < 20 << 20 {
            n += 1;
            input.extend_from_slice(format!("{{\"eventName\":\"E{n}\",\"pad\":\"{}\"}}\n", "x".repeat(n % 977)).as_bytes());
        }
        input.extend_from_slice(b"{broken\n{\"eventName\":\"last\"}");
        let whole = run(&input);
        let mut streamed = Collect::default();
        let read = Decoder::new(Limits::default()).decode_reader(std::io::Cursor::new(&input), &Arc::from("t"), &mut streamed).unwrap();
        assert_eq!(read, input.len() as u64);
        assert_eq!(streamed.records.len(), n + 1);
        assert_eq!(streamed.records, whole.records, "same records, lines and offsets");
        assert_eq!(streamed.dead, whole.dead);
        assert_eq!(streamed.dead[0].origin.line, Some(n as u64 + 1));
    }

    #[test]
    fn json_lines_isolate_a_bad_line() {
        let c = run(b"{\"eventName\":\"A\"}\n{\"eventName\": oops\n\n{\"eventName\":\"C\"}\n");
        assert_eq!(names(&c), ["A", "C"]);
        assert_eq!(c.records[1].1.line, Some(4));
        assert_eq!(c.dead.len(), 1);
        assert_eq!(c.dead[0].origin.line, Some(2));
        assert!(c.dead[0].reason.contains("malformed JSON"), "{}", c.dead[0].reason);
    }

    #[test]
    fn pretty_printed_and_concatenated_values() {
        let c = run(b"{\n  \"eventName\": \"A\",\n  \"x\": \"}{\\\"\"\n}\n{\n \"eventName\": \"B\"\n}{\"eventName\":\"C\"}");
        assert_eq!(names(&c), ["A", "B", "C"]);
        assert!(c.dead.is_empty());
    }

    #[test]
    fn envelopes_are_unwrapped() {
        let s3 = br#"{"Records":[{"eventName":"A"},{"eventName":"B"},{"nope":1}]}"#;
        let c = run(s3);
        assert_eq!(names(&c), ["A", "B"]);
        assert_eq!(c.dead[0].origin.index, Some(2));
        assert_eq!(c.dead[0].bytes, br#"{"nope":1}"#);
        let eb = br#"{"version":"0","detail-type":"AWS API Call via CloudTrail","source":"aws.iam","detail":{"eventName":"E"}}"#;
        assert_eq!(names(&run(eb)), ["E"]);
        let cwl = br#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"{\"eventName\":\"L\"}"},{"id":"2","message":"not json"}]}"#;
        let c = run(cwl);
        assert_eq!(names(&c), ["L"]);
        assert_eq!(c.dead.len(), 1);
        let ctl = br#"{"messageType":"CONTROL_MESSAGE","logEvents":[]}"#;
        let c = run(ctl);
        assert!(c.records.is_empty() && c.dead.is_empty());
    }

    #[test]
    fn gzip_plain_truncated_and_bomb() {
        use flate2::{write::GzEncoder, Compression};
        use std::io::Write;
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(br#"{"Records":[{"eventName":"A"}]}"#).unwrap();
        let gz = e.finish().unwrap();
        assert_eq!(names(&run(&gz)), ["A"]);
        let c = run(&gz[..gz.len() / 2]);
        assert!(c.dead.iter().any(|d| d.reason.starts_with("gzip")), "{:?}", c.dead);
        let mut e = GzEncoder::new(Vec::new(), Compression::best());
        e.write_all(&vec![b' '; 4 << 20]).unwrap();
        let bomb = e.finish().unwrap();
        let mut c = Collect::default();
        Decoder::new(Limits { max_decompressed_bytes: 1 << 20, ..Limits::default() }).decode(&bomb, &Arc::from("t"), &mut c);
        assert!(c.dead[0].reason.contains("cap"), "{}", c.dead[0].reason);
    }

    #[test]
    fn invalid_utf8_oversize_garbage_and_truncation() {
        let c = run(b"{\"eventName\":\"\xff\xfe\"}\n");
        assert!(c.dead[0].reason.contains("UTF-8"), "{}", c.dead[0].reason);
        let big = format!("{{\"eventName\":\"A\",\"pad\":\"{}\"}}\n", "x".repeat(10 << 20));
        let c = run(big.as_bytes());
        assert!(c.records.is_empty());
        assert!(c.dead[0].reason.contains("exceeds max_event_bytes"));
        let c = run(b"{\n\"eventName\": \"A\"\n}\nhello world\n{\"eventName\":\"B\",\n");
        assert_eq!(names(&c), ["A"]);
        assert_eq!(c.dead.len(), 2, "{:?}", c.dead);
    }
}
