//! A real Kafka-protocol broker (`tansu`, SQLite storage, on a free loopback port), rdkafka
//! clients to produce and check, and `ocelot run` as a child process: shared by the streaming
//! tests and the end-to-end benchmark.

use std::collections::HashMap;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

/// The tansu binary: `OCELOT_TANSU`, else on PATH, else cargo's bin dir (scripts/test.sh
/// installs it there when missing).
pub fn tansu_bin() -> PathBuf {
    if let Ok(p) = std::env::var("OCELOT_TANSU") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("tansu")).find(|p| p.is_file())) {
        return p;
    }
    let home = std::env::var("CARGO_HOME").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"));
    let p = home.join("bin/tansu");
    assert!(p.is_file(), "tansu not found: run ./scripts/test.sh (it installs it) or set OCELOT_TANSU");
    p
}

/// Sends one record, waiting while the producer's queue is full.
pub fn send(producer: &BaseProducer, mut rec: BaseRecord<'_, (), [u8]>) {
    loop {
        match producer.send(rec) {
            Ok(()) => break,
            Err((_, r)) => {
                rec = r;
                producer.poll(Duration::from_millis(5));
            }
        }
    }
    producer.poll(Duration::ZERO);
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Broker {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// librdkafka's in-process mock cluster instead of tansu (benchmarks: no broker limit).
    mock: Option<rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>>,
}

impl Broker {
    /// Starts a broker whose data lives in `dir` (kept across `restart`).
    pub fn start(dir: &Path) -> Broker {
        std::fs::create_dir_all(dir).unwrap();
        let mut b = Broker { port: free_port(), dir: dir.to_path_buf(), child: None, mock: None };
        b.spawn();
        b
    }

    /// librdkafka's mock cluster (`rdkafka::mocking`), in this process, listening on loopback:
    /// other processes (`ocelot run`) connect to it as to a broker. No restart.
    pub fn mock() -> Broker {
        let mock = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
        let addr = mock.bootstrap_servers();
        let port = addr.rsplit(':').next().and_then(|p| p.split(',').next()).and_then(|p| p.parse().ok()).expect("mock cluster address");
        Broker { port, dir: PathBuf::new(), child: None, mock: Some(mock) }
    }

    fn spawn(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("tansu.log")).unwrap();
        let child = Command::new(tansu_bin())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine", "sqlite://tansu.db"])
            .current_dir(&self.dir)
            .env_remove("STORAGE_ENGINE")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(20), "tansu did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn addr(&self) -> String {
        match &self.mock {
            Some(m) => m.bootstrap_servers(),
            None => format!("127.0.0.1:{}", self.port),
        }
    }

    pub fn create_topic(&self, name: &str, partitions: u32) {
        if let Some(m) = &self.mock {
            return m.create_topic(name, partitions as i32, 1).expect("mock topic");
        }
        let out = Command::new(tansu_bin()).args(["topic", "create", name, "--partitions", &partitions.to_string(), "--broker", &format!("tcp://127.0.0.1:{}", self.port)]).output().unwrap();
        assert!(out.status.success(), "topic create {name}: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        assert!(self.mock.is_none(), "the mock cluster does not restart");
        self.stop();
        self.spawn();
    }

    pub fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.addr());
        c
    }

    /// Produces every payload (partition `i % partitions`), waiting for all acks. Returns the
    /// (partition, offset) of each.
    pub fn produce(&self, topic: &str, partitions: i32, payloads: &[Vec<u8>]) -> Vec<(i32, i64)> {
        let producer: BaseProducer = self.client().set("linger.ms", "50").set("message.max.bytes", "8388608").set("batch.size", "1000000").create().unwrap();
        for (i, p) in payloads.iter().enumerate() {
            send(&producer, BaseRecord::to(topic).payload(p.as_slice()).partition(i as i32 % partitions));
        }
        producer.flush(Duration::from_secs(120)).expect("all produced");
        // Offsets by partition are dense and in order: recompute them from the end offsets.
        let ends = self.end_offsets(topic, partitions);
        let mut per = vec![0i64; partitions as usize];
        let counts: Vec<i64> = (0..partitions).map(|p| payloads.iter().enumerate().filter(|(i, _)| *i as i32 % partitions == p).count() as i64).collect();
        let mut out = Vec::with_capacity(payloads.len());
        for i in 0..payloads.len() {
            let p = i as i32 % partitions;
            out.push((p, ends[p as usize] - counts[p as usize] + per[p as usize]));
            per[p as usize] += 1;
        }
        out
    }

    pub fn end_offsets(&self, topic: &str, partitions: i32) -> Vec<i64> {
        let c: BaseConsumer = self.client().create().unwrap();
        (0..partitions).map(|p| c.fetch_watermarks(topic, p, Duration::from_secs(10)).unwrap().1).collect()
    }

    /// The group's committed offsets (-1 where none).
    pub fn committed(&self, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
        let c: BaseConsumer = self.client().set("group.id", group).create().unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(topic, p);
        }
        let Ok(got) = c.committed_offsets(tpl, Duration::from_secs(10)) else { return vec![-1; partitions as usize] };
        (0..partitions)
            .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => -1,
            })
            .collect()
    }

    /// Waits until the group has committed the end of every partition (an empty partition,
    /// which nobody commits, counts as read).
    pub fn wait_committed_to_end(&self, group: &str, topic: &str, partitions: i32, timeout: Duration) -> Vec<i64> {
        let ends = self.end_offsets(topic, partitions);
        let start = Instant::now();
        loop {
            let c = self.committed(group, topic, partitions);
            if c.iter().zip(&ends).all(|(c, e)| c == e || *e == 0 && *c < 0) {
                return c;
            }
            assert!(start.elapsed() < timeout, "committed {c:?} never reached the end offsets {ends:?}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Every message of a topic.
    pub fn read_all(&self, topic: &str, partitions: i32) -> Vec<Record> {
        let ends = self.end_offsets(topic, partitions);
        let c: BaseConsumer = self.client().set("group.id", "checker").set("enable.auto.commit", "false").set("fetch.message.max.bytes", "8388608").create().unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
        }
        c.assign(&tpl).unwrap();
        let total: i64 = ends.iter().sum();
        let mut out = Vec::new();
        let start = Instant::now();
        while (out.len() as i64) < total {
            assert!(start.elapsed() < Duration::from_secs(60), "read {} of {total} from {topic}", out.len());
            if let Some(m) = c.poll(Duration::from_millis(200)) {
                let m = m.unwrap();
                let mut h = HashMap::new();
                if let Some(hs) = m.headers() {
                    for x in hs.iter() {
                        h.insert(x.key.to_string(), String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned());
                    }
                }
                out.push(Record { key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()), headers: h, payload: m.payload().unwrap_or_default().to_vec() });
            }
        }
        out
    }
}

/// A message read back.
pub struct Record {
    pub key: Option<String>,
    pub headers: HashMap<String, String>,
    pub payload: Vec<u8>,
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `ocelot run` as a child process, logs to a file.
pub struct Ocelot {
    pub child: Child,
    pub log: PathBuf,
    pub http: u16,
}

impl Ocelot {
    /// Starts `bin run --config config` with /metrics on a free port.
    pub fn start(bin: &Path, config: &Path, env: &[(&str, String)]) -> Ocelot {
        let http = free_port();
        let log = config.with_extension(format!("{http}.log"));
        let f = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(bin);
        cmd.args(["run", "--config"]).arg(config).env("OCELOT_HTTP__LISTEN", format!("127.0.0.1:{http}")).env("OCELOT_LOG", "info").stdout(Stdio::null()).stderr(f);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Ocelot { child: cmd.spawn().unwrap(), log, http }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill").args([&format!("-{sig}"), &self.pid().to_string()]).status().unwrap();
        assert!(st.success());
    }

    /// Waits for exit; returns the status code and the time it took.
    pub fn wait(&mut self, timeout: Duration) -> (Option<i32>, Duration) {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return (st.code(), start.elapsed());
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                panic!("ocelot did not exit within {timeout:?}; log:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn logs(&self) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// The Prometheus text of /metrics (empty if not serving).
    pub fn metrics(&self) -> String {
        http_get(self.http, "/metrics").map(|(_, b)| b).unwrap_or_default()
    }

    /// The sum of a metric's samples whose line starts with `name` (labels included).
    pub fn metric(&self, name: &str) -> f64 {
        self.metrics().lines().filter(|l| l.starts_with(name) && !l.starts_with('#')).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
    }

    /// Resident memory in bytes (VmRSS).
    pub fn rss(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()).map_or(0, |kb| kb * 1024)
    }
}

impl Drop for Ocelot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny HTTP/1.0 GET (status, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::Write;
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}
