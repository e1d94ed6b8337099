//! `CLIENT PAUSE` / `CLIENT UNPAUSE`: the same scenario against a real `redis-server` and
//! against a QuorumKV node (held commands wait, then run; reads pass a `WRITE` pause; `ALL`
//! holds everything until it runs out), the argument errors compared reply for reply, and,
//! on a 3-node cluster, a pause holding one node's clients only.
//!
//! The comparison with Redis is skipped with a note when `redis-server` is not installed.

mod cluster_support;

use std::time::Duration;
use std::time::Instant;

use cluster_support::Cluster;
use cluster_support::ClusterOptions;
use cluster_support::RedisServer;
use kv_node::client::Client;
use kv_node::protocol::Reply;

/// Long enough to tell a held command from one answered at once on a busy machine.
const HELD: Duration = Duration::from_millis(300);

/// Sends a command without waiting for its reply.
async fn send(client: &mut Client, args: &[&str]) {
    client.queue(args);
    client.flush().await.unwrap();
}

/// The next reply if it comes within `limit`.
async fn reply_within(client: &mut Client, limit: Duration) -> Option<Reply> {
    tokio::time::timeout(limit, client.read_reply())
        .await
        .ok()
        .map(|reply| reply.unwrap())
}

/// What a server must do, Redis and QuorumKV alike (`name` says which, in failures).
async fn pause_scenario(name: &str, addr: &str) {
    let connect = || async { Client::connect(addr, None).await.unwrap() };
    let (mut admin, mut writer, mut reader) = (connect().await, connect().await, connect().await);
    assert_eq!(writer.call(&["SET", "k", "0"]).await.unwrap(), Reply::ok(), "{name}");

    // WRITE: reads and read-only transactions go on; a write waits until UNPAUSE, then runs.
    assert_eq!(
        admin.call(&["CLIENT", "PAUSE", "100000", "WRITE"]).await.unwrap(),
        Reply::ok()
    );
    send(&mut writer, &["SET", "k", "1"]).await;
    assert_eq!(
        reply_within(&mut reader, HELD).await,
        None,
        "{name}: nothing was sent on the reader"
    );
    send(&mut reader, &["GET", "k"]).await;
    assert_eq!(
        reply_within(&mut reader, HELD).await,
        Some(Reply::Bulk(b"0".to_vec())),
        "{name}: a read under WRITE"
    );
    for (command, answer) in [
        (vec!["MULTI"], Reply::ok()),
        (vec!["GET", "k"], Reply::Simple("QUEUED".into())),
        (vec!["EXEC"], Reply::Array(vec![Reply::Bulk(b"0".to_vec())])),
    ] {
        send(&mut reader, &command).await;
        assert_eq!(
            reply_within(&mut reader, HELD).await,
            Some(answer),
            "{name}: {command:?}"
        );
    }
    assert_eq!(
        reply_within(&mut writer, HELD).await,
        None,
        "{name}: SET answered during the pause"
    );
    assert_eq!(admin.call(&["CLIENT", "UNPAUSE"]).await.unwrap(), Reply::ok());
    assert_eq!(
        reply_within(&mut writer, HELD).await,
        Some(Reply::ok()),
        "{name}: SET after UNPAUSE"
    );
    assert_eq!(reader.call(&["GET", "k"]).await.unwrap(), Reply::Bulk(b"1".to_vec()));

    // A transaction that queued a write waits at EXEC.
    writer.call(&["MULTI"]).await.unwrap();
    writer.call(&["SET", "k", "2"]).await.unwrap();
    admin.call(&["CLIENT", "PAUSE", "100000", "WRITE"]).await.unwrap();
    send(&mut writer, &["EXEC"]).await;
    assert_eq!(
        reply_within(&mut writer, HELD).await,
        None,
        "{name}: EXEC of a write during the pause"
    );
    admin.call(&["CLIENT", "UNPAUSE"]).await.unwrap();
    assert_eq!(
        reply_within(&mut writer, HELD).await,
        Some(Reply::Array(vec![Reply::ok()])),
        "{name}: EXEC after UNPAUSE"
    );

    // ALL (the default mode): every command waits, PING included, until the pause runs out.
    let started = Instant::now();
    assert_eq!(admin.call(&["CLIENT", "PAUSE", "600"]).await.unwrap(), Reply::ok());
    send(&mut reader, &["PING"]).await;
    assert_eq!(
        reply_within(&mut reader, Duration::from_secs(5)).await,
        Some(Reply::Simple("PONG".into()))
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(3),
        "{name}: PING under ALL answered after {waited:?}"
    );
    eprintln!("{name}: PING under a 600 ms ALL pause answered after {waited:?}");

    // A client that goes away while held never has its command run.
    admin.call(&["CLIENT", "PAUSE", "100000", "WRITE"]).await.unwrap();
    let mut leaving = connect().await;
    send(&mut leaving, &["SET", "gone", "1"]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(leaving);
    tokio::time::sleep(Duration::from_millis(100)).await;
    admin.call(&["CLIENT", "UNPAUSE"]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(reader.call(&["GET", "gone"]).await.unwrap(), Reply::Nil, "{name}");

    // An argument error is answered at once, pause or not.
    admin.call(&["CLIENT", "PAUSE", "100000", "WRITE"]).await.unwrap();
    send(&mut writer, &["SET", "k"]).await;
    assert_eq!(
        reply_within(&mut writer, HELD).await,
        Some(Reply::Error("ERR wrong number of arguments for 'set' command".into())),
        "{name}"
    );
    admin.call(&["CLIENT", "UNPAUSE"]).await.unwrap();
}

/// `CLIENT PAUSE` and `CLIENT UNPAUSE` with bad and good arguments.
const ARGUMENTS: &[&[&str]] = &[
    &["CLIENT", "PAUSE"],
    &["CLIENT", "PAUSE", "abc"],
    &["CLIENT", "PAUSE", "-1"],
    &["CLIENT", "PAUSE", "+5"],
    &["CLIENT", "PAUSE", "1.5"],
    &["CLIENT", "PAUSE", "10", "FOO"],
    &["CLIENT", "PAUSE", "abc", "FOO"],
    &["CLIENT", "PAUSE", "-1", "write"],
    &["CLIENT", "PAUSE", "10", "WRITE", "extra"],
    &["CLIENT", "PAUSE", "0"],
    &["CLIENT", "PAUSE", "0", "write"],
    &["CLIENT", "PAUSE", "0", "All"],
    &["CLIENT", "UNPAUSE", "now"],
    &["CLIENT", "UNPAUSE"],
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_pause_holds_commands_as_redis_does() {
    let cluster = Cluster::start(ClusterOptions::default()).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let follower = (1..=3).find(|&id| id != leader).unwrap();
    let other = (1..=3).find(|&id| id != leader && id != follower).unwrap();

    let redis = RedisServer::start().await;
    if let Some(redis) = &redis {
        let mut theirs = Client::connect(&redis.addr, None).await.unwrap();
        let mut ours = cluster.client(follower).await;
        for args in ARGUMENTS {
            let expected = theirs.call(args).await.unwrap();
            assert_eq!(ours.call(args).await.unwrap(), expected, "{args:?}");
        }
        eprintln!(
            "{} CLIENT PAUSE|UNPAUSE replies equal to redis-server's",
            ARGUMENTS.len()
        );
        pause_scenario("redis-server", &redis.addr).await;
    }
    {
        // On purpose unlike Redis 7.0, whose clock overflows there and pauses nothing (later
        // Redis versions answer the same error).
        let mut ours = cluster.client(follower).await;
        assert_eq!(
            ours.call(&["CLIENT", "PAUSE", "9223372036854775807"]).await.unwrap(),
            Reply::Error("ERR timeout is out of range".into())
        );
    }
    // On a follower, whose writes go to the leader.
    pause_scenario("quorumkv", &cluster.node(follower).client_addr).await;

    // The pause holds the connections of the node it was sent to, no other.
    let mut admin = cluster.client(follower).await;
    admin.call_ok(&["CLIENT", "PAUSE", "100000", "WRITE"]).await.unwrap();
    let mut held = cluster.client(follower).await;
    send(&mut held, &["SET", "p", "held"]).await;
    let mut elsewhere = cluster.client(other).await;
    send(&mut elsewhere, &["SET", "q", "free"]).await;
    assert_eq!(reply_within(&mut elsewhere, HELD).await, Some(Reply::ok()));
    assert_eq!(reply_within(&mut held, HELD).await, None);
    // A held connection that is killed is closed at once, its command never run.
    let mut victim = cluster.client(follower).await;
    let Reply::Integer(victim_id) = victim.call_ok(&["CLIENT", "ID"]).await.unwrap() else {
        panic!("CLIENT ID is an integer");
    };
    send(&mut victim, &["SET", "v", "killed"]).await;
    assert_eq!(reply_within(&mut victim, HELD).await, None);
    let kill = ["CLIENT", "KILL", "ID", &victim_id.to_string()].map(String::from);
    assert_eq!(admin.call_ok(&kill).await.unwrap(), Reply::Integer(1));
    assert!(
        matches!(tokio::time::timeout(HELD, victim.read_reply()).await, Ok(Err(_))),
        "the killed connection is closed"
    );
    admin.call_ok(&["CLIENT", "UNPAUSE"]).await.unwrap();
    assert_eq!(reply_within(&mut held, HELD).await, Some(Reply::ok()));
    let mut check = cluster.client(other).await;
    assert_eq!(check.call_ok(&["GET", "v"]).await.unwrap(), Reply::Nil);
    assert_eq!(
        check.call_ok(&["GET", "p"]).await.unwrap(),
        Reply::Bulk(b"held".to_vec())
    );
}
