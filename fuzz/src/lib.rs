//! What every fuzz target checks: raw bytes through the decoder (gzip, JSON Lines, envelopes)
//! into one source's normalizer, as `ocelot normalize --source KIND` reads a file. Unguarded on
//! purpose (the product catches a normalizer's panic per record; the fuzzer must see it), and
//! with the normalizer's promises asserted: a record it refuses leaves nothing behind, and the
//! rows it buffered make valid batches that render as OCSF JSON.

use std::cell::RefCell;
use std::sync::Arc;

use ocelot_normalize::decode::{DeadLetter, Decoder, Limits, Origin, RecordSink};
use ocelot_normalize::Normalizer;
use simd_json::BorrowedValue;

struct Sink {
    normalizer: Box<dyn Normalizer>,
}

impl RecordSink for Sink {
    fn record(&mut self, value: &BorrowedValue<'_>, origin: &Origin) -> Result<(), String> {
        let before = self.normalizer.buffered_rows();
        let r = self.normalizer.append(value, origin);
        if r.is_err() {
            assert_eq!(self.normalizer.buffered_rows(), before, "a refused record left rows behind");
        }
        r
    }

    fn dead_letter(&mut self, letter: DeadLetter) {
        assert!(!letter.reason.is_empty(), "a dead letter without a reason");
    }
}

thread_local! {
    // Built once per target (column handles are resolved at construction); reused across
    // inputs, as a long run reuses it across records.
    static SINKS: RefCell<Vec<(&'static str, Sink)>> = const { RefCell::new(Vec::new()) };
}

/// Decodes and normalizes `data` as source `kind` (`cloudtrail`, `waf`, `securityhub`,
/// `guardduty`, `shield`, `agent`).
pub fn run(kind: &'static str, data: &[u8]) {
    SINKS.with_borrow_mut(|sinks| {
        if !sinks.iter().any(|(k, _)| *k == kind) {
            sinks.push((kind, Sink { normalizer: ocelot_normalize::by_kind(kind).expect("a shipped source kind") }));
        }
        let sink = &mut sinks.iter_mut().find(|(k, _)| *k == kind).expect("just added").1;
        // Small caps: the fuzzer's inputs are small, and a bomb must stop at the cap.
        let mut decoder = Decoder::new(Limits { max_event_bytes: 1 << 16, max_decompressed_bytes: 1 << 20 });
        decoder.decode(data, &Arc::from("fuzz"), sink);
        let rows = sink.normalizer.buffered_rows();
        let batches = sink.normalizer.take_batches().expect("buffered rows make batches");
        assert_eq!(batches.iter().map(|b| b.batch.num_rows()).sum::<usize>(), rows, "rows buffered != rows taken");
        for b in &batches {
            let json = ocelot_normalize::ocsf_json::rows(&b.batch).expect("batches render as OCSF JSON");
            assert_eq!(json.len(), b.batch.num_rows());
        }
    });
}
