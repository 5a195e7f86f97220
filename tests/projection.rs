//! The Arrow projection of each class may only grow: a column, once written to the lake, keeps
//! its name and type, so old files stay readable. The committed snapshots in
//! `docs/projections/` are both this test's memory and the reference for analysts.
//! After adding columns on purpose: `OCELOT_BLESS=1 cargo test --test projection`.

mod common;

use ocelot_normalize::classes::{class_and_projection, WRITTEN_CLASSES};

#[test]
fn projections_only_grow() {
    let bless = std::env::var_os("OCELOT_BLESS").is_some();
    let dir = common::repo().join("docs/projections");
    for class in WRITTEN_CLASSES {
        let (_, schema) = class_and_projection(class).unwrap();
        let now: Vec<String> = ocelot_schemas::leaf_paths(&schema).into_iter().map(|(p, t)| format!("{p}\t{t}")).collect();
        let file = dir.join(format!("{class}.tsv"));
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&file, now.join("\n") + "\n").unwrap();
            continue;
        }
        let before = std::fs::read_to_string(&file).unwrap_or_else(|_| panic!("{} missing: run with OCELOT_BLESS=1", file.display()));
        let missing: Vec<&str> = before.lines().filter(|l| !now.iter().any(|n| n == l)).collect();
        assert!(missing.is_empty(), "{class}: columns removed or retyped (old files would break): {missing:#?}");
        let added: Vec<&String> = now.iter().filter(|n| !before.lines().any(|l| l == n.as_str())).collect();
        assert!(added.is_empty(), "{class}: new columns {added:#?}; if intended, run with OCELOT_BLESS=1 and commit docs/projections/");
    }
}
