//! Log matching: if two logs hold an entry with the same index and term, they are identical in
//! all entries up to and including that index.

use std::collections::BTreeMap;

use super::EntryId;
use super::Violation;

/// Checks every pair of logs (each a map from index to entry, purged prefixes absent).
pub fn check(logs: &BTreeMap<u64, BTreeMap<u64, EntryId>>) -> Result<(), Violation> {
    let nodes: Vec<_> = logs.iter().collect();
    for (i, (a, log_a)) in nodes.iter().enumerate() {
        for (b, log_b) in &nodes[i + 1..] {
            check_pair(**a, log_a, **b, log_b)?;
        }
    }
    Ok(())
}

fn check_pair(a: u64, log_a: &BTreeMap<u64, EntryId>, b: u64, log_b: &BTreeMap<u64, EntryId>) -> Result<(), Violation> {
    // Walk down from the highest index both hold; once a matching (index, term) is found,
    // everything both hold below it must be identical.
    let mut matched: Option<u64> = None;
    for (index, ea) in log_a.iter().rev() {
        let Some(eb) = log_b.get(index) else { continue };
        match matched {
            None if ea.term == eb.term => {
                if ea != eb {
                    return Err(mismatch(a, b, ea, eb, "same term, different contents"));
                }
                matched = Some(*index);
            }
            None => {}
            Some(upto) if ea != eb => {
                return Err(mismatch(
                    a,
                    b,
                    ea,
                    eb,
                    &format!("logs match at index {upto} but differ below it"),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn mismatch(a: u64, b: u64, ea: &EntryId, eb: &EntryId, why: &str) -> Violation {
    Violation::new(
        "log_matching",
        format!("node {a} has {ea:?}, node {b} has {eb:?}: {why}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(entries: &[(u64, u64)]) -> BTreeMap<u64, EntryId> {
        entries
            .iter()
            .map(|&(index, term)| {
                (
                    index,
                    EntryId {
                        term,
                        index,
                        digest: term * 100 + index,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn diverging_suffixes_are_fine_but_a_diverging_prefix_is_not() {
        let mut logs = BTreeMap::new();
        logs.insert(1, log(&[(1, 1), (2, 1), (3, 2)]));
        logs.insert(2, log(&[(1, 1), (2, 1), (3, 3), (4, 3)]));
        logs.insert(3, log(&[(2, 1)]));
        assert!(check(&logs).is_ok());
        // Node 4 matches node 1 at index 3 (term 2) but differs at index 1.
        logs.insert(4, log(&[(1, 5), (2, 1), (3, 2)]));
        let v = check(&logs).unwrap_err();
        assert_eq!(v.invariant, "log_matching");
    }

    #[test]
    fn same_index_and_term_with_different_payload_is_caught() {
        let mut logs = BTreeMap::new();
        logs.insert(1, log(&[(1, 1)]));
        let mut other = log(&[(1, 1)]);
        other.get_mut(&1).unwrap().digest = 7;
        logs.insert(2, other);
        assert!(check(&logs).unwrap_err().detail.contains("different contents"));
    }
}
