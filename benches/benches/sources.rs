//! Criterion benches of each non-CloudTrail source normalizer, one thread: `parse_only` (the
//! decoder and simd-json alone, the baseline measured in the same run) and `normalize` (the
//! same bytes to OCSF Arrow batches), on the source's bundled real samples repeated to
//! `EVENTS` records. At the end it prints MB/s of both and their ratio per source.
//!
//! Run: `cargo bench -p ocelot-benches --bench sources`

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use ocelot_benches::{normalize_bytes_as, parse_only, source_jsonl, EVENTS};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SOURCES: &[&str] = &["waf", "securityhub", "guardduty", "shield", "agent"];

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let source: Arc<str> = Arc::from("bench");
    let mut rows = Vec::new();
    for kind in SOURCES {
        let input = source_jsonl(kind, EVENTS);
        let mut g = c.benchmark_group(format!("source-{kind}"));
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.sample_size(15).measurement_time(Duration::from_secs(8));
        g.bench_function("parse_only", |b| b.iter(|| parse_only(&input, &source)));
        g.bench_function("normalize", |b| b.iter(|| normalize_bytes_as(kind, &input, &source)));
        g.finish();
        rows.push((*kind, EVENTS, input.len()));
    }
    c.final_summary();
    ocelot_benches::report::print_sources(&rows);
}
