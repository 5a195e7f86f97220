//! The sections of Ocelot's config file that the lake and its SQL service read: `[lake]`
//! (where the lake lives and how it is kept) and `[sql]` (the Flight SQL server), with the
//! loader every section shares: a TOML file, every key also settable from the environment
//! (`OCELOT_LAKE__PATH` sets `lake.path`), unknown keys refused, and errors that name the key
//! and what to write instead. `ocelot run`'s whole config (ocelot-pipeline) embeds these.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// The keys `ocelot serve` reads (the file's other sections are not its business).
const SERVE_KEYS: &[&str] = &["lake", "sql"];

/// `[sql]`: the Arrow Flight SQL server `ocelot serve` runs over the lake (docs/sql.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlServer {
    /// `host:port` to listen on.
    #[serde(default = "default_sql_listen")]
    pub listen: String,
    /// Bearer tokens that may query (`Authorization: Bearer <token>`); values or `{ env }`/`{ file }`.
    #[serde(default)]
    pub tokens: Vec<Setting>,
    /// Basic-auth users: name = password (or `{ env }`/`{ file }`). A Flight handshake with
    /// them returns a bearer token for the session.
    #[serde(default)]
    pub users: BTreeMap<String, Setting>,
    /// Queries without credentials. Off unless set: the lake holds security telemetry.
    #[serde(default)]
    pub allow_anonymous: bool,
    /// TLS: PEM certificate chain and private key. Without it the server speaks plain gRPC.
    pub tls: Option<SqlTls>,
    /// A query running longer is cancelled.
    #[serde(default = "default_query_timeout")]
    pub query_timeout_secs: u64,
    /// Memory one query may hold (DataFusion memory pool); over it the query fails, not the server.
    #[serde(default = "default_query_memory")]
    pub query_memory_mb: usize,
    /// Queries run at once; more wait. With `query_memory_mb` it bounds the server's memory.
    #[serde(default = "default_concurrent")]
    pub max_concurrent_queries: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlTls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn default_sql_listen() -> String {
    "127.0.0.1:50051".into()
}

fn default_query_timeout() -> u64 {
    300
}

fn default_query_memory() -> usize {
    2048
}

fn default_concurrent() -> usize {
    4
}

impl SqlServer {
    /// The checks `ocelot serve` and `ocelot run --check` make: errors name the key and the fix.
    pub fn check(&self) -> Result<(), String> {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!("sql.listen: `{}` is not an address; write e.g. \"127.0.0.1:50051\"", self.listen));
        }
        if self.tokens.is_empty() && self.users.is_empty() && !self.allow_anonymous {
            return Err("sql: no credentials; add tokens = [...] or [sql.users], or set allow_anonymous = true to serve without authentication".into());
        }
        for (i, t) in self.tokens.iter().enumerate() {
            if t.resolve(&format!("sql.tokens[{i}]"))?.trim().is_empty() {
                return Err(format!("sql.tokens[{i}]: empty; a token must not be empty"));
            }
        }
        for (user, pw) in &self.users {
            pw.resolve(&format!("sql.users.{user}"))?;
        }
        if let Some(tls) = &self.tls {
            for (key, path) in [("sql.tls.cert", &tls.cert), ("sql.tls.key", &tls.key)] {
                if !path.is_file() {
                    return Err(format!("{key}: {} is not a file; give a PEM file", path.display()));
                }
            }
        }
        for (key, v) in [("sql.query_timeout_secs", self.query_timeout_secs), ("sql.query_memory_mb", self.query_memory_mb as u64), ("sql.max_concurrent_queries", self.max_concurrent_queries as u64)]
        {
            if v == 0 {
                return Err(format!("{key}: must be greater than 0"));
            }
        }
        Ok(())
    }
}

/// What `ocelot serve` reads: `[lake]` and `[sql]` of the same file `ocelot run` reads (its
/// other sections are not needed, so a lake copied elsewhere can be served alone).
#[derive(Debug, Clone, Deserialize)]
pub struct ServeConfig {
    pub lake: Lake,
    pub sql: SqlServer,
}

impl ServeConfig {
    pub fn load(path: &Path) -> Result<ServeConfig, String> {
        Self::checked(read_file(path, SERVE_KEYS)?)
    }

    pub fn from_toml(text: &str) -> Result<ServeConfig, String> {
        Self::checked(read_text(text, SERVE_KEYS)?)
    }

    fn checked(cfg: ServeConfig) -> Result<ServeConfig, String> {
        cfg.lake.storage()?;
        cfg.sql.check()?;
        Ok(cfg)
    }
}

/// The file, then the environment over it (variables naming one of `top_keys`), as `T`;
/// errors name the keys.
pub fn read_file<T: serde::de::DeserializeOwned>(path: &Path, top_keys: &[&str]) -> Result<T, String> {
    if !path.exists() {
        return Err(format!("{}: no such config file (see examples/ocelot.toml and docs/config.md)", path.display()));
    }
    extract(Figment::new().merge(Toml::file(path)), &path.display().to_string(), top_keys)
}

/// TOML text (and the environment), for tests and `--check`.
pub fn read_text<T: serde::de::DeserializeOwned>(text: &str, top_keys: &[&str]) -> Result<T, String> {
    extract(Figment::new().merge(Toml::string(text)), "config", top_keys)
}

fn extract<T: serde::de::DeserializeOwned>(f: Figment, name: &str, top_keys: &[&str]) -> Result<T, String> {
    f.merge(Serialized::defaults(BTreeMap::<String, String>::new())).merge(env_keys(top_keys)).extract().map_err(|e| {
        let errs: Vec<String> = e.into_iter().map(|e| describe(&e)).collect();
        format!("{name}: {}", errs.join("; "))
    })
}

/// A secret or a librdkafka property value: inline, or read at start-up from the environment
/// or a file.
#[derive(Clone, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Setting {
    Value(SettingValue),
    Env { env: String },
    File { file: PathBuf },
}

/// TOML lets people write `true` or `5000` for librdkafka properties; all become strings.
#[derive(Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SettingValue {
    Str(String),
    Int(i64),
    Bool(bool),
}

impl std::fmt::Debug for Setting {
    /// Never prints a value: settings hold secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Setting::Value(_) => write!(f, "<value>"),
            Setting::Env { env } => write!(f, "<from env {env}>"),
            Setting::File { file } => write!(f, "<from file {}>", file.display()),
        }
    }
}

impl Setting {
    /// The value, read from where it lives. Errors name `key` (the setting's whole path) and the source.
    pub fn resolve(&self, key: &str) -> Result<String, String> {
        match self {
            Setting::Value(SettingValue::Str(s)) => Ok(s.clone()),
            Setting::Value(SettingValue::Int(i)) => Ok(i.to_string()),
            Setting::Value(SettingValue::Bool(b)) => Ok(b.to_string()),
            Setting::Env { env } => std::env::var(env).map_err(|_| format!("{key}: environment variable {env} is not set; set it, or give the value another way")),
            Setting::File { file } => std::fs::read_to_string(file).map(|s| s.trim_end_matches(['\n', '\r']).to_string()).map_err(|e| format!("{key}: cannot read {}: {e}", file.display())),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lake {
    /// A directory, a `file://` URL, or `s3://BUCKET/PREFIX` (credentials from the AWS chain:
    /// environment, web identity, ECS container or EC2 instance role; docs/lake.md).
    pub path: String,
    /// The bucket's region, for an `s3://` lake (else `AWS_REGION`).
    #[serde(default)]
    pub region: Option<String>,
    /// An S3-compatible endpoint for an `s3://` lake (else `AWS_ENDPOINT_URL`, else AWS's).
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default = "default_zstd")]
    pub zstd_level: i32,
    /// How often the background compaction merges the small files of each partition (the
    /// runtime writes one per batch and partition); 0 turns it off (then run
    /// `ocelot lake compact` yourself).
    #[serde(default = "default_compact_interval")]
    pub compact_interval_secs: u64,
    /// The size compaction aims at, in MiB (Athena and Security Lake advise 128 MB to 1 GB).
    #[serde(default = "default_target_file_mb")]
    pub target_file_mb: u64,
    /// How long the files a compaction replaced stay on disk, so queries planned before the
    /// swap (`ocelot serve`, at most `sql.query_timeout_secs`) can still read them.
    #[serde(default = "default_retain_replaced")]
    pub retain_replaced_secs: u64,
}

fn default_zstd() -> i32 {
    3
}

fn default_compact_interval() -> u64 {
    300
}

fn default_target_file_mb() -> u64 {
    192
}

fn default_retain_replaced() -> u64 {
    360
}

impl Lake {
    /// Where the lake lives (checked, not yet touched).
    pub fn storage(&self) -> Result<crate::Storage, String> {
        if self.path.is_empty() {
            return Err("lake.path: empty; give the lake directory (path = \"/var/lib/ocelot/lake\") or s3://BUCKET/PREFIX".into());
        }
        if (self.region.is_some() || self.endpoint.is_some()) && !self.path.starts_with("s3://") {
            return Err("lake.region / lake.endpoint: only for an s3:// lake.path; remove them for a local lake".into());
        }
        let s3 = crate::S3Options { region: self.region.clone(), endpoint: self.endpoint.clone() };
        crate::Storage::parse(&self.path, &s3).map_err(|e| format!("lake.path: {e}"))
    }
}

/// `OCELOT_LAKE__PATH=...`: the environment over the file, for the config's own keys.
fn env_keys(top_keys: &[&str]) -> Env {
    let top_keys: Vec<String> = top_keys.iter().map(|k| k.to_string()).collect();
    Env::prefixed("OCELOT_").split("__").filter(move |k| {
        let k = k.as_str().to_ascii_lowercase();
        top_keys.iter().any(|t| k == *t || k.starts_with(&format!("{t}.")))
    })
}

/// A figment error as "KEY: what is wrong".
fn describe(e: &figment::Error) -> String {
    let key = e.path.join(".");
    let hint = match &e.kind {
        figment::error::Kind::UnknownField(f, expected) => format!("unknown key `{f}`; expected one of: {}", expected.join(", ")),
        figment::error::Kind::MissingField(f) => return format!("{}: missing; add it (see docs/config.md)", if key.is_empty() { f.to_string() } else { format!("{key}.{f}") }),
        other => other.to_string(),
    };
    if key.is_empty() {
        hint
    } else {
        format!("{key}: {hint}")
    }
}
