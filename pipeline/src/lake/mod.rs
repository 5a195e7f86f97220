//! The Parquet lake: OCSF batches as zstd Parquet, one directory per class, partitioned like
//! Amazon Security Lake (`<class>/region=<r>/accountId=<a>/eventDay=<YYYYMMDD>/`), with a
//! dead-letter store beside it (`_dead_letter/`), and SQL over both.

mod atomic;
pub mod dead_letter;
pub mod query;
pub mod views;
pub mod writer;

pub use dead_letter::DeadLetterStore;
pub use writer::{LakeWriter, WriterOptions};

/// The name of the dead-letter directory under the lake root.
pub const DEAD_LETTER_DIR: &str = "_dead_letter";
