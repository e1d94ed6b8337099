//! Security of real node processes, tried as an attacker on the network would: hand-made
//! frames on the Raft port, absurd terms from a member, passwords (issue 11).

mod cluster_support;

use std::time::Duration;

use openraft::Vote;
use openraft::raft::VoteRequest;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use cluster_support::Cluster;
use cluster_support::ClusterOptions;
use kv_core::wire::frame;
use kv_node::protocol::Reply;
use kv_node::transport::RaftReply;
use kv_node::transport::RaftRequest;
use kv_node::transport::frame_io;

/// Sends `request` on a Raft connection and reads the reply (`None`: the node closed it).
async fn exchange(stream: &mut TcpStream, request: &RaftRequest) -> Option<RaftReply> {
    stream.write_all(&frame::encode(request)).await.ok()?;
    tokio::time::timeout(Duration::from_secs(5), frame_io::read::<RaftReply, _>(stream, 1 << 20))
        .await
        .expect("a reply or a close within 5 s")
        .ok()
        .flatten()
}

fn vote(term: u64, candidate: u64) -> RaftRequest {
    RaftRequest::Vote(VoteRequest::new(Vote::new(term, candidate), None))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vote_with_term_u64_max_is_refused_and_the_node_survives_a_restart() {
    let mut cluster = Cluster::start(ClusterOptions {
        nodes: 1,
        ..ClusterOptions::default()
    })
    .await;
    let mut client = cluster.client(1).await;
    client.call_ok(&["SET", "before", "1"]).await.unwrap();

    let mut raft = TcpStream::connect(&cluster.node(1).raft_addr).await.unwrap();
    for term in [u64::MAX, u64::MAX - 1, 1 << 62, 1 << 40] {
        match exchange(&mut raft, &vote(term, 7)).await {
            Some(RaftReply::Refused(reason)) => assert!(reason.contains("out of bounds"), "{reason}"),
            other => panic!("a vote with term {term} was not refused: {other:?}"),
        }
    }
    assert_eq!(
        cluster.metric(1, "quorumkv_raft_messages_refused_total").await,
        Some(4.0)
    );
    let term = cluster.metric(1, "quorumkv_raft_term").await.unwrap();
    assert!(term < 100.0, "term {term}");

    // Still serving, and healthy after a restart (the refused vote never reached the disk).
    client.call_ok(&["SET", "after", "2"]).await.unwrap();
    cluster.node_mut(1).terminate();
    cluster.node_mut(1).spawn();
    cluster.wait_for_leader(Duration::from_secs(20)).await;
    let mut client = cluster.client(1).await;
    let got = client.call(&["MGET", "before", "after"]).await.unwrap();
    assert_eq!(
        got,
        Reply::Array(vec![Reply::Bulk(b"1".to_vec()), Reply::Bulk(b"2".to_vec())])
    );
}
