//! `ocelot run`: the streaming runtime. A Kafka consumer group member that normalizes every
//! message into OCSF batches, makes each batch durable in every sink, and only then commits
//! the offsets below which everything is durable (at-least-once, never silent loss).
//!
//! ```text
//!  consumer thread (this one)                       sink thread (sink.rs)
//!  poll -> decode -> normalize -> open batch
//!       seal (rows | bytes | latency) ──bounded channel──> lake flush, Kafka acks, dead letters
//!       commit contiguous durable prefix <──── seq done ─┘
//! ```
//! When the channel is full the assigned partitions are paused (memory stays bounded) and
//! resumed once the sinks catch up. On a rebalance's revoke, and at shutdown, everything read
//! is sealed, made durable and committed before the partitions go.

pub mod config;
mod detect_stage;
pub mod metrics;
pub mod offsets;
pub mod route;
pub mod sink;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::metrics::{counter, gauge, histogram};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::BorrowedMessage;
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::{ClientContext, Message};
use simd_json::BorrowedValue;

use self::config::Config;
use self::metrics as m;
use self::offsets::{OffsetTracker, Tp};
use self::sink::{KafkaDeadLetter, Sealed, Sinks};
use ocelot_lake::{DeadLetterStore, LakeWriter, WriterOptions};
use ocelot_normalize::decode::{DeadLetter, Decoder, Origin, RecordSink};
use ocelot_normalize::{self as normalize, Normalizer};

/// How a run ended.
#[derive(Debug)]
pub enum Exit {
    /// Stopped by a signal with everything read durable and committed.
    Clean,
    /// Stopped by a signal, but some batches were not durable by the deadline: their offsets
    /// are not committed, so they are read again by the next run (nothing is lost).
    Incomplete { batches: usize },
}

/// One input topic's normalizer.
struct Input {
    kind: &'static str,
    normalizer: Box<dyn Normalizer>,
}

/// What the consumer gathered since the last seal.
#[derive(Default)]
struct Open {
    messages: usize,
    bytes: usize,
    events: usize,
    first_at: Option<Instant>,
    lasts: HashMap<Tp, i64>,
    dead: Vec<KafkaDeadLetter>,
    timestamps: Vec<i64>,
    /// Per topic: (messages, bytes); per source kind: events (metrics, counted per batch).
    per_topic: HashMap<String, (u64, u64)>,
    per_kind: HashMap<&'static str, u64>,
}

/// The consumer side's state. Shared with the rebalance callback, which runs inside `poll` on
/// the same thread, so the lock is never contended.
struct Engine {
    decoder: Decoder,
    inputs: HashMap<String, Input>,
    sources: HashMap<Tp, Arc<str>>,
    open: Open,
    seq: u64,
    tracker: OffsetTracker,
    tx: Option<SyncSender<Sealed>>,
    done: Receiver<u64>,
    /// A sealed batch the channel had no room for (consumption is paused meanwhile).
    waiting: Option<Sealed>,
    paused: bool,
    last_commit: Instant,
    batch: config::Batch,
}

/// Reads one message's records into the input's normalizer; dead letters carry the message's
/// Kafka coordinates.
struct MessageSink<'a> {
    input: &'a mut Input,
    open: &'a mut Open,
    topic: &'a str,
    partition: i32,
    offset: i64,
}

impl RecordSink for MessageSink<'_> {
    fn record(&mut self, v: &BorrowedValue<'_>, origin: &Origin) -> Result<(), String> {
        normalize::append_guarded(self.input.normalizer.as_mut(), v, origin)?;
        self.open.events += 1;
        Ok(())
    }
    fn dead_letter(&mut self, letter: DeadLetter) {
        tracing::debug!(origin = %letter.origin, offset = self.offset, reason = %letter.reason, "dead-lettered");
        self.open.dead.push(KafkaDeadLetter { letter, topic: self.topic.to_string(), partition: self.partition, offset: self.offset, source: self.input.kind });
    }
}

impl Engine {
    fn process(&mut self, msg: &BorrowedMessage<'_>) {
        let (topic, partition, offset) = (msg.topic(), msg.partition(), msg.offset());
        let tp: Tp = (topic.to_string(), partition);
        let source = self.sources.entry(tp.clone()).or_insert_with(|| Arc::from(format!("{topic}/{partition}"))).clone();
        let payload = msg.payload().unwrap_or_default();
        let open = &mut self.open;
        open.first_at.get_or_insert_with(Instant::now);
        open.messages += 1;
        open.bytes += payload.len();
        open.timestamps.push(msg.timestamp().to_millis().unwrap_or_else(|| chrono::Utc::now().timestamp_millis()));
        let t = open.per_topic.entry(topic.to_string()).or_default();
        t.0 += 1;
        t.1 += payload.len() as u64;
        open.lasts.insert(tp, offset);
        let Some(input) = self.inputs.get_mut(topic) else {
            // Subscribed topics are exactly the inputs; this cannot happen, but must not lose data.
            open.dead.push(KafkaDeadLetter {
                letter: DeadLetter { origin: Origin { source, line: None, offset: offset as u64, index: None }, reason: "no input configured for this topic".into(), bytes: payload.to_vec() },
                topic: topic.to_string(),
                partition,
                offset,
                source: "none",
            });
            return;
        };
        let before = open.events;
        if payload.is_empty() {
            let origin = Origin { source, line: None, offset: 0, index: None };
            open.dead.push(KafkaDeadLetter {
                letter: DeadLetter { origin, reason: "empty message: no payload".into(), bytes: Vec::new() },
                topic: topic.to_string(),
                partition,
                offset,
                source: input.kind,
            });
        } else {
            let mut sink = MessageSink { input, open, topic, partition, offset };
            self.decoder.decode(payload, &source, &mut sink);
        }
        let kind = self.inputs[topic].kind;
        *self.open.per_kind.entry(kind).or_default() += (self.open.events - before) as u64;
    }

    fn due(&self) -> bool {
        let o = &self.open;
        o.messages > 0 && (o.events >= self.batch.max_rows || o.bytes >= self.batch.max_bytes || o.first_at.is_some_and(|t| t.elapsed() >= Duration::from_millis(self.batch.max_latency_ms)))
    }

    /// Seals the open batch: takes the normalizers' rows and records which offsets it holds.
    fn seal(&mut self) -> Result<Option<Sealed>, String> {
        if self.open.messages == 0 {
            return Ok(None);
        }
        let open = std::mem::take(&mut self.open);
        let mut batches = Vec::new();
        for input in self.inputs.values_mut() {
            // Only a mapping bug fails here; stopping (uncommitted) is the way not to lose rows.
            batches.extend(input.normalizer.take_batches().map_err(|e| format!("sealing a batch failed (a bug): {e}"))?);
        }
        self.seq += 1;
        let lasts: Vec<(Tp, i64)> = open.lasts.into_iter().collect();
        self.tracker.sealed(self.seq, &lasts);
        for (topic, (msgs, bytes)) in open.per_topic {
            counter!(m::MESSAGES_IN, "topic" => topic.clone()).increment(msgs);
            counter!(m::BYTES_IN, "topic" => topic).increment(bytes);
        }
        for (kind, n) in open.per_kind {
            counter!(m::EVENTS_IN, "source" => kind).increment(n);
        }
        gauge!(m::BATCHES_IN_FLIGHT).set(self.tracker.in_flight() as f64);
        tracing::debug!(seq = self.seq, messages = open.messages, events = open.events, dead = open.dead.len(), "batch sealed");
        Ok(Some(Sealed { seq: self.seq, batches, dead: open.dead, timestamps: open.timestamps, sealed_at: Instant::now() }))
    }

    /// Housekeeping after each poll: takes acks and commits, seals a due batch, hands waiting
    /// batches on, pauses or resumes consumption.
    fn tick(&mut self, consumer: &BaseConsumer<Ctx>) -> Result<(), String> {
        let mut acked = false;
        while let Ok(seq) = self.done.try_recv() {
            self.tracker.durable(seq);
            acked = true;
        }
        // A failed commit (broker away, rebalance in progress) is retried each second even
        // when no new batch becomes durable.
        if acked || self.last_commit.elapsed() >= Duration::from_secs(1) {
            self.commit(consumer);
        }
        if self.waiting.is_none() && self.due() {
            self.waiting = self.seal()?;
        }
        if let Some(s) = self.waiting.take() {
            let tx = self.tx.as_ref().ok_or("sink stage closed")?;
            match tx.try_send(s) {
                Ok(()) => self.set_paused(consumer, false),
                Err(TrySendError::Full(s)) => {
                    self.waiting = Some(s);
                    self.set_paused(consumer, true);
                }
                Err(TrySendError::Disconnected(_)) => return Err("the sink stage stopped".into()),
            }
        }
        Ok(())
    }

    fn set_paused(&mut self, consumer: &BaseConsumer<Ctx>, pause: bool) {
        if pause == self.paused {
            return;
        }
        let Ok(assigned) = consumer.assignment() else { return };
        let res = if pause { consumer.pause(&assigned) } else { consumer.resume(&assigned) };
        match res {
            Ok(()) => {
                self.paused = pause;
                gauge!(m::PAUSED).set(if pause { 1.0 } else { 0.0 });
                if pause {
                    counter!(m::PAUSES).increment(1);
                    tracing::info!("sinks are behind: consumption paused");
                } else {
                    tracing::info!("sinks caught up: consumption resumed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "pause/resume failed"),
        }
    }

    /// Commits the contiguous durable prefix of every partition (synchronously: the commit
    /// latency is measured and a failure is retried with the next batch).
    fn commit(&mut self, consumer: &BaseConsumer<Ctx>) {
        self.last_commit = Instant::now();
        gauge!(m::BATCHES_IN_FLIGHT).set(self.tracker.in_flight() as f64);
        let todo = self.tracker.to_commit();
        if todo.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for ((t, p), next) in &todo {
            if let Err(e) = tpl.add_partition_offset(t, *p, Offset::Offset(*next)) {
                tracing::warn!(error = %e, "bad offset to commit");
            }
        }
        let started = Instant::now();
        match consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => {
                histogram!(m::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
                for ((t, p), next) in &todo {
                    gauge!(m::COMMITTED_OFFSET, "topic" => t.clone(), "partition" => p.to_string()).set(*next as f64);
                }
                self.tracker.committed(&todo);
                tracing::debug!(partitions = todo.len(), "offsets committed");
            }
            Err(e) => {
                counter!(m::COMMIT_ERRORS).increment(1);
                tracing::warn!(error = %e, "offset commit failed; it is retried with the next batch");
            }
        }
    }

    /// Seals what is open, waits until every sealed batch is durable (or the deadline), and
    /// commits. Returns the batches still not durable.
    fn drain(&mut self, consumer: &BaseConsumer<Ctx>, deadline: Instant) -> Result<usize, String> {
        let mut pending = Vec::new();
        pending.extend(self.waiting.take());
        pending.extend(self.seal()?);
        if let Some(tx) = &self.tx {
            for s in pending {
                // Blocks while the sinks are busy; they finish or give up at the deadline.
                if tx.send(s).is_err() {
                    break;
                }
            }
        }
        while self.tracker.in_flight() > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.done.recv_timeout(left.max(Duration::from_millis(1))) {
                Ok(seq) => self.tracker.durable(seq),
                Err(RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(_) => break,
            }
        }
        self.commit(consumer);
        Ok(self.tracker.in_flight())
    }
}

/// The consumer's context: rebalances flush and commit; statistics give the lag.
struct Ctx {
    engine: Arc<Mutex<Option<Engine>>>,
    rebalance_timeout: Duration,
    health: Arc<m::Health>,
}

impl ClientContext for Ctx {
    fn stats(&self, stats: Statistics) {
        for (topic, t) in &stats.topics {
            for (p, part) in &t.partitions {
                if *p >= 0 && part.consumer_lag >= 0 {
                    gauge!(m::CONSUMER_LAG, "topic" => topic.clone(), "partition" => p.to_string()).set(part.consumer_lag as f64);
                }
            }
        }
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => tracing::error!(target: "librdkafka", fac, "{log_message}"),
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", fac, "{log_message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => tracing::info!(target: "librdkafka", fac, "{log_message}"),
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", fac, "{log_message}"),
        }
    }
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else { return };
        self.health.assigned.store(false, Ordering::Relaxed);
        let mut guard = self.engine.lock().unwrap_or_else(|p| p.into_inner());
        let Some(engine) = guard.as_mut() else { return };
        let revoked: Vec<Tp> = tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
        tracing::info!(partitions = revoked.len(), "partitions revoked: flushing and committing what was read");
        match engine.drain(consumer, Instant::now() + self.rebalance_timeout) {
            Ok(0) => {}
            Ok(n) => tracing::warn!(batches = n, "not durable before the partitions went: their next owner reads them again (duplicates, no loss)"),
            Err(e) => tracing::error!(error = %e, "flush at revoke failed"),
        }
        for tp in &revoked {
            engine.tracker.forget(tp);
        }
        engine.paused = false;
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            tracing::info!(partitions = tpl.count(), "partitions assigned");
            gauge!(m::ASSIGNED).set(tpl.count() as f64);
            self.health.assigned.store(true, Ordering::Relaxed);
            let _ = consumer;
        }
    }
}

/// Runs until SIGTERM or SIGINT (a second signal exits at once, with status 1).
pub fn run(cfg: Config) -> Result<Exit, String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone()).map_err(|e| e.to_string())?;
        signal_hook::flag::register(sig, stop.clone()).map_err(|e| e.to_string())?;
    }
    run_until(cfg, stop)
}

/// Runs until `stop` is set.
pub fn run_until(cfg: Config, stop: Arc<AtomicBool>) -> Result<Exit, String> {
    let health = m::Health::new();
    if !cfg.http.listen.is_empty() {
        let handle = m::install()?;
        m::serve(&cfg.http.listen, handle, health.clone())?;
    }
    let props = cfg.client_properties()?;
    let lake = cfg.lake.storage()?;
    if let Some(dir) = lake.local_root() {
        std::fs::create_dir_all(dir).map_err(|e| format!("lake.path: cannot create {}: {e}", dir.display()))?;
    }

    let route_topic = cfg.detect.route_topic.clone().filter(|_| cfg.detect.enabled);
    let producer: Option<FutureProducer> = if cfg.output.kafka.is_some() || cfg.dead_letter.topic.is_some() || route_topic.is_some() {
        let mut c = ClientConfig::new();
        // A delivery librdkafka cannot make within a minute fails back to the sink, which
        // retries the batch (librdkafka's own default waits 5 minutes); kafka.settings may
        // change it.
        c.set("linger.ms", "20").set("message.max.bytes", "8388608").set("message.timeout.ms", "60000");
        for (k, v) in &props {
            c.set(k, v);
        }
        // Consumer-only properties would only produce warnings on a producer.
        for k in [
            "group.id",
            "auto.offset.reset",
            "enable.auto.commit",
            "enable.auto.offset.store",
            "queued.max.messages.kbytes",
            "fetch.max.bytes",
            "max.partition.fetch.bytes",
            "session.timeout.ms",
            "max.poll.interval.ms",
            "partition.assignment.strategy",
        ] {
            c.remove(k);
        }
        Some(c.create().map_err(|e| format!("kafka producer: {e}"))?)
    } else {
        None
    };

    cfg.time.apply();
    let give_up = Arc::new(AtomicBool::new(false));
    // Routed: this replica's engines run in the detect stage, one per route partition.
    let spec = engine_spec(&cfg.detect, &cfg.agents, &cfg.time);
    let (detect, route, detect_stage) = match (&route_topic, spec) {
        (Some(topic), Some(spec)) => {
            let partitions = route_partitions(producer.as_ref().expect("a producer exists when routing"), topic)?;
            let group = format!("{}.detect", cfg.kafka.group_id);
            let max_horizon_ms = i64::from(cfg.detect.replay_horizon_hours) * 3_600_000;
            let opts = detect_stage::Options { topic, group: &group, props: &props, lake: &lake, zstd_level: cfg.lake.zstd_level, max_horizon_ms };
            let stage = detect_stage::DetectStage::start(opts, spec, give_up.clone())?;
            (None, Some((topic.clone(), partitions)), Some(stage))
        }
        (_, Some(spec)) => (Some(spec.build().map_err(|e| format!("detect.rules: {e}"))?), None, None),
        (_, None) => (None, None, None),
    };
    let delay_ms: u64 = std::env::var("OCELOT_FAULT_SINK_DELAY_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let sinks = Sinks {
        lake: LakeWriter::new(lake.clone(), WriterOptions { zstd_level: cfg.lake.zstd_level, small_files: true, ..WriterOptions::default() }),
        producer,
        json: cfg.output.kafka.clone(),
        dead_topic: cfg.dead_letter.topic.clone().map(|t| (t, cfg.dead_letter.max_message_bytes)),
        dead_store: DeadLetterStore::new(lake.clone()),
        give_up: give_up.clone(),
        health: health.clone(),
        delay: Duration::from_millis(delay_ms),
        detect,
        route,
    };
    let outbox = outbox(&cfg, &lake, &give_up)?;
    let (tx, rx) = mpsc::sync_channel::<Sealed>(cfg.batch.max_in_flight);
    let (done_tx, done_rx) = mpsc::channel();
    let sink_thread = std::thread::Builder::new().name("sinks".into()).spawn(move || sinks.run(rx, done_tx)).map_err(|e| e.to_string())?;

    let mut inputs = HashMap::new();
    let registry = std::sync::Arc::new(cfg.registry()?);
    for i in &cfg.inputs {
        let normalizer = normalize::with_agents(&i.source, registry.clone())?;
        inputs.insert(i.topic.clone(), Input { kind: normalizer.kind(), normalizer });
    }
    let engine = Engine {
        decoder: Decoder::new((&cfg.limits).into()),
        inputs,
        sources: HashMap::new(),
        open: Open::default(),
        seq: 0,
        tracker: OffsetTracker::default(),
        tx: Some(tx),
        done: done_rx,
        waiting: None,
        paused: false,
        last_commit: Instant::now(),
        batch: cfg.batch.clone(),
    };
    let engine = Arc::new(Mutex::new(Some(engine)));
    let shutdown = Duration::from_secs(cfg.shutdown_timeout_secs);

    let mut c = ClientConfig::new();
    // Ours: offsets are committed by hand, behind durable writes.
    prefetch(&mut c)
        .set("group.id", &cfg.kafka.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("statistics.interval.ms", "5000");
    for (k, v) in &props {
        c.set(k, v);
    }
    c.set_log_level(RDKafkaLogLevel::Warning);
    let consumer: BaseConsumer<Ctx> = c.create_with_context(Ctx { engine: engine.clone(), rebalance_timeout: shutdown, health: health.clone() }).map_err(|e| format!("kafka consumer: {e}"))?;
    let topics: Vec<&str> = cfg.inputs.iter().map(|i| i.topic.as_str()).collect();
    consumer.subscribe(&topics).map_err(|e| format!("subscribe to {topics:?}: {e}"))?;
    tracing::info!(brokers = %cfg.kafka.brokers, group = %cfg.kafka.group_id, ?topics, %lake, "ocelot run started");

    // Stops with `stop`: a merge under way is cancelled and its output deleted (kill -9 mid-merge
    // is safe too; its output is an orphan the next clean-up removes).
    let compaction = compactor(&cfg.lake, &lake, stop.clone())?;
    let result = main_loop(&consumer, &engine, &stop, &health);

    // Shutdown: no more fetching; flush and commit within the deadline.
    let deadline = Instant::now() + shutdown;
    let watchdog_give_up = give_up.clone();
    std::thread::spawn(move || {
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
        watchdog_give_up.store(true, Ordering::Relaxed);
    });
    let left = {
        let mut guard = engine.lock().unwrap_or_else(|p| p.into_inner());
        let e = guard.as_mut().expect("engine present until shutdown");
        let left = e.drain(&consumer, deadline);
        // Closing the channel lets the sink stage finish.
        e.tx = None;
        left
    };
    consumer.unsubscribe();
    drop(consumer);
    engine.lock().unwrap_or_else(|p| p.into_inner()).take();
    join_by_deadline(sink_thread, &give_up, "the sink stage");
    // Everything ingested is on the route topic: the detect stage reads to its end.
    if let Some(stage) = detect_stage {
        stage.finishing.store(true, Ordering::Relaxed);
        join_by_deadline(stage.thread, &give_up, "the detect stage");
    }
    // The findings are all in the lake now: each target delivers up to them, by the deadline
    // (what it has not delivered then stays in the outbox for the next start).
    for feed in outbox.map(crate::forward::outbox::Outbox::finish).unwrap_or_default() {
        join_by_deadline(feed, &give_up, "forwarding");
    }
    if let Some(c) = compaction {
        // Cancelled merges stop at their next input file; one left behind wrote an orphan the
        // next start removes.
        join_by_deadline(c, &give_up, "compaction");
    }
    result?;
    match left? {
        0 => {
            tracing::info!("stopped: everything read is durable and committed");
            Ok(Exit::Clean)
        }
        n => Ok(Exit::Incomplete { batches: n }),
    }
}

/// How Ocelot's consumers (ingest and detect stage) fetch. The prefetch queue is kept small,
/// because it is memory we cannot pause (the detect stage's, at librdkafka's 64 MiB default,
/// took a routed run to 2.1 GiB). A short fetch wait: some brokers (tansu) hold a fetch for the
/// whole wait even when data is there, which halved throughput and added up to 500 ms (the
/// librdkafka default) to ingest latency. A short queue backoff: once the small prefetch queue
/// is full, librdkafka waits fetch.queue.backoff.ms (default 1 s) before fetching that
/// partition again, which left the consumer idle and halved throughput against a broker that
/// keeps up (the mock cluster: 12.7k -> 26k events/s). `kafka.settings` override these.
pub(super) fn prefetch(c: &mut ClientConfig) -> &mut ClientConfig {
    c.set("queued.max.messages.kbytes", "16384").set("fetch.wait.max.ms", "50").set("fetch.queue.backoff.ms", "20")
}

/// Waits for a stage's thread to end, until the shutdown deadline (`give_up`) and a grace of
/// 2 s after it. A thread still busy then (a write that hangs) is left to the process exit,
/// which is safe: what it had not made durable was not committed, and its temporaries are
/// removed at the next start.
fn join_by_deadline<T>(h: std::thread::JoinHandle<T>, give_up: &AtomicBool, what: &str) -> bool {
    let mut grace_ends = None;
    while !h.is_finished() {
        if give_up.load(Ordering::Relaxed) {
            let end = *grace_ends.get_or_insert_with(|| Instant::now() + Duration::from_secs(2));
            if Instant::now() >= end {
                tracing::warn!("{what} did not stop by the shutdown deadline; exiting without it (nothing it had not made durable was committed)");
                return false;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = h.join();
    true
}

/// The `[[forward]]` targets, fed from the lake's outbox (None when there are none, or
/// detection is off).
fn outbox(cfg: &Config, lake: &ocelot_lake::Storage, give_up: &Arc<AtomicBool>) -> Result<Option<crate::forward::outbox::Outbox>, String> {
    if cfg.forward.is_empty() {
        return Ok(None);
    }
    if !cfg.detect.enabled {
        tracing::warn!("[[forward]] is set but detect.enabled = false: there will be no findings to forward");
        return Ok(None);
    }
    let dead = crate::forward::DeadLetters::new(DeadLetterStore::new(lake.clone()));
    crate::forward::outbox::Outbox::start(lake, &cfg.forward, dead, give_up.clone()).map(Some)
}

/// The route topic's partition count; an error naming the fix when it does not exist.
fn route_partitions(producer: &FutureProducer, topic: &str) -> Result<i32, String> {
    let md = producer.client().fetch_metadata(Some(topic), Duration::from_secs(10)).map_err(|e| format!("detect.route_topic: metadata of `{topic}`: {e}"))?;
    let n = md.topics().iter().find(|t| t.name() == topic && t.error().is_none()).map_or(0, |t| t.partitions().len());
    if n == 0 {
        return Err(format!("detect.route_topic: topic `{topic}` does not exist on the brokers: create it with as many partitions as detect stages may run (e.g. `kafka-topics.sh --create --topic {topic} --partitions 8`)"));
    }
    Ok(n as i32)
}

/// The detection engine `[detect]` asks for (None when switched off).
fn engine_spec(cfg: &config::DetectConfig, agents: &[ocelot_normalize::agents::AgentRule], time: &config::TimeConfig) -> Option<crate::detect::EngineSpec> {
    cfg.enabled.then(|| crate::detect::EngineSpec {
        rules: cfg.rules.as_ref().map(std::path::PathBuf::from),
        placeholders: cfg.placeholders.clone(),
        agents: agents.to_vec(),
        suppress_minutes: cfg.suppress_minutes,
        mode: crate::detect::Mode::Stream { max_skew_ms: i64::try_from(time.max_skew_secs).unwrap_or(i64::MAX / 2).saturating_mul(1000) },
    })
}

/// The background compaction: every `lake.compact_interval_secs`, each partition's small
/// files are merged (see `lake::compact`); a failed pass is logged and tried again next time.
/// Stops with the run (a pass under way finishes its current merges first: kill -9 is safe).
fn compactor(cfg: &ocelot_lake::config::Lake, lake: &ocelot_lake::Storage, stop: Arc<AtomicBool>) -> Result<Option<std::thread::JoinHandle<()>>, String> {
    if cfg.compact_interval_secs == 0 {
        return Ok(None);
    }
    let every = Duration::from_secs(cfg.compact_interval_secs);
    let opts = ocelot_lake::CompactOptions {
        target_file_bytes: cfg.target_file_mb << 20,
        zstd_level: cfg.zstd_level,
        retain: Duration::from_secs(cfg.retain_replaced_secs),
        // One core: the other stays with ingest.
        threads: 1,
        ..Default::default()
    };
    let lake = lake.clone();
    let handle = std::thread::Builder::new()
        .name("compaction".into())
        .spawn(move || {
            let mut next = Instant::now() + every;
            while !stop.load(Ordering::Relaxed) {
                if Instant::now() < next {
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
                let t = Instant::now();
                match ocelot_lake::compact(&lake, &opts, &stop, &|_, _| {}) {
                    Ok(s) => {
                        counter!(m::LAKE_COMPACTED_FILES).increment(s.files_in as u64);
                        if s.files_in > 0 {
                            tracing::info!(files_in = s.files_in, files_out = s.files_out, mb_in = s.bytes_in >> 20, mb_out = s.bytes_out >> 20, secs = t.elapsed().as_secs_f32(), "lake compacted");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "lake compaction failed; it is tried again at the next interval"),
                }
                next = Instant::now() + every;
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(Some(handle))
}

fn main_loop(consumer: &BaseConsumer<Ctx>, engine: &Mutex<Option<Engine>>, stop: &AtomicBool, health: &m::Health) -> Result<(), String> {
    while !stop.load(Ordering::Relaxed) {
        health.beat();
        let polled = consumer.poll(Duration::from_millis(50));
        let started = Instant::now();
        let mut guard = engine.lock().unwrap_or_else(|p| p.into_inner());
        let e = guard.as_mut().expect("engine present until shutdown");
        let worked = match polled {
            Some(Ok(msg)) => {
                e.process(&msg);
                true
            }
            Some(Err(err)) => {
                tracing::warn!(error = %err, "kafka consumer error");
                false
            }
            None => false,
        };
        // Blocking on a full channel is the sink's time, not this stage's.
        if worked {
            m::busy("normalize", started);
        }
        e.tick(consumer)?;
    }
    tracing::info!("stop requested: flushing and committing");
    Ok(())
}
