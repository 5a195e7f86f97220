//! An `s3://` lake against moto's S3 server (PyPI `moto[server]`, started here on a loopback
//! port): written by `ocelot normalize`, read by `ocelot sql`, compacted, verified, read back
//! with boto3 + pyarrow (readers that are not ours), and a write interrupted by kill -9.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::moto::start_moto;
use common::*;

/// boto3 against moto: create the bucket, or read the lake back.
const BOTO: &str = r#"
import sys, io, json, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
if sys.argv[2] == "create":
    s3.create_bucket(Bucket=sys.argv[3])
    print("{}")
else:
    import pyarrow.parquet as pq
    bucket, prefix = sys.argv[3], sys.argv[4]
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        keys += [o["Key"] for o in page.get("Contents", [])]
    manifest = sorted(k for k in keys if "/_ocelot/manifest/" in k and k.endswith(".json") and "checkpoint" not in k)
    live = set()
    for k in manifest:
        e = json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read())
        for r in e.get("remove", []):
            live.discard(r)
        for a in e.get("add", []):
            live.add(a["path"])
    rows = 0
    for rel in live:
        if rel.endswith(".parquet"):
            body = s3.get_object(Bucket=bucket, Key=prefix + "/" + rel)["Body"].read()
            rows += pq.ParquetFile(io.BytesIO(body)).metadata.num_rows
    print(json.dumps({"objects": len(keys), "entries": len(manifest), "live": len(live), "rows": rows}))
"#;

fn boto(python: &Path, url: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(python).arg("-c").arg(BOTO).arg(url).args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `ocelot` with the AWS environment pointing at moto.
fn aws(url: &str) -> impl Fn() -> Command + '_ {
    move || {
        let mut c = ocelot();
        c.env("AWS_ACCESS_KEY_ID", "test").env("AWS_SECRET_ACCESS_KEY", "test").env("AWS_REGION", "us-east-1").env("AWS_ENDPOINT_URL", url).env_remove("AWS_PROFILE");
        c
    }
}

fn count(run: &dyn Fn() -> Command, lake: &str) -> usize {
    let o = run().args(["sql", "SELECT count(*) AS n FROM api_activity", "--format", "csv", "--lake", lake]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).lines().nth(1).unwrap().trim().parse().unwrap()
}

#[test]
fn an_s3_lake_is_written_read_compacted_verified_and_survives_kill_9() {
    let python = python_with("moto", &["moto[server]>=5,<6", "boto3", "pyarrow"]);
    let (_moto, url) = start_moto(&python);
    let run = aws(&url);
    boto(&python, &url, &["create", "lake"]);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("org.jsonl");
    let generated = ocelot().args(["gen", "cloudtrail", "--events", "6000", "--accounts", "8", "--regions", "2", "-o"]).arg(&input).output().unwrap();
    assert!(generated.status.success());
    let lake = "s3://lake/org";

    // Two writes of the same file: two commits, every row twice.
    for _ in 0..2 {
        let o = run().args(["normalize", "--lake", lake]).arg(&input).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let written = count(&run, lake);
    assert!(written >= 10_000, "{written}");
    let theirs = boto(&python, &url, &["read", "lake", "org"]);
    let event_rows = theirs["rows"].as_u64().unwrap() as usize;
    assert!(event_rows >= written, "pyarrow over the manifest's files: {theirs}");

    // Compaction on S3: same rows, fewer objects, the chain whole.
    let o = run().args(["lake", "compact", lake, "--json"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stats: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(stats["files_in"].as_u64().unwrap() > stats["files_out"].as_u64().unwrap(), "{stats}");
    assert_eq!(count(&run, lake), written);
    let after = boto(&python, &url, &["read", "lake", "org"]);
    assert_eq!(after["rows"], theirs["rows"]);
    assert!(after["live"].as_u64() < theirs["live"].as_u64(), "{after} vs {theirs}");
    let v = run().args(["lake", "verify", lake]).output().unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));

    // A write killed part-way: whatever was committed is whole, nothing listed is missing.
    let big = dir.path().join("big.jsonl");
    let generated = ocelot().args(["gen", "cloudtrail", "--events", "120000", "--accounts", "8", "--regions", "2", "--seed", "9", "-o"]).arg(&big).output().unwrap();
    assert!(generated.status.success());
    let local = dir.path().join("local-lake");
    assert!(ocelot().args(["normalize", "--lake"]).arg(&local).arg(&big).output().unwrap().status.success());
    let big_rows = count(&run, local.to_str().unwrap());
    let mut child = run().args(["normalize", "--lake", lake]).arg(&big).stderr(Stdio::null()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let _ = child.kill();
    let _ = child.wait();
    let v = run().args(["lake", "verify", lake, "--json"]).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    let problems = report["problems"].as_array().unwrap();
    assert!(problems.iter().all(|p| p["kind"] == "added"), "only uncommitted objects may be reported: {report}");
    let n = count(&run, lake);
    // `normalize` commits once at the end: all of it or none of it.
    assert!(n == written || n == written + big_rows, "a partial write is never visible: {n} (before {written}, the write {big_rows})");
}
