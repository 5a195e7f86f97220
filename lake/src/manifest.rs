//! The lake's manifest: the list of files that make up the lake, as a hash-chained log of
//! commits. It is the commit protocol (what Ocelot's readers see) and the tamper evidence.
//!
//! `LAKE/_ocelot/manifest/<seq, 20 digits>.json` holds one commit: the files it adds (path,
//! SHA-256, size, rows), the files it removes (a compaction's inputs), and `prev`, the SHA-256
//! of the previous entry's bytes (entry 0: 64 zeros), as CloudTrail's digest files chain.
//!
//! - **Atomic for readers.** Ocelot's readers (`ocelot sql`, `serve`, `detect --lake`) read
//!   the files the manifest lists, never the directory listing; a commit is one new entry, so
//!   a compaction's swap of many small files for one large one is seen whole or not at all.
//! - **Many writers.** An entry is created only if its sequence number is free (a hard link on
//!   disk, which fails on an existing name); the loser re-reads what it missed and tries the
//!   next number. A compaction whose inputs another commit removed in the meantime gives up
//!   (so two compactors never both replace the same files).
//! - **Crash-safe.** A file is written whole (temp + rename) before its entry; a crash between
//!   the two leaves a file no entry lists: readers ignore it and [`Manifest::clean`] deletes it
//!   once older than the grace period. A compaction's inputs are deleted only after the entry
//!   that replaced them (and `retain` later, so a query planned before the swap can finish).
//! - **Checkpoints.** Every [`CHECKPOINT_EVERY`] entries, the live set is written beside the
//!   log (`<seq>.checkpoint.json`) so opening the lake does not replay its whole history;
//!   `ocelot lake verify` still walks the chain from entry 0.

use std::collections::BTreeMap;
use std::io;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::atomic::hex;
use super::storage::{is_temporary, Listed, Storage, Written};

/// Where the manifest lives, under the lake root.
pub const MANIFEST_DIR: &str = "_ocelot/manifest";
/// The lake's own bookkeeping directory (never data).
pub const META_DIR: &str = "_ocelot";
const META_PREFIX: &str = "_ocelot/";
/// A checkpoint of the live set every this many entries.
pub const CHECKPOINT_EVERY: u64 = 256;
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One file of the lake as the manifest records it; `path` is relative to the lake root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rows: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// New data (a flush of the writer, dead letters, findings).
    Append,
    /// Small files of a partition replaced by larger ones.
    Compact,
    /// Files found in a lake written before it had a manifest, taken in as they were.
    Adopt,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    /// SHA-256 of the previous entry's bytes.
    pub prev: String,
    /// When it was committed (RFC 3339).
    pub time: String,
    /// Which process committed it (host/pid/random).
    pub writer: String,
    pub op: Op,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<FileEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Checkpoint {
    seq: u64,
    hash: String,
    live: Vec<FileEntry>,
    /// Files removed and maybe not yet deleted, with the time of the entry that removed them.
    removed: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("lake manifest: {0}")]
    Io(#[from] io::Error),
    #[error("lake manifest: entry {seq} is unreadable ({why}); run `ocelot lake verify` on the lake")]
    Corrupt { seq: u64, why: String },
    /// Another commit removed a file this one meant to replace.
    #[error("lake manifest: {0} was already replaced by another commit")]
    Conflict(String),
}

impl From<CommitError> for io::Error {
    fn from(e: CommitError) -> io::Error {
        match e {
            CommitError::Io(e) => e,
            e => io::Error::other(e.to_string()),
        }
    }
}

/// The manifest as one process sees it: the last entry it read, and the live set.
pub struct Manifest {
    storage: Storage,
    writer: String,
    head: Option<(u64, String)>,
    live: BTreeMap<String, FileEntry>,
    removed: BTreeMap<String, SystemTime>,
}

impl Manifest {
    /// Reads the manifest of the lake (an empty one if the lake has none).
    pub fn load(storage: &Storage) -> Result<Manifest, CommitError> {
        let mut m = Manifest { storage: storage.clone(), writer: writer_id(), head: None, live: BTreeMap::new(), removed: BTreeMap::new() };
        if let Some(cp) = latest_checkpoint(storage)? {
            m.head = Some((cp.seq, cp.hash));
            m.live = cp.live.into_iter().map(|f| (f.path.clone(), f)).collect();
            m.removed = cp.removed.into_iter().map(|(p, t)| (p, parse_time(&t))).collect();
        }
        m.refresh()?;
        Ok(m)
    }

    /// Opens the lake for writing: reads the manifest and, for a lake written before it had
    /// one, takes in the files already there (an `adopt` entry), so none disappears from
    /// Ocelot's readers.
    pub fn open(storage: &Storage) -> Result<Manifest, CommitError> {
        let mut m = Manifest::load(storage)?;
        if m.head.is_none() {
            // Entry 0 is written even for an empty lake, before the opener writes anything: a
            // writer that starts later then finds a manifest and adopts nothing, so no file of
            // a live writer can be adopted before that writer records it (and, compacted
            // meanwhile, come back when it does).
            let mut add = Vec::new();
            for f in data_files(storage)? {
                let Some(sha256) = storage.sha256(&f.rel)? else { continue };
                add.push(FileEntry { path: f.rel, sha256, bytes: f.bytes, rows: 0 });
            }
            if !add.is_empty() {
                tracing::info!(files = add.len(), lake = %storage, "the lake had no manifest: its files are recorded as they are");
            }
            m.commit_checked(Op::Adopt, add, Vec::new(), |m| m.head.is_none())?;
        }
        Ok(m)
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The files Ocelot's readers see, by path relative to the root.
    pub fn live(&self) -> &BTreeMap<String, FileEntry> {
        &self.live
    }

    /// The last entry read: its sequence number and hash (the chain's head).
    pub fn head(&self) -> Option<(u64, &str)> {
        self.head.as_ref().map(|(s, h)| (*s, h.as_str()))
    }

    /// Reads the entries other processes committed since the last read.
    pub fn refresh(&mut self) -> Result<Vec<Entry>, CommitError> {
        let mut read = Vec::new();
        loop {
            let seq = self.head.as_ref().map_or(0, |(s, _)| s + 1);
            let Some(bytes) = self.storage.read(&entry_path(seq))? else { return Ok(read) };
            let entry: Entry = serde_json::from_slice(&bytes).map_err(|e| CommitError::Corrupt { seq, why: e.to_string() })?;
            let expected = self.head.as_ref().map_or(GENESIS, |(_, h)| h.as_str());
            if entry.seq != seq || entry.prev != expected {
                return Err(CommitError::Corrupt { seq, why: "it does not follow the entry before it".into() });
            }
            self.apply(&entry);
            self.head = Some((seq, sha256(&bytes)));
            read.push(entry);
        }
    }

    fn apply(&mut self, e: &Entry) {
        let t = parse_time(&e.time);
        for p in &e.remove {
            self.live.remove(p);
            self.removed.insert(p.clone(), t);
        }
        for f in &e.add {
            self.live.insert(f.path.clone(), f.clone());
        }
    }

    /// Records new files (already durable on disk). When it returns, they are part of the lake.
    pub fn commit_files(&mut self, op: Op, files: &[(Written, u64)]) -> Result<u64, CommitError> {
        let add = files.iter().map(|(w, rows)| FileEntry { path: w.rel.clone(), sha256: w.sha256.clone(), bytes: w.bytes, rows: *rows }).collect();
        self.commit_checked(op, add, Vec::new(), |_| true)
    }

    /// Replaces `remove` with `add` in one entry, unless another commit removed any of
    /// `remove` first ([`CommitError::Conflict`]).
    pub fn commit_replace(&mut self, add: Vec<FileEntry>, remove: Vec<String>) -> Result<u64, CommitError> {
        self.refresh()?;
        if let Some(gone) = remove.iter().find(|p| !self.live.contains_key(*p)) {
            return Err(CommitError::Conflict(gone.clone()));
        }
        self.commit_checked(Op::Compact, add, remove, |_| true)
    }

    /// Commits an entry; `still_valid` is asked again whenever another process committed first.
    fn commit_checked(&mut self, op: Op, add: Vec<FileEntry>, remove: Vec<String>, still_valid: impl Fn(&Manifest) -> bool) -> Result<u64, CommitError> {
        loop {
            let (seq, prev) = match &self.head {
                Some((s, h)) => (s + 1, h.clone()),
                None => (0, GENESIS.to_string()),
            };
            let entry = Entry { seq, prev, time: now_rfc3339(), writer: self.writer.clone(), op, add: add.clone(), remove: remove.clone() };
            let bytes = serde_json::to_vec(&entry).map_err(io::Error::other)?;
            if self.storage.create_new(&entry_path(seq), &bytes)? {
                self.apply(&entry);
                self.head = Some((seq, sha256(&bytes)));
                if seq % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1 {
                    // A failed checkpoint costs only a longer replay next time.
                    if let Err(e) = self.checkpoint() {
                        tracing::warn!(error = %e, "lake manifest: checkpoint not written");
                    }
                }
                return Ok(seq);
            }
            // Someone else took `seq`: catch up, and check our change still makes sense.
            self.refresh()?;
            if let Some(gone) = remove.iter().find(|p| !self.live.contains_key(*p)) {
                return Err(CommitError::Conflict(gone.clone()));
            }
            if !still_valid(self) {
                return Ok(self.head.as_ref().map_or(0, |(s, _)| *s));
            }
        }
    }

    fn checkpoint(&self) -> io::Result<()> {
        let Some((seq, hash)) = &self.head else { return Ok(()) };
        let cp = Checkpoint {
            seq: *seq,
            hash: hash.clone(),
            live: self.live.values().cloned().collect(),
            removed: self.removed.iter().map(|(p, t)| (p.clone(), chrono::DateTime::<chrono::Utc>::from(*t).to_rfc3339())).collect(),
        };
        self.storage.create_new(&format!("{MANIFEST_DIR}/{seq:020}.checkpoint.json"), &serde_json::to_vec(&cp).map_err(io::Error::other)?).map(|_| ())
    }

    /// Removes what crashes and compactions left behind: temporaries and files no entry lists
    /// once older than `grace` (a live writer commits its files within moments), and files a
    /// compaction replaced once `retain` has passed since. Returns the number deleted.
    pub fn clean(&mut self, grace: Duration, retain: Duration) -> io::Result<usize> {
        self.refresh()?;
        let now = SystemTime::now();
        let old = |t: SystemTime, d: Duration| now.duration_since(t).is_ok_and(|age| age >= d);
        let mut deleted = 0;
        for f in self.storage.list("")?.into_iter().filter(|f| !f.rel.starts_with(META_PREFIX) || is_temporary(&f.rel)) {
            let rel = &f.rel;
            let delete = if f.hidden {
                is_temporary(rel) && old(f.modified, grace)
            } else if self.live.contains_key(rel) {
                false
            } else if let Some(t) = self.removed.get(rel) {
                old(*t, retain)
            } else {
                old(f.modified, grace)
            };
            if delete && self.storage.delete(rel)? {
                deleted += 1;
                self.removed.remove(rel);
            }
        }
        // Forget removals whose files are gone (deleted here or by another process).
        let gone: Vec<String> = self.removed.keys().filter(|rel| !self.storage.exists(rel).unwrap_or(true)).cloned().collect();
        for rel in gone {
            self.removed.remove(&rel);
        }
        Ok(deleted)
    }

    /// Deletes replaced files whose `retain` time has passed (without walking the lake).
    pub fn delete_replaced(&mut self, retain: Duration) -> usize {
        let now = SystemTime::now();
        let due: Vec<String> = self.removed.iter().filter(|(_, t)| now.duration_since(**t).is_ok_and(|a| a >= retain)).map(|(p, _)| p.clone()).collect();
        let mut n = 0;
        for rel in due {
            match self.storage.delete(&rel) {
                Ok(true) => n += 1,
                Ok(false) => {}
                Err(_) => continue,
            }
            self.removed.remove(&rel);
        }
        n
    }
}

/// What `ocelot lake verify` found.
#[derive(Debug, Default, Serialize)]
pub struct Verification {
    pub entries: u64,
    pub head: Option<String>,
    pub live_files: usize,
    pub live_bytes: u64,
    /// Replaced by a compaction, deleted later: not a problem.
    pub awaiting_deletion: usize,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// The chain is broken at `seq`: an entry missing, edited, or out of order.
    BrokenChain { seq: u64, why: String },
    /// A committed file is gone.
    Removed { path: String },
    /// A committed file's bytes differ from what was committed.
    Changed { path: String, expected: String, found: String },
    /// A file no entry lists (added outside Ocelot, or left by a write that never committed).
    Added { path: String },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::BrokenChain { seq, why } => write!(f, "broken chain at entry {seq}: {why}"),
            Problem::Removed { path } => write!(f, "removed outside Ocelot: {path}"),
            Problem::Changed { path, expected, found } => write!(f, "changed outside Ocelot: {path} (sha256 {found}, committed {expected})"),
            Problem::Added { path } => write!(f, "added outside Ocelot (no manifest entry lists it): {path}"),
        }
    }
}

/// Walks the whole chain from entry 0 and compares the lake's files with it: every file
/// hashed. `progress` is told each file checked (for a progress bar).
pub fn verify(storage: &Storage, progress: &dyn Fn(u64, u64)) -> io::Result<Verification> {
    let mut v = Verification::default();
    let mut seqs: Vec<u64> = Vec::new();
    for f in storage.list(MANIFEST_DIR)? {
        let name = f.rel.rsplit('/').next().unwrap_or_default();
        if let Some(n) = name.strip_suffix(".json").filter(|n| n.len() == 20 && n.bytes().all(|b| b.is_ascii_digit())) {
            seqs.push(n.parse().unwrap_or(u64::MAX));
        }
    }
    seqs.sort_unstable();
    let mut m = Manifest { storage: storage.clone(), writer: String::new(), head: None, live: BTreeMap::new(), removed: BTreeMap::new() };
    let mut prev = GENESIS.to_string();
    for (i, seq) in seqs.iter().enumerate() {
        let expected_seq = i as u64;
        if *seq != expected_seq {
            v.problems.push(Problem::BrokenChain { seq: expected_seq, why: format!("entry {expected_seq} is missing (the next one is {seq})") });
            break;
        }
        let Some(bytes) = storage.read(&entry_path(*seq))? else {
            v.problems.push(Problem::BrokenChain { seq: *seq, why: "it vanished while being read".into() });
            break;
        };
        let entry: Entry = match serde_json::from_slice(&bytes) {
            Ok(e) => e,
            Err(e) => {
                v.problems.push(Problem::BrokenChain { seq: *seq, why: format!("unreadable: {e}") });
                break;
            }
        };
        if entry.seq != *seq {
            v.problems.push(Problem::BrokenChain { seq: *seq, why: format!("it says it is entry {}", entry.seq) });
            break;
        }
        if entry.prev != prev {
            v.problems.push(Problem::BrokenChain { seq: *seq, why: "its `prev` is not the hash of the entry before it (that entry, or this one, was edited)".into() });
            break;
        }
        prev = sha256(&bytes);
        m.apply(&entry);
        v.entries += 1;
    }
    v.head = (v.entries > 0).then(|| prev.clone());
    let files = data_files(storage)?;
    let on_disk: std::collections::HashSet<&str> = files.iter().map(|f| f.rel.as_str()).collect();
    let total = m.live.len() as u64;
    for (i, (rel, f)) in m.live.iter().enumerate() {
        progress(i as u64 + 1, total);
        v.live_files += 1;
        v.live_bytes += f.bytes;
        if !on_disk.contains(rel.as_str()) {
            v.problems.push(Problem::Removed { path: rel.clone() });
            continue;
        }
        match storage.sha256(rel)? {
            Some(found) if found != f.sha256 => v.problems.push(Problem::Changed { path: rel.clone(), expected: f.sha256.clone(), found }),
            Some(_) => {}
            None => v.problems.push(Problem::Removed { path: rel.clone() }),
        }
    }
    for f in &files {
        if m.live.contains_key(&f.rel) {
            continue;
        }
        if m.removed.contains_key(&f.rel) {
            v.awaiting_deletion += 1;
        } else {
            v.problems.push(Problem::Added { path: f.rel.clone() });
        }
    }
    Ok(v)
}

/// Entry `seq` as committed, or None when there is none yet (the log's readers that follow it
/// entry by entry: the forwarders' outbox).
pub fn read_entry(storage: &Storage, seq: u64) -> Result<Option<Entry>, CommitError> {
    let Some(bytes) = storage.read(&entry_path(seq))? else { return Ok(None) };
    let entry: Entry = serde_json::from_slice(&bytes).map_err(|e| CommitError::Corrupt { seq, why: e.to_string() })?;
    Ok(Some(entry))
}

fn entry_path(seq: u64) -> String {
    format!("{MANIFEST_DIR}/{seq:020}.json")
}

fn latest_checkpoint(storage: &Storage) -> Result<Option<Checkpoint>, CommitError> {
    let mut best: Option<(u64, String)> = None;
    for f in storage.list(MANIFEST_DIR)? {
        let Some(n) = f.rel.rsplit('/').next().and_then(|n| n.strip_suffix(".checkpoint.json")) else { continue };
        let Ok(seq) = n.parse::<u64>() else { continue };
        if best.as_ref().is_none_or(|(s, _)| seq > *s) {
            best = Some((seq, f.rel.clone()));
        }
    }
    let Some((seq, rel)) = best else { return Ok(None) };
    let Some(bytes) = storage.read(&rel)? else { return Ok(None) };
    let cp: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| CommitError::Corrupt { seq, why: format!("checkpoint: {e}") })?;
    Ok(Some(cp))
}

/// The lake's data files: every file but hidden ones and the manifest's.
pub fn data_files(storage: &Storage) -> io::Result<Vec<Listed>> {
    Ok(storage.list("")?.into_iter().filter(|f| !f.hidden && !f.rel.starts_with(META_PREFIX)).collect())
}

fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn parse_time(s: &str) -> SystemTime {
    chrono::DateTime::parse_from_rfc3339(s).map(SystemTime::from).unwrap_or(SystemTime::UNIX_EPOCH)
}

/// `host/pid/random`: names the committing process in each entry (for people reading the log;
/// uniqueness comes from the sequence numbers, not from this).
/// Who writes: host/pid/random, distinct for every process.
pub fn writer_id() -> String {
    let host = std::env::var("HOSTNAME").ok().or_else(|| std::fs::read_to_string("/etc/hostname").ok()).map(|h| h.trim().to_string()).unwrap_or_default();
    format!("{host}/{}/{:08x}", std::process::id(), rand::random::<u32>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn put(root: &Path, rel: &str, body: &[u8]) -> Written {
        Storage::from(root).put(rel, body).unwrap()
    }

    #[test]
    fn two_writers_share_one_chain() {
        let d = tempfile::tempdir().unwrap();
        let s = Storage::from(d.path());
        let mut a = Manifest::open(&s).unwrap();
        let mut b = Manifest::open(&s).unwrap();
        let fa = put(d.path(), "t/x/a.parquet", b"a");
        let fb = put(d.path(), "t/x/b.parquet", b"b");
        // Entry 0: `a` opened the lake (an empty adoption); `b` found it and adopted nothing.
        assert_eq!(a.commit_files(Op::Append, &[(fa, 1)]).unwrap(), 1);
        // b has not read entry 1: its commit lands as entry 2, after catching up.
        assert_eq!(b.commit_files(Op::Append, &[(fb, 1)]).unwrap(), 2);
        assert_eq!(b.live().len(), 2);
        let v = verify(&s, &|_, _| {}).unwrap();
        assert_eq!((v.entries, v.live_files, v.problems.len()), (3, 2, 0), "{:?}", v.problems);
    }

    #[test]
    fn a_compaction_whose_inputs_are_gone_gives_up() {
        let d = tempfile::tempdir().unwrap();
        let s = Storage::from(d.path());
        let mut a = Manifest::open(&s).unwrap();
        let f = put(d.path(), "t/x/a.parquet", b"a");
        a.commit_files(Op::Append, &[(f, 1)]).unwrap();
        let mut b = Manifest::load(&s).unwrap();
        let big = |n: &str| FileEntry { path: format!("t/x/{n}"), sha256: String::new(), bytes: 1, rows: 1 };
        a.commit_replace(vec![big("c1.parquet")], vec!["t/x/a.parquet".into()]).unwrap();
        let e = b.commit_replace(vec![big("c2.parquet")], vec!["t/x/a.parquet".into()]).unwrap_err();
        assert!(matches!(e, CommitError::Conflict(_)), "{e}");
        assert_eq!(b.live().keys().collect::<Vec<_>>(), vec!["t/x/c1.parquet"]);
    }

    #[test]
    fn checkpoints_shorten_the_replay_and_keep_the_state() {
        let d = tempfile::tempdir().unwrap();
        let s = Storage::from(d.path());
        let mut a = Manifest::open(&s).unwrap();
        for i in 0..CHECKPOINT_EVERY + 3 {
            let f = put(d.path(), &format!("t/x/{i}.parquet"), b"x");
            a.commit_files(Op::Append, &[(f, 1)]).unwrap();
        }
        assert!(d.path().join(MANIFEST_DIR).join(format!("{:020}.checkpoint.json", CHECKPOINT_EVERY - 1)).exists());
        let b = Manifest::load(&s).unwrap();
        assert_eq!(b.live(), a.live());
        assert_eq!(b.head(), a.head());
    }

    #[test]
    fn a_lake_without_a_manifest_is_adopted() {
        let d = tempfile::tempdir().unwrap();
        put(d.path(), "t/x/old.parquet", b"old");
        let s = Storage::from(d.path());
        let m = Manifest::open(&s).unwrap();
        assert!(m.live().contains_key("t/x/old.parquet"));
        assert!(verify(&s, &|_, _| {}).unwrap().problems.is_empty());
    }

    #[test]
    fn clean_removes_leftovers_but_not_live_files() {
        let d = tempfile::tempdir().unwrap();
        let s = Storage::from(d.path());
        let mut m = Manifest::open(&s).unwrap();
        let f = put(d.path(), "t/x/live.parquet", b"l");
        m.commit_files(Op::Append, &[(f, 1)]).unwrap();
        put(d.path(), "t/x/orphan.parquet", b"o");
        std::fs::write(d.path().join("t/x/.half.parquet.tmp"), b"h").unwrap();
        assert_eq!(m.clean(Duration::from_secs(3600), Duration::ZERO).unwrap(), 0, "young leftovers may belong to a live writer");
        assert_eq!(m.clean(Duration::ZERO, Duration::ZERO).unwrap(), 2);
        assert!(d.path().join("t/x/live.parquet").exists());
    }
}
