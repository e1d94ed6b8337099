//! Client sessions: what makes a retried write apply once (Raft dissertation, 6.3).
//!
//! A session remembers the responses of the writes it applied, by sequence number, until the
//! client says it has them (`acked`). A repeat of a remembered sequence number gets the
//! remembered response; a sequence number at or below the forgotten floor is refused, never
//! applied again. Sessions expire by log time: a session whose deadline (its last write's
//! `at_ms` plus its ttl) is at or before the store's clock is gone, and a write on it is refused.
//!
//! Bounds: at most [`MAX_SESSIONS`] sessions (registering one more evicts the one closest to
//! its deadline) and [`MAX_RESPONSES`] remembered responses per session (one more forgets the
//! oldest, raising the floor).

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use serde::Deserialize;
use serde::Serialize;

use crate::command::CommandError;
use crate::command::Response;

/// Most open sessions.
pub const MAX_SESSIONS: usize = 100_000;
/// Most remembered responses per session (writes a client may have in flight on it).
pub const MAX_RESPONSES: usize = 1_024;

/// One session's state, as a snapshot carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Session {
    ttl_ms: u64,
    deadline: u64,
    floor: u64,
    responses: BTreeMap<u64, Response>,
}

/// Every open session, with their deadlines in time order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Sessions {
    open: BTreeMap<u64, Session>,
    deadlines: BTreeSet<(u64, u64)>,
}

/// What a session write should do.
pub(super) enum Admission {
    /// Apply it, then [`Sessions::record`] its response.
    Apply,
    /// A repeat: answer this without applying.
    Repeat(Response),
}

impl Sessions {
    /// Number of open sessions.
    pub(super) fn len(&self) -> usize {
        self.open.len()
    }

    /// Drops every session whose deadline is at or before `clock_ms`.
    pub(super) fn expire(&mut self, clock_ms: u64) {
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > clock_ms {
                break;
            }
            self.deadlines.pop_first();
            self.open.remove(&id);
        }
    }

    /// Opens session `id` at log time `clock_ms`, evicting the session closest to its
    /// deadline if there are already [`MAX_SESSIONS`].
    pub(super) fn register(&mut self, id: u64, ttl_ms: u64, clock_ms: u64) {
        if self.open.len() >= MAX_SESSIONS
            && let Some((_, oldest)) = self.deadlines.pop_first()
        {
            self.open.remove(&oldest);
        }
        let session = Session {
            ttl_ms,
            deadline: clock_ms.saturating_add(ttl_ms),
            floor: 0,
            responses: BTreeMap::new(),
        };
        self.insert(id, session);
    }

    /// Closes session `id`; whether it was open.
    pub(super) fn end(&mut self, id: u64) -> bool {
        match self.open.remove(&id) {
            Some(session) => {
                self.deadlines.remove(&(session.deadline, id));
                true
            }
            None => false,
        }
    }

    /// Decides what write `seq` of session `id` does, forgetting the responses up to `acked`
    /// and moving the session's deadline to `clock_ms` plus its ttl.
    pub(super) fn admit(&mut self, id: u64, seq: u64, acked: u64, clock_ms: u64) -> Result<Admission, CommandError> {
        let session = self.open.get_mut(&id).ok_or(CommandError::SessionExpired { id })?;
        if acked > session.floor {
            session.floor = acked;
            session.responses = session.responses.split_off(&(acked + 1));
        }
        if seq <= session.floor {
            return Err(CommandError::SessionStale {
                id,
                seq,
                floor: session.floor,
            });
        }
        let deadline = clock_ms.saturating_add(session.ttl_ms);
        if deadline != session.deadline {
            self.deadlines.remove(&(session.deadline, id));
            session.deadline = deadline;
            self.deadlines.insert((deadline, id));
        }
        Ok(match session.responses.get(&seq) {
            Some(response) => Admission::Repeat(response.clone()),
            None => Admission::Apply,
        })
    }

    /// Remembers the response of write `seq` of session `id` (admitted just before).
    pub(super) fn record(&mut self, id: u64, seq: u64, response: Response) {
        let Some(session) = self.open.get_mut(&id) else {
            return;
        };
        session.responses.insert(seq, response);
        if session.responses.len() > MAX_RESPONSES
            && let Some((forgotten, _)) = session.responses.pop_first()
        {
            session.floor = session.floor.max(forgotten);
        }
    }

    /// Every session in id order, for a snapshot.
    pub(super) fn iter(&self) -> impl ExactSizeIterator<Item = (&u64, &Session)> {
        self.open.iter()
    }

    /// Restores a session from a snapshot.
    pub(super) fn insert(&mut self, id: u64, session: Session) {
        self.deadlines.insert((session.deadline, id));
        if let Some(old) = self.open.insert(id, session) {
            self.deadlines.remove(&(old.deadline, id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(
        sessions: &mut Sessions,
        id: u64,
        seq: u64,
        acked: u64,
        now: u64,
    ) -> Result<Option<Response>, CommandError> {
        match sessions.admit(id, seq, acked, now)? {
            Admission::Repeat(r) => Ok(Some(r)),
            Admission::Apply => {
                sessions.record(id, seq, Response::Integer(seq as i64));
                Ok(None)
            }
        }
    }

    #[test]
    fn a_repeat_gets_the_recorded_answer_and_acked_answers_are_forgotten() {
        let mut s = Sessions::default();
        s.register(7, 1_000, 0);
        assert_eq!(apply(&mut s, 7, 1, 0, 10), Ok(None));
        assert_eq!(apply(&mut s, 7, 2, 0, 10), Ok(None));
        assert_eq!(apply(&mut s, 7, 1, 0, 10), Ok(Some(Response::Integer(1))));
        // Out of order within the window is fine: 4 before 3.
        assert_eq!(apply(&mut s, 7, 4, 0, 10), Ok(None));
        assert_eq!(apply(&mut s, 7, 3, 0, 10), Ok(None));
        assert_eq!(apply(&mut s, 7, 5, 2, 10), Ok(None));
        assert_eq!(
            apply(&mut s, 7, 2, 2, 10),
            Err(CommandError::SessionStale {
                id: 7,
                seq: 2,
                floor: 2
            })
        );
        assert_eq!(apply(&mut s, 7, 4, 2, 10), Ok(Some(Response::Integer(4))));
    }

    #[test]
    fn sessions_expire_by_log_time_after_their_last_write() {
        let mut s = Sessions::default();
        s.register(1, 100, 0);
        s.register(2, 100, 0);
        assert_eq!(apply(&mut s, 1, 1, 0, 90), Ok(None));
        s.expire(100);
        assert_eq!(s.len(), 1, "session 2 expired at 100, session 1 lives until 190");
        assert_eq!(apply(&mut s, 2, 1, 0, 100), Err(CommandError::SessionExpired { id: 2 }));
        s.expire(190);
        assert_eq!(apply(&mut s, 1, 2, 0, 190), Err(CommandError::SessionExpired { id: 1 }));
    }

    #[test]
    fn memory_stays_bounded() {
        let mut s = Sessions::default();
        s.register(1, 10, 0);
        for seq in 1..=(MAX_RESPONSES as u64 + 5) {
            assert_eq!(apply(&mut s, 1, seq, 0, 0), Ok(None));
        }
        assert_eq!(s.open[&1].responses.len(), MAX_RESPONSES);
        assert_eq!(
            apply(&mut s, 1, 5, 0, 0),
            Err(CommandError::SessionStale {
                id: 1,
                seq: 5,
                floor: 5
            }),
            "a forgotten answer is refused, never applied twice"
        );
        for id in 2..=(MAX_SESSIONS as u64 + 1) {
            s.register(id, 1_000 + id, 0);
        }
        assert_eq!(s.len(), MAX_SESSIONS);
        assert!(
            !s.open.contains_key(&1),
            "the session closest to its deadline was evicted"
        );
    }
}
