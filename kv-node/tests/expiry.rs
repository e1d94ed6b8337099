//! Active expiry on a cluster of real node processes: a key set with a TTL and no write after
//! it raises `__keyevent@0__:expired` on the leader and on a follower within a second; the
//! leader writes exactly one log entry for it, and none while no key is due; a `WATCH` aborts
//! on the expired key only.

mod cluster_support;

use std::time::Duration;
use std::time::Instant;

use cluster_support::Cluster;
use cluster_support::ClusterOptions;
use kv_node::client::Client;
use kv_node::protocol::Reply;

const WAIT: Duration = Duration::from_secs(10);

fn bulk(text: &str) -> Reply {
    Reply::Bulk(text.as_bytes().to_vec())
}

/// The store's revision on node `client`'s node (`GETREV`'s third element): the index of the
/// last normal entry applied.
async fn revision(client: &mut Client) -> u64 {
    let Reply::Array(items) = client.call_ok(&["GETREV", "no-such-key"]).await.unwrap() else {
        panic!("GETREV answers an array");
    };
    match items[2] {
        Reply::Integer(n) => u64::try_from(n).unwrap(),
        ref other => panic!("not a revision: {other:?}"),
    }
}

/// A client subscribed to expired-key events on node `id` (notifications switched on there).
async fn expired_listener(cluster: &Cluster, id: u64) -> Client {
    let mut config = cluster.client(id).await;
    config
        .call_ok(&["CONFIG", "SET", "notify-keyspace-events", "Ex"])
        .await
        .unwrap();
    let mut client = cluster.client(id).await;
    let reply = client.call_ok(&["SUBSCRIBE", "__keyevent@0__:expired"]).await.unwrap();
    assert_eq!(
        reply,
        Reply::Array(vec![
            bulk("subscribe"),
            bulk("__keyevent@0__:expired"),
            Reply::Integer(1)
        ])
    );
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_expires_and_is_announced_without_another_write() {
    let cluster = Cluster::start(ClusterOptions::default()).await;
    let leader = cluster.wait_for_leader(WAIT).await;
    let follower = (1..=3).find(|&id| id != leader).unwrap();
    let mut listeners = vec![
        (leader, expired_listener(&cluster, leader).await),
        (follower, expired_listener(&cluster, follower).await),
    ];
    let mut writer = cluster.client(leader).await;

    // Keys without an expiry: the leader proposes nothing of its own.
    writer.call_ok(&["SET", "plain", "1"]).await.unwrap();
    let idle_from = revision(&mut writer).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        revision(&mut writer).await,
        idle_from,
        "entries written while no key expires"
    );

    // One connection watches a key that will not expire, another the one that will.
    let mut watch_plain = cluster.client(follower).await;
    watch_plain.call_ok(&["WATCH", "plain"]).await.unwrap();
    let set_at = Instant::now();
    writer.call_ok(&["SET", "k", "v", "PX", "200"]).await.unwrap();
    let mut watch_k = cluster.client(follower).await;
    watch_k.call_ok(&["WATCH", "k"]).await.unwrap();
    let set_revision = revision(&mut writer).await;

    // Nothing else is written, yet every listener hears of the expiry within a second.
    for (id, listener) in &mut listeners {
        let push = tokio::time::timeout(Duration::from_secs(1), listener.read_reply())
            .await
            .unwrap_or_else(|_| panic!("no expired event on node {id} within 1 s"))
            .unwrap();
        let after = set_at.elapsed();
        assert_eq!(
            push,
            Reply::Array(vec![bulk("message"), bulk("__keyevent@0__:expired"), bulk("k")]),
            "on node {id}"
        );
        assert!(
            after >= Duration::from_millis(150),
            "expired early on node {id}: {after:?}"
        );
        eprintln!(
            "node {id} ({}): expired event {after:?} after the SET answered",
            if *id == leader { "leader" } else { "follower" }
        );
    }

    // Exactly one entry expired it (no flood while it was due), and none follows.
    assert_eq!(revision(&mut writer).await, set_revision + 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        revision(&mut writer).await,
        set_revision + 1,
        "entries after the key expired"
    );
    assert_eq!(writer.call_ok(&["DBSIZE"]).await.unwrap(), Reply::Integer(1));

    // The tick changed only the expired key: WATCH aborts EXEC on it and on nothing else.
    for client in [&mut watch_plain, &mut watch_k] {
        client.call_ok(&["MULTI"]).await.unwrap();
        client.call_ok(&["SET", "plain", "2"]).await.unwrap();
    }
    assert_eq!(
        watch_plain.call_ok(&["EXEC"]).await.unwrap(),
        Reply::Array(vec![Reply::ok()])
    );
    assert_eq!(watch_k.call(&["EXEC"]).await.unwrap(), Reply::Nil, "a nil array");
}
