#![no_main]
//! MCP JSON-RPC messages, bare or in Ocelot's envelope, through the `agent` normalizer: see ../src/lib.rs for what is checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ocelot_fuzz::run("agent", data));
