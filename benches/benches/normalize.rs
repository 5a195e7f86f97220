//! Criterion benches of the hot path, one thread:
//! - `parse_only`: generated CloudTrail JSON Lines through the decoder and simd-json alone
//!   (the baseline, measured in the same run);
//! - `normalize_cloudtrail`: the same bytes to OCSF Arrow RecordBatches (with the shipped
//!   agent registry matching every record);
//! - `normalize_cloudtrail_no_agents`: the same with an empty registry (the registry's cost is
//!   the difference);
//! - `write_lake`: those batches to zstd Parquet files in the lake layout.
//!
//! At the end it prints normalize/parse_only as a ratio, with both absolute figures.
//!
//! Run: `cargo bench -p ocelot-benches --bench normalize`

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use ocelot_benches::{cloudtrail_jsonl, normalize_bytes, normalize_bytes_with, parse_only, EVENTS};
use ocelot_lake::{LakeWriter, WriterOptions};
use ocelot_normalize::agents::Registry;

// The allocator the `ocelot` binary ships with, so the figures are the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn benches(c: &mut Criterion) {
    let input = cloudtrail_jsonl(EVENTS);
    let source: Arc<str> = Arc::from("bench");
    let mut g = c.benchmark_group("cloudtrail");
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.sample_size(15).measurement_time(Duration::from_secs(12));
    g.bench_function("parse_only", |b| b.iter(|| parse_only(&input, &source)));
    let shipped = Arc::new(Registry::builtin());
    let none = Arc::new(Registry::new(&[], false).expect("an empty registry"));
    g.bench_function("normalize_cloudtrail", |b| b.iter(|| normalize_bytes_with(&input, &source, &shipped)));
    // The agent registry's cost: the same without any agent to recognize ...
    g.bench_function("normalize_cloudtrail_no_agents", |b| b.iter(|| normalize_bytes_with(&input, &source, &none)));
    // ... and, steadier, the registry alone on the same records' callers.
    let callers = ocelot_benches::callers(&input);
    g.bench_function("agent_registry", |b| {
        let mut scratch = shipped.scratch();
        b.iter(|| callers.iter().filter(|c| shipped.find(&c.as_caller(), &mut scratch).is_some()).count())
    });
    let batches = normalize_bytes(&input, &source);
    g.bench_function("write_lake", |b| {
        b.iter_with_setup(
            || tempfile::tempdir().unwrap(),
            |dir| {
                let mut w = LakeWriter::new(dir.path(), WriterOptions::default());
                for batch in &batches {
                    w.append(batch).unwrap();
                }
                w.flush().unwrap();
                dir
            },
        )
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
    ocelot_benches::report::print_ratio(EVENTS, cloudtrail_jsonl(EVENTS).len());
}
