//! `ocelot run`'s configuration: a TOML file, every key also settable from the environment
//! (`OCELOT_KAFKA__BROKERS` sets `kafka.brokers`). Documented in docs/config.md; a commented
//! example is examples/ocelot.toml.
//!
//! Unknown keys are errors (a typo must not silently fall back to a default), and every
//! error names the key and what to write instead.

use std::collections::BTreeMap;
use std::path::Path;

use ocelot_lake::config::{read_file, read_text};
use ocelot_lake::config::{Lake, Setting, SqlServer};
use serde::{Deserialize, Serialize};

use ocelot_normalize::decode::Limits;
use ocelot_normalize::SOURCE_KINDS;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub kafka: Kafka,
    pub inputs: Vec<Input>,
    pub lake: Lake,
    #[serde(default)]
    pub output: Output,
    #[serde(default)]
    pub dead_letter: DeadLetterConfig,
    #[serde(default)]
    pub batch: Batch,
    #[serde(default)]
    pub http: Http,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub time: TimeConfig,
    /// Seconds from SIGTERM/SIGINT to exit: time to flush and commit.
    #[serde(default = "default_shutdown")]
    pub shutdown_timeout_secs: u64,
    /// AI agents to recognize on CloudTrail records, before the shipped ones.
    #[serde(default)]
    pub agents: Vec<ocelot_normalize::agents::AgentRule>,
    /// Recognize the shipped agents too (docs/agents.md).
    #[serde(default = "default_true")]
    pub builtin_agents: bool,
    #[serde(default)]
    pub detect: DetectConfig,
    /// Findings forwarders (`[[forward]]`, docs/config.md): Security Hub, Splunk HEC,
    /// Elasticsearch, webhook, Kafka, syslog.
    #[serde(default)]
    pub forward: Vec<crate::forward::config::ForwardConfig>,
    /// The Flight SQL server (`ocelot serve`) over this lake.
    #[serde(default)]
    pub sql: Option<SqlServer>,
}

/// Detection on the stream (docs/detection.md): findings go to the lake's `findings` table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectConfig {
    /// Run the detection engine on every batch.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// A rule directory instead of the shipped rules (Sigma .yml, SQL .sql, pattern .toml).
    #[serde(default)]
    pub rules: Option<String>,
    /// Hits of one rule by one principal within this many minutes update one finding.
    #[serde(default = "default_suppress")]
    pub suppress_minutes: u32,
    /// Values of Sigma `%name%` placeholders (the `expand` modifier), by name.
    #[serde(default)]
    pub placeholders: std::collections::HashMap<String, Vec<String>>,
    /// Detection on several replicas: the topic the events are routed through by detection
    /// key (created beforehand, with as many partitions as detect stages may run); each
    /// replica's detect stage reads it in group `<kafka.group_id>.detect`. Unset: every replica
    /// detects on what it ingests (one replica sees everything).
    #[serde(default)]
    pub route_topic: Option<String>,
    /// With `route_topic`: the longest stretch of event time a partition's new owner replays to
    /// rebuild the engine's state (windows, correlations, open findings, agent links, behaviour
    /// baselines). State older than this is rebuilt from this much only.
    #[serde(default = "default_replay_hours")]
    pub replay_horizon_hours: u32,
}

fn default_replay_hours() -> u32 {
    24
}

fn default_suppress() -> u32 {
    60
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig { enabled: true, rules: None, suppress_minutes: default_suppress(), placeholders: Default::default(), route_topic: None, replay_horizon_hours: default_replay_hours() }
    }
}

fn default_true() -> bool {
    true
}

fn default_shutdown() -> u64 {
    30
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kafka {
    /// `host:port[,host:port...]` (librdkafka's `bootstrap.servers`).
    pub brokers: String,
    #[serde(default = "default_group")]
    pub group_id: String,
    #[serde(default = "default_client")]
    pub client_id: String,
    /// librdkafka properties passed through as they are (TLS, SASL, timeouts...). A value is a
    /// string, or `{ env = "VAR" }` / `{ file = "/path" }` for secrets. Keys may use `_` for
    /// `.` (so that the environment can set them: `OCELOT_KAFKA__SETTINGS__SASL_PASSWORD`).
    #[serde(default)]
    pub settings: BTreeMap<String, Setting>,
}

fn default_group() -> String {
    "ocelot".into()
}
fn default_client() -> String {
    "ocelot".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub topic: String,
    /// `cloudtrail`, or `auto` to detect the source of each record.
    #[serde(default = "default_source")]
    pub source: String,
}

fn default_source() -> String {
    "auto".into()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// OCSF JSON events to Kafka (optional).
    pub kafka: Option<KafkaOutput>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaOutput {
    /// The topic; with `topic_per_class`, the prefix of one topic per class
    /// (`<topic>.<class>`, e.g. `ocsf.api_activity`).
    pub topic: String,
    /// One topic per OCSF class instead of one topic keyed by class name.
    #[serde(default)]
    pub topic_per_class: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// The dead-letter topic. Without one, dead letters go to the lake's `_dead_letter/`.
    pub topic: Option<String>,
    /// Larger originals are cut to this size in the topic (header `ocelot.original_size`
    /// keeps the size): a dead letter must fit the broker's message limit.
    #[serde(default = "default_dl_bytes")]
    pub max_message_bytes: usize,
}

fn default_dl_bytes() -> usize {
    512 * 1024
}

impl Default for DeadLetterConfig {
    fn default() -> Self {
        DeadLetterConfig { topic: None, max_message_bytes: default_dl_bytes() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// Events in one batch: a batch is the unit that is made durable and then committed.
    pub max_rows: usize,
    /// Message bytes in one batch.
    pub max_bytes: usize,
    /// A batch is sealed at most this long after its first message (the lake's freshness).
    pub max_latency_ms: u64,
    /// Sealed batches queued for the sinks; when full, partitions are paused.
    pub max_in_flight: usize,
}

impl Default for Batch {
    fn default() -> Self {
        Batch { max_rows: 50_000, max_bytes: 32 << 20, max_latency_ms: 1000, max_in_flight: 2 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    /// `/metrics`, `/healthz`, `/readyz`; empty to switch off.
    pub listen: String,
}

impl Default for Http {
    fn default() -> Self {
        Http { listen: "127.0.0.1:9464".into() }
    }
}

/// `[limits]`: each key may be given alone (the other keeps its default).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub max_event_bytes: usize,
    pub max_decompressed_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let l = Limits::default();
        LimitsConfig { max_event_bytes: l.max_event_bytes, max_decompressed_bytes: l.max_decompressed_bytes }
    }
}

impl From<&LimitsConfig> for Limits {
    fn from(l: &LimitsConfig) -> Limits {
        Limits { max_event_bytes: l.max_event_bytes, max_decompressed_bytes: l.max_decompressed_bytes }
    }
}

/// `[time]`: event times that a broken clock or an attacker controls.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeConfig {
    /// Detection's watermark moves no further than the processing clock plus this: a record
    /// dated later is still evaluated, and counted (`ocelot_detect_future_events`).
    pub max_skew_secs: u64,
    /// A record dated further ahead of the processing clock than this goes to the dead letters
    /// with the reason (0: never).
    pub max_future_secs: u64,
    /// A record older than this many days goes to the dead letters (0: never; replays of old
    /// trails are normal).
    pub max_age_days: u64,
}

impl Default for TimeConfig {
    fn default() -> Self {
        TimeConfig { max_skew_secs: (ocelot_detectors::engine::DEFAULT_MAX_SKEW_MS / 1000) as u64, max_future_secs: ocelot_normalize::time::DEFAULT_MAX_FUTURE_SECS as u64, max_age_days: 0 }
    }
}

impl TimeConfig {
    /// Applies the dead-letter bounds to the normalizers of this process.
    pub fn apply(&self) {
        ocelot_normalize::time::set_bounds(self.max_future_secs as i64, self.max_age_days as i64);
    }

    fn check(&self) -> Result<(), String> {
        if self.max_skew_secs == 0 {
            return Err("time.max_skew_secs: must be greater than 0 (seconds an event may be ahead of the clock; default 300)".into());
        }
        if self.max_future_secs != 0 && self.max_future_secs < self.max_skew_secs {
            return Err(format!(
                "time.max_future_secs: {} is less than time.max_skew_secs ({}); records would be dead-lettered before they could count as skewed: raise it, or 0 to never dead-letter",
                self.max_future_secs, self.max_skew_secs
            ));
        }
        Ok(())
    }
}

/// The top-level keys: only environment variables naming one of them are read (others, such as
/// `OCELOT_LOG`, belong to something else).
const TOP_KEYS: &[&str] = &["kafka", "inputs", "lake", "output", "dead_letter", "batch", "http", "limits", "time", "shutdown_timeout_secs", "agents", "builtin_agents", "detect", "forward", "sql"];

impl Config {
    /// Reads the file, then the environment over it, and checks the result.
    pub fn load(path: &Path) -> Result<Config, String> {
        let cfg: Config = read_file(path, TOP_KEYS)?;
        cfg.check()?;
        Ok(cfg)
    }

    /// From TOML text (and the environment), for tests and `--check`.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        let cfg: Config = read_text(text, TOP_KEYS)?;
        cfg.check()?;
        Ok(cfg)
    }

    /// The agent registry: `[[agents]]`, then the shipped agents unless switched off.
    pub fn registry(&self) -> Result<ocelot_normalize::agents::Registry, String> {
        ocelot_normalize::agents::Registry::new(&self.agents, self.builtin_agents)
    }

    fn check(&self) -> Result<(), String> {
        if self.kafka.brokers.trim().is_empty() {
            return Err("kafka.brokers: empty; give host:port of at least one broker".into());
        }
        if self.inputs.is_empty() {
            return Err("inputs: none; add at least one [[inputs]] with a topic (and source = \"cloudtrail\" or \"auto\")".into());
        }
        for (i, input) in self.inputs.iter().enumerate() {
            if input.topic.is_empty() {
                return Err(format!("inputs[{i}].topic: empty; name the Kafka topic to read"));
            }
            if input.source != "auto" && !SOURCE_KINDS.contains(&input.source.as_str()) {
                return Err(format!("inputs[{i}].source: unknown source kind `{}`; use one of: auto, {}", input.source, SOURCE_KINDS.join(", ")));
            }
            if self.inputs[..i].iter().any(|o| o.topic == input.topic) {
                return Err(format!("inputs[{i}].topic: `{}` is listed twice; list each topic once", input.topic));
            }
        }
        self.registry()?;
        self.time.check()?;
        self.lake.storage()?;
        if !(1..=4096).contains(&self.lake.target_file_mb) {
            return Err(format!("lake.target_file_mb: {} is out of range; use 1 to 4096 (MiB; 192 is the default)", self.lake.target_file_mb));
        }
        if !(1..=22).contains(&self.lake.zstd_level) {
            return Err(format!("lake.zstd_level: {} is out of range; use 1 (fastest) to 22", self.lake.zstd_level));
        }
        let b = &self.batch;
        for (key, v) in [
            ("limits.max_event_bytes", self.limits.max_event_bytes as u64),
            ("limits.max_decompressed_bytes", self.limits.max_decompressed_bytes as u64),
            ("batch.max_rows", b.max_rows as u64),
            ("batch.max_bytes", b.max_bytes as u64),
            ("batch.max_latency_ms", b.max_latency_ms),
            ("batch.max_in_flight", b.max_in_flight as u64),
            ("shutdown_timeout_secs", self.shutdown_timeout_secs),
            ("detect.replay_horizon_hours", u64::from(self.detect.replay_horizon_hours)),
        ] {
            if v == 0 {
                return Err(format!("{key}: must be greater than 0"));
            }
        }
        if self.detect.route_topic.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err("detect.route_topic: empty; name the topic events are routed through to the detect stages (or remove the key to detect where events are read)".into());
        }
        if let Some(k) = &self.output.kafka
            && k.topic.is_empty()
        {
            return Err("output.kafka.topic: empty; name the topic for OCSF JSON (or remove [output.kafka])".into());
        }
        if self.dead_letter.topic.as_deref() == Some("") {
            return Err("dead_letter.topic: empty; name a topic, or remove the key to keep dead letters in the lake".into());
        }
        if !self.http.listen.is_empty() && self.http.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!("http.listen: `{}` is not an address; write e.g. \"127.0.0.1:9464\" (or \"\" to switch off)", self.http.listen));
        }
        for (k, v) in &self.kafka.settings {
            v.resolve(&format!("kafka.settings.\"{k}\""))?;
        }
        for (i, f) in self.forward.iter().enumerate() {
            f.check().map_err(|e| format!("forward[{i}] (\"{}\").{e}", f.name()))?;
        }
        if let Some(sql) = &self.sql {
            sql.check()?;
        }
        Ok(())
    }

    /// The librdkafka properties: ours first, then the user's (which win).
    pub fn client_properties(&self) -> Result<Vec<(String, String)>, String> {
        let mut out = vec![("bootstrap.servers".to_string(), self.kafka.brokers.clone()), ("client.id".to_string(), self.kafka.client_id.clone())];
        for (k, v) in &self.kafka.settings {
            out.push((k.replace('_', "."), v.resolve(&format!("kafka.settings.\"{k}\""))?));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = "[kafka]\nbrokers = \"127.0.0.1:9092\"\n[[inputs]]\ntopic = \"ct\"\nsource = \"cloudtrail\"\n[lake]\npath = \"/tmp/lake\"\n";

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::from_toml(MIN).unwrap();
        assert_eq!(c.kafka.group_id, "ocelot");
        assert_eq!(c.batch.max_latency_ms, 1000);
        assert_eq!(c.shutdown_timeout_secs, 30);
        assert!(c.dead_letter.topic.is_none());
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::from_toml(&MIN.replace("brokers", "broker")).unwrap_err();
        assert!(e.contains("kafka") && e.contains("broker"), "{e}");
        let e = Config::from_toml(&MIN.replace("\"cloudtrail\"", "\"cloudtrial\"")).unwrap_err();
        assert!(e.contains("inputs[0].source") && e.contains("cloudtrial"), "{e}");
        let e = Config::from_toml(&format!("{MIN}[batch]\nmax_rows = 0\nmax_bytes = 1\nmax_latency_ms = 1\nmax_in_flight = 1\n")).unwrap_err();
        assert!(e.starts_with("batch.max_rows"), "{e}");
        let e = Config::from_toml(&MIN.replace("/tmp/lake", "gs://bucket/lake")).unwrap_err();
        assert!(e.contains("lake.path") && e.contains("s3://BUCKET/PREFIX"), "{e}");
        let e = Config::from_toml(&MIN.replace("/tmp/lake", "s3:///lake")).unwrap_err();
        assert!(e.contains("lake.path") && e.contains("no bucket"), "{e}");
        assert!(Config::from_toml(&MIN.replace("/tmp/lake", "s3://bucket/lake")).is_ok());
        let e = Config::from_toml(&format!("{MIN}[kafka.settings]\n\"sasl.password\" = {{ env = \"OCELOT_TEST_UNSET_VAR\" }}\n")).unwrap_err();
        assert!(e.contains("sasl.password") && e.contains("OCELOT_TEST_UNSET_VAR"), "{e}");
    }

    #[test]
    fn secrets_come_from_files_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "s3cret\n").unwrap();
        let c = Config::from_toml(&format!("{MIN}[kafka.settings]\n\"sasl.password\" = {{ file = \"{}\" }}\nsasl_username = \"u\"\n", f.display())).unwrap();
        let props = c.client_properties().unwrap();
        assert!(props.contains(&("sasl.password".into(), "s3cret".into())));
        assert!(props.contains(&("sasl.username".into(), "u".into())));
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
