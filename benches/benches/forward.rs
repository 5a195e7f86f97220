//! Findings forwarding throughput per target, against receivers on loopback: Splunk HEC,
//! Elasticsearch `_bulk`, webhook (HTTP servers that answer as the real ones do) and syslog
//! over TCP (a listener that reads everything), and Kafka (the test broker, tansu). Real findings (the engine over generated
//! CloudTrail), copied with distinct uids to 10,000.
//!
//! The baseline, measured in the same run against the same receiver: a bare client sending
//! bodies of the same shape and batch size, encoded beforehand, one request after another (no
//! queue, no encoding, no retries). The ratio is what the forwarder keeps of that.
//!
//! Run: `cargo bench -p ocelot-benches --bench forward --profile release`
//! (`OCELOT_FORWARD_FINDINGS` sets the count).

use std::io::{Read, Write};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ocelot_benches::normalize_bytes;
use ocelot_lake::DeadLetterStore;
use ocelot_pipeline::detect::{EngineSpec, Mode};
use ocelot_pipeline::forward::{DeadLetters, Forwarders};
use ocelot_pipeline::runtime::config::Config;
use serde_json::{json, Value};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Real findings, copied with distinct uids to `n`.
fn findings(n: usize) -> Vec<Value> {
    let mut input = Vec::new();
    ocelot_pipeline::generate::cloudtrail_mixed(20_000, 1, 1_793_500_000_000, 1000, &mut input).expect("in memory");
    let mut engine = EngineSpec::shipped(Mode::STREAM).build().expect("rules");
    let source: Arc<str> = Arc::from("bench");
    let mut found = Vec::new();
    for b in normalize_bytes(&input, &source) {
        found.extend(engine.process(&b.batch, &b.class.name));
    }
    found.extend(engine.finish());
    let base: Vec<Value> = found.iter().map(ocelot_detectors::Finding::to_ocsf).collect();
    (0..n)
        .map(|i| {
            let mut f = base[i % base.len()].clone();
            f["finding_info"]["uid"] = json!(format!("bench-{i:06}"));
            f
        })
        .collect()
}

/// An HTTP receiver answering as `kind` does; returns its base URL.
fn http_receiver(kind: &'static str) -> String {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", server.server_addr().to_ip().expect("ip"));
    std::thread::spawn(move || {
        for mut rq in server.incoming_requests() {
            let mut body = Vec::new();
            let _ = rq.as_reader().read_to_end(&mut body);
            let answer = match kind {
                "hec" => r#"{"text":"Success","code":0}"#.to_string(),
                "bulk" => {
                    let actions = body.split(|c| *c == b'\n').filter(|l| !l.is_empty()).count() / 2;
                    let items: Vec<Value> = (0..actions).map(|_| json!({"index": {"status": 201, "result": "created"}})).collect();
                    json!({"took": 1, "errors": false, "items": items}).to_string()
                }
                _ => String::new(),
            };
            let _ = rq.respond(tiny_http::Response::from_string(answer));
        }
    });
    url
}

/// A syslog collector on TCP that reads everything; returns its address.
fn tcp_receiver() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = vec![0; 1 << 16];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

/// Findings per second through a forwarder of this config.
fn forward(table: &str, items: &[Value], lake: &std::path::Path) -> f64 {
    let cfg = Config::from_toml(&format!("[kafka]\nbrokers = \"unused:9\"\n[[inputs]]\ntopic = \"unused\"\n[lake]\npath = \"/tmp/unused\"\n{table}")).expect("config");
    let f = Forwarders::start(&cfg.forward, DeadLetters::new(DeadLetterStore::new(lake))).expect("start");
    let stop = AtomicBool::new(false);
    let t = Instant::now();
    f.submit(items.iter().cloned(), &stop);
    let dead = f.close(&stop);
    assert_eq!(dead, 0, "nothing may be dead-lettered in the bench");
    items.len() as f64 / t.elapsed().as_secs_f64()
}

/// Findings per second for a bare client posting the pre-encoded bodies.
fn bare_http(url: &str, bodies: &[Vec<u8>], per_body: usize, headers: &[(&str, &str)]) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let client = reqwest::Client::new();
    let t = Instant::now();
    rt.block_on(async {
        for b in bodies {
            let mut req = client.post(url).body(b.clone());
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let r = req.send().await.expect("post");
            assert!(r.status().is_success());
            let _ = r.bytes().await;
        }
    });
    (bodies.len() * per_body) as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let n: usize = std::env::var("OCELOT_FORWARD_FINDINGS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let items = findings(n);
    let lake = tempfile::tempdir().expect("tempdir");
    let json: Vec<Vec<u8>> = items.iter().map(|f| serde_json::to_vec(f).expect("json")).collect();
    let avg = json.iter().map(Vec::len).sum::<usize>() / json.len();
    println!("{n} findings, {avg} bytes of OCSF JSON each on average; one forwarder at a time, receivers on loopback\n");
    println!("{:<14} {:>14} {:>16} {:>8}", "target", "forwarder/s", "bare client/s", "ratio");
    let row = |name: &str, fwd: f64, bare: f64| println!("{name:<14} {fwd:>14.0} {bare:>16.0} {:>7.2}x", fwd / bare);

    // Splunk HEC: 100 events a request.
    let url = http_receiver("hec");
    let fwd = forward(&format!("[[forward]]\ntype = \"splunk_hec\"\nurl = \"{url}\"\ntoken = \"t\"\n[forward.delivery]\nlinger_ms = 5\n"), &items, lake.path());
    let bodies: Vec<Vec<u8>> = items
        .chunks(100)
        .map(|c| c.iter().flat_map(|f| serde_json::to_vec(&json!({"time": 1.0, "sourcetype": "ocsf:detection_finding", "event": f})).expect("json").into_iter().chain([b'\n'])).collect())
        .collect();
    row("splunk_hec", fwd, bare_http(&format!("{url}/services/collector/event"), &bodies, 100, &[("Authorization", "Splunk t")]));

    // Elasticsearch _bulk: 500 documents a request.
    let url = http_receiver("bulk");
    let fwd = forward(&format!("[[forward]]\ntype = \"elasticsearch\"\nurl = \"{url}\"\n[forward.delivery]\nlinger_ms = 5\n"), &items, lake.path());
    let bodies: Vec<Vec<u8>> = items
        .chunks(500)
        .map(|c| {
            let mut b = Vec::new();
            for f in c {
                b.extend(serde_json::to_vec(&json!({"index": {"_index": "ocelot-findings", "_id": f["finding_info"]["uid"]}})).expect("json"));
                b.push(b'\n');
                b.extend(serde_json::to_vec(f).expect("json"));
                b.push(b'\n');
            }
            b
        })
        .collect();
    row("elasticsearch", fwd, bare_http(&format!("{url}/_bulk"), &bodies, 500, &[("Content-Type", "application/x-ndjson")]));

    // Webhook: one finding a POST.
    let url = http_receiver("webhook");
    let fwd = forward(&format!("[[forward]]\ntype = \"webhook\"\nurl = \"{url}\"\nsecret = \"k\"\n"), &items, lake.path());
    row("webhook", fwd, bare_http(&url, &json, 1, &[("Content-Type", "application/json")]));

    // Syslog over TCP: octet-counted RFC 5424 messages, 500 a write.
    let addr = tcp_receiver();
    let fwd = forward(&format!("[[forward]]\ntype = \"syslog\"\naddress = \"{addr}\"\n[forward.delivery]\nlinger_ms = 5\n"), &items, lake.path());
    let frames: Vec<Vec<u8>> = json
        .chunks(500)
        .map(|c| {
            let mut b = Vec::new();
            for m in c {
                let line = format!("<83>1 2026-11-01T00:00:00.000Z host ocelot 1 finding - {}", String::from_utf8_lossy(m));
                b.extend(format!("{} {line}", line.len()).into_bytes());
            }
            b
        })
        .collect();
    let t = Instant::now();
    let mut s = std::net::TcpStream::connect(&addr).expect("connect");
    for f in &frames {
        s.write_all(f).expect("write");
    }
    s.flush().expect("flush");
    drop(s);
    row("syslog (tcp)", fwd, n as f64 / t.elapsed().as_secs_f64().max(1e-9));
    std::thread::sleep(Duration::from_millis(100));

    // Kafka: the test broker (tansu, SQLite storage) on loopback; the baseline is a bare
    // rdkafka producer sending the same JSON, waiting for every ack.
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = ocelot_benches::kafka::Broker::start(dir.path());
    broker.create_topic("findings", 1);
    broker.create_topic("bare", 1);
    let fwd = forward(&format!("[[forward]]\ntype = \"kafka\"\nbrokers = \"{}\"\ntopic = \"findings\"\n[forward.delivery]\nlinger_ms = 5\n", broker.addr()), &items, lake.path());
    let t = Instant::now();
    broker.produce("bare", 1, &json);
    row("kafka (tansu)", fwd, n as f64 / t.elapsed().as_secs_f64());
}
