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
use kv_core::command::Command;
use kv_core::command::Expiry;
use kv_core::command::SetCondition;
use kv_core::wire::Op;
use kv_core::wire::frame;
use kv_core::wire::handshake::ClusterKey;
use kv_node::client::Client;
use kv_node::protocol::Reply;
use kv_node::transport::RaftReply;
use kv_node::transport::RaftRequest;
use kv_node::transport::frame_io;
use kv_node::transport::handshake;

/// Sends `request` on a Raft connection and reads the reply (`None`: the node closed it).
async fn exchange(stream: &mut TcpStream, request: &RaftRequest) -> Option<RaftReply> {
    stream.write_all(&frame::encode(request)).await.ok()?;
    tokio::time::timeout(Duration::from_secs(10), frame_io::read::<RaftReply, _>(stream, 1 << 20))
        .await
        .expect("a reply or a close within 10 s")
        .ok()
        .flatten()
}

/// A forwarded `SET key value`, as a follower sends it to the leader.
fn forwarded_set(key: &str, value: &str) -> RaftRequest {
    RaftRequest::Forward(vec![Op::Write {
        command: Command::Set {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
            condition: SetCondition::Always,
            expiry: Expiry::Never,
        },
        ttl_ms: None,
    }])
}

/// A Raft connection that proved `secret` in the handshake.
async fn member_connection(addr: &str, secret: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    handshake::connect(&mut stream, &ClusterKey::new(secret.as_bytes()))
        .await
        .unwrap();
    stream
}

/// Flags giving every node `secret` as the cluster secret, from a file in `dir`.
fn secret_flags(dir: &std::path::Path, secret: &str) -> Vec<String> {
    let file = dir.join("cluster-secret");
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    vec!["--cluster-secret-file".to_string(), file.display().to_string()]
}

fn vote(term: u64, candidate: u64) -> RaftRequest {
    RaftRequest::Vote(VoteRequest::new(Vote::new(term, candidate), None))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vote_with_term_u64_max_is_refused_and_the_node_survives_a_restart() {
    let secrets = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(ClusterOptions {
        nodes: 1,
        extra: secret_flags(secrets.path(), "members only"),
        ..ClusterOptions::default()
    })
    .await;
    let mut client = cluster.client(1).await;
    client.call_ok(&["SET", "before", "1"]).await.unwrap();

    // From an authenticated member: the sanity checks are the second line.
    let mut raft = member_connection(&cluster.node(1).raft_addr, "members only").await;
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

/// A one-node cluster whose password comes from a file.
async fn cluster_with_password(password: &str) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, format!("{password}\n")).unwrap();
    let cluster = Cluster::start(ClusterOptions {
        nodes: 1,
        extra: vec!["--password-file".to_string(), file.display().to_string()],
        password: Some(password.to_string()),
        ..ClusterOptions::default()
    })
    .await;
    // The node read the file at start; the harness's own directory outlives it.
    drop(dir);
    cluster
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_password_nothing_runs_before_auth_and_guessing_is_slowed_then_cut_off() {
    let cluster = cluster_with_password("s3cret pass").await;
    let addr = cluster.node(1).client_addr.clone();
    let mut client = Client::connect(&addr, None).await.unwrap();
    for command in [
        &["SET", "k", "v"][..],
        &["GET", "k"],
        &["DEL", "k"],
        &["MSET", "a", "1"],
        &["SCAN", "0"],
        &["FLUSHALL"],
        &["RAFT", "STATUS"],
        &["INFO"],
    ] {
        match client.call(command).await.unwrap() {
            Reply::Error(e) => assert!(e.starts_with("NOAUTH"), "{command:?}: {e}"),
            other => panic!("{command:?} answered {other:?} before AUTH"),
        }
    }
    assert_eq!(
        client.call(&["PING"]).await.unwrap(),
        Reply::Error("NOAUTH Authentication required.".into())
    );

    // AUTH pass, AUTH default pass, HELLO 2 AUTH default pass (our client reads RESP2 only);
    // any other user is refused.
    client.call_ok(&["AUTH", "s3cret pass"]).await.unwrap();
    client.call_ok(&["SET", "k", "v"]).await.unwrap();
    let mut client = Client::connect(&addr, None).await.unwrap();
    client.call_ok(&["AUTH", "default", "s3cret pass"]).await.unwrap();
    let mut client = Client::connect(&addr, None).await.unwrap();
    assert!(
        matches!(client.call(&["AUTH", "admin", "s3cret pass"]).await.unwrap(), Reply::Error(e) if e.starts_with("WRONGPASS"))
    );
    let mut client = Client::connect(&addr, None).await.unwrap();
    assert!(matches!(
        client
            .call(&["HELLO", "2", "AUTH", "default", "s3cret pass"])
            .await
            .unwrap(),
        Reply::Array(_)
    ));
    assert_eq!(client.call(&["GET", "k"]).await.unwrap(), Reply::Bulk(b"v".to_vec()));

    // Wrong passwords: the answers slow down (0, 100, 200, 400, 800 ms), the fifth closes.
    let mut client = Client::connect(&addr, None).await.unwrap();
    let started = std::time::Instant::now();
    for attempt in 1..=5 {
        let reply = client.call(&["AUTH", &format!("guess {attempt}")]).await.unwrap();
        assert!(
            matches!(&reply, Reply::Error(e) if e.starts_with("WRONGPASS")),
            "{reply:?}"
        );
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1_500),
        "five failures took only {elapsed:?}"
    );
    assert!(
        client.call(&["AUTH", "s3cret pass"]).await.is_err(),
        "the connection stays open"
    );
    assert_eq!(cluster.metric(1, "quorumkv_auth_failures_total").await, Some(6.0));

    // The admin port: /health for anyone, /metrics only with the password as a bearer token.
    let admin = &cluster.node(1).admin_addr;
    let health = cluster_support::http_get(admin, "/health").await.unwrap();
    assert!(health.contains("\"role\":\"leader\""), "{health}");
    let refused = cluster_support::http_get(admin, "/metrics").await.unwrap();
    assert!(refused.contains("password is required"), "{refused}");
    let wrong = cluster_support::http_get_as(admin, "/metrics", None, Some("guess"))
        .await
        .unwrap();
    assert!(wrong.contains("password is required"), "{wrong}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kv_cli_authenticates_from_the_environment_or_a_file() {
    let cluster = cluster_with_password("from-env").await;
    let addr = cluster.node(1).client_addr.clone();
    let kv = |args: &[&str], env: Option<&str>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kv"));
        command
            .args(["--addr", &addr])
            .args(args)
            .env_remove("QUORUMKV_PASSWORD");
        if let Some(password) = env {
            command.env("QUORUMKV_PASSWORD", password);
        }
        command.output().unwrap()
    };
    let out = kv(&["put", "cli", "yes"], Some("from-env"));
    assert!(out.status.success(), "{out:?}");
    let out = kv(&["get", "cli"], None);
    assert!(!out.status.success(), "no password, yet: {out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("NOAUTH"), "{out:?}");
    let file = cluster.dir.path().join("kv-password");
    std::fs::write(&file, "from-env\n").unwrap();
    let out = kv(&["get", "cli", "--password-file", file.to_str().unwrap()], None);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "yes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_on_the_raft_port_can_neither_write_nor_read() {
    let secrets = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(ClusterOptions {
        nodes: 3,
        extra: secret_flags(secrets.path(), "members only"),
        ..ClusterOptions::default()
    })
    .await;
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    let raft_addr = cluster.node(leader).raft_addr.clone();

    // Plain TCP with well-formed frames: the node reads 38 bytes of "hello", finds a frame's
    // magic, and closes the connection without decoding anything.
    let mut stranger = TcpStream::connect(&raft_addr).await.unwrap();
    assert!(
        exchange(&mut stranger, &forwarded_set("stolen", "plain"))
            .await
            .is_none()
    );
    let mut stranger = TcpStream::connect(&raft_addr).await.unwrap();
    assert!(
        exchange(
            &mut stranger,
            &RaftRequest::Forward(vec![Op::Read(kv_core::command::Query::Get {
                key: b"secret".to_vec()
            })])
        )
        .await
        .is_none()
    );
    // The handshake with a wrong secret, or with none (the open key): refused.
    for key in [ClusterKey::new(b"a guess"), ClusterKey::open()] {
        let mut stranger = TcpStream::connect(&raft_addr).await.unwrap();
        let refused = handshake::connect(&mut stranger, &key).await;
        assert!(refused.is_err(), "a wrong key was accepted");
        assert!(
            exchange(&mut stranger, &forwarded_set("stolen", "guessed"))
                .await
                .is_none()
        );
    }
    // The same frame from a member works: the refusals above were the handshake's doing.
    let mut member = member_connection(&raft_addr, "members only").await;
    match exchange(&mut member, &forwarded_set("member", "yes")).await {
        Some(RaftReply::Forwarded(results)) => assert!(results[0].is_ok(), "{results:?}"),
        other => panic!("a member's forward failed: {other:?}"),
    }

    let mut client = cluster.client(leader).await;
    assert_eq!(client.call(&["GET", "stolen"]).await.unwrap(), Reply::Nil);
    assert_eq!(
        client.call(&["GET", "member"]).await.unwrap(),
        Reply::Bulk(b"yes".to_vec())
    );
    let refused = cluster.metric(leader, "quorumkv_raft_handshakes_refused_total").await;
    assert_eq!(refused, Some(4.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_py_and_the_python_client_authenticate() {
    let cluster = cluster_with_password("py-secret").await;
    let port = cluster.node(1).client_addr.rsplit(':').next().unwrap().to_string();
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
    let python = if std::path::Path::new(venv).exists() {
        venv
    } else {
        "python3"
    };
    let has_redis_py = std::process::Command::new(python)
        .args(["-c", "import redis"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_redis_py {
        eprintln!("python3 with redis-py not installed: skipping its checks");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/auth_check.py");
    let out = std::process::Command::new(python)
        .args([script, "py-secret", &port])
        .env_remove("QUORUMKV_PASSWORD")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
}
