//! Findings forwarders: each `[[forward]]` target gets the findings the engine emits, through
//! its own bounded queue, in batches the target accepts, with retries (exponential backoff
//! with jitter, the target's `Retry-After` respected) and a request rate cap. A finding the
//! target refuses for good, or that still fails after the last attempt, goes to the lake's
//! dead-letter store with the reason: every finding is delivered or dead-lettered.
//!
//! ```text
//!  lake `findings` (outbox.rs: a cursor per target) ──submit──> queue (bounded) ──> worker task
//!      (waits while a queue is full: back-pressure)       batch -> encode -> send -> retry / dead-letter
//! ```
//! The finding uid is the idempotency key of every target (`_id`, Kafka key, webhook
//! `Idempotency-Key`...), so a retry or a replay updates rather than duplicates. In `ocelot
//! run` the queues are fed from the lake's durable outbox, whose cursor moves only past what
//! was acknowledged; `ocelot forward --from-lake` and the demo submit directly.

mod asff;
mod bulk;
pub mod config;
pub mod from_lake;
mod hec;
mod http;
mod kafka;
pub mod outbox;
mod securityhub;
mod syslog;
mod webhook;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::mpsc;

use self::config::{Delivery, ForwardConfig};
use ocelot_lake::DeadLetterStore;
use ocelot_normalize::decode::{DeadLetter, Origin};

/// Findings sent and acknowledged, by forwarder.
pub const SENT: &str = "ocelot_forward_sent_total";
/// Findings sent again after a failure, by forwarder.
pub const RETRIED: &str = "ocelot_forward_retried_total";
/// Findings dead-lettered (refused, or out of attempts), by forwarder.
pub const FAILED: &str = "ocelot_forward_failed_total";
/// Findings waiting in the queue, by forwarder.
pub const QUEUE_DEPTH: &str = "ocelot_forward_queue_depth";
/// Times the pipeline waited because a forwarder's queue was full, by forwarder.
pub const BACKPRESSURE: &str = "ocelot_forward_backpressure_total";
/// Seconds from queueing a finding to the target's acknowledgement, by forwarder.
pub const LATENCY: &str = "ocelot_forward_latency_seconds";

/// A finding to forward: the OCSF Detection Finding and what targets key and stamp it by.
#[derive(Debug)]
pub struct Item {
    pub uid: String,
    /// OCSF `severity_id` (1 informational .. 5 critical, 6 fatal).
    pub severity_id: i64,
    /// Event time of the finding (its last hit), ms since the epoch.
    pub time_ms: i64,
    pub ocsf: serde_json::Value,
    queued: Instant,
}

impl Item {
    pub fn new(ocsf: serde_json::Value) -> Item {
        let uid = ocsf.pointer("/finding_info/uid").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let time_ms = ocsf.get("time").and_then(|v| v.as_i64()).unwrap_or_default();
        let severity_id = ocsf.get("severity_id").and_then(|v| v.as_i64()).unwrap_or_default();
        Item { uid, severity_id, time_ms, ocsf, queued: Instant::now() }
    }
}

/// What became of one finding in one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Sent,
    /// Worth trying again (throttled, server error, network); `after` is the target's own hint.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// The target will never take it (bad request, too large...).
    Reject(String),
}

impl Outcome {
    fn retry(reason: impl Into<String>) -> Outcome {
        Outcome::Retry { reason: reason.into(), after: None }
    }
}

/// A finding encoded for its target, with the item it came from.
pub(crate) struct Encoded {
    pub item: Arc<Item>,
    pub bytes: Vec<u8>,
}

/// What a target accepts in one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_batch: usize,
    pub max_batch_bytes: usize,
}

/// Each target's defaults, overridden by `[forward.delivery]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Defaults {
    pub max_batch: usize,
    pub max_batch_bytes: usize,
    pub rate_per_sec: Option<f64>,
    pub burst: u32,
}

enum Target {
    SecurityHub(securityhub::SecurityHub),
    Hec(hec::Hec),
    Bulk(bulk::Bulk),
    Webhook(webhook::Webhook),
    Kafka(kafka::KafkaTarget),
    Syslog(syslog::Syslog),
}

impl Target {
    async fn new(cfg: &ForwardConfig, timeout: Duration) -> Result<Target, String> {
        Ok(match cfg {
            ForwardConfig::SecurityHub(c) => Target::SecurityHub(securityhub::SecurityHub::new(c, timeout).await?),
            ForwardConfig::SplunkHec(c) => Target::Hec(hec::Hec::new(c, timeout)?),
            ForwardConfig::Elasticsearch(c) => Target::Bulk(bulk::Bulk::new(c, timeout)?),
            ForwardConfig::Webhook(c) => Target::Webhook(webhook::Webhook::new(c, timeout)?),
            ForwardConfig::Kafka(c) => Target::Kafka(kafka::KafkaTarget::new(c, timeout)?),
            ForwardConfig::Syslog(c) => Target::Syslog(syslog::Syslog::new(c, timeout)?),
        })
    }

    fn defaults(&self) -> Defaults {
        match self {
            Target::SecurityHub(_) => securityhub::DEFAULTS,
            Target::Hec(_) => hec::DEFAULTS,
            Target::Bulk(_) => bulk::DEFAULTS,
            Target::Webhook(w) => w.defaults(),
            Target::Kafka(_) => kafka::DEFAULTS,
            Target::Syslog(_) => syslog::DEFAULTS,
        }
    }

    fn encode(&self, item: &Item) -> Result<Vec<u8>, String> {
        match self {
            Target::SecurityHub(t) => t.encode(item),
            Target::Hec(t) => t.encode(item),
            Target::Bulk(t) => t.encode(item),
            Target::Webhook(t) => t.encode(item),
            Target::Kafka(t) => t.encode(item),
            Target::Syslog(t) => t.encode(item),
        }
    }

    /// Sends one request's worth; one outcome per element, in order.
    async fn send(&self, batch: &[Encoded]) -> Vec<Outcome> {
        let out = match self {
            Target::SecurityHub(t) => t.send(batch).await,
            Target::Hec(t) => t.send(batch).await,
            Target::Bulk(t) => t.send(batch).await,
            Target::Webhook(t) => t.send(batch).await,
            Target::Kafka(t) => t.send(batch).await,
            Target::Syslog(t) => t.send(batch).await,
        };
        debug_assert_eq!(out.len(), batch.len());
        out
    }
}

/// The dead-letter store shared by the forwarders (they dead-letter rarely).
#[derive(Clone)]
pub struct DeadLetters(Arc<Mutex<DeadLetterStore>>);

impl DeadLetters {
    pub fn new(store: DeadLetterStore) -> DeadLetters {
        DeadLetters(Arc::new(Mutex::new(store)))
    }

    /// Writes the findings as dead letters, trying again until it works (a dead letter must
    /// not be lost either) or `give_up` is set.
    fn put(&self, forwarder: &str, items: impl IntoIterator<Item = (Arc<Item>, String)>, give_up: &AtomicBool) {
        let mut store = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let source: Arc<str> = Arc::from(format!("forward.{forwarder}"));
        let mut uids = Vec::new();
        for (item, reason) in items {
            metrics::counter!(FAILED, "forwarder" => forwarder.to_string()).increment(1);
            tracing::warn!(forwarder, uid = %item.uid, %reason, "finding not forwarded: dead-lettered");
            let bytes = serde_json::to_vec(&item.ocsf).unwrap_or_default();
            store.push(&DeadLetter { origin: Origin { source: source.clone(), line: None, offset: 0, index: None }, reason: format!("forward {forwarder}: {reason}"), bytes });
            uids.push(item.uid.clone());
        }
        let mut backoff = Duration::from_millis(100);
        while let Err(e) = store.flush() {
            if give_up.load(Ordering::Relaxed) {
                tracing::error!(forwarder, error = %e, ?uids, "dead letters of undelivered findings could not be written; they remain in the lake's findings table");
                return;
            }
            tracing::warn!(forwarder, error = %e, "writing forwarder dead letters failed; retrying");
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Dead letters written so far.
    pub fn total(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

/// One running forwarder: its queue's sending end and its worker.
struct Forwarder {
    name: String,
    min_severity: i64,
    tx: mpsc::Sender<Arc<Item>>,
    worker: tokio::task::JoinHandle<()>,
    /// Findings the worker is done with (acknowledged or dead-lettered).
    done: Arc<AtomicU64>,
}

/// Every configured forwarder, with the runtime their workers run on.
pub struct Forwarders {
    rt: tokio::runtime::Runtime,
    each: Vec<Forwarder>,
    dead: DeadLetters,
    /// Set at the shutdown deadline: workers stop retrying and dead-letter what they hold.
    give_up: Arc<AtomicBool>,
    last_backpressure_log: Mutex<Option<Instant>>,
    /// Fed from the outbox (`outbox.rs`): at shutdown, what is not delivered stays there (it
    /// is sent after the restart) instead of being dead-lettered.
    from_outbox: bool,
}

impl Forwarders {
    /// Starts a worker per forwarder. Fails on a config the target cannot use (bad URL, CA file...).
    pub fn start(configs: &[ForwardConfig], dead: DeadLetters) -> Result<Forwarders, String> {
        Forwarders::start_with(configs, dead, false)
    }

    fn start_with(configs: &[ForwardConfig], dead: DeadLetters, from_outbox: bool) -> Result<Forwarders, String> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name("forward").enable_all().build().map_err(|e| format!("forwarders: {e}"))?;
        let give_up = Arc::new(AtomicBool::new(false));
        let mut each = Vec::new();
        let mut names = std::collections::HashSet::new();
        for cfg in configs {
            let name = cfg.name();
            if !names.insert(name.clone()) {
                return Err(format!("forward: two forwarders are named \"{name}\": give each a distinct `name`"));
            }
            let d = cfg.delivery();
            let timeout = Duration::from_secs(d.timeout_secs.unwrap_or(30));
            let target = rt.block_on(Target::new(cfg, timeout)).map_err(|e| format!("forward \"{name}\": {e}"))?;
            let plan = Plan::new(d, target.defaults()).map_err(|e| format!("forward \"{name}\".delivery: {e}"))?;
            let (tx, rx) = mpsc::channel(plan.queue);
            let done = Arc::new(AtomicU64::new(0));
            let worker = Worker { name: name.clone(), target, plan, rx, dead: dead.clone(), give_up: give_up.clone(), done: done.clone(), from_outbox };
            let worker = rt.spawn(worker.run());
            tracing::info!(forwarder = %name, queue = plan.queue, max_batch = plan.limits.max_batch, "forwarder started");
            each.push(Forwarder { name, min_severity: plan.min_severity, tx, worker, done });
        }
        Ok(Forwarders { rt, each, dead, give_up, last_backpressure_log: Mutex::new(None), from_outbox })
    }

    /// Findings the workers are done with (acknowledged or dead-lettered), in all.
    pub fn done(&self) -> u64 {
        self.each.iter().map(|f| f.done.load(Ordering::Acquire)).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.each.is_empty()
    }

    /// Queues the findings (OCSF JSON) to every forwarder, waiting while a queue is full.
    /// `stop` ends the wait (shutdown): what could not be queued is dead-lettered (left in the
    /// outbox when fed from it). Returns how many were queued (what [`Forwarders::done`]
    /// counts once delivered).
    pub fn submit(&self, findings: impl IntoIterator<Item = serde_json::Value>, stop: &AtomicBool) -> u64 {
        let mut queued = 0;
        for ocsf in findings {
            let item = Arc::new(Item::new(ocsf));
            for f in self.each.iter().filter(|f| item.severity_id >= f.min_severity) {
                queued += u64::from(self.push(f, item.clone(), stop));
            }
        }
        queued
    }

    /// Queues one finding; false if it was not queued (dead-lettered, or left in the outbox).
    fn push(&self, f: &Forwarder, item: Arc<Item>, stop: &AtomicBool) -> bool {
        let item = match f.tx.try_send(item) {
            Ok(()) => return true,
            Err(mpsc::error::TrySendError::Closed(_) | mpsc::error::TrySendError::Full(_)) if self.from_outbox && stop.load(Ordering::Relaxed) => return false,
            Err(mpsc::error::TrySendError::Closed(item)) => {
                self.dead.put(&f.name, [(item, "the forwarder has stopped".to_string())], stop);
                return false;
            }
            Err(mpsc::error::TrySendError::Full(item)) if stop.load(Ordering::Relaxed) => {
                self.dead.put(&f.name, [(item, "shutdown: the forwarder's queue stayed full".to_string())], stop);
                return false;
            }
            Err(mpsc::error::TrySendError::Full(item)) => item,
        };
        metrics::counter!(BACKPRESSURE, "forwarder" => f.name.clone()).increment(1);
        {
            let mut last = self.last_backpressure_log.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                tracing::warn!(forwarder = %f.name, queue = f.tx.max_capacity(), "forwarder queue full: the pipeline waits for it (back-pressure)");
                *last = Some(Instant::now());
            }
        }
        let mut item = item;
        loop {
            match self.rt.block_on(f.tx.send_timeout(item, Duration::from_millis(500))) {
                Ok(()) => return true,
                Err(mpsc::error::SendTimeoutError::Timeout(i)) if !stop.load(Ordering::Relaxed) => item = i,
                Err(_) if self.from_outbox => return false,
                Err(mpsc::error::SendTimeoutError::Timeout(i) | mpsc::error::SendTimeoutError::Closed(i)) => {
                    self.dead.put(&f.name, [(i, "shutdown: the forwarder's queue stayed full".to_string())], stop);
                    return false;
                }
            }
        }
    }

    /// Closes the queues and waits for them to drain; once `stop` is set (the shutdown
    /// deadline), workers stop retrying and dead-letter what they still hold. Returns the dead
    /// letters written in all.
    pub fn close(self, stop: &AtomicBool) -> usize {
        let Forwarders { rt, each, dead, give_up, .. } = self;
        let workers: Vec<_> = each.into_iter().map(|f| f.worker).collect();
        rt.block_on(async {
            let all = async {
                for w in workers {
                    let _ = w.await;
                }
            };
            tokio::pin!(all);
            loop {
                if tokio::time::timeout(Duration::from_millis(100), &mut all).await.is_ok() {
                    break;
                }
                if stop.load(Ordering::Relaxed) && !give_up.swap(true, Ordering::Relaxed) {
                    tracing::warn!("forwarders still busy at the shutdown deadline: what they hold is dead-lettered");
                }
            }
        });
        dead.total()
    }
}

/// A forwarder's delivery settings, target defaults applied.
#[derive(Debug, Clone, Copy)]
struct Plan {
    queue: usize,
    limits: Limits,
    linger: Duration,
    max_attempts: u32,
    rate: Option<(f64, u32)>,
    min_severity: i64,
}

impl Plan {
    fn new(d: &Delivery, t: Defaults) -> Result<Plan, String> {
        let positive = |v: Option<usize>, key: &str, default: usize| match v {
            Some(0) => Err(format!("{key} = 0: it must be at least 1")),
            v => Ok(v.unwrap_or(default)),
        };
        let rate = match d.rate_per_sec.or(t.rate_per_sec) {
            // NaN is refused too.
            Some(r) if r.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) => return Err(format!("rate_per_sec = {r}: it must be above 0 (leave it out for no cap)")),
            Some(r) => Some((r, d.burst.unwrap_or(t.burst).max(1))),
            None => None,
        };
        const SEVERITIES: [&str; 5] = ["informational", "low", "medium", "high", "critical"];
        let min_severity = match d.min_severity.as_deref().map(str::to_ascii_lowercase) {
            None => 0,
            Some(s) => SEVERITIES.iter().position(|n| *n == s).ok_or_else(|| format!("min_severity = {s:?}: use one of {}", SEVERITIES.join(", ")))? as i64 + 1,
        };
        Ok(Plan {
            min_severity,
            queue: positive(d.queue, "queue", 10_000)?,
            limits: Limits { max_batch: positive(d.max_batch, "max_batch", t.max_batch)?, max_batch_bytes: positive(d.max_batch_bytes, "max_batch_bytes", t.max_batch_bytes)? },
            linger: Duration::from_millis(d.linger_ms.unwrap_or(200)),
            max_attempts: d.max_attempts.unwrap_or(10).max(1),
            rate,
        })
    }
}

struct Worker {
    name: String,
    target: Target,
    plan: Plan,
    rx: mpsc::Receiver<Arc<Item>>,
    dead: DeadLetters,
    give_up: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    from_outbox: bool,
}

impl Worker {
    async fn run(mut self) {
        let mut bucket = self.plan.rate.map(|(r, b)| TokenBucket::new(r, b));
        while let Some(first) = self.rx.recv().await {
            let mut items = vec![first];
            let until = tokio::time::Instant::now() + self.plan.linger;
            while items.len() < self.plan.limits.max_batch {
                match tokio::time::timeout_at(until, self.rx.recv()).await {
                    Ok(Some(i)) => items.push(i),
                    _ => break,
                }
            }
            metrics::gauge!(QUEUE_DEPTH, "forwarder" => self.name.clone()).set(self.rx.len() as f64);
            let n = items.len() as u64;
            self.deliver(items, &mut bucket).await;
            self.done.fetch_add(n, Ordering::Release);
        }
    }

    /// Sends the items until each is acknowledged or dead-lettered.
    async fn deliver(&self, items: Vec<Arc<Item>>, bucket: &mut Option<TokenBucket>) {
        let mut pending = Vec::with_capacity(items.len());
        let mut dead = Vec::new();
        for item in items {
            match self.target.encode(&item) {
                Ok(bytes) if bytes.len() > self.plan.limits.max_batch_bytes => {
                    dead.push((item, format!("encoded finding is {} bytes, above the target's {} per request", bytes.len(), self.plan.limits.max_batch_bytes)))
                }
                Ok(bytes) => pending.push(Encoded { item, bytes }),
                Err(e) => dead.push((item, e)),
            }
        }
        let mut attempt = 1;
        while !pending.is_empty() {
            // Whether each pending finding is to be sent again, in order.
            let mut again = Vec::with_capacity(pending.len());
            let mut hint = None;
            let mut last_reason = String::new();
            let mut rest = pending.as_slice();
            while !rest.is_empty() {
                let n = request_len(rest, self.plan.limits);
                let (req, tail) = rest.split_at(n);
                rest = tail;
                if let Some(b) = bucket.as_mut() {
                    b.take().await;
                }
                let outcomes = self.target.send(req).await;
                for (e, o) in req.iter().zip(outcomes) {
                    again.push(matches!(o, Outcome::Retry { .. }));
                    match o {
                        Outcome::Sent => {
                            metrics::counter!(SENT, "forwarder" => self.name.clone()).increment(1);
                            metrics::histogram!(LATENCY, "forwarder" => self.name.clone()).record(e.item.queued.elapsed().as_secs_f64());
                        }
                        Outcome::Reject(reason) => dead.push((e.item.clone(), reason)),
                        Outcome::Retry { reason, after } => {
                            hint = hint.max(after);
                            last_reason = reason;
                        }
                    }
                }
            }
            let mut again = again.into_iter();
            pending.retain(|_| again.next().unwrap_or(false));
            if pending.is_empty() {
                break;
            }
            if self.from_outbox && self.give_up.load(Ordering::Relaxed) && attempt < self.plan.max_attempts {
                // Still in the outbox (its cursor has not passed them): sent after the restart.
                tracing::info!(forwarder = %self.name, findings = pending.len(), "shutdown before delivery: left in the outbox");
                break;
            }
            if attempt >= self.plan.max_attempts || self.give_up.load(Ordering::Relaxed) {
                let why = if attempt >= self.plan.max_attempts {
                    format!("gave up after {attempt} attempts: {last_reason}")
                } else {
                    format!("shutdown before delivery (after {attempt} attempts: {last_reason})")
                };
                dead.extend(pending.drain(..).map(|e| (e.item, why.clone())));
                break;
            }
            let wait = backoff(attempt).max(hint.unwrap_or_default().min(Duration::from_secs(60)));
            tracing::warn!(forwarder = %self.name, findings = pending.len(), attempt, reason = %last_reason, retry_in_ms = wait.as_millis() as u64, "forwarding failed; retrying");
            metrics::counter!(RETRIED, "forwarder" => self.name.clone()).increment(pending.len() as u64);
            self.sleep_unless_giving_up(wait).await;
            attempt += 1;
        }
        if !dead.is_empty() {
            let (d, name, give_up) = (self.dead.clone(), self.name.clone(), self.give_up.clone());
            // The store writes files: off the async threads.
            let _ = tokio::task::spawn_blocking(move || d.put(&name, dead, &give_up)).await;
        }
    }

    async fn sleep_unless_giving_up(&self, wait: Duration) {
        let until = Instant::now() + wait;
        while Instant::now() < until && !self.give_up.load(Ordering::Relaxed) {
            tokio::time::sleep(until.saturating_duration_since(Instant::now()).min(Duration::from_millis(100))).await;
        }
    }
}

/// How many of `rest` go in the next request: up to `max_batch` findings and
/// `max_batch_bytes` bytes, and at least one (each alone fits: checked when encoded).
fn request_len(rest: &[Encoded], l: Limits) -> usize {
    let mut bytes = 0;
    let mut n = 0;
    for e in rest.iter().take(l.max_batch) {
        if n > 0 && bytes + e.bytes.len() > l.max_batch_bytes {
            break;
        }
        bytes += e.bytes.len();
        n += 1;
    }
    n.max(1)
}

/// Exponential backoff with full jitter: a random wait up to 200 ms * 2^(attempt-1), at most
/// 30 s, so that many forwarders failing together do not retry in step.
fn backoff(attempt: u32) -> Duration {
    let cap = Duration::from_millis(200).saturating_mul(1 << attempt.saturating_sub(1).min(16)).min(Duration::from_secs(30));
    cap.mul_f64(rand::rng().random_range(0.5..=1.0))
}

/// Requests per second with a burst (Security Hub: 10/s, bursts of 30).
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: tokio::time::Instant,
}

impl TokenBucket {
    fn new(rate: f64, burst: u32) -> TokenBucket {
        TokenBucket { rate, burst: burst as f64, tokens: burst as f64, at: tokio::time::Instant::now() }
    }

    async fn take(&mut self) {
        loop {
            let now = tokio::time::Instant::now();
            self.tokens = (self.tokens + (now - self.at).as_secs_f64() * self.rate).min(self.burst);
            self.at = now;
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                return;
            }
            tokio::time::sleep(Duration::from_secs_f64((1.0 - self.tokens) / self.rate)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(n: usize) -> Encoded {
        Encoded { item: Arc::new(Item::new(serde_json::json!({}))), bytes: vec![0; n] }
    }

    #[test]
    fn requests_respect_count_and_bytes_but_always_carry_one() {
        let l = Limits { max_batch: 3, max_batch_bytes: 100 };
        assert_eq!(request_len(&[enc(10), enc(10), enc(10), enc(10)], l), 3);
        assert_eq!(request_len(&[enc(60), enc(50), enc(10)], l), 1);
        assert_eq!(request_len(&[enc(40), enc(60), enc(10)], l), 2);
        assert_eq!(request_len(&[enc(500)], l), 1);
    }

    #[test]
    fn backoff_grows_with_jitter_and_stops_at_the_cap() {
        for attempt in 1..6 {
            let b = backoff(attempt);
            let cap = Duration::from_millis(200 << (attempt - 1));
            assert!(b <= cap && b >= cap / 2, "attempt {attempt}: {b:?}");
        }
        assert!(backoff(40) <= Duration::from_secs(30));
    }

    #[tokio::test]
    async fn the_bucket_allows_its_burst_then_its_rate() {
        let mut b = TokenBucket::new(100.0, 5);
        let start = tokio::time::Instant::now();
        for _ in 0..5 {
            b.take().await;
        }
        let burst = start.elapsed();
        for _ in 0..10 {
            b.take().await;
        }
        // 10 more at 100/s take 100 ms at least, however fast the machine.
        assert!(start.elapsed() >= Duration::from_millis(95), "{:?}", start.elapsed());
        assert!(burst < Duration::from_millis(50), "the burst waited {burst:?}");
    }

    #[test]
    fn a_zero_batch_or_rate_is_refused_with_its_key() {
        let d = Defaults { max_batch: 100, max_batch_bytes: 1 << 20, rate_per_sec: None, burst: 1 };
        let e = Plan::new(&Delivery { max_batch: Some(0), ..Default::default() }, d).unwrap_err();
        assert!(e.contains("max_batch = 0"), "{e}");
        let e = Plan::new(&Delivery { rate_per_sec: Some(0.0), ..Default::default() }, d).unwrap_err();
        assert!(e.contains("rate_per_sec"), "{e}");
        assert_eq!(Plan::new(&Delivery::default(), d).unwrap().limits.max_batch, 100);
        assert_eq!(Plan::new(&Delivery { min_severity: Some("High".into()), ..Default::default() }, d).unwrap().min_severity, 4);
        let e = Plan::new(&Delivery { min_severity: Some("severe".into()), ..Default::default() }, d).unwrap_err();
        assert!(e.contains("min_severity") && e.contains("critical"), "{e}");
    }
}
