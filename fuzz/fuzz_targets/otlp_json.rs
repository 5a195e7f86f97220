#![no_main]
//! OpenTelemetry OTLP/JSON spans and log records (GenAI and MCP conventions), through the `agent` normalizer: see ../src/lib.rs for what is checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ocelot_fuzz::run("agent", data));
