//! Leader completeness: an entry committed in some term is present in the logs of the leaders
//! of all later terms.
//!
//! An entry's own term is not the term it was committed in: a leader of term 5 may commit an
//! entry written in term 1. So each committed entry is recorded with an upper bound of the term
//! it was committed in (the highest term any node had reached when it was first applied), and
//! a leader of term `t` is checked only against entries whose bound is below `t`.

use std::collections::BTreeMap;

use super::EntryId;
use super::Violation;

/// Remembers committed entries; checks each new leader's log against them.
#[derive(Debug, Default, Clone)]
pub struct LeaderCompleteness {
    /// Committed entries by index, each with a bound on the term it was committed in.
    committed: BTreeMap<u64, (EntryId, u64)>,
}

impl LeaderCompleteness {
    /// Records that `entry` is committed (some node applied it) in term `committed_by` or earlier.
    pub fn observe_committed(&mut self, entry: EntryId, committed_by: u64) {
        self.committed
            .entry(entry.index)
            .or_insert((entry, committed_by.max(entry.term)));
    }

    /// Checks a leader of `term`: every entry committed in an earlier term must be in its log,
    /// or covered by its snapshot (indexes up to `compacted`, which holds only committed entries).
    pub fn observe_leader(
        &self,
        node: u64,
        term: u64,
        compacted: Option<u64>,
        log: &BTreeMap<u64, EntryId>,
    ) -> Result<(), Violation> {
        for (entry, _) in self.committed.values().filter(|(_, by)| *by < term) {
            if compacted.is_some_and(|c| entry.index <= c) {
                continue;
            }
            if log.get(&entry.index) != Some(entry) {
                return Err(Violation::new(
                    "leader_completeness",
                    format!(
                        "node {node} leads term {term} without committed entry {entry:?} (it has {:?})",
                        log.get(&entry.index)
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(term: u64, index: u64) -> EntryId {
        EntryId {
            term,
            index,
            digest: index,
        }
    }

    #[test]
    fn a_leader_missing_a_committed_entry_is_caught() {
        let mut c = LeaderCompleteness::default();
        c.observe_committed(e(1, 1), 1);
        c.observe_committed(e(1, 2), 1);
        let full: BTreeMap<_, _> = [(1, e(1, 1)), (2, e(1, 2)), (3, e(2, 3))].into();
        assert!(c.observe_leader(1, 2, None, &full).is_ok());
        let short: BTreeMap<_, _> = [(1, e(1, 1))].into();
        let v = c.observe_leader(2, 3, None, &short).unwrap_err();
        assert_eq!(v.invariant, "leader_completeness");
        // A snapshot covering index 2 makes the short log complete.
        assert!(c.observe_leader(2, 3, Some(2), &short).is_ok());
    }

    #[test]
    fn entries_are_checked_from_the_term_they_were_committed_in() {
        let mut c = LeaderCompleteness::default();
        // Written in term 1, committed by the leader of term 5.
        c.observe_committed(e(1, 4), 5);
        // A stale leader of term 3 (say, restored after a crash) need not hold it…
        let stale: BTreeMap<_, _> = [(4, e(3, 4))].into();
        assert!(c.observe_leader(3, 3, None, &stale).is_ok());
        // …but a leader of term 6 must.
        assert!(c.observe_leader(3, 6, None, &stale).is_err());
    }
}
