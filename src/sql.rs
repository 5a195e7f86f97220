//! `ocelot sql`: one query, or an interactive shell over the lake (history, multi-line
//! statements ended by `;`, `\d`, timing, output formats). With stdin not a terminal the shell
//! reads statements from it (no prompts), so `ocelot sql --lake L < queries.sql` runs a script.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use arrow::array::RecordBatch;
use clap::ValueEnum;
use datafusion::prelude::SessionContext;
use ocelot_lake::query;

#[derive(Clone, Copy, ValueEnum, PartialEq, Debug)]
pub enum SqlFormat {
    Table,
    Csv,
    Json,
    /// A Parquet file (--output FILE, or stdout when it is not a terminal).
    Parquet,
}

/// Where and how results are printed.
pub struct Printer {
    pub format: SqlFormat,
    /// A file instead of stdout (replaced by each query).
    pub output: Option<PathBuf>,
}

impl Printer {
    pub fn print(&self, batches: &[RecordBatch]) -> Result<()> {
        match &self.output {
            Some(path) => {
                let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
                let mut w = std::io::BufWriter::new(file);
                write_batches(&mut w, batches, self.format)?;
                w.flush()?;
            }
            None => {
                if self.format == SqlFormat::Parquet && std::io::stdout().is_terminal() {
                    bail!("Parquet is binary: write it to a file (--output FILE, or \\o FILE in the shell) or pipe stdout");
                }
                let mut out = std::io::BufWriter::new(std::io::stdout());
                write_batches(&mut out, batches, self.format)?;
                out.flush()?;
            }
        }
        Ok(())
    }
}

fn write_batches<W: Write + Send>(out: &mut W, batches: &[RecordBatch], format: SqlFormat) -> Result<()> {
    match format {
        SqlFormat::Table => writeln!(out, "{}", arrow::util::pretty::pretty_format_batches(batches)?)?,
        SqlFormat::Csv => {
            let mut w = arrow::csv::Writer::new(out);
            for b in batches {
                w.write(b).context("CSV holds flat columns only: select leaf fields (actor.user.name), or use json or parquet")?;
            }
        }
        SqlFormat::Json => {
            let mut w = arrow::json::LineDelimitedWriter::new(out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
        SqlFormat::Parquet => {
            let Some(schema) = batches.first().map(|b| b.schema()) else { return Ok(()) };
            let mut w = parquet::arrow::ArrowWriter::try_new(out, schema, None)?;
            for b in batches {
                w.write(b)?;
            }
            w.close()?;
        }
    }
    Ok(())
}

/// The session over the lake, with a hint on "table not found".
pub async fn session(lake: &Path) -> Result<SessionContext> {
    let storage = crate::lake_arg(lake)?;
    if storage.local_root().is_some_and(|d| !d.is_dir()) {
        bail!("--lake {}: no such directory (write one with `ocelot normalize ... --lake {}`)", lake.display(), lake.display());
    }
    Ok(query::session(&storage).await?)
}

pub async fn run_query(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    let run = async { query::athena_names(ctx.sql(sql).await?)?.collect().await };
    run.await.map_err(|e| {
        let hint = if e.to_string().contains("not found") { " (\\d lists the tables and views)" } else { "" };
        anyhow::anyhow!("{e}{hint}")
    })
}

/// The interactive shell. Returns whether every statement succeeded.
pub async fn shell(ctx: &SessionContext, mut printer: Printer) -> Result<bool> {
    let interactive = std::io::stdin().is_terminal();
    let mut input = Input::open(interactive)?;
    if interactive {
        println!("ocelot sql: statements end with `;`. \\d lists tables and views, \\? the commands, \\q quits.");
    }
    let mut timing = interactive;
    let mut ok = true;
    let mut pending = String::new();
    loop {
        let line = match input.read(if pending.is_empty() { "ocelot> " } else { "     -> " })? {
            Line::Text(line) => line,
            Line::Cancel => {
                pending.clear();
                continue;
            }
            Line::End => break,
        };
        let trimmed = line.trim();
        if pending.is_empty() && trimmed.starts_with('\\') {
            input.remember(trimmed);
            match command(ctx, trimmed, &mut printer, &mut timing).await {
                Ok(Flow::Quit) => break,
                Ok(Flow::Go) => {}
                Err(e) => {
                    ok = false;
                    eprintln!("error: {e:#}");
                }
            }
            continue;
        }
        if trimmed.is_empty() && pending.is_empty() {
            continue;
        }
        pending.push_str(&line);
        pending.push('\n');
        if !trimmed.ends_with(';') {
            continue;
        }
        let sql = std::mem::take(&mut pending);
        input.remember(sql.trim());
        ok &= statement(ctx, &sql, &printer, timing).await;
    }
    if !pending.trim().is_empty() {
        ok &= statement(ctx, &pending, &printer, timing).await;
    }
    input.save();
    Ok(ok)
}

async fn statement(ctx: &SessionContext, sql: &str, printer: &Printer, timing: bool) -> bool {
    let started = Instant::now();
    // Ctrl-C stops the query, not the shell.
    let result = tokio::select! {
        r = run_query(ctx, sql.trim().trim_end_matches(';')) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("cancelled")),
    };
    match result.and_then(|b| printer.print(&b).map(|()| b)) {
        Ok(batches) => {
            if timing {
                let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
                println!("{rows} row(s) in {:.3} s", started.elapsed().as_secs_f64());
            }
            true
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            false
        }
    }
}

enum Flow {
    Go,
    Quit,
}

const HELP: &str = "\\d              list tables and views
\\d NAME         the columns of a table or view (nested fields as dot paths)
\\timing         timing of each query on/off
\\format FORMAT  table, csv, json or parquet
\\o [FILE]       write results to FILE (needed for parquet); \\o alone: back to stdout
\\q              quit
Statements end with `;` and may span lines. Tables: docs/sql.md.";

async fn command(ctx: &SessionContext, line: &str, printer: &mut Printer, timing: &mut bool) -> Result<Flow> {
    let mut words = line.split_whitespace();
    let name = words.next().unwrap_or_default();
    let arg = words.next();
    match (name, arg) {
        ("\\q", _) => return Ok(Flow::Quit),
        ("\\?", _) | ("\\h", _) => println!("{HELP}"),
        ("\\d", None) => {
            let sql = "SELECT table_name AS name, lower(table_type) AS kind FROM information_schema.tables WHERE table_schema = 'public' ORDER BY kind, name";
            Printer { format: SqlFormat::Table, output: None }.print(&run_query(ctx, sql).await?)?;
        }
        ("\\d", Some(table)) => describe(ctx, table).await?,
        ("\\timing", _) => {
            *timing = !*timing;
            println!("timing {}", if *timing { "on" } else { "off" });
        }
        ("\\format", Some(f)) => printer.format = SqlFormat::from_str(f, true).map_err(|_| anyhow::anyhow!("\\format {f}: expected table, csv, json or parquet"))?,
        ("\\o", file) => printer.output = file.map(PathBuf::from),
        _ => bail!("{line}: unknown command (\\? lists them)"),
    }
    Ok(Flow::Go)
}

async fn describe(ctx: &SessionContext, table: &str) -> Result<()> {
    let provider = ctx.table_provider(table).await.with_context(|| format!("{table}: no such table or view (\\d lists them)"))?;
    let mut out = std::io::stdout().lock();
    let kind = format!("{:?}", provider.table_type()).to_lowercase();
    let schema = provider.schema();
    let leaves = ocelot_schemas::leaf_paths(&schema);
    writeln!(out, "{kind} {table}: {} columns, {} leaf fields", schema.fields().len(), leaves.len())?;
    for (path, dt) in leaves {
        let partition = if query::PARTITION_COLUMNS.contains(&path.as_str()) { "  (partition)" } else { "" };
        writeln!(out, "  {path:<48} {dt}{partition}")?;
    }
    Ok(())
}

enum Line {
    Text(String),
    /// Ctrl-C: drop the statement being typed, as in psql.
    Cancel,
    End,
}

/// Lines from the terminal (line editing, history kept across sessions) or from piped stdin.
enum Input {
    Terminal { editor: Box<rustyline::DefaultEditor>, history: Option<PathBuf> },
    Piped(std::io::StdinLock<'static>),
}

impl Input {
    fn open(interactive: bool) -> Result<Input> {
        if !interactive {
            return Ok(Input::Piped(std::io::stdin().lock()));
        }
        let mut editor = rustyline::DefaultEditor::new()?;
        let history = std::env::var_os("OCELOT_SQL_HISTORY").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".ocelot_sql_history")));
        if let Some(h) = &history {
            // No history file yet on first use.
            let _ = editor.load_history(h);
        }
        Ok(Input::Terminal { editor: Box::new(editor), history })
    }

    fn read(&mut self, prompt: &str) -> Result<Line> {
        match self {
            Input::Piped(stdin) => {
                let mut line = String::new();
                Ok(if stdin.read_line(&mut line)? > 0 { Line::Text(line.trim_end_matches(['\n', '\r']).to_string()) } else { Line::End })
            }
            Input::Terminal { editor, .. } => match editor.readline(prompt) {
                Ok(line) => Ok(Line::Text(line)),
                Err(rustyline::error::ReadlineError::Interrupted) => Ok(Line::Cancel),
                Err(rustyline::error::ReadlineError::Eof) => Ok(Line::End),
                Err(e) => Err(e.into()),
            },
        }
    }

    fn remember(&mut self, entry: &str) {
        if let Input::Terminal { editor, .. } = self {
            let _ = editor.add_history_entry(entry);
        }
    }

    fn save(&mut self) {
        if let Input::Terminal { editor, history: Some(h) } = self
            && let Err(e) = editor.save_history(h)
        {
            eprintln!("warning: could not save the history to {}: {e}", h.display());
        }
    }
}
