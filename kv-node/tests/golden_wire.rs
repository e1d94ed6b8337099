//! Golden bytes of the wire format: every message of the Raft port, and the other
//! [`kv_core::wire`] types.
//!
//! **These bytes are the protocol.** Every node sends exactly them to its peers, and a node reads
//! a frame of its own [`PROTOCOL_VERSION`] as exactly this layout, so a build that encodes or
//! decodes them differently misreads the nodes it shares a cluster with. If a test here fails, you
//! changed the wire format (postcard encodes an enum by variant position and a struct by field
//! order, so reordering, inserting or removing a variant of `Op`, `Query`, `Response`, `OpError`,
//! `RaftRequest`, `RaftReply`, … is a change, as is a new field, and so is an openraft upgrade
//! that changes its messages). Do not just update the bytes. Bump
//! `kv_core::wire::PROTOCOL_VERSION` (`protocol_version` pins its value), so that peers of the
//! old and the new build refuse each other's frames ([`FrameError::UnsupportedVersion`]) instead
//! of misreading them, and update the bytes together with it; never the bytes alone.
//!
//! Each golden is a whole frame as [`frame::encode`] writes it: magic "QKVR", version (u16 LE),
//! payload length (u32 LE), postcard payload. Each test also decodes every golden frame with
//! [`frame::decode`] and compares it with the value. On a mismatch the helper prints the actual
//! bytes as a literal ready to paste, for the day the version is bumped on purpose.
//!
//! What is pinned:
//! - `protocol_version`: magic, header length and [`PROTOCOL_VERSION`] 3; a frame of another
//!   version is refused.
//! - `forwarded_ops`: a [`RaftRequest::Forward`] of each [`Op`] variant, with `Op::Read` of every
//!   [`Query`] variant (`Range` with each `Bound` variant), and `Op::Write` of the read-modify-write
//!   string commands (`MultiSetIfAbsent`, `GetAndExpire` with each `ExpiryChange`, `SetRange`,
//!   `IncrementFloat`, `Rename`, `Copy`, `ExpireIf` with both `ExpiryTime` variants,
//!   `ExpireDue`, `SetQuiet`).
//! - `forwarded_results`: a [`RaftReply::Forwarded`] of `Ok` of every [`Response`] variant (with
//!   every [`TtlState`] and [`CommandError`] variant) and of `Err` of every [`OpError`] variant.
//! - `raft_requests`: every [`RaftRequest`] variant: AppendEntries with one normal entry and as a
//!   heartbeat, Vote (plain and for a leadership transfer), PreVote, a snapshot chunk,
//!   TransferLeader, and a Forward of a run of operations.
//! - `raft_replies`: every [`RaftReply`] variant, with every `AppendEntriesResponse` variant and
//!   both outcomes (each error variant) of a leadership transfer.
//! - `handshake`: the Raft port's handshake before the first frame (hello, challenge, answer)
//!   for fixed nonces and secret; the HMACs were computed independently with Python's `hmac`.
//!   A change here needs `handshake::VERSION` bumped, as frames need [`PROTOCOL_VERSION`].
//! - `read_mode_role_and_status`: every [`ReadMode`] and [`Role`], and a [`Status`]. No port
//!   carries them postcard-encoded today, but they are wire types.
//!
//! Each test also checks that its goldens hold every variant it lists of the enums it covers
//! (`assert_covers`). The matches in the `*_variant` functions have no wildcard, so a new variant
//! does not compile until it is named there; then give it a golden and add it to the list.

mod golden_support;

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::ops::Bound;
use std::time::Duration;

use golden_support::Golden;
use golden_support::assert_golden;
use golden_support::unhex;
use kv_core::command::Command;
use kv_core::command::CommandError;
use kv_core::command::Expiry;
use kv_core::command::ExpiryChange;
use kv_core::command::ExpiryCondition;
use kv_core::command::ExpiryTime;
use kv_core::command::Query;
use kv_core::command::Response;
use kv_core::command::SetCondition;
use kv_core::command::TtlState;
use kv_core::command::TxOp;
use kv_core::command::WatchGuard;
use kv_core::command::Write;
use kv_core::raft::KvNode;
use kv_core::wire::Op;
use kv_core::wire::OpError;
use kv_core::wire::PROTOCOL_VERSION;
use kv_core::wire::ReadMode;
use kv_core::wire::Role;
use kv_core::wire::SnapshotChunk;
use kv_core::wire::Status;
use kv_core::wire::frame;
use kv_core::wire::frame::DEFAULT_MAX_FRAME;
use kv_core::wire::frame::FrameError;
use kv_core::wire::frame::HEADER_LEN;
use kv_core::wire::frame::MAGIC;
use kv_node::NodeConfig;
use kv_node::transport::RaftReply;
use kv_node::transport::RaftRequest;
use openraft::Membership;
use openraft::StoredMembership;
use openraft::alias::EntryOf;
use openraft::alias::LogIdOf;
use openraft::alias::SnapshotMetaOf;
use openraft::alias::VoteOf;
use openraft::entry::RaftEntry;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::AppendEntriesResponse;
use openraft::raft::SnapshotResponse;
use openraft::raft::TransferLeaderError;
use openraft::raft::TransferLeaderRequest;
use openraft::raft::VoteRequest;
use openraft::raft::VoteResponse;
use serde::Serialize;
use serde::de::DeserializeOwned;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Field lengths of a frame header: magic, version, payload length; the payload follows.
const FRAME_FIELDS: &[usize] = &[4, 2, 4];

/// Compares each value's frame with its golden bytes, then decodes each golden frame and checks
/// it equals the value by `same`. It first prints, for each frame that differs, the actual bytes
/// as a literal to paste (after bumping the version: see the module docs), then fails on the
/// first one, showing both sides in hex.
#[track_caller]
fn check_frames<T>(cases: &[(&'static str, T, &'static str)], same: impl Fn(&T, &T) -> bool)
where
    T: Serialize + DeserializeOwned + Debug,
{
    let goldens: Vec<Golden> = cases
        .iter()
        .map(|(name, value, golden)| Golden {
            name,
            actual: frame::encode(value),
            golden,
            fields: FRAME_FIELDS.to_vec(),
        })
        .collect();
    assert_golden(
        &goldens,
        "the wire format changed; bump PROTOCOL_VERSION with the bytes (see the module docs)",
    );

    for (name, value, golden) in cases {
        let golden = unhex(golden);
        let (decoded, used) =
            frame::decode::<T>(&golden, DEFAULT_MAX_FRAME).unwrap_or_else(|e| panic!("`{name}`: {e}"));
        assert_eq!(used, golden.len(), "`{name}` is one whole frame");
        assert!(
            same(&decoded, value),
            "`{name}` decodes to {decoded:?}, expected {value:?}"
        );
    }
}

/// Fails unless `seen` holds every name in `all`: each variant of an enum has a golden.
#[track_caller]
fn assert_covers(what: &str, seen: impl IntoIterator<Item = &'static str>, all: &[&str]) {
    let seen: BTreeSet<&str> = seen.into_iter().collect();
    let missing: Vec<&str> = all.iter().copied().filter(|name| !seen.contains(name)).collect();
    assert!(missing.is_empty(), "no golden holds the {what} variants {missing:?}");
}

/// The log id `(term, index)` of a leader on node 1.
fn log_id(term: u64, index: u64) -> LogIdOf<NodeConfig> {
    openraft::testing::log_id::<NodeConfig>(term, 1, index)
}

/// The committed vote of node 1, leader of term 2.
fn leader_vote() -> VoteOf<NodeConfig> {
    VoteOf::<NodeConfig>::new_committed(2, 1)
}

/// Node 3's vote for itself in term 3.
fn candidate_vote() -> VoteOf<NodeConfig> {
    VoteOf::<NodeConfig>::new(3, 3)
}

/// Node `n`'s addresses.
fn node(n: u64) -> KvNode {
    KvNode {
        raft_addr: format!("10.0.0.{n}:7000"),
        client_addr: format!("10.0.0.{n}:6379"),
    }
}

/// `SET k v`, as a command.
fn set_k_v() -> Command {
    Command::Set {
        key: b"k".to_vec(),
        value: b"v".to_vec(),
        condition: SetCondition::Always,
        expiry: Expiry::Never,
    }
}

/// A forward of a single operation.
fn forward(op: Op) -> RaftRequest {
    RaftRequest::Forward(vec![op])
}

/// The answer to a forward of a single operation.
fn forwarded(result: Result<Response, OpError>) -> RaftReply {
    RaftReply::Forwarded(vec![result])
}

/// `RaftRequest` has no `PartialEq` (nor have `AppendEntriesRequest` and `SnapshotChunk`):
/// compare variant by variant, field by field.
fn same_request(a: &RaftRequest, b: &RaftRequest) -> bool {
    match (a, b) {
        (RaftRequest::AppendEntries(a), RaftRequest::AppendEntries(b)) => {
            a.vote == b.vote
                && a.prev_log_id == b.prev_log_id
                && a.entries == b.entries
                && a.leader_commit == b.leader_commit
        }
        (RaftRequest::Vote(a), RaftRequest::Vote(b)) | (RaftRequest::PreVote(a), RaftRequest::PreVote(b)) => a == b,
        (RaftRequest::Snapshot(a), RaftRequest::Snapshot(b)) => {
            a.vote == b.vote
                && a.meta == b.meta
                && a.total_len == b.total_len
                && a.offset == b.offset
                && a.data == b.data
        }
        (RaftRequest::TransferLeader(a), RaftRequest::TransferLeader(b)) => a == b,
        (RaftRequest::Forward(a), RaftRequest::Forward(b)) => a == b,
        _ => false,
    }
}

/// `RaftReply` has no `PartialEq`; compare variant by variant.
fn same_reply(a: &RaftReply, b: &RaftReply) -> bool {
    match (a, b) {
        (RaftReply::AppendEntries(a), RaftReply::AppendEntries(b)) => a == b,
        (RaftReply::Vote(a), RaftReply::Vote(b)) => a == b,
        (RaftReply::SnapshotChunkStored, RaftReply::SnapshotChunkStored) => true,
        (RaftReply::SnapshotInstalled(a), RaftReply::SnapshotInstalled(b)) => a == b,
        (RaftReply::TransferLeader(a), RaftReply::TransferLeader(b)) => a == b,
        (RaftReply::Forwarded(a), RaftReply::Forwarded(b)) => a == b,
        (RaftReply::Refused(a), RaftReply::Refused(b)) => a == b,
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Variant names. No match has a wildcard: a new variant does not compile here. Name it, then add
// a golden that holds it and list it where its test calls `assert_covers`.
// ---------------------------------------------------------------------------------------------

fn request_variant(request: &RaftRequest) -> &'static str {
    match request {
        RaftRequest::AppendEntries(_) => "AppendEntries",
        RaftRequest::Vote(_) => "Vote",
        RaftRequest::PreVote(_) => "PreVote",
        RaftRequest::Snapshot(_) => "Snapshot",
        RaftRequest::TransferLeader(_) => "TransferLeader",
        RaftRequest::Forward(_) => "Forward",
    }
}

fn reply_variant(reply: &RaftReply) -> &'static str {
    match reply {
        RaftReply::AppendEntries(_) => "AppendEntries",
        RaftReply::Vote(_) => "Vote",
        RaftReply::SnapshotChunkStored => "SnapshotChunkStored",
        RaftReply::SnapshotInstalled(_) => "SnapshotInstalled",
        RaftReply::TransferLeader(_) => "TransferLeader",
        RaftReply::Forwarded(_) => "Forwarded",
        RaftReply::Refused(_) => "Refused",
    }
}

fn append_entries_response_variant(response: &AppendEntriesResponse<NodeConfig>) -> &'static str {
    match response {
        AppendEntriesResponse::Success => "Success",
        AppendEntriesResponse::PartialSuccess(_) => "PartialSuccess",
        AppendEntriesResponse::Conflict => "Conflict",
        AppendEntriesResponse::HigherVote(_) => "HigherVote",
    }
}

fn transfer_leader_response_variant(response: &Result<(), TransferLeaderError<NodeConfig>>) -> &'static str {
    match response {
        Ok(()) => "Ok",
        Err(TransferLeaderError::VoteChanged { .. }) => "VoteChanged",
        Err(TransferLeaderError::LogNotFlushed { .. }) => "LogNotFlushed",
    }
}

fn op_variant(op: &Op) -> &'static str {
    match op {
        Op::Write { .. } => "Write",
        Op::Read(_) => "Read",
        Op::AddLearner { .. } => "AddLearner",
        Op::Promote { .. } => "Promote",
        Op::Remove { .. } => "Remove",
        Op::TransferLeader { .. } => "TransferLeader",
        Op::ReadIndex => "ReadIndex",
    }
}

fn query_variant(query: &Query) -> &'static str {
    match query {
        Query::Get { .. } => "Get",
        Query::MultiGet { .. } => "MultiGet",
        Query::Range { .. } => "Range",
        Query::Prefix { .. } => "Prefix",
        Query::Ttl { .. } => "Ttl",
        Query::Count => "Count",
        Query::Keys { .. } => "Keys",
        Query::GetRevision { .. } => "GetRevision",
        Query::ExpireTime { .. } => "ExpireTime",
        Query::RandomKey { .. } => "RandomKey",
    }
}

fn bound_variant(bound: &Bound<Vec<u8>>) -> &'static str {
    match bound {
        Bound::Included(_) => "Included",
        Bound::Excluded(_) => "Excluded",
        Bound::Unbounded => "Unbounded",
    }
}

fn response_variant(response: &Response) -> &'static str {
    match response {
        Response::Ok => "Ok",
        Response::Set { .. } => "Set",
        Response::Cas { .. } => "Cas",
        Response::Value(_) => "Value",
        Response::Values(_) => "Values",
        Response::Entries(_) => "Entries",
        Response::Count(_) => "Count",
        Response::Integer(_) => "Integer",
        Response::Ttl(_) => "Ttl",
        Response::Error(_) => "Error",
        Response::Keys(_) => "Keys",
        Response::ReadIndex(_) => "ReadIndex",
        Response::Session(_) => "Session",
        Response::Transaction(_) => "Transaction",
        Response::Revisioned { .. } => "Revisioned",
    }
}

fn ttl_state_variant(state: &TtlState) -> &'static str {
    match state {
        TtlState::Missing => "Missing",
        TtlState::Persistent => "Persistent",
        TtlState::Remaining(_) => "Remaining",
        TtlState::ExpiresAt(_) => "ExpiresAt",
    }
}

fn command_error_variant(error: &CommandError) -> &'static str {
    match error {
        CommandError::NotAnInteger => "NotAnInteger",
        CommandError::Overflow => "Overflow",
        CommandError::ValueTooLong { .. } => "ValueTooLong",
        CommandError::ReplyTooLarge { .. } => "ReplyTooLarge",
        CommandError::SessionExpired { .. } => "SessionExpired",
        CommandError::SessionStale { .. } => "SessionStale",
        CommandError::NotAFloat => "NotAFloat",
        CommandError::NotFinite => "NotFinite",
        CommandError::NoSuchKey => "NoSuchKey",
    }
}

fn op_error_variant(error: &OpError) -> &'static str {
    match error {
        OpError::NotLeader { .. } => "NotLeader",
        OpError::NoLeader => "NoLeader",
        OpError::Unavailable(_) => "Unavailable",
        OpError::Timeout(_) => "Timeout",
        OpError::OutcomeUnknown(_) => "OutcomeUnknown",
        OpError::Rejected(_) => "Rejected",
    }
}

fn read_mode_variant(mode: &ReadMode) -> &'static str {
    match mode {
        ReadMode::Linearizable => "Linearizable",
        ReadMode::Stale => "Stale",
    }
}

fn role_variant(role: &Role) -> &'static str {
    match role {
        Role::Leader => "Leader",
        Role::Follower => "Follower",
        Role::Candidate => "Candidate",
        Role::Learner => "Learner",
        Role::Shutdown => "Shutdown",
    }
}

// ---------------------------------------------------------------------------------------------
// Golden bytes
// ---------------------------------------------------------------------------------------------

#[test]
fn protocol_version() {
    assert_eq!(PROTOCOL_VERSION, 3);
    assert_eq!(MAGIC, *b"QKVR");
    assert_eq!(HEADER_LEN, 10);
    // magic "QKVR", version 3, payload length 1; RaftReply::SnapshotChunkStored
    let golden = "514b5652 0300 01000000 02";
    check_frames(&[("header", RaftReply::SnapshotChunkStored, golden)], same_reply);

    // A peer of another version is refused, not misread.
    for version in [PROTOCOL_VERSION - 1, PROTOCOL_VERSION + 1] {
        let mut frame = unhex(golden);
        frame[4..6].copy_from_slice(&version.to_le_bytes());
        assert!(matches!(
            frame::decode::<RaftReply>(&frame, DEFAULT_MAX_FRAME),
            Err(FrameError::UnsupportedVersion { found }) if found == version
        ));
    }
}

#[test]
fn forwarded_ops() {
    let read = |query| forward(Op::Read(query));
    let write = |command| forward(Op::Write { command, ttl_ms: None });
    let cases = vec![
        (
            "write with ttl",
            forward(Op::Write {
                command: set_k_v(),
                ttl_ms: Some(60_000),
            }),
            // header: magic "QKVR", version 2, payload length 14; RaftRequest::Forward, 1 op;
            // Op::Write: Command::Set "k" "v" Always Never, ttl_ms Some(60000)
            "514b5652 0300 0e000000 05 01 00 00 016b 0176 00 00 01 e0d403",
        ),
        (
            "write without ttl",
            forward(Op::Write {
                command: Command::Clear,
                ttl_ms: None,
            }),
            "514b5652 0300 05000000 05 01 00 08 00",
        ),
        (
            "read get",
            read(Query::Get { key: b"k".to_vec() }),
            // Forward, 1 op; Op::Read, Query::Get "k"
            "514b5652 0300 06000000 05 01 01 00 016b",
        ),
        (
            "read multi-get",
            read(Query::MultiGet {
                keys: vec![b"a".to_vec(), b"b".to_vec()],
            }),
            "514b5652 0300 09000000 05 01 01 01 02 0161 0162",
        ),
        (
            "read range included to excluded",
            read(Query::Range {
                start: Bound::Included(b"a".to_vec()),
                end: Bound::Excluded(b"z".to_vec()),
                limit: 10,
            }),
            // Query::Range: Bound::Included "a", Bound::Excluded "z", limit 10
            "514b5652 0300 0b000000 05 01 01 02 01 0161 02 017a 0a",
        ),
        (
            "read range unbounded",
            read(Query::Range {
                start: Bound::Unbounded,
                end: Bound::Unbounded,
                limit: 1000,
            }),
            "514b5652 0300 08000000 05 01 01 02 00 00 e807",
        ),
        (
            "read prefix",
            read(Query::Prefix {
                prefix: b"user:".to_vec(),
                limit: 100,
            }),
            "514b5652 0300 0b000000 05 01 01 03 05757365723a 64",
        ),
        (
            "read ttl",
            read(Query::Ttl { key: b"k".to_vec() }),
            "514b5652 0300 06000000 05 01 01 04 016b",
        ),
        ("read count", read(Query::Count), "514b5652 0300 04000000 05 01 01 05"),
        (
            "read keys",
            read(Query::Keys {
                start: Bound::Included(b"a".to_vec()),
                end: Bound::Excluded(b"z".to_vec()),
                limit: 10,
            }),
            // Query::Keys: Bound::Included "a", Bound::Excluded "z", limit 10
            "514b5652 0300 0b000000 05 01 01 06 01 0161 02 017a 0a",
        ),
        (
            "add learner",
            forward(Op::AddLearner { id: 4, node: node(4) }),
            // Op::AddLearner: id 4, Raft and client addresses
            "514b5652 0300 20000000 05 01 02 04 0d31302e302e302e343a37303030 0d31302e302e302e343a36333739",
        ),
        (
            "promote",
            forward(Op::Promote { id: 4 }),
            "514b5652 0300 04000000 05 01 03 04",
        ),
        (
            "remove",
            forward(Op::Remove { id: 3 }),
            "514b5652 0300 04000000 05 01 04 03",
        ),
        (
            "transfer leader",
            forward(Op::TransferLeader { to: 2 }),
            "514b5652 0300 04000000 05 01 05 02",
        ),
        ("read index", forward(Op::ReadIndex), "514b5652 0300 03000000 05 01 06"),
        (
            "read get revision",
            read(Query::GetRevision { key: b"k".to_vec() }),
            "514b5652 0300 06000000 05 01 01 07 016b",
        ),
        (
            "write in a session",
            forward(Op::Write {
                command: Command::Session {
                    id: 7,
                    seq: 2,
                    acked: 1,
                    command: Box::new(Command::Increment {
                        key: b"n".to_vec(),
                        delta: 1,
                    }),
                },
                ttl_ms: None,
            }),
            // Op::Write: Command::Session id 7, seq 2, acked 1, Increment "n" by 1; no ttl
            "514b5652 0300 0c000000 05 01 00 0a 07 02 01 05 016e 02 00",
        ),
        (
            "write a transaction",
            forward(Op::Write {
                command: Command::Transaction {
                    guard: Some(WatchGuard {
                        since: 9,
                        keys: vec![b"k".to_vec()],
                    }),
                    ops: vec![
                        TxOp::Write {
                            command: set_k_v(),
                            ttl_ms: None,
                        },
                        TxOp::Read(Query::Get { key: b"k".to_vec() }),
                    ],
                },
                ttl_ms: None,
            }),
            // Op::Write: Command::Transaction, guard since 9 on ["k"]; TxOp::Write SET k v
            // (no ttl), TxOp::Read GET k; no ttl
            "514b5652 0300 18000000 05 01 00 0c 01 09 01 016b 02 00 00 016b 0176 00 00 00 01 00 016b 00",
        ),
        (
            "write msetnx",
            write(Command::MultiSetIfAbsent {
                pairs: vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())],
            }),
            // Op::Write: Command::MultiSetIfAbsent, 2 pairs ("a", "1"), ("b", "2"); no ttl
            "514b5652 0300 0e000000 05 01 00 0e 02 0161 0131 0162 0132 00",
        ),
        (
            "write getex in",
            write(Command::GetAndExpire {
                key: b"k".to_vec(),
                change: ExpiryChange::Set(ExpiryTime::In(5_000)),
            }),
            // Command::GetAndExpire "k", ExpiryChange::Set, ExpiryTime::In 5000; no ttl
            "514b5652 0300 0b000000 05 01 00 0f 016b 02 00 8827 00",
        ),
        (
            "write getex persist",
            write(Command::GetAndExpire {
                key: b"k".to_vec(),
                change: ExpiryChange::Persist,
            }),
            "514b5652 0300 08000000 05 01 00 0f 016b 01 00",
        ),
        (
            "write getex keep",
            write(Command::GetAndExpire {
                key: b"k".to_vec(),
                change: ExpiryChange::Keep,
            }),
            "514b5652 0300 08000000 05 01 00 0f 016b 00 00",
        ),
        (
            "write setrange",
            write(Command::SetRange {
                key: b"k".to_vec(),
                offset: 6,
                value: b"xy".to_vec(),
            }),
            // Command::SetRange "k", offset 6, value "xy"; no ttl
            "514b5652 0300 0b000000 05 01 00 10 016b 06 027879 00",
        ),
        (
            "write incrbyfloat",
            write(Command::IncrementFloat {
                key: b"k".to_vec(),
                delta: b"0.5".to_vec(),
            }),
            // Command::IncrementFloat "k", delta "0.5" (the client's text); no ttl
            "514b5652 0300 0b000000 05 01 00 11 016b 03302e35 00",
        ),
        (
            "write renamenx",
            write(Command::Rename {
                source: b"a".to_vec(),
                destination: b"b".to_vec(),
                if_absent: true,
            }),
            "514b5652 0300 0a000000 05 01 00 12 0161 0162 01 00",
        ),
        (
            "write copy",
            write(Command::Copy {
                source: b"a".to_vec(),
                destination: b"b".to_vec(),
                replace: false,
            }),
            "514b5652 0300 0a000000 05 01 00 13 0161 0162 00 00",
        ),
        (
            "write expire at, xx lt",
            write(Command::ExpireIf {
                key: b"k".to_vec(),
                at: ExpiryTime::At(1_700_000_000_000),
                condition: ExpiryCondition::HasExpiryEarlier,
            }),
            // Command::ExpireIf "k", ExpiryTime::At 1_700_000_000_000,
            // ExpiryCondition::HasExpiryEarlier; no ttl
            "514b5652 0300 0f000000 05 01 00 14 016b 01 80d095ffbc31 05 00",
        ),
        (
            "write expire in, gt",
            write(Command::ExpireIf {
                key: b"k".to_vec(),
                at: ExpiryTime::In(100),
                condition: ExpiryCondition::Later,
            }),
            "514b5652 0300 0a000000 05 01 00 14 016b 00 64 03 00",
        ),
        (
            "write expire due",
            write(Command::ExpireDue),
            // Command::ExpireDue (the leader's active-expiry tick; no fields); no ttl
            "514b5652 0300 05000000 05 01 00 15 00",
        ),
        (
            "write set quiet",
            write(Command::SetQuiet {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                condition: SetCondition::IfPresent,
                expiry: Expiry::Keep,
            }),
            // Command::SetQuiet "k" "v", SetCondition::IfPresent, Expiry::Keep; no ttl
            "514b5652 0300 0b000000 05 01 00 16 016b 0176 02 02 00",
        ),
        (
            "read expire time",
            read(Query::ExpireTime { key: b"k".to_vec() }),
            "514b5652 0300 06000000 05 01 01 08 016b",
        ),
        (
            "read random key",
            read(Query::RandomKey { seed: 300 }),
            "514b5652 0300 06000000 05 01 01 09 ac02",
        ),
    ];
    check_frames(&cases, same_request);

    let ops: Vec<&Op> = cases
        .iter()
        .flat_map(|(_, request, _)| match request {
            RaftRequest::Forward(ops) => ops.iter(),
            other => panic!("not a forward: {other:?}"),
        })
        .collect();
    let queries: Vec<&Query> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Read(query) => Some(query),
            _ => None,
        })
        .collect();
    let bounds = queries.iter().flat_map(|query| match query {
        Query::Range { start, end, .. } => vec![bound_variant(start), bound_variant(end)],
        _ => vec![],
    });
    assert_covers(
        "Op",
        ops.iter().map(|op| op_variant(op)),
        &[
            "Write",
            "Read",
            "AddLearner",
            "Promote",
            "Remove",
            "TransferLeader",
            "ReadIndex",
        ],
    );
    assert_covers(
        "Query",
        queries.iter().map(|query| query_variant(query)),
        &[
            "Get",
            "MultiGet",
            "Range",
            "Prefix",
            "Ttl",
            "Count",
            "Keys",
            "GetRevision",
            "ExpireTime",
            "RandomKey",
        ],
    );
    assert_covers("Bound", bounds, &["Included", "Excluded", "Unbounded"]);
}

#[test]
fn forwarded_results() {
    let ok = |response| forwarded(Ok(response));
    let err = |error| forwarded(Err(error));
    let cases = vec![
        (
            "ok",
            ok(Response::Ok),
            // RaftReply::Forwarded, 1 result; Ok, Response::Ok
            "514b5652 0300 04000000 05 01 00 00",
        ),
        (
            "set written, no previous",
            ok(Response::Set {
                written: true,
                previous: None,
            }),
            "514b5652 0300 06000000 05 01 00 01 01 00",
        ),
        (
            "cas not swapped, previous",
            ok(Response::Cas {
                swapped: false,
                previous: Some(b"old".to_vec()),
            }),
            "514b5652 0300 0a000000 05 01 00 02 00 01036f6c64",
        ),
        (
            "value some",
            ok(Response::Value(Some(b"v".to_vec()))),
            "514b5652 0300 07000000 05 01 00 03 010176",
        ),
        (
            "value none",
            ok(Response::Value(None)),
            "514b5652 0300 05000000 05 01 00 03 00",
        ),
        (
            "values",
            ok(Response::Values(vec![Some(b"v".to_vec()), None])),
            "514b5652 0300 09000000 05 01 00 04 02 010176 00",
        ),
        (
            "entries",
            ok(Response::Entries(vec![(b"a".to_vec(), b"1".to_vec())])),
            "514b5652 0300 09000000 05 01 00 05 01 0161 0131",
        ),
        ("count", ok(Response::Count(3)), "514b5652 0300 05000000 05 01 00 06 03"),
        (
            "integer",
            ok(Response::Integer(-42)),
            "514b5652 0300 05000000 05 01 00 07 53",
        ),
        (
            "ttl missing",
            ok(Response::Ttl(TtlState::Missing)),
            "514b5652 0300 05000000 05 01 00 08 00",
        ),
        (
            "ttl persistent",
            ok(Response::Ttl(TtlState::Persistent)),
            "514b5652 0300 05000000 05 01 00 08 01",
        ),
        (
            "ttl remaining",
            ok(Response::Ttl(TtlState::Remaining(1_500))),
            "514b5652 0300 07000000 05 01 00 08 02 dc0b",
        ),
        (
            "ttl expires at",
            ok(Response::Ttl(TtlState::ExpiresAt(1_500))),
            // Response::Ttl, TtlState::ExpiresAt 1500 (the answer to Query::ExpireTime)
            "514b5652 0300 07000000 05 01 00 08 03 dc0b",
        ),
        (
            "error not a float",
            ok(Response::Error(CommandError::NotAFloat)),
            "514b5652 0300 05000000 05 01 00 09 06",
        ),
        (
            "error not finite",
            ok(Response::Error(CommandError::NotFinite)),
            "514b5652 0300 05000000 05 01 00 09 07",
        ),
        (
            "error no such key",
            ok(Response::Error(CommandError::NoSuchKey)),
            "514b5652 0300 05000000 05 01 00 09 08",
        ),
        (
            "error not an integer",
            ok(Response::Error(CommandError::NotAnInteger)),
            "514b5652 0300 05000000 05 01 00 09 00",
        ),
        (
            "error overflow",
            ok(Response::Error(CommandError::Overflow)),
            "514b5652 0300 05000000 05 01 00 09 01",
        ),
        (
            "error value too long",
            ok(Response::Error(CommandError::ValueTooLong { len: 300, max: 256 })),
            // Response::Error, CommandError::ValueTooLong: len 300, max 256
            "514b5652 0300 09000000 05 01 00 09 02 ac02 8002",
        ),
        (
            "error reply too large",
            ok(Response::Error(CommandError::ReplyTooLarge { max: 256 })),
            // Response::Error, CommandError::ReplyTooLarge: max 256
            "514b5652 0300 07000000 05 01 00 09 03 8002",
        ),
        (
            "keys",
            ok(Response::Keys(vec![b"a".to_vec(), b"b".to_vec()])),
            "514b5652 0300 09000000 05 01 00 0a 02 0161 0162",
        ),
        (
            "read index",
            ok(Response::ReadIndex(300)),
            "514b5652 0300 06000000 05 01 00 0b ac02",
        ),
        (
            "session",
            ok(Response::Session(7)),
            "514b5652 0300 05000000 05 01 00 0c 07",
        ),
        (
            "transaction aborted",
            ok(Response::Transaction(None)),
            "514b5652 0300 05000000 05 01 00 0d 00",
        ),
        (
            "transaction",
            ok(Response::Transaction(Some(vec![Response::Ok, Response::Integer(1)]))),
            // Response::Transaction: Some, 2 answers: Ok, Integer 1
            "514b5652 0300 09000000 05 01 00 0d 01 02 00 07 02",
        ),
        (
            "revisioned",
            ok(Response::Revisioned {
                value: Some(b"v".to_vec()),
                mod_revision: 41,
                revision: 300,
            }),
            // Response::Revisioned: value Some "v", mod revision 41, revision 300
            "514b5652 0300 0a000000 05 01 00 0e 01 0176 29 ac02",
        ),
        (
            "error session expired",
            ok(Response::Error(CommandError::SessionExpired { id: 7 })),
            "514b5652 0300 06000000 05 01 00 09 04 07",
        ),
        (
            "error session stale",
            ok(Response::Error(CommandError::SessionStale {
                id: 7,
                seq: 3,
                floor: 5,
            })),
            // CommandError::SessionStale: id 7, seq 3, floor 5
            "514b5652 0300 08000000 05 01 00 09 05 07 03 05",
        ),
        (
            "not leader, leader known",
            err(OpError::NotLeader {
                node: 2,
                leader: Some(1),
            }),
            // Forwarded, 1 result; Err, OpError::NotLeader: node 2, leader Some(1)
            "514b5652 0300 07000000 05 01 01 00 02 0101",
        ),
        (
            "not leader, leader unknown",
            err(OpError::NotLeader { node: 2, leader: None }),
            "514b5652 0300 06000000 05 01 01 00 02 00",
        ),
        (
            "no leader",
            err(OpError::NoLeader),
            "514b5652 0300 04000000 05 01 01 01",
        ),
        (
            "unavailable",
            err(OpError::Unavailable("stopping".to_string())),
            "514b5652 0300 0d000000 05 01 01 02 0873746f7070696e67",
        ),
        (
            "timeout",
            err(OpError::Timeout(Duration::from_millis(1_500))),
            // OpError::Timeout: a Duration, 1 s and 500_000_000 ns
            "514b5652 0300 0a000000 05 01 01 03 01 80cab5ee01",
        ),
        (
            "outcome unknown",
            err(OpError::OutcomeUnknown("leader stepped down".to_string())),
            "514b5652 0300 18000000 05 01 01 04 136c6561646572207374657070656420646f776e",
        ),
        (
            "rejected",
            err(OpError::Rejected("key too long".to_string())),
            "514b5652 0300 11000000 05 01 01 05 0c6b657920746f6f206c6f6e67",
        ),
    ];
    check_frames(&cases, same_reply);

    let results: Vec<&Result<Response, OpError>> = cases
        .iter()
        .flat_map(|(_, reply, _)| match reply {
            RaftReply::Forwarded(results) => results.iter(),
            other => panic!("not a forward's answer: {other:?}"),
        })
        .collect();
    let responses: Vec<&Response> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_covers(
        "Response",
        responses.iter().map(|response| response_variant(response)),
        &[
            "Ok",
            "Set",
            "Cas",
            "Value",
            "Values",
            "Entries",
            "Count",
            "Integer",
            "Ttl",
            "Error",
            "Keys",
            "ReadIndex",
            "Session",
            "Transaction",
            "Revisioned",
        ],
    );
    assert_covers(
        "TtlState",
        responses.iter().filter_map(|response| match response {
            Response::Ttl(state) => Some(ttl_state_variant(state)),
            _ => None,
        }),
        &["Missing", "Persistent", "Remaining", "ExpiresAt"],
    );
    assert_covers(
        "CommandError",
        responses.iter().filter_map(|response| match response {
            Response::Error(error) => Some(command_error_variant(error)),
            _ => None,
        }),
        &[
            "NotAnInteger",
            "Overflow",
            "ValueTooLong",
            "ReplyTooLarge",
            "SessionExpired",
            "SessionStale",
            "NotAFloat",
            "NotFinite",
            "NoSuchKey",
        ],
    );
    assert_covers(
        "OpError",
        results.iter().filter_map(|r| r.as_ref().err().map(op_error_variant)),
        &[
            "NotLeader",
            "NoLeader",
            "Unavailable",
            "Timeout",
            "OutcomeUnknown",
            "Rejected",
        ],
    );
}

#[test]
fn raft_requests() {
    let write = Write {
        at_ms: 1_700_000_000_000,
        command: set_k_v(),
    };
    let membership = Membership::new(
        vec![BTreeSet::from([1, 2])],
        BTreeMap::from([(1, node(1)), (2, node(2))]),
    )
    .expect("voters are among the nodes");
    let cases = vec![
        (
            "append entries, one normal entry",
            RaftRequest::AppendEntries(AppendEntriesRequest {
                vote: leader_vote(),
                prev_log_id: Some(log_id(2, 9)),
                entries: vec![EntryOf::<NodeConfig>::new_normal(log_id(2, 10), write.into())],
                leader_commit: Some(log_id(2, 8)),
            }),
            // RaftRequest::AppendEntries; vote: term 2, node Some(1), committed; prev log id Some(2, 9);
            // 1 entry: log id (2, 10), EntryPayload::Normal, at_ms, Command::Set "k" "v" Always Never;
            // leader commit Some(2, 8)
            "514b5652 0300 1c000000 00 02010101 01 0209 01 020a 01 80d095ffbc31 00 016b 0176 00 00 01 0208",
        ),
        (
            "append entries, heartbeat",
            RaftRequest::AppendEntries(AppendEntriesRequest {
                vote: leader_vote(),
                prev_log_id: Some(log_id(2, 10)),
                entries: vec![],
                leader_commit: None,
            }),
            "514b5652 0300 0a000000 00 02010101 01 020a 00 00",
        ),
        (
            "vote",
            RaftRequest::Vote(VoteRequest::new(candidate_vote(), Some(log_id(2, 10)))),
            // RaftRequest::Vote; vote: term 3, node Some(3), not committed; last log id Some(2, 10);
            // leadership_transfer false
            "514b5652 0300 09000000 01 03010300 01 020a 00",
        ),
        (
            "vote for a leadership transfer",
            RaftRequest::Vote(VoteRequest {
                vote: candidate_vote(),
                last_log_id: Some(log_id(2, 10)),
                leadership_transfer: true,
            }),
            "514b5652 0300 09000000 01 03010300 01 020a 01",
        ),
        (
            "pre-vote",
            RaftRequest::PreVote(VoteRequest::new(candidate_vote(), None)),
            "514b5652 0300 07000000 02 03010300 00 00",
        ),
        (
            "snapshot chunk",
            RaftRequest::Snapshot(SnapshotChunk {
                vote: leader_vote(),
                meta: SnapshotMetaOf::<NodeConfig> {
                    last_log_id: Some(log_id(2, 8)),
                    last_membership: StoredMembership::new(Some(log_id(1, 2)), membership),
                },
                total_len: 6,
                offset: 4,
                data: vec![0x00, 0xff],
            }),
            // RaftRequest::Snapshot; vote; meta: last log id Some(2, 8), membership log id Some(1, 2),
            // one config {1, 2}, nodes 1 and 2 with addresses, the empty `snapshot_id` slot openraft
            // keeps for 0.9; total_len 6, offset 4, data 00 ff
            "514b5652 0300 50000000 03 02010101 \
             01 0208 01 0102 01 02 0102 02 \
             01 0d31302e302e302e313a37303030 0d31302e302e302e313a36333739 \
             02 0d31302e302e302e323a37303030 0d31302e302e302e323a36333739 \
             00 06 04 02 00ff",
        ),
        (
            "transfer leader",
            RaftRequest::TransferLeader(TransferLeaderRequest::new(leader_vote(), 3, Some(log_id(2, 10)))),
            // RaftRequest::TransferLeader: from the leader's vote, to node 3, last log id Some(2, 10)
            "514b5652 0300 09000000 04 02010101 03 01 020a",
        ),
        (
            "forward a run of operations",
            RaftRequest::Forward(vec![
                Op::Write {
                    command: set_k_v(),
                    ttl_ms: None,
                },
                Op::Read(Query::Get { key: b"k".to_vec() }),
            ]),
            // Forward, 2 ops: Op::Write (SET k v, ttl_ms None), Op::Read (Query::Get "k")
            "514b5652 0300 0f000000 05 02 00 00 016b 0176 00 00 00 01 00 016b",
        ),
    ];
    check_frames(&cases, same_request);
    assert_covers(
        "RaftRequest",
        cases.iter().map(|(_, request, _)| request_variant(request)),
        &[
            "AppendEntries",
            "Vote",
            "PreVote",
            "Snapshot",
            "TransferLeader",
            "Forward",
        ],
    );
}

#[test]
fn raft_replies() {
    let cases = vec![
        (
            "append entries success",
            RaftReply::AppendEntries(AppendEntriesResponse::Success),
            // RaftReply::AppendEntries, AppendEntriesResponse::Success
            "514b5652 0300 02000000 00 00",
        ),
        (
            "append entries partial success, some",
            RaftReply::AppendEntries(AppendEntriesResponse::PartialSuccess(Some(log_id(2, 10)))),
            "514b5652 0300 05000000 00 01 01 020a",
        ),
        (
            "append entries partial success, none",
            RaftReply::AppendEntries(AppendEntriesResponse::PartialSuccess(None)),
            "514b5652 0300 03000000 00 01 00",
        ),
        (
            "append entries conflict",
            RaftReply::AppendEntries(AppendEntriesResponse::Conflict),
            "514b5652 0300 02000000 00 02",
        ),
        (
            "append entries higher vote",
            RaftReply::AppendEntries(AppendEntriesResponse::HigherVote(candidate_vote())),
            "514b5652 0300 06000000 00 03 03010300",
        ),
        (
            "vote",
            RaftReply::Vote(VoteResponse::new(candidate_vote(), Some(log_id(2, 10)), true)),
            // RaftReply::Vote; vote: term 3, node Some(3), not committed; granted; last log id Some(2, 10)
            "514b5652 0300 09000000 01 03010300 01 01 020a",
        ),
        (
            "snapshot chunk stored",
            RaftReply::SnapshotChunkStored,
            "514b5652 0300 01000000 02",
        ),
        (
            "snapshot installed",
            RaftReply::SnapshotInstalled(SnapshotResponse::new(leader_vote())),
            "514b5652 0300 05000000 03 02010101",
        ),
        (
            "transfer leader ok",
            RaftReply::TransferLeader(Ok(())),
            "514b5652 0300 02000000 04 00",
        ),
        (
            "transfer leader vote changed",
            RaftReply::TransferLeader(Err(TransferLeaderError::VoteChanged {
                expected: leader_vote(),
                actual: candidate_vote(),
            })),
            // RaftReply::TransferLeader, Err, VoteChanged: expected the leader's vote, actual the candidate's
            "514b5652 0300 0b000000 04 01 00 02010101 03010300",
        ),
        (
            "transfer leader log not flushed",
            RaftReply::TransferLeader(Err(TransferLeaderError::LogNotFlushed {
                expected: Some(log_id(2, 10)),
                actual: Some(log_id(2, 9)),
            })),
            "514b5652 0300 09000000 04 01 01 01 020a 01 0209",
        ),
        (
            "forwarded a run of results",
            RaftReply::Forwarded(vec![Ok(Response::Ok), Err(OpError::NoLeader)]),
            // Forwarded, 2 results: Ok(Response::Ok), Err(OpError::NoLeader)
            "514b5652 0300 06000000 05 02 00 00 01 01",
        ),
        (
            "refused",
            RaftReply::Refused("snapshot chunk at offset 4 without its start".to_string()),
            "514b5652 0300 2e000000 06 2c \
             736e617073686f74206368756e6b206174206f66667365742034 \
             20776974686f757420697473207374617274",
        ),
    ];
    check_frames(&cases, same_reply);
    assert_covers(
        "RaftReply",
        cases.iter().map(|(_, reply, _)| reply_variant(reply)),
        &[
            "AppendEntries",
            "Vote",
            "SnapshotChunkStored",
            "SnapshotInstalled",
            "TransferLeader",
            "Forwarded",
            "Refused",
        ],
    );
    assert_covers(
        "AppendEntriesResponse",
        cases.iter().filter_map(|(_, reply, _)| match reply {
            RaftReply::AppendEntries(response) => Some(append_entries_response_variant(response)),
            _ => None,
        }),
        &["Success", "PartialSuccess", "Conflict", "HigherVote"],
    );
    assert_covers(
        "TransferLeaderResponse",
        cases.iter().filter_map(|(_, reply, _)| match reply {
            RaftReply::TransferLeader(response) => Some(transfer_leader_response_variant(response)),
            _ => None,
        }),
        &["Ok", "VoteChanged", "LogNotFlushed"],
    );
}

#[test]
fn read_mode_role_and_status() {
    let modes = [
        ("linearizable", ReadMode::Linearizable, "514b5652 0300 01000000 00"),
        ("stale", ReadMode::Stale, "514b5652 0300 01000000 01"),
    ];
    check_frames(&modes, ReadMode::eq);
    assert_covers(
        "ReadMode",
        modes.iter().map(|(_, mode, _)| read_mode_variant(mode)),
        &["Linearizable", "Stale"],
    );

    let roles = [
        ("leader", Role::Leader, "514b5652 0300 01000000 00"),
        ("follower", Role::Follower, "514b5652 0300 01000000 01"),
        ("candidate", Role::Candidate, "514b5652 0300 01000000 02"),
        ("learner", Role::Learner, "514b5652 0300 01000000 03"),
        ("shutdown", Role::Shutdown, "514b5652 0300 01000000 04"),
    ];
    check_frames(&roles, Role::eq);
    assert_covers(
        "Role",
        roles.iter().map(|(_, role, _)| role_variant(role)),
        &["Leader", "Follower", "Candidate", "Learner", "Shutdown"],
    );

    // Each index differs, so swapping two fields changes the bytes.
    let status = Status {
        id: 2,
        role: Role::Follower,
        term: 3,
        leader: Some((1, node(1))),
        last_log_index: 10,
        commit_index: 9,
        applied_index: 8,
        snapshot_index: 7,
        purged_index: 6,
        voters: vec![(1, node(1)), (2, node(2))],
        learners: vec![(3, node(3))],
    };
    // id 2, Follower, term 3, leader Some(node 1 with its addresses), last log 10, committed 9,
    // applied 8, snapshot 7, purged 6; voters nodes 1 and 2, learners node 3
    let golden = "514b5652 0300 7f000000 02 01 03 \
        01 01 0d31302e302e302e313a37303030 0d31302e302e302e313a36333739 \
        0a 09 08 07 06 \
        02 01 0d31302e302e302e313a37303030 0d31302e302e302e313a36333739 \
           02 0d31302e302e302e323a37303030 0d31302e302e302e323a36333739 \
        01 03 0d31302e302e302e333a37303030 0d31302e302e302e333a36333739";
    check_frames(&[("status", status, golden)], Status::eq);
}

#[test]
fn handshake() {
    use kv_core::wire::handshake;
    let key = handshake::ClusterKey::new(b"golden secret");
    let (nonce_c, nonce_s) = ([1u8; 32], [2u8; 32]);
    assert_eq!(handshake::VERSION, 1);
    let hello = handshake::hello(&nonce_c);
    assert_eq!(
        hello.to_vec(),
        unhex("514b5648 0100 0101010101010101010101010101010101010101010101010101010101010101")
    );
    let challenge = handshake::challenge(&key, &nonce_c, &nonce_s);
    assert_eq!(
        challenge.to_vec(),
        unhex(
            "514b5648 0100 0202020202020202020202020202020202020202020202020202020202020202 \
             31e1988830a7eaf7cc4a71199934cbea1edab6db66de9321381ee372e8c7643e"
        )
    );
    let answer = handshake::answer(&key, &nonce_c, &challenge).unwrap();
    assert_eq!(
        answer.to_vec(),
        unhex("e0b3fe6cc1af28827bbe49caea55710d6c9fb014b217c7351d9ec2085fd14d8a")
    );
    assert_eq!(handshake::check_answer(&key, &nonce_c, &nonce_s, &answer), Ok(()));
}
