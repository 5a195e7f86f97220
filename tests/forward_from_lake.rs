//! `ocelot forward --from-lake`: the findings of a lake sent again to a `[[forward]]` target (a
//! webhook receiver in this test), each finding once, its uid as the idempotency key.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{ocelot, repo};

#[test]
fn findings_are_sent_again_from_the_lake_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    // The demo writes the engine's findings into the lake's `findings` table.
    let o = ocelot().args(["demo", "--lake"]).arg(&lake).current_dir(repo()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let sql = ocelot().args(["sql", "SELECT DISTINCT finding_info.uid AS uid FROM findings", "--format", "csv", "--lake"]).arg(&lake).output().unwrap();
    let uids: BTreeSet<String> = String::from_utf8_lossy(&sql.stdout).lines().skip(1).map(str::to_string).collect();
    assert!(uids.len() > 20, "{} findings in the demo lake", uids.len());

    let (url, keys) = common::webhook::receiver(Duration::ZERO);
    let cfg = dir.path().join("ocelot.toml");
    // Other sections of the file are not read (a whole `ocelot run` config works as well).
    std::fs::write(&cfg, format!("[kafka]\nbrokers = \"unused:9092\"\n\n[[forward]]\ntype = \"webhook\"\nurl = \"{url}\"\n")).unwrap();
    let o = ocelot().args(["forward", "--json", "--from-lake"]).arg(&lake).arg("--config").arg(&cfg).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["findings"].as_u64().unwrap() as usize, uids.len(), "{report}");
    assert_eq!(report["dead_lettered"], 0, "{report}");
    let got = keys.lock().unwrap().clone();
    assert_eq!(got.len(), uids.len(), "each finding once");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), uids);

    // A range with nothing in it sends nothing; a config without targets is refused, naming the fix.
    let o = ocelot().args(["forward", "--json", "--since", "2099-01-01T00:00:00Z", "--from-lake"]).arg(&lake).arg("--config").arg(&cfg).output().unwrap();
    assert!(o.status.success());
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["findings"], 0);
    std::fs::write(&cfg, "[kafka]\nbrokers = \"x:9092\"\n").unwrap();
    let o = ocelot().args(["forward", "--from-lake"]).arg(&lake).arg("--config").arg(&cfg).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no [[forward]] target"), "{}", String::from_utf8_lossy(&o.stderr));
}
