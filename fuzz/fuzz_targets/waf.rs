#![no_main]
//! AWS WAF logs: see ../src/lib.rs for what is checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ocelot_fuzz::run("waf", data));
