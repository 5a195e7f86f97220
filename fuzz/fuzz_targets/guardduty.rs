#![no_main]
//! GuardDuty findings: see ../src/lib.rs for what is checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ocelot_fuzz::run("guardduty", data));
