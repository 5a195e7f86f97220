#![no_main]
//! CloudTrail records and their envelopes (S3 delivery files, CloudWatch Logs subscriptions, EventBridge, gzip): see ../src/lib.rs for what is checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ocelot_fuzz::run("cloudtrail", data));
