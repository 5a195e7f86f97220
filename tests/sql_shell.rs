//! `ocelot sql` as analysts use it: the shell (driven through stdin, as a script), its output
//! formats, the documented view `agent_mutations`, and partition pruning shown with EXPLAIN.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

fn samples_lake(dir: &Path) -> PathBuf {
    let lake = dir.join("lake");
    let st = common::ocelot().args(["normalize", "samples", "--lake"]).arg(&lake).current_dir(common::repo()).stderr(Stdio::null()).status().unwrap();
    assert!(st.success());
    lake
}

fn shell(lake: &Path, script: &str) -> Output {
    let mut child = common::ocelot().args(["sql", "--lake"]).arg(lake).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn the_shell_lists_describes_runs_multi_line_statements_and_writes_each_format() {
    let dir = tempfile::tempdir().unwrap();
    let lake = samples_lake(dir.path());
    let parquet = dir.path().join("ops.parquet");
    let script = format!(
        "\\d\n\\d api_activity\n\\timing\nSELECT api.operation,\n       count(*) AS n\n  FROM api_activity\n WHERE api.operation = 'PutBucketPolicy'\n GROUP BY 1;\n\\format csv\nSELECT actor.user.name FROM api_activity WHERE api.operation = 'PutBucketPolicy' ORDER BY 1 LIMIT 1;\n\\format parquet\n\\o {}\nSELECT api.operation, actor.user.name FROM api_activity;\n\\o\n\\format json\nSELECT count(*) AS n FROM agent_mutations;\n\\q\nSELECT 'not run after \\q';\n",
        parquet.display()
    );
    let out = shell(&lake, &script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // \d: the class tables and the view.
    for t in ["api_activity", "account_change", "findings", "agent_mutations"] {
        assert!(stdout.contains(t), "\\d lacks {t}:\n{stdout}");
    }
    assert!(stdout.lines().any(|l| l.contains("agent_mutations") && l.contains("view")), "{stdout}");
    // \d TABLE: nested fields as the dot paths queries use, partitions marked.
    assert!(stdout.contains("actor.user.name"), "{stdout}");
    assert!(stdout.lines().any(|l| l.contains("eventDay") && l.contains("(partition)")), "{stdout}");
    // The multi-line statement ran, timed (timing is off for scripts until \timing).
    assert!(stdout.lines().any(|l| l.contains("PutBucketPolicy") && l.contains('|')), "{stdout}");
    assert!(stdout.contains("1 row(s) in "), "{stdout}");
    // CSV: a header line and the value.
    assert!(stdout.lines().any(|l| l == "name"), "{stdout}");
    // Parquet went to the file, read back with the parquet crate's reader.
    let file = std::fs::File::open(&parquet).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let fields: Vec<String> = reader.schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(fields, ["operation", "name"]);
    let rows: usize = reader.build().unwrap().map(|b| b.unwrap().num_rows()).sum();
    let api_rows = common::ocelot().args(["sql", "SELECT count(*) AS n FROM api_activity", "--format", "csv", "--lake"]).arg(&lake).output().unwrap();
    assert_eq!(rows.to_string(), String::from_utf8_lossy(&api_rows.stdout).lines().nth(1).unwrap());
    // JSON after \o: back on stdout; nothing after \q ran.
    assert!(stdout.lines().any(|l| l.starts_with("{\"n\":")), "{stdout}");
    assert!(!stdout.contains("not run after"), "{stdout}");
}

#[test]
fn a_failing_statement_is_reported_the_script_goes_on_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let lake = samples_lake(dir.path());
    let out = shell(&lake, "SELECT nope FROM missing_table;\n\\format yaml\nSELECT 41 + 1 AS answer;\n");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("missing_table") && stderr.contains("\\d lists"), "{stderr}");
    assert!(stderr.contains("\\format yaml: expected table, csv, json or parquet"), "{stderr}");
    assert!(stdout.contains("42"), "{stdout}");
    // Parquet to a terminal is refused; to a file (--output) it works for one-shot queries too.
    let file = dir.path().join("one.parquet");
    let out = common::ocelot().args(["sql", "SELECT 1 AS one", "--format", "parquet", "--output"]).arg(&file).arg("--lake").arg(&lake).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(&std::fs::read(&file).unwrap()[..4], b"PAR1");
}

#[test]
fn agent_mutations_says_which_agent_changed_what_and_who_approved_it() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let st = common::ocelot().args(["normalize", "samples/agent/session", "--lake"]).arg(&lake).current_dir(common::repo()).status().unwrap();
    assert!(st.success());
    let out =
        common::ocelot().args(["sql", "SELECT operation, agent, tool_call, approval, decided_by FROM agent_mutations ORDER BY time_dt", "--format", "csv", "--lake"]).arg(&lake).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().skip(1).map(str::to_string).collect();
    // The session's four changes; its ListBuckets is a read and is not a mutation.
    assert_eq!(
        rows,
        [
            "PutBucketPolicy,infra-agent,toolu_01,accept,user_temporary",
            "AttachRolePolicy,infra-agent,toolu_02,accept,config",
            "TerminateInstances,infra-agent,toolu_03,reject,user_reject",
            "DeleteBucket,infra-agent,11,none seen,",
        ]
    );
}

#[test]
fn a_filter_on_partition_columns_reads_only_those_directories() {
    let dir = tempfile::tempdir().unwrap();
    let lake = samples_lake(dir.path());
    let explain = |filter: &str| {
        let sql = format!("EXPLAIN SELECT api.operation, count(*) FROM api_activity {filter} GROUP BY 1");
        let out = common::ocelot().args(["sql", &sql, "--format", "json", "--lake"]).arg(&lake).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let physical = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).find(|v| v["plan_type"] == "physical_plan").unwrap();
        let plan = physical["plan"].as_str().unwrap().to_string();
        let files: Vec<String> = plan.split(['[', ']', ',', ' ']).filter(|s| s.ends_with(".parquet")).map(str::to_string).collect();
        (plan, files)
    };
    // Without a filter the plan reads every partition (EXPLAIN shortens long file lists).
    let (plan, all) = explain("");
    let days: std::collections::BTreeSet<&str> = all.iter().filter_map(|f| f.split("eventDay=").nth(1)).map(|d| &d[..8]).collect();
    assert!(days.len() > 1, "{plan}");
    // The busiest partition of the samples.
    let out = common::ocelot().args(["sql", "SELECT eventDay, region FROM api_activity GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1", "--format", "csv", "--lake"]).arg(&lake).output().unwrap();
    let (day, region) = String::from_utf8(out.stdout).unwrap().lines().nth(1).unwrap().split_once(',').map(|(d, r)| (d.to_string(), r.to_string())).unwrap();
    let (plan, some) = explain(&format!("WHERE eventDay = '{day}' AND region = '{region}'"));
    println!("{plan}");
    assert!(some.iter().all(|f| f.contains(&format!("region={region}/")) && f.contains(&format!("eventDay={day}/"))), "{plan}");
    // ... and every file of that partition.
    let in_partition = common::files_under(&lake.join("api_activity")).into_iter().filter(|p| {
        let p = p.to_string_lossy();
        p.ends_with(".parquet") && p.contains(&format!("region={region}/")) && p.contains(&format!("eventDay={day}/"))
    });
    assert_eq!(some.len(), in_partition.count(), "{plan}");
    assert!(!some.is_empty());
    // A partition with no data: nothing is read at all.
    let (plan, none) = explain("WHERE eventDay = '19990101'");
    assert!(none.is_empty(), "{plan}");
}
