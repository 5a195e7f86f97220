//! Reads criterion's estimates for this run and prints throughput and ratios, so a speed is
//! always shown against the baseline measured in the same run.

use std::path::PathBuf;

fn mean_ns(group: &str, bench: &str) -> Option<f64> {
    let dir = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let text = std::fs::read_to_string(dir.join("criterion").join(group).join(bench).join("new/estimates.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

pub fn print_ratio(events: usize, bytes: usize) {
    let (Some(parse), Some(norm)) = (mean_ns("cloudtrail", "parse_only"), mean_ns("cloudtrail", "normalize_cloudtrail")) else {
        println!("(no criterion estimates found: run without a filter to get the ratio)");
        return;
    };
    let mbs = |ns: f64| bytes as f64 / 1e6 / (ns / 1e9);
    let eps = |ns: f64| events as f64 / (ns / 1e9);
    println!("\n== Ocelot normalize bench: {events} CloudTrail events, {:.1} MB per iteration, one thread", bytes as f64 / 1e6);
    println!("parse_only           {:>8.1} MB/s {:>10.0} events/s", mbs(parse), eps(parse));
    println!("normalize_cloudtrail {:>8.1} MB/s {:>10.0} events/s", mbs(norm), eps(norm));
    if let Some(lake) = mean_ns("cloudtrail", "write_lake") {
        println!("write_lake           {:>8.1} MB/s {:>10.0} events/s (source bytes; batches -> zstd Parquet)", mbs(lake), eps(lake));
    }
    println!("ratio normalize/parse_only = {:.2} (target >= 0.5)", parse / norm);
    if let Some(bare) = mean_ns("cloudtrail", "normalize_cloudtrail_no_agents") {
        println!("normalize without agents {:>8.1} MB/s (difference {:+.1}%: within this machine's noise)", mbs(bare), (norm - bare) / bare * 100.0);
    }
    if let Some(reg) = mean_ns("cloudtrail", "agent_registry") {
        println!(
            "agent registry alone: {:.0} ns per event = {:.1}% of the CloudTrail normalize cost per event ({:.0} ns) (target < 5%)",
            reg / events as f64,
            reg / norm * 100.0,
            norm / events as f64
        );
    }
}

/// Per source: parse_only and normalize throughput from group `source-<kind>`, and the ratio.
pub fn print_sources(rows: &[(&str, usize, usize)]) {
    println!("\n== Ocelot source normalizers: bundled samples repeated, one thread");
    println!("{:<12} {:>8} {:>10} {:>14} {:>14} {:>7}", "source", "events", "MB", "parse MB/s", "normalize MB/s", "ratio");
    for (kind, events, bytes) in rows {
        let group = format!("source-{kind}");
        let (Some(parse), Some(norm)) = (mean_ns(&group, "parse_only"), mean_ns(&group, "normalize")) else {
            println!("{kind:<12} (no criterion estimates: run without a filter)");
            continue;
        };
        let mbs = |ns: f64| *bytes as f64 / 1e6 / (ns / 1e9);
        println!("{kind:<12} {events:>8} {:>10.1} {:>14.1} {:>14.1} {:>7.2}   ({:.0} events/s)", *bytes as f64 / 1e6, mbs(parse), mbs(norm), parse / norm, *events as f64 / (norm / 1e9));
    }
}

/// One data set of the detection bench: its criterion group and how often rules hit in it.
pub struct DetectSet {
    pub group: &'static str,
    pub events: usize,
    pub sigma_hits: u64,
    pub findings: usize,
}

/// The detection stage against normalizing, per data set.
pub fn print_detect(sets: &[DetectSet]) {
    for s in sets {
        let (Some(norm), Some(sp), Some(all)) = (mean_ns(s.group, "normalize"), mean_ns(s.group, "sigma_and_patterns"), mean_ns(s.group, "all_rules")) else {
            println!("({}: no criterion estimates found: run without a filter to get the ratios)", s.group);
            continue;
        };
        let eps = |ns: f64| s.events as f64 / (ns / 1e9);
        println!("\n== Ocelot detection bench `{}`: {} generated CloudTrail events per iteration, one thread", s.group, s.events);
        println!("rules hit: {} Sigma hits ({:.0} per 1,000 events), {} findings with every rule on", s.sigma_hits, s.sigma_hits as f64 * 1000.0 / s.events as f64, s.findings);
        println!("normalize              {:>10.0} events/s (baseline)", eps(norm));
        println!("sigma_and_patterns     {:>10.0} events/s (target >= 500,000)   cost {:.1}% of normalize", eps(sp), sp / norm * 100.0);
        println!("all_rules              {:>10.0} events/s                       cost {:.1}% of normalize (target <= 25%)", eps(all), all / norm * 100.0);
    }
}
