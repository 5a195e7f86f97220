//! Detection on several replicas (`[detect] route_topic`): Kafka routes the events, not us.
//!
//! ```text
//!  input topics ─> ingest (group G) ─> lake
//!                        └─> route_topic, partition = hash(detection key) ─> detect (group G.detect)
//!                                                                            └─> lake `findings`
//! ```
//! The ingest stage writes each sealed batch to the lake, then produces its rows, as Arrow IPC,
//! to the route topic, on the partition of each row's detection key, before its input offsets
//! are committed. The detect stage of every replica reads the route topic as one consumer group,
//! so all the events of one key reach one engine, whichever replica read them from the input.
//! It commits the route topic's offsets once the findings of what it read are in the lake.
//!
//! The detection key ([`partitions`]): every row of an AI agent (agent telemetry, and CloudTrail
//! records the agent registry attributes to an agent) is keyed `agents`, so an agent's tool
//! calls, decisions and cloud calls meet in one linker; every other row by its AWS account
//! (`cloud.account.uid`), which holds its principal (rules group by principal within an
//! account); rows without an account by `-`. What this cannot see across replicas: a rule that
//! counts across accounts in one window, and the link of a tool call to a cloud call made with
//! credentials the registry does not attribute to an agent (docs/config.md).

use std::collections::HashMap;

use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use ocelot_detectors::fields::column;

/// The key every agent row shares.
pub const AGENTS: &str = "agents";

/// The partition of each row of `batch`: that of its detection key.
pub fn partitions(batch: &RecordBatch, partitions: i32) -> Vec<i32> {
    let app = column(batch, "actor.app_name");
    let account = column(batch, "cloud.account.uid");
    let text = |c: &Option<arrow::array::ArrayRef>, r: usize| c.as_ref().and_then(|c| c.as_string_opt::<i32>()).filter(|s| s.is_valid(r)).map(|s| partition_of(s.value(r), partitions));
    let agents = partition_of(AGENTS, partitions);
    let none = partition_of("-", partitions);
    let agent_rows = ocelot_detectors::fields::ai_operation_rows(batch);
    (0..batch.num_rows()).map(|r| if agent_rows[r] || text(&app, r).is_some() { agents } else { text(&account, r).unwrap_or(none) }).collect()
}

/// The partition of a key: FNV-1a, the same in every process and version (a replica that hashed
/// differently would split a key's events).
pub fn partition_of(key: &str, partitions: i32) -> i32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % partitions.max(1) as u64) as i32
}

/// The rows of `batch` by partition of their key (partitions without rows left out).
pub fn split(batch: &RecordBatch, partitions: i32) -> Result<Vec<(i32, RecordBatch)>, arrow::error::ArrowError> {
    let mut rows: HashMap<i32, Vec<u32>> = HashMap::new();
    for (r, p) in self::partitions(batch, partitions).into_iter().enumerate() {
        rows.entry(p).or_default().push(r as u32);
    }
    let mut out = Vec::with_capacity(rows.len());
    for (p, idx) in rows {
        let b = if idx.len() == batch.num_rows() { batch.clone() } else { take_record_batch(batch, &UInt32Array::from(idx))? };
        out.push((p, b));
    }
    out.sort_by_key(|(p, _)| *p);
    Ok(out)
}

/// A batch as an Arrow IPC stream (the route topic's payload), its buffers LZ4-compressed:
/// OCSF rows compress several times over, and the route topic holds a horizon of them
/// (`docs/config.md`, Replicas). LZ4 rather than zstd: the encoding runs on the sink thread,
/// which sets the ingest rate.
pub fn encode(batch: &RecordBatch) -> Result<Vec<u8>, arrow::error::ArrowError> {
    use arrow::ipc::writer::{IpcWriteOptions, StreamWriter};
    let options = IpcWriteOptions::default().try_with_compression(Some(arrow::ipc::CompressionType::LZ4_FRAME))?;
    let mut out = Vec::new();
    let mut w = StreamWriter::try_new_with_options(&mut out, &batch.schema(), options)?;
    w.write(batch)?;
    w.finish()?;
    drop(w);
    Ok(out)
}

/// The largest route message: below the 1 MiB Kafka brokers take by default
/// (`message.max.bytes`), which larger messages broke (refused, and dead-lettered instead of
/// detected: found measuring a routed run on librdkafka's mock cluster).
pub const MAX_MESSAGE_BYTES: usize = 900_000;

/// A batch as Arrow IPC streams of at most `max` bytes each (halved until they fit; a single row
/// larger than that is encoded alone).
pub fn encode_within(batch: &RecordBatch, max: usize) -> Vec<Result<Vec<u8>, arrow::error::ArrowError>> {
    match encode(batch) {
        Ok(bytes) if bytes.len() > max && batch.num_rows() > 1 => {
            let half = batch.num_rows() / 2;
            let mut out = encode_within(&batch.slice(0, half), max);
            out.extend(encode_within(&batch.slice(half, batch.num_rows() - half), max));
            out
        }
        r => vec![r],
    }
}

/// The batches of an Arrow IPC stream.
pub fn decode(bytes: &[u8]) -> Result<Vec<RecordBatch>, arrow::error::ArrowError> {
    check_lengths(bytes)?;
    arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)?.collect()
}

/// Refuses a stream whose messages claim more bytes than it has: the IPC reader allocates what
/// a length prefix says before reading, so a few bytes of junk on the route topic asked for
/// gigabytes (found by a test that wrote junk there: the detect stage stalled filling them).
fn check_lengths(bytes: &[u8]) -> Result<(), arrow::error::ArrowError> {
    use arrow::error::ArrowError::IpcError;
    let word = |at: usize| bytes.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let mut at = 0;
    loop {
        let Some(mut len) = word(at) else { return Err(IpcError(format!("stream ends at byte {at} without its end marker"))) };
        at += 4;
        if len == u32::MAX {
            // The continuation marker, then the length.
            len = word(at).ok_or_else(|| IpcError(format!("stream ends at byte {at} inside a message length")))?;
            at += 4;
        }
        if len == 0 {
            return Ok(());
        }
        let meta = bytes.get(at..at + len as usize).ok_or_else(|| IpcError(format!("message at byte {at} claims {len} bytes of metadata; {} are left", bytes.len() - at)))?;
        let body = arrow::ipc::root_as_message(meta).map_err(|e| IpcError(format!("message at byte {at}: {e}")))?.bodyLength();
        at += len as usize;
        match usize::try_from(body) {
            Ok(body) if body <= bytes.len() - at => at += body,
            _ => return Err(IpcError(format!("message at byte {at} claims a body of {body} bytes; {} are left", bytes.len() - at))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_batches_are_encoded_in_messages_below_the_limit() {
        // Values that do not compress (the buffers are LZ4-compressed).
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut word = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            format!("{x:016x}")
        };
        let values: arrow::array::StringArray = (0..5_000).map(|_| Some((0..25).map(|_| word()).collect::<String>())).collect();
        let batch = RecordBatch::try_from_iter([("v", std::sync::Arc::new(values) as arrow::array::ArrayRef)]).unwrap();
        let parts: Vec<Vec<u8>> = encode_within(&batch, 100_000).into_iter().map(Result::unwrap).collect();
        assert!(parts.len() > 1 && parts.iter().all(|p| p.len() <= 100_000), "{:?}", parts.iter().map(Vec::len).collect::<Vec<_>>());
        let rows: usize = parts.iter().flat_map(|p| decode(p).unwrap()).map(|b| b.num_rows()).sum();
        assert_eq!(rows, 5_000);
    }

    #[test]
    fn junk_and_cut_streams_are_refused_without_allocating_what_they_claim() {
        let batch = RecordBatch::try_from_iter([("v", std::sync::Arc::new(arrow::array::Int64Array::from(vec![1, 2, 3])) as arrow::array::ArrayRef)]).unwrap();
        let good = encode(&batch).unwrap();
        assert_eq!(decode(&good).unwrap()[0].num_rows(), 3);
        for bad in [vec![1u8; 100_000], vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], good[..good.len() - 9].to_vec(), Vec::new()] {
            assert!(decode(&bad).is_err(), "{} bytes", bad.len());
        }
    }

    #[test]
    fn a_key_always_lands_on_the_same_partition() {
        // Fixed values: a change here would split keys between replicas of two versions.
        assert_eq!(partition_of("agents", 8), partition_of("agents", 8));
        assert_eq!(partition_of("", 8), (0xcbf2_9ce4_8422_2325u64 % 8) as i32);
        let spread: std::collections::BTreeSet<i32> = (0..200).map(|i| partition_of(&format!("{:012}", 100_000_000_000u64 + i), 8)).collect();
        assert_eq!(spread.len(), 8, "account ids spread over every partition");
    }
}
