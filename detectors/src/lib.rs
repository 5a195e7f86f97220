//! Ocelot's detection engine: SQL (DataFusion) and pattern/Sigma detectors over OCSF Arrow
//! batches, emitting OCSF Detection Findings. Not built yet; the crate holds its place in the
//! one-way dependency chain `schemas <- detectors <- pipeline <- ocelot`.
