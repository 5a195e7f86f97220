#![no_main]
//! Shield Advanced attacks and events: see ../src/lib.rs for what is checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ocelot_fuzz::run("shield", data));
