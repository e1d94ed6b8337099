//! TLS on every port of a 3-node cluster of real processes, with certificates made at test
//! time (rcgen): who is served and who is refused (issue 11).

mod cluster_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use cluster_support::Cluster;
use cluster_support::ClusterOptions;
use kv_core::command::Command as KvCommand;
use kv_core::command::Expiry;
use kv_core::command::SetCondition;
use kv_core::wire::Op;
use kv_core::wire::frame;
use kv_core::wire::handshake::ClusterKey;
use kv_node::client::Client;
use kv_node::pki::Ca;
use kv_node::pki::CertFiles;
use kv_node::pki::write_cluster_pki;
use kv_node::protocol::Reply;
use kv_node::tls;
use kv_node::transport::RaftRequest;
use kv_node::transport::handshake;

fn connector(ca: &Path, client: Option<&CertFiles>) -> tokio_rustls::TlsConnector {
    tls::client_config(ca, client.map(|c| (c.cert.as_path(), c.key.as_path()))).unwrap()
}

/// Whether a client connecting this way gets an answer to PING.
async fn served(addr: &str, tls: Option<&tokio_rustls::TlsConnector>) -> bool {
    let attempt = async {
        let mut client = Client::connect_tls(addr, None, tls).await.ok()?;
        client.call(&["PING"]).await.ok()
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(5), attempt).await,
        Ok(Some(Reply::Simple(_)))
    )
}

fn forwarded_set(key: &str) -> RaftRequest {
    RaftRequest::Forward(vec![Op::Write {
        command: KvCommand::Set {
            key: key.as_bytes().to_vec(),
            value: b"stranger".to_vec(),
            condition: SetCondition::Always,
            expiry: Expiry::Never,
        },
        ttl_ms: None,
    }])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_serves_its_clients_and_refuses_everyone_else() {
    let certs = tempfile::tempdir().unwrap();
    let pki = write_cluster_pki(&certs.path().join("pki")).unwrap();
    let (ca, node, client_cert) = (pki.ca.clone(), pki.node.clone(), pki.client.clone());
    let other = Ca::new("another CA").unwrap();
    let other_dir = certs.path().join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    other.write(&other_dir.join("ca.crt")).unwrap();
    let foreign = other
        .issue(&["127.0.0.1", "localhost"], &other_dir, "foreign", -1, 30)
        .unwrap();

    let flags = vec![
        "--tls-cert-file".to_string(),
        node.cert.display().to_string(),
        "--tls-key-file".to_string(),
        node.key.display().to_string(),
        "--tls-ca-cert-file".to_string(),
        ca.display().to_string(),
        "--tls-auth-clients".to_string(),
        "yes".to_string(),
    ];
    let cluster = Cluster::start(ClusterOptions {
        nodes: 3,
        extra: flags,
        tls: Some(connector(&ca, Some(&client_cert))),
        ..ClusterOptions::default()
    })
    .await;
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    let follower = (1..=3).find(|&id| id != leader).unwrap();
    let addr = cluster.node(follower).client_addr.clone();

    // Served: a client with a certificate from the cluster CA; writes through a follower
    // reach the leader over mutual TLS.
    let mut client = cluster.client(follower).await;
    client.call_ok(&["SET", "tls:k", "v"]).await.unwrap();
    let mut on_leader = cluster.client(leader).await;
    assert_eq!(
        on_leader.call(&["GET", "tls:k"]).await.unwrap(),
        Reply::Bulk(b"v".to_vec())
    );
    assert!(served(&addr, Some(&connector(&ca, Some(&client_cert)))).await);

    // Refused: plain TCP, no client certificate, a certificate from another CA, a client that
    // trusts another CA (the node's certificate does not verify).
    assert!(!served(&addr, None).await, "plain TCP was served");
    assert!(
        !served(&addr, Some(&connector(&ca, None))).await,
        "no certificate was served"
    );
    assert!(
        !served(&addr, Some(&connector(&ca, Some(&foreign)))).await,
        "a foreign certificate was served"
    );
    let wrong_trust = connector(&other_dir.join("ca.crt"), Some(&client_cert));
    assert!(
        !served(&addr, Some(&wrong_trust)).await,
        "the node's certificate verified against another CA"
    );
    // Plain TCP gets no RESP answer, only the end of a failed TLS handshake.
    let mut plain = TcpStream::connect(&addr).await.unwrap();
    plain.write_all(b"PING\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await;
    assert!(!answer.starts_with(b"+PONG"), "{answer:?}");

    // The Raft port: plain frames, and TLS with a foreign certificate, cannot write.
    let raft_addr = cluster.node(leader).raft_addr.clone();
    let mut plain = TcpStream::connect(&raft_addr).await.unwrap();
    let _ = plain.write_all(&frame::encode(&forwarded_set("stolen"))).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut buf)).await;
    let foreign_member = connector(&other_dir.join("ca.crt"), Some(&foreign));
    let tcp = TcpStream::connect(&raft_addr).await.unwrap();
    // The client side may believe the TLS handshake done (TLS 1.3) until the server's alert.
    if let Ok(mut stream) = tls::connect(&foreign_member, &raft_addr, tcp).await {
        let result = handshake::connect(&mut stream, &ClusterKey::open()).await;
        assert!(result.is_err(), "a foreign certificate passed the Raft port");
    }
    assert_eq!(on_leader.call(&["GET", "stolen"]).await.unwrap(), Reply::Nil);
    let refused = cluster
        .metric(leader, "quorumkv_raft_handshakes_refused_total")
        .await
        .unwrap();
    assert!(refused >= 2.0, "{refused}");

    let ports: Vec<String> = (1..=3)
        .map(|id| cluster.node(id).client_addr.rsplit(':').next().unwrap().to_string())
        .collect();
    // redis-cli --tls.
    if Command::new("redis-cli")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let out = Command::new("redis-cli")
            .args(["-p", &ports[0], "--tls", "--cacert"])
            .arg(&ca)
            .arg("--cert")
            .arg(&client_cert.cert)
            .arg("--key")
            .arg(&client_cert.key)
            .args(["SET", "cli:tls", "yes"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK", "{out:?}");
    } else {
        eprintln!("redis-cli not installed: skipping its check");
    }
    // The kv CLI.
    let out = Command::new(env!("CARGO_BIN_EXE_kv"))
        .args(["--addr", &addr, "--tls", "--cacert"])
        .arg(&ca)
        .arg("--cert")
        .arg(&client_cert.cert)
        .arg("--key")
        .arg(&client_cert.key)
        .args(["get", "tls:k"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "v", "{out:?}");
    // redis-py (ssl=True) and the Python client.
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
    let python = if Path::new(venv).exists() { venv } else { "python3" };
    if Command::new(python)
        .args(["-c", "import redis"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/tls_check.py");
        let out = Command::new(python)
            .arg(script)
            .arg(&ca)
            .arg(&client_cert.cert)
            .arg(&client_cert.key)
            .args(&ports)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("python3 with redis-py not installed: skipping its checks");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_client_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA").unwrap();
    ca.write(&dir.path().join("ca.crt")).unwrap();
    let node = ca.issue(&["127.0.0.1"], dir.path(), "node", -1, 30).unwrap();
    let expired = ca.issue(&["client"], dir.path(), "expired", -30, -1).unwrap();
    let valid = ca.issue(&["client"], dir.path(), "valid", -1, 30).unwrap();
    let ca_file = dir.path().join("ca.crt");
    let cluster = Cluster::start(ClusterOptions {
        nodes: 1,
        extra: vec![
            "--tls-cert-file".to_string(),
            node.cert.display().to_string(),
            "--tls-key-file".to_string(),
            node.key.display().to_string(),
            "--tls-ca-cert-file".to_string(),
            ca_file.display().to_string(),
        ],
        tls: Some(connector(&ca_file, None)),
        ..ClusterOptions::default()
    })
    .await;
    let addr = cluster.node(1).client_addr.clone();
    // optional (the default): no certificate is fine, a valid one too, an expired one is not.
    assert!(served(&addr, Some(&connector(&ca_file, None))).await);
    assert!(served(&addr, Some(&connector(&ca_file, Some(&valid)))).await);
    assert!(
        !served(&addr, Some(&connector(&ca_file, Some(&expired)))).await,
        "an expired certificate was served"
    );
    // The admin port is TLS too.
    assert!(cluster.metric(1, "quorumkv_raft_term").await.is_some());
    assert!(
        cluster_support::http_get(&cluster.node(1).admin_addr, "/health")
            .await
            .is_none()
    );
}
