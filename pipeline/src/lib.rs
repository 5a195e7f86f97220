//! What runs: the drivers that wire the normalizers (ocelot-normalize), the detectors and the
//! lake (ocelot-lake) together: `ingest` for files and stdin, `detect` for replays, `runtime`
//! for Kafka, `forward` for the findings' targets, and `generate` for load tests.

pub mod detect;
pub mod forward;
pub mod generate;
pub mod ingest;
pub mod runtime;
