//! The sink stage: makes each sealed batch durable in every sink, then reports it done.
//!
//! Runs on its own thread, fed by a bounded channel (the back-pressure point), one batch at a
//! time in order: Parquet files renamed into place in the lake, OCSF JSON produced to Kafka and
//! acknowledged, dead letters acknowledged by the dead-letter topic (or written to the lake's
//! `_dead_letter/`). A failing write is retried with backoff until it succeeds, so nothing is
//! reported durable that is not; at shutdown the retries give up and the batch stays
//! uncommitted (it is read again on restart).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;

use super::config::KafkaOutput;
use super::metrics as m;
use ocelot_lake::dead_letter::reason_kind;
use ocelot_lake::{DeadLetterStore, LakeWriter};
use ocelot_normalize::decode::DeadLetter;
use ocelot_normalize::ocsf_json;
use ocelot_normalize::OcsfBatch;

/// A dead letter with the Kafka coordinates of the message it came from.
pub struct KafkaDeadLetter {
    pub letter: DeadLetter,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The source kind of the input topic (`cloudtrail`, `auto`).
    pub source: &'static str,
}

/// A sealed batch: everything normalized from a run of messages.
pub struct Sealed {
    pub seq: u64,
    pub batches: Vec<OcsfBatch>,
    pub dead: Vec<KafkaDeadLetter>,
    /// Kafka timestamps (ms) of the batch's messages, for the end-to-end latency.
    pub timestamps: Vec<i64>,
    pub sealed_at: Instant,
}

pub struct Sinks {
    pub lake: LakeWriter,
    /// Present when a sink writes to Kafka (OCSF JSON output or dead-letter topic).
    pub producer: Option<FutureProducer>,
    pub json: Option<KafkaOutput>,
    /// The dead-letter topic and its size cap; `None`: dead letters go to `dead_store`.
    pub dead_topic: Option<(String, usize)>,
    /// The lake's `_dead_letter/`: the dead-letter store without a topic, and the fallback for
    /// a dead letter the topic refuses.
    pub dead_store: DeadLetterStore,
    /// Set at the shutdown deadline: retries stop and the stage exits.
    pub give_up: Arc<AtomicBool>,
    /// `sinks_ok` says whether the last write succeeded (`/readyz`).
    pub health: Arc<m::Health>,
    /// Fault injection for tests and drills (`OCELOT_FAULT_SINK_DELAY_MS`): a pause before each
    /// batch, as a slow object store or disk would cause.
    pub delay: Duration,
    /// The detection engine (`[detect]`): its findings are made durable with the batch that
    /// caused them, in the lake's `findings` table (the outbox `[[forward]]` targets are fed
    /// from: `forward/outbox.rs`).
    pub detect: Option<ocelot_detectors::Engine>,
    /// `[detect] route_topic` and its partition count: the events go there, by detection
    /// key, for the detect stages of every replica (`route.rs`), instead of to `detect`.
    pub route: Option<(String, i32)>,
}

/// A record to produce, owned so that it can be produced again after a failure.
struct Out {
    topic: String,
    /// A partition of our choosing (the route topic's), or the producer's partitioner.
    partition: Option<i32>,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    headers: Vec<(&'static str, Vec<u8>)>,
}

impl Sinks {
    /// Takes sealed batches until the channel closes; sends each batch's seq once it is durable.
    pub fn run(mut self, rx: Receiver<Sealed>, done: Sender<u64>) {
        for sealed in rx {
            if !self.delay.is_zero() {
                std::thread::sleep(self.delay);
            }
            let seq = sealed.seq;
            if !self.write(sealed) {
                tracing::warn!(seq, "sink stage gave up at shutdown: the batch stays uncommitted and will be read again");
                return;
            }
            if done.send(seq).is_err() {
                return;
            }
        }
        // Input is over (shutdown): the windows still open are evaluated and kept.
        if let Some(engine) = self.detect.as_mut() {
            let findings = engine.finish();
            self.buffer_findings(&findings);
            let lake = &mut self.lake;
            if retry(&self.give_up, &self.health.sinks_ok, "lake", || lake.flush().map(|_| ()).map_err(|e| e.to_string())).is_none() {
                tracing::warn!(findings = findings.len(), "the findings of the windows open at shutdown were not written before the deadline");
            }
        }
    }

    fn buffer_findings(&mut self, findings: &[ocelot_detectors::Finding]) {
        if findings.is_empty() {
            return;
        }
        match ocelot_lake::findings::to_batch(findings) {
            Ok(b) => {
                self.lake.buffer_as(ocelot_lake::findings::FINDINGS_TABLE, &b);
                metrics::counter!(m::FINDINGS).increment(findings.len() as u64);
            }
            // Only a schema bug can fail here: say so loudly, the events are still written.
            Err(e) => tracing::error!(error = %e, findings = findings.len(), "findings could not be encoded for the lake"),
        }
    }

    /// Makes one batch durable everywhere; false if it gave up (shutdown).
    fn write(&mut self, s: Sealed) -> bool {
        let mut outs = Vec::new();
        let started = Instant::now();
        if let Some(j) = &self.json {
            for b in &s.batches {
                let topic = if j.topic_per_class { format!("{}.{}", j.topic, b.class.name) } else { j.topic.clone() };
                let mut lines = Vec::new();
                if let Err(e) = ocsf_json::write_batch(&b.batch, &mut lines) {
                    // Only a schema bug can fail here; the lake still gets the rows.
                    tracing::error!(error = %e, class = %b.class.name, "OCSF JSON encoding failed");
                    continue;
                }
                for line in lines.split(|c| *c == b'\n').filter(|l| !l.is_empty()) {
                    outs.push(Out { topic: topic.clone(), partition: None, key: Some(b.class.name.as_bytes().to_vec()), payload: line.to_vec(), headers: vec![] });
                }
            }
        }
        let json_rows = outs.len();
        m::busy("produce", started);
        let started = Instant::now();
        if let Some((topic, partitions)) = &self.route {
            for b in &s.batches {
                match super::route::split(&b.batch, *partitions) {
                    Ok(parts) => {
                        for (p, part) in parts {
                            for payload in super::route::encode_within(&part, super::route::MAX_MESSAGE_BYTES) {
                                match payload {
                                    Ok(payload) => outs.push(Out {
                                        topic: topic.clone(),
                                        partition: Some(p),
                                        key: None,
                                        payload,
                                        headers: vec![(super::detect_stage::CLASS_HEADER, b.class.name.as_bytes().to_vec())],
                                    }),
                                    // Only a schema bug can fail here; the lake still gets the rows.
                                    Err(e) => tracing::error!(error = %e, class = %b.class.name, "route topic: Arrow IPC encoding failed"),
                                }
                            }
                        }
                    }
                    Err(e) => tracing::error!(error = %e, class = %b.class.name, "route topic: splitting by detection key failed"),
                }
            }
        }
        m::busy("detect", started);
        // Detection runs beside the lake write (two cores): the events' files are encoded and
        // committed while the engine reads the same batches; the findings are committed right
        // after, and the offsets only once both are durable.
        let (detect, lake, batches) = (&mut self.detect, &mut self.lake, &s.batches);
        let (findings, events_durable) = std::thread::scope(|scope| {
            let detection = detect.as_mut().map(|engine| {
                scope.spawn(move || {
                    let started = Instant::now();
                    let mut findings = Vec::new();
                    for b in batches {
                        findings.extend(engine.process(&b.batch, &b.class.name));
                    }
                    m::publish_detect_stats(&engine.stats());
                    m::busy("detect", started);
                    findings
                })
            });
            let started = Instant::now();
            for b in batches {
                lake.buffer(b);
            }
            let durable = retry(&self.give_up, &self.health.sinks_ok, "lake", || lake.flush().map(|_| ()).map_err(|e| e.to_string())).is_some();
            m::busy("lake", started);
            let findings = detection.map(|h| {
                h.join().unwrap_or_else(|_| {
                    // A detector's panic costs its findings for this batch, not the pipeline.
                    tracing::error!("the detection engine panicked on a batch; its findings for the batch are lost (a bug: please report it)");
                    Vec::new()
                })
            });
            (findings.unwrap_or_default(), durable)
        });
        if !events_durable {
            return false;
        }
        let started = Instant::now();
        self.buffer_findings(&findings);
        let lake = &mut self.lake;
        if retry(&self.give_up, &self.health.sinks_ok, "lake", || lake.flush().map(|_| ()).map_err(|e| e.to_string())).is_none() {
            return false;
        }
        m::busy("lake", started);
        for b in &s.batches {
            metrics::counter!(m::EVENTS_OUT, "class" => b.class.name.clone(), "sink" => "lake").increment(b.batch.num_rows() as u64);
        }
        let started = Instant::now();
        let mut dead = s.dead;
        if let Some(p) = &self.producer {
            let Some(too_large) = produce_all(p, outs, &self.give_up, &self.health.sinks_ok) else { return false };
            // An OCSF event the broker refuses as too large becomes a dead letter, not a stall.
            for o in too_large {
                dead.push(KafkaDeadLetter {
                    letter: DeadLetter {
                        origin: ocelot_normalize::decode::Origin { source: Arc::from("output.kafka"), line: None, offset: 0, index: None },
                        reason: format!("kafka output: the broker refused the {}-byte OCSF event as too large", o.payload.len()),
                        bytes: o.payload,
                    },
                    topic: o.topic,
                    partition: -1,
                    offset: -1,
                    source: "ocsf",
                });
            }
        }
        if json_rows > 0 {
            metrics::counter!(m::EVENTS_OUT, "class" => "all", "sink" => "kafka").increment(json_rows as u64);
        }
        if !self.write_dead(dead) {
            return false;
        }
        m::busy("produce", started);
        let now_ms = chrono::Utc::now().timestamp_millis();
        let latency = metrics::histogram!(m::INGEST_LATENCY);
        for ts in &s.timestamps {
            latency.record((now_ms - ts).max(0) as f64 / 1000.0);
        }
        metrics::histogram!(m::BATCH_SECONDS).record(s.sealed_at.elapsed().as_secs_f64());
        true
    }

    fn write_dead(&mut self, dead: Vec<KafkaDeadLetter>) -> bool {
        if dead.is_empty() {
            return true;
        }
        for d in &dead {
            metrics::counter!(m::DEAD_LETTERS, "reason" => reason_kind(&d.letter.reason).to_string()).increment(1);
        }
        let mut to_store: Vec<DeadLetter> = Vec::new();
        match &self.dead_topic {
            None => to_store.extend(dead.into_iter().map(|d| d.letter)),
            Some((topic, max)) => {
                let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                let outs = dead.into_iter().map(|d| dead_letter_record(d, topic, *max, &now)).collect();
                let producer = self.producer.as_ref().expect("a producer exists when a dead-letter topic is set");
                let Some(refused) = produce_all(producer, outs, &self.give_up, &self.health.sinks_ok) else { return false };
                for o in refused {
                    tracing::error!(topic = %o.topic, size = o.payload.len(), "the dead-letter topic refused a dead letter as too large (lower dead_letter.max_message_bytes); it goes to the lake's _dead_letter/");
                    let h = |name: &str| o.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
                    let source = Arc::from(format!("{}/{}", h("ocelot.source.topic"), h("ocelot.source.partition")));
                    let origin = ocelot_normalize::decode::Origin { source, line: None, offset: h("ocelot.source.offset").parse().unwrap_or(0), index: None };
                    to_store.push(DeadLetter { origin, reason: h("ocelot.reason"), bytes: o.payload });
                }
            }
        }
        if to_store.is_empty() {
            return true;
        }
        let store = &mut self.dead_store;
        for d in &to_store {
            store.push(d);
        }
        retry(&self.give_up, &self.health.sinks_ok, "dead_letter", || store.flush().map(|_| ()).map_err(|e| e.to_string())).is_some()
    }
}

/// The dead-letter topic's record: the original bytes (cut to the limit), and headers that say
/// why and where from.
fn dead_letter_record(d: KafkaDeadLetter, topic: &str, max: usize, now: &str) -> Out {
    let mut headers = vec![
        ("ocelot.reason", d.letter.reason.into_bytes()),
        ("ocelot.source.topic", d.topic.into_bytes()),
        ("ocelot.source.partition", d.partition.to_string().into_bytes()),
        ("ocelot.source.offset", d.offset.to_string().into_bytes()),
        ("ocelot.source.kind", d.source.as_bytes().to_vec()),
        ("ocelot.time", now.as_bytes().to_vec()),
    ];
    let o = &d.letter.origin;
    let position = match (o.line, o.index) {
        (Some(l), Some(i)) => format!("line {l}, record {i}"),
        (Some(l), None) => format!("line {l}"),
        (None, Some(i)) => format!("byte {}, record {i}", o.offset),
        (None, None) => format!("byte {}", o.offset),
    };
    headers.push(("ocelot.position", position.into_bytes()));
    let mut payload = d.letter.bytes;
    if payload.len() > max {
        headers.push(("ocelot.original_size", payload.len().to_string().into_bytes()));
        payload.truncate(max);
    }
    Out { topic: topic.to_string(), partition: None, key: None, payload, headers }
}

/// Retries `f` with exponential backoff (100 ms to 10 s) until it succeeds; `None` once
/// `give_up` is set.
fn retry<T>(give_up: &AtomicBool, ok: &AtomicBool, sink: &'static str, mut f: impl FnMut() -> Result<T, String>) -> Option<T> {
    let mut backoff = Duration::from_millis(100);
    loop {
        match f() {
            Ok(v) => {
                ok.store(true, Ordering::Relaxed);
                return Some(v);
            }
            Err(e) => {
                ok.store(false, Ordering::Relaxed);
                metrics::counter!(m::SINK_ERRORS, "sink" => sink).increment(1);
                tracing::warn!(sink, error = %e, retry_in_ms = backoff.as_millis() as u64, "sink write failed; retrying");
                if give_up.load(Ordering::Relaxed) {
                    return None;
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Errors the broker will give again however often we retry.
fn permanent(e: &KafkaError) -> bool {
    matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize))
}

/// Produces every record and waits for every acknowledgement, producing failed ones again with
/// backoff. Returns the records the broker refused as too large; `None` if it gave up.
fn produce_all(p: &FutureProducer, mut outs: Vec<Out>, give_up: &AtomicBool, ok: &AtomicBool) -> Option<Vec<Out>> {
    let mut refused = Vec::new();
    let mut backoff = Duration::from_millis(100);
    while !outs.is_empty() {
        let mut waiting = Vec::with_capacity(outs.len());
        for o in outs.drain(..) {
            loop {
                let mut headers = OwnedHeaders::new_with_capacity(o.headers.len());
                for (k, v) in &o.headers {
                    headers = headers.insert(Header { key: k, value: Some(v) });
                }
                let mut rec = FutureRecord::<[u8], [u8]>::to(&o.topic).payload(&o.payload).headers(headers);
                if let Some(k) = &o.key {
                    rec = rec.key(k);
                }
                if let Some(p) = o.partition {
                    rec = rec.partition(p);
                }
                match p.send_result(rec) {
                    Ok(fut) => {
                        waiting.push((fut, o));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => std::thread::sleep(Duration::from_millis(5)),
                    Err((e, _)) if permanent(&e) => {
                        refused.push(o);
                        break;
                    }
                    Err((e, _)) => {
                        metrics::counter!(m::SINK_ERRORS, "sink" => "kafka").increment(1);
                        tracing::warn!(error = %e, "kafka produce failed; retrying");
                        if give_up.load(Ordering::Relaxed) {
                            return None;
                        }
                        std::thread::sleep(backoff);
                    }
                }
            }
        }
        for (fut, o) in waiting {
            match futures_executor::block_on(fut) {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) if permanent(&e) => refused.push(o),
                Ok(Err((e, msg))) => {
                    note_failure(&e, &msg);
                    outs.push(o);
                }
                Err(_) => outs.push(o),
            }
        }
        if !outs.is_empty() {
            ok.store(false, Ordering::Relaxed);
            if give_up.load(Ordering::Relaxed) {
                return None;
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }
    ok.store(true, Ordering::Relaxed);
    Some(refused)
}

fn note_failure(e: &KafkaError, msg: &OwnedMessage) {
    metrics::counter!(m::SINK_ERRORS, "sink" => "kafka").increment(1);
    let headers = msg.headers().map_or(0, |h| h.count());
    tracing::warn!(error = %e, topic = msg.topic(), headers, "kafka delivery failed; producing again");
}
