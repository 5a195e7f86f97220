//! docker-compose.yml and the Dockerfile cannot run here (no container engine); this checks
//! what can be checked without one: the compose file parses (PyYAML), every file it mounts
//! exists, the topics it creates are the ones the config reads and writes, the config passes
//! `ocelot run --check` and `ocelot serve --check`, the producer's sample files exist, and the
//! Dockerfile builds the binary CI tests (same toolchain, --locked) from files that exist.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn compose() -> Value {
    let python = common::python_with("yaml", &["pyyaml"]);
    let out = Command::new(python).args(["-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"]).arg(common::repo().join("docker-compose.yml")).output().unwrap();
    assert!(out.status.success(), "docker-compose.yml does not parse: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_compose_file_parses_and_everything_it_names_exists() {
    let c = compose();
    let services = c["services"].as_object().unwrap();
    for s in ["kafka", "topics", "ocelot", "ocelot-sql", "producer"] {
        assert!(services.contains_key(s), "service {s} missing");
    }
    // KRaft, no ZooKeeper.
    assert_eq!(services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"], "broker,controller");
    // Bind mounts point at files of the repository.
    for (name, s) in services {
        for v in s["volumes"].as_array().into_iter().flatten() {
            let src = v.as_str().unwrap().split(':').next().unwrap();
            if let Some(rel) = src.strip_prefix("./") {
                assert!(common::repo().join(rel).exists(), "{name}: {src} does not exist");
            }
        }
    }
    // Both Ocelot services run a command of this binary with the mounted config.
    assert_eq!(services["ocelot"]["command"], serde_json::json!(["run", "--config", "/etc/ocelot/ocelot.toml"]));
    assert_eq!(services["ocelot-sql"]["command"], serde_json::json!(["serve", "--config", "/etc/ocelot/ocelot.toml"]));
    assert!(services["ocelot-sql"]["ports"].as_array().unwrap().iter().any(|p| p == "50051:50051"));
    // The topics created are those the config reads and writes.
    let init = services["topics"]["command"][0].as_str().unwrap();
    let config = std::fs::read_to_string(common::repo().join("deploy/ocelot.toml")).unwrap();
    for topic in ["security-telemetry", "ocelot-dead-letters", "ocelot-findings"] {
        assert!(init.contains(topic) && config.contains(&format!("\"{topic}\"")), "{topic}");
    }
}

#[test]
fn the_deployed_config_passes_both_checks() {
    let config = common::repo().join("deploy/ocelot.toml");
    for cmd in ["run", "serve"] {
        let out = common::ocelot().args([cmd, "--check", "--config"]).arg(&config).env("OCELOT_SQL_TOKEN", "t").output().unwrap();
        assert!(out.status.success(), "ocelot {cmd} --check: {}", String::from_utf8_lossy(&out.stderr));
    }
    // Without the token the config names what is missing.
    let out = common::ocelot().args(["serve", "--check", "--config"]).arg(&config).env_remove("OCELOT_SQL_TOKEN").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("OCELOT_SQL_TOKEN"));
}

#[test]
fn the_producer_replays_bundled_samples_that_exist() {
    let script = std::fs::read_to_string(common::repo().join("deploy/produce.sh")).unwrap();
    let patterns: Vec<&str> = script.split_whitespace().map(|w| w.trim_end_matches(';')).filter(|w| w.starts_with("/samples/")).collect();
    assert!(patterns.len() >= 5, "{patterns:?}");
    for p in patterns {
        let (dir, file) = p.trim_start_matches("/samples/").rsplit_once('/').unwrap();
        let dir = common::repo().join("samples").join(dir);
        let found = std::fs::read_dir(&dir).unwrap().flatten().filter(|e| matches(file, &e.file_name().to_string_lossy())).count();
        assert!(found > 0, "{p} matches no sample");
    }
}

/// `*.jsonl` or an exact name.
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(suffix) => name.ends_with(suffix),
        None => pattern == name,
    }
}

#[test]
fn the_dockerfile_builds_the_tested_binary_from_files_that_exist() {
    let text = std::fs::read_to_string(common::repo().join("Dockerfile")).unwrap();
    let manifest = std::fs::read_to_string(common::repo().join("Cargo.toml")).unwrap();
    let rust_version = manifest.lines().find_map(|l| l.strip_prefix("rust-version = ")).unwrap().trim_matches('"');
    assert!(text.contains(&format!("FROM rust:{rust_version}-")), "the build stage uses the toolchain CI uses ({rust_version})");
    assert!(text.contains("cargo build --release --locked --bin ocelot"));
    // Runs as a user, not root.
    assert!(text.lines().any(|l| l.starts_with("USER ") && !l.contains("root")));
    for line in text.lines().filter(|l| l.starts_with("COPY ") && !l.contains("--from")) {
        let src = line.split_whitespace().nth(1).unwrap();
        assert!(src == "." || Path::new(&common::repo().join(src)).exists(), "{line}");
    }
}
