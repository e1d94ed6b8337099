//! Multi-process cluster tests: real `kv-node` processes on 127.0.0.1, driven over RESP.
//!
//! Every test bounds its waits; child processes are killed when the cluster is dropped, also
//! when a test fails.

mod cluster_support;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use cluster_support::Cluster;
use cluster_support::ClusterOptions;
use cluster_support::ELECTION_MS;
use cluster_support::Workload;
use cluster_support::assert_linearizable;
use cluster_support::http_get;
use cluster_support::wait_for_progress;
use kv_node::protocol::Reply;

fn bulk(text: &str) -> Reply {
    Reply::Bulk(text.as_bytes().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_serves_reads_and_writes_and_observability() {
    let cluster = Cluster::start(ClusterOptions::default()).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let followers: Vec<u64> = (1..=3).filter(|&id| id != leader).collect();

    // A write through a follower is forwarded; a read through the other follower sees it.
    let mut a = cluster.client(followers[0]).await;
    let mut b = cluster.client(followers[1]).await;
    assert_eq!(a.call(&["SET", "greeting", "hello"]).await.unwrap(), Reply::ok());
    assert_eq!(b.call(&["GET", "greeting"]).await.unwrap(), bulk("hello"));
    assert_eq!(b.call(&["INCRBY", "n", "5"]).await.unwrap(), Reply::Integer(5));
    // A pipeline of writes and reads is answered in order.
    for i in 0..20 {
        a.queue(&["SET".to_string(), format!("p{i}"), i.to_string()]);
        a.queue(&["GET".to_string(), format!("p{i}")]);
    }
    a.flush().await.unwrap();
    for i in 0..20 {
        assert_eq!(a.read_reply().await.unwrap(), Reply::ok());
        assert_eq!(a.read_reply().await.unwrap(), bulk(&i.to_string()));
    }
    // A write refused in the middle of a pipelined run (one proposal to the Raft core): the
    // others are applied, and each reply is in its place.
    let mut l = cluster.client(leader).await;
    l.queue(&["SET".to_string(), "m1".to_string(), "1".to_string()]);
    l.queue(&["SET".to_string(), "k".repeat(16 * 1024 + 1), "x".to_string()]);
    l.queue(&["INCRBY".to_string(), "m2".to_string(), "7".to_string()]);
    l.queue(&["SET".to_string(), "m3".to_string(), "3".to_string()]);
    l.flush().await.unwrap();
    assert_eq!(l.read_reply().await.unwrap(), Reply::ok());
    let refused = l.read_reply().await.unwrap();
    assert!(
        matches!(&refused, Reply::Error(e) if e.contains("key of 16385 bytes exceeds the limit")),
        "{refused:?}"
    );
    assert_eq!(l.read_reply().await.unwrap(), Reply::Integer(7));
    assert_eq!(l.read_reply().await.unwrap(), Reply::ok());
    assert_eq!(
        l.call(&["MGET", "m1", "m2", "m3"]).await.unwrap(),
        Reply::Array(vec![bulk("1"), bulk("7"), bulk("3")])
    );
    // Stale reads on a follower eventually see the write too.
    assert_eq!(b.call(&["READONLY"]).await.unwrap(), Reply::ok());
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.call(&["GET", "p19"]).await.unwrap() != bulk("19") {
        assert!(Instant::now() < deadline, "follower never applied the write");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Errors are Redis-style, and a malformed frame closes the connection.
    let Reply::Error(e) = a.call(&["NOSUCH"]).await.unwrap() else {
        panic!()
    };
    assert!(e.starts_with("ERR unknown command 'NOSUCH'"), "{e}");
    let Reply::Error(e) = a.call(&["GET"]).await.unwrap() else {
        panic!()
    };
    assert_eq!(e, "ERR wrong number of arguments for 'get' command");
    let mut raw = tokio::net::TcpStream::connect(&cluster.node(leader).client_addr)
        .await
        .unwrap();
    use tokio::io::AsyncReadExt;
    use tokio::io::AsyncWriteExt;
    raw.write_all(b"*1\r\n$999999999999\r\n").await.unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).await.unwrap();
    assert_eq!(answer, "-ERR Protocol error: invalid bulk length\r\n");

    // Observability: INFO, RAFT STATUS, /health and /metrics.
    let Reply::Bulk(info) = a.call(&["INFO"]).await.unwrap() else {
        panic!()
    };
    let info = String::from_utf8(info).unwrap();
    assert!(
        info.contains("role:slave") && info.contains(&format!("raft_leader_id:{leader}")),
        "{info}"
    );
    let health = http_get(&cluster.node(leader).admin_addr, "/health").await.unwrap();
    assert!(health.contains("\"role\":\"leader\""), "{health}");
    assert!(cluster.metric(leader, "quorumkv_commands_total").await.unwrap() > 0.0);
    assert!(cluster.metric(leader, "quorumkv_raft_commit_index").await.unwrap() >= 22.0);
    assert!(cluster.metric(followers[0], "quorumkv_forwarded_total").await.unwrap() >= 40.0);
    let metrics = http_get(&cluster.node(leader).admin_addr, "/metrics").await.unwrap();
    assert!(metrics.contains("quorumkv_fsync_seconds_count"), "{metrics}");

    // The command table: COMMAND answers from it, and every name it lists is accepted.
    let table = kv_node::protocol::command::commands();
    let count = i64::try_from(table.len()).unwrap();
    assert_eq!(a.call(&["COMMAND", "COUNT"]).await.unwrap(), Reply::Integer(count));
    let Reply::Array(names) = a.call(&["COMMAND", "LIST"]).await.unwrap() else {
        panic!("COMMAND LIST answers an array")
    };
    assert_eq!(names.len(), table.len());
    let Reply::Array(info) = a.call(&["COMMAND", "INFO", "get", "nosuch"]).await.unwrap() else {
        panic!("COMMAND INFO answers an array")
    };
    assert!(
        matches!(&info[0], Reply::Array(entry) if entry[1] == Reply::Integer(2)),
        "{info:?}"
    );
    assert_eq!(info[1], Reply::Nil);
    let Reply::Error(unknown) = a.call(&["HSET", "k", "f", "v"]).await.unwrap() else {
        panic!("HSET is not in the table")
    };
    assert!(unknown.starts_with("ERR unknown command 'HSET'"), "{unknown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_under_load_loses_no_acknowledged_write() {
    let mut cluster = Cluster::start(ClusterOptions::default()).await;
    let addrs = cluster.nodes.iter().map(|n| n.client_addr.clone()).collect();
    let workload = Workload::start(addrs, 6, 8);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let old = cluster.wait_for_leader(Duration::from_secs(5)).await;
    cluster.node_mut(old).kill();
    let killed_at = Instant::now();
    let new = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let failover = killed_at.elapsed();
    assert_ne!(new, old);
    // A few election timeouts (plus the polling of this test on a busy machine).
    assert!(
        failover < Duration::from_millis(ELECTION_MS * 12),
        "new leader after {failover:?}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // The killed node restarts with its data and catches up by log.
    cluster.node_mut(old).spawn();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (history, acknowledged) = workload.stop().await;
    assert!(acknowledged > 100, "only {acknowledged} operations succeeded");
    let commit = cluster.commit_index(new).await;
    cluster.wait_applied(old, commit, Duration::from_secs(10)).await;

    // Every acknowledged write is in the history the checker accepts, and the last value
    // of every key reads the same on every node.
    assert_linearizable(&history);
    let mut leader = cluster.client(new).await;
    for key in 0..8 {
        let key = format!("key-{key}");
        let expected = leader.call(&["GET", &key]).await.unwrap();
        for node in 1..=3 {
            let mut client = cluster.client(node).await;
            client.call(&["READONLY"]).await.unwrap();
            assert_eq!(
                client.call(&["GET", &key]).await.unwrap(),
                expected,
                "node {node} {key}"
            );
        }
    }
}

/// Plain INCRs (no client session) through one follower while the leader is killed twice: the
/// follower tags what it forwards with its own session and sends a write whose answer died
/// with the leader again, so every INCR gets its answer and none applies twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_resends_forwarded_writes_lost_with_the_leader_and_applies_them_once() {
    // Time enough for an election on a loaded machine (the harness's 3 s is overridden).
    let mut cluster = Cluster::start(ClusterOptions {
        extra: vec!["--request-timeout-ms".to_string(), "10000".to_string()],
        ..ClusterOptions::default()
    })
    .await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let entry = (1..=3).find(|&id| id != leader).unwrap();
    let acked = Arc::new(AtomicU64::new(0));
    let unknown = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    // While the clients' node leads, its own proposals are not forwarded: the clients wait.
    let paused = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let mut client = cluster.client(entry).await;
        let (acked, unknown, stop, paused) = (acked.clone(), unknown.clone(), stop.clone(), paused.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if paused.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                match client.call(&["INCR", "counter"]).await.unwrap() {
                    Reply::Integer(_) => acked.fetch_add(1, Ordering::Relaxed),
                    Reply::Error(e) if e.contains("outcome unknown") => {
                        unknown.lock().unwrap().push(e);
                        0
                    }
                    // Refused before it was applied (no leader yet): try again.
                    Reply::Error(e) if e.starts_with("TRYAGAIN") => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        0
                    }
                    other => panic!("INCR answered {other:?}"),
                };
            }
        }));
    }
    wait_for_progress(&acked, 200).await;
    for _ in 0..2 {
        let mut leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
        if leader == entry {
            // Hand leadership away, so that the clients' node forwards again.
            paused.store(true, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(500)).await;
            let to = (1..=3).find(|&id| id != entry).unwrap();
            let mut admin = cluster.client(entry).await;
            admin.call(&["RAFT", "TRANSFER-LEADER", &to.to_string()]).await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            while leader == entry {
                assert!(Instant::now() < deadline, "leadership stayed on node {entry}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
            }
            paused.store(false, Ordering::Relaxed);
        }
        wait_for_progress(&acked, 100).await;
        cluster.node_mut(leader).kill();
        wait_for_progress(&acked, 200).await;
        cluster.node_mut(leader).spawn();
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    let mut client = cluster.client(entry).await;
    let Reply::Bulk(value) = client.call(&["GET", "counter"]).await.unwrap() else {
        panic!("the counter is a string");
    };
    let value: u64 = String::from_utf8(value).unwrap().parse().unwrap();
    let (acked, unknown) = (acked.load(Ordering::Relaxed), unknown.lock().unwrap().clone());
    assert!(
        unknown.is_empty(),
        "INCRs of unknown outcome ({acked} acknowledged, final {value}): {unknown:?}"
    );
    assert_eq!(value, acked, "increments applied != acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_behind_node_catches_up_by_snapshot() {
    let extra = ["--snapshot-every", "200", "--keep-logs", "10"]
        .map(String::from)
        .to_vec();
    let mut cluster = Cluster::start(ClusterOptions {
        extra,
        ..ClusterOptions::default()
    })
    .await;
    let leader = cluster.wait_for_leader(Duration::from_secs(5)).await;
    let behind = (1..=3).find(|&id| id != leader).unwrap();
    cluster.node_mut(behind).kill();

    let mut client = cluster.client(leader).await;
    for i in 0..1200 {
        client.queue(&["SET".to_string(), format!("k{i:04}"), format!("v{i}")]);
        if i % 100 == 99 {
            client.flush().await.unwrap();
            for _ in 0..100 {
                assert_eq!(client.read_reply().await.unwrap(), Reply::ok());
            }
        }
    }
    // Compact now, and wait until the log the node misses is gone from the leader.
    assert_eq!(client.call(&["RAFT", "SNAPSHOT"]).await.unwrap(), Reply::ok());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let purged: u64 = cluster
            .status_field(leader, "raft_purged_index")
            .await
            .unwrap()
            .parse()
            .unwrap();
        if purged >= 1000 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "leader purged only up to {purged}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let commit = cluster.commit_index(leader).await;
    cluster.node_mut(behind).spawn();
    cluster.wait_applied(behind, commit, Duration::from_secs(20)).await;
    let sent = cluster
        .metric(leader, "quorumkv_snapshot_bytes_sent_total")
        .await
        .unwrap();
    let snapshot_index = cluster.status_field(leader, "raft_snapshot_index").await.unwrap();
    let installed = cluster
        .metric(behind, "quorumkv_snapshots_installed_total")
        .await
        .unwrap();
    assert!(
        installed >= 1.0,
        "sent {sent} bytes, leader snapshot at {snapshot_index}"
    );
    let mut follower = cluster.client(behind).await;
    follower.call(&["READONLY"]).await.unwrap();
    assert_eq!(follower.call(&["DBSIZE"]).await.unwrap(), Reply::Integer(1200));
    assert_eq!(follower.call(&["GET", "k0007"]).await.unwrap(), bulk("v7"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_join_and_leave_while_clients_write() {
    let mut cluster = Cluster::start(ClusterOptions::default()).await;
    let addrs: Vec<String> = cluster.nodes.iter().map(|n| n.client_addr.clone()).collect();
    let workload = Workload::start(addrs, 4, 6);
    tokio::time::sleep(Duration::from_millis(500)).await;

    cluster.add_joining_node(4, 1, &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let voters = cluster.status_field(1, "raft_voters").await.unwrap_or_default();
        if voters.split(',').count() == 4 {
            break;
        }
        assert!(Instant::now() < deadline, "node 4 never became a voter: {voters}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let leader = cluster.wait_for_leader(Duration::from_secs(5)).await;
    let removed = (1..=3).find(|&id| id != leader).unwrap();
    let mut admin = cluster.client(leader).await;
    assert_eq!(
        admin.call(&["RAFT", "REMOVE", &removed.to_string()]).await.unwrap(),
        Reply::ok()
    );
    let voters = cluster.status_field(leader, "raft_voters").await.unwrap();
    assert_eq!(voters.split(',').count(), 3, "{voters}");
    assert!(!voters.contains(&format!("{removed}@")), "{voters}");
    cluster.node_mut(removed).terminate();

    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (history, acknowledged) = workload.stop().await;
    assert!(acknowledged > 50, "only {acknowledged} operations succeeded");
    assert_linearizable(&history);
    // The new member serves linearizable reads.
    let mut newcomer = cluster.client(4).await;
    assert!(newcomer.call(&["GET", "key-1"]).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_and_a_restart_keeps_the_data() {
    let mut cluster = Cluster::start(ClusterOptions {
        nodes: 1,
        ..ClusterOptions::default()
    })
    .await;
    let mut client = cluster.client(1).await;
    assert_eq!(client.call(&["SET", "kept", "yes"]).await.unwrap(), Reply::ok());
    assert!(cluster.node_mut(1).terminate().success());
    cluster.node_mut(1).spawn();
    cluster.wait_for_leader(Duration::from_secs(10)).await;
    let mut client = cluster.client(1).await;
    assert_eq!(client.call(&["GET", "kept"]).await.unwrap(), bulk("yes"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_minority_never_acknowledges_nor_reads_stale() {
    let cluster = Cluster::start(ClusterOptions {
        nodes: 5,
        proxies: true,
        ..ClusterOptions::default()
    })
    .await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let mut c = cluster.client(leader).await;
    assert_eq!(c.call(&["SET", "k", "before"]).await.unwrap(), Reply::ok());
    let partner = (1..=5).find(|&id| id != leader).unwrap();
    let minority = [leader, partner];
    let majority: Vec<u64> = (1..=5).filter(|id| !minority.contains(id)).collect();
    cluster.wait_applied(partner, 2, Duration::from_secs(5)).await;

    cluster.partition(&minority, true);
    // The majority elects a leader of its own and takes a write.
    let deadline = Instant::now() + Duration::from_secs(15);
    let new_leader = loop {
        if let Some(l) = cluster.leader_seen_by(majority[0]).await
            && majority.contains(&l)
        {
            break l;
        }
        assert!(Instant::now() < deadline, "the majority elected no leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut m = cluster.client(new_leader).await;
    let write = loop {
        match m.call(&["SET", "k", "after"]).await.unwrap() {
            Reply::Simple(ok) if ok == "OK" => break ok,
            Reply::Error(e) if e.starts_with("TRYAGAIN") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(write, "OK");

    // The minority neither acknowledges a write nor serves the old value as linearizable.
    for id in minority {
        let mut client = cluster.client(id).await;
        let reply = client.call(&["SET", "k", "minority"]).await.unwrap();
        assert!(
            matches!(&reply, Reply::Error(e) if e.starts_with("TRYAGAIN")),
            "node {id} wrote: {reply:?}"
        );
        let reply = client.call(&["GET", "k"]).await.unwrap();
        assert!(
            matches!(&reply, Reply::Error(e) if e.starts_with("TRYAGAIN")),
            "node {id} read: {reply:?}"
        );
    }

    // After healing, every node converges on the majority's value.
    cluster.partition(&minority, false);
    let deadline = Instant::now() + Duration::from_secs(15);
    for id in 1..=5 {
        let mut client = cluster.client(id).await;
        client.call(&["READONLY"]).await.unwrap();
        loop {
            let value = client.call(&["GET", "k"]).await.unwrap();
            if value == bulk("after") {
                break;
            }
            assert_ne!(value, bulk("minority"), "node {id} kept an unacknowledged write");
            assert!(Instant::now() < deadline, "node {id} did not converge: {value:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
