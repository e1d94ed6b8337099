//! The checkers. Every one comes to a verdict: an undecided register history is an anomaly
//! too, never a pass.
//!
//! | workload | checked |
//! |---|---|
//! | registers | per key, linearizability of GET / SET / CAS, including the final reads (so no acknowledged write is missing), with `kv_core::check::linearizability`; `Unknown` counts as an anomaly |
//! | counter | acknowledged ≤ final ≤ acknowledged + unknown; acknowledged INCR answers are distinct and none above the final value |
//! | appends | every read is a list of tokens that were attempted and not refused, with none twice; reads of a key are prefixes of one another; a read holds every token acknowledged before it was invoked; the final read holds every acknowledged token exactly once |
//! | replicas | after the final heal every member holds the same keys and values |

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::collections::HashSet;

use kv_core::check::linearizability;
use kv_core::check::linearizability::Limits;
use kv_core::check::linearizability::Verdict;
use serde::Serialize;

use crate::history::Call;
use crate::history::Op;
use crate::history::Outcome;
use crate::history::Ret;
use crate::workload::COUNTER_KEY;

/// One anomaly.
#[derive(Debug, Clone, Serialize)]
pub struct Anomaly {
    /// Which check.
    pub kind: &'static str,
    /// The key it is about, if one.
    pub key: Option<String>,
    /// What is wrong.
    pub detail: String,
    /// Indices (into the history) of the operations involved.
    pub ops: Vec<usize>,
}

/// Limits of the linearizability search: generous, since an undecided key is an anomaly.
pub const LIMITS: Limits = Limits {
    max_ops_per_key: 4_096,
    max_steps_per_key: 5_000_000,
};

/// Register keys start with `r`.
fn is_register(key: &str) -> bool {
    key.starts_with('r')
}

/// Append keys start with `a`.
fn is_append(key: &str) -> bool {
    key.starts_with('a')
}

/// Per-key linearizability of the register operations of `ops`.
pub fn registers(ops: &[Op]) -> Vec<Anomaly> {
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, op) in ops.iter().enumerate() {
        if is_register(&op.key) {
            by_key.entry(&op.key).or_default().push(index);
        }
    }
    let mut anomalies = Vec::new();
    for (key, indices) in by_key {
        let mut mapped = Vec::new();
        let mut origin = Vec::new();
        for &index in &indices {
            if let Some(op) = to_linearizability(&ops[index]) {
                mapped.push(op);
                origin.push(index);
            }
        }
        match linearizability::check_with_limits(&mapped, &LIMITS) {
            Verdict::Linearizable => {}
            Verdict::Violation {
                ops: culprits, reason, ..
            } => anomalies.push(Anomaly {
                kind: "register-not-linearizable",
                key: Some(key.to_string()),
                detail: renumber(&reason, &origin),
                ops: culprits.iter().map(|&i| origin[i]).collect(),
            }),
            Verdict::Unknown { reason, .. } => anomalies.push(Anomaly {
                kind: "register-undecided",
                key: Some(key.to_string()),
                detail: reason,
                ops: origin,
            }),
        }
    }
    anomalies
}

/// The checker numbers a key's operations from 0 and lists them at the end; says the history
/// index of the operation it names instead, and drops the list (the anomaly carries it).
fn renumber(reason: &str, origin: &[usize]) -> String {
    let reason = reason.split(" (ops [").next().unwrap_or(reason);
    let Some(rest) = reason.strip_prefix("op #") else {
        return reason.to_string();
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    match digits.parse::<usize>().ok().and_then(|i| origin.get(i)) {
        Some(index) => format!("op #{index}{}", &rest[digits.len()..]),
        None => reason.to_string(),
    }
}

fn to_linearizability(op: &Op) -> Option<linearizability::Operation> {
    use linearizability::Call as L;
    use linearizability::Outcome as O;
    use linearizability::Ret as R;
    let bytes = |s: &String| s.as_bytes().to_vec();
    let call = match &op.call {
        Call::Read => L::Get,
        Call::Write(v) => L::Put(bytes(v)),
        Call::Cas { expected, new } => L::Cas {
            expected: expected.as_ref().map(bytes),
            new: Some(bytes(new)),
        },
        Call::Incr | Call::Append(_) => return None,
    };
    let outcome = match &op.outcome {
        Outcome::Ok(ret) => O::Returned {
            at: op.completed_ns,
            ret: match ret {
                Ret::Read(v) => R::Get(v.as_ref().map(bytes)),
                Ret::Write => R::Put,
                Ret::Cas(swapped) => R::Cas { swapped: *swapped },
                Ret::Incr(_) | Ret::Append(_) => return None,
            },
        },
        Outcome::Fail(_) => return None,
        Outcome::Info(_) => O::Unknown,
    };
    Some(linearizability::Operation {
        client: op.process,
        key: op.key.as_bytes().to_vec(),
        call,
        invoked_at: op.invoked_ns,
        outcome,
    })
}

/// Counts of the counter workload, for the summary.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CounterFigures {
    /// INCRs acknowledged.
    pub acknowledged: u64,
    /// INCRs of unknown outcome.
    pub unknown: u64,
    /// The final value read.
    pub final_value: Option<i64>,
}

/// The counter: `final_value` is the value read after the heal (`None`: absent).
pub fn counter(ops: &[Op], final_value: Option<i64>) -> (CounterFigures, Vec<Anomaly>) {
    let mut figures = CounterFigures {
        final_value,
        ..CounterFigures::default()
    };
    let mut anomalies = Vec::new();
    let mut answers: HashMap<i64, usize> = HashMap::new();
    let anomaly = |detail: String, ops: Vec<usize>| Anomaly {
        kind: "counter",
        key: Some(COUNTER_KEY.to_string()),
        detail,
        ops,
    };
    let value = final_value.unwrap_or(0);
    for (index, op) in ops.iter().enumerate() {
        if op.call != Call::Incr {
            continue;
        }
        match &op.outcome {
            Outcome::Ok(Ret::Incr(n)) => {
                figures.acknowledged += 1;
                if let Some(other) = answers.insert(*n, index) {
                    anomalies.push(anomaly(
                        format!("two acknowledged INCRs both answered {n}"),
                        vec![other, index],
                    ));
                }
                if *n > value {
                    anomalies.push(anomaly(
                        format!("an INCR answered {n}, above the final value {value}"),
                        vec![index],
                    ));
                }
            }
            Outcome::Info(_) => figures.unknown += 1,
            _ => {}
        }
    }
    let (low, high) = (
        figures.acknowledged as i64,
        (figures.acknowledged + figures.unknown) as i64,
    );
    if value < low || value > high {
        anomalies.push(anomaly(
            format!("final value {value} outside [acknowledged {low}, acknowledged + unknown {high}]"),
            Vec::new(),
        ));
    }
    (figures, anomalies)
}

/// Splits an append key's value into its tokens.
fn tokens(value: &str) -> Vec<&str> {
    value.split(',').filter(|t| !t.is_empty()).collect()
}

/// The append workload: `finals` holds the value of each append key read after the heal.
pub fn appends(ops: &[Op], finals: &BTreeMap<String, Option<String>>) -> Vec<Anomaly> {
    let mut anomalies = Vec::new();
    let mut keys: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, op) in ops.iter().enumerate() {
        if is_append(&op.key) {
            keys.entry(&op.key).or_default().push(index);
        }
    }
    for (key, indices) in keys {
        let anomaly = |detail: String, ops: Vec<usize>| Anomaly {
            kind: "append",
            key: Some(key.to_string()),
            detail,
            ops,
        };
        // Token -> (index of its APPEND, how it ended).
        let mut attempted: HashMap<String, usize> = HashMap::new();
        let mut acknowledged: Vec<(u64, String, usize)> = Vec::new();
        let mut reads: Vec<(usize, Vec<String>)> = Vec::new();
        for &index in &indices {
            let op = &ops[index];
            match (&op.call, &op.outcome) {
                (Call::Append(token), outcome) => {
                    let token = token.trim_end_matches(',').to_string();
                    if !matches!(outcome, Outcome::Fail(_)) {
                        attempted.insert(token.clone(), index);
                    }
                    if matches!(outcome, Outcome::Ok(_)) {
                        acknowledged.push((op.completed_ns, token, index));
                    }
                }
                (Call::Read, Outcome::Ok(Ret::Read(value))) => {
                    let read = value.as_deref().map(tokens).unwrap_or_default();
                    reads.push((index, read.into_iter().map(str::to_string).collect()));
                }
                _ => {}
            }
        }
        let final_read = finals.get(key).cloned().flatten();
        let final_tokens: Vec<String> = final_read
            .as_deref()
            .map(tokens)
            .unwrap_or_default()
            .into_iter()
            .map(str::to_string)
            .collect();
        // Every read: only attempted tokens, none twice, and every token acknowledged before it.
        // One anomaly per token and problem, naming every read that shows it.
        let mut twice: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        let mut ghosts: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        let mut missing: BTreeMap<&str, (usize, Vec<usize>, bool)> = BTreeMap::new();
        acknowledged.sort();
        for (index, read) in reads.iter().map(|(i, r)| (Some(*i), r)).chain([(None, &final_tokens)]) {
            let mut seen = HashSet::new();
            for token in read {
                if !seen.insert(token.as_str()) {
                    twice.entry(token).or_default().extend(index);
                }
                if !attempted.contains_key(token) {
                    ghosts.entry(token).or_default().extend(index);
                }
            }
            let invoked = index.map_or(u64::MAX, |i| ops[i].invoked_ns);
            for (acked_at, token, append) in &acknowledged {
                if *acked_at >= invoked {
                    break;
                }
                if !seen.contains(token.as_str()) {
                    let entry = missing.entry(token).or_insert((*append, Vec::new(), false));
                    entry.1.extend(index);
                    entry.2 |= index.is_none();
                }
            }
        }
        for (token, reads) in twice {
            anomalies.push(anomaly(
                format!("token {token} appears twice ({} reads)", reads.len().max(1)),
                reads,
            ));
        }
        for (token, reads) in ghosts {
            anomalies.push(anomaly(
                format!("token {token} was never appended, or its APPEND was refused, yet is read"),
                reads,
            ));
        }
        for (token, (append, reads, in_final)) in missing {
            let which = if in_final { "the final read" } else { "reads" };
            let count = reads.len();
            let mut involved = vec![append];
            involved.extend(reads);
            anomalies.push(anomaly(
                format!("token {token} (APPEND #{append}) is missing from {which} started after it was acknowledged ({count} reads)"),
                involved,
            ));
        }
        // Reads are prefixes of one another (and of the final read).
        let mut all: Vec<(Option<usize>, &Vec<String>)> = reads.iter().map(|(i, r)| (Some(*i), r)).collect();
        all.push((None, &final_tokens));
        all.sort_by_key(|(_, r)| r.len());
        for pair in all.windows(2) {
            let ((a, shorter), (b, longer)) = (pair[0], pair[1]);
            if longer[..shorter.len()] != shorter[..] {
                anomalies.push(anomaly(
                    "two reads disagree on the order of the tokens (neither is a prefix of the other)".to_string(),
                    a.into_iter().chain(b).collect(),
                ));
            }
        }
    }
    anomalies
}

/// Replicas converge: `states` holds each member's keys and values (stale reads after the
/// final heal).
pub fn convergence(states: &BTreeMap<u64, BTreeMap<String, String>>) -> Vec<Anomaly> {
    let mut anomalies = Vec::new();
    let Some((first, reference)) = states.iter().next() else {
        return anomalies;
    };
    for (id, state) in states {
        if state == reference {
            continue;
        }
        let differing: Vec<&String> = reference
            .keys()
            .chain(state.keys())
            .filter(|k| reference.get(*k) != state.get(*k))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .take(5)
            .collect();
        anomalies.push(Anomaly {
            kind: "replicas-diverge",
            key: differing.first().map(|k| k.to_string()),
            detail: format!("node {id} differs from node {first} on {differing:?}"),
            ops: Vec::new(),
        });
    }
    anomalies
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(process: u64, key: &str, call: Call, times: (u64, u64), outcome: Outcome) -> Op {
        Op {
            process,
            node: 1,
            key: key.to_string(),
            call,
            invoked_ns: times.0,
            completed_ns: times.1,
            outcome,
        }
    }

    #[test]
    fn a_stale_register_read_is_caught() {
        let ops = [
            op(0, "r0.0", Call::Write("a".into()), (0, 10), Outcome::Ok(Ret::Write)),
            op(0, "r0.0", Call::Write("b".into()), (20, 30), Outcome::Ok(Ret::Write)),
            op(
                1,
                "r0.0",
                Call::Read,
                (40, 50),
                Outcome::Ok(Ret::Read(Some("a".into()))),
            ),
        ];
        let found = registers(&ops);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, "register-not-linearizable");
        assert!(
            found[0].detail.starts_with("op #2 (client 1: get"),
            "{}",
            found[0].detail
        );
        assert!(registers(&ops[..2]).is_empty());
    }

    #[test]
    fn counter_bounds() {
        let incr = |n, outcome| op(0, COUNTER_KEY, Call::Incr, (n, n + 1), outcome);
        let ops = [
            incr(0, Outcome::Ok(Ret::Incr(1))),
            incr(2, Outcome::Info("lost".into())),
            incr(4, Outcome::Ok(Ret::Incr(3))),
        ];
        assert!(counter(&ops, Some(3)).1.is_empty());
        assert!(
            counter(&ops, Some(2))
                .1
                .iter()
                .any(|a| a.detail.contains("above the final"))
        );
        assert!(!counter(&ops, Some(4)).1.is_empty(), "above acknowledged + unknown");
        assert!(!counter(&ops, Some(1)).1.is_empty());
        let twice = [incr(0, Outcome::Ok(Ret::Incr(1))), incr(2, Outcome::Ok(Ret::Incr(1)))];
        assert!(
            counter(&twice, Some(2))
                .1
                .iter()
                .any(|a| a.detail.contains("both answered"))
        );
    }

    #[test]
    fn append_anomalies() {
        let append = |p, t: &str, times, outcome| op(p, "a0", Call::Append(format!("{t},")), times, outcome);
        let read = |v: &str, times| op(2, "a0", Call::Read, times, Outcome::Ok(Ret::Read(Some(v.into()))));
        let ok = || Outcome::Ok(Ret::Append(1));
        let base = vec![
            append(0, "x", (0, 10), ok()),
            append(1, "y", (5, 20), Outcome::Info("lost".into())),
            append(0, "z", (30, 40), Outcome::Fail("refused".into())),
        ];
        let finals = |v: &str| BTreeMap::from([("a0".to_string(), Some(v.to_string()))]);
        let mut good = base.clone();
        good.push(read("x,", (12, 14)));
        assert!(appends(&good, &finals("x,y,")).is_empty());
        // Lost acknowledged token, duplicated token, refused token, reordered reads.
        assert!(!appends(&base, &finals("y,")).is_empty());
        assert!(!appends(&base, &finals("x,x,")).is_empty());
        assert!(!appends(&base, &finals("x,z,")).is_empty());
        let mut reordered = base.clone();
        reordered.push(read("y,", (12, 14)));
        assert!(!appends(&reordered, &finals("x,y,")).is_empty());
        // A read that misses a token acknowledged before it started.
        let mut stale = base;
        stale.push(read("", (12, 14)));
        assert!(!appends(&stale, &finals("x,")).is_empty());
    }

    #[test]
    fn diverging_replicas_are_named() {
        let a = BTreeMap::from([("k".to_string(), "1".to_string())]);
        let b = BTreeMap::from([("k".to_string(), "2".to_string())]);
        assert!(convergence(&BTreeMap::from([(1, a.clone()), (2, a.clone())])).is_empty());
        let found = convergence(&BTreeMap::from([(1, a), (2, b)]));
        assert_eq!(found[0].key.as_deref(), Some("k"));
    }
}
