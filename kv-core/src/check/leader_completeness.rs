//! Leader completeness: an entry committed in some term is present in the logs of the leaders
//! of all later terms.

use std::collections::BTreeMap;

use super::EntryId;
use super::Violation;

/// Remembers committed entries; checks each new leader's log against them.
#[derive(Debug, Default, Clone)]
pub struct LeaderCompleteness {
    committed: BTreeMap<u64, EntryId>,
}

impl LeaderCompleteness {
    /// Records that `entry` is committed (some node applied it).
    pub fn observe_committed(&mut self, entry: EntryId) {
        self.committed.entry(entry.index).or_insert(entry);
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
        for entry in self.committed.values().filter(|e| e.term < term) {
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
        c.observe_committed(e(1, 1));
        c.observe_committed(e(1, 2));
        let full: BTreeMap<_, _> = [(1, e(1, 1)), (2, e(1, 2)), (3, e(2, 3))].into();
        assert!(c.observe_leader(1, 2, None, &full).is_ok());
        let short: BTreeMap<_, _> = [(1, e(1, 1))].into();
        let v = c.observe_leader(2, 3, None, &short).unwrap_err();
        assert_eq!(v.invariant, "leader_completeness");
        // A snapshot covering index 2 makes the short log complete.
        assert!(c.observe_leader(2, 3, Some(2), &short).is_ok());
    }
}
