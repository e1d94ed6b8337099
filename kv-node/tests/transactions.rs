//! MULTI / EXEC / DISCARD / WATCH / UNWATCH against a 3-node cluster of real processes: the
//! exact bytes redis-server 7 answers (checked against it), on a follower, which forwards
//! each transaction whole; then redis-py (`tests/python/transactions_check.py`, skipped with
//! a note when redis-py is not installed): pipelines with and without a transaction, the
//! documented WATCH retry loop with competing clients on the leader and a follower, WATCH
//! aborts after SET, DEL, another transaction and an expiry, and atomic transfers.

mod cluster_support;

use std::process::Command;
use std::time::Duration;

use cluster_support::Cluster;
use cluster_support::ClusterOptions;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Sends `commands` (space-separated arguments) as one pipeline and asserts the bytes that
/// come back are `expected`.
async fn exchange(addr: &str, commands: &[&str], expected: &str) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut input = Vec::new();
    for command in commands {
        let args: Vec<&str> = command.split(' ').collect();
        input.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for arg in args {
            input.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
        }
    }
    stream.write_all(&input).await.unwrap();
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    while out.len() < expected.len() {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("timed out; got {:?}", String::from_utf8_lossy(&out)))
            .unwrap();
        assert!(n > 0, "connection closed; got {:?}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(String::from_utf8_lossy(&out), expected, "for {commands:?}");
}

fn port(addr: &str) -> String {
    addr.rsplit(':').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_behave_as_in_redis_on_every_node() {
    let cluster = Cluster::start(ClusterOptions::default()).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let follower = (1..=3).find(|&id| id != leader).unwrap();
    let on_follower = cluster.node(follower).client_addr.clone();

    // Each sequence below was run against redis-server 7.0.15, which answered these bytes.
    exchange(
        &on_follower,
        &[
            "DEL t:a",
            "EXEC",
            "DISCARD",
            "MULTI",
            "MULTI",
            "WATCH t:a",
            "SET t:a 1",
            "INCR t:a",
            "GET t:a",
            "PING",
            "ECHO hi",
            "UNWATCH",
            "EXEC",
        ],
        ":0\r\n-ERR EXEC without MULTI\r\n-ERR DISCARD without MULTI\r\n+OK\r\n\
         -ERR MULTI calls can not be nested\r\n-ERR WATCH inside MULTI is not allowed\r\n\
         +QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n\
         *6\r\n+OK\r\n:2\r\n$1\r\n2\r\n+PONG\r\n$2\r\nhi\r\n+OK\r\n",
    )
    .await;
    exchange(
        &on_follower,
        &["MULTI", "NOSUCH x", "GET", "SET t:a 2", "EXEC", "GET t:a"],
        "+OK\r\n-ERR unknown command 'NOSUCH', with args beginning with: 'x' \r\n\
         -ERR wrong number of arguments for 'get' command\r\n+QUEUED\r\n\
         -EXECABORT Transaction discarded because of previous errors.\r\n$1\r\n2\r\n",
    )
    .await;
    // A watched key written (here by the same connection) makes EXEC answer a nil array;
    // EXEC, even aborted, unwatches; an empty transaction is an empty array.
    exchange(
        &on_follower,
        &[
            "WATCH t:a",
            "SET t:a 3",
            "MULTI",
            "GET t:a",
            "EXEC",
            "MULTI",
            "EXEC",
            "MULTI",
            "SET t:a 4",
            "DISCARD",
            "GET t:a",
        ],
        "+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n*-1\r\n+OK\r\n*0\r\n+OK\r\n+QUEUED\r\n+OK\r\n$1\r\n3\r\n",
    )
    .await;
    // In RESP3 the aborted EXEC is `_`. (HELLO's map is long: checked by the tail only.)
    let mut stream = TcpStream::connect(&on_follower).await.unwrap();
    stream
        .write_all(b"HELLO 3\r\nWATCH t:a\r\nDEL t:a\r\nMULTI\r\nEXEC\r\nPING\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    while !out.ends_with(b"+PONG\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        out.extend_from_slice(&chunk[..n]);
    }
    assert!(
        out.ends_with(b"+OK\r\n:0\r\n+OK\r\n_\r\n+PONG\r\n") || out.ends_with(b"+OK\r\n:1\r\n+OK\r\n_\r\n+PONG\r\n"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    // Cluster changes cannot be part of a transaction.
    exchange(
        &on_follower,
        &["MULTI", "RAFT SNAPSHOT", "EXEC"],
        "+OK\r\n-ERR Command not allowed inside a transaction\r\n\
         -EXECABORT Transaction discarded because of previous errors.\r\n",
    )
    .await;

    // The workspace's virtualenv (scripts/install-deps.sh) if there is one, else python3.
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
    let python = if std::path::Path::new(venv).exists() {
        venv
    } else {
        "python3"
    };
    if !Command::new(python)
        .args(["-c", "import redis"])
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!("python3 with redis-py not installed: skipping the redis-py checks");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/transactions_check.py");
    let ports = [
        port(&cluster.node(leader).client_addr),
        port(&cluster.node(follower).client_addr),
    ];
    let out = tokio::task::spawn_blocking(move || Command::new(python).arg(script).args(&ports).output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "redis-py transactions check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{stdout}");
}
