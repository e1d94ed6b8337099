//! The receiving side of the Raft port: accepts peers' connections and hands their requests
//! to openraft, and forwarded client operations to the node's request path. Every request
//! passes [`sanity::check_request`] first: a term or index no honest peer sends is refused,
//! logged with the peer's address and counted (`quorumkv_raft_messages_refused_total`).

use std::net::SocketAddr;

use openraft::alias::SnapshotMetaOf;
use openraft::alias::SnapshotOf;
use openraft::type_config::async_runtime::WatchReceiver;
use tokio::io::AsyncWriteExt;

use kv_core::wire::SnapshotChunk;
use kv_core::wire::frame;
use kv_core::wire::frame::FrameError;
use kv_core::wire::sanity;

use crate::NodeConfig;
use crate::node::Node;
use crate::tls::Stream;
use crate::transport::RaftReply;
use crate::transport::RaftRequest;
use crate::transport::frame_io;
use crate::transport::handshake;

/// A snapshot being received: its metadata and the bytes so far.
struct Incoming {
    meta: SnapshotMetaOf<NodeConfig>,
    data: Vec<u8>,
}

/// Serves one peer connection: requests answered one at a time, until the peer closes it or
/// the node shuts down.
pub async fn connection(mut stream: Stream, peer: SocketAddr, node: Node) -> Result<(), FrameError> {
    let node = &node;
    if let Err(refusal) = handshake::accept(&mut stream, &node.options().cluster_key()).await {
        tracing::warn!(%peer, %refusal, "refused a Raft port connection: not a member");
        node.metrics().raft_handshakes_refused.add(1);
        return Ok(());
    }
    let max = node.options().transport.max_frame;
    let mut shutdown = node.shutdown_signal();
    let mut incoming: Option<Incoming> = None;
    loop {
        let request = tokio::select! {
            request = frame_io::read::<RaftRequest, _>(&mut stream, max) => request?,
            _ = shutdown.changed() => return Ok(()),
        };
        let Some(request) = request else {
            return Ok(());
        };
        let current = node.raft().metrics().borrow_watched().current_term;
        let reply = match sanity::check_request(&request, current) {
            Ok(()) => handle(node, request, &mut incoming).await,
            Err(insane) => {
                tracing::warn!(%peer, %insane, "refused a Raft message before openraft saw it");
                node.metrics().raft_messages_refused.add(1);
                RaftReply::Refused(insane.to_string())
            }
        };
        stream.write_all(&frame::encode(&reply)).await?;
    }
}

async fn handle(node: &Node, request: RaftRequest, incoming: &mut Option<Incoming>) -> RaftReply {
    let raft = node.raft();
    let refused = |e: &dyn std::fmt::Display| RaftReply::Refused(e.to_string());
    match request {
        RaftRequest::AppendEntries(rpc) => {
            let last = raft.metrics().borrow_watched().last_log_index;
            let leader = rpc.vote.leader_id().voted_for;
            let prev = rpc.prev_log_id.as_ref().map(|l| l.index);
            if let Err(lost) = node.lost_data().observe(node.id(), leader, prev, last) {
                return RaftReply::Refused(lost);
            }
            match raft.append_entries(rpc).await {
                Ok(response) => RaftReply::AppendEntries(response),
                Err(e) => refused(&e),
            }
        }
        RaftRequest::Vote(rpc) => match raft.vote(rpc).await {
            Ok(response) => RaftReply::Vote(response),
            Err(e) => refused(&e),
        },
        RaftRequest::PreVote(rpc) => match raft.pre_vote(rpc).await {
            Ok(response) => RaftReply::Vote(response),
            Err(e) => refused(&e),
        },
        RaftRequest::TransferLeader(rpc) => match raft.handle_transfer_leader(rpc).await {
            Ok(response) => RaftReply::TransferLeader(response),
            Err(e) => refused(&e),
        },
        RaftRequest::Forward(ops) => RaftReply::Forwarded(node.path().execute_forwarded(ops).await),
        RaftRequest::Snapshot(chunk) => snapshot_chunk(node, chunk, incoming).await,
    }
}

/// Adds a chunk to the snapshot being received; installs it after the last chunk.
async fn snapshot_chunk(node: &Node, chunk: SnapshotChunk<NodeConfig>, incoming: &mut Option<Incoming>) -> RaftReply {
    let SnapshotChunk {
        vote,
        meta,
        total_len,
        offset,
        data,
    } = chunk;
    let max = node.options().transport.max_snapshot;
    if total_len > max {
        return RaftReply::Refused(format!(
            "snapshot of {total_len} bytes exceeds the limit of {max} bytes"
        ));
    }
    if offset == 0 {
        let capacity = usize::try_from(total_len.min(64 << 20)).unwrap_or(0);
        *incoming = Some(Incoming {
            meta: meta.clone(),
            data: Vec::with_capacity(capacity),
        });
    }
    let Some(current) = incoming.as_mut() else {
        return RaftReply::Refused(format!("snapshot chunk at offset {offset} without its start"));
    };
    let expected = current.data.len() as u64;
    let end = offset.saturating_add(data.len() as u64);
    if current.meta.last_log_id != meta.last_log_id || offset != expected || end > total_len {
        *incoming = None;
        return RaftReply::Refused(format!(
            "snapshot chunk out of order: offset {offset}, expected {expected} of {total_len}"
        ));
    }
    current.data.extend_from_slice(&data);
    node.metrics().snapshot_bytes_received.add(data.len() as u64);
    if end < total_len {
        return RaftReply::SnapshotChunkStored;
    }
    let Incoming { meta, data } = incoming.take().expect("checked above");
    let snapshot = SnapshotOf::<NodeConfig, Vec<u8>> { meta, snapshot: data };
    match node.raft().install_full_snapshot(vote, snapshot).await {
        Ok(response) => {
            node.metrics().snapshots_installed.add(1);
            RaftReply::SnapshotInstalled(response)
        }
        Err(e) => RaftReply::Refused(e.to_string()),
    }
}
