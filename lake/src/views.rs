//! Views analysts want at once, registered in every SQL session over the lake (`ocelot sql`,
//! `ocelot serve`). Each is a plain SQL file beside this one, documented in its header and in
//! docs/sql.md, so an analyst can read what it does and copy it into their own query.

use std::sync::Arc;

use datafusion::datasource::ViewTable;
use datafusion::error::Result;
use datafusion::prelude::SessionContext;

/// (name, query).
pub const VIEWS: &[(&str, &str)] = &[("agent_mutations", include_str!("views/agent_mutations.sql"))];

/// Registers the views (before any read-only restriction applies to the session).
pub async fn register(ctx: &SessionContext) -> Result<()> {
    for (name, sql) in VIEWS {
        let plan = ctx.state().create_logical_plan(sql).await?;
        ctx.register_table(*name, Arc::new(ViewTable::new(plan, Some(sql.to_string()))))?;
    }
    Ok(())
}
