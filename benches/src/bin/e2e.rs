//! End-to-end benchmark of `ocelot run` against a real broker (tansu) on this machine.
//!
//! 1. Baseline: produce N generated CloudTrail events to a 4-partition topic, then read them
//!    all back with a plain rdkafka consumer (no processing): what the broker and client alone
//!    deliver here, measured in the same run.
//! 2. Throughput: `ocelot run` consumes the same N events from the start; sustained events/s
//!    and MB/s from first assignment to every offset committed (= durable in the lake).
//! 3. Latency: with ocelot running, produce M more events at a steady rate; the ingest latency
//!    (Kafka timestamp -> durable in the lake) percentiles come from ocelot's own histogram.
//!
//! Peak RSS of the ocelot process is sampled from /proc every 50 ms throughout; its CPU time
//! and each stage's busy seconds (`ocelot_stage_busy_seconds`) say which stage sets the rate.
//! `--mock` uses librdkafka's mock cluster in this process instead of tansu (no broker limit).
//! `--route N` detects through a route topic of N partitions (`[detect] route_topic`);
//! `--keep-lake DIR` keeps the lake, to compare the findings of two runs with DuckDB.
//!
//! `cargo run --release -p ocelot-benches --bin e2e -- --events 500000`
//! (needs `target/release/ocelot`: `cargo build --release` first.)

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use ocelot_benches::kafka::{send, Broker, Ocelot};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

#[derive(Parser)]
struct Args {
    /// Events for the throughput phase.
    #[arg(long, default_value_t = 500_000)]
    events: usize,
    /// Events for the latency phase, and their rate (events/s).
    #[arg(long, default_value_t = 200_000)]
    latency_events: usize,
    #[arg(long, default_value_t = 40_000)]
    rate: usize,
    /// The ocelot binary.
    #[arg(long)]
    ocelot: Option<PathBuf>,
    /// Batch size (message bytes) for `ocelot run`.
    #[arg(long, default_value_t = 16 << 20)]
    max_bytes: usize,
    /// Sealed batches waiting for the sinks (`batch.max_in_flight`).
    #[arg(long, default_value_t = 2)]
    max_in_flight: usize,
    /// Batch latency (ms) for `ocelot run`.
    #[arg(long, default_value_t = 1000)]
    max_latency_ms: u64,
    /// A librdkafka consumer property (KEY=VALUE, repeatable), given to both the baseline
    /// consumer and `ocelot run` (as `kafka.settings`), to compare fetch tuning fairly.
    #[arg(long = "set", value_parser = parse_kv)]
    settings: Vec<(String, String)>,
    /// Skip the latency phase.
    #[arg(long)]
    no_latency: bool,
    /// librdkafka's mock cluster (in this process, on loopback) instead of tansu: no broker
    /// limit, so the ceiling measured is ocelot's own.
    #[arg(long)]
    mock: bool,
    /// Detection through a route topic of this many partitions (`[detect] route_topic`): the
    /// run then ends once the detect stage has read every routed event too.
    #[arg(long)]
    route: Option<u32>,
    /// Write the lake here (kept after the run, to query its findings) instead of a temporary
    /// directory.
    #[arg(long)]
    keep_lake: Option<PathBuf>,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or("expected KEY=VALUE")?;
    Ok((k.to_string(), v.to_string()))
}

const TOPIC: &str = "cloudtrail";
/// Partitions of the input topic on tansu.
const P: i32 = 4;
/// librdkafka's mock broker keeps about 5 MiB per partition (older messages are deleted): the
/// mock topic gets enough partitions to hold the whole input at 4 MiB each.
const MOCK_PARTITION_BYTES: usize = 4 << 20;
const GROUP: &str = "bench";

fn main() {
    let args = Args::parse();
    let bin = args.ocelot.clone().unwrap_or_else(|| {
        let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from("target"));
        target.join("release/ocelot")
    });
    assert!(bin.is_file(), "{}: build it first (cargo build --release)", bin.display());
    let dir = tempfile::tempdir().unwrap();
    let broker = if args.mock { Broker::mock() } else { Broker::start(&dir.path().join("broker")) };
    println!("broker: {}", if args.mock { "librdkafka mock cluster (in-process)" } else { "tansu 0.6, SQLite storage" });

    let mut input = Vec::new();
    ocelot_pipeline::generate::cloudtrail(args.events, 1, 1_793_500_000_000, &mut input).unwrap();
    let events: Vec<&[u8]> = input.split(|c| *c == b'\n').filter(|l| !l.is_empty()).collect();
    let bytes: usize = events.iter().map(|e| e.len()).sum();
    let partitions = if args.mock { (bytes.div_ceil(MOCK_PARTITION_BYTES) as i32).max(P) } else { P };
    broker.create_topic(TOPIC, partitions as u32);
    println!("topic {TOPIC}: {partitions} partitions");
    let started = Instant::now();
    produce(&broker, &events, None, partitions);
    let produce_s = started.elapsed().as_secs_f64();
    check_delivered(&broker, events.len() as i64, partitions);
    println!("produced {} events ({:.1} MB) in {produce_s:.1} s: {:.0} events/s", events.len(), bytes as f64 / 1e6, events.len() as f64 / produce_s);

    // Baseline: a plain consumer reads everything.
    let started = Instant::now();
    let read = consume_all(&broker, events.len(), &args.settings, partitions);
    let base_s = started.elapsed().as_secs_f64();
    let base_eps = read as f64 / base_s;
    println!("baseline (plain rdkafka consumer, no processing): {base_eps:.0} events/s, {:.1} MB/s", bytes as f64 / 1e6 / base_s);

    // Throughput.
    let lake = args.keep_lake.clone().unwrap_or_else(|| dir.path().join("lake"));
    let config = dir.path().join("ocelot.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbrokers = \"{}\"\ngroup_id = \"{GROUP}\"\n[[inputs]]\ntopic = \"{TOPIC}\"\nsource = \"cloudtrail\"\n[lake]\npath = \"{}\"\n[batch]\nmax_rows = 50000\nmax_bytes = {}\nmax_latency_ms = {}\nmax_in_flight = {}\n{}[kafka.settings]\n{}",
            broker.addr(),
            lake.display(),
            args.max_bytes,
            args.max_latency_ms,
            args.max_in_flight,
            if args.route.is_some() { "[detect]\nroute_topic = \"route\"\n" } else { "" },
            args.settings.iter().map(|(k, v)| format!("\"{k}\" = \"{v}\"\n")).collect::<String>()
        ),
    )
    .unwrap();
    if let Some(n) = args.route {
        broker.create_topic("route", n);
    }
    let mut o = Ocelot::start(&bin, &config, &[("OCELOT_LOG", "warn".into())]);
    let sampler = RssSampler::start(o.pid());
    let started = Instant::now();
    wait_until(|| o.metric("ocelot_assigned_partitions") >= partitions as f64, Duration::from_secs(60));
    let assigned_at = started.elapsed().as_secs_f64();
    let cpu_before = cpu_seconds(o.pid());
    let total = events.len() as i64;
    wait_until(|| broker.committed(GROUP, TOPIC, partitions).iter().sum::<i64>() >= total, Duration::from_secs(1800));
    if let Some(n) = args.route {
        broker.wait_committed_to_end(&format!("{GROUP}.detect"), "route", n as i32, Duration::from_secs(1800));
    }
    let run_s = started.elapsed().as_secs_f64() - assigned_at;
    let eps = events.len() as f64 / run_s;
    let cpu = cpu_seconds(o.pid()) - cpu_before;
    println!("ocelot run: {} events in {run_s:.2} s: {eps:.0} events/s, {:.1} MB/s; ratio to baseline {:.2}", events.len(), bytes as f64 / 1e6 / run_s, eps / base_eps);
    // Where the time went: each stage's busy seconds over the run (the consumer thread
    // normalizes; the sink thread detects, writes the lake, produces).
    let metrics = o.metrics();
    let busy = |stage: &str| metrics.lines().find(|l| l.starts_with(&format!("ocelot_stage_busy_seconds{{stage=\"{stage}\"}}"))).and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).unwrap_or(0.0);
    let stages = ["normalize", "detect", "lake", "produce"];
    let line: Vec<String> = stages.iter().map(|s| format!("{s} {:.2} s ({:.0}%)", busy(s), 100.0 * busy(s) / run_s)).collect();
    let sink = busy("lake") + busy("produce");
    println!(
        "stage busy time: {}; consumer thread {:.0}% busy, sink thread {:.0}% busy, detection (beside the lake write) {:.0}%",
        line.join(", "),
        100.0 * busy("normalize") / run_s,
        100.0 * sink / run_s,
        100.0 * busy("detect") / run_s
    );
    println!(
        "ocelot CPU: {cpu:.2} s in {run_s:.2} s ({:.2} cores of {}; {:.1} us per event)",
        cpu / run_s,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu * 1e6 / events.len() as f64
    );
    let value = |name: &str| metrics.lines().find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{'])).and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).unwrap_or(0.0);
    println!(
        "detection: {:.0} events read, {:.0} finding versions written ({:.0} late events, {:.0} ahead of the clock); state at the end: SQL windows {:.0} MiB, {:.0} open findings",
        value("ocelot_detect_events"),
        value("ocelot_findings_total"),
        value("ocelot_detect_late_events"),
        value("ocelot_detect_future_events"),
        value("ocelot_detect_window_bytes") / (1 << 20) as f64,
        value("ocelot_detect_open_findings")
    );
    if args.route.is_some() {
        // A routed run's findings are only comparable when the detect stage read every event.
        let (read, skipped) = (value("ocelot_detect_events"), value("ocelot_route_skipped_messages_total"));
        println!("route topic: {skipped:.0} messages deleted before the detect stage read them; the detect stage read {read:.0} of {total} events");
    }
    println!(
        "commits: {:.0} taking {:.2} s; batches: {:.0} (seal to durable {:.2} s in all); pauses: {:.0}",
        value("ocelot_commit_seconds_count"),
        value("ocelot_commit_seconds_sum"),
        value("ocelot_batch_seconds_count"),
        value("ocelot_batch_seconds_sum"),
        value("ocelot_pauses_total")
    );

    if args.no_latency {
        o.signal("TERM");
        o.wait(Duration::from_secs(60));
        println!("peak RSS {:.0} MiB", sampler.stop() as f64 / (1 << 20) as f64);
        return;
    }
    // Latency at a steady rate.
    let before = histogram(&o.metrics());
    let mut more = Vec::new();
    ocelot_pipeline::generate::cloudtrail(args.latency_events, 2, 1_793_600_000_000, &mut more).unwrap();
    let more: Vec<&[u8]> = more.split(|c| *c == b'\n').filter(|l| !l.is_empty()).collect();
    produce(&broker, &more, Some(args.rate), partitions);
    let total = total + more.len() as i64;
    wait_until(|| broker.committed(GROUP, TOPIC, partitions).iter().sum::<i64>() >= total, Duration::from_secs(600));
    let after = histogram(&o.metrics());
    let delta: Vec<(f64, f64)> = after.iter().zip(&before).map(|((le, a), (_, b))| (*le, a - b)).collect();
    let (p50, p99) = (quantile(&delta, 0.5), quantile(&delta, 0.99));
    println!("latency at {} events/s ({} events, {} ms batches): p50 {p50:.3} s, p99 {p99:.3} s (Kafka timestamp -> durable in the lake)", args.rate, more.len(), args.max_latency_ms);
    o.signal("TERM");
    let (code, took) = o.wait(Duration::from_secs(60));
    let peak = sampler.stop();
    println!("shutdown: exit {code:?} in {:.2} s; peak RSS {:.0} MiB", took.as_secs_f64(), peak as f64 / (1 << 20) as f64);
}

fn produce(broker: &Broker, events: &[&[u8]], rate: Option<usize>, partitions: i32) {
    let producer: BaseProducer = broker.client().set("linger.ms", "20").set("batch.size", "65536").create().unwrap();
    let started = Instant::now();
    for (i, e) in events.iter().enumerate() {
        if let Some(r) = rate {
            let due = Duration::from_secs_f64(i as f64 / r as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        send(&producer, BaseRecord::to(TOPIC).payload(*e).partition(i as i32 % partitions));
    }
    producer.flush(Duration::from_secs(300)).unwrap();
}

/// Fails when the topic holds fewer than `want` events (a delivery failed).
fn check_delivered(broker: &Broker, want: i64, partitions: i32) {
    let got: i64 = broker.end_offsets(TOPIC, partitions).iter().sum();
    assert!(got >= want, "the broker holds {got} of the {want} events produced: deliveries failed");
}

fn consume_all(broker: &Broker, n: usize, settings: &[(String, String)], partitions: i32) -> usize {
    let mut cfg = broker.client();
    // The fetch wait ocelot sets itself (see docs/config.md), so both read the broker alike.
    cfg.set("group.id", "baseline").set("enable.auto.commit", "false").set("fetch.wait.max.ms", "50");
    for (k, v) in settings {
        cfg.set(k, v);
    }
    let c: BaseConsumer = cfg.create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(TOPIC, p, Offset::Beginning).unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut read = 0;
    let mut bytes = 0usize;
    let mut last = Instant::now();
    while read < n {
        if last.elapsed() > Duration::from_secs(5) {
            eprintln!("baseline: {read} of {n} read");
            last = Instant::now();
        }
        match c.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                use rdkafka::Message;
                bytes += m.payload().map_or(0, |p| p.len());
                read += 1;
            }
            Some(Err(e)) => eprintln!("baseline consumer: {e}"),
            None => {}
        }
    }
    std::hint::black_box(bytes);
    read
}

/// User + system CPU seconds of a process so far (/proc/PID/stat, clock ticks of 1/100 s).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    f.get(10).zip(f.get(11)).map_or(0.0, |(u, s)| (u + s) / 100.0)
}

fn wait_until(mut f: impl FnMut() -> bool, timeout: Duration) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out after {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The cumulative buckets of `ocelot_ingest_latency_seconds`: (le, count).
fn histogram(metrics: &str) -> Vec<(f64, f64)> {
    metrics
        .lines()
        .filter(|l| l.starts_with("ocelot_ingest_latency_seconds_bucket{"))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((le, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect()
}

/// A quantile from cumulative buckets, interpolated inside the bucket (as Prometheus'
/// histogram_quantile does).
fn quantile(buckets: &[(f64, f64)], q: f64) -> f64 {
    let total = buckets.last().map_or(0.0, |b| b.1);
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, c) in buckets {
        if c >= rank {
            if le.is_infinite() {
                return prev.0;
            }
            let frac = if c > prev.1 { (rank - prev.1) / (c - prev.1) } else { 0.0 };
            return prev.0 + (le - prev.0) * frac;
        }
        prev = (le, c);
    }
    f64::NAN
}

/// Samples VmRSS of a process until stopped; returns the peak.
struct RssSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<u64>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut peak = 0;
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                if let Some(kb) = status.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()) {
                    peak = peak.max(kb * 1024);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            peak
        });
        RssSampler { stop, handle }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}
