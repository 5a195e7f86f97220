//! The detection stage, one thread, over generated CloudTrail already normalized (batches of
//! 20,000 events), against normalizing the same events (the baseline, measured in the same run):
//! - `normalize`: JSON Lines -> OCSF batches (what detection is compared with);
//! - `sigma_and_patterns`: the 57 SigmaHQ AWS rules, the legacy count rules and the pattern
//!   rules (the regex-automata stage; target >= 500,000 events/s);
//! - `all_rules`: every shipped rule, the SQL and behaviour rules included (target: at most
//!   25% of the normalize cost).
//!
//! Two data sets, each its own group: `detect` draws every event from all the bundled samples,
//! most of them attack detonations, so rules fire on most events (the worst case);
//! `detect_everyday` draws 98% of the events from the read-only samples and 2% from all, closer
//! to an account's everyday traffic. The report prints how often rules hit in each.
//!
//! Run: `cargo bench -p ocelot-benches --bench detect --profile release`

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use ocelot_benches::{normalize_bytes, report};
use ocelot_detectors::{Engine, LoadOptions};
use ocelot_normalize::OcsfBatch;
use ocelot_pipeline::detect::{load_rules, EngineSpec, Mode};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EVENTS: usize = 20_000;

/// The data sets: (criterion group, share of events drawn from all samples, per mille).
const SETS: [(&str, usize); 2] = [("detect", 1000), ("detect_everyday", 20)];

fn engine(all: bool) -> Engine {
    let mut rules = load_rules(None, &LoadOptions::default()).expect("shipped rules");
    if !all {
        rules.sql = None;
        rules.behaviour = None;
    }
    EngineSpec::shipped(Mode::STREAM).with(rules)
}

fn run(mut e: Engine, batches: &[OcsfBatch]) -> (Engine, usize) {
    let mut n = 0;
    for batch in batches {
        n += e.process(&batch.batch, &batch.class.name).len();
    }
    n += e.finish().len();
    (e, n)
}

fn input(per_mille: usize) -> Vec<u8> {
    let mut out = Vec::new();
    ocelot_pipeline::generate::cloudtrail_mixed(EVENTS, 1, 1_793_500_000_000, per_mille, &mut out).expect("writing to memory");
    out
}

fn benches(c: &mut Criterion) -> Vec<report::DetectSet> {
    let source: Arc<str> = Arc::from("bench");
    let mut sets = Vec::new();
    for (group, per_mille) in SETS {
        let input = input(per_mille);
        let batches = normalize_bytes(&input, &source);
        assert_eq!(batches.iter().map(|b| b.batch.num_rows()).sum::<usize>(), EVENTS);
        // How often rules hit here, measured once outside the timing.
        let (e, findings) = run(engine(true), &batches);
        sets.push(report::DetectSet { group, events: EVENTS, sigma_hits: e.stats().hits, findings });
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Elements(EVENTS as u64));
        g.sample_size(10).measurement_time(Duration::from_secs(15));
        g.bench_function("normalize", |b| b.iter(|| normalize_bytes(&input, &source)));
        for (name, all) in [("sigma_and_patterns", false), ("all_rules", true)] {
            // A fresh engine per iteration: its state (open findings, windows) starts empty each time.
            g.bench_function(name, |b| b.iter_with_setup(|| engine(all), |e| run(e, &batches).1));
        }
        g.finish();
    }
    sets
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let sets = benches(&mut c);
    c.final_summary();
    report::print_detect(&sets);
}
