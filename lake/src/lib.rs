//! The Parquet lake: OCSF batches as zstd Parquet, one directory per class, partitioned like
//! Amazon Security Lake (`<class>/region=<r>/accountId=<a>/eventDay=<YYYYMMDD>/`), with a
//! dead-letter store beside it (`_dead_letter/`), and SQL over both. Which files make up the
//! lake is the manifest's to say (`_ocelot/manifest/`, [`manifest`]): writers record each file
//! there, readers read the files it lists, compaction swaps small files for large ones in it.
//!
//! Everything `ocelot serve` needs is here (the SQL session, views, `[lake]` and `[sql]`
//! config), and nothing of Kafka or the AWS SDK.

mod atomic;
pub mod compact;
pub mod config;
pub mod dead_letter;
pub mod findings;
pub mod manifest;
pub mod query;
pub mod security_lake;
pub mod snapshot;
pub mod sparse;
pub mod storage;
pub mod views;
pub mod writer;

pub use compact::{compact, CompactOptions, CompactStats};
pub use dead_letter::DeadLetterStore;
pub use manifest::{verify, Manifest};
pub use snapshot::Snapshot;
pub use storage::{S3Options, Storage};
pub use writer::{LakeWriter, WriterOptions};

/// The name of the dead-letter directory under the lake root.
pub const DEAD_LETTER_DIR: &str = "_dead_letter";
