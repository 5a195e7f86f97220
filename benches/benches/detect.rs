//! The detection stage, one thread, over generated CloudTrail already normalized (batches of
//! 20,000 events), against normalizing the same events (the baseline, measured in the same run):
//! - `normalize`: JSON Lines -> OCSF batches (what detection is compared with);
//! - `sigma_and_patterns`: the 57 SigmaHQ AWS rules, the legacy count rules and the pattern
//!   rules (the regex-automata stage; target >= 500,000 events/s);
//! - `all_rules`: every shipped rule, the SQL rules' filters, windows and queries included
//!   (target: at most 25% of the normalize cost).
//! The generated data is dense with attack samples, so rules fire far more than on real traffic.
//!
//! Run: `cargo bench -p ocelot-benches --bench detect --profile release`

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use ocelot_benches::{cloudtrail_jsonl, normalize_bytes, report};
use ocelot_detectors::{Engine, EngineOptions, LoadOptions};
use ocelot_pipeline::detect::load_rules;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EVENTS: usize = 20_000;

fn engine(all: bool) -> Engine {
    let mut rules = load_rules(None, &LoadOptions::default()).expect("shipped rules");
    if !all {
        rules.sql = None;
    }
    Engine::new(rules, EngineOptions::default())
}

fn benches(c: &mut Criterion) {
    let input = cloudtrail_jsonl(EVENTS);
    let source: Arc<str> = Arc::from("bench");
    let batches = normalize_bytes(&input, &source);
    let rows: usize = batches.iter().map(|b| b.batch.num_rows()).sum();
    assert_eq!(rows, EVENTS);
    let mut g = c.benchmark_group("detect");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.sample_size(10).measurement_time(Duration::from_secs(15));
    g.bench_function("normalize", |b| b.iter(|| normalize_bytes(&input, &source)));
    for (name, all) in [("sigma_and_patterns", false), ("all_rules", true)] {
        // A fresh engine per iteration: its state (open findings, windows) starts empty each time.
        g.bench_function(name, |b| {
            b.iter_with_setup(
                || engine(all),
                |mut e| {
                    let mut n = 0;
                    for batch in &batches {
                        n += e.process(&batch.batch, &batch.class.name).len();
                    }
                    n + e.finish().len()
                },
            )
        });
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
    report::print_detect(EVENTS);
}
