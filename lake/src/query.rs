//! SQL over the lake with DataFusion. Every class Ocelot writes is a table named after the
//! class (`api_activity`, `authentication`, `account_change`), with the class's projection as
//! its schema (so files written with an older, narrower projection read as null where they
//! lack a column) and the partition columns `region`, `accountId`, `eventDay` from the path.

use std::sync::Arc;

use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{DataFrame, Expr, SessionContext};

use super::snapshot::{Snapshot, SnapshotStore};
use super::storage::Storage;
use ocelot_normalize::classes::{class_and_projection, WRITTEN_CLASSES};

/// Partition columns, as in Amazon Security Lake's layout.
pub const PARTITION_COLUMNS: &[&str] = &["region", "accountId", "eventDay"];

/// A DataFusion session with the lake's tables registered.
pub async fn session(lake: &Storage) -> Result<SessionContext> {
    session_with_runtime(lake, None).await
}

/// The same, with a runtime of its own (a memory pool, no spilling: the Flight SQL server's
/// per-query limits). Tables are registered from what the lake holds now, so a class that gets
/// its first data later appears in the next session.
pub async fn session_with_runtime(lake: &Storage, runtime: Option<Arc<RuntimeEnv>>) -> Result<SessionContext> {
    // The detectors' settings and functions (`is_mutation`...), so a rule's query runs as is.
    // No statistics collected at planning: it reads and converts every file's footer before the
    // scan reads them again, 60-80% of a GROUP BY over an organization trail's ~900 files
    // (benches/lake_org.py); row groups are still pruned by their statistics during the scan.
    let config = ocelot_detectors::sql::session_config().with_collect_statistics(false);
    let mut ctx = ocelot_detectors::sql::session(config);
    if let Some(rt) = runtime {
        ctx = SessionContext::new_with_state(SessionStateBuilder::new_from_existing(ctx.state()).with_runtime_env(rt).build());
    }
    // Tables read the files of one manifest snapshot (a compaction's swap is seen whole or not
    // at all), through the local store narrowed to them.
    let snapshot = Snapshot::take(lake)?;
    let has_files: std::collections::HashSet<String> = snapshot.files.iter().filter_map(|f| f.split('/').next()).map(str::to_string).collect();
    let store = Arc::new(SnapshotStore::new(snapshot)?);
    let mut registered = false;
    // The engine's findings (`findings`) have the Detection Finding schema.
    for table in WRITTEN_CLASSES.iter().copied().chain([crate::findings::FINDINGS_TABLE]) {
        let (_, schema) = class_and_projection(crate::findings::class_of(table)).map_err(|e| DataFusionError::External(Box::new(e)))?;
        if has_files.contains(table) {
            let url = ListingTableUrl::parse(lake.url_of_dir(table)?)?;
            if !registered {
                ctx.register_object_store(url.object_store().as_ref(), store.clone());
                registered = true;
            }
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet")
                .with_table_partition_cols(PARTITION_COLUMNS.iter().map(|c| (c.to_string(), arrow::datatypes::DataType::Utf8)).collect());
            let config = ListingTableConfig::new(url).with_listing_options(options).with_schema(schema);
            ctx.register_table(table, Arc::new(ListingTable::try_new(config)?))?;
        } else {
            // An empty table, so queries over a class with no data yet still plan and answer.
            let mut fields: Vec<_> = schema.fields().iter().cloned().collect();
            fields.extend(PARTITION_COLUMNS.iter().map(|c| Arc::new(arrow::datatypes::Field::new(*c, arrow::datatypes::DataType::Utf8, true))));
            let schema = Arc::new(arrow::datatypes::Schema::new(fields));
            ctx.register_table(table, Arc::new(MemTable::try_new(schema, vec![vec![]])?))?;
        }
    }
    super::views::register(&ctx).await?;
    Ok(ctx)
}

/// Names result columns as Athena (Trino) and DuckDB do: an unaliased nested field
/// `actor.user.name` is the column `name`, where DataFusion would say `api_activity.actor[user][name]`.
/// Queries written for Security Lake then give the same column names here.
pub fn athena_names(df: DataFrame) -> Result<DataFrame> {
    let renames: Vec<Expr> = df
        .schema()
        .columns()
        .into_iter()
        .map(|c| {
            let name = nested_leaf(&c.name).map(str::to_string);
            let e = Expr::Column(c);
            match name {
                Some(n) => e.alias(n),
                None => e,
            }
        })
        .collect();
    if renames.iter().all(|e| matches!(e, Expr::Column(_))) {
        return Ok(df);
    }
    df.select(renames)
}

/// `actor[user][name]` -> `name` (DataFusion's name of a nested field access).
fn nested_leaf(name: &str) -> Option<&str> {
    let inner = name.strip_suffix(']')?;
    let leaf = &inner[inner.rfind('[')? + 1..];
    (!leaf.is_empty() && leaf.chars().all(|c| c.is_alphanumeric() || c == '_')).then_some(leaf)
}

#[cfg(test)]
mod tests {
    use super::nested_leaf;

    #[test]
    fn a_nested_field_is_named_by_its_leaf() {
        assert_eq!(nested_leaf("actor[user][name]"), Some("name"));
        assert_eq!(nested_leaf("src_endpoint[ip]"), Some("ip"));
        assert_eq!(nested_leaf("count(*)"), None);
        assert_eq!(nested_leaf("operation"), None);
    }
}
