//! Pub/sub, keyspace notifications and resumable watches (`WATCHKEYS`) across a cluster of
//! real node processes; redis-py's `pubsub()` through `tests/python/pubsub_check.py`.

mod cluster_support;

use std::collections::BTreeMap;
use std::time::Duration;

use cluster_support::Cluster;
use cluster_support::ClusterOptions;
use kv_node::client::Client;
use kv_node::protocol::Reply;

const WAIT: Duration = Duration::from_secs(10);

fn bulk(text: &str) -> Reply {
    Reply::Bulk(text.as_bytes().to_vec())
}

fn port(cluster: &Cluster, id: u64) -> String {
    cluster.node(id).client_addr.rsplit(':').next().unwrap().to_string()
}

async fn next(client: &mut Client) -> Reply {
    tokio::time::timeout(WAIT, client.read_reply())
        .await
        .expect("a push within the wait")
        .expect("a reply")
}

fn integer(reply: &Reply) -> u64 {
    match reply {
        Reply::Integer(n) => u64::try_from(*n).unwrap(),
        other => panic!("not an integer: {other:?}"),
    }
}

/// A change a watch reported: (revision, key, event, value).
type Change = (u64, Vec<u8>, String, Option<Vec<u8>>);

fn change(reply: Reply) -> Change {
    let Reply::Array(items) = reply else {
        panic!("not a change: {reply:?}");
    };
    assert_eq!(items.len(), 6, "{items:?}");
    assert_eq!(items[0], bulk("change"));
    let text = |r: &Reply| match r {
        Reply::Bulk(b) => b.clone(),
        other => panic!("not a bulk string: {other:?}"),
    };
    let value = match &items[5] {
        Reply::Nil => None,
        other => Some(text(other)),
    };
    (
        integer(&items[2]),
        text(&items[3]),
        String::from_utf8(text(&items[4])).unwrap(),
        value,
    )
}

/// Starts a watch on `id`; returns the client and the start revision.
async fn watch(cluster: &Cluster, id: u64, prefix: &str, since: Option<u64>) -> (Client, u64) {
    let mut client = cluster.client(id).await;
    let mut args = vec!["WATCHKEYS".to_string(), prefix.to_string()];
    if let Some(since) = since {
        args.extend(["SINCE".to_string(), since.to_string()]);
    }
    let reply = client.call_ok(&args).await.unwrap();
    let Reply::Array(items) = reply else {
        panic!("{reply:?}");
    };
    assert_eq!(items[..2], [bulk("watchkeys"), bulk(prefix)]);
    let start = integer(&items[2]);
    (client, start)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_reaches_every_node_and_a_watch_resumes_after_kill() {
    let mut cluster = Cluster::start(ClusterOptions::default()).await;
    let leader = cluster.wait_for_leader(WAIT).await;
    let followers: Vec<u64> = (1..=3).filter(|&id| id != leader).collect();

    // Subscribers on two nodes, PUBLISH on the third.
    let (publisher, listeners) = (followers[0], [leader, followers[1]]);
    let mut subscribers = Vec::new();
    for id in listeners {
        let mut client = cluster.client(id).await;
        let reply = client.call_ok(&["SUBSCRIBE", "news"]).await.unwrap();
        assert_eq!(
            reply,
            Reply::Array(vec![bulk("subscribe"), bulk("news"), Reply::Integer(1)])
        );
        let reply = client.call_ok(&["PSUBSCRIBE", "n*"]).await.unwrap();
        assert_eq!(
            reply,
            Reply::Array(vec![bulk("psubscribe"), bulk("n*"), Reply::Integer(2)])
        );
        // Subscribed mode: Redis's error, and PING's array reply.
        let reply = client.call(&["GET", "x"]).await.unwrap();
        assert_eq!(
            reply,
            Reply::Error("ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context".to_string())
        );
        let reply = client.call(&["PING"]).await.unwrap();
        assert_eq!(reply, Reply::Array(vec![bulk("pong"), bulk("")]));
        subscribers.push(client);
    }
    let mut other = cluster.client(publisher).await;
    let reply = other.call_ok(&["PUBSUB", "NUMSUB", "news"]).await.unwrap();
    assert_eq!(reply, Reply::Array(vec![bulk("news"), Reply::Integer(0)]));
    let mut on_listener = cluster.client(listeners[0]).await;
    assert_eq!(
        on_listener.call_ok(&["PUBSUB", "NUMSUB", "news"]).await.unwrap(),
        Reply::Array(vec![bulk("news"), Reply::Integer(1)])
    );
    assert_eq!(
        on_listener.call_ok(&["PUBSUB", "NUMPAT"]).await.unwrap(),
        Reply::Integer(1)
    );
    assert_eq!(
        on_listener.call_ok(&["PUBSUB", "CHANNELS"]).await.unwrap(),
        Reply::Array(vec![bulk("news")])
    );
    // The publisher's node has no subscriber: it answers 0, and both others deliver.
    assert_eq!(
        other.call_ok(&["PUBLISH", "news", "hello"]).await.unwrap(),
        Reply::Integer(0)
    );
    assert_eq!(
        on_listener.call_ok(&["PUBLISH", "news", "again"]).await.unwrap(),
        Reply::Integer(2)
    );
    // PUBLISH inside MULTI is a step of the transaction's entry, answered with its receivers.
    on_listener.call_ok(&["MULTI"]).await.unwrap();
    on_listener.call_ok(&["SET", "tx:k", "v"]).await.unwrap();
    on_listener.call_ok(&["PUBLISH", "news", "in-tx"]).await.unwrap();
    assert_eq!(
        on_listener.call_ok(&["EXEC"]).await.unwrap(),
        Reply::Array(vec![Reply::ok(), Reply::Integer(2)])
    );
    for client in &mut subscribers {
        for payload in ["hello", "again", "in-tx"] {
            assert_eq!(
                next(client).await,
                Reply::Array(vec![bulk("message"), bulk("news"), bulk(payload)])
            );
            assert_eq!(
                next(client).await,
                Reply::Array(vec![bulk("pmessage"), bulk("n*"), bulk("news"), bulk(payload)])
            );
        }
        let reply = client.call_ok(&["UNSUBSCRIBE"]).await.unwrap();
        assert_eq!(
            reply,
            Reply::Array(vec![bulk("unsubscribe"), bulk("news"), Reply::Integer(1)])
        );
        assert_eq!(client.call_ok(&["RESET"]).await.unwrap(), Reply::Simple("RESET".into()));
        assert_eq!(client.call_ok(&["GET", "x"]).await.unwrap(), Reply::Nil);
    }

    // Keyspace notifications on a follower, from committed applies, expiry included.
    let mut config = cluster.client(followers[1]).await;
    config
        .call_ok(&["CONFIG", "SET", "notify-keyspace-events", "KEA"])
        .await
        .unwrap();
    assert_eq!(
        config
            .call_ok(&["CONFIG", "GET", "notify-keyspace-events"])
            .await
            .unwrap(),
        Reply::Array(vec![bulk("notify-keyspace-events"), bulk("AKE")])
    );
    let mut notified = cluster.client(followers[1]).await;
    notified.call_ok(&["PSUBSCRIBE", "__key*__:ks:*"]).await.unwrap();
    other.call_ok(&["SET", "ks:a", "1"]).await.unwrap();
    other.call_ok(&["DEL", "ks:a"]).await.unwrap();
    other.call_ok(&["SET", "ks:e", "1"]).await.unwrap();
    other.call_ok(&["PEXPIRE", "ks:e", "50"]).await.unwrap();
    // Keys expire by the log's clock, the leader's active expiry writing the entry: no other
    // write is needed.
    let expected = [
        ("__keyspace@0__:ks:a", "set"),
        ("__keyspace@0__:ks:a", "del"),
        ("__keyspace@0__:ks:e", "set"),
        ("__keyspace@0__:ks:e", "expire"),
        ("__keyspace@0__:ks:e", "expired"),
    ];
    for (channel, event) in expected {
        assert_eq!(
            next(&mut notified).await,
            Reply::Array(vec![
                bulk("pmessage"),
                bulk("__key*__:ks:*"),
                bulk(channel),
                bulk(event)
            ])
        );
    }

    // GETREV: a write's revision is the key's mod revision and at most the current one.
    other.call_ok(&["SET", "rev:a", "v"]).await.unwrap();
    let Reply::Array(items) = other.call_ok(&["GETREV", "rev:a"]).await.unwrap() else {
        panic!("GETREV is an array");
    };
    assert_eq!(items[0], bulk("v"));
    assert!(
        integer(&items[1]) > 0 && integer(&items[1]) <= integer(&items[2]),
        "{items:?}"
    );
    let before_watch = integer(&items[2]);

    // A watch on a follower, killed mid-stream, resumed on another node from its last
    // revision: every write seen exactly once, in order.
    let watched = followers[0];
    let (mut watcher, start) = watch(&cluster, watched, "w:", None).await;
    assert!(start >= before_watch);
    let writer_addr = cluster.node(leader).client_addr.clone();
    let writes = 300;
    let writer = tokio::spawn(async move {
        let mut client = Client::connect(&writer_addr, None).await.unwrap();
        for i in 0..writes {
            client
                .call_ok(&["SET", &format!("w:{}", i % 7), &i.to_string()])
                .await
                .unwrap();
            if i % 50 == 49 {
                client.call_ok(&["DEL", &format!("w:{}", i % 7)]).await.unwrap();
            }
        }
    });
    let mut seen: Vec<Change> = Vec::new();
    while seen.len() < 100 {
        seen.push(change(next(&mut watcher).await));
    }
    cluster.node_mut(watched).kill();
    // Whatever was buffered before the kill counts; then resume elsewhere.
    while let Ok(Ok(reply)) = tokio::time::timeout(Duration::from_millis(200), watcher.read_reply()).await {
        seen.push(change(reply));
    }
    let last = seen.last().unwrap().0;
    let (mut resumed, resumed_from) = watch(&cluster, followers[1], "w:", Some(last)).await;
    assert_eq!(resumed_from, last);
    let total = writes + writes / 50;
    while seen.len() < total {
        seen.push(change(next(&mut resumed).await));
    }
    writer.await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), resumed.read_reply())
            .await
            .is_err(),
        "a change beyond the writes made"
    );
    // Revisions strictly increase (no repeat, in order), and the changes are the writes made.
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "out of order or repeated");
    let mut expected = Vec::new();
    for i in 0..writes {
        expected.push((
            format!("w:{}", i % 7).into_bytes(),
            "set".to_string(),
            Some(i.to_string().into_bytes()),
        ));
        if i % 50 == 49 {
            expected.push((format!("w:{}", i % 7).into_bytes(), "del".to_string(), None));
        }
    }
    let got: Vec<_> = seen.into_iter().map(|(_, k, e, v)| (k, e, v)).collect();
    assert_eq!(got, expected);

    cluster.node_mut(watched).spawn();
    cluster.wait_for_leader(WAIT).await;
    run_redis_py(&cluster, [followers[1], leader, publisher]);
}

/// redis-py's `pubsub()` against three nodes (skipped with a note without redis-py).
fn run_redis_py(cluster: &Cluster, ids: [u64; 3]) {
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
    let python = if std::path::Path::new(venv).exists() {
        venv
    } else {
        "python3"
    };
    let has_redis = std::process::Command::new(python)
        .args(["-c", "import redis"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_redis {
        eprintln!("python3 with redis-py not installed: skipping its pub/sub checks");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/pubsub_check.py");
    let ports: Vec<String> = ids.iter().map(|&id| port(cluster, id)).collect();
    let out = std::process::Command::new(python)
        .arg(script)
        .args(&ports)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "redis-py pub/sub check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_history_and_malformed_commands_answer_errors() {
    let mut cluster = Cluster::start(ClusterOptions {
        nodes: 1,
        ..ClusterOptions::default()
    })
    .await;
    cluster.wait_for_leader(WAIT).await;
    let mut client = cluster.client(1).await;
    for i in 0..20 {
        client.call_ok(&["SET", &format!("c:{i}"), "v"]).await.unwrap();
    }
    // The history holds everything since the log began: a watch from 0 replays every write.
    let (mut from_zero, _) = watch(&cluster, 1, "c:", Some(0)).await;
    let replayed: Vec<Change> = {
        let mut v = Vec::new();
        for _ in 0..20 {
            v.push(change(next(&mut from_zero).await));
        }
        v
    };
    assert_eq!(replayed[0].1, b"c:0");
    drop(from_zero);
    client.call_ok(&["RAFT", "SNAPSHOT"]).await.unwrap();
    let snapshot = cluster.status_field(1, "raft_snapshot_index").await.unwrap();
    let snapshot: u64 = snapshot.parse().unwrap();
    cluster.node_mut(1).kill();
    cluster.node_mut(1).spawn();
    cluster.wait_for_leader(WAIT).await;
    let mut client = cluster.client(1).await;
    let reply = client.call(&["WATCHKEYS", "c:", "SINCE", "1"]).await.unwrap();
    assert_eq!(
        reply,
        Reply::Error(format!(
            "COMPACTED revision 1 is compacted; the oldest available is {snapshot}"
        ))
    );
    let (_, start) = watch(&cluster, 1, "c:", Some(snapshot)).await;
    assert_eq!(start, snapshot);

    let errors: BTreeMap<&[&str], &str> = BTreeMap::from([
        (
            &["WATCHKEYS"][..],
            "ERR wrong number of arguments for 'watchkeys' command",
        ),
        (
            &["WATCHKEYS", "p", "SINCE", "x"][..],
            "ERR value is not an integer or out of range",
        ),
        (
            &["WATCHKEYS", "p", "SINCE", "-1"][..],
            "ERR value is not an integer or out of range",
        ),
        (&["WATCHKEYS", "p", "FROM", "1"][..], "ERR syntax error"),
        (&["PUBSUB"][..], "ERR wrong number of arguments for 'pubsub' command"),
        (&["PUBSUB", "FOO"][..], "ERR unknown subcommand 'FOO'. Try PUBSUB HELP."),
        (
            &["PUBLISH", "a"][..],
            "ERR wrong number of arguments for 'publish' command",
        ),
        (
            &["SUBSCRIBE"][..],
            "ERR wrong number of arguments for 'subscribe' command",
        ),
        (&["GETREV"][..], "ERR wrong number of arguments for 'getrev' command"),
        (
            &["CONFIG", "SET", "foo", "bar"][..],
            "ERR Unknown option or number of arguments for CONFIG SET - 'foo'",
        ),
        (
            &["CONFIG", "SET", "notify-keyspace-events", "Kq"][..],
            "ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'.",
        ),
    ]);
    for (args, error) in errors {
        let reply = tokio::time::timeout(WAIT, client.call(args)).await.unwrap().unwrap();
        assert_eq!(reply, Reply::Error(error.to_string()), "{args:?}");
    }
    // Unsubscribing with nothing subscribed, as Redis answers.
    assert_eq!(
        client.call_ok(&["UNSUBSCRIBE"]).await.unwrap(),
        Reply::Array(vec![bulk("unsubscribe"), Reply::Nil, Reply::Integer(0)])
    );
    assert_eq!(client.call_ok(&["PING"]).await.unwrap(), Reply::Simple("PONG".into()));
}

/// `kv watch` (kv-node's `client::Watch`): its node is killed with SIGKILL mid-stream; it goes
/// on at the next address and prints every write exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_watch_goes_on_at_the_next_address_after_its_node_is_killed() {
    use tokio::io::AsyncBufReadExt;

    let mut cluster = Cluster::start(ClusterOptions::default()).await;
    let leader = cluster.wait_for_leader(WAIT).await;
    // It watches on the first address: a follower, so the writes go on meanwhile.
    let watched = (1..=3).find(|&id| id != leader).unwrap();
    let order = std::iter::once(watched).chain((1..=3).filter(|&id| id != watched));
    let addrs: Vec<String> = order.map(|id| cluster.node(id).client_addr.clone()).collect();
    let mut writer = cluster.client(leader).await;
    let Reply::Array(items) = writer.call_ok(&["GETREV", "cli:"]).await.unwrap() else {
        panic!("GETREV is an array");
    };
    let since = integer(&items[2]);
    let mut kv = tokio::process::Command::new(env!("CARGO_BIN_EXE_kv"))
        .args([
            "--addr",
            &addrs.join(","),
            "watch",
            "cli:",
            "--since",
            &since.to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(kv.stdout.take().unwrap()).lines();
    let mut next_line = async || {
        tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("a line within the wait")
            .unwrap()
            .expect("kv watch still running")
    };
    let writes = 200;
    for i in 0..100 {
        writer
            .call_ok(&["SET", &format!("cli:{i}"), &i.to_string()])
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    for _ in 0..50 {
        seen.push(next_line().await);
    }
    cluster.node_mut(watched).kill();
    for i in 100..writes {
        writer
            .call_ok(&["SET", &format!("cli:{i}"), &i.to_string()])
            .await
            .unwrap();
    }
    while seen.len() < writes {
        seen.push(next_line().await);
    }
    let parsed: Vec<(u64, String)> = seen
        .iter()
        .map(|line| {
            let (revision, rest) = line.split_once(' ').unwrap();
            (revision.parse().unwrap(), rest.to_string())
        })
        .collect();
    assert!(
        parsed.windows(2).all(|w| w[0].0 < w[1].0),
        "out of order or repeated: {seen:?}"
    );
    let expected: Vec<String> = (0..writes).map(|i| format!("set cli:{i} {i}")).collect();
    let got: Vec<String> = parsed.into_iter().map(|(_, rest)| rest).collect();
    assert_eq!(got, expected);
    kv.kill().await.unwrap();
}
