//! Queries as the server runs them: read-only, each with its own memory pool and a deadline.
//!
//! Each query gets a session of its own over the lake (tables as the lake holds them now, views,
//! functions) with a memory pool of `query_memory_mb` and no spill directory, so a query that
//! needs more fails with "Resources exhausted" instead of taking the server's memory or disk.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::GreedyMemoryPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{DataFrame, SQLOptions, SessionContext};
use futures::{Stream, StreamExt};
use ocelot_lake::{query, Storage};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

pub type BatchStream = Pin<Box<dyn Stream<Item = Result<RecordBatch, Status>> + Send>>;

pub struct Limits {
    pub timeout: Duration,
    pub memory_bytes: usize,
    pub concurrent: usize,
}

pub struct Engine {
    lake: Storage,
    limits: Limits,
    running: Arc<Semaphore>,
}

impl Engine {
    pub async fn new(lake: &Storage, limits: Limits) -> Result<Engine, DataFusionError> {
        // Fails now, not at the first query, if the lake cannot be read.
        query::session(lake).await?;
        let running = Arc::new(Semaphore::new(limits.concurrent));
        Ok(Engine { lake: lake.clone(), limits, running })
    }

    /// The tables and views: (name, kind, schema).
    pub async fn tables(&self) -> Result<Vec<(String, String, SchemaRef)>, Status> {
        let ctx = self.query_session().await?;
        let schema = ctx.catalog("datafusion").and_then(|c| c.schema("public")).ok_or_else(|| Status::internal("no public schema"))?;
        let mut out = Vec::new();
        for name in schema.table_names() {
            if let Some(t) = schema.table(&name).await.map_err(internal)? {
                let kind = if t.table_type() == datafusion::datasource::TableType::View { "VIEW" } else { "TABLE" };
                out.push((name, kind.to_string(), t.schema()));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Plans `sql` (nothing runs yet): its result schema, or why it is refused.
    pub async fn plan(&self, sql: &str) -> Result<DataFrame, Status> {
        let ctx = self.query_session().await?;
        let planned = tokio::time::timeout(self.limits.timeout, async {
            let plan = ctx.state().create_logical_plan(sql).await.map_err(invalid)?;
            read_only().verify_plan(&plan).map_err(|e| Status::permission_denied(format!("read-only server: only SELECT, EXPLAIN, DESCRIBE and SHOW run here ({e})")))?;
            let df = ctx.execute_logical_plan(plan).await.map_err(invalid)?;
            query::athena_names(df).map_err(invalid)
        });
        planned.await.map_err(|_| self.timed_out())?
    }

    /// Runs `sql`: its batches as they come, cut off at the deadline. Waits for a free slot
    /// first (at most `max_concurrent_queries` run at once); the wait counts in the deadline.
    pub async fn run(&self, sql: &str) -> Result<(SchemaRef, BatchStream), Status> {
        let deadline = tokio::time::Instant::now() + self.limits.timeout;
        let permit = tokio::time::timeout_at(deadline, self.running.clone().acquire_owned()).await.map_err(|_| self.timed_out())?.map_err(internal)?;
        let df = tokio::time::timeout_at(deadline, self.plan(sql)).await.map_err(|_| self.timed_out())??;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = tokio::time::timeout_at(deadline, df.execute_stream()).await.map_err(|_| self.timed_out())?.map_err(exec_error)?;
        let state = Running { batches, deadline: Box::pin(tokio::time::sleep_until(deadline)), cut_off: Some(self.timed_out()), _permit: permit };
        let stream = futures::stream::unfold(state, |mut s| async move {
            // After an error or the deadline, the stream ends.
            let cut_off = s.cut_off.take()?;
            tokio::select! {
                _ = &mut s.deadline => Some((Err(cut_off), s)),
                next = s.batches.next() => match next {
                    None => None,
                    Some(Ok(b)) => {
                        s.cut_off = Some(cut_off);
                        Some((Ok(b), s))
                    }
                    Some(Err(e)) => Some((Err(exec_error(e)), s)),
                },
            }
        });
        Ok((schema, Box::pin(stream)))
    }

    async fn query_session(&self) -> Result<SessionContext, Status> {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(GreedyMemoryPool::new(self.limits.memory_bytes)))
            .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled))
            .build_arc()
            .map_err(internal)?;
        query::session_with_runtime(&self.lake, Some(runtime)).await.map_err(internal)
    }

    fn timed_out(&self) -> Status {
        Status::deadline_exceeded(format!("the query ran longer than sql.query_timeout_secs ({} s) and was cancelled", self.limits.timeout.as_secs()))
    }
}

/// A running query: dropping it (end, error, deadline, client gone) stops DataFusion's tasks
/// and frees its slot.
struct Running {
    batches: datafusion::physical_plan::SendableRecordBatchStream,
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// The error the deadline gives; taken once the stream has ended.
    cut_off: Option<Status>,
    _permit: OwnedSemaphorePermit,
}

/// SELECT, EXPLAIN, DESCRIBE, SHOW: no DDL (CREATE EXTERNAL TABLE, views), no DML (INSERT,
/// COPY), no statements (SET, transactions). File paths as tables are not enabled in the
/// session, so nothing outside the lake can be read.
fn read_only() -> SQLOptions {
    SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false)
}

fn invalid(e: DataFusionError) -> Status {
    Status::invalid_argument(e.to_string())
}

fn exec_error(e: DataFusionError) -> Status {
    match e.find_root() {
        DataFusionError::ResourcesExhausted(_) => Status::resource_exhausted(format!("the query needs more memory than sql.query_memory_mb allows: {e}")),
        _ => Status::internal(e.to_string()),
    }
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn engine(timeout_ms: u64, memory_mb: usize) -> (tempfile::TempDir, Engine) {
        let lake = tempfile::tempdir().unwrap();
        let e = Engine::new(&lake.path().into(), Limits { timeout: Duration::from_millis(timeout_ms), memory_bytes: memory_mb << 20, concurrent: 1 }).await.unwrap();
        (lake, e)
    }

    async fn drain(e: &Engine, sql: &str) -> Result<usize, Status> {
        let (_, mut s) = e.run(sql).await?;
        let mut rows = 0;
        while let Some(b) = s.next().await {
            rows += b?.num_rows();
        }
        Ok(rows)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn limits_cut_queries_off_and_the_engine_goes_on() {
        let (_lake, e) = engine(30_000, 16).await;
        let err = drain(&e, "SELECT x, repeat(CAST(x AS VARCHAR), 2000) AS s FROM generate_series(1, 100000) AS t(x) ORDER BY s DESC, x").await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err}");
        assert_eq!(drain(&e, "SELECT 1").await.unwrap(), 1);
        let (_lake, e) = engine(500, 64).await;
        let started = std::time::Instant::now();
        let err = drain(&e, "SELECT count(*) FROM generate_series(1, 100000000000) AS t(x)").await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::DeadlineExceeded, "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
        // The slot of the cut-off query is free again.
        assert_eq!(drain(&e, "SELECT 1").await.unwrap(), 1);
    }

    #[tokio::test]
    async fn only_reads_are_planned() {
        let (_lake, e) = engine(30_000, 64).await;
        for sql in ["CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'", "COPY (SELECT 1) TO '/tmp/x.csv'", "SET datafusion.execution.batch_size = 1", "DROP VIEW agent_mutations"] {
            let Err(err) = e.plan(sql).await else { panic!("{sql}: planned") };
            assert_eq!(err.code(), tonic::Code::PermissionDenied, "{sql}: {err}");
        }
        for sql in ["SELECT 1", "EXPLAIN SELECT * FROM api_activity", "SHOW TABLES", "DESCRIBE findings", "SELECT * FROM agent_mutations"] {
            e.plan(sql).await.unwrap_or_else(|err| panic!("{sql}: {err}"));
        }
    }
}
