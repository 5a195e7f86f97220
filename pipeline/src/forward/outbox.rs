//! The durable outbox `ocelot run` forwards from: the lake's manifest log. Findings are made
//! durable in the lake's `findings` table with the batch that caused them (one manifest entry
//! per flush); each `[[forward]]` target follows the log entry by entry with its own cursor,
//! `LAKE/_ocelot/outbox/<target>.json`, moved past an entry only once the target acknowledged
//! (or dead-lettered, for what it refuses for good) every finding the entry added. A crash or a
//! shutdown past its deadline loses nothing: the findings of the entry under way are sent again
//! after the restart (duplicates, which each target's idempotency key, the finding uid, turns
//! into updates).
//!
//! - **A new target** starts at the log's end when it is first seen (its cursor is written at
//!   once); `ocelot forward --from-lake` sends what came before.
//! - **Replicas.** The cursor is also a lease: the replica that wrote it last (`owner`) delivers
//!   and beats it every few seconds; the others stand by and take over once the beat is older
//!   than [`LEASE`]. Two replicas that take over together both send for a moment: duplicates,
//!   never a gap (the cursor only moves past what was acknowledged).
//! - **Compaction.** An entry's file that compaction replaced and deleted before the target got
//!   to it is read from the compaction's output instead (the whole merged file: duplicates).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ocelot_lake::findings::FINDINGS_TABLE;
use ocelot_lake::manifest::{self, Entry, Op};
use ocelot_lake::Storage;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::config::ForwardConfig;
use super::from_lake::read_findings;
use super::{DeadLetters, Forwarders};

/// Where the cursors live, under the lake root.
pub const OUTBOX_DIR: &str = "_ocelot/outbox";
/// A cursor whose owner has not beaten it for this long is taken over.
pub const LEASE: Duration = Duration::from_secs(30);
const BEAT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(200);

/// The next manifest entry each forwarder delivers from the outbox.
pub const OUTBOX_SEQ: &str = "ocelot_forward_outbox_seq";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cursor {
    /// The next manifest entry to deliver.
    next_seq: u64,
    /// The replica delivering (host/pid/random).
    owner: String,
    /// When the owner last wrote it (ms since the epoch).
    beat_ms: i64,
}

/// Every target's delivery thread.
pub struct Outbox {
    feeds: Vec<JoinHandle<()>>,
    /// Set once the input is over: each target delivers up to the log's end, then stops.
    finishing: Arc<AtomicBool>,
}

impl Outbox {
    /// Starts one delivery thread per target. `give_up` (the shutdown deadline) stops them
    /// where they are, cursors unmoved.
    pub fn start(lake: &Storage, targets: &[ForwardConfig], dead: DeadLetters, give_up: Arc<AtomicBool>) -> Result<Outbox, String> {
        let finishing = Arc::new(AtomicBool::new(false));
        let mut feeds = Vec::new();
        for cfg in targets {
            let forwarders = Forwarders::start_with(std::slice::from_ref(cfg), dead.clone(), true)?;
            let feed = Feed { name: cfg.name(), lake: lake.clone(), forwarders, me: manifest::writer_id(), give_up: give_up.clone(), finishing: finishing.clone() };
            let h = std::thread::Builder::new().name(format!("forward-{}", cfg.name())).spawn(move || feed.run()).map_err(|e| e.to_string())?;
            feeds.push(h);
        }
        Ok(Outbox { feeds, finishing })
    }

    /// The input is over: the threads deliver what the log holds, then end (or stop at the
    /// deadline). Returns them to join.
    pub fn finish(self) -> Vec<JoinHandle<()>> {
        self.finishing.store(true, Ordering::Relaxed);
        self.feeds
    }
}

struct Feed {
    name: String,
    lake: Storage,
    forwarders: Forwarders,
    me: String,
    give_up: Arc<AtomicBool>,
    finishing: Arc<AtomicBool>,
}

impl Feed {
    fn path(&self) -> String {
        let file: String = self.name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
        format!("{OUTBOX_DIR}/{file}.json")
    }

    fn run(self) {
        let mut last_beat: Option<Instant> = None;
        let mut standing_by = false;
        while !self.give_up.load(Ordering::Relaxed) {
            let next = match self.claim(&mut last_beat) {
                Ok(Some(next)) => {
                    if standing_by {
                        tracing::info!(forwarder = %self.name, next, "outbox: took over delivery");
                        standing_by = false;
                    }
                    next
                }
                Ok(None) => {
                    // Another replica delivers.
                    standing_by = true;
                    if self.finishing.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
                Err(e) => {
                    tracing::warn!(forwarder = %self.name, error = %e, "outbox: cursor unreadable; trying again");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            let entry = match manifest::read_entry(&self.lake, next) {
                Ok(Some(e)) => e,
                Ok(None) if self.finishing.load(Ordering::Relaxed) => break,
                Ok(None) => {
                    std::thread::sleep(POLL);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(forwarder = %self.name, seq = next, error = %e, "outbox: manifest entry unreadable; trying again");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            let findings = match self.findings_of(&entry) {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(forwarder = %self.name, seq = next, error = %e, "outbox: findings unreadable; trying again");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            if !findings.is_empty() && !self.deliver(findings, next, &mut last_beat) {
                break;
            }
            if let Err(e) = self.write(next + 1) {
                tracing::warn!(forwarder = %self.name, error = %e, "outbox: cursor not written; the entry may be sent again");
            }
            last_beat = Some(Instant::now());
            metrics::gauge!(OUTBOX_SEQ, "forwarder" => self.name.clone()).set((next + 1) as f64);
        }
        let Feed { forwarders, give_up, .. } = self;
        forwarders.close(&give_up);
    }

    /// Queues the findings and waits until the target is done with each; false if the
    /// deadline came first (the cursor stays: they are sent again after the restart).
    fn deliver(&self, findings: Vec<Value>, seq: u64, last_beat: &mut Option<Instant>) -> bool {
        let base = self.forwarders.done();
        let queued = self.forwarders.submit(findings, &self.give_up);
        while self.forwarders.done() < base + queued {
            if self.give_up.load(Ordering::Relaxed) {
                return false;
            }
            // A slow target keeps the lease: the cursor is beaten, not moved.
            if last_beat.is_none_or(|t| t.elapsed() >= BEAT) {
                if let Err(e) = self.write(seq) {
                    tracing::warn!(forwarder = %self.name, error = %e, "outbox: lease not renewed");
                }
                *last_beat = Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// The entry to deliver next, if this replica delivers: its own cursor, a stale one taken
    /// over, or (no cursor yet) the log's end.
    fn claim(&self, last_beat: &mut Option<Instant>) -> Result<Option<u64>, String> {
        let cursor: Option<Cursor> = match self.lake.read(&self.path()).map_err(|e| e.to_string())? {
            Some(b) => Some(serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", self.path()))?),
            None => None,
        };
        let next = match cursor {
            Some(c) if c.owner != self.me && ocelot_normalize::time::now_ms().saturating_sub(c.beat_ms) < LEASE.as_millis() as i64 => return Ok(None),
            Some(c) if c.owner == self.me && last_beat.is_some_and(|t| t.elapsed() < BEAT) => return Ok(Some(c.next_seq)),
            Some(c) => c.next_seq,
            None => {
                let head = manifest::Manifest::load(&self.lake).map_err(|e| e.to_string())?.head().map_or(0, |(s, _)| s + 1);
                tracing::info!(forwarder = %self.name, next = head, "outbox: new target, starting at the lake's end (`ocelot forward --from-lake` sends what came before)");
                head
            }
        };
        self.write(next)?;
        *last_beat = Some(Instant::now());
        Ok(Some(next))
    }

    fn write(&self, next_seq: u64) -> Result<(), String> {
        let c = Cursor { next_seq, owner: self.me.clone(), beat_ms: ocelot_normalize::time::now_ms() };
        let bytes = serde_json::to_vec(&c).map_err(|e| e.to_string())?;
        self.lake.put(&self.path(), &bytes).map(|_| ()).map_err(|e| format!("{}: {e}", self.path()))
    }

    /// The findings an entry added (none for entries of other tables, compactions, adoptions).
    fn findings_of(&self, entry: &Entry) -> Result<Vec<Value>, String> {
        if entry.op != Op::Append {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for f in entry.add.iter().filter(|f| is_findings_file(&f.path)) {
            match read_findings(&self.lake, &f.path)? {
                Some(rows) => out.extend(rows),
                None => out.extend(self.replaced(&f.path, entry.seq)?),
            }
        }
        Ok(out)
    }

    /// The findings of the compaction output that replaced `path` (deleted since).
    fn replaced(&self, path: &str, after: u64) -> Result<Vec<Value>, String> {
        let mut seq = after + 1;
        while let Some(e) = manifest::read_entry(&self.lake, seq).map_err(|e| e.to_string())? {
            if e.remove.iter().any(|r| r == path) {
                tracing::warn!(forwarder = %self.name, file = path, "outbox: file compacted away before delivery; sending the merged file (duplicates)");
                let mut out = Vec::new();
                for f in e.add.iter().filter(|f| is_findings_file(&f.path)) {
                    match read_findings(&self.lake, &f.path)? {
                        Some(rows) => out.extend(rows),
                        // Compacted again since.
                        None => out.extend(self.replaced(&f.path, e.seq)?),
                    }
                }
                return Ok(out);
            }
            seq += 1;
        }
        tracing::error!(forwarder = %self.name, file = path, "outbox: findings file missing and not replaced by a compaction (run `ocelot lake verify`); skipped");
        Ok(Vec::new())
    }
}

fn is_findings_file(path: &str) -> bool {
    path.strip_prefix(FINDINGS_TABLE).is_some_and(|r| r.starts_with('/')) && path.ends_with(".parquet")
}
