//! Queries written for Amazon Security Lake in Athena read the same here: a dozen Athena-style
//! queries (tests/data/athena_queries.sql: nested dot paths of any depth in SELECT, WHERE,
//! GROUP BY, HAVING, ORDER BY, joins with aliases, unaliased nested columns) run with
//! `ocelot sql` and with DuckDB (PyPI, a SQL engine that is not ours) over the same lake of the
//! bundled samples; column names and rows must be the same.

mod common;

#[test]
fn athena_style_queries_give_what_duckdb_gives_over_the_same_lake() {
    let python = common::python_with("duckdb", &["duckdb"]);
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let st = common::ocelot().args(["normalize", "samples", "--lake"]).arg(&lake).current_dir(common::repo()).stderr(std::process::Stdio::null()).status().unwrap();
    assert!(st.success());
    let out = std::process::Command::new(python)
        .arg(common::repo().join("tests/athena_queries.py"))
        .arg(env!("CARGO_BIN_EXE_ocelot"))
        .arg(&lake)
        .arg(common::repo().join("tests/data/athena_queries.sql"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    assert!(out.status.success(), "{report}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(report.lines().filter(|l| l.starts_with("ok (")).count(), 13, "{report}");
    assert!(report.lines().filter(|l| l.starts_with("ok (0 rows")).count() <= 1, "queries that return nothing prove little:\n{report}");
}
