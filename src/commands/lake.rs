//! `ocelot lake compact`, `ocelot lake verify` and `ocelot lake export`: the lake's upkeep, its
//! tamper evidence, and its export to Amazon Security Lake.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ocelot_lake::{compact, verify, CompactOptions, Storage};

/// Merges the small files of every partition into files of about `target_mb` MiB.
pub fn compact_cmd(lake: &Storage, target_mb: u64, retain_secs: u64, json: bool) -> Result<ExitCode> {
    if let Some(dir) = lake.local_root().filter(|d| !d.is_dir()) {
        bail!("{}: no such lake directory", dir.display());
    }
    if !(1..=4096).contains(&target_mb) {
        bail!("--target-mb {target_mb}: give 1 to 4096 (MiB)");
    }
    let opts = CompactOptions { target_file_bytes: target_mb << 20, retain: Duration::from_secs(retain_secs), ..Default::default() };
    let bar = bar("merges");
    let t = Instant::now();
    let stats = compact(lake, &opts, &std::sync::atomic::AtomicBool::new(false), &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .with_context(|| format!("compacting {lake}"))?;
    bar.finish_and_clear();
    if json {
        println!("{}", serde_json::to_string(&stats)?);
    } else {
        println!(
            "{} partitions: {} files ({:.1} MB) merged into {} ({:.1} MB), {} rows, in {:.2}s{}",
            stats.partitions,
            stats.files_in,
            stats.bytes_in as f64 / 1e6,
            stats.files_out,
            stats.bytes_out as f64 / 1e6,
            stats.rows,
            t.elapsed().as_secs_f64(),
            if stats.conflicts > 0 { format!("; {} merges left to another compactor", stats.conflicts) } else { String::new() }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Walks the manifest's chain and hashes every file; exit 1 on any problem.
pub fn verify_cmd(lake: &Storage, expect_head: Option<&str>, json: bool) -> Result<ExitCode> {
    if let Some(dir) = lake.local_root().filter(|d| !d.is_dir()) {
        bail!("{}: no such lake directory", dir.display());
    }
    let bar = bar("files");
    let mut v = verify(lake, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .with_context(|| format!("verifying {lake}"))?;
    bar.finish_and_clear();
    if let Some(want) = expect_head
        && v.head.as_deref() != Some(want)
    {
        v.problems.push(ocelot_lake::manifest::Problem::BrokenChain {
            seq: v.entries.saturating_sub(1),
            why: format!("the head is {}, not the {want} you recorded: entries were rewritten or dropped", v.head.as_deref().unwrap_or("(none)")),
        });
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let mut out = std::io::stdout().lock();
        if v.entries == 0 {
            writeln!(out, "{lake}: no manifest (written before Ocelot kept one, or not an Ocelot lake); the next write records its files")?;
        }
        writeln!(out, "{} manifest entries, {} files ({:.1} MB) committed; head {}", v.entries, v.live_files, v.live_bytes as f64 / 1e6, v.head.as_deref().unwrap_or("-"))?;
        if v.awaiting_deletion > 0 {
            writeln!(out, "{} replaced files awaiting deletion (compaction keeps them for queries under way)", v.awaiting_deletion)?;
        }
        for p in &v.problems {
            writeln!(out, "PROBLEM {p}")?;
        }
        writeln!(out, "{}", if v.problems.is_empty() { "ok: every file is as committed and the chain is whole".to_string() } else { format!("{} problems", v.problems.len()) })?;
    }
    Ok(if v.problems.is_empty() && v.entries > 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Exports partitions as Amazon Security Lake custom sources (OCSF 1.1.0).
pub fn export_cmd(lake: &Storage, dest: &Storage, source_prefix: String, since: Option<String>, until: Option<String>, json: bool) -> Result<ExitCode> {
    for (flag, day) in [("--since", &since), ("--until", &until)] {
        if let Some(d) = day
            && !(d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()))
        {
            bail!("{flag} {d}: give a day as YYYYMMDD (20261101)");
        }
    }
    use ocelot_lake::security_lake::MAX_SOURCE_PREFIX;
    if source_prefix.is_empty() || source_prefix.len() > MAX_SOURCE_PREFIX || !source_prefix.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)) {
        bail!("--source-prefix {source_prefix:?}: 1 to {MAX_SOURCE_PREFIX} letters, digits, `-` or `_` (source names are PREFIX-CLASS_UID, and Security Lake takes at most 20 characters)");
    }
    let opts = ocelot_lake::security_lake::ExportOptions { source_prefix, since, until };
    let bar = bar("partitions");
    let t = Instant::now();
    let stats = ocelot_lake::security_lake::export(lake, dest, &opts, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .with_context(|| format!("exporting {lake} to {dest}"))?;
    bar.finish_and_clear();
    if json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        println!(
            "{} partitions: {} rows in {} objects ({:.1} MB) of OCSF 1.1.0 under {dest}/ext/, in {:.2}s",
            stats.partitions,
            stats.rows,
            stats.objects,
            stats.bytes as f64 / 1e6,
            t.elapsed().as_secs_f64()
        );
        if !stats.moved.is_empty() {
            let top: Vec<String> = stats.moved.iter().take(8).map(|(k, n)| format!("{k} ({n})")).collect();
            println!("moved to unmapped.{} (1.1.0 lacks them): {}{}", ocelot_lake::security_lake::UNMAPPED_KEY, top.join(", "), if stats.moved.len() > 8 { ", ..." } else { "" });
        }
        // What to register (docs/lake.md): one custom source per class.
        for (source, class) in &stats.sources {
            println!("source {source}: event class {class}");
        }
        for t in &stats.skipped_tables {
            println!("not exported: {t} (OCSF 1.1.0 has no such class)");
        }
        if stats.invalid > 0 {
            println!(
                "{} records not exported (OCSF 1.1.0 refuses them even after the conversion), dead-lettered to {}; the first:",
                stats.invalid,
                stats.dead_letter.as_deref().map(|d| format!("{lake}/{d}")).unwrap_or_default()
            );
            for p in &stats.problems {
                println!("  {p}");
            }
        }
    }
    // As `ocelot normalize`: 3 when anything was dead-lettered.
    Ok(if stats.invalid > 0 { ExitCode::from(3) } else { ExitCode::SUCCESS })
}

pub(crate) fn bar(what: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(0);
    b.set_style(indicatif::ProgressStyle::with_template(&format!("{{bar:40}} {{pos}}/{{len}} {what} eta {{eta}}")).unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()));
    b
}
