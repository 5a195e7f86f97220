//! Detection state over a long stream: 10 million generated CloudTrail events (time advancing,
//! 50 events/s of event time) through the engine with every shipped rule, as `ocelot run` runs
//! it (windows closed by the watermark). Prints the engine's state and the process RSS every
//! million events: it must stay flat, not grow with the stream.
//!
//! Run: `cargo bench -p ocelot-benches --bench detect_state --profile release` (a bench target,
//! so it builds with the same features as the criterion benches; `OCELOT_STATE_EVENTS` sets the
//! number of events, 10,000,000 by default).

use std::sync::Arc;
use std::time::Instant;

use ocelot_benches::normalize_bytes;
use ocelot_pipeline::detect::{EngineSpec, Mode};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    events: usize,
    chunk: usize,
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok()).map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let events = std::env::var("OCELOT_STATE_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    let args = Args { events, chunk: 100_000 };
    let mut engine = EngineSpec::shipped(Mode::STREAM).build().expect("shipped rules");
    let source: Arc<str> = Arc::from("state");
    let start = 1_793_500_000_000i64;
    let (mut done, mut next_report, mut findings) = (0usize, 1_000_000usize, 0usize);
    let t0 = Instant::now();
    println!("{:>10} {:>9} {:>10} {:>10} {:>10} {:>12} {:>8} {:>8} {:>9} {:>8}", "events", "findings", "open", "corr_grp", "corr_ent", "sql_bytes", "late", "budget", "calls", "rss_MiB");
    while done < args.events {
        let n = args.chunk.min(args.events - done);
        let mut input = Vec::new();
        // 50 events per second of event time, chunk after chunk.
        ocelot_pipeline::generate::cloudtrail(n, done as u64 + 7, start + (done as i64) * 20, &mut input).expect("in memory");
        for b in normalize_bytes(&input, &source) {
            findings += engine.process(&b.batch, &b.class.name).len();
        }
        done += n;
        if done >= next_report {
            let s = engine.stats();
            println!(
                "{:>10} {:>9} {:>10} {:>10} {:>10} {:>12} {:>8} {:>8} {:>9} {:>8.0}",
                done,
                findings,
                s.open_findings,
                s.correlation_groups,
                s.correlation_entries,
                s.sql_buffered_bytes,
                s.late_events,
                s.sql_budget_exceeded,
                s.linked_calls,
                rss_mib()
            );
            next_report += 1_000_000;
        }
    }
    println!("{} events in {:.0} s (generation and normalization included)", done, t0.elapsed().as_secs_f64());
}
