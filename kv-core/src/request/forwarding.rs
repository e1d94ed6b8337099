//! The node's own client session for the writes it forwards (Raft dissertation, 6.3).
//!
//! A follower that hands a write to the leader and loses the answer (the leader was killed,
//! the connection broke, the answer came too late) cannot tell whether the write took effect.
//! Sending it again could apply it twice. So each node registers one session of its own and
//! tags every plain write it forwards with that session's id and the next sequence number
//! ([`Command::Session`]); resending a tagged write is then safe: the state machine applies
//! a sequence number once and answers a repeat with the response it recorded. The request
//! path resends a tagged write whose answer was lost until an answer comes or its time is up.
//!
//! Bounds: sequence numbers in flight span at most [`WINDOW`], below the responses a session
//! remembers ([`MAX_RESPONSES`]), so the leader never forgets an answer a resend asks for; a
//! write beyond the window, or forwarded while the session is being registered, goes untagged
//! (a lost answer is then reported as an unknown outcome, as it always was). The session is
//! registered again when it has been idle for half its time to live, so it never expires
//! under a node that uses it.

use std::collections::BTreeSet;
use std::sync::Mutex;

use crate::command::Command;
use crate::store::MAX_RESPONSES;
use crate::wire::Op;

/// Log time a forwarding session stays open without writes: an hour.
pub(super) const SESSION_TTL_MS: u64 = 60 * 60 * 1000;

/// Most sequence numbers between the oldest unanswered tagged write and the newest.
const WINDOW: u64 = MAX_RESPONSES as u64 - 24;

/// A node's forwarding session. Clones of a request path share it.
#[derive(Debug, Default)]
pub(super) struct ForwardSession {
    state: Mutex<SessionState>,
}

#[derive(Debug, Default)]
struct SessionState {
    /// The session, once registered.
    id: Option<u64>,
    /// This node's clock when the session was last used, to register anew before it expires.
    used_ms: u64,
    /// A registration is under way: forwards meanwhile go untagged.
    registering: bool,
    /// The last sequence number handed out.
    last_seq: u64,
    /// Tagged writes not yet answered for good.
    unanswered: BTreeSet<u64>,
}

/// A write sent tagged, kept to be sent again.
#[derive(Debug, Clone)]
pub(super) struct Tagged {
    /// Its place in the run.
    pub(super) slot: usize,
    /// The session.
    pub(super) id: u64,
    /// Its sequence number.
    pub(super) seq: u64,
    /// The tagged operation as sent.
    pub(super) op: Op,
}

impl ForwardSession {
    fn state(&self) -> std::sync::MutexGuard<'_, SessionState> {
        self.state.lock().expect("forwarding session lock poisoned")
    }

    /// Whether `op` is a write that can be tagged: a plain write, not a session command or a
    /// transaction (which a session cannot hold).
    pub(super) fn can_tag(op: &Op) -> bool {
        match op {
            Op::Write { command, .. } => !matches!(
                command,
                Command::RegisterSession { .. }
                    | Command::Session { .. }
                    | Command::EndSession { .. }
                    | Command::Transaction { .. }
            ),
            _ => false,
        }
    }

    /// Whether a session must be registered before tagging, at this node's time `now_ms`; if
    /// so, the caller registers it and reports with [`ForwardSession::registered`].
    pub(super) fn needs_registering(&self, now_ms: u64) -> bool {
        let mut state = self.state();
        let stale = state
            .id
            .is_none_or(|_| now_ms.saturating_sub(state.used_ms) >= SESSION_TTL_MS / 2);
        if !stale || state.registering {
            return false;
        }
        state.registering = true;
        true
    }

    /// The end of a registration: the new session's id, or `None` if it failed.
    pub(super) fn registered(&self, id: Option<u64>, now_ms: u64) {
        let mut state = self.state();
        state.registering = false;
        if let Some(id) = id {
            state.id = Some(id);
            state.used_ms = now_ms;
            // Unanswered writes of the old session keep their numbers; new ones continue.
        }
    }

    /// Forgets session `id` after the leader said it has expired.
    pub(super) fn expired(&self, id: u64) {
        let mut state = self.state();
        if state.id == Some(id) {
            state.id = None;
        }
    }

    /// Tags the plain writes of `ops` that fit in the window, at this node's time `now_ms`;
    /// returns the tagged ones, to be sent again if their answers are lost.
    pub(super) fn tag(&self, ops: &mut [Op], now_ms: u64) -> Vec<Tagged> {
        let mut state = self.state();
        let Some(id) = state.id else {
            return Vec::new();
        };
        state.used_ms = state.used_ms.max(now_ms);
        let mut tagged = Vec::new();
        for (slot, op) in ops.iter_mut().enumerate() {
            if !Self::can_tag(op) {
                continue;
            }
            let seq = state.last_seq + 1;
            let oldest = state.unanswered.first().copied().unwrap_or(seq);
            if seq - oldest >= WINDOW {
                break;
            }
            // Every number below the oldest unanswered one has its answer for good.
            let acked = oldest - 1;
            state.last_seq = seq;
            state.unanswered.insert(seq);
            let Op::Write { command, .. } = op else {
                unreachable!("only writes are tagged")
            };
            *command = std::mem::replace(command, Command::Clear).in_session(id, seq, acked);
            tagged.push(Tagged {
                slot,
                id,
                seq,
                op: op.clone(),
            });
        }
        tagged
    }

    /// Tagged write `seq` has its answer for good (or will never be sent again).
    pub(super) fn answered(&self, seq: u64) {
        self.state().unanswered.remove(&seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(key: &str) -> Op {
        Op::Write {
            command: Command::Set {
                key: key.as_bytes().to_vec(),
                value: b"v".to_vec(),
                condition: crate::command::SetCondition::Always,
                expiry: crate::command::Expiry::Never,
            },
            ttl_ms: Some(5),
        }
    }

    fn session_of(op: &Op) -> (u64, u64, u64) {
        match op {
            Op::Write {
                command: Command::Session { id, seq, acked, .. },
                ttl_ms: Some(5),
            } => (*id, *seq, *acked),
            other => panic!("not tagged: {other:?}"),
        }
    }

    #[test]
    fn writes_are_tagged_in_order_and_acked_up_to_the_oldest_unanswered() {
        let s = ForwardSession::default();
        let mut ops = vec![set("a"), Op::ReadIndex, set("b")];
        assert!(s.tag(&mut ops, 0).is_empty(), "no session yet: nothing tagged");
        assert!(s.needs_registering(0));
        assert!(!s.needs_registering(0), "one registration at a time");
        s.registered(Some(42), 0);
        let tagged = s.tag(&mut ops, 10);
        assert_eq!(
            tagged.iter().map(|t| (t.slot, t.seq)).collect::<Vec<_>>(),
            vec![(0, 1), (2, 2)]
        );
        assert_eq!(session_of(&ops[0]), (42, 1, 0));
        assert!(matches!(ops[1], Op::ReadIndex));
        assert_eq!(session_of(&ops[2]), (42, 2, 0));
        s.answered(2);
        let mut more = vec![set("c")];
        s.tag(&mut more, 20);
        assert_eq!(session_of(&more[0]), (42, 3, 0), "1 is still unanswered");
        s.answered(1);
        let mut more = vec![set("d")];
        s.tag(&mut more, 30);
        assert_eq!(session_of(&more[0]), (42, 4, 2), "3 is the oldest unanswered");
    }

    #[test]
    fn the_window_bounds_unanswered_writes_and_the_session_is_renewed_before_it_expires() {
        let s = ForwardSession::default();
        assert!(s.needs_registering(0));
        s.registered(Some(7), 0);
        let mut ops: Vec<Op> = (0..WINDOW + 10).map(|i| set(&i.to_string())).collect();
        let tagged = s.tag(&mut ops, 0);
        assert_eq!(tagged.len() as u64, WINDOW);
        assert!(matches!(
            ops[WINDOW as usize],
            Op::Write {
                command: Command::Set { .. },
                ..
            }
        ));
        assert!(!s.needs_registering(SESSION_TTL_MS / 2 - 1));
        assert!(s.needs_registering(SESSION_TTL_MS / 2));
        s.registered(None, SESSION_TTL_MS / 2);
        s.expired(7);
        assert!(
            s.tag(&mut [set("x")], SESSION_TTL_MS / 2).is_empty(),
            "expired: untagged"
        );
    }

    #[test]
    fn session_commands_and_transactions_are_not_tagged() {
        let s = ForwardSession::default();
        s.needs_registering(0);
        s.registered(Some(1), 0);
        let session = Op::Write {
            command: Command::EndSession { id: 3 },
            ttl_ms: None,
        };
        let tx = Op::Write {
            command: Command::Transaction {
                guard: None,
                ops: Vec::new(),
            },
            ttl_ms: None,
        };
        assert!(s.tag(&mut [session, tx], 0).is_empty());
    }
}
