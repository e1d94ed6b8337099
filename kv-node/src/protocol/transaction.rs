//! `MULTI` / `EXEC` / `DISCARD` / `WATCH` / `UNWATCH`: one connection's transaction.
//!
//! # What it guarantees
//!
//! `EXEC` sends the queued data commands down the request path as **one** write,
//! [`Command::Transaction`]: one Raft log entry, which every replica applies atomically, in log
//! order. So a transaction is linearizable (it takes effect at one point between `EXEC` and its
//! answer) and serializable (no other command runs between its steps); reads queued in it see
//! its own earlier writes. A follower forwards the entry whole to the leader, like any write.
//!
//! `WATCH` is Redis's optimistic lock, built on revisions (each key's last change is the index
//! of the entry that made it): it reads the watched keys linearizably with
//! [`Query::GetRevision`] and keeps `since`, the smallest store revision those reads answered
//! across the connection's `WATCH` calls. `EXEC` carries [`WatchGuard`] `{ since, keys }`; the
//! store applies nothing and answers nil if one of the keys changed after `since`: written,
//! deleted, expired, flushed, or changed by another client's transaction. Two cases abort
//! needlessly, never commit wrongly: a key deleted so long ago that its tombstone is gone, and
//! a key whose time had run out when it was watched but that the leader's active expiry had
//! not yet removed, at most about 100 ms (its removal is a change after `since`; Redis lets
//! that one through). The active-expiry entry itself changes no other key, so it aborts no
//! `WATCH` on its own.
//!
//! # Why this design
//!
//! Redis runs a transaction by blocking every other client; a replicated store cannot hold a
//! lock across nodes cheaply, and a lock held by a client that vanished would stall the
//! cluster. Shipping the whole transaction as one log entry needs no lock at all: the log
//! already orders it against every other write, and the guard is checked at apply time, on
//! the same state on every replica. A queued `PUBLISH` is a step of the entry too (its message
//! goes out, on every node, when the entry applies), answered with this node's receivers. The price is that commands inside a transaction cannot
//! depend on values read inside it (neither can Redis's); `WATCH` + read + `MULTI` is the way.
//!
//! # Where it differs from Redis
//!
//! A command that fails to parse (unknown, wrong arity, bad option) is refused while
//! queueing and makes `EXEC` answer `EXECABORT`; Redis finds some option errors only when
//! `EXEC` runs. Commands about the connection or the node (`PING`, `ECHO`, `INFO`, `CLIENT`,
//! `CONFIG GET`, `COMMAND`, `RAFT STATUS|LEADER`, `AUTH`, `HELLO`, `SELECT`,
//! `READONLY|READWRITE`) are queued and run on this node during `EXEC`, after the transaction's
//! entry is applied, their replies in their places. Cluster changes (`RAFT ADD-LEARNER`,
//! `PROMOTE`, `REMOVE`, `TRANSFER-LEADER`, `SNAPSHOT`) cannot be part of a transaction: they
//! are refused and abort it.
//!
//! Tested in `kv-node/tests/transactions.rs` (redis-py against a 3-node cluster, a competing
//! `WATCH` loop on two nodes) and by the unit tests below.

use kv_core::command::Command;
use kv_core::command::Key;
use kv_core::command::Query;
use kv_core::command::Response;
use kv_core::command::TxOp;
use kv_core::command::WatchGuard;
use kv_core::wire::Op;
use kv_core::wire::OpError;

use super::command::Action;
use super::command::PubSubAction;
use super::op_error;
use super::render;
use super::render::Shape;
use super::reply::Reply;

/// A connection's transaction state: the commands queued since `MULTI`, and the guard that
/// `WATCH` built.
#[derive(Debug)]
pub(super) struct Transaction {
    /// The commands queued since `MULTI`; `None` outside `MULTI`.
    queue: Option<Vec<Queued>>,
    /// A command was refused while queueing: `EXEC` answers `EXECABORT`.
    failed: bool,
    /// The smallest revision the `WATCH` reads answered, and the watched keys.
    watch: Option<WatchGuard>,
    /// Most commands one transaction may queue, and most keys a connection may watch.
    limit: usize,
}

/// A queued command.
#[derive(Debug)]
enum Queued {
    /// A step of the transaction's log entry, and the shape of its reply.
    Data(TxOp, Shape),
    /// A command about the connection or the node, run during `EXEC`.
    Local(Action),
    /// `PUBLISH channel message`: a step of the log entry, answered with the receivers.
    Publish(Vec<u8>, Vec<u8>),
}

/// A transaction `EXEC` runs: the write to send (if any), then [`Exec::answers`].
#[derive(Debug)]
pub(super) struct Exec {
    write: Option<Op>,
    steps: Vec<Step>,
}

#[derive(Debug)]
enum Step {
    Data(Shape),
    Local(Action),
    Published(Vec<u8>),
}

/// One element of `EXEC`'s reply: a rendered answer, or a local command still to run.
#[derive(Debug)]
pub(super) enum Answer {
    /// The reply of a data command.
    Reply(Reply),
    /// A command about the connection or the node, to run now.
    Local(Action),
    /// A `PUBLISH` on this channel took effect: answer how many receive it here.
    Published(Vec<u8>),
}

fn error(text: &str) -> Reply {
    Reply::Error(text.to_string())
}

impl Transaction {
    /// No transaction; at most `limit` queued commands and watched keys.
    pub(super) fn new(limit: usize) -> Self {
        Transaction {
            queue: None,
            failed: false,
            watch: None,
            limit,
        }
    }

    /// Whether commands are being queued (after `MULTI`).
    pub(super) fn is_queueing(&self) -> bool {
        self.queue.is_some()
    }

    /// `MULTI`.
    pub(super) fn multi(&mut self) -> Reply {
        if self.queue.is_some() {
            return error("ERR MULTI calls can not be nested");
        }
        self.queue = Some(Vec::new());
        Reply::ok()
    }

    /// `DISCARD`.
    pub(super) fn discard(&mut self) -> Reply {
        if self.queue.take().is_none() {
            return error("ERR DISCARD without MULTI");
        }
        self.failed = false;
        self.watch = None;
        Reply::ok()
    }

    /// `UNWATCH` outside `MULTI`.
    pub(super) fn unwatch(&mut self) -> Reply {
        self.watch = None;
        Reply::ok()
    }

    /// Queues a command after `MULTI` (not `MULTI`, `EXEC`, `DISCARD`, `WATCH` or `QUIT`):
    /// `+QUEUED`, or the error that refused it, which makes `EXEC` answer `EXECABORT`.
    pub(super) fn queue(&mut self, parsed: Result<Action, Reply>) -> Reply {
        let queue = self.queue.get_or_insert_with(Vec::new);
        let queued = match parsed {
            Err(reply) => Err(reply),
            Ok(_) if queue.len() >= self.limit => Err(Reply::Error(format!(
                "ERR transaction too long: at most {} commands can be queued",
                self.limit
            ))),
            Ok(Action::Data {
                op: Op::Write { command, ttl_ms },
                shape,
            }) => Ok(Queued::Data(TxOp::Write { command, ttl_ms }, shape)),
            Ok(Action::Data {
                op: Op::Read(query),
                shape,
            }) => Ok(Queued::Data(TxOp::Read(query), shape)),
            Ok(Action::PubSub(PubSubAction::Publish { channel, message })) => Ok(Queued::Publish(channel, message)),
            Ok(Action::Unwatch) => Ok(Queued::Local(Action::Reply(Reply::ok()))),
            Ok(Action::Data { .. } | Action::Admin(_) | Action::Snapshot) => {
                Err(error("ERR Command not allowed inside a transaction"))
            }
            Ok(action) => Ok(Queued::Local(action)),
        };
        match queued {
            Ok(queued) => {
                queue.push(queued);
                Reply::Simple("QUEUED".to_string())
            }
            Err(reply) => {
                self.failed = true;
                reply
            }
        }
    }

    /// Whether the queued transaction may change data (a write or a `PUBLISH` queued), for
    /// `CLIENT PAUSE WRITE`; `false` outside `MULTI`.
    pub(super) fn may_write(&self) -> bool {
        self.queue.as_ref().is_some_and(|queue| {
            queue
                .iter()
                .any(|queued| matches!(queued, Queued::Data(TxOp::Write { .. }, _) | Queued::Publish(..)))
        })
    }

    /// Whether `WATCH` may run now; the error if not.
    pub(super) fn refuse_watch(&self) -> Option<Reply> {
        self.queue
            .is_some()
            .then(|| error("ERR WATCH inside MULTI is not allowed"))
    }

    /// The reads a `WATCH` of `keys` makes.
    pub(super) fn watch_reads(keys: &[Key]) -> Vec<Op> {
        keys.iter()
            .map(|key| Op::Read(Query::GetRevision { key: key.clone() }))
            .collect()
    }

    /// Completes `WATCH keys` with the results of [`Transaction::watch_reads`]: `+OK`, or the
    /// error of a read that failed (and nothing watched).
    pub(super) fn watched(&mut self, keys: Vec<Key>, results: Vec<Result<Response, OpError>>) -> Reply {
        let mut since = u64::MAX;
        for result in results {
            match result {
                Ok(Response::Revisioned { revision, .. }) => since = since.min(revision),
                Ok(Response::Error(e)) => return render::store_error(&e),
                Ok(other) => return Reply::Error(format!("ERR internal: WATCH read answered {other:?}")),
                Err(e) => return op_error(&e),
            }
        }
        let guard = self.watch.get_or_insert_with(|| WatchGuard {
            since,
            keys: Vec::new(),
        });
        guard.since = guard.since.min(since);
        for key in keys {
            if !guard.keys.contains(&key) {
                if guard.keys.len() >= self.limit {
                    return Reply::Error(format!("ERR too many watched keys: at most {}", self.limit));
                }
                guard.keys.push(key);
            }
        }
        Reply::ok()
    }

    /// `EXEC`: ends the transaction and unwatches. The error reply if there is nothing to run
    /// (`EXEC without MULTI`, `EXECABORT`).
    pub(super) fn exec(&mut self) -> Result<Exec, Reply> {
        let queue = self.queue.take().ok_or_else(|| error("ERR EXEC without MULTI"))?;
        let guard = self.watch.take();
        if std::mem::take(&mut self.failed) {
            return Err(error("EXECABORT Transaction discarded because of previous errors."));
        }
        let mut ops = Vec::new();
        let mut steps = Vec::with_capacity(queue.len());
        for queued in queue {
            match queued {
                Queued::Data(op, shape) => {
                    ops.push(op);
                    steps.push(Step::Data(shape));
                }
                Queued::Local(action) => steps.push(Step::Local(action)),
                Queued::Publish(channel, message) => {
                    ops.push(TxOp::Write {
                        command: Command::Publish {
                            channel: channel.clone(),
                            message,
                        },
                        ttl_ms: None,
                    });
                    steps.push(Step::Published(channel));
                }
            }
        }
        // Without data commands or a guard, there is nothing for the log to decide.
        let write = if ops.is_empty() && guard.is_none() {
            None
        } else {
            Some(Op::Write {
                command: Command::Transaction { guard, ops },
                ttl_ms: None,
            })
        };
        Ok(Exec { write, steps })
    }
}

impl Exec {
    /// The write to send down the request path, if any (once).
    pub(super) fn take_write(&mut self) -> Option<Op> {
        self.write.take()
    }

    /// The elements of `EXEC`'s array, given the outcome of the write (`None` if there was
    /// none); or the reply to `EXEC` as a whole: nil if the guard aborted the transaction, an
    /// error if the write failed.
    pub(super) fn answers(
        self,
        outcome: Option<Result<Response, OpError>>,
        next_cursor: &dyn Fn(&[u8]) -> String,
    ) -> Result<Vec<Answer>, Reply> {
        let mut responses = match outcome {
            None => Vec::new(),
            Some(Err(e)) => return Err(op_error(&e)),
            Some(Ok(Response::Transaction(None))) => return Err(Reply::NilArray),
            Some(Ok(Response::Transaction(Some(responses)))) => responses,
            Some(Ok(Response::Error(e))) => return Err(render::store_error(&e)),
            Some(Ok(other)) => return Err(Reply::Error(format!("ERR internal: EXEC answered {other:?}"))),
        }
        .into_iter();
        self.steps
            .into_iter()
            .map(|step| match step {
                Step::Local(action) => Ok(Answer::Local(action)),
                Step::Data(shape) => match responses.next() {
                    Some(response) => Ok(Answer::Reply(render::render(shape, response, next_cursor))),
                    None => Err(error("ERR internal: EXEC answered fewer responses than it sent")),
                },
                Step::Published(channel) => match responses.next() {
                    Some(Response::Error(e)) => Ok(Answer::Reply(render::store_error(&e))),
                    Some(_) => Ok(Answer::Published(channel)),
                    None => Err(error("ERR internal: EXEC answered fewer responses than it sent")),
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use kv_core::command::CommandError as StoreError;

    use super::*;
    use crate::protocol::command;

    fn parsed(text: &str) -> Result<Action, Reply> {
        let args: Vec<Vec<u8>> = text.split(' ').map(|s| s.as_bytes().to_vec()).collect();
        command::parse(&args, &|_| Ok(None)).map_err(|e| Reply::Error(format!("ERR {e}")))
    }

    fn queued(tx: &mut Transaction, text: &str) -> Reply {
        tx.queue(parsed(text))
    }

    fn revisioned(revision: u64) -> Result<Response, OpError> {
        Ok(Response::Revisioned {
            value: None,
            mod_revision: 0,
            revision,
        })
    }

    fn no_cursor(_: &[u8]) -> String {
        "0".to_string()
    }

    /// The steps of the one transaction write `exec` sends, which has no guard.
    fn unguarded_ops(exec: &mut Exec) -> Vec<TxOp> {
        let Some(Op::Write {
            command: Command::Transaction { guard: None, ops },
            ttl_ms: None,
        }) = exec.take_write()
        else {
            panic!("EXEC sends one transaction write");
        };
        ops
    }

    #[test]
    fn queues_and_builds_one_transaction_write() {
        let mut tx = Transaction::new(100);
        assert_eq!(tx.multi(), Reply::ok());
        assert_eq!(tx.multi(), error("ERR MULTI calls can not be nested"));
        assert_eq!(tx.refuse_watch(), Some(error("ERR WATCH inside MULTI is not allowed")));
        let queued_reply = Reply::Simple("QUEUED".to_string());
        assert_eq!(queued(&mut tx, "SET k v PX 100"), queued_reply);
        assert_eq!(queued(&mut tx, "PING"), queued_reply);
        assert_eq!(queued(&mut tx, "GET k"), queued_reply);
        let mut exec = tx.exec().unwrap();
        assert!(!tx.is_queueing());
        let ops = unguarded_ops(&mut exec);
        assert!(matches!(&ops[0], TxOp::Write { ttl_ms: Some(100), .. }));
        assert!(matches!(&ops[1], TxOp::Read(Query::Get { .. })));
        let answers = exec
            .answers(
                Some(Ok(Response::Transaction(Some(vec![
                    Response::Set {
                        written: true,
                        previous: None,
                    },
                    Response::Value(Some(b"v".to_vec())),
                ])))),
                &no_cursor,
            )
            .unwrap();
        assert!(matches!(&answers[0], Answer::Reply(r) if *r == Reply::ok()));
        assert!(matches!(&answers[1], Answer::Local(Action::Reply(Reply::Simple(pong))) if pong == "PONG"));
        assert!(matches!(&answers[2], Answer::Reply(Reply::Bulk(v)) if v == b"v"));
    }

    #[test]
    fn publish_is_a_step_of_the_entry_answered_with_its_receivers() {
        let mut tx = Transaction::new(100);
        tx.multi();
        queued(&mut tx, "SET k v");
        queued(&mut tx, "PUBLISH ch hello");
        assert!(tx.may_write());
        let mut exec = tx.exec().unwrap();
        let ops = unguarded_ops(&mut exec);
        assert!(matches!(
            &ops[1],
            TxOp::Write { command: Command::Publish { channel, message }, ttl_ms: None }
                if channel == b"ch" && message == b"hello"
        ));
        let answers = exec
            .answers(
                Some(Ok(Response::Transaction(Some(vec![
                    Response::Set {
                        written: true,
                        previous: None,
                    },
                    Response::Ok,
                ])))),
                &no_cursor,
            )
            .unwrap();
        assert!(matches!(&answers[1], Answer::Published(channel) if channel == b"ch"));
    }

    #[test]
    fn a_refused_command_aborts_exec_and_exec_needs_multi() {
        let mut tx = Transaction::new(2);
        assert_eq!(tx.exec().unwrap_err(), error("ERR EXEC without MULTI"));
        assert_eq!(tx.discard(), error("ERR DISCARD without MULTI"));
        tx.multi();
        assert!(queued(&mut tx, "GET").is_error());
        assert_eq!(queued(&mut tx, "GET k"), Reply::Simple("QUEUED".to_string()));
        assert_eq!(
            tx.exec().unwrap_err(),
            error("EXECABORT Transaction discarded because of previous errors.")
        );
        // The next transaction starts clean; cluster changes and overlong queues are refused.
        tx.multi();
        assert!(queued(&mut tx, "RAFT SNAPSHOT").is_error());
        assert!(tx.exec().is_err());
        tx.multi();
        queued(&mut tx, "GET a");
        queued(&mut tx, "GET b");
        assert!(queued(&mut tx, "GET c").is_error());
        assert_eq!(tx.discard(), Reply::ok());
        tx.multi();
        assert!(
            tx.exec().unwrap().take_write().is_none(),
            "an empty EXEC writes nothing"
        );
    }

    #[test]
    fn watch_keeps_the_smallest_revision_and_exec_clears_it() {
        let mut tx = Transaction::new(10);
        let keys = vec![b"a".to_vec(), b"b".to_vec()];
        assert_eq!(tx.watched(keys, vec![revisioned(7), revisioned(9)]), Reply::ok());
        assert_eq!(tx.watched(vec![b"a".to_vec()], vec![revisioned(12)]), Reply::ok());
        assert!(tx.watched(vec![b"c".to_vec()], vec![Err(OpError::NoLeader)]).is_error());
        tx.multi();
        let Some(Op::Write {
            command: Command::Transaction {
                guard: Some(guard),
                ops,
            },
            ..
        }) = tx.exec().unwrap().take_write()
        else {
            panic!("a watched EXEC sends its guard");
        };
        assert_eq!(guard.since, 7);
        assert_eq!(guard.keys, vec![b"a".to_vec(), b"b".to_vec()]);
        assert!(ops.is_empty());
        tx.multi();
        assert!(tx.exec().unwrap().take_write().is_none(), "EXEC unwatched");
        tx.watched(vec![b"a".to_vec()], vec![revisioned(3)]);
        assert_eq!(tx.unwatch(), Reply::ok());
        tx.multi();
        assert!(tx.exec().unwrap().take_write().is_none(), "UNWATCH unwatched");
    }

    #[test]
    fn an_aborted_or_failed_exec_is_one_reply() {
        let exec = || {
            let mut tx = Transaction::new(10);
            tx.multi();
            queued(&mut tx, "INCR n");
            tx.exec().unwrap()
        };
        assert_eq!(
            exec()
                .answers(Some(Ok(Response::Transaction(None))), &no_cursor)
                .unwrap_err(),
            Reply::NilArray
        );
        assert!(
            exec()
                .answers(Some(Err(OpError::NoLeader)), &no_cursor)
                .unwrap_err()
                .is_error()
        );
        // A command that fails when applied fails alone, in its place.
        let answers = exec()
            .answers(
                Some(Ok(Response::Transaction(Some(vec![Response::Error(
                    StoreError::NotAnInteger,
                )])))),
                &no_cursor,
            )
            .unwrap();
        assert!(matches!(&answers[0], Answer::Reply(r) if r.is_error()));
    }
}
