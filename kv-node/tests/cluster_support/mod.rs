//! Clusters of real `kv-node` processes on 127.0.0.1 for the multi-process tests: random free
//! ports, a fault-injecting TCP proxy on every Raft link, history recording for the
//! linearizability checker, and cleanup of every child process on drop.

#![allow(dead_code, reason = "each test file uses a different part of this module")]

use std::collections::BTreeMap;
use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::Child;
use std::process::Command;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use kv_core::check::linearizability::Call;
use kv_core::check::linearizability::Operation;
use kv_core::check::linearizability::Outcome;
use kv_core::check::linearizability::Ret;
use kv_node::client::Client;
use kv_node::client::ClientError;
use kv_node::protocol::Reply;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsConnector;

/// A `redis-server` without persistence on a free test port, killed when dropped: the
/// reference the side-by-side tests compare replies with.
pub struct RedisServer {
    child: Child,
    pub addr: String,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RedisServer {
    /// Starts one, or `None` (with a note) if redis-server is not installed.
    pub async fn start() -> Option<RedisServer> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !installed {
            eprintln!("redis-server not installed: skipping the comparison with Redis");
            return None;
        }
        let port = free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let server = RedisServer {
            child,
            addr: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(&server.addr).await.is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Some(server)
    }
}

/// Waits until `count` (operations acknowledged by a test's workers) has grown by `more`,
/// failing the test if that takes longer than 30 s.
pub async fn wait_for_progress(count: &std::sync::atomic::AtomicU64, more: u64) {
    let target = count.load(Ordering::Relaxed) + more;
    let deadline = Instant::now() + Duration::from_secs(30);
    while count.load(Ordering::Relaxed) < target {
        assert!(
            Instant::now() < deadline,
            "stuck at {} acknowledged operations",
            count.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A port nobody listens on right now, for a node process to bind later.
///
/// Ports come from below Linux's ephemeral range (32768 and up), where port-0 binds and
/// outgoing connections take theirs, so none of those can grab the port before the node binds
/// it; a counter keeps the tests of one process apart, and the process id spreads processes.
/// `QUORUMKV_TEST_PORTS=first-last` confines them to a range (a machine shared by several
/// runs); the default is 20000-31999.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (first, span) = std::env::var("QUORUMKV_TEST_PORTS")
        .ok()
        .and_then(|range| {
            let (first, last) = range.split_once('-')?;
            let (first, last): (u32, u32) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
            (first <= last && last < 32_768).then_some((first, last - first + 1))
        })
        .unwrap_or((20_000, 12_000));
    let offset = std::process::id() % 1_000 * 12;
    loop {
        let port = first + (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        let port = u16::try_from(port).expect("ports stay below 32768");
        if StdListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A TCP forwarder the test can cut: while blocked it refuses new connections and drops
/// open ones.
pub struct Proxy {
    pub addr: String,
    blocked: watch::Sender<bool>,
}

impl Proxy {
    /// Forwards connections made to a fresh port to `target`.
    pub async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (blocked, watch) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    return;
                };
                if *watch.borrow() {
                    continue;
                }
                let (target, mut watch) = (target.clone(), watch.clone());
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (mut ri, mut wi) = inbound.into_split();
                    let (mut ro, mut wo) = outbound.into_split();
                    let (mut a, mut b) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
                    loop {
                        tokio::select! {
                            n = ri.read(&mut a) => match n {
                                Ok(n) if n > 0 && wo.write_all(&a[..n]).await.is_ok() => {}
                                _ => return,
                            },
                            n = ro.read(&mut b) => match n {
                                Ok(n) if n > 0 && wi.write_all(&b[..n]).await.is_ok() => {}
                                _ => return,
                            },
                            changed = watch.changed() => if changed.is_err() || *watch.borrow() { return },
                        }
                    }
                });
            }
        });
        Proxy { addr, blocked }
    }

    /// Cuts (`true`) or restores (`false`) the link.
    pub fn set_blocked(&self, blocked: bool) {
        self.blocked.send_replace(blocked);
    }
}

/// One node process.
pub struct NodeProcess {
    pub id: u64,
    pub client_addr: String,
    pub raft_addr: String,
    pub admin_addr: String,
    pub data_dir: PathBuf,
    pub args: Vec<String>,
    child: Option<Child>,
}

impl NodeProcess {
    /// Starts (or restarts) the process with its arguments.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "node {} is running", self.id);
        let log = std::fs::File::create(self.data_dir.with_extension(format!("log.{}", now_ns()))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kv-node"))
            .args(&self.args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// kill -9.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) on our own child with a valid signal.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("node {} ignored SIGTERM", self.id);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `timeout` for the process to exit by itself; its status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut()?.try_wait().unwrap() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Moves the node's data directory to `dir` (for its next start).
    pub fn move_data_dir(&mut self, dir: PathBuf) {
        let at = self
            .args
            .iter()
            .position(|a| a == "--data-dir")
            .expect("--data-dir is set")
            + 1;
        self.args[at] = dir.display().to_string();
        self.data_dir = dir;
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Resident memory of the running process, in bytes (from /proc).
    pub fn rss_bytes(&self) -> u64 {
        let pid = self.child.as_ref().expect("running").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kb * 1024
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How to start a cluster.
#[derive(Clone)]
pub struct ClusterOptions {
    pub nodes: u64,
    /// Put a controllable proxy on every directed Raft link.
    pub proxies: bool,
    /// Extra flags for every node.
    pub extra: Vec<String>,
    /// The password the nodes were given (`--password` or `--password-file` in `extra`), for
    /// the harness's own clients.
    pub password: Option<String>,
    /// How the harness's own clients connect when the nodes run TLS (`--tls-*` in `extra`).
    pub tls: Option<TlsConnector>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            nodes: 3,
            proxies: false,
            extra: Vec::new(),
            password: None,
            tls: None,
        }
    }
}

/// Election timeout the test clusters run with, in milliseconds.
pub const ELECTION_MS: u64 = 500;

/// A cluster of node processes.
pub struct Cluster {
    pub nodes: Vec<NodeProcess>,
    /// (from, to) → proxy carrying from's Raft traffic to `to`.
    pub links: BTreeMap<(u64, u64), Proxy>,
    pub dir: tempfile::TempDir,
    /// The password the harness's clients authenticate with.
    pub password: Option<String>,
    /// TLS for the harness's clients.
    pub tls: Option<TlsConnector>,
}

fn flags(extra: &[String]) -> Vec<String> {
    let mut flags: Vec<String> = ["--fsync", "never", "--election-timeout-ms", &ELECTION_MS.to_string()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    // 3 s, unless the test asks for another request timeout.
    if !extra.iter().any(|flag| flag == "--request-timeout-ms") {
        flags.extend(["--request-timeout-ms".to_string(), "3000".to_string()]);
    }
    flags.extend(extra.iter().cloned());
    flags
}

impl Cluster {
    /// Starts `options.nodes` processes that form one cluster by `--peers`.
    pub async fn start(options: ClusterOptions) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let mut nodes = Vec::new();
        for id in 1..=options.nodes {
            nodes.push(NodeProcess {
                id,
                client_addr: format!("127.0.0.1:{}", free_port()),
                raft_addr: format!("127.0.0.1:{}", free_port()),
                admin_addr: format!("127.0.0.1:{}", free_port()),
                data_dir: dir.path().join(format!("node{id}")),
                args: Vec::new(),
                child: None,
            });
        }
        let mut links = BTreeMap::new();
        if options.proxies {
            for from in &nodes {
                for to in &nodes {
                    if from.id != to.id {
                        links.insert((from.id, to.id), Proxy::start(to.raft_addr.clone()).await);
                    }
                }
            }
        }
        let peers = nodes
            .iter()
            .map(|n| format!("{}={}/{}", n.id, n.raft_addr, n.client_addr))
            .collect::<Vec<_>>()
            .join(",");
        for node in &mut nodes {
            let mut args = vec![
                "--id".to_string(),
                node.id.to_string(),
                "--data-dir".to_string(),
                node.data_dir.display().to_string(),
                "--client-addr".to_string(),
                node.client_addr.clone(),
                "--raft-addr".to_string(),
                node.raft_addr.clone(),
                "--admin-addr".to_string(),
                node.admin_addr.clone(),
                "--peers".to_string(),
                peers.clone(),
            ];
            let routes: Vec<String> = links
                .iter()
                .filter(|((from, _), _)| *from == node.id)
                .map(|((_, to), proxy)| format!("{to}={}", proxy.addr))
                .collect();
            if !routes.is_empty() {
                args.extend(["--raft-route".to_string(), routes.join(",")]);
            }
            args.extend(flags(&options.extra));
            node.args = args;
            node.spawn();
        }
        let cluster = Cluster {
            nodes,
            links,
            dir,
            password: options.password,
            tls: options.tls,
        };
        cluster.wait_for_leader(Duration::from_secs(30)).await;
        cluster
    }

    /// Starts a new node `id` that joins through `via`'s client port.
    pub fn add_joining_node(&mut self, id: u64, via: u64, extra: &[String]) {
        let via = self.node(via).client_addr.clone();
        let mut node = NodeProcess {
            id,
            client_addr: format!("127.0.0.1:{}", free_port()),
            raft_addr: format!("127.0.0.1:{}", free_port()),
            admin_addr: format!("127.0.0.1:{}", free_port()),
            data_dir: self.dir.path().join(format!("node{id}")),
            args: Vec::new(),
            child: None,
        };
        let mut args = vec![
            "--id".to_string(),
            id.to_string(),
            "--data-dir".to_string(),
            node.data_dir.display().to_string(),
            "--client-addr".to_string(),
            node.client_addr.clone(),
            "--raft-addr".to_string(),
            node.raft_addr.clone(),
            "--admin-addr".to_string(),
            node.admin_addr.clone(),
            "--join".to_string(),
            via,
        ];
        args.extend(flags(extra));
        node.args = args;
        node.spawn();
        self.nodes.push(node);
    }

    pub fn node(&self, id: u64) -> &NodeProcess {
        self.nodes.iter().find(|n| n.id == id).expect("no such node")
    }

    pub fn node_mut(&mut self, id: u64) -> &mut NodeProcess {
        self.nodes.iter_mut().find(|n| n.id == id).expect("no such node")
    }

    /// Connects to node `id`'s client port.
    pub async fn client(&self, id: u64) -> Client {
        Client::connect_tls(&self.node(id).client_addr, self.password.as_deref(), self.tls.as_ref())
            .await
            .unwrap()
    }

    /// The leader id as seen by running node `id`, if any.
    pub async fn leader_seen_by(&self, id: u64) -> Option<u64> {
        let mut client = Client::connect_tls(&self.node(id).client_addr, self.password.as_deref(), self.tls.as_ref())
            .await
            .ok()?;
        let reply = tokio::time::timeout(Duration::from_secs(1), client.call(&["RAFT", "LEADER"]))
            .await
            .ok()?
            .ok()?;
        match reply {
            Reply::Array(items) => match items.first() {
                Some(Reply::Integer(id)) => Some(*id as u64),
                _ => None,
            },
            _ => None,
        }
    }

    /// Waits until every running node agrees on a running leader; returns it.
    pub async fn wait_for_leader(&self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let mut seen = Vec::new();
            for node in self.nodes.iter().filter(|n| n.is_running()) {
                seen.push(self.leader_seen_by(node.id).await);
            }
            if let Some(Some(leader)) = seen.first()
                && seen.iter().all(|s| *s == Some(*leader))
                && self.node(*leader).is_running()
            {
                return *leader;
            }
            assert!(
                Instant::now() < deadline,
                "no agreed leader within {timeout:?}: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A field of `RAFT STATUS` on node `id` (named as INFO's raft section names it), as
    /// text: members as `id@raft_addr,...`.
    pub async fn status_field(&self, id: u64, field: &str) -> Option<String> {
        let mut client = Client::connect_tls(&self.node(id).client_addr, self.password.as_deref(), self.tls.as_ref())
            .await
            .ok()?;
        // RESP2: the map comes as a flat array of name, value pairs.
        let Reply::Array(items) = client.call(&["RAFT", "STATUS"]).await.ok()? else {
            return None;
        };
        let name = field.strip_prefix("raft_").unwrap_or(field);
        let value = items
            .chunks(2)
            .find_map(|pair| (pair[0] == Reply::Bulk(name.as_bytes().to_vec())).then(|| pair[1].clone()))?;
        match value {
            Reply::Integer(n) => Some(n.to_string()),
            Reply::Bulk(text) => String::from_utf8(text).ok(),
            Reply::Nil => Some(String::new()),
            Reply::Array(members) => Some(
                members
                    .iter()
                    .filter_map(|m| match m {
                        Reply::Array(parts) => match parts.as_slice() {
                            [Reply::Integer(id), Reply::Bulk(raft), ..] => {
                                Some(format!("{id}@{}", String::from_utf8_lossy(raft)))
                            }
                            _ => None,
                        },
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            _ => None,
        }
    }

    /// Node `id`'s commit index (from `RAFT STATUS`).
    pub async fn commit_index(&self, id: u64) -> u64 {
        self.status_field(id, "raft_commit_index")
            .await
            .expect("RAFT STATUS answers")
            .parse()
            .expect("the commit index is a number")
    }

    /// Waits until running node `id` has applied at least `index`.
    pub async fn wait_applied(&self, id: u64, index: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let applied = self.status_field(id, "raft_applied_index").await;
            if applied.and_then(|a| a.parse::<u64>().ok()).is_some_and(|a| a >= index) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {id} did not apply {index} within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Cuts (or restores) every link between `side` and the other nodes, both directions.
    pub fn partition(&self, side: &[u64], blocked: bool) {
        for ((from, to), proxy) in &self.links {
            if side.contains(from) != side.contains(to) {
                proxy.set_blocked(blocked);
            }
        }
    }

    /// A value from node `id`'s /metrics.
    pub async fn metric(&self, id: u64, name: &str) -> Option<f64> {
        let addr = &self.node(id).admin_addr;
        let body = http_get_as(addr, "/metrics", self.tls.as_ref(), self.password.as_deref()).await?;
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")).and_then(|v| v.trim().parse().ok()))
    }
}

/// GETs `path` from an HTTP server; the body.
/// The status line of `GET path` on an admin port.
pub async fn http_status(addr: &str, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    response.lines().next().map(str::to_string)
}

pub async fn http_get(addr: &str, path: &str) -> Option<String> {
    http_get_as(addr, path, None, None).await
}

/// GETs `path` from an HTTP server, over TLS with `tls`, with `password` as a bearer token;
/// the body.
pub async fn http_get_as(addr: &str, path: &str, tls: Option<&TlsConnector>, password: Option<&str>) -> Option<String> {
    let tcp = TcpStream::connect(addr).await.ok()?;
    let mut stream = match tls {
        Some(connector) => kv_node::tls::connect(connector, addr, tcp).await.ok()?,
        None => kv_node::tls::Stream::Plain(tcp),
    };
    let auth = password.map_or(String::new(), |p| format!("Authorization: Bearer {p}\r\n"));
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n{auth}\r\n").as_bytes())
        .await
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

/// Nanoseconds since the Unix epoch (the history clock).
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A client history shared by concurrent workers.
#[derive(Clone, Default)]
pub struct History(Arc<Mutex<Vec<Operation>>>);

impl History {
    pub fn operations(&self) -> Vec<Operation> {
        self.0.lock().unwrap().clone()
    }

    /// Acknowledged puts, in order of return.
    pub fn acknowledged_puts(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|op| match (&op.call, &op.outcome) {
                (Call::Put(v), Outcome::Returned { .. }) => Some((op.key.clone(), v.clone())),
                _ => None,
            })
            .collect()
    }

    /// Runs `call` on `key` through `client`, recording it. Errors that prove the operation
    /// did not run (no leader, refused) are left out of the history; any other failure is
    /// recorded as of unknown outcome. Returns whether it returned normally.
    pub async fn perform(&self, client_id: u64, client: &mut Client, key: &[u8], call: Call) -> bool {
        let invoked_at = now_ns();
        let args: Vec<Vec<u8>> = match &call {
            Call::Get => vec![b"GET".to_vec(), key.to_vec()],
            Call::Put(v) => vec![b"SET".to_vec(), key.to_vec(), v.clone()],
            Call::Delete => vec![b"DEL".to_vec(), key.to_vec()],
            Call::Cas { expected, new } => {
                let mut args = vec![b"CAS".to_vec(), key.to_vec()];
                match expected {
                    Some(v) => args.extend([b"IFEQ".to_vec(), v.clone()]),
                    None => args.push(b"IFABSENT".to_vec()),
                }
                match new {
                    Some(v) => args.extend([b"SET".to_vec(), v.clone()]),
                    None => args.push(b"DEL".to_vec()),
                }
                args
            }
            Call::GuardedGet { .. } | Call::Transaction { .. } => {
                panic!("the cluster workload runs single-key calls only: {call:?}")
            }
        };
        let reply = tokio::time::timeout(Duration::from_secs(8), client.call(&args)).await;
        let at = now_ns();
        let ret = match (&call, reply) {
            (Call::Get, Ok(Ok(Reply::Bulk(v)))) => Some(Ret::Get(Some(v))),
            (Call::Get, Ok(Ok(Reply::Nil))) => Some(Ret::Get(None)),
            (Call::Put(_), Ok(Ok(Reply::Simple(ok)))) if ok == "OK" => Some(Ret::Put),
            (Call::Delete, Ok(Ok(Reply::Integer(n)))) => Some(Ret::Delete { existed: n > 0 }),
            (Call::Cas { .. }, Ok(Ok(Reply::Array(items)))) => Some(Ret::Cas {
                swapped: items.first() == Some(&Reply::Integer(1)),
            }),
            // A read that failed had no effect.
            (Call::Get, _) => return false,
            (_, Ok(Ok(Reply::Error(e)))) if e.starts_with("TRYAGAIN no leader") || e.starts_with("ERR") => {
                return false;
            }
            (_, Ok(Ok(Reply::Error(_)))) | (_, Err(_)) => None,
            (_, Ok(Err(ClientError::Io(_) | ClientError::Closed))) => None,
            (call, Ok(other)) => panic!("{call:?} answered {other:?}"),
        };
        let returned = ret.is_some();
        let outcome = match ret {
            Some(ret) => Outcome::Returned { at, ret },
            None => Outcome::Unknown,
        };
        self.0.lock().unwrap().push(Operation {
            client: client_id,
            key: key.to_vec(),
            call,
            invoked_at,
            outcome,
        });
        returned
    }
}

/// Concurrent clients writing and reading a few keys through any node, recording a history.
pub struct Workload {
    stop: watch::Sender<bool>,
    handles: Vec<tokio::task::JoinHandle<u64>>,
    pub history: History,
}

impl Workload {
    /// Starts `clients` workers on `keys` keys, spreading them over `addrs` (client addresses);
    /// a worker whose node fails moves on to the next address.
    pub fn start(addrs: Vec<String>, clients: u64, keys: u64) -> Workload {
        let (stop, watch) = watch::channel(false);
        let history = History::default();
        let handles = (0..clients)
            .map(|c| {
                let (addrs, history, watch) = (addrs.clone(), history.clone(), watch.clone());
                tokio::spawn(async move {
                    let mut rng = 0x2545_F491_4F6C_DD1D_u64 ^ (c + 1).wrapping_mul(0x9E37_79B9);
                    let mut next = || {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        rng
                    };
                    let mut at = c as usize;
                    let mut client = None;
                    let mut acknowledged = 0;
                    let mut seq = 0;
                    while !*watch.borrow() {
                        let Some(conn) = client.as_mut() else {
                            at += 1;
                            let addr = &addrs[at % addrs.len()];
                            client = Client::connect(addr, None).await.ok();
                            if client.is_none() {
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                            continue;
                        };
                        let key = format!("key-{}", next() % keys).into_bytes();
                        seq += 1;
                        let value = format!("c{c}-{seq}").into_bytes();
                        let call = match next() % 10 {
                            0..4 => Call::Put(value),
                            4..8 => Call::Get,
                            _ => Call::Cas {
                                expected: Some(format!("c{}-{}", next() % clients, seq - 1).into_bytes()),
                                new: Some(value),
                            },
                        };
                        if history.perform(c, conn, &key, call).await {
                            acknowledged += 1;
                        } else {
                            client = None;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                    acknowledged
                })
            })
            .collect();
        Workload { stop, handles, history }
    }

    /// Stops the workers; returns the number of operations that returned normally.
    pub async fn stop(self) -> (History, u64) {
        self.stop.send_replace(true);
        let mut total = 0;
        for handle in self.handles {
            total += handle.await.unwrap();
        }
        (self.history, total)
    }
}

/// Asserts the history is linearizable, printing it on failure.
pub fn assert_linearizable(history: &History) {
    use kv_core::check::linearizability::Verdict;
    let ops = history.operations();
    match kv_core::check::linearizability::check(&ops) {
        Verdict::Linearizable => {}
        Verdict::Unknown { key, reason } => {
            eprintln!(
                "linearizability undecided for {:?}: {reason}",
                String::from_utf8_lossy(&key)
            );
        }
        verdict => panic!("{verdict:?}\nhistory of {} ops", ops.len()),
    }
}
