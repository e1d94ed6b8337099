//! State-machine safety: no two nodes apply different entries at the same log index.

use std::collections::BTreeMap;

use super::EntryId;
use super::Violation;

/// Remembers the first entry applied at each index, and by whom.
#[derive(Debug, Default, Clone)]
pub struct StateMachineSafety {
    applied: BTreeMap<u64, (u64, EntryId)>,
}

impl StateMachineSafety {
    /// Records that `node` applied `entry`.
    pub fn observe_apply(&mut self, node: u64, entry: EntryId) -> Result<(), Violation> {
        match self.applied.get(&entry.index) {
            Some((first, seen)) if *seen != entry => Err(Violation::new(
                "state_machine_safety",
                format!(
                    "node {first} applied {seen:?} at index {}, node {node} applied {entry:?}",
                    entry.index
                ),
            )),
            Some(_) => Ok(()),
            None => {
                self.applied.insert(entry.index, (node, entry));
                Ok(())
            }
        }
    }

    /// Every entry applied so far, by index.
    pub fn applied(&self) -> impl Iterator<Item = &EntryId> {
        self.applied.values().map(|(_, e)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn different_entries_at_one_index_are_caught() {
        let mut c = StateMachineSafety::default();
        let a = EntryId {
            term: 1,
            index: 1,
            digest: 10,
        };
        assert!(c.observe_apply(1, a).is_ok());
        assert!(c.observe_apply(2, a).is_ok());
        let v = c.observe_apply(3, EntryId { digest: 11, ..a }).unwrap_err();
        assert_eq!(v.invariant, "state_machine_safety");
        assert_eq!(c.applied().count(), 1);
    }
}
