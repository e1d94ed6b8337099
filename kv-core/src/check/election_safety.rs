//! Election safety: at most one leader is elected in a given term.

use std::collections::BTreeMap;

use super::Violation;

/// Remembers the leader of every term seen; a second leader in a term is a violation.
#[derive(Debug, Default, Clone)]
pub struct ElectionSafety {
    leader_of_term: BTreeMap<u64, u64>,
}

impl ElectionSafety {
    /// Records that `node` acted as leader in `term`.
    pub fn observe_leader(&mut self, term: u64, node: u64) -> Result<(), Violation> {
        match self.leader_of_term.insert(term, node) {
            Some(other) if other != node => Err(Violation::new(
                "election_safety",
                format!("term {term} has two leaders: node {other} and node {node}"),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_leader_per_term() {
        let mut c = ElectionSafety::default();
        assert!(c.observe_leader(1, 1).is_ok());
        assert!(c.observe_leader(1, 1).is_ok());
        assert!(c.observe_leader(2, 3).is_ok());
        let v = c.observe_leader(1, 2).unwrap_err();
        assert_eq!(v.invariant, "election_safety");
        assert!(v.detail.contains("term 1"), "{v}");
    }
}
