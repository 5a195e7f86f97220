//! OCSF JSON output: one event per line, nulls left out, `unmapped` as a JSON object (it is a
//! JSON string inside Arrow batches).

use std::io::{self, Write};

use arrow::array::RecordBatch;

/// Writes every row of `batch` as one OCSF JSON line.
pub fn write_batch(batch: &RecordBatch, out: &mut dyn Write) -> io::Result<()> {
    for row in rows(batch)? {
        serde_json::to_writer(&mut *out, &row)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// The rows of `batch` as OCSF JSON objects.
pub fn rows(batch: &RecordBatch) -> io::Result<Vec<serde_json::Value>> {
    let mut rows = ocelot_schemas::batch_to_json(batch).map_err(io::Error::other)?;
    for row in &mut rows {
        if let Some(u) = row.get_mut("unmapped")
            && let Some(parsed) = u.as_str().and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        {
            *u = parsed;
        }
    }
    Ok(rows)
}
