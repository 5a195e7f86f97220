//! `ocelot run` against a real Kafka-protocol broker (tansu, started by each test on a free
//! loopback port): exactly-once into the lake in a clean run, no loss across kill -9, a
//! consumer group of two, a broker restart, back-pressure, poison messages, SIGTERM.
//!
//! Each test prints what it measured (duplicates, RSS, pauses): `cargo nextest run --test
//! streaming --no-capture` shows it.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::kafka::{compare, gen_events, http_get, lake_rows_per_class, lake_uids, ocelot, write_config, Broker, Ocelot};

const P: i32 = 4;
const TOPIC: &str = "cloudtrail";
const GROUP: &str = "ocelot-test";

struct Setup {
    dir: tempfile::TempDir,
    broker: Broker,
}

impl Setup {
    fn new(extra_topics: &[(&str, u32)]) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::start(&dir.path().join("broker"));
        broker.create_topic(TOPIC, P as u32);
        for (t, n) in extra_topics {
            broker.create_topic(t, *n);
        }
        Setup { dir, broker }
    }

    fn lake(&self) -> std::path::PathBuf {
        self.dir.path().join("lake")
    }

    fn config(&self, extra: &str) -> std::path::PathBuf {
        write_config(self.dir.path(), &self.broker, TOPIC, &self.lake(), extra)
    }
}

/// Waits until the group committed at least `min_total` messages in all.
fn wait_committed_at_least(b: &Broker, min_total: i64, timeout: Duration) {
    let start = Instant::now();
    loop {
        let c: i64 = b.committed(GROUP, TOPIC, P).iter().map(|o| (*o).max(0)).sum();
        if c >= min_total {
            return;
        }
        assert!(start.elapsed() < timeout, "only {c} committed after {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stop(o: &mut Ocelot) {
    o.signal("TERM");
    let (code, took) = o.wait(Duration::from_secs(30));
    assert_eq!(code, Some(0), "exit after SIGTERM; log:\n{}", o.logs());
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[test]
fn hundred_thousand_events_land_exactly_once_and_offsets_reach_the_end() {
    let s = Setup::new(&[]);
    let (events, ids) = gen_events(100_000, 7);
    s.broker.produce(TOPIC, P, &events);
    let mut o = ocelot(&s.config(""), &[]);
    let committed = s.broker.wait_committed_to_end(GROUP, TOPIC, P, Duration::from_secs(300));
    assert_eq!(committed.iter().sum::<i64>(), 100_000);
    // Health and metrics while running.
    assert_eq!(http_get(o.http, "/healthz").unwrap().0, 200);
    assert_eq!(http_get(o.http, "/readyz").unwrap().0, 200);
    let metrics = o.metrics();
    for name in [
        "ocelot_events_in_total{source=\"cloudtrail\"} 100000",
        "ocelot_messages_in_total{topic=\"cloudtrail\"} 100000",
        "ocelot_ingest_latency_seconds_bucket",
        "ocelot_commit_seconds_count",
        "ocelot_batch_seconds_bucket",
        "ocelot_committed_offset{",
    ] {
        assert!(metrics.contains(name), "{name} not in /metrics:\n{metrics}");
    }
    stop(&mut o);
    let (missing, dups) = compare(&ids, &lake_uids(&s.lake()));
    assert!(missing.is_empty(), "{} events missing, e.g. {:?}", missing.len(), &missing[..missing.len().min(3)]);
    assert_eq!(dups, 0, "a clean run writes every event once");
    assert_eq!(lake_uids(&s.lake()).len(), 100_000);
}

#[test]
fn kill_9_mid_stream_then_restart_loses_nothing() {
    let s = Setup::new(&[]);
    let (events, ids) = gen_events(60_000, 11);
    s.broker.produce(TOPIC, P, &events);
    // Small batches, so that the kill lands between commits.
    let cfg = s.config("[batch]\nmax_rows = 2000\nmax_bytes = 33554432\nmax_latency_ms = 200\nmax_in_flight = 2\n");
    let mut first = ocelot(&cfg, &[]);
    wait_committed_at_least(&s.broker, 10_000, Duration::from_secs(120));
    first.signal("KILL");
    first.wait(Duration::from_secs(10));
    let at_kill: i64 = s.broker.committed(GROUP, TOPIC, P).iter().sum();
    // Let the dead member's session (10 s) expire first: tansu 0.6 does not start a new
    // rebalance when a member expires, so a member that joins before the expiry can be left
    // with no partitions (seen once in CI). Kafka itself rebalances on the expiry.
    std::thread::sleep(Duration::from_secs(12));
    let mut second = ocelot(&cfg, &[]);
    s.broker.wait_committed_to_end(GROUP, TOPIC, P, Duration::from_secs(300));
    stop(&mut second);
    let found = lake_uids(&s.lake());
    let (missing, dups) = compare(&ids, &found);
    println!("kill -9 after {at_kill} committed: {} rows in the lake for {} events, {dups} duplicates", found.len(), ids.len());
    assert!(missing.is_empty(), "{} events lost", missing.len());
    // Duplicates come only from what was read but not committed at the kill: at most the open
    // batch, one waiting, max_in_flight queued and one being written (5 batches of max_rows).
    assert!(dups <= 5 * 2000, "{dups} duplicates: more than the uncommitted window");
}

#[test]
fn a_record_that_panics_the_normalizer_is_dead_lettered_and_the_stream_goes_on() {
    let s = Setup::new(&[]);
    let (events, ids) = gen_events(5_000, 23);
    let victim = "DescribeInstances";
    let victims: std::collections::HashSet<String> =
        events.iter().map(|e| serde_json::from_slice::<serde_json::Value>(e).unwrap()).filter(|v| v["eventName"] == victim).map(|v| v["eventID"].as_str().unwrap().to_string()).collect();
    assert!(victims.len() > 50, "{} victims", victims.len());
    s.broker.produce(TOPIC, P, &events);
    let mut o = ocelot(&s.config(""), &[("OCELOT_FAULT_PANIC_EVENT", victim.into())]);
    // Every offset is committed: no crash loop on the poison records.
    s.broker.wait_committed_to_end(GROUP, TOPIC, P, Duration::from_secs(300));
    stop(&mut o);
    let found = lake_uids(&s.lake());
    let expected: Vec<String> = ids.iter().filter(|i| !victims.contains(*i)).cloned().collect();
    let (missing, dups) = compare(&expected, &found);
    assert!(missing.is_empty() && dups == 0, "{} missing, {dups} duplicates", missing.len());
    assert!(found.iter().all(|u| !victims.contains(u)), "a panicked record's uid in the lake");
    let dead: usize =
        common::files_under(&s.lake().join("_dead_letter")).iter().map(|f| std::fs::read_to_string(f).unwrap().lines().filter(|l| l.contains("normalizer panic: fault injected")).count()).sum();
    assert_eq!(dead, victims.len());
}

#[test]
fn two_instances_share_the_partitions() {
    let s = Setup::new(&[]);
    // Two replicas on one lake, each compacting it every second while both write (the keys
    // before `[batch]` belong to the config's `[lake]`).
    let cfg = s.config("compact_interval_secs = 1\n[batch]\nmax_rows = 5000\nmax_bytes = 33554432\nmax_latency_ms = 300\nmax_in_flight = 2\n");
    let mut a = ocelot(&cfg, &[]);
    let mut b = ocelot(&cfg, &[]);
    // Both have joined before the data arrives (each gets 2 of the 4 partitions).
    let start = Instant::now();
    while a.metric("ocelot_assigned_partitions") + b.metric("ocelot_assigned_partitions") < 4.0 || a.metric("ocelot_assigned_partitions") == 0.0 || b.metric("ocelot_assigned_partitions") == 0.0 {
        assert!(start.elapsed() < Duration::from_secs(60), "the group did not settle: a={} b={}", a.metric("ocelot_assigned_partitions"), b.metric("ocelot_assigned_partitions"));
        std::thread::sleep(Duration::from_millis(200));
    }
    let (events, ids) = gen_events(40_000, 13);
    s.broker.produce(TOPIC, P, &events);
    s.broker.wait_committed_to_end(GROUP, TOPIC, P, Duration::from_secs(300));
    let (ma, mb) = (a.metric("ocelot_messages_in_total"), b.metric("ocelot_messages_in_total"));
    stop(&mut a);
    stop(&mut b);
    let found = lake_uids(&s.lake());
    let (missing, dups) = compare(&ids, &found);
    println!("two instances: a read {ma}, b read {mb}; {dups} duplicates");
    assert!(missing.is_empty(), "{} events lost", missing.len());
    assert!(ma > 0.0 && mb > 0.0, "both instances consumed: a={ma} b={mb}");
    assert_eq!(ma + mb, 40_000.0 + dups as f64);
    // Stopping `a` first moves its partitions to `b` after a flush and commit: nothing read twice.
    assert_eq!(dups, 0);
    // One manifest chain from both writers and both compactors, every file as it recorded it.
    let v = std::process::Command::new(env!("CARGO_BIN_EXE_ocelot")).args(["lake", "verify", "--json"]).arg(s.lake()).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert!(v.status.success(), "{report:#}");
    let names: Vec<String> = common::kafka::event_files(&s.lake()).iter().map(|f| f.file_name().unwrap().to_string_lossy().to_string()).collect();
    assert_eq!(names.iter().collect::<std::collections::HashSet<_>>().len(), names.len(), "a file name used twice");
    println!("two instances: {} manifest entries, {} live files", report["entries"], report["live_files"]);
}

#[test]
fn broker_restart_mid_stream_loses_nothing() {
    let mut s = Setup::new(&[]);
    let (events, ids) = gen_events(50_000, 17);
    s.broker.produce(TOPIC, P, &events);
    let cfg = s.config("[batch]\nmax_rows = 2000\nmax_bytes = 33554432\nmax_latency_ms = 200\nmax_in_flight = 2\n");
    let mut o = ocelot(&cfg, &[]);
    wait_committed_at_least(&s.broker, 5_000, Duration::from_secs(120));
    s.broker.stop();
    std::thread::sleep(Duration::from_secs(3));
    s.broker.restart();
    s.broker.wait_committed_to_end(GROUP, TOPIC, P, Duration::from_secs(300));
    stop(&mut o);
    let found = lake_uids(&s.lake());
    let (missing, dups) = compare(&ids, &found);
    println!("broker restart: {} rows for {} events, {dups} duplicates", found.len(), ids.len());
    assert!(missing.is_empty(), "{} events lost", missing.len());
}

#[test]
fn a_slow_sink_pauses_consumption_and_memory_stays_bounded() {
    let s = Setup::new(&[]);
    let (events, ids) = gen_events(60_000, 19);
    s.broker.produce(TOPIC, P, &events);
    // What is measured is the ingest path's back-pressure: detection, whose windows hold the
    // rows its rules keep (bounded by each rule's budget), is off here and measured in benches.
    let cfg = s.config("[batch]\nmax_rows = 2000\nmax_bytes = 33554432\nmax_latency_ms = 1000\nmax_in_flight = 1\n[detect]\nenabled = false\n");
    let mut o = ocelot(&cfg, &[("OCELOT_FAULT_SINK_DELAY_MS", "150".into())]);
    let ends: i64 = s.broker.end_offsets(TOPIC, P).iter().sum();
    let mut peak = 0;
    let start = Instant::now();
    loop {
        peak = peak.max(o.rss());
        let c: i64 = s.broker.committed(GROUP, TOPIC, P).iter().map(|o| (*o).max(0)).sum();
        if c == ends {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(300), "stalled at {c} of {ends}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pauses = o.metric("ocelot_pauses_total");
    stop(&mut o);
    println!("slow sink: peak RSS {:.1} MiB over 60,000 events (78 MB of input), {pauses} pauses", peak as f64 / (1 << 20) as f64);
    assert!(pauses >= 1.0, "consumption was never paused");
    // The whole input is 78 MB; held in memory it would be several times that as Arrow.
    assert!(peak < 200 << 20, "peak RSS {peak} bytes");
    let (missing, _) = compare(&ids, &lake_uids(&s.lake()));
    assert!(missing.is_empty());
}

#[test]
fn poison_messages_go_to_the_dead_letter_topic_and_nothing_stalls() {
    let s = Setup::new(&[("dead", 1), ("ocsf", 2)]);
    let (good, ids) = gen_events(10_000, 23);
    let mut payloads = Vec::new();
    let mut kinds = Vec::new();
    let bomb = {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![b' '; 4 << 20]).unwrap();
        gz.finish().unwrap()
    };
    for (i, g) in good.iter().enumerate() {
        payloads.push(g.clone());
        if i % 10 == 0 {
            let (kind, p): (&str, Vec<u8>) = match (i / 10) % 5 {
                0 => ("malformed JSON", br#"{"eventVersion":"1.08",,"eventName":}"#.to_vec()),
                1 => ("not a CloudTrail record", br#"{"hello":"world","n":1}"#.to_vec()),
                2 => ("too large", format!("{{\"eventName\":\"{}\"}}", "x".repeat(1_200_000)).into_bytes()),
                3 => ("invalid UTF-8", b"{\"eventName\":\"\xff\xfe\"}".to_vec()),
                _ => ("gzip", bomb.clone()),
            };
            payloads.push(p);
            kinds.push(kind);
        }
    }
    assert_eq!(kinds.len(), 1000);
    s.broker.produce(TOPIC, P, &payloads);
    let cfg = s.config("[output.kafka]\ntopic = \"ocsf\"\n[dead_letter]\ntopic = \"dead\"\n[limits]\nmax_event_bytes = 1048576\nmax_decompressed_bytes = 2097152\n");
    let mut o = ocelot(&cfg, &[]);
    s.broker.wait_committed_to_end(GROUP, TOPIC, P, Duration::from_secs(300));
    stop(&mut o);
    let dead = s.broker.read_all("dead", 1);
    assert_eq!(dead.len(), 1000, "one dead letter per poison message");
    let mut by_reason = std::collections::BTreeMap::<String, usize>::new();
    for r in &dead {
        let (h, payload) = (&r.headers, &r.payload);
        for k in ["ocelot.reason", "ocelot.source.topic", "ocelot.source.partition", "ocelot.source.offset", "ocelot.time"] {
            assert!(h.contains_key(k), "header {k} missing: {h:?}");
        }
        assert_eq!(h["ocelot.source.topic"], TOPIC);
        assert!(!payload.is_empty());
        *by_reason.entry(h["ocelot.reason"].split(':').next().unwrap().to_string()).or_default() += 1;
    }
    println!("dead letters by reason: {by_reason:?}");
    for want in ["malformed JSON", "not a CloudTrail record", "invalid UTF-8", "gzip"] {
        assert_eq!(by_reason.iter().filter(|(r, _)| r.contains(want)).map(|(_, n)| n).sum::<usize>(), 200, "{want}: {by_reason:?}");
    }
    let (missing, dups) = compare(&ids, &lake_uids(&s.lake()));
    assert!(missing.is_empty() && dups == 0);
    // The OCSF JSON output got every good event once, acknowledged before the commit.
    let json = s.broker.read_all("ocsf", 2);
    let uids: Vec<String> = json.iter().map(|r| serde_json::from_slice::<serde_json::Value>(&r.payload).unwrap()["metadata"]["uid"].as_str().unwrap().to_string()).collect();
    let (missing, dups) = compare(&ids, &uids);
    assert!(missing.is_empty() && dups == 0, "{} missing, {dups} duplicates in the OCSF JSON topic", missing.len());
}

/// One message per record of every source (an OTLP request and a Shield DescribeAttack output
/// are one message each), all sources interleaved.
fn mixed_messages() -> Vec<Vec<u8>> {
    let read = |p: &str| std::fs::read_to_string(common::repo().join(p)).unwrap();
    let one_line = |t: String| serde_json::from_str::<serde_json::Value>(&t).unwrap().to_string();
    let panther = |p: &str| read(p).lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].to_string()).collect::<Vec<_>>();
    let sources: Vec<Vec<String>> = vec![
        read("samples/cloudtrail/stratus/aws.persistence.iam-create-admin-user.jsonl").lines().map(str::to_string).collect(),
        read("samples/waf/awsdocs/waf_log_examples.jsonl").lines().map(str::to_string).collect(),
        read("samples/securityhub/awsdocs/asff_doc_examples.jsonl").lines().map(str::to_string).collect(),
        panther("tests/data/guardduty/panther/guardduty_rule_tests.jsonl"),
        vec![one_line(read("samples/shield/aws-cli/describe-attack.output.json")), one_line(read("samples/shield/aws-cli/list-attacks.output.json"))],
        vec![one_line(read("samples/agent/session/otlp-traces.json")), one_line(read("samples/agent/session/otlp-logs.json"))],
        read("samples/agent/session/mcp.jsonl").lines().map(str::to_string).collect(),
        read("samples/agent/session/cloudtrail.jsonl").lines().map(str::to_string).collect(),
    ];
    let mut messages = Vec::new();
    let longest = sources.iter().map(Vec::len).max().unwrap();
    for i in 0..longest {
        messages.extend(sources.iter().filter_map(|s| s.get(i)).map(|m| m.clone().into_bytes()));
    }
    messages
}

#[test]
fn every_source_in_one_topic_is_told_apart_by_auto() {
    // One message per record (an OTLP request and a Shield DescribeAttack output are one
    // message each), all sources interleaved.
    let s = Setup::new(&[]);
    let messages = mixed_messages();
    // What the same records give in memory, class by class.
    let joined = messages.iter().map(|m| String::from_utf8_lossy(m).to_string()).collect::<Vec<_>>().join("\n");
    let want = common::normalize_as("auto", &[(joined.as_bytes(), "mixed")]);
    assert!(want.dead.is_empty(), "{:?}", want.dead);
    let mut want_rows = std::collections::BTreeMap::<String, usize>::new();
    for b in &want.batches {
        *want_rows.entry(b.class.name.clone()).or_default() += b.batch.num_rows();
    }
    assert_eq!(want_rows.len(), 5, "{want_rows:?}");

    s.broker.produce(TOPIC, P, &messages);
    // Findings also go to a Kafka topic through a forwarder.
    s.broker.create_topic("findings", 1);
    let cfg = s.config(&format!("[[forward]]\ntype = \"kafka\"\nbrokers = \"{}\"\ntopic = \"findings\"\n", s.broker.addr()));
    std::fs::write(&cfg, std::fs::read_to_string(&cfg).unwrap().replace("source = \"cloudtrail\"", "source = \"auto\"")).unwrap();
    let mut o = ocelot(&cfg, &[]);
    s.broker.wait_committed_to_end(GROUP, TOPIC, P, Duration::from_secs(120));
    stop(&mut o);
    let got = lake_rows_per_class(&s.lake());
    println!("rows per class from one mixed topic: {got:?}");
    assert_eq!(got, want_rows);
    assert!(!s.lake().join("_dead_letter").exists(), "nothing dead-lettered");

    // The detection engine ran on the stream: its findings are in the lake's `findings` table,
    // the agent's rejected-yet-executed TerminateInstances among them.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ocelot"))
        .args(["sql", "--format", "csv", "--lake"])
        .arg(s.lake())
        .arg("SELECT DISTINCT finding_info.analytic.uid AS rule, unmapped FROM findings ORDER BY 1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    println!("findings from the stream:\n{text}");
    for rule in ["ocelot.agent-destructive-unapproved", "ocelot.agent-data-destruction", "ocelot.agent-destructive-commands", "ocelot.audit-tampering", "0a5177f4-6ca9-44c2-aacf-d3f3d8b6e4d2"] {
        assert!(text.contains(rule), "no {rule} finding in the lake:\n{text}");
    }
    assert!(text.contains("rejected_but_executed"), "{text}");

    // Every finding in the lake reached the forwarder's topic, keyed by its uid (each version
    // of a finding updated by later hits is sent again under the same key).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ocelot"))
        .args(["sql", "--format", "csv", "--lake"])
        .arg(s.lake())
        .arg("SELECT DISTINCT finding_info.uid FROM findings ORDER BY 1")
        .output()
        .unwrap();
    let lake_findings: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().skip(1).map(str::to_string).collect();
    let forwarded = s.broker.read_all("findings", 1);
    let mut keys = std::collections::BTreeSet::new();
    for r in &forwarded {
        let f: serde_json::Value = serde_json::from_slice(&r.payload).unwrap();
        assert_eq!(f["class_uid"], 2004);
        assert_eq!(r.key.as_deref(), f["finding_info"]["uid"].as_str(), "the key is the finding uid");
        assert_eq!(r.headers["ocelot.class"], "detection_finding");
        keys.insert(r.key.clone().unwrap());
    }
    println!("{} findings in the lake, {} records for {} findings forwarded to Kafka", lake_findings.len(), forwarded.len(), keys.len());
    assert!(!lake_findings.is_empty());
    assert_eq!(keys.into_iter().collect::<Vec<_>>(), lake_findings);
}

#[test]
fn sigterm_exits_zero_in_time_with_offsets_committed() {
    let s = Setup::new(&[]);
    let (events, _) = gen_events(60_000, 29);
    s.broker.produce(TOPIC, P, &events);
    let cfg = s.config("[batch]\nmax_rows = 5000\nmax_bytes = 33554432\nmax_latency_ms = 1000\nmax_in_flight = 2\n");
    let cfg_text = std::fs::read_to_string(&cfg).unwrap().replace("shutdown_timeout_secs = 20", "shutdown_timeout_secs = 10");
    std::fs::write(&cfg, cfg_text).unwrap();
    let mut o = ocelot(&cfg, &[]);
    wait_committed_at_least(&s.broker, 5_000, Duration::from_secs(120));
    o.signal("TERM");
    let (code, took) = o.wait(Duration::from_secs(30));
    assert_eq!(code, Some(0), "log:\n{}", o.logs());
    assert!(took < Duration::from_secs(10), "exit took {took:?}, deadline 10 s");
    // Everything read was made durable and committed: the lake holds exactly the committed
    // prefix of every partition.
    let committed: i64 = s.broker.committed(GROUP, TOPIC, P).iter().map(|o| (*o).max(0)).sum();
    let rows = lake_uids(&s.lake()).len() as i64;
    println!("SIGTERM: exited in {took:?}, {committed} committed, {rows} rows in the lake");
    assert!(committed > 0);
    assert_eq!(rows, committed);
}

#[test]
fn kill_9_while_a_target_is_slow_then_every_finding_reaches_it() {
    // Findings go to a webhook that takes 25 ms per finding; ocelot is killed while it is
    // delivering, then started again: every finding in the lake reaches the receiver (the
    // outbox's cursor had not passed what was not acknowledged). Duplicates are allowed (the
    // uid is the idempotency key) and counted.
    let s = Setup::new(&[]);
    let (events, _) = gen_events(5_000, 11);
    s.broker.produce(TOPIC, P, &events);
    let (url, keys) = common::webhook::receiver(Duration::from_millis(25));
    let cfg = s.config(&format!("[[forward]]\ntype = \"webhook\"\nurl = \"{url}\"\n"));
    let mut first = ocelot(&cfg, &[]);
    let start = Instant::now();
    while keys.lock().unwrap().len() < 10 {
        assert!(start.elapsed() < Duration::from_secs(120), "no delivery after 2 min; log:\n{}", first.logs());
        std::thread::sleep(Duration::from_millis(20));
    }
    first.signal("KILL");
    first.wait(Duration::from_secs(10));
    let at_kill = keys.lock().unwrap().len();
    let in_lake_at_kill: std::collections::BTreeSet<String> = common::kafka::lake_finding_uids(&s.lake()).into_iter().collect();
    assert!(in_lake_at_kill.len() > at_kill, "the kill came after every finding was delivered ({at_kill} of {}): the test proves nothing", in_lake_at_kill.len());

    let mut second = ocelot(&cfg, &[]);
    s.broker.wait_committed_to_end(GROUP, TOPIC, P, Duration::from_secs(120));
    // Every finding the lake holds reaches the receiver.
    let start = Instant::now();
    loop {
        let want: std::collections::BTreeSet<String> = common::kafka::lake_finding_uids(&s.lake()).into_iter().collect();
        let got: std::collections::BTreeSet<String> = keys.lock().unwrap().iter().cloned().collect();
        let missing: Vec<&String> = want.difference(&got).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "{} of {} findings never reached the receiver, e.g. {:?}; log:\n{}",
            missing.len(),
            want.len(),
            &missing[..missing.len().min(3)],
            second.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    stop(&mut second);
    let want: std::collections::BTreeSet<String> = common::kafka::lake_finding_uids(&s.lake()).into_iter().collect();
    let got = keys.lock().unwrap().clone();
    let distinct: std::collections::BTreeSet<&String> = got.iter().collect();
    println!(
        "{} findings in the lake ({} at the kill, {at_kill} delivered by then); {} requests after restart for {} distinct uids: {} duplicates",
        want.len(),
        in_lake_at_kill.len(),
        got.len() - at_kill,
        distinct.len(),
        got.len() - distinct.len()
    );
    assert!(want.iter().all(|u| distinct.contains(u)));
    assert!(!s.lake().join("_dead_letter").exists(), "nothing dead-lettered");
}

/// Finding uids in a lake's `findings` table, distinct.
fn finding_set(lake: &std::path::Path) -> std::collections::BTreeSet<String> {
    common::kafka::lake_finding_uids(lake).into_iter().collect()
}

/// A config reading `input` (source auto) in group `name`, with its own lake, routing through
/// `route` (or detecting in the ingest stage, without).
fn routed_config(s: &Setup, name: &str, input: &str, route: Option<&str>) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = s.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let lake = dir.join("lake");
    let detect = route.map(|r| format!("\n[detect]\nroute_topic = \"{r}\"\n")).unwrap_or_default();
    let cfg = write_config(&dir, &s.broker, input, &lake, &format!("[batch]\nmax_rows = 500\nmax_bytes = 33554432\nmax_latency_ms = 200\nmax_in_flight = 2\n{detect}"));
    let text = std::fs::read_to_string(&cfg).unwrap().replace("source = \"cloudtrail\"", "source = \"auto\"").replace("group_id = \"ocelot-test\"", &format!("group_id = \"{name}\""));
    std::fs::write(&cfg, text).unwrap();
    (cfg, lake)
}

/// One replica over all of the 1-partition topic `input`, to the end, routed through `route` or
/// not; its lake.
fn one_routed_run(s: &Setup, name: &str, input: &str, route: Option<&str>) -> std::path::PathBuf {
    one_run(s, name, input, route).0
}

/// As `one_routed_run`, with the events its engines counted late (`ocelot_detect_late_events`).
fn one_run(s: &Setup, name: &str, input: &str, route: Option<&str>) -> (std::path::PathBuf, f64) {
    let (cfg, lake) = routed_config(s, name, input, route);
    let mut o = ocelot(&cfg, &[]);
    s.broker.wait_committed_to_end(name, input, 1, Duration::from_secs(120));
    if let Some(route) = route {
        s.broker.wait_committed_to_end(&format!("{name}.detect"), route, 4, Duration::from_secs(180));
    }
    // The gauges are published after each batch (each second in the detect stage).
    std::thread::sleep(Duration::from_millis(1500));
    let late = o.metric("ocelot_detect_late_events");
    stop(&mut o);
    (lake, late)
}

/// The rule ids of the findings (by uid) that only the first lake has, and only the second.
fn differences(a: &std::path::Path, b: &std::path::Path) -> (Vec<String>, Vec<String>) {
    let (fa, fb) = (common::kafka::lake_findings(a), common::kafka::lake_findings(b));
    let (ua, ub): (std::collections::BTreeSet<&String>, std::collections::BTreeSet<&String>) = (fa.iter().map(|f| &f.0).collect(), fb.iter().map(|f| &f.0).collect());
    let only = |f: &[(String, String)], other: &std::collections::BTreeSet<&String>| {
        let mut v: Vec<String> = f.iter().filter(|(u, _)| !other.contains(u)).map(|(u, r)| format!("{r} {u}")).collect();
        v.sort();
        v.dedup();
        v
    };
    (only(&fa, &ub), only(&fb, &ua))
}

#[test]
fn two_replicas_find_what_one_finds() {
    // The same mixed input (every source, agent sessions, CloudTrail of many accounts) through
    // one replica and through two: the events are routed by detection key through a topic of
    // 4 partitions, each read by its own engine, so the same state forms and the same findings
    // come out. (One input partition: its order is the same in both runs.)
    let s = Setup::new(&[("ordered", 1), ("route-one", 4), ("route-two", 4)]);
    let mut messages = mixed_messages();
    let (events, _) = gen_events(6_000, 5);
    messages.extend(events);
    // An organization trail: 40 accounts.
    let org = std::process::Command::new(env!("CARGO_BIN_EXE_ocelot")).args(["gen", "cloudtrail", "--events", "4000", "--seed", "9", "--accounts", "40"]).output().unwrap();
    assert!(org.status.success());
    messages.extend(org.stdout.split(|c| *c == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec));
    s.broker.produce("ordered", 1, &messages);

    let lake_one = one_routed_run(&s, "one", "ordered", Some("route-one"));
    let want = finding_set(&lake_one);

    let (cfg, lake_two) = routed_config(&s, "two", "ordered", Some("route-two"));
    let mut a = ocelot(&cfg, &[]);
    let mut b = ocelot(&cfg, &[]);
    s.broker.wait_committed_to_end("two", "ordered", 1, Duration::from_secs(180));
    s.broker.wait_committed_to_end("two.detect", "route-two", 4, Duration::from_secs(180));
    stop(&mut a);
    stop(&mut b);
    for (name, o) in [("a", &a), ("b", &b)] {
        assert!(o.logs().contains("partition assigned"), "replica {name} ran no detection (no route partition assigned); log:\n{}", o.logs());
    }
    let got = finding_set(&lake_two);
    let per_partition = s.broker.end_offsets("route-two", 4);
    println!("{} findings with one replica, {} with two; route topic messages per partition {per_partition:?}", want.len(), got.len());
    assert!(want.len() > 20, "the input raises findings: {}", want.len());
    let (only_one, only_two) = differences(&lake_one, &lake_two);
    assert!(only_one.is_empty() && only_two.is_empty(), "one replica only: {only_one:?}\ntwo replicas only: {only_two:?}");
    assert!(per_partition.iter().filter(|n| **n > 0).count() > 1, "the keys spread over the partitions");

    // And routing loses nothing: what one replica finds detecting in its ingest stage, without
    // a route topic, the routed replicas find too (no shipped rule counts across accounts in
    // one window). Routing may find more: without it one watermark spans every account, so an
    // account whose events come after a later-dated one's are late for their windows (the
    // input here: samples of many dates, then 6,000 events, then an org trail); routed, each
    // partition's engine has its own watermark.
    let (lake_plain, late_plain) = one_run(&s, "plain", "ordered", None);
    let (only_routed, only_plain) = differences(&lake_one, &lake_plain);
    println!("{} findings without routing ({late_plain} late events); {} found only with routing: {only_routed:?}", finding_set(&lake_plain).len(), only_routed.len());
    assert!(only_plain.is_empty(), "found without routing only: {only_plain:?}");
    assert!(only_routed.is_empty() || late_plain > 0.0, "routed only, with no late event to explain it: {only_routed:?}");
    let windowed = ["ocelot.credential-bulk-read", "ocelot.agent-data-destruction", "ocelot.agent-destructive-unapproved", "ocelot.discovery-burst", "ocelot.agent-blast-radius"];
    assert!(only_routed.iter().all(|f| windowed.iter().any(|w| f.starts_with(&format!("{w} ")))), "only windowed rules see lateness: {only_routed:?}");
}

#[test]
fn kill_9_mid_attack_then_restart_finds_what_an_uninterrupted_run_finds() {
    // Detection state survives kill -9: the input is cut in two, the replica is killed after
    // the first half is detected (windows, correlations and baselines open across the cut),
    // the second half comes, a new replica starts. Its findings are those of one run over the
    // whole input: none lost, none twice under another uid.
    let s = Setup::new(&[("whole", 1), ("halves", 1), ("route-whole", 4), ("route-halves", 4)]);
    let mut messages = mixed_messages();
    let (events, _) = gen_events(6_000, 21);
    messages.extend(events);
    let (first, second) = messages.split_at(messages.len() / 2);

    s.broker.produce("whole", 1, &messages);
    let lake_whole = one_routed_run(&s, "whole", "whole", Some("route-whole"));
    let want = finding_set(&lake_whole);

    s.broker.produce("halves", 1, first);
    let (cfg, lake_halves) = routed_config(&s, "halves", "halves", Some("route-halves"));
    let mut killed = ocelot(&cfg, &[]);
    s.broker.wait_committed_to_end("halves", "halves", 1, Duration::from_secs(120));
    s.broker.wait_committed_to_end("halves.detect", "route-halves", 4, Duration::from_secs(180));
    killed.signal("KILL");
    killed.wait(Duration::from_secs(10));
    let at_kill = finding_set(&lake_halves);
    // Let the dead member's session (10 s) expire (tansu 0.6 does not rebalance on expiry).
    std::thread::sleep(Duration::from_secs(12));
    s.broker.produce("halves", 1, second);
    let mut restarted = ocelot(&cfg, &[]);
    s.broker.wait_committed_to_end("halves", "halves", 1, Duration::from_secs(120));
    s.broker.wait_committed_to_end("halves.detect", "route-halves", 4, Duration::from_secs(180));
    stop(&mut restarted);
    assert!(restarted.logs().contains("rebuilding its state by replay"), "the restarted replica rebuilt no state; log:\n{}", restarted.logs());
    let got = finding_set(&lake_halves);
    let (lost, other) = differences(&lake_whole, &lake_halves);
    println!("{} findings uninterrupted; {} at the kill, {} after the restart", want.len(), at_kill.len(), got.len());
    assert!(lost.is_empty() && other.is_empty(), "lost across the kill: {lost:?}\nunder another uid: {other:?}");
}

#[test]
fn route_messages_deleted_before_they_were_read_are_reported() {
    // A route topic whose retention is shorter than the detect stage's lag loses events for
    // detection, and that must not be silent. librdkafka's mock cluster keeps about 5 MiB per
    // partition and deletes older messages, as retention would; the checkpoint says the detect
    // stage had read nothing past offset 0. (The messages are junk, not Arrow IPC: they are
    // dead-lettered, and the stage stops in time.)
    let broker = Broker::mock();
    broker.create_topic("input", 1);
    broker.create_topic("route", 1);
    let messages: Vec<Vec<u8>> = (0..80u8).map(|i| vec![i; 100_000]).collect();
    broker.produce("route", 1, &messages);
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let cfg = write_config(dir.path(), &broker, "input", &lake, "[detect]\nroute_topic = \"route\"\n");
    let checkpoint = lake.join("_ocelot/detect/ocelot-test.detect/route-0.json");
    std::fs::create_dir_all(checkpoint.parent().unwrap()).unwrap();
    std::fs::write(&checkpoint, r#"{"next":0,"replay_from":0}"#).unwrap();
    let mut o = ocelot(&cfg, &[]);
    let started = Instant::now();
    while o.metric("ocelot_route_skipped_messages_total") == 0.0 {
        assert!(started.elapsed() < Duration::from_secs(60), "no skipped message counted; log:\n{}", o.logs());
        std::thread::sleep(Duration::from_millis(200));
    }
    let skipped = o.metric("ocelot_route_skipped_messages_total");
    stop(&mut o);
    println!("{skipped} route messages counted as deleted before they were read");
    assert!((1.0..80.0).contains(&skipped), "{skipped}");
    assert!(o.logs().contains("deleted before they were read"), "log:\n{}", o.logs());
    let dead = std::fs::read_dir(lake.join("_dead_letter")).map(|d| d.count()).unwrap_or(0);
    assert!(dead > 0, "the junk route messages were dead-lettered");
}
