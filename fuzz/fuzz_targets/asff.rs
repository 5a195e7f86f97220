#![no_main]
//! Security Hub findings (ASFF): see ../src/lib.rs for what is checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ocelot_fuzz::run("securityhub", data));
