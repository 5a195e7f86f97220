//! `ocelot serve` queried over Arrow Flight SQL by the ADBC Flight SQL driver (PyPI
//! adbc-driver-flightsql, tests/flight_sql.py): basic auth through the handshake, a bearer
//! token, catalog listing, refused credentials, refused statements (DDL, COPY, INSERT, SET, a
//! file as a table), a runaway query cut off by the timeout and a greedy one by the memory
//! limit with the server still answering, and prepared statements; in plain gRPC and over TLS.

mod common;

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const QUERY: &str = "SELECT api.operation, count(*) AS n FROM api_activity WHERE actor.user.name IS NOT NULL GROUP BY api.operation ORDER BY n DESC, api.operation LIMIT 10";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(dir: &Path, lake: &Path, tls: &str) -> (Server, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(dir.join("analyst.pw"), "s3cret-pw\n").unwrap();
    let config = dir.join("ocelot.toml");
    std::fs::write(
        &config,
        format!(
            "[lake]\npath = \"{}\"\n\n[sql]\nlisten = \"127.0.0.1:{port}\"\ntokens = [{{ env = \"OCELOT_TEST_SQL_TOKEN\" }}]\nquery_timeout_secs = 3\nquery_memory_mb = 64\n{tls}\n[sql.users]\nanalyst = {{ file = \"{}\" }}\n",
            lake.display(),
            dir.join("analyst.pw").display()
        ),
    )
    .unwrap();
    let child = common::ocelot().args(["serve", "--config"]).arg(&config).env("OCELOT_TEST_SQL_TOKEN", "t0ken-for-bi").stderr(Stdio::inherit()).spawn().unwrap();
    let server = Server(child);
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "ocelot serve did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    (server, port)
}

fn adbc(url: &str, ca: Option<&Path>) -> BTreeMap<String, Value> {
    let python = common::python_with("adbc_driver_flightsql.dbapi", &["pyarrow", "adbc-driver-flightsql", "adbc-driver-manager"]);
    let mut cmd = Command::new(python);
    cmd.arg(common::repo().join("tests/flight_sql.py")).args([url, "analyst", "s3cret-pw", "t0ken-for-bi"]);
    if let Some(ca) = ca {
        cmd.arg(ca);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).map(|v| (v["case"].as_str().unwrap().to_string(), v)).collect()
}

fn samples_lake(dir: &Path) -> std::path::PathBuf {
    let lake = dir.join("lake");
    let st = common::ocelot().args(["normalize", "samples", "--lake"]).arg(&lake).current_dir(common::repo()).stderr(Stdio::null()).status().unwrap();
    assert!(st.success());
    lake
}

fn check(cases: &BTreeMap<String, Value>, lake: &Path) {
    let expected = [
        "basic_auth_query",
        "bearer_token_view",
        "get_objects",
        "no_credentials",
        "wrong_password",
        "wrong_token",
        "create_external_table",
        "copy_to_file",
        "insert",
        "set",
        "create_view",
        "file_as_table",
        "runaway_timeout",
        "runaway_seconds",
        "memory_limit",
        "alive_after_limits",
        "prepared_statement",
    ];
    for case in expected {
        let v = cases.get(case).unwrap_or_else(|| panic!("case {case} did not run"));
        assert_eq!(v["ok"], true, "{case}: {v}");
    }
    assert!(!Path::new("/tmp/ocelot-flight-copy.csv").exists(), "COPY wrote a file");
    // The timeout is 3 s: the runaway query is cut near it, not left to run.
    let seconds = cases["runaway_seconds"]["seconds"].as_f64().unwrap();
    assert!((2.5..20.0).contains(&seconds), "{seconds} s");
    // Over Flight SQL the rows are those `ocelot sql` gives.
    let out = common::ocelot().args(["sql", QUERY, "--format", "json", "--lake"]).arg(lake).output().unwrap();
    let local: Vec<Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!local.is_empty());
    assert_eq!(cases["basic_auth_query"]["rows"].as_array().unwrap(), &local);
    assert_eq!(cases["basic_auth_query"]["columns"], serde_json::json!(["operation", "n"]));
}

#[test]
fn adbc_queries_over_flight_sql_with_auth_read_only_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let lake = samples_lake(dir.path());
    let (_server, port) = serve(dir.path(), &lake, "");
    check(&adbc(&format!("grpc://127.0.0.1:{port}"), None), &lake);
}

#[test]
fn adbc_queries_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let lake = samples_lake(dir.path());
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        .current_dir(dir.path())
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(st.success());
    let tls = format!("[sql.tls]\ncert = \"{}\"\nkey = \"{}\"\n", dir.path().join("cert.pem").display(), dir.path().join("key.pem").display());
    let (_server, port) = serve(dir.path(), &lake, &tls);
    let cases = adbc(&format!("grpc+tls://localhost:{port}"), Some(&dir.path().join("cert.pem")));
    check(&cases, &lake);
}

#[test]
fn the_rust_flight_sql_client_handshakes_queries_and_is_refused_writes() {
    use arrow_flight::sql::client::FlightSqlServiceClient;
    use futures::TryStreamExt;
    let dir = tempfile::tempdir().unwrap();
    let lake = samples_lake(dir.path());
    let (_server, port) = serve(dir.path(), &lake, "");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}")).unwrap().connect().await.unwrap();
        let mut client = FlightSqlServiceClient::new(channel);
        // Before the handshake: no credentials, refused.
        let err = client.execute(QUERY.to_string(), None).await.unwrap_err();
        assert!(err.to_string().contains("credentials required"), "{err}");
        assert!(client.handshake("analyst", "wrong").await.is_err());
        client.handshake("analyst", "s3cret-pw").await.unwrap();
        let info = client.execute(QUERY.to_string(), None).await.unwrap();
        let schema = info.clone().try_decode_schema().unwrap();
        assert_eq!(schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>(), ["operation", "n"]);
        let ticket = info.endpoint[0].ticket.clone().unwrap();
        let batches: Vec<arrow::array::RecordBatch> = client.do_get(ticket).await.unwrap().try_collect().await.unwrap();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 10);
        let err = client.execute("DROP TABLE findings".into(), None).await.unwrap_err();
        assert!(err.to_string().contains("read-only"), "{err}");
    });
}

#[test]
fn serve_refuses_a_config_without_credentials_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ocelot.toml");
    std::fs::write(&config, format!("[lake]\npath = \"{}\"\n[sql]\nlisten = \"127.0.0.1:0\"\n", dir.path().display())).unwrap();
    let out = common::ocelot().args(["serve", "--check", "--config"]).arg(&config).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("sql: no credentials") && stderr.contains("allow_anonymous"), "{stderr}");
    std::fs::write(&config, format!("[lake]\npath = \"{}\"\n[sql]\ntokens = [\"t\"]\nquery_memory_mb = 0\n", dir.path().display())).unwrap();
    let out = common::ocelot().args(["serve", "--check", "--config"]).arg(&config).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("sql.query_memory_mb: must be greater than 0"));
}
