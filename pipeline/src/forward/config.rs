//! `[[forward]]` in ocelot.toml: one table per forwarder, `type` says which target. Unknown
//! keys are errors, like everywhere in the config. Documented in docs/config.md.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use ocelot_lake::config::Setting;

/// The `[[forward]]` tables of a config file (its other sections are not read), checked; an
/// error names the forwarder and the key.
pub fn load_targets(path: &std::path::Path) -> Result<Vec<ForwardConfig>, String> {
    #[derive(Deserialize)]
    struct Targets {
        #[serde(default)]
        forward: Vec<ForwardConfig>,
    }
    let t: Targets = ocelot_lake::config::read_file(path, &["forward"])?;
    if t.forward.is_empty() {
        return Err(format!("{}: no [[forward]] target; add one (docs/config.md lists the types)", path.display()));
    }
    for (i, f) in t.forward.iter().enumerate() {
        f.check().map_err(|e| format!("forward[{i}] (\"{}\").{e}", f.name()))?;
    }
    Ok(t.forward)
}

/// One forwarder.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ForwardConfig {
    SecurityHub(SecurityHubConfig),
    SplunkHec(HecConfig),
    Elasticsearch(BulkConfig),
    Webhook(WebhookConfig),
    Kafka(KafkaForwardConfig),
    Syslog(SyslogConfig),
}

impl ForwardConfig {
    /// The forwarder's name (metrics label, dead-letter source): `name`, or the type.
    pub fn name(&self) -> String {
        let (name, kind) = match self {
            ForwardConfig::SecurityHub(c) => (&c.name, "security_hub"),
            ForwardConfig::SplunkHec(c) => (&c.name, "splunk_hec"),
            ForwardConfig::Elasticsearch(c) => (&c.name, "elasticsearch"),
            ForwardConfig::Webhook(c) => (&c.name, "webhook"),
            ForwardConfig::Kafka(c) => (&c.name, "kafka"),
            ForwardConfig::Syslog(c) => (&c.name, "syslog"),
        };
        name.clone().unwrap_or_else(|| kind.to_string())
    }

    /// Fails fast on what the forwarder could not start with: a secret not set, a URL that
    /// does not parse, a CA file that cannot be read. The error starts with the key.
    pub fn check(&self) -> Result<(), String> {
        let secret = |key: &str, s: &Option<Setting>| s.as_ref().map_or(Ok(()), |s| s.resolve(key).map(|_| ()));
        match self {
            ForwardConfig::SecurityHub(c) => {
                if c.account_id.len() != 12 || !c.account_id.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("account_id: {:?} is not a 12-digit AWS account id; give the account whose Security Hub imports the findings", c.account_id));
                }
                if c.access_key_id.is_some() != c.secret_access_key.is_some() {
                    return Err("access_key_id and secret_access_key: give both, or neither to use the standard credential chain".into());
                }
                secret("access_key_id", &c.access_key_id)?;
                secret("secret_access_key", &c.secret_access_key)?;
                c.endpoint_url.as_ref().map_or(Ok(()), |u| super::http::url("endpoint_url", u, "").map(|_| ()))
            }
            ForwardConfig::SplunkHec(c) => {
                c.token.resolve("token")?;
                super::http::url("url", &c.url, "")?;
                c.tls.check()
            }
            ForwardConfig::Elasticsearch(c) => {
                secret("password", &c.password)?;
                secret("api_key", &c.api_key)?;
                super::http::url("url", &c.url, "")?;
                c.tls.check()
            }
            ForwardConfig::Webhook(c) => {
                secret("secret", &c.secret)?;
                super::http::url("url", &c.url, "")?;
                c.tls.check()
            }
            ForwardConfig::Kafka(c) => {
                if c.topic.is_empty() {
                    return Err("topic: empty; name the topic for findings".into());
                }
                c.properties.iter().try_for_each(|(k, v)| v.resolve(&format!("properties.\"{k}\"")).map(|_| ()))
            }
            ForwardConfig::Syslog(c) => {
                if c.address.rsplit_once(':').is_none_or(|(_, p)| p.parse::<u16>().is_err()) {
                    return Err(format!("address: {:?} is not host:port (e.g. \"siem.example.com:6514\")", c.address));
                }
                if c.facility > 23 {
                    return Err(format!("facility: {} is out of range; syslog facilities are 0 to 23 (4 auth, 10 authpriv, 16-23 local0-7)", c.facility));
                }
                check_ca_file(&c.tls.ca_file)
            }
        }
    }

    pub fn delivery(&self) -> &Delivery {
        match self {
            ForwardConfig::SecurityHub(c) => &c.delivery,
            ForwardConfig::SplunkHec(c) => &c.delivery,
            ForwardConfig::Elasticsearch(c) => &c.delivery,
            ForwardConfig::Webhook(c) => &c.delivery,
            ForwardConfig::Kafka(c) => &c.delivery,
            ForwardConfig::Syslog(c) => &c.delivery,
        }
    }
}

/// How a forwarder queues, batches and retries (`[forward.delivery]`). A default left unset
/// is the target's own (each target module says which).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    /// Findings waiting to be sent; when full, the pipeline waits (back-pressure).
    pub queue: Option<usize>,
    /// Findings per request.
    pub max_batch: Option<usize>,
    /// Bytes per request body.
    pub max_batch_bytes: Option<usize>,
    /// How long the first finding of a batch waits for more, in milliseconds.
    pub linger_ms: Option<u64>,
    /// Attempts per finding before it is dead-lettered.
    pub max_attempts: Option<u32>,
    /// Requests per second, and the burst above it.
    pub rate_per_sec: Option<f64>,
    pub burst: Option<u32>,
    /// Seconds one request may take.
    pub timeout_secs: Option<u64>,
    /// Only findings at least this severe: informational, low, medium, high or critical.
    pub min_severity: Option<String>,
}

/// TLS for HTTPS targets: the platform's roots, plus a CA file for a private CA.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// PEM file of the CA that signed the target's certificate.
    pub ca_file: Option<PathBuf>,
}

impl Tls {
    fn check(&self) -> Result<(), String> {
        check_ca_file(&self.ca_file)
    }
}

fn check_ca_file(ca_file: &Option<PathBuf>) -> Result<(), String> {
    match ca_file {
        Some(p) if !p.is_file() => Err(format!("tls.ca_file: {} is not a readable file", p.display())),
        _ => Ok(()),
    }
}

/// AWS Security Hub (BatchImportFindings).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityHubConfig {
    pub name: Option<String>,
    /// The region whose Security Hub imports the findings.
    pub region: String,
    /// The account calling BatchImportFindings: `AwsAccountId` of every finding, and the
    /// account of the default product ARN.
    pub account_id: String,
    /// Instead of `arn:aws:securityhub:REGION:ACCOUNT:product/ACCOUNT/default`.
    pub product_arn: Option<String>,
    /// Instead of the regional endpoint (a VPC endpoint; tests).
    pub endpoint_url: Option<String>,
    /// Static keys instead of the standard credential chain (environment, profile, web
    /// identity, ECS, EC2 instance role).
    pub access_key_id: Option<Setting>,
    pub secret_access_key: Option<Setting>,
    #[serde(default)]
    pub delivery: Delivery,
}

/// Splunk HTTP Event Collector.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HecConfig {
    pub name: Option<String>,
    /// Base URL, e.g. `https://splunk.example.com:8088` (`/services/collector/event` is added).
    pub url: String,
    /// The HEC token: the text, `{ env = "VAR" }` or `{ file = "path" }`.
    pub token: Setting,
    pub index: Option<String>,
    #[serde(default = "default_sourcetype")]
    pub sourcetype: String,
    #[serde(default = "default_source")]
    pub source: String,
    #[serde(default)]
    pub tls: Tls,
    #[serde(default)]
    pub delivery: Delivery,
}

fn default_sourcetype() -> String {
    "ocsf:detection_finding".into()
}

fn default_source() -> String {
    "ocelot".into()
}

/// Elasticsearch or OpenSearch `_bulk`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkConfig {
    pub name: Option<String>,
    /// Base URL, e.g. `https://es.example.com:9200` (`/_bulk` is added).
    pub url: String,
    #[serde(default = "default_index")]
    pub index: String,
    /// Basic authentication.
    pub username: Option<String>,
    pub password: Option<Setting>,
    /// `Authorization: ApiKey ...` (Elasticsearch API keys), instead of basic.
    pub api_key: Option<Setting>,
    /// An ingest pipeline to run on each document.
    pub pipeline: Option<String>,
    #[serde(default)]
    pub tls: Tls,
    #[serde(default)]
    pub delivery: Delivery,
}

fn default_index() -> String {
    "ocelot-findings".into()
}

/// A JSON POST to any URL, signed with HMAC-SHA256.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub name: Option<String>,
    pub url: String,
    /// The HMAC-SHA256 key of the `X-Ocelot-Signature` header; no header without it.
    pub secret: Option<Setting>,
    #[serde(default)]
    pub format: WebhookFormat,
    /// Extra headers, e.g. an `Authorization` the receiver wants.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub tls: Tls,
    #[serde(default)]
    pub delivery: Delivery,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// One OCSF Detection Finding per POST.
    #[default]
    Ocsf,
    /// Slack incoming-webhook text (`{"text": ...}`), a line per finding.
    Slack,
}

/// A Kafka topic of OCSF JSON findings, keyed by finding uid (a compacted topic keeps the
/// latest version of each).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaForwardConfig {
    pub name: Option<String>,
    pub brokers: String,
    pub topic: String,
    /// librdkafka producer properties (`security.protocol`, `sasl.*`, `compression.type`...),
    /// each a value, `{ env = "VAR" }` or `{ file = "path" }`.
    #[serde(default)]
    pub properties: BTreeMap<String, Setting>,
    #[serde(default)]
    pub delivery: Delivery,
}

/// Syslog (RFC 5424) to a SIEM's collector.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    pub name: Option<String>,
    /// `host:port` of the collector (514 for TCP and UDP, 6514 for TLS, by convention).
    pub address: String,
    #[serde(default)]
    pub transport: SyslogTransport,
    #[serde(default)]
    pub format: SyslogFormat,
    /// The syslog facility, 0-23 (default 10, authpriv: security messages).
    #[serde(default = "default_facility")]
    pub facility: u8,
    /// HOSTNAME of the messages (default: this machine's name).
    pub hostname: Option<String>,
    #[serde(default)]
    pub tls: SyslogTls,
    #[serde(default)]
    pub delivery: Delivery,
}

fn default_facility() -> u8 {
    10
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyslogTransport {
    #[default]
    Tcp,
    Tls,
    Udp,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyslogFormat {
    /// The OCSF finding as one line of JSON.
    #[default]
    Json,
    /// An ArcSight Common Event Format line.
    Cef,
}

/// TLS for syslog: the platform's roots plus a CA file; the name checked in the certificate.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogTls {
    pub ca_file: Option<PathBuf>,
    /// The name the certificate must carry (default: the host of `address`).
    pub server_name: Option<String>,
}
