//! `ocelot forward --from-lake`: findings sent again from the lake to the `[[forward]]` targets.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use ocelot_lake::Storage;
use ocelot_pipeline::forward::{config::load_targets, from_lake::from_lake};

pub fn from_lake_cmd(lake: &Storage, config: &Path, since: Option<i64>, until: Option<i64>, json: bool) -> Result<ExitCode> {
    let targets = load_targets(config).map_err(anyhow::Error::msg)?;
    let bar = super::lake::bar("findings files");
    let resent = from_lake(lake, &targets, since, until, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .map_err(anyhow::Error::msg)
    .with_context(|| format!("forwarding the findings of {lake}"))?;
    bar.finish_and_clear();
    if json {
        println!("{}", serde_json::to_string(&resent)?);
    } else {
        let names: Vec<String> = targets.iter().map(|t| t.name()).collect();
        println!("{} findings ({} versions read) sent to {}; {} deliveries dead-lettered", resent.findings, resent.versions, names.join(", "), resent.dead_lettered);
        if resent.dead_lettered > 0 {
            println!("the refused deliveries are in {lake}/_dead_letter/ with the target's reason");
        }
    }
    Ok(if resent.dead_lettered > 0 { ExitCode::from(3) } else { ExitCode::SUCCESS })
}
