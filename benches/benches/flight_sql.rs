//! Flight SQL query latency over a lake of 10 million generated CloudTrail events, against
//! DuckDB (PyPI) over the same Parquet files, in the same run.
//!
//! The lake is written once with Ocelot's own normalizer and writer (kept under
//! target/bench-lake-<N>/ for later runs). Each query runs once to warm the page cache, then
//! `RUNS` times; the median is reported. Ocelot: `ocelot serve`'s server in this process,
//! queried by the Rust Flight SQL client over loopback (so the time includes planning, the scan,
//! Arrow IPC encoding and gRPC). DuckDB: in a Python process, timed around `execute().arrow()`
//! (an Arrow table, as Flight SQL gives; no connection or start-up time). Both read `read_parquet` / the listing table with hive
//! partitions and use every core. The answers must be equal.
//!
//! Run: `cargo bench -p ocelot-benches --bench flight_sql --profile release`
//! (`OCELOT_BENCH_EVENTS` sets the count; `OCELOT_TEST_PYTHON` a Python with duckdb).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::TryStreamExt;
use ocelot_lake::config::ServeConfig;
use ocelot_lake::{DeadLetterStore, LakeWriter, WriterOptions};
use ocelot_normalize::decode::Limits;
use ocelot_pipeline::ingest::{Ingest, Output};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RUNS: usize = 5;

/// (name, Ocelot SQL, DuckDB SQL): the same question in each dialect's table syntax.
fn queries(lake: &Path, union_by_name: bool) -> Vec<(&'static str, String, String)> {
    // Ocelot's files leave out their all-null columns: where their schemas differ, DuckDB needs
    // union_by_name (which costs it a pass over every footer), else it is left out.
    let scan = format!("read_parquet('{}/api_activity/**/*.parquet', hive_partitioning = true, union_by_name = {union_by_name})", lake.display());
    [
        ("calls per operation", "SELECT api.operation AS operation, count(*) AS n FROM {t} GROUP BY 1 ORDER BY n DESC, operation LIMIT 10"),
        ("calls per principal and service", "SELECT actor.user.name AS principal, api.service.name AS service, count(*) AS n FROM {t} GROUP BY 1, 2 ORDER BY n DESC, principal, service LIMIT 10"),
        ("failed calls per region and day", "SELECT region, eventDay, count(*) AS n FROM {t} WHERE api.response.error IS NOT NULL GROUP BY 1, 2 ORDER BY n DESC, region, eventDay LIMIT 10"),
    ]
    .into_iter()
    .map(|(name, q)| (name, q.replace("{t}", "api_activity"), q.replace("{t}", &scan)))
    .collect()
}

fn lake(events: usize) -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let lake = dir.join(format!("bench-lake-{events}"));
    if lake.join("api_activity").is_dir() {
        return lake;
    }
    let tmp = dir.join(format!(".bench-lake-{events}.tmp"));
    let _ = std::fs::remove_dir_all(&tmp);
    let started = Instant::now();
    let normalizer = ocelot_normalize::by_kind("cloudtrail").expect("cloudtrail normalizer");
    let mut ingest = Ingest::new(normalizer, Output::Lake(Box::new(LakeWriter::new(&tmp, WriterOptions::default()))), DeadLetterStore::new(&tmp), Limits::default());
    let chunk = 500_000;
    let mut done = 0;
    while done < events {
        let n = chunk.min(events - done);
        let mut jsonl = Vec::new();
        // One seed per chunk, each chunk after the last in time: distinct events, one timeline.
        ocelot_pipeline::generate::cloudtrail(n, done as u64 + 1, 1_793_500_000_000 + done as i64 * 20, &mut jsonl).expect("in memory");
        ingest.stdin(&jsonl[..]).expect("normalize");
        done += n;
    }
    let summary = ingest.finish(started).expect("lake");
    std::fs::rename(&tmp, &lake).expect("lake in place");
    println!("lake: {} events normalized into {} in {:.0} s", summary.events, lake.display(), started.elapsed().as_secs_f64());
    lake
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn python() -> PathBuf {
    std::env::var_os("OCELOT_TEST_PYTHON").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-venv/bin/python"))
}

const DUCKDB: &str = r#"
import json, sys, time, duckdb
con = duckdb.connect()
for sql in json.loads(sys.stdin.read()):
    con.sql(sql).to_arrow_table()  # warm-up
    times = []
    for _ in range(int(sys.argv[1])):
        t = time.perf_counter(); table = con.sql(sql).to_arrow_table(); times.append(time.perf_counter() - t)
    times.sort()
    rows = [list(r.values()) for r in table.to_pylist()]
    print(json.dumps({"median_s": times[len(times) // 2], "rows": [["" if c is None else str(c) for c in r] for r in rows]}))
"#;

fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for b in batches {
        for i in 0..b.num_rows() {
            out.push(b.columns().iter().map(|c| arrow::util::display::array_value_to_string(c, i).expect("display")).collect());
        }
    }
    out
}

/// How many different schemas the `api_activity` files have.
fn api_activity_schemas(lake: &Path) -> usize {
    let snapshot = ocelot_lake::Snapshot::take(&lake.into()).expect("the lake's manifest");
    let mut seen = std::collections::HashSet::new();
    for f in snapshot.table_files("api_activity") {
        let file = std::fs::File::open(lake.join(&f)).expect("a lake file");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).expect("a Parquet footer");
        seen.insert(format!("{:?}", reader.schema().fields()));
    }
    seen.len()
}

fn main() {
    let events: usize = std::env::var("OCELOT_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    let lake = lake(events);
    let size: u64 = walk(&lake);
    let schemas = api_activity_schemas(&lake);
    let queries = queries(&lake, schemas > 1);

    // DuckDB first, then Ocelot: each gets the page cache warmed by its own warm-up run.
    let sqls: Vec<&str> = queries.iter().map(|q| q.2.as_str()).collect();
    let mut child = Command::new(python())
        .args(["-c", DUCKDB, &RUNS.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python with duckdb (scripts/test.sh makes one)");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), serde_json::to_string(&sqls).expect("json").as_bytes()).expect("to python");
    let out = child.wait_with_output().expect("duckdb");
    assert!(out.status.success(), "duckdb failed");
    let duck: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("json")).collect();

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let ours: Vec<(Duration, Vec<Vec<String>>)> = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let cfg = ServeConfig::from_toml(&format!("[lake]\npath = \"{}\"\n[sql]\ntokens = [\"bench\"]\nquery_memory_mb = 4096\n", lake.display())).expect("config");
        let lake_dir = lake.clone();
        tokio::spawn(async move { ocelot_server::serve(&lake_dir.as_path().into(), &cfg.sql, listener, std::future::pending()).await.expect("serve") });
        let channel = tonic::transport::Channel::from_shared(format!("http://{addr}")).expect("url").connect().await.expect("connect");
        let mut client = FlightSqlServiceClient::new(channel);
        client.set_token("bench".into());
        let mut results = Vec::new();
        for (_, sql, _) in &queries {
            let mut times = Vec::new();
            let mut last = Vec::new();
            for run in 0..=RUNS {
                let started = Instant::now();
                let info = client.execute(sql.clone(), None).await.expect("execute");
                let ticket = info.endpoint[0].ticket.clone().expect("ticket");
                let batches: Vec<RecordBatch> = client.do_get(ticket).await.expect("do_get").try_collect().await.expect("batches");
                if run > 0 {
                    times.push(started.elapsed());
                }
                last = batches;
            }
            results.push((median(times), rows(&last)));
        }
        results
    });

    println!("\n== Flight SQL vs DuckDB: GROUP BY over {events} CloudTrail events ({:.0} MB of Parquet), median of {RUNS} warm runs", size as f64 / 1e6);
    println!("(api_activity files with {schemas} distinct schema(s): DuckDB reads with union_by_name = {})", schemas > 1);
    println!("{:<34} {:>12} {:>12} {:>8}", "query", "ocelot ms", "duckdb ms", "ratio");
    for (((name, _, _), (ours, our_rows)), duck) in queries.iter().zip(&ours).zip(&duck) {
        let duck_s = duck["median_s"].as_f64().expect("median");
        let duck_rows: Vec<Vec<String>> = serde_json::from_value(duck["rows"].clone()).expect("rows");
        let same = if *our_rows == duck_rows { "same answer" } else { "ANSWERS DIFFER" };
        println!("{name:<34} {:>12.1} {:>12.1} {:>7.2}x   ({same})", ours.as_secs_f64() * 1e3, duck_s * 1e3, ours.as_secs_f64() / duck_s);
        if *our_rows != duck_rows {
            println!("  ocelot: {our_rows:?}\n  duckdb: {duck_rows:?}");
        }
    }
    println!("(ratio = Ocelot's latency / DuckDB's: below 1 is faster than DuckDB)");
}

fn walk(dir: &Path) -> u64 {
    std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { e.metadata().map_or(0, |m| m.len()) }).sum()
}
