//! Unmodified Redis clients against a 5-node cluster of real processes: redis-cli and redis-py
//! (each skipped with a note when not installed; `scripts/install-deps.sh` installs both).

mod cluster_support;

use std::process::Command;
use std::time::Duration;

use cluster_support::Cluster;
use cluster_support::ClusterOptions;

fn installed(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn redis_cli(port: &str, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", port])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim_end().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_and_redis_py_work_unchanged() {
    let cluster = Cluster::start(ClusterOptions {
        nodes: 5,
        ..ClusterOptions::default()
    })
    .await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let follower = (1..=5).find(|&id| id != leader).unwrap();
    let ports: Vec<String> = (1..=5)
        .map(|id| cluster.node(id).client_addr.rsplit(':').next().unwrap().to_string())
        .collect();
    let port = &ports[follower as usize - 1];

    if installed("redis-cli", "--version") {
        assert_eq!(redis_cli(port, &["PING"]), "PONG");
        assert_eq!(redis_cli(port, &["SET", "cli:a", "hello world"]), "OK");
        assert_eq!(redis_cli(&ports[leader as usize - 1], &["GET", "cli:a"]), "hello world");
        assert_eq!(redis_cli(port, &["MSET", "cli:b", "2", "cli:c", "3"]), "OK");
        assert_eq!(
            redis_cli(port, &["--scan", "--pattern", "cli:*"]),
            "cli:a\ncli:b\ncli:c"
        );
        assert!(redis_cli(port, &["INFO", "replication"]).contains("role:slave"));
        // RAFT STATUS is a map: without a terminal redis-cli prints one element a line.
        let status = redis_cli(port, &["RAFT", "STATUS"]);
        assert!(status.contains("role\nfollower\n"), "{status}");
        assert!(status.contains("\nvoters\n1\n"), "{status}");
        let error = redis_cli(port, &["GET"]);
        assert_eq!(error, "ERR wrong number of arguments for 'get' command");
        // Pipe mode: many commands on one connection.
        let input: String = (0..500).map(|i| format!("SET cli:pipe:{i} {i}\r\n")).collect();
        let out = Command::new("redis-cli")
            .args(["-p", port, "--pipe"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(input.as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("errors: 0, replies: 500"), "{text}");
    } else {
        eprintln!("redis-cli not installed: skipping its checks");
    }

    // The workspace's virtualenv (scripts/install-deps.sh) if there is one, else python3.
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
    let python = if std::path::Path::new(venv).exists() {
        venv
    } else {
        "python3"
    };
    if Command::new(python)
        .args(["-c", "import redis"])
        .status()
        .is_ok_and(|s| s.success())
    {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/redis_py_check.py");
        let out = Command::new(python).arg(script).args(&ports).output().unwrap();
        assert!(
            out.status.success(),
            "redis-py check failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("python3 with redis-py not installed: skipping its checks");
    }
}
