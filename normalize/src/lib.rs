//! From raw bytes to OCSF Arrow batches: the decoders (`decode`: gzip, JSON Lines, envelopes)
//! and the normalizers, one module per source, each appending parsed source records straight
//! into the Arrow builders of the OCSF classes it maps to. Also the agent registry (`agents`)
//! and the CloudTrail verb classification (`verbs`) that the detectors read.
//!
//! This crate imports the schemas only: detectors, the lake and the runtime build on it.
//!
//! A normalizer declares the OCSF paths it writes (`PATHS`); the union over all normalizers is
//! part of each class's projection ([`crate::classes`]). Column handles are resolved once, at
//! construction, so a mapping mistake fails at start-up (and in tests), never per event.

pub mod agent;
pub mod agents;
mod ai_logs;
pub mod asff;
pub mod classes;
pub mod cloud_call;
pub mod cloudtrail;
mod columns;
pub mod decode;
pub mod guardduty;
pub mod head;
mod insight;
pub mod json;
pub mod net;
pub mod ocsf_json;
pub mod shield;
pub mod time;
pub mod verbs;
pub mod waf;

use arrow::array::RecordBatch;
use ocelot_schemas::{BatchWriter, ClassDef, WriterError};
use simd_json::BorrowedValue;

use crate::decode::Origin;

/// A batch of OCSF events of one class.
#[derive(Debug, Clone)]
pub struct OcsfBatch {
    pub class: &'static ClassDef,
    pub batch: RecordBatch,
}

/// A source normalizer.
pub trait Normalizer: Send {
    /// The source kind, as named in configs and on the command line (`cloudtrail`).
    fn kind(&self) -> &'static str;
    /// Appends one record; `Err(reason)` means it goes to the dead letters, with nothing kept.
    fn append(&mut self, record: &BorrowedValue<'_>, origin: &Origin) -> Result<(), String>;
    /// Rows buffered and not yet taken.
    fn buffered_rows(&self) -> usize;
    /// Takes the buffered rows as batches (one per class that has rows).
    fn take_batches(&mut self) -> Result<Vec<OcsfBatch>, WriterError>;
    /// Drops what an append that did not finish (it panicked) wrote of its record, so the
    /// next record's columns line up.
    fn discard_partial(&mut self);
}

/// Crash tests: `OCELOT_FAULT_PANIC_EVENT=<eventName>` makes the CloudTrail normalizer panic
/// half-way through an API Activity record of that name (some of its columns written).
pub(crate) fn fault_panic(event_name: &str) {
    static FAULT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if FAULT.get_or_init(|| std::env::var("OCELOT_FAULT_PANIC_EVENT").ok()).as_deref() == Some(event_name) {
        panic!("fault injected on {event_name}");
    }
}

/// `n.append`, with a panic in the normalizer turned into that record's dead letter (the rest
/// of the input goes on: one bad record must not become a crash loop).
pub fn append_guarded(n: &mut dyn Normalizer, record: &BorrowedValue<'_>, origin: &Origin) -> Result<(), String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| n.append(record, origin))) {
        Ok(r) => r,
        Err(panic) => {
            n.discard_partial();
            let what = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_else(|| "unknown".into());
            Err(format!("normalizer panic: {what} (a bug: please report it with this record)"))
        }
    }
}

/// The writer of one class, as a normalizer holds it.
pub struct ClassWriter {
    pub class: &'static ClassDef,
    pub writer: BatchWriter,
}

impl ClassWriter {
    pub fn new(class_name: &str) -> Result<ClassWriter, WriterError> {
        let (class, schema) = classes::class_and_projection(class_name).map_err(|e| WriterError::NoColumn(e.to_string()))?;
        Ok(ClassWriter { class, writer: BatchWriter::new(schema)? })
    }

    /// The buffered rows as a batch, for a normalizer that writes this class only.
    pub fn batches(&mut self) -> Result<Vec<OcsfBatch>, WriterError> {
        let mut out = Vec::new();
        self.take(&mut out)?;
        Ok(out)
    }

    pub fn take(&mut self, out: &mut Vec<OcsfBatch>) -> Result<(), WriterError> {
        if self.writer.rows() > 0 {
            out.push(OcsfBatch { class: self.class, batch: self.writer.finish()? });
        }
        Ok(())
    }
}

/// All shipped normalizers' declared paths for one class (the projection's "written" part).
pub fn written_paths(class_name: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    for (class, paths) in cloudtrail::PATHS.iter().chain(waf::PATHS).chain(asff::PATHS).chain(shield::PATHS).chain(guardduty::PATHS).chain(agent::PATHS) {
        if *class == class_name {
            out.extend(paths.iter().flat_map(|p| p.iter().copied()));
        }
    }
    // The detection engine's own findings share the class (the lake's `findings` table).
    if class_name == "detection_finding" {
        out.extend(classes::FINDING_PATHS);
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Source kinds known to `ocelot normalize --source` and the config.
pub const SOURCE_KINDS: &[&str] = &["cloudtrail", "waf", "securityhub", "guardduty", "shield", "agent"];

/// A normalizer by source kind (`auto` detects the source of each record), with the shipped
/// agent registry.
pub fn by_kind(kind: &str) -> Result<Box<dyn Normalizer>, String> {
    with_agents(kind, std::sync::Arc::new(agents::Registry::builtin()))
}

/// A normalizer by source kind, recognizing the registry's agents on CloudTrail records.
pub fn with_agents(kind: &str, registry: std::sync::Arc<agents::Registry>) -> Result<Box<dyn Normalizer>, String> {
    match kind {
        "cloudtrail" => Ok(Box::new(cloudtrail::CloudTrail::with_agents(registry).map_err(|e| e.to_string())?)),
        "waf" => Ok(Box::new(waf::Waf::new().map_err(|e| e.to_string())?)),
        "securityhub" => Ok(Box::new(asff::Asff::new().map_err(|e| e.to_string())?)),
        "shield" => Ok(Box::new(shield::Shield::new().map_err(|e| e.to_string())?)),
        "guardduty" => Ok(Box::new(guardduty::GuardDuty::new().map_err(|e| e.to_string())?)),
        "agent" => Ok(Box::new(agent::AgentLogs::new().map_err(|e| e.to_string())?)),
        "auto" => Ok(Box::new(Auto::with_agents(registry)?)),
        other => Err(format!("unknown source kind `{other}`; known: auto, {}", SOURCE_KINDS.join(", "))),
    }
}

/// The source kind a record looks like, from the keys only that source has.
pub fn detect(v: &BorrowedValue<'_>) -> Option<&'static str> {
    let has = |k: &str| crate::json::get(v, k).is_some();
    // CloudTrail records carry eventVersion and eventSource; hand-made or trimmed ones may
    // keep only eventName and eventTime; Insights events name the call inside insightDetails.
    if has("eventSource") && (has("eventVersion") || has("eventName")) || has("eventName") && has("eventTime") || has("insightDetails") && has("eventVersion") {
        return Some("cloudtrail");
    }
    // WAF logs: the web ACL and the request it judged.
    if has("webaclId") && has("httpRequest") || has("Request") && has("Action") && has("Timestamp") {
        return Some("waf");
    }
    // Shield Advanced attack records (DescribeAttack / ListAttacks).
    if has("AttackId") && has("ResourceArn") {
        return Some("shield");
    }
    // GuardDuty's own finding format (lowerCamel keys, a numeric severity, `service`).
    if has("schemaVersion") && has("service") && has("type") && has("severity") {
        return Some("guardduty");
    }
    // Agent telemetry: OTLP spans / log records (split by the decoder), MCP JSON-RPC.
    // Bedrock model invocation logs; Anthropic and OpenAI organisation audit logs.
    if has("span") && has("resource")
        || has("logRecord") && has("resource")
        || has("jsonrpc")
        || crate::json::get(v, "message").is_some_and(|m| crate::json::get(m, "jsonrpc").is_some())
        || ai_logs::format(v).is_some()
    {
        return Some("agent");
    }
    // Security Hub findings (ASFF).
    if has("SchemaVersion") && has("ProductArn") {
        return Some("securityhub");
    }
    None
}

/// Detects each record's source and hands it to that source's normalizer.
pub struct Auto {
    normalizers: Vec<Box<dyn Normalizer>>,
}

impl Auto {
    pub fn with_agents(registry: std::sync::Arc<agents::Registry>) -> Result<Auto, String> {
        Ok(Auto { normalizers: SOURCE_KINDS.iter().map(|k| with_agents(k, registry.clone())).collect::<Result<_, _>>()? })
    }
}

impl Normalizer for Auto {
    fn kind(&self) -> &'static str {
        "auto"
    }
    fn append(&mut self, record: &BorrowedValue<'_>, origin: &Origin) -> Result<(), String> {
        let kind = detect(record).ok_or_else(|| format!("unrecognized source: the record matches none of {} (set the input's source kind to name it)", SOURCE_KINDS.join(", ")))?;
        let n = self.normalizers.iter_mut().find(|n| n.kind() == kind).expect("every detected kind has a normalizer");
        n.append(record, origin)
    }
    fn buffered_rows(&self) -> usize {
        self.normalizers.iter().map(|n| n.buffered_rows()).sum()
    }
    fn discard_partial(&mut self) {
        self.normalizers.iter_mut().for_each(|n| n.discard_partial());
    }
    fn take_batches(&mut self) -> Result<Vec<OcsfBatch>, WriterError> {
        // Agent telemetry first: a tool call happens before the CloudTrail record of what it
        // did, and detection links the record to the call it has already seen.
        let mut order: Vec<usize> = (0..self.normalizers.len()).collect();
        order.sort_by_key(|&i| self.normalizers[i].kind() != "agent");
        let mut out = Vec::new();
        for i in order {
            out.extend(self.normalizers[i].take_batches()?);
        }
        Ok(out)
    }
}
