//! Which offsets may be committed: per partition, the contiguous prefix of batches that are
//! durable in every sink.
//!
//! Each sealed batch holds, per partition, a run of offsets ending at `last`. A batch becomes
//! durable as a whole (lake files renamed into place, Kafka produces acknowledged, dead letters
//! stored). Batches may become durable in any order; a partition's commit point only advances
//! over batches that are all durable, so a commit never covers an event that is not.

use std::collections::{BTreeMap, HashMap, VecDeque};

/// A topic partition.
pub type Tp = (String, i32);

#[derive(Default)]
struct Partition {
    /// Batches holding messages of this partition, oldest first: (batch seq, last offset, durable).
    pending: VecDeque<(u64, i64, bool)>,
    /// The next offset to commit (last durable + 1), if it moved past `committed`.
    durable_next: Option<i64>,
    committed_next: Option<i64>,
}

#[derive(Default)]
pub struct OffsetTracker {
    parts: HashMap<Tp, Partition>,
    /// Batch seq -> the partitions it holds.
    batches: BTreeMap<u64, Vec<Tp>>,
}

impl OffsetTracker {
    /// A batch was sealed holding messages up to `last` offset in each of these partitions.
    pub fn sealed(&mut self, seq: u64, lasts: &[(Tp, i64)]) {
        for (tp, last) in lasts {
            self.parts.entry(tp.clone()).or_default().pending.push_back((seq, *last, false));
        }
        self.batches.insert(seq, lasts.iter().map(|(tp, _)| tp.clone()).collect());
    }

    /// The batch is durable in every sink.
    pub fn durable(&mut self, seq: u64) {
        let Some(tps) = self.batches.remove(&seq) else { return };
        for tp in tps {
            let Some(p) = self.parts.get_mut(&tp) else { continue };
            if let Some(e) = p.pending.iter_mut().find(|e| e.0 == seq) {
                e.2 = true;
            }
            while let Some(&(_, last, true)) = p.pending.front() {
                p.durable_next = Some(last + 1);
                p.pending.pop_front();
            }
        }
    }

    /// Offsets (next to read) that may be committed and are not yet.
    pub fn to_commit(&self) -> Vec<(Tp, i64)> {
        let mut out: Vec<(Tp, i64)> = self
            .parts
            .iter()
            .filter_map(|(tp, p)| match (p.durable_next, p.committed_next) {
                (Some(d), Some(c)) if d <= c => None,
                (Some(d), _) => Some((tp.clone(), d)),
                _ => None,
            })
            .collect();
        out.sort();
        out
    }

    /// The broker accepted these commits.
    pub fn committed(&mut self, done: &[(Tp, i64)]) {
        for (tp, next) in done {
            if let Some(p) = self.parts.get_mut(tp) {
                p.committed_next = Some(p.committed_next.map_or(*next, |c| c.max(*next)));
            }
        }
    }

    /// Batches sealed and not yet durable.
    pub fn in_flight(&self) -> usize {
        self.batches.len()
    }

    /// The partition was revoked: forget it (its next owner starts from the committed offset).
    pub fn forget(&mut self, tp: &Tp) {
        self.parts.remove(tp);
        for tps in self.batches.values_mut() {
            tps.retain(|t| t != tp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> Tp {
        ("t".into(), p)
    }

    #[test]
    fn commits_only_the_contiguous_durable_prefix() {
        let mut t = OffsetTracker::default();
        t.sealed(1, &[(tp(0), 9), (tp(1), 4)]);
        t.sealed(2, &[(tp(0), 19)]);
        t.sealed(3, &[(tp(0), 29), (tp(1), 8)]);
        assert!(t.to_commit().is_empty());
        // Batch 2 durable first: partition 0 must still wait for batch 1.
        t.durable(2);
        assert!(t.to_commit().is_empty());
        t.durable(1);
        assert_eq!(t.to_commit(), vec![(tp(0), 20), (tp(1), 5)]);
        t.committed(&t.to_commit());
        assert!(t.to_commit().is_empty());
        assert_eq!(t.in_flight(), 1);
        t.durable(3);
        assert_eq!(t.to_commit(), vec![(tp(0), 30), (tp(1), 9)]);
    }

    #[test]
    fn a_failed_commit_is_offered_again_and_revoked_partitions_are_forgotten() {
        let mut t = OffsetTracker::default();
        t.sealed(1, &[(tp(0), 5), (tp(1), 5)]);
        t.durable(1);
        assert_eq!(t.to_commit().len(), 2);
        // Not marked committed (the commit failed): offered again.
        assert_eq!(t.to_commit().len(), 2);
        t.forget(&tp(1));
        assert_eq!(t.to_commit(), vec![(tp(0), 6)]);
        t.durable(42); // unknown batch: ignored
    }
}
