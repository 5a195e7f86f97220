//! The detect stage of a routed deployment (`[detect] route_topic`, see `route.rs`): a
//! consumer of the route topic in group `<kafka.group_id>.detect`, one detection engine per
//! route partition it owns, and the lake's `findings` table.
//!
//! **One engine per partition.** A partition's events reach its engine in the partition's
//! order whichever replica owns it, so what the engine finds does not depend on how many
//! replicas share the topic, nor on which one has the partition after a rebalance.
//!
//! **Checkpoints: state by replay.** Every second the stage makes the findings of what it read
//! durable, then writes each partition's checkpoint, `LAKE/_ocelot/detect/<group>/<partition>.json`
//! (`next`: the offset after the last one read; `replay_from`: the first offset whose events are
//! still within the engine's horizon: open windows, correlation spans, open findings, agent
//! links, behaviour baselines, at most `detect.replay_horizon_hours`), then commits `next` to
//! Kafka. A replica that gets the partition (after a kill -9, a restart or a rebalance) reads it
//! from `replay_from`, rebuilding the engine's state from the events with their findings held
//! back up to `next` (they are in the lake already), then goes on: a window that spans the
//! crash closes with all its events, and its finding keeps its uid (uids are deterministic).
//! A crash between the findings and the checkpoint repeats at most a second of findings, with
//! the same uids.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Headers;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::Message;
use serde::{Deserialize, Serialize};

use super::metrics as m;
use crate::detect::EngineSpec;
use ocelot_detectors::{Engine, Finding};
use ocelot_lake::{DeadLetterStore, LakeWriter, Storage, WriterOptions};
use ocelot_normalize::decode::{DeadLetter, Origin};

/// The header that names a routed batch's class table.
pub const CLASS_HEADER: &str = "ocelot.class";
/// Where the checkpoints live, under the lake root.
pub const CHECKPOINT_DIR: &str = "_ocelot/detect";
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// At shutdown, the stage reads until the route topic has been quiet this long.
const QUIET: Duration = Duration::from_secs(2);

/// A partition's checkpoint.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Checkpoint {
    /// The offset after the last one whose findings are in the lake.
    next: i64,
    /// Replaying from here rebuilds the engine's state.
    replay_from: i64,
}

/// What the stage keeps of one partition it owns.
struct Part {
    engine: Engine,
    findings: Vec<Finding>,
    /// The offset after the last one read (None before the first).
    next: Option<i64>,
    /// The offset the next message should have: a message past it means the topic no longer
    /// held those in between (see `process`).
    expect: Option<i64>,
    /// Messages before this offset rebuild state only: their findings are in the lake.
    replay_until: i64,
    /// (offset, newest event time) of the messages read still within the horizon.
    recent: VecDeque<(i64, i64)>,
}

pub struct DetectStage {
    consumer: BaseConsumer,
    spec: EngineSpec,
    /// An engine built at start (the rules checked once), for the first partition.
    spare: Option<Engine>,
    parts: HashMap<i32, Part>,
    max_horizon_ms: i64,
    lake: LakeWriter,
    storage: Storage,
    dead: DeadLetterStore,
    topic: String,
    group: String,
    give_up: Arc<AtomicBool>,
    finishing: Arc<AtomicBool>,
}

/// The running stage: set `finishing` once the ingest stage has produced its last batch.
pub struct Running {
    pub thread: JoinHandle<()>,
    pub finishing: Arc<AtomicBool>,
}

pub struct Options<'a> {
    pub topic: &'a str,
    pub group: &'a str,
    /// The user's client properties (`[kafka]`, `[kafka.settings]`).
    pub props: &'a [(String, String)],
    pub lake: &'a Storage,
    pub zstd_level: i32,
    /// The longest replay a checkpoint asks for (`detect.replay_horizon_hours`).
    pub max_horizon_ms: i64,
}

impl DetectStage {
    /// Builds one engine (a rule that does not load fails here, at start) and subscribes.
    pub fn start(o: Options<'_>, spec: EngineSpec, give_up: Arc<AtomicBool>) -> Result<Running, String> {
        let spare = spec.build().map_err(|e| format!("detect.rules: {e}"))?;
        let mut c = ClientConfig::new();
        super::prefetch(&mut c);
        for (k, v) in o.props {
            c.set(k, v);
        }
        c.set("group.id", o.group).set("enable.auto.commit", "false").set("auto.offset.reset", "earliest");
        c.set_log_level(RDKafkaLogLevel::Warning);
        let consumer: BaseConsumer = c.create().map_err(|e| format!("detect.route_topic consumer: {e}"))?;
        consumer.subscribe(&[o.topic]).map_err(|e| format!("detect.route_topic: subscribe to {}: {e}", o.topic))?;
        let finishing = Arc::new(AtomicBool::new(false));
        let stage = DetectStage {
            consumer,
            spec,
            spare: Some(spare),
            parts: HashMap::new(),
            max_horizon_ms: o.max_horizon_ms,
            lake: LakeWriter::new(o.lake.clone(), WriterOptions { zstd_level: o.zstd_level, small_files: true, ..WriterOptions::default() }),
            storage: o.lake.clone(),
            dead: DeadLetterStore::new(o.lake.clone()),
            topic: o.topic.to_string(),
            group: o.group.to_string(),
            give_up,
            finishing: finishing.clone(),
        };
        let thread = std::thread::Builder::new().name("detect".into()).spawn(move || stage.run()).map_err(|e| e.to_string())?;
        tracing::info!(topic = o.topic, group = o.group, "detect stage started");
        Ok(Running { thread, finishing })
    }

    fn run(mut self) {
        let mut last_flush = Instant::now();
        let mut last_message = Instant::now();
        while !self.give_up.load(Ordering::Relaxed) {
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(msg)) => {
                    last_message = Instant::now();
                    let class = msg.headers().and_then(|h| h.iter().find(|h| h.key == CLASS_HEADER).and_then(|h| h.value).map(|v| String::from_utf8_lossy(v).into_owned()));
                    let payload = msg.payload().unwrap_or_default();
                    // Decoded in place; the bytes are copied only to dead-letter them.
                    let message = match (class, super::route::decode(payload)) {
                        (Some(class), Ok(batches)) => Ok((class, batches)),
                        (_, Err(e)) => Err((format!("route topic: not an Arrow IPC stream: {e}"), payload.to_vec())),
                        (None, _) => Err((format!("route topic: no {CLASS_HEADER} header"), payload.to_vec())),
                    };
                    let (partition, offset) = (msg.partition(), msg.offset());
                    drop(msg);
                    self.process(partition, offset, message);
                }
                Some(Err(e)) => tracing::warn!(error = %e, "route topic consumer error"),
                None if self.finishing.load(Ordering::Relaxed) && last_message.elapsed() >= QUIET => break,
                None => {}
            }
            if last_flush.elapsed() >= FLUSH_EVERY {
                if !self.flush() {
                    return;
                }
                last_flush = Instant::now();
            }
        }
        if self.give_up.load(Ordering::Relaxed) {
            // Not checkpointed: read again at the next start (or by another replica).
            return;
        }
        // Input is over (shutdown): the windows still open are evaluated and kept.
        for part in self.parts.values_mut() {
            let last = part.engine.finish();
            part.findings.extend(last);
        }
        self.flush();
    }

    /// One message of the route topic (its class and batches, or why it is a dead letter and its
    /// bytes), into its partition's engine.
    fn process(&mut self, partition: i32, offset: i64, message: Result<(String, Vec<arrow::array::RecordBatch>), (String, Vec<u8>)>) {
        if !self.parts.contains_key(&partition) && self.open(partition, offset) {
            // Seeking back to replay: this message comes again.
            return;
        }
        let (class, batches) = match message {
            Ok(m) => m,
            // Only another program writing to the route topic can cause this.
            Err((reason, bytes)) => {
                let origin = Origin { source: Arc::from(format!("{}/{partition}", self.topic)), line: None, offset: offset.max(0) as u64, index: None };
                self.dead.push(&DeadLetter { origin, reason, bytes });
                (String::new(), Vec::new())
            }
        };
        let Some(part) = self.parts.get_mut(&partition) else { return };
        if let Some(expect) = part.expect.filter(|e| offset > *e) {
            // Ocelot's producer writes no transactions and the topic is not compacted, so a
            // gap is retention: messages deleted before the detect stage read them.
            let skipped = offset - expect;
            metrics::counter!(m::ROUTE_SKIPPED).increment(skipped as u64);
            tracing::error!(
                topic = %self.topic,
                partition,
                from = expect,
                to = offset,
                skipped,
                "route topic: messages deleted before they were read (their events were not detected): make the route topic's retention longer than the detect stage's lag plus detect.replay_horizon_hours"
            );
        }
        part.expect = Some(offset + 1);
        let mut newest = i64::MIN;
        for b in batches {
            newest = newest.max(max_time(&b));
            let found = part.engine.process(&b, &class);
            // Replayed: these findings are in the lake already (same uids).
            if offset >= part.replay_until {
                part.findings.extend(found);
            }
        }
        part.next = Some(offset + 1);
        part.recent.push_back((offset, newest));
    }

    /// A partition newly owned: its engine, and a replay from its checkpoint. True when the
    /// consumer was sent back to replay (the message at `offset` comes again).
    fn open(&mut self, partition: i32, offset: i64) -> bool {
        let engine = match self.spare.take().map(Ok).unwrap_or_else(|| self.spec.build()) {
            Ok(e) => e,
            Err(e) => {
                // The rules loaded at start; only a resource failure can get here.
                tracing::error!(partition, error = %e, "detect stage: engine not built; the partition is read without detection");
                return false;
            }
        };
        let checkpoint = self.read_checkpoint(partition);
        let replay_until = checkpoint.map_or(0, |c| c.next);
        let replay = checkpoint.filter(|c| c.replay_from < offset);
        // After a checkpoint, reading goes on from its `next`, or replays from `replay_from`.
        let expect = replay.map(|c| c.replay_from).or(checkpoint.map(|c| c.next));
        self.parts.insert(partition, Part { engine, findings: Vec::new(), next: None, expect, replay_until, recent: VecDeque::new() });
        let Some(c) = replay else {
            tracing::info!(partition, offset, "detect stage: partition assigned, no state to rebuild");
            return false;
        };
        match self.consumer.seek(&self.topic, partition, Offset::Offset(c.replay_from), Duration::from_secs(10)) {
            Ok(()) => {
                tracing::info!(partition, from = c.replay_from, to = c.next, "detect stage: partition assigned, rebuilding its state by replay");
                true
            }
            Err(e) => {
                tracing::warn!(partition, error = %e, "detect stage: cannot seek back to rebuild state; windows open at the last stop miss their earlier events");
                false
            }
        }
    }

    fn checkpoint_path(&self, partition: i32) -> String {
        let safe = |s: &str| s.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect::<String>();
        format!("{CHECKPOINT_DIR}/{}/{}-{partition}.json", safe(&self.group), safe(&self.topic))
    }

    fn read_checkpoint(&self, partition: i32) -> Option<Checkpoint> {
        let path = self.checkpoint_path(partition);
        match self.storage.read(&path) {
            Ok(Some(b)) => serde_json::from_slice(&b).map_err(|e| tracing::warn!(%path, error = %e, "detect checkpoint unreadable; starting without state")).ok(),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(%path, error = %e, "detect checkpoint unreadable; starting without state");
                None
            }
        }
    }

    /// Drops the partitions no longer assigned, makes the findings durable, writes the
    /// checkpoints, then commits; false if it gave up.
    fn flush(&mut self) -> bool {
        if let Ok(assigned) = self.consumer.assignment() {
            let owned: std::collections::HashSet<i32> = assigned.elements_for_topic(&self.topic).iter().map(|e| e.partition()).collect();
            self.parts.retain(|p, part| {
                let keep = owned.contains(p);
                if !keep {
                    tracing::info!(partition = p, dropped_findings = part.findings.len(), "detect stage: partition revoked; its new owner rebuilds the state from the checkpoint");
                }
                keep
            });
        }
        let findings: Vec<Finding> = self.parts.values_mut().flat_map(|p| p.findings.drain(..)).collect();
        if !findings.is_empty() {
            match ocelot_lake::findings::to_batch(&findings) {
                Ok(b) => {
                    self.lake.buffer_as(ocelot_lake::findings::FINDINGS_TABLE, &b);
                    metrics::counter!(m::FINDINGS).increment(findings.len() as u64);
                }
                // Only a schema bug can fail here: say so loudly.
                Err(e) => tracing::error!(error = %e, findings = findings.len(), "findings could not be encoded for the lake"),
            }
        }
        let mut stats = ocelot_detectors::Stats::default();
        for part in self.parts.values() {
            stats += part.engine.stats();
        }
        m::publish_detect_stats(&stats);
        let mut backoff = Duration::from_millis(100);
        while let Err(e) = self.lake.flush().map(|_| ()).and_then(|_| self.dead.flush().map(|_| ())) {
            tracing::warn!(error = %e, "detect stage: findings not written; retrying");
            if self.give_up.load(Ordering::Relaxed) {
                return false;
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
        let mut tpl = TopicPartitionList::new();
        let mut checkpoints = Vec::new();
        for (p, part) in self.parts.iter_mut() {
            let Some(next) = part.next else { continue };
            // Messages whose newest event is behind the horizon no longer shape the state.
            let horizon = part.engine.horizon_ms().min(self.max_horizon_ms);
            let floor = part.engine.watermark().saturating_sub(horizon);
            while part.recent.front().is_some_and(|(_, t)| *t < floor) {
                part.recent.pop_front();
            }
            let replay_from = part.recent.front().map_or(next, |(o, _)| *o);
            checkpoints.push((*p, Checkpoint { next, replay_from }));
            let _ = tpl.add_partition_offset(&self.topic, *p, Offset::Offset(next));
        }
        for (p, c) in checkpoints {
            let path = self.checkpoint_path(p);
            let bytes = serde_json::to_vec(&c).unwrap_or_default();
            if let Err(e) = self.storage.put(&path, &bytes) {
                // The commit waits for the checkpoint: without it, a restart would skip state.
                tracing::warn!(%path, error = %e, "detect checkpoint not written; offsets not committed this time");
                return true;
            }
        }
        if tpl.count() > 0 {
            // A partition revoked since it was read refuses the commit: its new owner reads it
            // again from the checkpoint.
            if let Err(e) = self.consumer.commit(&tpl, CommitMode::Sync) {
                tracing::warn!(error = %e, "detect stage: commit refused (a rebalance?); the new owner reads those events again");
            }
        }
        true
    }
}

/// The newest `time` of a batch (i64::MIN without one).
fn max_time(b: &arrow::array::RecordBatch) -> i64 {
    use arrow::array::AsArray;
    b.column_by_name("time").and_then(|t| t.as_primitive_opt::<arrow::datatypes::Int64Type>().and_then(arrow::compute::max)).unwrap_or(i64::MIN)
}
