//! The findings forwarders against in-test HTTP servers that check each protocol as its
//! documentation gives it (path, auth header, body framing, per-item answers) and inject
//! failures (429, 503, timeouts, refused items, an unreachable target). Each test counts that
//! every finding is delivered or dead-lettered: nothing is lost.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use ocelot_lake::DeadLetterStore;
use ocelot_pipeline::forward::{DeadLetters, Forwarders};
use ocelot_pipeline::runtime::config::Config;
use serde_json::{json, Value};

/// One request as the server saw it.
#[derive(Clone, Debug)]
struct Req {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

struct Resp {
    status: u16,
    body: String,
    delay: Duration,
}

fn ok(body: impl Into<String>) -> Resp {
    Resp { status: 200, body: body.into(), delay: Duration::ZERO }
}

fn status(status: u16, body: impl Into<String>) -> Resp {
    Resp { status, body: body.into(), delay: Duration::ZERO }
}

/// An HTTP server on a loopback port; `handle` gets each request and its number (from 0).
fn serve(handle: impl Fn(&Req, usize) -> Resp + Send + 'static) -> (String, Arc<Mutex<Vec<Req>>>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}", server.server_addr().to_ip().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for (n, mut rq) in server.incoming_requests().enumerate() {
            let mut body = Vec::new();
            rq.as_reader().read_to_end(&mut body).unwrap();
            let headers = rq.headers().iter().map(|h| (h.field.as_str().as_str().to_ascii_lowercase(), h.value.as_str().to_string())).collect();
            let req = Req { path: rq.url().to_string(), headers, body };
            let resp = handle(&req, n);
            log.lock().unwrap().push(req);
            std::thread::sleep(resp.delay);
            let ct = tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]).unwrap();
            let _ = rq.respond(tiny_http::Response::from_string(resp.body).with_status_code(resp.status).with_header(ct));
        }
    });
    (url, seen)
}

const MIN: &str = "[kafka]\nbrokers = \"127.0.0.1:9\"\n[[inputs]]\ntopic = \"ct\"\n[lake]\npath = \"/tmp/unused\"\n";

fn start(forward: &str, lake: &Path) -> Forwarders {
    let cfg = Config::from_toml(&format!("{MIN}{forward}")).unwrap();
    Forwarders::start(&cfg.forward, DeadLetters::new(DeadLetterStore::new(lake))).unwrap()
}

/// A Detection Finding as the engine makes them (the fields the targets read).
fn finding(uid: &str, count: u64) -> Value {
    json!({
        "class_uid": 2004, "class_name": "Detection Finding", "activity_id": 1, "type_uid": 200401,
        "time": 1_793_500_000_000i64 + count as i64, "severity": "High", "severity_id": 4, "count": count,
        "message": "Agent deletes data without human approval",
        "finding_info": {"uid": uid, "title": "Agent deletes data without human approval", "analytic": {"uid": "ocelot-agent-data-destruction"}},
        "actor": {"user": {"name": "deploy-agent"}},
        "metadata": {"version": "1.8.0", "product": {"name": "Ocelot"}},
    })
}

/// The lake's forwarder dead letters: (source, reason, finding uid).
fn dead_letters(lake: &Path) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let Ok(days) = std::fs::read_dir(lake.join("_dead_letter")) else { return out };
    for day in days {
        for f in std::fs::read_dir(day.unwrap().path()).unwrap() {
            for line in std::fs::read_to_string(f.unwrap().path()).unwrap().lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                let data: Value = serde_json::from_str(v["data"].as_str().unwrap()).unwrap();
                out.push((v["source"].as_str().unwrap().to_string(), v["reason"].as_str().unwrap().to_string(), data["finding_info"]["uid"].as_str().unwrap().to_string()));
            }
        }
    }
    out
}

fn uids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:02}")).collect()
}

#[test]
fn splunk_hec_batches_retries_and_takes_what_precedes_a_refused_event() {
    let lake = tempfile::tempdir().unwrap();
    let indexed = Arc::new(Mutex::new(Vec::<String>::new()));
    let idx = indexed.clone();
    let (url, seen) = serve(move |r, n| {
        assert_eq!(r.path, "/services/collector/event");
        assert_eq!(r.headers["authorization"], "Splunk 11111111-2222-3333-4444-555555555555");
        // The body: event objects one after another, each stamped and carrying the finding.
        let events: Vec<Value> = serde_json::Deserializer::from_slice(&r.body).into_iter().map(Result::unwrap).collect();
        assert!(!events.is_empty() && events.len() <= 10, "{} events in a request, max_batch is 10", events.len());
        for e in &events {
            assert!(e["time"].as_f64().unwrap() > 1.7e9, "time in epoch seconds: {e}");
            assert_eq!(e["sourcetype"], "ocsf:detection_finding");
            assert_eq!(e["index"], "security");
            assert_eq!(e["event"]["class_uid"], 2004);
            assert_eq!(e["fields"]["finding_uid"], e["event"]["finding_info"]["uid"]);
        }
        if n == 0 {
            return status(503, r#"{"text":"Server is busy","code":9}"#);
        }
        let uid = |e: &Value| e["event"]["finding_info"]["uid"].as_str().unwrap().to_string();
        // Splunk indexes the events before an invalid one and refuses the rest of the request.
        let bad = events.iter().position(|e| uid(e).starts_with("bad"));
        let take = bad.unwrap_or(events.len());
        idx.lock().unwrap().extend(events[..take].iter().map(uid));
        match bad {
            Some(i) => status(400, format!(r#"{{"text":"Invalid data format","code":6,"invalid-event-number":{i}}}"#)),
            None => ok(r#"{"text":"Success","code":0}"#),
        }
    });
    let f = start(
        &format!("[[forward]]\ntype = \"splunk_hec\"\nurl = \"{url}\"\ntoken = \"11111111-2222-3333-4444-555555555555\"\nindex = \"security\"\n[forward.delivery]\nmax_batch = 10\nlinger_ms = 50\n"),
        lake.path(),
    );
    let mut all = uids("f", 24);
    all.insert(13, "bad-13".into());
    f.submit(all.iter().map(|u| finding(u, 1)), &AtomicBool::new(false));
    let dead = f.close(&AtomicBool::new(false));

    let got = indexed.lock().unwrap().clone();
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "an event was indexed twice");
    assert_eq!(got.len(), 24, "every good finding indexed once");
    assert_eq!(dead, 1);
    let dl = dead_letters(lake.path());
    assert_eq!(dl.len(), 1);
    assert_eq!(dl[0].0, "forward.splunk_hec");
    assert!(dl[0].1.contains("Invalid data format"), "{}", dl[0].1);
    assert_eq!(dl[0].2, "bad-13");
    assert!(seen.lock().unwrap().len() >= 4, "the 503 was retried");
}

#[test]
fn elasticsearch_bulk_answers_each_item_and_a_replay_does_not_duplicate() {
    let lake = tempfile::tempdir().unwrap();
    let store = Arc::new(Mutex::new(HashMap::<String, Value>::new()));
    let throttled = Arc::new(Mutex::new(HashSet::<String>::new()));
    let (st, th) = (store.clone(), throttled.clone());
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("elastic:changeme"));
    let (url, _) = serve(move |r, n| {
        assert_eq!(r.path, "/_bulk");
        assert_eq!(r.headers["content-type"], "application/x-ndjson");
        assert_eq!(r.headers["authorization"], auth);
        assert!(r.body.ends_with(b"\n"), "a _bulk body ends with a newline");
        if n == 0 {
            return status(429, r#"{"error":{"type":"es_rejected_execution_exception"},"status":429}"#);
        }
        let lines: Vec<Value> = r.body.split(|c| *c == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
        assert_eq!(lines.len() % 2, 0, "action and document lines alternate");
        let mut items = Vec::new();
        for pair in lines.chunks(2) {
            let (action, doc) = (&pair[0]["index"], &pair[1]);
            let id = action["_id"].as_str().unwrap().to_string();
            assert_eq!(action["_index"], "findings");
            assert_eq!(doc["finding_info"]["uid"], id.as_str());
            assert!(doc["@timestamp"].as_str().unwrap().starts_with("2026-"), "{}", doc["@timestamp"]);
            let item = if id.starts_with("bad") {
                json!({"index": {"_id": id, "status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [count]"}}})
            } else if id.starts_with("hot") && th.lock().unwrap().insert(id.clone()) {
                json!({"index": {"_id": id, "status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "rejected execution"}}})
            } else {
                let created = st.lock().unwrap().insert(id.clone(), doc.clone()).is_none();
                json!({"index": {"_id": id, "status": if created { 201 } else { 200 }, "result": if created { "created" } else { "updated" }}})
            };
            items.push(item);
        }
        ok(json!({"took": 1, "errors": true, "items": items}).to_string())
    });
    let cfg = format!("[[forward]]\ntype = \"elasticsearch\"\nname = \"es\"\nurl = \"{url}/\"\nindex = \"findings\"\nusername = \"elastic\"\npassword = \"changeme\"\n[forward.delivery]\nmax_batch = 8\nlinger_ms = 20\n");
    let mut all = uids("f", 20);
    all.extend(["hot-1".to_string(), "hot-2".into(), "bad-1".into()]);
    let f = start(&cfg, lake.path());
    f.submit(all.iter().map(|u| finding(u, 1)), &AtomicBool::new(false));
    // The same findings again, updated (a replay, or later hits): same _id, no new documents.
    f.submit(all.iter().map(|u| finding(u, 2)), &AtomicBool::new(false));
    let dead = f.close(&AtomicBool::new(false));

    let store = store.lock().unwrap();
    assert_eq!(store.len(), 22, "20 + 2 throttled-then-taken documents, each once");
    assert!(store.values().all(|d| d["count"] == 2), "the later version replaced the earlier");
    assert_eq!(dead, 2, "the refused item, once per submission");
    let dl = dead_letters(lake.path());
    assert!(dl.iter().all(|(s, r, u)| s == "forward.es" && r.contains("mapper_parsing_exception") && u == "bad-1"), "{dl:?}");
}

type HmacSha256 = Hmac<sha2::Sha256>;

#[test]
fn webhook_signs_each_post_and_retries_a_timeout() {
    let lake = tempfile::tempdir().unwrap();
    let got = Arc::new(Mutex::new(Vec::<String>::new()));
    let g = got.clone();
    let (url, _) = serve(move |r, n| {
        assert_eq!(r.path, "/hooks/ocelot");
        assert_eq!(r.headers["x-team"], "soc");
        let ts = &r.headers["x-ocelot-timestamp"];
        assert!((chrono::Utc::now().timestamp() - ts.parse::<i64>().unwrap()).abs() < 60);
        let mut mac = HmacSha256::new_from_slice(b"hook-secret").unwrap();
        mac.update(format!("{ts}.").as_bytes());
        mac.update(&r.body);
        let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(r.headers["x-ocelot-signature"], format!("sha256={hex}"));
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        let uid = v["finding_info"]["uid"].as_str().unwrap().to_string();
        assert_eq!(r.headers["idempotency-key"], uid);
        if n == 1 {
            // Longer than the forwarder's 1 s timeout: it must give up on this answer and send again.
            return Resp { status: 200, body: String::new(), delay: Duration::from_millis(2500) };
        }
        if uid == "bad-0" {
            return status(422, r#"{"error":"unprocessable"}"#);
        }
        g.lock().unwrap().push(uid);
        status(204, "")
    });
    let f = start(
        &format!("[[forward]]\ntype = \"webhook\"\nurl = \"{url}/hooks/ocelot\"\nsecret = \"hook-secret\"\nheaders = {{ X-Team = \"soc\" }}\n[forward.delivery]\ntimeout_secs = 1\n"),
        lake.path(),
    );
    let mut all = uids("f", 5);
    all.push("bad-0".into());
    f.submit(all.iter().map(|u| finding(u, 1)), &AtomicBool::new(false));
    let dead = f.close(&AtomicBool::new(false));
    let mut got = got.lock().unwrap().clone();
    got.sort();
    got.dedup();
    assert_eq!(got, uids("f", 5));
    assert_eq!(dead, 1);
    assert!(dead_letters(lake.path())[0].1.contains("HTTP 422"));
}

#[test]
fn slack_text_joins_findings_in_one_message() {
    let lake = tempfile::tempdir().unwrap();
    let (url, seen) = serve(|_, _| ok("ok"));
    let f = start(&format!("[[forward]]\ntype = \"webhook\"\nformat = \"slack\"\nurl = \"{url}/services/T/B/X\"\n"), lake.path());
    f.submit(uids("f", 3).iter().map(|u| finding(u, 2)), &AtomicBool::new(false));
    assert_eq!(f.close(&AtomicBool::new(false)), 0);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let v: Value = serde_json::from_slice(&seen[0].body).unwrap();
    let text = v["text"].as_str().unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(text.starts_with("[High] Agent deletes data without human approval (2 events) by deploy-agent: f00"), "{text}");
}

#[test]
fn an_unreachable_target_dead_letters_after_its_attempts() {
    let lake = tempfile::tempdir().unwrap();
    // A port nothing listens on: bind one, note it, let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let f = start(&format!("[[forward]]\ntype = \"splunk_hec\"\nurl = \"http://127.0.0.1:{port}\"\ntoken = \"t\"\n[forward.delivery]\nmax_attempts = 2\nlinger_ms = 10\n"), lake.path());
    f.submit(uids("f", 3).iter().map(|u| finding(u, 1)), &AtomicBool::new(false));
    assert_eq!(f.close(&AtomicBool::new(false)), 3);
    let dl = dead_letters(lake.path());
    assert_eq!(dl.len(), 3);
    assert!(dl.iter().all(|(_, r, _)| r.contains("gave up after 2 attempts") && r.contains("could not connect")), "{dl:?}");
}

#[test]
fn a_full_queue_holds_the_pipeline_until_shutdown_then_nothing_is_lost() {
    let lake = tempfile::tempdir().unwrap();
    let (url, _) = serve(|_, _| status(503, "down"));
    let f = start(&format!("[[forward]]\ntype = \"webhook\"\nurl = \"{url}\"\n[forward.delivery]\nqueue = 2\nmax_attempts = 1000\n"), lake.path());
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        s.store(true, Ordering::Relaxed);
    });
    let t = std::time::Instant::now();
    // 10 findings into a queue of 2 behind a target that keeps failing: submit waits
    // (back-pressure) until the stop, and what it could not queue is dead-lettered.
    f.submit(uids("f", 10).iter().map(|u| finding(u, 1)), &stop);
    assert!(t.elapsed() >= Duration::from_millis(1400), "submit did not wait for the full queue");
    let dead = f.close(&stop);
    assert_eq!(dead, 10, "every finding dead-lettered at shutdown");
    let mut got: Vec<String> = dead_letters(lake.path()).into_iter().map(|d| d.2).collect();
    got.sort();
    assert_eq!(got, uids("f", 10));
}

#[test]
fn forward_config_errors_name_the_key() {
    let e = Config::from_toml(&format!("{MIN}[[forward]]\ntype = \"splunk_hec\"\nurl = \"http://x\"\ntoken = \"t\"\nindx = \"a\"\n")).unwrap_err();
    assert!(e.contains("indx"), "{e}");
    let e = Config::from_toml(&format!("{MIN}[[forward]]\ntype = \"splunk\"\n")).unwrap_err();
    assert!(e.contains("splunk_hec") && e.contains("forward"), "{e}");
    let e = Config::from_toml(&format!("{MIN}[[forward]]\ntype = \"webhook\"\nurl = \"hooks.example.com\"\n")).unwrap_err();
    assert!(e.contains("forward[0] (\"webhook\").url"), "{e}");
    let e = Config::from_toml(&format!("{MIN}[[forward]]\ntype = \"splunk_hec\"\nurl = \"http://x\"\ntoken = {{ env = \"OCELOT_TEST_NO_SUCH_TOKEN\" }}\n")).unwrap_err();
    assert!(e.contains("token") && e.contains("OCELOT_TEST_NO_SUCH_TOKEN"), "{e}");
}

/// Octet-counted syslog frames (RFC 6587 / RFC 5425): `LEN SP MSG`...
fn frames(mut data: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let sp = data.iter().position(|b| *b == b' ').expect("a length, then a space");
        let len: usize = std::str::from_utf8(&data[..sp]).unwrap().parse().expect("an octet count");
        out.push(String::from_utf8(data[sp + 1..sp + 1 + len].to_vec()).unwrap());
        data = &data[sp + 1 + len..];
    }
    out
}

/// Checks an RFC 5424 message and returns its MSG: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`.
fn rfc5424(m: &str, pri: u32) -> String {
    let parts: Vec<&str> = m.splitn(8, ' ').collect();
    assert_eq!(parts[0], format!("<{pri}>1"), "{m}");
    assert!(chrono::DateTime::parse_from_rfc3339(parts[1]).is_ok(), "timestamp {}", parts[1]);
    assert!(!parts[2].is_empty() && !parts[2].contains(' '));
    assert_eq!((parts[3], parts[5], parts[6]), ("ocelot", "finding", "-"));
    assert!(parts[4].parse::<u32>().is_ok(), "procid {}", parts[4]);
    parts[7].to_string()
}

#[test]
fn syslog_tcp_reconnects_until_the_collector_listens_and_frames_each_message() {
    let lake = tempfile::tempdir().unwrap();
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    // Nothing listens yet: the first attempts are refused and retried.
    let f = start(&format!("[[forward]]\ntype = \"syslog\"\naddress = \"{addr}\"\n[forward.delivery]\nlinger_ms = 10\n"), lake.path());
    f.submit(uids("f", 20).iter().map(|u| finding(u, 1)), &AtomicBool::new(false));
    std::thread::sleep(Duration::from_millis(500));
    let listener = std::net::TcpListener::bind(addr).unwrap();
    let collector = std::thread::spawn(move || {
        let mut data = Vec::new();
        let (mut s, _) = listener.accept().unwrap();
        std::io::Read::read_to_end(&mut s, &mut data).unwrap();
        data
    });
    assert_eq!(f.close(&AtomicBool::new(false)), 0);
    let got = frames(&collector.join().unwrap());
    let mut seen: Vec<String> = got
        .iter()
        .map(|m| {
            // authpriv (10) * 8 + err (3): a High finding.
            let v: Value = serde_json::from_str(&rfc5424(m, 83)).unwrap();
            v["finding_info"]["uid"].as_str().unwrap().to_string()
        })
        .collect();
    seen.sort();
    assert_eq!(seen, uids("f", 20));
}

#[test]
fn syslog_udp_sends_cef_datagrams() {
    let lake = tempfile::tempdir().unwrap();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let addr = sock.local_addr().unwrap();
    let f = start(&format!("[[forward]]\ntype = \"syslog\"\naddress = \"{addr}\"\ntransport = \"udp\"\nformat = \"cef\"\nfacility = 4\n"), lake.path());
    f.submit(uids("f", 5).iter().map(|u| finding(u, 3)), &AtomicBool::new(false));
    assert_eq!(f.close(&AtomicBool::new(false)), 0);
    let mut seen = Vec::new();
    let mut buf = vec![0; 65_536];
    for _ in 0..5 {
        let n = sock.recv(&mut buf).unwrap();
        let m = String::from_utf8(buf[..n].to_vec()).unwrap();
        let cef = rfc5424(&m, 4 * 8 + 3);
        assert!(cef.starts_with("CEF:0|Ocelot|Ocelot|") && cef.contains("|ocelot-agent-data-destruction|Agent deletes data without human approval|8|"), "{cef}");
        assert!(cef.contains(" cnt=3 ") && cef.contains(" suser=deploy-agent"), "{cef}");
        seen.push(cef.split("externalId=").nth(1).unwrap().split(' ').next().unwrap().to_string());
    }
    seen.sort();
    assert_eq!(seen, uids("f", 5));
}

/// A CA and a server certificate for `localhost` signed by it (openssl), in `dir`.
fn certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let st = std::process::Command::new("openssl").args(args).current_dir(dir).stderr(std::process::Stdio::null()).status().expect("openssl");
        assert!(st.success(), "openssl {args:?}");
    };
    run(&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Ocelot test CA"]);
    run(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n").unwrap();
    run(&["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf"]);
}

#[test]
fn syslog_tls_checks_the_collector_certificate() {
    use rustls::pki_types::pem::PemObject;
    let lake = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(dir.path().join("server.pem")).unwrap().map(Result::unwrap).collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(dir.path().join("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = Arc::new(rustls::ServerConfig::builder_with_provider(provider).with_safe_default_protocol_versions().unwrap().with_no_client_auth().with_single_cert(certs, key).unwrap());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let collector = std::thread::spawn(move || {
        let mut data = Vec::new();
        // The first connection is the forwarder with the wrong CA (its handshake fails), the
        // second the one with the right CA.
        for _ in 0..2 {
            let (tcp, _) = listener.accept().unwrap();
            let conn = rustls::ServerConnection::new(server.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut got = Vec::new();
            let _ = std::io::Read::read_to_end(&mut tls, &mut got);
            data.extend(got);
        }
        data
    });
    // A CA that did not sign the collector's certificate: refused, retried, dead-lettered.
    let other = tempfile::tempdir().unwrap();
    certificates(other.path());
    let cfg = |ca: &Path, attempts: u32| {
        format!("[[forward]]\ntype = \"syslog\"\naddress = \"{addr}\"\ntransport = \"tls\"\ntls = {{ ca_file = \"{}\", server_name = \"localhost\" }}\n[forward.delivery]\nmax_attempts = {attempts}\nlinger_ms = 10\n", ca.display())
    };
    let f = start(&cfg(&other.path().join("ca.pem"), 1), lake.path());
    f.submit(uids("x", 2).iter().map(|u| finding(u, 1)), &AtomicBool::new(false));
    assert_eq!(f.close(&AtomicBool::new(false)), 2);
    let dl = dead_letters(lake.path());
    assert!(dl.iter().all(|(_, r, _)| r.contains("certificate") || r.contains("UnknownIssuer")), "{dl:?}");

    let f = start(&cfg(&dir.path().join("ca.pem"), 3), lake.path());
    f.submit(uids("f", 10).iter().map(|u| finding(u, 1)), &AtomicBool::new(false));
    assert_eq!(f.close(&AtomicBool::new(false)), 0);
    let mut seen: Vec<String> =
        frames(&collector.join().unwrap()).iter().map(|m| serde_json::from_str::<Value>(&rfc5424(m, 83)).unwrap()["finding_info"]["uid"].as_str().unwrap().to_string()).collect();
    seen.sort();
    assert_eq!(seen, uids("f", 10));
}
