//! Observability of `ocelot run`: Prometheus metrics (the `metrics` facade, rendered by
//! `metrics-exporter-prometheus`) and `/metrics`, `/healthz`, `/readyz` on a small HTTP server.
//!
//! The metric names are listed here once, with what they count; docs/config.md repeats them
//! for operators.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Kafka messages read, by topic.
pub const MESSAGES_IN: &str = "ocelot_messages_in_total";
/// Message bytes read, by topic.
pub const BYTES_IN: &str = "ocelot_bytes_in_total";
/// Source records decoded and normalized, by source kind.
pub const EVENTS_IN: &str = "ocelot_events_in_total";
/// OCSF events durable in a sink, by class and sink (`lake`, `kafka`).
pub const EVENTS_OUT: &str = "ocelot_events_out_total";
/// Small lake files merged by the background compaction.
pub const LAKE_COMPACTED_FILES: &str = "ocelot_lake_compacted_files_total";
/// Dead letters, by reason kind.
pub const DEAD_LETTERS: &str = "ocelot_dead_letters_total";
/// Seconds from sealing a batch to durable in every sink.
pub const BATCH_SECONDS: &str = "ocelot_batch_seconds";
/// Seconds from a message's Kafka timestamp to durable in every sink (end-to-end latency).
pub const INGEST_LATENCY: &str = "ocelot_ingest_latency_seconds";
/// Seconds a synchronous offset commit took.
pub const COMMIT_SECONDS: &str = "ocelot_commit_seconds";
/// Commits that failed (retried with the next batch).
pub const COMMIT_ERRORS: &str = "ocelot_commit_errors_total";
/// Sink write failures (retried until they succeed), by sink.
pub const SINK_ERRORS: &str = "ocelot_sink_errors_total";
/// Consumer lag (high watermark - position) per topic and partition, from librdkafka's stats.
pub const CONSUMER_LAG: &str = "ocelot_consumer_lag";
/// Next offset committed, per topic and partition.
pub const COMMITTED_OFFSET: &str = "ocelot_committed_offset";
/// Sealed batches not yet durable.
pub const BATCHES_IN_FLIGHT: &str = "ocelot_batches_in_flight";
/// 1 while partitions are paused because the sinks are behind.
pub const PAUSED: &str = "ocelot_consumption_paused";
/// Times consumption was paused for back-pressure.
pub const PAUSES: &str = "ocelot_pauses_total";
/// Partitions assigned to this instance.
pub const ASSIGNED: &str = "ocelot_assigned_partitions";
/// Findings (new or updated) written to the lake's `findings` table.
pub const FINDINGS: &str = "ocelot_findings_total";
/// Events the detection engines have read (in a routed deployment, the detect stage's: it
/// follows `ocelot_events_out_total` once it keeps up).
pub const DETECT_EVENTS: &str = "ocelot_detect_events";
/// Route topic messages the detect stage never read: the topic had deleted them (retention
/// shorter than the detect stage's lag). Their events were not detected; alert on any.
pub const ROUTE_SKIPPED: &str = "ocelot_route_skipped_messages_total";
/// Detection state: bytes the SQL rules' windows hold, findings open for update, correlation
/// entries, agent tool calls kept for linking.
pub const DETECT_WINDOW_BYTES: &str = "ocelot_detect_window_bytes";
pub const DETECT_OPEN_FINDINGS: &str = "ocelot_detect_open_findings";
pub const DETECT_CORRELATION_ENTRIES: &str = "ocelot_detect_correlation_entries";
pub const DETECT_LINKED_CALLS: &str = "ocelot_detect_agent_calls";
/// Behaviour state: (agent, dimension, value) triples remembered as seen, agents whose rate is followed.
pub const DETECT_FIRST_SEEN: &str = "ocelot_detect_first_seen_values";
pub const DETECT_RATE_AGENTS: &str = "ocelot_detect_rate_agents";
/// Events that came after their SQL window or rate bucket had closed (counted, not put in a wrong one).
pub const DETECT_LATE_EVENTS: &str = "ocelot_detect_late_events";
/// Events dated beyond the processing clock plus `time.max_skew_secs` (kept from the watermark).
pub const DETECT_FUTURE_EVENTS: &str = "ocelot_detect_future_events";
/// Records dead-lettered for their time, by `bound` (future: `time.max_future_secs`, past:
/// `time.max_age_days`).
pub const EVENTS_REFUSED_TIME: &str = "ocelot_events_refused_time";
/// Times a SQL rule's state passed its budget (its oldest window then runs early).
pub const DETECT_BUDGET_EXCEEDED: &str = "ocelot_detect_budget_exceeded";
/// Seconds each stage has spent working, by `stage`: `normalize` (the consumer thread: decode,
/// normalize, seal), `lake` (Parquet files and their commit) and `produce` (OCSF JSON, the
/// route topic and dead letters to Kafka) on the sink thread, `detect` (the engine, on a thread
/// of its own beside the lake write, or routing to the route topic). A thread whose stages add
/// up to one second per second sets the throughput.
pub const STAGE_BUSY: &str = "ocelot_stage_busy_seconds";

/// The engine's state gauges (summed over the engines of a detect stage).
pub fn publish_detect_stats(st: &ocelot_detectors::Stats) {
    metrics::gauge!(DETECT_EVENTS).set(st.events as f64);
    metrics::gauge!(DETECT_WINDOW_BYTES).set(st.sql_buffered_bytes as f64);
    metrics::gauge!(DETECT_OPEN_FINDINGS).set(st.open_findings as f64);
    metrics::gauge!(DETECT_CORRELATION_ENTRIES).set(st.correlation_entries as f64);
    metrics::gauge!(DETECT_LINKED_CALLS).set(st.linked_calls as f64);
    metrics::gauge!(DETECT_FIRST_SEEN).set(st.first_seen_values as f64);
    metrics::gauge!(DETECT_RATE_AGENTS).set(st.rate_agents as f64);
    metrics::gauge!(DETECT_LATE_EVENTS).set(st.late_events as f64);
    metrics::gauge!(DETECT_FUTURE_EVENTS).set(st.future_events as f64);
    let (future, past) = ocelot_normalize::time::refused_counts();
    metrics::gauge!(EVENTS_REFUSED_TIME, "bound" => "future").set(future as f64);
    metrics::gauge!(EVENTS_REFUSED_TIME, "bound" => "past").set(past as f64);
    metrics::gauge!(DETECT_BUDGET_EXCEEDED).set(st.sql_budget_exceeded as f64);
}

/// Adds the time since `since` to a stage's busy seconds.
pub fn busy(stage: &'static str, since: Instant) {
    metrics::gauge!(STAGE_BUSY, "stage" => stage).increment(since.elapsed().as_secs_f64());
}

/// Fine buckets: the latency target is a p99 of 2 s, so the buckets resolve the 0.1-5 s range.
const LATENCY_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 20.0, 30.0, 60.0];

/// Installs the global recorder (once per process).
pub fn install() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new().set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS).map_err(|e| e.to_string())?.install_recorder().map_err(|e| format!("metrics: {e}"))
}

/// What `/healthz` and `/readyz` answer.
#[derive(Default)]
pub struct Health {
    /// Milliseconds since `started` of the main loop's last turn.
    heartbeat_ms: AtomicU64,
    /// Has a partition assignment (or has been told the group has none for it).
    pub assigned: AtomicBool,
    /// The sinks' last write succeeded.
    pub sinks_ok: AtomicBool,
    started: std::sync::OnceLock<Instant>,
}

impl Health {
    pub fn new() -> Arc<Health> {
        let h = Health { sinks_ok: AtomicBool::new(true), ..Default::default() };
        let _ = h.started.set(Instant::now());
        Arc::new(h)
    }

    pub fn beat(&self) {
        let started = self.started.get().copied().unwrap_or_else(Instant::now);
        self.heartbeat_ms.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Alive: the main loop turned within the last 30 s (it turns at least every 100 ms).
    pub fn alive(&self) -> bool {
        let started = self.started.get().copied().unwrap_or_else(Instant::now);
        started.elapsed().as_millis() as u64 - self.heartbeat_ms.load(Ordering::Relaxed) < 30_000
    }

    pub fn ready(&self) -> bool {
        self.alive() && self.assigned.load(Ordering::Relaxed) && self.sinks_ok.load(Ordering::Relaxed)
    }
}

/// Serves `/metrics`, `/healthz`, `/readyz` on `addr` from a thread; also runs the recorder's
/// upkeep (which keeps histogram memory bounded between scrapes).
pub fn serve(addr: &str, handle: PrometheusHandle, health: Arc<Health>) -> Result<(), String> {
    let server = tiny_http::Server::http(addr).map_err(|e| format!("http.listen: cannot listen on {addr}: {e}"))?;
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz");
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_secs(5));
            upkeep.run_upkeep();
        })
        .map_err(|e| e.to_string())?;
    std::thread::Builder::new()
        .name("http".into())
        .spawn(move || {
            for req in server.incoming_requests() {
                let (code, body, ctype) = match req.url() {
                    "/metrics" => (200, handle.render(), "text/plain; version=0.0.4"),
                    "/healthz" if health.alive() => (200, "ok\n".to_string(), "text/plain"),
                    "/healthz" => (503, "main loop stalled\n".to_string(), "text/plain"),
                    "/readyz" if health.ready() => (200, "ready\n".to_string(), "text/plain"),
                    "/readyz" => (503, "not ready (no partition assignment yet, or a sink is failing)\n".to_string(), "text/plain"),
                    _ => (404, "not found: try /metrics, /healthz, /readyz\n".to_string(), "text/plain"),
                };
                let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], ctype.as_bytes()).expect("static header");
                let _ = req.respond(tiny_http::Response::from_string(body).with_status_code(code).with_header(header));
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}
