//! `ocelot run --check`: the shipped example is valid, the environment overrides the file, and
//! a bad config fails fast naming the key.

mod common;

use std::process::Command;

fn check(config: &std::path::Path, env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ocelot"));
    cmd.args(["run", "--check", "--config"]).arg(config);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn the_example_config_is_valid_and_the_environment_overrides_it() {
    let example = common::repo().join("examples/ocelot.toml");
    let (ok, out) = check(&example, &[]);
    assert!(ok, "{out}");
    assert!(out.contains("brokers 127.0.0.1:9092") && out.contains("cloudtrail (cloudtrail)"), "{out}");
    let (ok, out) = check(&example, &[("OCELOT_KAFKA__BROKERS", "kafka-1:9092,kafka-2:9092"), ("OCELOT_KAFKA__GROUP_ID", "soc")]);
    assert!(ok, "{out}");
    assert!(out.contains("brokers kafka-1:9092,kafka-2:9092") && out.contains("group soc"), "{out}");
    // Unrelated OCELOT_ variables (the log filter) are not config keys.
    let (ok, out) = check(&example, &[("OCELOT_LOG", "debug")]);
    assert!(ok, "{out}");
}

#[test]
fn a_bad_config_fails_naming_the_key() {
    let example = common::repo().join("examples/ocelot.toml");
    let (ok, out) = check(&example, &[("OCELOT_BATCH__MAX_ROWS", "0")]);
    assert!(!ok && out.contains("batch.max_rows"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(&example).unwrap().replace("group_id = ", "groupid = ");
    std::fs::write(&bad, text).unwrap();
    let (ok, out) = check(&bad, &[]);
    assert!(!ok && out.contains("groupid") && out.contains("group_id"), "{out}");
    let (ok, out) = check(&dir.path().join("missing.toml"), &[]);
    assert!(!ok && out.contains("no such config file"), "{out}");
    let secret = std::fs::read_to_string(&example).unwrap().replace("[kafka.settings]\n", "[kafka.settings]\n\"sasl.password\" = { env = \"OCELOT_TEST_NO_SUCH_VAR\" }\n");
    std::fs::write(&bad, secret).unwrap();
    let (ok, out) = check(&bad, &[]);
    assert!(!ok && out.contains("sasl.password") && out.contains("OCELOT_TEST_NO_SUCH_VAR"), "{out}");
    // An agent rule: good from the environment, a bad regex refused with the key.
    let (ok, out) = check(&example, &[("OCELOT_AGENTS", "[{name=\"bot\",user_agent=[\"app/bot\"]}]")]);
    assert!(ok, "{out}");
    let (ok, out) = check(&example, &[("OCELOT_AGENTS", "[{name=\"bot\",session_name=[\"(\"]}]")]);
    assert!(!ok && out.contains("agents[].session_name: bad regex `(` of agent `bot`"), "{out}");
}
