//! `ocelot`: the command line. Everything it does lives in the library crates; this file only
//! parses arguments, wires the pieces and prints.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use ocelot_detectors::LoadOptions;
use ocelot_lake::{DeadLetterStore, LakeWriter, Storage, WriterOptions};
use ocelot_normalize::decode::Limits;
use ocelot_normalize::{self as normalize, classes};
use ocelot_pipeline::detect::{load_rules, Detect, EngineSpec, TimeRange};
use ocelot_pipeline::ingest::{expand_inputs, Ingest, Output, Summary};
use ocelot_pipeline::{generate, runtime};

mod commands;
mod sql;
use sql::SqlFormat;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "ocelot", version, about = "Streaming OCSF normalizer and detector for cloud and AI-agent telemetry", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Normalize files, directories or stdin into OCSF: a Parquet lake, or OCSF JSON lines.
    ///
    /// The input shape is detected: JSON Lines, one or many (pretty-printed) JSON records,
    /// CloudTrail's S3 delivery files ({"Records":[...]}, plain or .gz), EventBridge events and
    /// CloudWatch Logs subscription payloads (plain or gzip). Input that cannot be normalized
    /// goes to the dead-letter store (LAKE/_dead_letter/) with the reason and its origin.
    Normalize {
        /// Files or directories (read recursively); `-` reads stdin.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Lake directory to write (Parquet, Security Lake layout). Required for parquet.
        #[arg(long)]
        lake: Option<PathBuf>,
        /// parquet: write the lake; jsonl: OCSF JSON lines to stdout (dead letters to the lake if
        /// given, else to stderr).
        #[arg(long, value_enum, default_value = "parquet")]
        format: Format,
        /// Source kind of the input; `auto` tells the sources apart record by record (an
        /// unrecognized record is dead-lettered).
        #[arg(long, default_value = "auto", value_parser = clap::builder::PossibleValuesParser::new(std::iter::once("auto").chain(normalize::SOURCE_KINDS.iter().copied())))]
        source: String,
        /// Exit with status 3 if anything was dead-lettered.
        #[arg(long)]
        strict: bool,
        /// A TOML file with `[[agents]]` (an `ocelot run` config will do): AI agents to
        /// recognize on CloudTrail records, before the shipped ones (docs/agents.md).
        #[arg(long)]
        agents: Option<PathBuf>,
        /// A single record larger than this (bytes) is dead-lettered.
        #[arg(long, default_value_t = Limits::default().max_event_bytes)]
        max_event_bytes: usize,
        /// A gzip input that expands past this (bytes) is dead-lettered whole (gzip bombs).
        #[arg(long, default_value_t = Limits::default().max_decompressed_bytes)]
        max_decompressed_bytes: usize,
    },
    /// Run SQL over the lake (DataFusion); with no query, an interactive shell.
    ///
    /// Tables: api_activity, authentication, account_change, http_activity, detection_finding,
    /// compliance_finding, vulnerability_finding, findings (the engine's), and the view
    /// agent_mutations (which AI agent changed what, approved by whom). Nested OCSF fields read
    /// as `actor.user.name`, at any depth, in SELECT, WHERE, GROUP BY and ORDER BY (or
    /// `actor['user']['name']`), and an unaliased one is the column `name`, as in Athena, so
    /// queries written for Amazon Security Lake read the same; the partitions are the columns
    /// region, accountId and eventDay (a filter on them skips the other directories). The SQL
    /// dialect is DuckDB's. docs/sql.md.
    ///
    /// The shell: statements end with `;` and may span lines; \d lists tables and views, \d NAME
    /// describes one, \timing, \format, \o FILE, \q. History is kept in ~/.ocelot_sql_history
    /// (OCELOT_SQL_HISTORY). With stdin not a terminal it runs the statements read from stdin
    /// and exits 1 if any failed.
    Sql {
        /// The query, e.g. "SELECT api.operation, count(*) FROM api_activity GROUP BY 1";
        /// `@FILE` reads it from a file. None: the shell.
        query: Option<String>,
        #[arg(long)]
        lake: PathBuf,
        #[arg(long, value_enum, default_value = "table")]
        format: SqlFormat,
        /// Write the result to this file instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Consume Kafka topics as a long-running service: normalize into the lake (and optionally
    /// OCSF JSON to Kafka), at-least-once.
    ///
    /// Offsets are committed only once every event at or below them is durable: in a Parquet
    /// file renamed into place, acknowledged by Kafka, or in the dead-letter topic or store.
    /// Serves /metrics (Prometheus), /healthz and /readyz. Stops on SIGTERM/SIGINT: flushes and
    /// commits within `shutdown_timeout_secs` and exits 0 (1 if not everything was durable in
    /// time: that part is read again by the next run). Logs are JSON when stderr is not a
    /// terminal. The config is TOML (docs/config.md, examples/ocelot.toml); every key can be
    /// set from the environment, e.g. OCELOT_KAFKA__BROKERS=host:9092.
    Run {
        #[arg(long, short, env = "OCELOT_CONFIG")]
        config: PathBuf,
        /// Check the config (and read its secrets) and exit.
        #[arg(long)]
        check: bool,
    },
    /// Serve the lake over Arrow Flight SQL, for BI tools, JDBC/ODBC and ADBC clients.
    ///
    /// Reads `[lake]` and `[sql]` of the config (the same file `ocelot run` reads; its other
    /// sections are not needed): where to listen, bearer tokens and basic-auth users (no
    /// anonymous access unless `allow_anonymous = true`), optional TLS, and per-query limits
    /// (`query_timeout_secs`, `query_memory_mb`, `max_concurrent_queries`). Read-only: SELECT,
    /// EXPLAIN, DESCRIBE and SHOW run; DDL (CREATE EXTERNAL TABLE...), DML (INSERT, COPY) and SET
    /// are refused. The same tables, views and functions as `ocelot sql`. Each query is logged
    /// with its user, rows and time. Stops on SIGTERM/SIGINT. docs/sql.md.
    Serve {
        #[arg(long, short, env = "OCELOT_CONFIG")]
        config: PathBuf,
        /// Check `[lake]` and `[sql]` (and read the secrets) and exit.
        #[arg(long)]
        check: bool,
    },
    /// Run the detection rules over files or the lake; findings as OCSF Detection Finding JSON lines.
    ///
    /// The same engine `ocelot run` uses: the shipped SigmaHQ AWS rules (on the OCSF rows the
    /// CloudTrail normalizer writes, through a documented field mapping), SQL rules over
    /// event-time windows, pattern rules over AI-agent tool calls, and the AI-agent rule pack
    /// (each CloudTrail change linked to the agent tool call that made it and its approval).
    /// Hits of one rule by one principal within --suppress-minutes update one finding, whose uid
    /// is derived from (rule, group, window): a replay gives the same uids. Files are normalized
    /// first (as `ocelot normalize`; bad input is dead-lettered to stderr); with --lake the lake
    /// is replayed. Windows stay open to the end of the input, so file order does not matter.
    /// docs/detection.md.
    Detect {
        /// Files or directories of raw events (any source `normalize` reads); `-` reads stdin.
        inputs: Vec<PathBuf>,
        /// Replay this lake instead of reading files.
        #[arg(long, conflicts_with = "inputs")]
        lake: Option<PathBuf>,
        /// A directory of rules instead of the shipped ones (Sigma .yml, SQL .sql, pattern .toml;
        /// recursively).
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Only events at or after this time (RFC 3339, or epoch milliseconds).
        #[arg(long, value_parser = parse_time_arg)]
        since: Option<i64>,
        /// Only events before this time (RFC 3339, or epoch milliseconds).
        #[arg(long, value_parser = parse_time_arg)]
        until: Option<i64>,
        /// Write findings here (OCSF JSON lines) instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Hits of one rule by one principal within this many minutes update one finding.
        #[arg(long, default_value_t = 60)]
        suppress_minutes: u32,
        /// A TOML file with `[[agents]]` (an `ocelot run` config will do): AI agents to
        /// recognize (as `normalize --agents`) and their declared scope, which the behaviour
        /// rules check (also with --lake).
        #[arg(long)]
        agents: Option<PathBuf>,
    },
    /// The detection rules: list them, or validate a rule directory.
    Rules {
        #[command(subcommand)]
        action: RulesAction,
    },
    /// Check OCSF records by the schema's own rules; exit 1 if any is invalid.
    ///
    /// Reads OCSF JSON lines (`-` for stdin), Parquet files, or a lake directory (every Parquet
    /// file under it; dead letters are not OCSF and are left out). Each record is checked
    /// against the OCSF 1.8.0 class its class_uid names: required attributes, types, enum
    /// values, `type_uid`, the classes' and objects' constraints (at_least_one, just_one) at
    /// every depth, attributes that only a profile defines (cloud, actor of a finding, any
    /// *_dt...) only where metadata.profiles lists the profile, and observables naming
    /// attributes the record carries. Prints valid/total per class and the first violations
    /// with their file, line or row, and the attribute path.
    Validate {
        /// OCSF JSON lines files, Parquet files or lake directories.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
    /// Send findings again from the lake to the `[[forward]]` targets of a config file: the
    /// latest version of every finding in the lake's `findings` table whose time is in the
    /// range (after a target's outage, or to fill a new target). The finding uid is each
    /// target's idempotency key, so a target that already has a finding updates it. Exit 3 if
    /// a delivery was dead-lettered (in the lake's _dead_letter/).
    Forward {
        /// The lake to read the findings from (a directory or s3://BUCKET/PREFIX).
        #[arg(long = "from-lake")]
        from_lake: PathBuf,
        /// The config file whose [[forward]] tables name the targets (its other sections are
        /// not read).
        #[arg(long)]
        config: PathBuf,
        /// Only findings at or after this time (RFC 3339, or epoch milliseconds).
        #[arg(long, value_parser = parse_time_arg)]
        since: Option<i64>,
        /// Only findings before this time (RFC 3339, or epoch milliseconds).
        #[arg(long, value_parser = parse_time_arg)]
        until: Option<i64>,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The lake's upkeep and tamper evidence: compact small files, verify the manifest.
    Lake {
        #[command(subcommand)]
        action: LakeAction,
    },
    /// Print an OCSF class: its attributes and the Arrow schema Ocelot writes for it.
    Schema {
        /// A class name (api_activity) or class_uid (6003).
        class: String,
    },
    /// Generate realistic test data from varied real samples.
    Gen {
        #[command(subcommand)]
        kind: GenKind,
    },
    /// Show the product on bundled data (no outside service needed).
    ///
    /// Normalizes the sample CloudTrail (every envelope shape, a few broken inputs) into a lake,
    /// then queries it with SQL (also over Flight SQL), runs the detection rules, forwards the
    /// findings to local receivers and lists the dead letters.
    Demo {
        /// The bundled samples.
        #[arg(long, default_value = "samples")]
        samples: PathBuf,
        /// Where to write the demo lake (replaced if it exists and holds only a lake).
        #[arg(long, default_value = "lake-demo")]
        lake: PathBuf,
    },
}

#[derive(Subcommand)]
enum RulesAction {
    /// List the rules with id, kind, severity, ATT&CK techniques and title.
    List {
        /// A rule directory instead of the shipped rules.
        #[arg(long)]
        rules: Option<PathBuf>,
    },
    /// Load every rule; report the ones that do not load and why, and the OCSF columns each
    /// rule reads. Exits 1 if any rule was rejected.
    Validate {
        #[arg(long)]
        rules: Option<PathBuf>,
    },
    /// Run each rule's own test cases (`-- fires:` / `-- quiet:` event files): a must-fire case
    /// must give a finding of that rule, a must-not-fire case none. Exits 1 on any failure.
    Test {
        /// The rule directory whose cases to run (its case paths are relative to it).
        #[arg(long, default_value = "detectors/rules")]
        rules: PathBuf,
    },
}

#[derive(Subcommand)]
enum GenKind {
    /// CloudTrail JSON Lines on stdout (or --output).
    ///
    /// Without --accounts/--regions/--days: 3 accounts, 5 regions, events 0-40 ms apart. With
    /// any of them, an organization trail's shape: that many 12-digit accounts and real
    /// regions, the events spread evenly over the days (60 accounts x 4 regions is ~240
    /// partitions a day, as an org trail or Security Lake has).
    Cloudtrail {
        #[arg(long, default_value_t = 10_000)]
        events: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Time of the first event (RFC 3339).
        #[arg(long, default_value = "2026-11-01T00:00:00Z")]
        start: String,
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Accounts of the organization (1 to 100000).
        #[arg(long)]
        accounts: Option<usize>,
        /// Regions, the first N of the commercial regions (1 to 30).
        #[arg(long)]
        regions: Option<usize>,
        /// Days the events spread over.
        #[arg(long)]
        days: Option<u32>,
    },
}

#[derive(Subcommand)]
enum LakeAction {
    /// Merge each partition's small files (the streaming writer makes one per batch and
    /// partition) into files of --target-mb, swapped in by one manifest entry: readers see the
    /// old files or the new, never both; kill -9 at any point loses and duplicates nothing.
    /// `ocelot run` does this in the background (lake.compact_interval_secs).
    Compact {
        /// The lake: a directory or s3://BUCKET/PREFIX.
        lake: PathBuf,
        /// Size of the files to make, in MiB.
        #[arg(long, default_value_t = 192)]
        target_mb: u64,
        /// Keep the replaced files this long (for queries under way in `ocelot serve`); by
        /// default they are deleted at once.
        #[arg(long, default_value_t = 0)]
        retain_secs: u64,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Export to Amazon Security Lake as custom sources: one source per OCSF class
    /// (`<prefix>-<class_uid>`), written under DEST/ext/<source>/region=/accountId=/eventDay=/ as
    /// OCSF 1.1.0 (what 1.1.0 lacks goes to `unmapped`; every record checked by the 1.1.0
    /// validator), Parquet with zstd, sorted by time, objects under 256 MB. Each partition and
    /// day is written whole under names of its own, so exporting a day again replaces it (run
    /// it daily). A record 1.1.0 refuses even so is dead-lettered to LAKE/_dead_letter/ with
    /// its problems (exit 3). docs/lake.md says how to register the custom sources.
    Export {
        /// The lake: a directory or s3://BUCKET/PREFIX.
        lake: PathBuf,
        /// The Security Lake bucket (s3://aws-security-data-lake-REGION-ID) or a directory.
        dest: PathBuf,
        /// Custom source names are PREFIX-CLASS_UID (ocelot-6003 for API Activity, ...): at most
        /// 15 characters, as Security Lake takes source names of at most 20.
        #[arg(long, default_value = "ocelot")]
        source_prefix: String,
        /// First day to export (YYYYMMDD).
        #[arg(long)]
        since: Option<String>,
        /// Last day to export (YYYYMMDD).
        #[arg(long)]
        until: Option<String>,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check the lake against its manifest: the hash chain from the first entry (an entry
    /// edited, removed or reordered breaks it), and every file's SHA-256 (a file changed,
    /// deleted or added outside Ocelot is reported). Exit 1 on any problem.
    Verify {
        /// The lake: a directory or s3://BUCKET/PREFIX.
        lake: PathBuf,
        /// The head hash recorded at an earlier verify (kept outside the lake): a rewritten
        /// chain with a different head is reported.
        #[arg(long)]
        expect_head: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Format {
    Parquet,
    Jsonl,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A service logs what it does (info); the one-shot commands only warnings.
    let default_level = if matches!(cli.command, Command::Run { .. } | Command::Serve { check: false, .. }) { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("OCELOT_LOG").unwrap_or_else(|_| default_level.into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        logs.init();
    } else {
        logs.json().flatten_event(true).with_current_span(false).init();
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Normalize { inputs, lake, format, source, strict, agents, max_event_bytes, max_decompressed_bytes } => {
            let registry = match &agents {
                Some(f) => normalize::agents::AgentsFile::load(f).and_then(|a| a.registry()).map_err(anyhow::Error::msg)?,
                None => normalize::agents::Registry::builtin(),
            };
            let summary = normalize_cmd(&inputs, lake.as_deref(), format, &source, std::sync::Arc::new(registry), Limits { max_event_bytes, max_decompressed_bytes })?;
            print_summary(&summary, lake.as_deref());
            Ok(if strict && summary.dead_lettered > 0 { ExitCode::from(3) } else { ExitCode::SUCCESS })
        }
        Command::Sql { query, lake, format, output } => {
            let printer = sql::Printer { format, output };
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async {
                let ctx = sql::session(&lake).await?;
                let ok = match query {
                    None => sql::shell(&ctx, printer).await?,
                    Some(q) => {
                        let q = match q.strip_prefix('@') {
                            Some(file) => std::fs::read_to_string(file).with_context(|| format!("reading the query from {file}"))?,
                            None => q,
                        };
                        printer.print(&sql::run_query(&ctx, &q).await?)?;
                        true
                    }
                };
                Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
            })
        }
        Command::Run { config, check } => {
            let cfg = runtime::config::Config::load(&config).map_err(anyhow::Error::msg)?;
            if check {
                let topics: Vec<String> = cfg.inputs.iter().map(|i| format!("{} ({})", i.topic, i.source)).collect();
                println!("{}: ok: brokers {}, group {}, inputs {}, lake {}", config.display(), cfg.kafka.brokers, cfg.kafka.group_id, topics.join(", "), cfg.lake.path);
                return Ok(ExitCode::SUCCESS);
            }
            match runtime::run(cfg).map_err(anyhow::Error::msg)? {
                runtime::Exit::Clean => Ok(ExitCode::SUCCESS),
                runtime::Exit::Incomplete { batches } => {
                    eprintln!("error: {batches} batch(es) were not durable by the shutdown deadline; their offsets are not committed and the next run reads them again");
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Serve { config, check } => serve_cmd(&config, check),
        Command::Validate { inputs } => {
            let report = commands::validate::run(&inputs)?;
            report.print(&mut std::io::stdout().lock())?;
            Ok(if report.invalid > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        Command::Schema { class } => {
            schema_cmd(&class)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Forward { from_lake, config, since, until, json } => commands::forward::from_lake_cmd(&lake_arg(&from_lake)?, &config, since, until, json),
        Command::Lake { action: LakeAction::Compact { lake, target_mb, retain_secs, json } } => commands::lake::compact_cmd(&lake_arg(&lake)?, target_mb, retain_secs, json),
        Command::Lake { action: LakeAction::Export { lake, dest, source_prefix, since, until, json } } => {
            commands::lake::export_cmd(&lake_arg(&lake)?, &lake_arg(&dest)?, source_prefix, since, until, json)
        }
        Command::Lake { action: LakeAction::Verify { lake, expect_head, json } } => commands::lake::verify_cmd(&lake_arg(&lake)?, expect_head.as_deref(), json),
        Command::Gen { kind: GenKind::Cloudtrail { events, seed, start, output, accounts, regions, days } } => {
            let start = normalize::time::parse_time_ms(&start).with_context(|| format!("--start {start}: expected an RFC 3339 time such as 2026-11-01T00:00:00Z"))?;
            let mut out: Box<dyn Write> = match &output {
                Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?)),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            if accounts.is_some() || regions.is_some() || days.is_some() {
                let shape = generate::Shape { accounts: accounts.unwrap_or(60), regions: regions.unwrap_or(4), days: days.unwrap_or(1) };
                shape.check().map_err(anyhow::Error::msg)?;
                generate::cloudtrail_org(events, seed, start, shape, &mut out)?;
            } else {
                generate::cloudtrail(events, seed, start, &mut out)?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { samples, lake } => demo(&samples, &lake),
        Command::Detect { inputs, lake, rules, since, until, out, suppress_minutes, agents } => {
            let detect = detect_cmd(&inputs, lake.as_deref(), rules.as_deref(), TimeRange { since, until }, suppress_minutes, agents.as_deref())?;
            let mut sink: Box<dyn Write> = match &out {
                Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p).with_context(|| format!("--out {}", p.display()))?)),
                None => Box::new(std::io::BufWriter::new(std::io::stdout())),
            };
            detect.write_jsonl(&mut sink)?;
            print_detect_summary(&detect);
            Ok(ExitCode::SUCCESS)
        }
        Command::Rules { action } => rules_cmd(action),
    }
}

/// A `--lake` argument: a directory, or `s3://BUCKET/PREFIX` (region, endpoint and credentials
/// from the AWS environment: AWS_REGION, AWS_ENDPOINT_URL, the credential chain).
pub fn lake_arg(p: &Path) -> Result<Storage> {
    let s = p.to_str().with_context(|| format!("--lake {}: not UTF-8", p.display()))?;
    Storage::parse(s, &Default::default()).map_err(|e| anyhow::anyhow!("--lake {e}"))
}

fn serve_cmd(config: &Path, check: bool) -> Result<ExitCode> {
    let cfg = ocelot_lake::config::ServeConfig::load(config).map_err(anyhow::Error::msg)?;
    let lake = cfg.lake.storage().map_err(anyhow::Error::msg)?;
    let scheme = if cfg.sql.tls.is_some() { "grpc+tls" } else { "grpc" };
    if check {
        println!("{}: ok: Flight SQL on {scheme}://{} over the lake {lake}", config.display(), cfg.sql.listen);
        return Ok(ExitCode::SUCCESS);
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(&cfg.sql.listen).await.with_context(|| format!("sql.listen: cannot listen on {}", cfg.sql.listen))?;
        tracing::info!(url = %format!("{scheme}://{}", listener.local_addr()?), %lake, "Flight SQL serving");
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
            tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
            tracing::info!("Flight SQL stopping");
        };
        ocelot_server::serve(&lake, &cfg.sql, listener, shutdown).await.map_err(anyhow::Error::msg)
    })?;
    Ok(ExitCode::SUCCESS)
}

fn normalize_cmd(inputs: &[PathBuf], lake: Option<&Path>, format: Format, source: &str, agents: std::sync::Arc<normalize::agents::Registry>, limits: Limits) -> Result<Summary> {
    let files = expand_inputs(inputs)?;
    let normalizer = normalize::with_agents(source, agents).map_err(anyhow::Error::msg)?;
    let (output, dead) = match (format, lake) {
        (Format::Parquet, Some(l)) => {
            let lake = lake_arg(l)?;
            (Output::Lake(Box::new(LakeWriter::new(lake.clone(), WriterOptions::default()))), DeadLetterStore::new(lake))
        }
        (Format::Parquet, None) => bail!("--lake DIR is required with --format parquet (or use --format jsonl to write OCSF JSON to stdout)"),
        (Format::Jsonl, l) => {
            let dead = match l {
                Some(l) => DeadLetterStore::new(lake_arg(l)?),
                None => DeadLetterStore::to_stderr(),
            };
            (Output::Jsonl(Box::new(std::io::BufWriter::new(std::io::stdout()))), dead)
        }
    };
    let mut ingest = Ingest::new(normalizer, output, dead, limits);
    let started = Instant::now();
    let total: u64 = files.iter().filter(|p| p.as_os_str() != "-").filter_map(|p| p.metadata().ok()).map(|m| m.len()).sum();
    let bar = progress_bar(total);
    for f in &files {
        if f.as_os_str() == "-" {
            ingest.stdin(std::io::stdin().lock())?;
        } else {
            ingest.file(f).with_context(|| format!("reading {}", f.display()))?;
            bar.inc(f.metadata().map(|m| m.len()).unwrap_or(0));
        }
    }
    bar.finish_and_clear();
    Ok(ingest.finish(started)?)
}

fn parse_time_arg(s: &str) -> Result<i64, String> {
    s.parse::<i64>().ok().or_else(|| normalize::time::parse_time_ms(s)).ok_or_else(|| format!("`{s}` is not RFC 3339 (2026-11-01T00:00:00Z) nor epoch milliseconds"))
}

fn detect_cmd(inputs: &[PathBuf], lake: Option<&Path>, rules: Option<&Path>, range: TimeRange, suppress_minutes: u32, agents: Option<&Path>) -> Result<Detect> {
    let agents = match agents {
        Some(p) => Some(normalize::agents::AgentsFile::load(p).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let spec = EngineSpec {
        rules: rules.map(Path::to_path_buf),
        agents: agents.as_ref().map(|a| a.agents.clone()).unwrap_or_default(),
        suppress_minutes,
        ..EngineSpec::shipped(ocelot_pipeline::detect::Mode::Replay)
    };
    let mut detect = Detect::new(spec.build().map_err(anyhow::Error::msg)?, range);
    match (lake, inputs.is_empty()) {
        (Some(l), _) => detect.replay_lake(&lake_arg(l)?).with_context(|| format!("replaying {}", l.display()))?,
        (None, true) => bail!("give files or directories to read, or --lake DIR to replay a lake"),
        (None, false) => {
            let registry = match &agents {
                Some(a) => a.registry().map_err(anyhow::Error::msg)?,
                None => normalize::agents::Registry::builtin(),
            };
            let normalizer = normalize::with_agents("auto", std::sync::Arc::new(registry)).map_err(anyhow::Error::msg)?;
            let mut ingest = Ingest::new(normalizer, Output::Detect(Box::new(detect)), DeadLetterStore::to_stderr(), Limits::default());
            for f in expand_inputs(inputs)? {
                if f.as_os_str() == "-" {
                    ingest.stdin(std::io::stdin().lock())?;
                } else {
                    ingest.file(&f).with_context(|| format!("reading {}", f.display()))?;
                }
            }
            let summary = ingest.finish(Instant::now())?;
            if summary.dead_lettered > 0 {
                eprintln!("{} inputs dead-lettered (reasons above)", summary.dead_lettered);
            }
            let Output::Detect(d) = ingest.output else { unreachable!("built with Output::Detect above") };
            detect = *d;
            detect.finish();
        }
    }
    Ok(detect)
}

fn print_detect_summary(d: &Detect) {
    let findings = d.findings();
    let s = d.engine.stats();
    let rules = d.engine.rule_count();
    let e = d.engine.rejected().len();
    eprintln!("{} events, {} Sigma rule hits, {} findings ({rules} rules loaded, {e} not: `ocelot rules validate` says why)", d.events, s.hits, findings.len());
    let mut per_rule: std::collections::BTreeMap<(&str, &str), (usize, u64)> = Default::default();
    for f in &findings {
        let e = per_rule.entry((f.rule.severity.name(), f.rule.title.as_str())).or_default();
        e.0 += 1;
        e.1 += f.count;
    }
    for ((sev, title), (n, count)) in per_rule {
        eprintln!("  {sev:<13} {n:>4} findings {count:>6} events  {title}");
    }
}

fn rules_cmd(action: RulesAction) -> Result<ExitCode> {
    match action {
        RulesAction::List { rules } => {
            let set = load_rules(rules.as_deref(), &LoadOptions::default()).map_err(anyhow::Error::msg)?;
            let (sigma, sql, patterns, behaviour) = (&set.sigma, set.sql.as_ref().expect("loaded"), set.patterns.as_ref().expect("loaded"), set.behaviour.as_ref().expect("loaded"));
            let mut out = std::io::stdout().lock();
            writeln!(out, "{:<40} {:<11} {:<13} {:<22} title", "id", "kind", "severity", "attack")?;
            let row = |out: &mut std::io::StdoutLock, m: &ocelot_detectors::RuleMeta| {
                let attack: Vec<&str> = m.attacks.iter().map(|a| a.technique.as_str()).collect();
                writeln!(out, "{:<40} {:<11} {:<13} {:<22} {}", m.id, m.kind, m.severity.name(), attack.join(","), m.title)
            };
            for r in &sql.rules {
                row(&mut out, &r.meta)?;
            }
            for r in &patterns.rules {
                row(&mut out, &r.meta)?;
            }
            for r in &behaviour.rules {
                row(&mut out, &r.meta)?;
            }
            for r in &sigma.rules {
                row(&mut out, &r.meta)?;
            }
            for c in sigma.correlations.iter().filter(|c| c.rules.len() > 1 || sigma.rules[c.rules[0]].meta.id != c.meta.id) {
                row(&mut out, &c.meta)?;
            }
            let rejected = set.rejected().len();
            writeln!(
                out,
                "{} SQL rules, {} pattern rules, {} behaviour rules, {} Sigma rules, {} Sigma correlations; {rejected} not loaded (ocelot rules validate says why)",
                sql.rules.len(),
                patterns.rules.len(),
                behaviour.rules.len(),
                sigma.rules.len(),
                sigma.correlations.len()
            )?;
            Ok(ExitCode::SUCCESS)
        }
        RulesAction::Validate { rules } => {
            let set = load_rules(rules.as_deref(), &LoadOptions::default()).map_err(anyhow::Error::msg)?;
            let (sigma, sql, patterns, behaviour) = (&set.sigma, set.sql.as_ref().expect("loaded"), set.patterns.as_ref().expect("loaded"), set.behaviour.as_ref().expect("loaded"));
            let mut out = std::io::stdout().lock();
            for r in &patterns.rules {
                writeln!(out, "ok      {}  {}  reads {}", r.path.display(), r.meta.id, r.columns.join(", "))?;
            }
            for r in &behaviour.rules {
                writeln!(out, "ok      {}  {}  reads {}", r.path.display(), r.meta.id, ocelot_detectors::behaviour::COLUMNS.join(", "))?;
            }
            for r in &sql.rules {
                writeln!(out, "ok      {}  {}  reads {}", r.path.display(), r.meta.id, r.tables.join(", "))?;
            }
            for (i, r) in sigma.rules.iter().enumerate() {
                writeln!(out, "ok      {}  {}  reads {}", r.path.display(), r.meta.id, sigma.columns_of(i).join(", "))?;
            }
            let rejected = set.rejected();
            for (p, why) in &rejected {
                writeln!(out, "REJECT  {}  {why}", p.display())?;
            }
            writeln!(out, "{} rules loaded, {} rejected", sigma.rules.len() + sql.rules.len() + patterns.rules.len() + behaviour.rules.len(), rejected.len())?;
            Ok(if rejected.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        RulesAction::Test { rules } => {
            if !rules.is_dir() {
                bail!("--rules {}: no such directory (run from the repository root, or point --rules at a rule directory)", rules.display());
            }
            let results = ocelot_pipeline::detect::test_rules(&rules).map_err(anyhow::Error::msg)?;
            let mut out = std::io::stdout().lock();
            for r in &results {
                let want = if r.must_fire { "fires" } else { "quiet" };
                writeln!(out, "{}  {:<34} {want}  {:<3} findings  {}", if r.passed() { "ok  " } else { "FAIL" }, r.rule, r.findings, r.events.display())?;
            }
            let failed = results.iter().filter(|r| !r.passed()).count();
            writeln!(out, "{} cases, {failed} failed", results.len())?;
            Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
    }
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}").unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()));
    bar
}

fn print_summary(s: &Summary, lake: Option<&Path>) {
    let mut err = std::io::stderr();
    let _ = writeln!(
        err,
        "read {} inputs, {:.1} MB: {} events normalized, {} dead-lettered in {:.2}s ({:.1} MB/s)",
        s.inputs,
        s.bytes as f64 / 1e6,
        s.events,
        s.dead_lettered,
        s.elapsed.as_secs_f64(),
        s.mb_per_s()
    );
    for (class, n) in &s.per_class {
        let _ = writeln!(err, "  {class:<16} {n:>9} events");
    }
    if s.control_messages > 0 {
        let _ = writeln!(err, "  ({} CloudWatch Logs control messages carried no events)", s.control_messages);
    }
    for (reason, n) in &s.dead_by_reason {
        let _ = writeln!(err, "  dead-lettered: {n:>6} {reason}");
    }
    if s.dead_lettered > 0 {
        match lake {
            Some(l) => {
                let _ = writeln!(err, "  dead letters: {}", l.join(ocelot_lake::DEAD_LETTER_DIR).display());
            }
            None => {
                let _ = writeln!(err, "  dead letters were written to stderr above");
            }
        }
    }
}

fn schema_cmd(class: &str) -> Result<()> {
    let (def, projection) = classes::class_and_projection(class)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{} ({}) - OCSF {} class {} in category {} ({})", def.caption, def.name, ocelot_schemas::OCSF_VERSION, def.uid, def.category_name, def.category_uid)?;
    writeln!(out, "profiles: {}", def.profiles.join(", "))?;
    writeln!(out, "\nattributes (* = in Ocelot's Arrow projection):")?;
    for (name, a) in &def.attributes {
        let kept = projection.field_with_name(name).is_ok();
        let ty = if a.is_array { format!("{}[]", a.type_name) } else { a.type_name.clone() };
        let req = format!("{:?}", a.requirement).to_lowercase();
        let profile = a.profile.as_deref().map(|p| format!(" (profile {p})")).unwrap_or_default();
        writeln!(out, "  {} {name:<28} {ty:<24} {req}{profile}", if kept { '*' } else { ' ' })?;
    }
    writeln!(out, "\nArrow schema ({} leaf columns):", ocelot_schemas::leaf_paths(&projection).len())?;
    for (path, dt) in ocelot_schemas::leaf_paths(&projection) {
        writeln!(out, "  {path:<48} {dt}")?;
    }
    Ok(())
}

/// The demo's lake step: compaction, the manifest's tamper evidence, and the export to Amazon
/// Security Lake custom sources (next to the lake: `<lake>-security-lake/`).
fn demo_lake(lake: &Path) -> Result<()> {
    let storage = Storage::from(lake);
    println!("\n-- The lake: small files merged, every file checked against the hash-chained manifest\n$ ocelot lake compact {}", lake.display());
    commands::lake::compact_cmd(&storage, 192, 0, false)?;
    println!("$ ocelot lake verify {}", lake.display());
    commands::lake::verify_cmd(&storage, None, false)?;
    let dest = lake.with_file_name(format!("{}-security-lake", lake.file_name().unwrap_or_default().to_string_lossy()));
    println!("\n-- Amazon Security Lake custom sources: OCSF 1.1.0, one source per class (docs/lake.md registers them)\n$ ocelot lake export {} {}", lake.display(), dest.display());
    // Exit 3 (some records dead-lettered) is shown, not an error of the demo.
    commands::lake::export_cmd(&storage, &Storage::from(dest.as_path()), "ocelot".into(), None, None, false)?;
    Ok(())
}

/// The demo's Flight SQL step: `ocelot serve`'s server on a loopback port with a bearer token,
/// queried by a Flight SQL client, as a BI tool or ADBC would.
fn demo_flight_sql(rt: &tokio::runtime::Runtime, lake: &Path) -> Result<()> {
    use arrow_flight::sql::client::FlightSqlServiceClient;
    let sql = "SELECT agent, approval, count(*) AS changes FROM agent_mutations GROUP BY 1, 2 ORDER BY changes DESC, agent";
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let cfg = ocelot_lake::config::ServeConfig::from_toml(&format!("[lake]\npath = \"{}\"\n[sql]\ntokens = [\"demo-token\"]\n", lake.display())).map_err(anyhow::Error::msg)?;
        let lake = Storage::from(lake);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            ocelot_server::serve(&lake, &cfg.sql, listener, async {
                stopped.await.ok();
            })
            .await
        });
        println!("\n-- The same lake over Arrow Flight SQL (ocelot serve on grpc://{addr}, bearer token), as a BI tool or ADBC client asks\n{sql}");
        let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))?.connect().await?;
        let mut client = FlightSqlServiceClient::new(channel);
        client.set_token("demo-token".into());
        let info = client.execute(sql.into(), None).await?;
        let ticket = info.endpoint.first().and_then(|e| e.ticket.clone()).context("no ticket")?;
        let batches: Vec<arrow::array::RecordBatch> = futures::TryStreamExt::try_collect(client.do_get(ticket).await?).await?;
        println!("{}", arrow::util::pretty::pretty_format_batches(&batches)?);
        let refused = client.execute("COPY (SELECT * FROM findings) TO '/tmp/findings.csv'".into(), None).await.err().map(|e| e.to_string()).unwrap_or_default();
        // The server's own words, without the client's wrapping.
        let why = refused.find("read-only").map_or(refused.as_str(), |i| refused[i..].split(" (").next().unwrap_or_default());
        println!("COPY (SELECT * FROM findings) TO '/tmp/findings.csv' is refused: {why}");
        let _ = stop.send(());
        server.await?.map_err(anyhow::Error::msg)
    })
}

/// The demo's findings through the forwarders `ocelot run` uses (`[[forward]]`), to a Splunk
/// HEC and a Slack webhook played by a receiver on a loopback port, which prints what it got.
fn demo_forward(findings: &[ocelot_detectors::Finding], lake: &Path) -> Result<()> {
    let server = std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").map_err(|e| anyhow::anyhow!("demo receiver: {e}"))?);
    let url = format!("http://{}", server.server_addr().to_ip().context("demo receiver address")?);
    let srv = server.clone();
    let receiver = std::thread::spawn(move || {
        let mut got = Vec::new();
        for mut rq in srv.incoming_requests() {
            let mut body = String::new();
            let _ = std::io::Read::read_to_string(rq.as_reader(), &mut body);
            let answer = if rq.url().starts_with("/services/collector") { r#"{"text":"Success","code":0}"# } else { "ok" };
            got.push((rq.url().to_string(), rq.headers().iter().any(|h| h.field.equiv("Authorization") && h.value.as_str() == "Splunk demo-token"), body));
            let _ = rq.respond(tiny_http::Response::from_string(answer));
        }
        got
    });
    let config = format!(
        "[kafka]\nbrokers = \"unused:9092\"\n[[inputs]]\ntopic = \"unused\"\n[lake]\npath = \"{}\"\n\
         [[forward]]\ntype = \"splunk_hec\"\nurl = \"{url}\"\ntoken = \"demo-token\"\nindex = \"security\"\n\
         [[forward]]\ntype = \"webhook\"\nname = \"slack\"\nformat = \"slack\"\nurl = \"{url}/slack\"\n[forward.delivery]\nmin_severity = \"high\"\n",
        lake.display()
    );
    println!("\n-- Forwarding: the findings, as `ocelot run` forwards them, to a Splunk HEC and a Slack webhook (a local receiver plays both)\n[[forward]] type = \"splunk_hec\" url = \"{url}\" ...   [[forward]] type = \"webhook\" format = \"slack\" min_severity = \"high\" ...");
    let cfg = runtime::config::Config::from_toml(&config).map_err(anyhow::Error::msg)?;
    let forwarders = ocelot_pipeline::forward::Forwarders::start(&cfg.forward, ocelot_pipeline::forward::DeadLetters::new(DeadLetterStore::new(lake))).map_err(anyhow::Error::msg)?;
    let stop = std::sync::atomic::AtomicBool::new(false);
    forwarders.submit(findings.iter().map(ocelot_detectors::Finding::to_ocsf), &stop);
    let dead = forwarders.close(&stop);
    server.unblock();
    let got = receiver.join().map_err(|_| anyhow::anyhow!("demo receiver panicked"))?;
    let hec: Vec<_> = got.iter().filter(|(u, ..)| u.starts_with("/services/collector")).collect();
    let events: usize = hec.iter().map(|(_, _, b)| serde_json::Deserializer::from_str(b).into_iter::<serde_json::Value>().count()).sum();
    println!("Splunk HEC: {events} findings in {} request(s), token checked: {}, sourcetype ocsf:detection_finding, dead-lettered: {dead}", hec.len(), hec.iter().all(|(_, auth, _)| *auth));
    let mut lines = Vec::new();
    for (_, _, body) in got.iter().filter(|(u, ..)| u == "/slack") {
        let v: serde_json::Value = serde_json::from_str(body)?;
        lines.extend(v["text"].as_str().unwrap_or_default().lines().map(str::to_string));
    }
    // Most severe first, a few of them.
    lines.sort_by_key(|l| !l.starts_with("[Critical]"));
    println!("Slack (high and critical only): {} findings", lines.len());
    for line in lines.iter().take(8) {
        println!("  {line}");
    }
    if lines.len() > 8 {
        println!("  ... {} more", lines.len() - 8);
    }
    Ok(())
}

fn demo(samples: &Path, lake: &Path) -> Result<ExitCode> {
    if !samples.is_dir() {
        bail!("--samples {}: no such directory; run the demo from the repository root, or point --samples at the bundled samples/", samples.display());
    }
    if lake.exists() {
        // Only ever remove a directory that looks like a lake we wrote.
        let is_lake = std::fs::read_dir(lake)?.flatten().all(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            classes::WRITTEN_CLASSES.contains(&n.as_str()) || [ocelot_lake::DEAD_LETTER_DIR, ocelot_lake::manifest::META_DIR, ocelot_lake::findings::FINDINGS_TABLE].contains(&n.as_str())
        });
        if !is_lake {
            bail!("--lake {}: exists and is not an Ocelot lake; choose another directory", lake.display());
        }
        std::fs::remove_dir_all(lake)?;
    }
    println!("== Ocelot demo: bundled CloudTrail, WAF, Security Hub, Shield and AI-agent samples -> OCSF {} -> Parquet lake at {}\n", ocelot_schemas::OCSF_VERSION, lake.display());
    // One pass over all sources: `auto` tells them apart record by record.
    let inputs: Vec<PathBuf> = ["cloudtrail", "waf", "securityhub", "shield", "agent"].iter().map(|s| samples.join(s)).collect();
    // The sample agents as a user declares them, with their scope (and the shipped agents).
    let agents = samples.join("agents.toml");
    let registry = normalize::agents::AgentsFile::load(&agents).and_then(|a| a.registry()).map_err(anyhow::Error::msg)?;
    let summary = normalize_cmd(&inputs, Some(lake), Format::Parquet, "auto", std::sync::Arc::new(registry), Limits::default())?;
    println!("normalized {} inputs ({:.2} MB) from {}: {} events, {} dead-lettered", summary.inputs, summary.bytes as f64 / 1e6, samples.display(), summary.events, summary.dead_lettered);
    for (class, n) in &summary.per_class {
        println!("  {class:<16} {n:>6} events");
    }
    let rt = tokio::runtime::Runtime::new()?;
    let queries = [
        (
            "Which identities changed what (mutations by actor and operation)?",
            "SELECT actor.user.name AS actor, api.service.name AS service, api.operation AS operation, count(*) AS events \
          FROM api_activity WHERE activity_id IN (1, 3, 4) AND actor.user.name IS NOT NULL GROUP BY 1, 2, 3 ORDER BY events DESC, operation LIMIT 10",
        ),
        (
            "IAM account changes (who changed which user or role, how)",
            "SELECT time_dt, actor.user.name AS actor, activity_name, \"user\".name AS target, policy.name AS policy \
          FROM account_change ORDER BY time_dt LIMIT 10",
        ),
        ("Console sign-ins without MFA", "SELECT time_dt, \"user\".name AS who, src_endpoint.ip AS ip, status, is_mfa FROM authentication WHERE is_mfa IS NOT TRUE ORDER BY time_dt LIMIT 5"),
        (
            "WAF: what the web ACLs blocked, by rule and client",
            "SELECT policy.name AS web_acl, firewall_rule.uid AS rule, disposition, src_endpoint.ip AS client, http_request.url.path AS path \
          FROM http_activity WHERE action_id <> 1 ORDER BY time_dt LIMIT 5",
        ),
        (
            "Security Hub: failed controls and detections, most severe first",
            "SELECT 'compliance' AS kind, severity, compliance.control AS what, finding_info.title AS title FROM compliance_finding WHERE compliance.status = 'FAILED' \
          UNION ALL SELECT 'detection', severity, metadata.product.name, finding_info.title FROM detection_finding ORDER BY severity, what LIMIT 8",
        ),
        ("Events per partition (Security Lake layout)", "SELECT region, eventDay, count(*) AS events FROM api_activity GROUP BY 1, 2 ORDER BY events DESC LIMIT 5"),
    ];
    // Each query as `ocelot sql` runs it: a session over what the lake holds at that moment.
    let show = |title: &str, sql: &str| -> Result<()> {
        println!("\n-- {title}\n$ ocelot sql --lake {} \"{}\"", lake.display(), sql.split_whitespace().collect::<Vec<_>>().join(" "));
        let batches = rt.block_on(async { sql::run_query(&sql::session(lake).await?, sql).await })?;
        println!("{}", arrow::util::pretty::pretty_format_batches(&batches)?);
        Ok(())
    };
    for (title, sql) in queries {
        show(title, sql)?;
    }
    // Detection: the same engine `ocelot run` uses, replaying the lake; findings into the lake.
    println!("\n-- Detection: SigmaHQ, SQL, pattern and behaviour rules over the lake\n$ ocelot detect --lake {} --agents {} --out findings.jsonl", lake.display(), agents.display());
    let detect = detect_cmd(&[], Some(lake), None, TimeRange::default(), 60, Some(&agents))?;
    let findings: Vec<ocelot_detectors::Finding> = detect.findings().into_iter().cloned().collect();
    let mut writer = LakeWriter::new(lake, WriterOptions::default());
    writer.buffer_as(ocelot_lake::findings::FINDINGS_TABLE, &ocelot_lake::findings::to_batch(&findings).map_err(anyhow::Error::msg)?);
    writer.flush()?;
    print_detect_summary(&detect);
    show(
        "What the AI agents did, in the findings table",
        "SELECT severity, finding_info.analytic.uid AS rule, message FROM findings WHERE finding_info.analytic.uid LIKE 'ocelot.agent%' ORDER BY severity_id DESC, message",
    )?;
    // The agent session (samples/agent/session): which agent made which CloudTrail change,
    // through which tool call, and who approved it.
    show(
        "Which AI agent changed what, through which tool call, approved by whom (the view agent_mutations)",
        "SELECT time_dt, operation, principal, agent, session, tool, tool_call, approval, decided_by FROM agent_mutations ORDER BY time_dt",
    )?;
    // Validity by OCSF's own rules, of everything the lake now holds (events and findings).
    println!("\n-- Is it valid OCSF? Every record of the lake, events and findings, by the schema's own rules (constraints and profiles included)\n$ ocelot validate {}", lake.display());
    commands::validate::run(&[lake.to_path_buf()])?.print(&mut std::io::stdout().lock())?;
    demo_flight_sql(&rt, lake)?;
    demo_forward(&findings, lake)?;
    demo_lake(lake)?;
    let dl = lake.join(ocelot_lake::DEAD_LETTER_DIR);
    if dl.is_dir() {
        println!("\n-- Dead letters ({}), one line each with origin and reason:", dl.display());
        for entry in expand_inputs(std::slice::from_ref(&dl))? {
            for line in std::fs::read_to_string(&entry)?.lines() {
                let v: serde_json::Value = serde_json::from_str(line)?;
                println!("  {}:{} {}", v["source"].as_str().unwrap_or(""), v["line"].as_u64().map_or_else(|| format!("@{}", v["offset"]), |l| l.to_string()), v["reason"].as_str().unwrap_or(""));
            }
        }
    }
    println!("\nTry your own: cargo run --release -- sql --lake {} (a shell; \\d lists the tables)", lake.display());
    println!("As a service: the same decoder and normalizer consume Kafka with `ocelot run --config examples/ocelot.toml`");
    println!("(a broker needed; README \"ocelot run\" shows one on this machine, docs/config.md every key).");
    Ok(ExitCode::SUCCESS)
}
