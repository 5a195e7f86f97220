//! Ocelot's pipeline: decoders, normalizers, the Parquet lake and SQL over it, and the
//! drivers that wire them (`ingest` for files and stdin, `runtime` for Kafka).

pub mod classes;
pub mod decode;
pub mod detect;
pub mod findings;
pub mod forward;
pub mod generate;
pub mod ingest;
pub mod json;
pub mod lake;
pub mod normalize;
pub mod ocsf_json;
pub mod runtime;
