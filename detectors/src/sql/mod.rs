//! SQL detectors (DataFusion). A rule keeps only the rows its `filter` keeps, buffers them in
//! event-time windows (tumbling or hopping), and runs its query over a window once the
//! watermark (the newest event time seen, minus the rule's lateness) passes the window's end.
//! Events older than a closed window are late: counted, not silently lost. Each rule has a
//! memory budget: past it, the oldest window is evaluated early (logged, counted). Rules
//! without a window run on each batch's kept rows.

mod detector;
pub mod rule;
pub mod udf;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::UInt32Array;
use arrow::array::{new_null_array, Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use arrow::compute::{filter_record_batch, take_record_batch};
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::common::DFSchema;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{ExecutionPlan, PhysicalExpr, SendableRecordBatchStream};
use datafusion::prelude::{SessionConfig, SessionContext};

pub use detector::SqlDetector;
pub use rule::{SqlRule, Window};

use crate::agent_link::Linker;

/// The table of agent links every rule may read (see `agent_link`).
pub const AGENT_LINKS: &str = "agent_links";

/// The session settings the detectors and `ocelot sql` share: identifiers keep their case
/// (`accountId`), and DuckDB's dialect, which reads `actor.user.name` (the generic and
/// PostgreSQL dialects take `user` for the USER function).
pub fn session_config() -> SessionConfig {
    let mut config = SessionConfig::new().with_information_schema(true);
    config.options_mut().sql_parser.enable_ident_normalization = false;
    config.options_mut().sql_parser.dialect = datafusion::common::config::Dialect::DuckDB;
    config
}

/// A session with the rules' functions registered.
pub fn session(config: SessionConfig) -> SessionContext {
    let ctx = SessionContext::new_with_config(config);
    udf::register(&ctx);
    ctx
}

/// One result row of a rule: a finding to make.
pub struct Output {
    pub rule: usize,
    /// The window's start (None for per-batch rules).
    pub window_start: Option<i64>,
    /// The query's result rows (one finding per row).
    pub rows: RecordBatch,
    /// The rows the query read, to find the evidence events in.
    pub inputs: Vec<RecordBatch>,
}

/// Counters per rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct RuleStats {
    pub kept_rows: u64,
    pub late_events: u64,
    pub budget_exceeded: u64,
    pub buffered_bytes: usize,
    pub runs: u64,
}

/// One conjunct of a rule's filter, over only the columns it reads (`cols`, indices into the
/// batch schema it was compiled for).
struct Conjunct {
    expr: Arc<dyn PhysicalExpr>,
    cols: Vec<usize>,
    /// It parses or scans text (`json_get`, regular expressions): run only on the rows the
    /// cheap conjuncts kept.
    costly: bool,
}

/// A rule's filter on one table, compiled for a batch schema, and the columns the rule keeps
/// of the rows it passes: what its query reads and what evidence and agent links read.
struct Compiled {
    schema: SchemaRef,
    conjuncts: Vec<Conjunct>,
    keep: Vec<usize>,
}

#[derive(Default)]
struct State {
    /// Per table, for the last batch schema seen. Costly conjuncts (`json_get`) only see the
    /// rows the cheap ones kept.
    filters: HashMap<String, Compiled>,
    /// Per table, the top-level columns the query reads (None: all).
    reads: HashMap<String, Option<Vec<String>>>,
    /// The query, planned once at load over the tables' slots; a run resets its state and
    /// executes it.
    plan: Option<Arc<dyn ExecutionPlan>>,
    /// Window start -> kept batches, per table.
    windows: BTreeMap<i64, HashMap<String, Vec<RecordBatch>>>,
    /// Windows that start before this are closed.
    closed_before: i64,
    stats: RuleStats,
    warned_budget: bool,
}

pub struct SqlSet {
    pub rules: Vec<SqlRule>,
    pub rejected: Vec<(PathBuf, String)>,
    states: Vec<State>,
    schemas: HashMap<String, SchemaRef>,
    /// One table per class and `agent_links`, registered once; a run puts its window's rows in
    /// the tables its rule reads and empties them after.
    tables: HashMap<String, Arc<Slot>>,
    ctx: SessionContext,
    rt: tokio::runtime::Runtime,
}

impl SqlSet {
    /// Compiles rules given as (path, text) against the class schemas (table name -> Arrow
    /// schema): a rule whose query does not plan is rejected with the planner's message.
    pub fn new(docs: Vec<(PathBuf, String)>, mut schemas: HashMap<String, SchemaRef>) -> Result<SqlSet, String> {
        schemas.insert(AGENT_LINKS.into(), Linker::schema());
        let rt = tokio::runtime::Builder::new_current_thread().build().map_err(|e| format!("detection runtime: {e}"))?;
        let mut config = session_config().with_target_partitions(1);
        // A plan is made once and executed per window (see `Slot`): dynamic filters, which a
        // plan's join or top-k fills while it runs, would carry over from one window to the next.
        let opt = &mut config.options_mut().optimizer;
        opt.enable_dynamic_filter_pushdown = false;
        opt.enable_join_dynamic_filter_pushdown = false;
        opt.enable_topk_dynamic_filter_pushdown = false;
        opt.enable_aggregate_dynamic_filter_pushdown = false;
        let ctx = session(config);
        let mut tables = HashMap::new();
        for (name, schema) in &schemas {
            let slot = Arc::new(Slot { schema: schema.clone(), batches: Default::default() });
            let t = StreamingTable::try_new(schema.clone(), vec![slot.clone() as Arc<dyn PartitionStream>]).map_err(|e| format!("table {name}: {e}"))?;
            ctx.register_table(name.as_str(), Arc::new(t)).map_err(|e| format!("table {name}: {e}"))?;
            tables.insert(name.clone(), slot);
        }
        let mut set = SqlSet { rules: Vec::new(), rejected: Vec::new(), states: Vec::new(), schemas, tables, ctx, rt };
        for (path, text) in docs {
            match SqlRule::parse(&path, &text).and_then(|r| set.check(&r).map(|state| (r, state))) {
                Ok((r, state)) => {
                    set.rules.push(r);
                    set.states.push(state);
                }
                Err(e) => set.rejected.push((path, e)),
            }
        }
        Ok(set)
    }

    /// Plans the rule's query and compiles its filters against the (empty) tables: the
    /// rule's state, ready to run, or why the rule is rejected.
    fn check(&self, r: &SqlRule) -> Result<State, String> {
        if let Some(t) = r.tables.iter().find(|t| !self.schemas.contains_key(*t)) {
            return Err(format!("{}: table `{t}` is not a class Ocelot writes (known: {})", r.path.display(), self.table_names().join(", ")));
        }
        let (plan, optimized, physical) = self
            .rt
            .block_on(async {
                let df = self.ctx.sql(&r.query).await?;
                let schema = df.schema().clone();
                let optimized = df.into_optimized_plan()?;
                let state = self.ctx.state();
                let physical = state.query_planner().create_physical_plan(&optimized, &state).await?;
                Ok::<_, datafusion::error::DataFusionError>((schema, optimized, physical))
            })
            .map_err(|e| format!("{}: query: {e}", r.path.display()))?;
        let has = |n: &str| plan.fields().iter().any(|f| f.name() == n);
        if !has("uids") && !has("uid") {
            return Err(format!("{}: the query must return the evidence events' uids: a `uids` list (array_agg(metadata.uid)) or a `uid` column", r.path.display()));
        }
        for g in &r.group_by {
            if !has(g) {
                return Err(format!("{}: group_by names `{g}`, which the query does not return", r.path.display()));
            }
        }
        let reads = query_reads(&optimized);
        if let Some(t) = reads.keys().find(|t| *t != AGENT_LINKS && !r.tables.contains(t)) {
            return Err(format!("{}: the query reads `{t}`, which the `table` header does not name (the rule would never see its rows)", r.path.display()));
        }
        let mut state = State { closed_before: i64::MIN, reads, plan: Some(physical), ..State::default() };
        // Compiled now for the class schemas: a broken filter fails at load, and the first
        // batches do not pay.
        for t in &r.tables {
            state.compiled(&self.ctx, r, t, &self.schemas[t]).map_err(|e| format!("{}: filter on {t}: {e}", r.path.display()))?;
        }
        Ok(state)
    }

    fn table_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.schemas.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Puts the batches (aligned to the class schema) in each table, and in `agent_links` the
    /// links of the CloudTrail rows among them; `None` empties them.
    fn fill(&self, tables: &[String], data: Option<(&HashMap<String, Vec<RecordBatch>>, &Linker)>, links_read: bool) {
        // Only a rule whose query reads `agent_links` pays for linking its rows.
        let links = data.filter(|_| links_read).map(|(d, linker)| linker.links(&d.values().flatten().cloned().collect::<Vec<_>>()));
        if let Some(t) = self.tables.get(AGENT_LINKS) {
            t.put(links.into_iter().collect());
        }
        for t in tables {
            let (Some(table), Some(schema)) = (self.tables.get(t), self.schemas.get(t)) else { continue };
            let batches: Vec<RecordBatch> = data.and_then(|(d, _)| d.get(t)).map(|b| b.iter().map(|b| align(b, schema)).collect()).unwrap_or_default();
            table.put(batches);
        }
    }

    pub fn stats(&self, rule: usize) -> RuleStats {
        self.states[rule].stats
    }

    /// Feeds a batch of class `table`: rules without a window run on it now, windowed rules
    /// buffer it until [`SqlSet::advance`] closes its window.
    pub fn process(&mut self, batch: &RecordBatch, table: &str, linker: &Linker) -> Vec<Output> {
        let mut out = Vec::new();
        for i in 0..self.rules.len() {
            if !self.rules[i].tables.iter().any(|t| t == table) {
                continue;
            }
            let kept = match self.keep(i, batch, table) {
                Ok(k) => k,
                Err(e) => {
                    tracing::warn!(rule = %self.rules[i].meta.id, error = %e, "rule filter failed on a batch; the rule skips it");
                    continue;
                }
            };
            if kept.num_rows() == 0 {
                continue;
            }
            self.states[i].stats.kept_rows += kept.num_rows() as u64;
            match self.rules[i].window {
                None => {
                    let data = HashMap::from([(table.to_string(), vec![kept])]);
                    out.extend(self.run(i, None, data, linker));
                }
                Some(w) => self.buffer(i, w, kept, table),
            }
        }
        out
    }

    /// Runs the windows that `watermark` (the newest event time the engine has seen; i64::MAX
    /// at the end of input) closes.
    pub fn advance(&mut self, watermark: i64, linker: &Linker) -> Vec<Output> {
        let mut out = Vec::new();
        for i in 0..self.rules.len() {
            out.extend(self.close_due(i, watermark, linker));
        }
        out
    }

    /// The rows of a batch the rule keeps, with the columns it keeps. Cheap conjuncts read
    /// their columns of the whole batch in place; costly ones only the rows still in, copied;
    /// the rows kept are copied once, with only the columns the rule keeps.
    fn keep(&mut self, i: usize, batch: &RecordBatch, table: &str) -> Result<RecordBatch, String> {
        let c = self.states[i].compiled(&self.ctx, &self.rules[i], table, &batch.schema()).map_err(|e| e.to_string())?;
        let mask = |cols: &RecordBatch, conjunct: &Conjunct| -> Result<BooleanArray, String> {
            let v = conjunct.expr.evaluate(cols).and_then(|v| v.into_array(cols.num_rows())).map_err(|e| e.to_string())?;
            let m = v.as_boolean_opt().ok_or("the filter is not a boolean expression")?;
            // Null is not true: the row is out.
            Ok(if m.nulls().is_some() { arrow::compute::prep_null_mask_filter(m) } else { m.clone() })
        };
        let mut all: Option<BooleanArray> = None;
        for conjunct in c.conjuncts.iter().take_while(|c| !c.costly) {
            let m = mask(&batch.project(&conjunct.cols).map_err(|e| e.to_string())?, conjunct)?;
            let m = match all {
                Some(prev) => arrow::compute::and(&prev, &m).map_err(|e| e.to_string())?,
                None => m,
            };
            if m.true_count() == 0 {
                return Ok(RecordBatch::new_empty(Arc::new(batch.schema().project(&c.keep).map_err(|e| e.to_string())?)));
            }
            all = Some(m);
        }
        let mut rows: Option<UInt32Array> = all.filter(|m| m.true_count() < m.len()).map(|m| m.values().set_indices().map(|r| r as u32).collect::<Vec<u32>>().into());
        for conjunct in c.conjuncts.iter().skip_while(|c| !c.costly) {
            let cols = batch.project(&conjunct.cols).map_err(|e| e.to_string())?;
            let cols = match &rows {
                Some(r) => take_record_batch(&cols, r).map_err(|e| e.to_string())?,
                None => cols,
            };
            let m = mask(&cols, conjunct)?;
            let pass = m.values().set_indices();
            let next: UInt32Array = match &rows {
                Some(prev) => pass.map(|r| prev.value(r)).collect::<Vec<u32>>().into(),
                None => pass.map(|r| r as u32).collect::<Vec<u32>>().into(),
            };
            rows = Some(next);
            if rows.as_ref().is_some_and(|r| r.is_empty()) {
                break;
            }
        }
        let kept = batch.project(&c.keep).map_err(|e| e.to_string())?;
        match rows {
            Some(r) => take_record_batch(&kept, &r).map_err(|e| e.to_string()),
            None => Ok(kept),
        }
    }

    fn buffer(&mut self, i: usize, w: Window, kept: RecordBatch, table: &str) {
        let time = kept.column_by_name("time").and_then(|t| t.as_primitive_opt::<arrow::datatypes::Int64Type>().cloned());
        let Some(time) = time else { return };
        let state = &mut self.states[i];
        // Rows by every window (start) that contains them.
        let mut by_window: BTreeMap<i64, Vec<bool>> = BTreeMap::new();
        for row in 0..kept.num_rows() {
            let t = time.value(row);
            let last_start = t.div_euclid(w.slide_ms) * w.slide_ms;
            let mut start = last_start;
            while start > t - w.size_ms {
                if start < state.closed_before {
                    if start == last_start {
                        state.stats.late_events += 1;
                    }
                } else {
                    by_window.entry(start).or_insert_with(|| vec![false; kept.num_rows()])[row] = true;
                }
                start -= w.slide_ms;
            }
        }
        if state.stats.late_events > 0 && by_window.is_empty() {
            tracing::debug!(rule = %self.rules[i].meta.id, late = state.stats.late_events, "late events past the rule's lateness");
        }
        // Most batches fall in one window whole: kept as they are, not copied again.
        let whole = by_window.len() == 1 && by_window.values().all(|m| m.iter().all(|&x| x));
        for (start, mask) in by_window {
            let rows = if whole { Ok(kept.clone()) } else { filter_record_batch(&kept, &BooleanArray::from(mask)) };
            if let Ok(rows) = rows {
                // Kept up to date here, not summed on every check: the budget is read per batch.
                state.stats.buffered_bytes += rows.get_array_memory_size();
                state.windows.entry(start).or_default().entry(table.to_string()).or_default().push(rows);
            }
        }
    }

    fn close_due(&mut self, i: usize, watermark: i64, linker: &Linker) -> Vec<Output> {
        let Some(w) = self.rules[i].window else { return Vec::new() };
        let horizon = watermark.saturating_sub(self.rules[i].lateness_ms);
        let mut out = Vec::new();
        loop {
            let state = &mut self.states[i];
            let Some((&start, _)) = state.windows.first_key_value() else { break };
            let over_budget = self.states[i].stats.buffered_bytes > self.rules[i].budget_bytes;
            let state = &mut self.states[i];
            if start.saturating_add(w.size_ms) > horizon && !over_budget {
                break;
            }
            if over_budget && start.saturating_add(w.size_ms) > horizon {
                state.stats.budget_exceeded += 1;
                if !state.warned_budget {
                    state.warned_budget = true;
                    tracing::warn!(rule = %self.rules[i].meta.id, budget_bytes = self.rules[i].budget_bytes, "rule state over its memory budget: evaluating its oldest window early");
                }
            }
            let data = state.windows.remove(&start).unwrap_or_default();
            let freed: usize = data.values().flatten().map(RecordBatch::get_array_memory_size).sum();
            state.stats.buffered_bytes = state.stats.buffered_bytes.saturating_sub(freed);
            state.closed_before = state.closed_before.max(start + w.slide_ms);
            out.extend(self.run(i, Some(start), data, linker));
        }
        out
    }

    fn run(&mut self, i: usize, window_start: Option<i64>, data: HashMap<String, Vec<RecordBatch>>, linker: &Linker) -> Option<Output> {
        self.states[i].stats.runs += 1;
        let rule = &self.rules[i];
        let plan = self.states[i].plan.clone()?;
        let links_read = self.states[i].reads.contains_key(AGENT_LINKS);
        self.fill(&rule.tables, Some((&data, linker)), links_read);
        // Operators that keep what they built (a join's hash table) start afresh.
        let result = datafusion::physical_plan::execution_plan::reset_plan_states(plan).map(|plan| self.rt.block_on(datafusion::physical_plan::collect(plan, self.ctx.task_ctx())));
        self.fill(&rule.tables, None, links_read);
        let result = result.and_then(|r| r);
        let batches = match result {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(rule = %rule.meta.id, error = %e, "rule query failed");
                return None;
            }
        };
        let rows = arrow::compute::concat_batches(&batches.first()?.schema(), &batches).ok()?;
        if rows.num_rows() == 0 {
            return None;
        }
        let inputs = data.into_values().flatten().collect();
        Some(Output { rule: i, window_start, rows, inputs })
    }

    /// Loads `.sql` rules under a directory (recursively).
    pub fn load_dir(dir: &Path, schemas: HashMap<String, SchemaRef>) -> Result<SqlSet, String> {
        SqlSet::new(crate::rule::read_files(dir, &["sql"])?, schemas)
    }

    /// The SQL rules shipped in the binary (`detectors/rules/sql/`).
    pub fn shipped(schemas: HashMap<String, SchemaRef>) -> Result<SqlSet, String> {
        let docs = crate::SHIPPED.iter().filter(|(p, _)| p.starts_with("sql/") && p.ends_with(".sql"));
        SqlSet::new(docs.map(|(p, t)| (PathBuf::from("rules").join(p), t.to_string())).collect(), schemas)
    }
}

impl State {
    /// The rule's filter and kept columns for batches of `schema` on `table`, compiled when
    /// the schema is new.
    fn compiled(&mut self, ctx: &SessionContext, rule: &SqlRule, table: &str, schema: &SchemaRef) -> datafusion::common::Result<&Compiled> {
        if self.filters.get(table).is_none_or(|c| &c.schema != schema) {
            let conjuncts = match rule.filter_for(table) {
                Some(f) => compile_filter(ctx, schema, f)?,
                None => Vec::new(),
            };
            let reads = self.reads.get(table).cloned().flatten();
            let keep = match reads {
                None => (0..schema.fields().len()).collect(),
                Some(cols) => {
                    let wanted = |n: &str| cols.iter().any(|c| c == n) || crate::event::Summaries::COLUMNS.contains(&n);
                    schema.fields().iter().enumerate().filter(|(_, f)| wanted(f.name())).map(|(i, _)| i).collect()
                }
            };
            self.filters.insert(table.to_string(), Compiled { schema: schema.clone(), conjuncts, keep });
        }
        Ok(&self.filters[table])
    }
}

/// The top-level columns the optimized query reads of each table it scans (None: all).
fn query_reads(plan: &datafusion::logical_expr::LogicalPlan) -> HashMap<String, Option<Vec<String>>> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::logical_expr::LogicalPlan;
    let mut out: HashMap<String, Option<Vec<String>>> = HashMap::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let schema = scan.source.schema();
            let cols = scan.projection.as_ref().map(|p| p.iter().map(|&i| schema.field(i).name().clone()).collect::<Vec<_>>());
            let entry = out.entry(scan.table_name.table().to_string()).or_insert(Some(Vec::new()));
            match (entry.as_mut(), cols) {
                (Some(have), Some(cols)) => have.extend(cols),
                _ => *entry = None,
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    out
}

/// The filter as physical expressions, one per conjunct, each over only the columns it reads.
/// The logical expression is simplified first, as the planner does for a query (some
/// functions, `coalesce` among them, only run once rewritten), and each conjunct is tried on
/// an empty batch so that a broken filter fails at load.
fn compile_filter(ctx: &SessionContext, schema: &SchemaRef, sql: &str) -> datafusion::common::Result<Vec<Conjunct>> {
    use datafusion::logical_expr::simplify::SimplifyContext;
    use datafusion::logical_expr::utils::split_conjunction_owned;
    use datafusion::optimizer::simplify_expressions::ExprSimplifier;
    use datafusion::physical_expr::utils::{collect_columns, reassign_expr_columns};
    let df = Arc::new(DFSchema::try_from(schema.as_ref().clone())?);
    let expr = ctx.parse_sql_expr(sql, &df)?;
    let expr = ExprSimplifier::new(SimplifyContext::builder().with_schema(df.clone()).build()).simplify(expr)?;
    let mut out = Vec::new();
    for conjunct in split_conjunction_owned(expr) {
        let phys = ctx.create_physical_expr(conjunct, &df)?;
        let mut cols: Vec<usize> = collect_columns(&phys).iter().map(|c| c.index()).collect();
        cols.sort_unstable();
        cols.dedup();
        let projected = Arc::new(schema.project(&cols)?);
        let expr = reassign_expr_columns(phys, &projected)?;
        expr.evaluate(&RecordBatch::new_empty(projected))?;
        let costly = datafusion::common::tree_node::TreeNode::exists(&expr, |e| {
            Ok(e.downcast_ref::<datafusion::physical_expr::ScalarFunctionExpr>().is_some_and(|f| f.name().starts_with("json_") || f.name().starts_with("regexp_")))
        })?;
        out.push(Conjunct { expr, cols, costly });
    }
    // Cheap ones first.
    out.sort_by_key(|c| c.costly);
    Ok(out)
}

/// A table's rows for the run under way. The physical plans read it when they execute, so a
/// plan is made once and executed for every window.
#[derive(Debug)]
struct Slot {
    schema: SchemaRef,
    batches: std::sync::Mutex<Vec<RecordBatch>>,
}

impl Slot {
    fn put(&self, batches: Vec<RecordBatch>) {
        *self.batches.lock().unwrap_or_else(|p| p.into_inner()) = batches;
    }
}

impl PartitionStream for Slot {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _: Arc<TaskContext>) -> SendableRecordBatchStream {
        let batches = self.batches.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Box::pin(MemoryStream::try_new(batches, self.schema.clone(), None).expect("no projection, so no error"))
    }
}

/// A batch with exactly `schema`'s columns: same-named columns of the same type are kept,
/// the rest are null (files written with an older projection read like that).
fn align(batch: &RecordBatch, schema: &SchemaRef) -> RecordBatch {
    if batch.schema() == *schema {
        return batch.clone();
    }
    let cols: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => c.clone(),
            _ => new_null_array(f.data_type(), batch.num_rows()),
        })
        .collect();
    RecordBatch::try_new(schema.clone(), cols).unwrap_or_else(|_| RecordBatch::new_empty(schema.clone()))
}

/// The string value of a result column at a row (for group keys and context).
pub fn text_at(rows: &RecordBatch, name: &str, row: usize) -> Option<String> {
    let c = rows.column_by_name(name)?;
    if c.is_null(row) {
        return None;
    }
    match c.data_type() {
        DataType::Utf8 => Some(c.as_string::<i32>().value(row).to_string()),
        DataType::Utf8View => Some(c.as_string_view().value(row).to_string()),
        _ => arrow::util::display::array_value_to_string(c, row).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray, StructArray};
    use arrow::datatypes::{Field, Fields, Schema};

    fn schema() -> SchemaRef {
        let s = |n: &str| Field::new(n, DataType::Utf8, true);
        Arc::new(Schema::new(vec![
            Field::new("time", DataType::Int64, true),
            Field::new("metadata", DataType::Struct(Fields::from(vec![s("uid")])), true),
            Field::new("api", DataType::Struct(Fields::from(vec![s("operation")])), true),
            s("unmapped"),
        ]))
    }

    fn batch(rows: &[(i64, &str, &str)]) -> RecordBatch {
        let sch = schema();
        let uids: ArrayRef = Arc::new(StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>()));
        let ops: ArrayRef = Arc::new(StringArray::from(rows.iter().map(|r| r.2).collect::<Vec<_>>()));
        let st = |name: &str, a: ArrayRef| Arc::new(StructArray::from(vec![(Arc::new(Field::new(name, DataType::Utf8, true)), a)])) as ArrayRef;
        RecordBatch::try_new(
            sch,
            vec![Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())), st("uid", uids), st("operation", ops), Arc::new(StringArray::from(vec![Some("{}"); rows.len()]))],
        )
        .unwrap()
    }

    fn set(extra: &str) -> SqlSet {
        let rule = format!("-- id: t\n-- title: T\n-- table: api_activity\n-- window: 1m\n-- lateness: 10s\n-- filter: api.operation = 'X'\n{extra}SELECT array_agg(metadata.uid) AS uids, count(*) AS n FROM api_activity\n");
        let s = SqlSet::new(vec![(PathBuf::from("t.sql"), rule)], HashMap::from([("api_activity".to_string(), schema())])).unwrap();
        assert!(s.rejected.is_empty(), "{:?}", s.rejected);
        s
    }

    /// A batch in, then the windows its watermark closes (what the engine does).
    fn step(s: &mut SqlSet, b: &RecordBatch, table: &str, watermark: i64, l: &Linker) -> Vec<Output> {
        let mut out = s.process(b, table, l);
        out.extend(s.advance(watermark, l));
        out
    }

    #[test]
    fn windows_close_on_the_watermark_and_late_events_are_counted() {
        let mut s = set("");
        let l = Linker::default();
        assert!(step(&mut s, &batch(&[(0, "a", "X"), (30_000, "b", "X"), (31_000, "c", "Y")]), "api_activity", 30_000, &l).is_empty(), "window [0, 60s) still open");
        assert_eq!(s.stats(0).kept_rows, 2, "the filter keeps X only");
        // The query reads `metadata` only; summaries and links read `api` and `time` too; nothing
        // reads `unmapped`, which is not kept.
        assert_eq!(s.states[0].reads["api_activity"], Some(vec!["metadata".to_string()]));
        assert_eq!(s.states[0].filters["api_activity"].keep, vec![0, 1, 2]);
        // 75 s - 10 s lateness passes 60 s: the first window runs.
        let out = step(&mut s, &batch(&[(75_000, "d", "X")]), "api_activity", 75_000, &l);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].window_start, out[0].rows.num_rows()), (Some(0), 1));
        assert_eq!(text_at(&out[0].rows, "n", 0).as_deref(), Some("2"));
        // An event for the closed window is late: counted, not put in a wrong window.
        assert!(step(&mut s, &batch(&[(20_000, "e", "X")]), "api_activity", 75_000, &l).is_empty());
        assert_eq!(s.stats(0).late_events, 1);
        // The end of input runs what is open.
        let out = s.advance(i64::MAX, &l);
        assert_eq!((out.len(), out[0].window_start), (1, Some(60_000)));
    }

    #[test]
    fn a_plan_made_once_reads_each_window_afresh() {
        // A join builds a hash table when it runs: the second window must not probe the first's.
        let rule = "-- id: t\n-- title: T\n-- table: api_activity\n-- window: 1m\n-- lateness: 10s\n\
            SELECT array_agg(a.metadata.uid) AS uids, count(*) AS n FROM api_activity a JOIN (SELECT DISTINCT api.operation AS op FROM api_activity) b ON a.api.operation = b.op\n";
        let mut s = SqlSet::new(vec![(PathBuf::from("t.sql"), rule.into())], HashMap::from([("api_activity".to_string(), schema())])).unwrap();
        assert!(s.rejected.is_empty(), "{:?}", s.rejected);
        let l = Linker::default();
        step(&mut s, &batch(&[(0, "a", "X"), (1_000, "b", "Y")]), "api_activity", 0, &l);
        let out = step(&mut s, &batch(&[(60_000, "c", "Z")]), "api_activity", 75_000, &l);
        assert_eq!(out.len(), 1, "the first window ran");
        assert_eq!(text_at(&out[0].rows, "n", 0).as_deref(), Some("2"));
        let out = s.advance(i64::MAX, &l);
        assert_eq!(out.len(), 1, "the second window joined its own rows");
        assert_eq!((out[0].window_start, text_at(&out[0].rows, "n", 0).as_deref()), (Some(60_000), Some("1")));
    }

    #[test]
    fn over_budget_the_oldest_window_runs_early() {
        let mut s = set("-- budget: 1\n");
        let out = step(&mut s, &batch(&[(0, "a", "X")]), "api_activity", 0, &Linker::default());
        assert_eq!(out.len(), 1, "run early rather than grow");
        assert_eq!(s.stats(0).budget_exceeded, 1);
        assert_eq!(s.stats(0).buffered_bytes, 0);
    }

    #[test]
    fn a_rule_that_does_not_plan_is_rejected_with_the_reason() {
        let bad = "-- id: t\n-- title: T\n-- table: api_activity\nSELECT nope AS uid FROM api_activity\n";
        let s = SqlSet::new(vec![(PathBuf::from("bad.sql"), bad.into())], HashMap::from([("api_activity".to_string(), schema())])).unwrap();
        assert!(s.rules.is_empty() && s.rejected[0].1.contains("nope"), "{:?}", s.rejected);
        let no_uids = "-- id: t\n-- title: T\n-- table: api_activity\nSELECT count(*) AS n FROM api_activity\n";
        let s = SqlSet::new(vec![(PathBuf::from("n.sql"), no_uids.into())], HashMap::from([("api_activity".to_string(), schema())])).unwrap();
        assert!(s.rejected[0].1.contains("uids"), "{:?}", s.rejected);
    }
}
