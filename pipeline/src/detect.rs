//! Detection over normalized batches: `ocelot detect` replays files or the lake through the
//! same engine the streaming runtime runs, and keeps the latest state of each finding.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::filter_record_batch;
use ocelot_detectors::behaviour::BehaviourRules;
use ocelot_detectors::pattern::PatternRules;
use ocelot_detectors::sql::SqlSet;
use ocelot_detectors::{Engine, EngineOptions, Finding, LoadOptions, RuleSets, SigmaSet};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use ocelot_normalize::classes::{class_and_projection, WRITTEN_CLASSES};

/// The rules: the shipped ones, or every rule under `dir` (Sigma `.yml`, SQL `.sql`, pattern
/// and behaviour `.toml`).
pub fn load_rules(dir: Option<&Path>, opts: &LoadOptions) -> Result<RuleSets, String> {
    let schemas = class_schemas()?;
    Ok(match dir {
        Some(d) => {
            RuleSets { sigma: SigmaSet::load_dir(d, opts)?, sql: Some(SqlSet::load_dir(d, schemas)?), patterns: Some(PatternRules::load_dir(d)?), behaviour: Some(BehaviourRules::load_dir(d)?) }
        }
        None => RuleSets { sigma: SigmaSet::shipped(opts)?, sql: Some(SqlSet::shipped(schemas)?), patterns: Some(PatternRules::shipped()?), behaviour: Some(BehaviourRules::shipped()) },
    })
}

/// How an engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Files or the lake read once (`ocelot detect`, `rules test`, the demo): their order is
    /// the files', not time's, so every window stays open until the input is over.
    Replay,
    /// A stream (`ocelot run`): windows close on the watermark, which an event may move at
    /// most this far past the processing clock.
    Stream { max_skew_ms: i64 },
}

impl Mode {
    /// A stream with the default skew (five minutes).
    pub const STREAM: Mode = Mode::Stream { max_skew_ms: ocelot_detectors::engine::DEFAULT_MAX_SKEW_MS };
}

/// What a detection engine is made of. [`EngineSpec::build`] is the one place an engine is
/// assembled: `ocelot run`, `ocelot detect`, `ocelot rules test` and the demo all go through it.
#[derive(Debug, Clone)]
pub struct EngineSpec {
    /// A directory of rules, or the shipped ones.
    pub rules: Option<PathBuf>,
    /// Values of Sigma `%name%` placeholders.
    pub placeholders: HashMap<String, Vec<String>>,
    /// The declared agents (`[[agents]]`) behaviour rules check.
    pub agents: Vec<ocelot_normalize::agents::AgentRule>,
    /// Hits of one rule by one principal within this many minutes update one finding.
    pub suppress_minutes: u32,
    pub mode: Mode,
}

impl EngineSpec {
    /// The shipped rules, no declared agents, an hour of suppression.
    pub fn shipped(mode: Mode) -> EngineSpec {
        EngineSpec { rules: None, placeholders: HashMap::new(), agents: Vec::new(), suppress_minutes: 60, mode }
    }

    /// Loads the rules and builds the engine. Rules that do not load are logged (and kept in
    /// [`Engine::rejected`]); a directory that cannot be read is an error.
    pub fn build(&self) -> Result<Engine, String> {
        let rules = load_rules(self.rules.as_deref(), &LoadOptions { placeholders: self.placeholders.clone() })?;
        for (path, why) in rules.rejected() {
            tracing::info!(rule = %path.display(), reason = %why, "rule not loaded");
        }
        Ok(self.with(rules))
    }

    /// The engine over rules already loaded (a rule's own test cases run it alone).
    pub fn with(&self, rules: RuleSets) -> Engine {
        let opts = EngineOptions {
            suppression_ms: i64::from(self.suppress_minutes.max(1)) * 60_000,
            hold_windows: self.mode == Mode::Replay,
            agents: self.agents.clone(),
            max_skew_ms: match self.mode {
                Mode::Replay => ocelot_detectors::engine::DEFAULT_MAX_SKEW_MS,
                Mode::Stream { max_skew_ms } => max_skew_ms,
            },
        };
        Engine::new(rules, opts)
    }
}

/// The Arrow schema of every class Ocelot writes, by table name (what SQL rules read).
pub fn class_schemas() -> Result<HashMap<String, arrow::datatypes::SchemaRef>, String> {
    WRITTEN_CLASSES.iter().map(|c| class_and_projection(c).map(|(_, s)| (c.to_string(), s)).map_err(|e| e.to_string())).collect()
}

/// An event-time range (epoch ms, inclusive start, exclusive end).
#[derive(Debug, Clone, Copy, Default)]
pub struct TimeRange {
    pub since: Option<i64>,
    pub until: Option<i64>,
}

impl TimeRange {
    fn keeps(&self, t: i64) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }
}

/// The engine and the latest version of every finding it emitted.
pub struct Detect {
    pub engine: Engine,
    findings: BTreeMap<String, Finding>,
    range: TimeRange,
    pub events: u64,
}

impl Detect {
    pub fn new(engine: Engine, range: TimeRange) -> Detect {
        Detect { engine, findings: BTreeMap::new(), range, events: 0 }
    }

    /// Feeds a batch of class `table`.
    pub fn batch(&mut self, batch: &RecordBatch, table: &str) -> io::Result<()> {
        let batch = self.in_range(batch)?;
        self.events += batch.num_rows() as u64;
        for f in self.engine.process(&batch, table) {
            self.findings.insert(f.uid.clone(), f);
        }
        Ok(())
    }

    /// Evaluates the windows still open: call once the input is over.
    pub fn finish(&mut self) {
        for f in self.engine.finish() {
            self.findings.insert(f.uid.clone(), f);
        }
    }

    fn in_range(&self, batch: &RecordBatch) -> io::Result<RecordBatch> {
        if self.range.since.is_none() && self.range.until.is_none() {
            return Ok(batch.clone());
        }
        let Some(time) = batch.column_by_name("time") else { return Ok(batch.clone()) };
        let t = time.as_primitive_opt::<arrow::datatypes::Int64Type>().ok_or_else(|| io::Error::other("`time` is not an Int64 column"))?;
        let keep: arrow::array::BooleanArray = (0..t.len()).map(|i| Some(t.is_valid(i) && self.range.keeps(t.value(i)))).collect();
        filter_record_batch(batch, &keep).map_err(io::Error::other)
    }

    /// Findings in order of first sighting.
    pub fn findings(&self) -> Vec<&Finding> {
        let mut v: Vec<&Finding> = self.findings.values().collect();
        v.sort_by(|a, b| (a.first_seen, &a.rule.id, &a.uid).cmp(&(b.first_seen, &b.rule.id, &b.uid)));
        v
    }

    /// Writes the findings as OCSF JSON lines.
    pub fn write_jsonl(&self, out: &mut dyn Write) -> io::Result<()> {
        for f in self.findings() {
            serde_json::to_writer(&mut *out, &f.to_ocsf())?;
            out.write_all(b"\n")?;
        }
        out.flush()
    }

    /// Replays the lake's CloudTrail tables, file by file in path order (partitions are by day,
    /// so this is close to event-time order).
    pub fn replay_lake(&mut self, lake: &ocelot_lake::Storage) -> io::Result<()> {
        // The files the manifest lists (not whatever the directories hold).
        let snapshot = ocelot_lake::Snapshot::take(lake)?;
        let mut files: Vec<(String, &str)> = Vec::new();
        for t in WRITTEN_CLASSES {
            files.extend(snapshot.table_files(t).into_iter().map(|f| (f, *t)));
        }
        if files.is_empty() {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("{lake}: no class tables ({}) in this lake", WRITTEN_CLASSES.join(", "))));
        }
        // Day partitions first, so the engine sees time roughly in order across tables.
        files.sort_by_key(|(p, _)| (day_of(p), p.clone()));
        for (f, table) in files {
            // Files leave out their all-null columns; the engine takes the class's whole schema.
            let (_, schema) = class_and_projection(table).map_err(io::Error::other)?;
            let bytes = lake.read(&f)?.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{f}: listed in the lake's manifest but missing (run `ocelot lake verify`)")))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(io::Error::other)?.with_batch_size(64 * 1024).build().map_err(io::Error::other)?;
            for b in reader {
                self.batch(&ocelot_lake::sparse::conform(&b.map_err(io::Error::other)?, &schema).map_err(io::Error::other)?, table)?;
            }
        }
        self.finish();
        Ok(())
    }
}

fn day_of(p: &str) -> String {
    p.split('/').filter_map(|c| c.strip_prefix("eventDay=").map(str::to_string)).next().unwrap_or_default()
}

/// One rule test case and how it went.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub rule: String,
    pub events: PathBuf,
    pub must_fire: bool,
    pub findings: usize,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.must_fire == (self.findings > 0)
    }
}

/// Runs the must-fire / must-not-fire cases of every SQL, pattern and behaviour rule under
/// `dir`: each case's events (any source, paths relative to `dir`) through an engine holding
/// that rule alone (and the `[[agents]]` file a behaviour rule names).
pub fn test_rules(dir: &Path) -> Result<Vec<CaseResult>, String> {
    let sql = SqlSet::load_dir(dir, class_schemas()?)?;
    let patterns = PatternRules::load_dir(dir)?;
    let behaviour = BehaviourRules::load_dir(dir)?;
    if let Some((p, why)) = sql.rejected.first().or(patterns.rejected.first()).or(behaviour.rejected.first()) {
        return Err(format!("{}: {why}", p.display()));
    }
    let no_sigma = || SigmaSet::from_texts(Vec::new(), &LoadOptions::default());
    let read = |path: &Path| std::fs::read_to_string(path).map(|t| vec![(path.to_path_buf(), t)]).map_err(|e| format!("{}: {e}", path.display()));
    // Each rule alone: (id, cases, its agents file, the rule set holding it).
    type Make = Box<dyn Fn() -> Result<RuleSets, String>>;
    let mut runs: Vec<(String, Vec<ocelot_detectors::rule::Case>, Option<PathBuf>, Make)> = Vec::new();
    for rule in &sql.rules {
        let path = rule.path.clone();
        runs.push((
            rule.meta.id.clone(),
            rule.cases.clone(),
            None,
            Box::new(move || Ok(RuleSets { sigma: no_sigma()?, sql: Some(SqlSet::new(read(&path)?, class_schemas()?)?), patterns: None, behaviour: None })),
        ));
    }
    for rule in &patterns.rules {
        let path = rule.path.clone();
        runs.push((
            rule.meta.id.clone(),
            rule.cases.clone(),
            None,
            Box::new(move || Ok(RuleSets { sigma: no_sigma()?, sql: None, patterns: Some(PatternRules::new(read(&path)?)?), behaviour: None })),
        ));
    }
    for rule in &behaviour.rules {
        let path = rule.path.clone();
        runs.push((
            rule.meta.id.clone(),
            rule.cases.clone(),
            rule.agents.clone(),
            Box::new(move || Ok(RuleSets { sigma: no_sigma()?, sql: None, patterns: None, behaviour: Some(BehaviourRules::new(read(&path)?)) })),
        ));
    }
    let mut results = Vec::new();
    for (id, cases, agents, rules) in runs {
        let agents = match agents {
            Some(a) => ocelot_normalize::agents::AgentsFile::load(&dir.join(a)).map_err(|e| format!("{e} (the agents of {id})"))?,
            None => ocelot_normalize::agents::AgentsFile { agents: Vec::new(), builtin_agents: true },
        };
        let registry = std::sync::Arc::new(agents.registry()?);
        for case in cases {
            let spec = EngineSpec { agents: agents.agents.clone(), ..EngineSpec::shipped(Mode::Replay) };
            let detect = Detect::new(spec.with(rules()?), TimeRange::default());
            let events = dir.join(&case.events);
            let normalizer = ocelot_normalize::with_agents("auto", registry.clone())?;
            let mut ingest =
                crate::ingest::Ingest::new(normalizer, crate::ingest::Output::Detect(Box::new(detect)), ocelot_lake::DeadLetterStore::to_stderr(), ocelot_normalize::decode::Limits::default());
            let files = crate::ingest::expand_inputs(std::slice::from_ref(&events)).map_err(|e| format!("{} (a case of {id}): {e}", events.display()))?;
            for f in files {
                ingest.file(&f).map_err(|e| format!("{} (a case of {id}): {e}", f.display()))?;
            }
            ingest.finish(std::time::Instant::now()).map_err(|e| e.to_string())?;
            let crate::ingest::Output::Detect(mut d) = ingest.output else { unreachable!("built with Output::Detect") };
            d.finish();
            results.push(CaseResult { rule: id.clone(), events: case.events.clone(), must_fire: case.fires, findings: d.findings().len() });
        }
    }
    Ok(results)
}
