//! The cluster under test: kv-node processes on 127.0.0.1 whose every Raft link runs through a
//! [`Proxy`], plus the spare node ids that membership changes add.
//!
//! Every node id that may ever be a member (the initial `n` and `spares` more) gets its three
//! ports up front, and every directed pair of them a proxy; each node starts with
//! `--raft-route` naming the proxies of its outgoing links, so its view of every peer (also of
//! one that joins later) points at a proxy. Nodes run with `--fsync always`.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::Child;
use std::process::Command;
use std::process::Stdio;
use std::time::Duration;

use kv_node::client::Client;
use kv_node::protocol::Reply;
use tokio::net::TcpListener;

use crate::proxy::LinkFaults;
use crate::proxy::Proxy;

/// Election timeout of the campaign's nodes, in milliseconds.
pub const ELECTION_MS: u64 = 400;
/// How long a call to a node may take before the campaign gives up on it.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// Hands out ports from a range, skipping ones in use.
#[derive(Debug)]
pub struct Ports {
    next: u16,
    end: u16,
}

impl Ports {
    /// Ports from `first` up to (not including) `end`.
    pub fn new(first: u16, end: u16) -> Ports {
        Ports { next: first, end }
    }

    /// A port nobody listens on now, bound and released (for a node to bind).
    pub fn free(&mut self) -> std::io::Result<u16> {
        Ok(self.listener()?.local_addr()?.port())
    }

    /// A listener on the next free port.
    pub fn listener(&mut self) -> std::io::Result<StdListener> {
        while self.next < self.end {
            let port = self.next;
            self.next += 1;
            if let Ok(listener) = StdListener::bind(("127.0.0.1", port)) {
                return Ok(listener);
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            "the port range is used up",
        ))
    }
}

/// One node process and its addresses.
#[derive(Debug)]
pub struct Node {
    /// Node id.
    pub id: u64,
    /// RESP address.
    pub client_addr: String,
    /// Raft address (advertised; peers reach it through proxies).
    pub raft_addr: String,
    /// Admin HTTP address.
    pub admin_addr: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Where its stderr goes (appended over restarts).
    pub log: PathBuf,
    child: Option<Child>,
    /// Stopped with SIGSTOP.
    pub paused: bool,
}

impl Node {
    /// Whether the process runs (maybe paused).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    fn signal(&self, signal: i32) {
        if let Some(child) = &self.child {
            // SAFETY: kill(2) on our own child with a valid signal number.
            unsafe {
                libc::kill(child.id() as i32, signal);
            }
        }
    }
}

/// Status of one node, from `RAFT STATUS`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStatus {
    /// `leader`, `follower`, ...
    pub role: String,
    /// The leader it knows of.
    pub leader_id: Option<u64>,
    /// Commit index.
    pub commit_index: u64,
    /// Applied index.
    pub applied_index: u64,
    /// Voter ids.
    pub voters: Vec<u64>,
    /// Learner ids.
    pub learners: Vec<u64>,
}

/// What [`Cluster::new`] lays out.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The kv-node binary.
    pub kv_node: PathBuf,
    /// Initial members (ids 1..=nodes).
    pub nodes: u64,
    /// Further ids that membership changes may add.
    pub spares: u64,
    /// Where the data directories go (`node<id>/`).
    pub data: PathBuf,
    /// Where the logs go (`node<id>.log`).
    pub logs: PathBuf,
    /// Seeds the proxies' random faults.
    pub seed: u64,
    /// Extra flags for every node.
    pub extra: Vec<String>,
}

/// The processes, their proxies, and where they keep things.
pub struct Cluster {
    /// Every node id that may run, started or not.
    pub nodes: BTreeMap<u64, Node>,
    /// (from, to) → the proxy carrying from's Raft traffic to `to`.
    pub links: BTreeMap<(u64, u64), Proxy>,
    /// The ids started as the initial cluster.
    pub initial: Vec<u64>,
    /// Processes found to have exited by themselves: id and exit status.
    pub crashed: Vec<(u64, String)>,
    kv_node: PathBuf,
    extra: Vec<String>,
}

impl Cluster {
    /// Lays out the nodes of `layout` with a proxy on every directed link; starts nothing.
    pub async fn new(layout: Layout, ports: &mut Ports) -> std::io::Result<Cluster> {
        let Layout {
            kv_node,
            nodes: n,
            spares,
            data: dir,
            logs,
            seed,
            extra,
        } = layout;
        let mut nodes = BTreeMap::new();
        for id in 1..=n + spares {
            let addr = |port: u16| format!("127.0.0.1:{port}");
            nodes.insert(
                id,
                Node {
                    id,
                    client_addr: addr(ports.free()?),
                    raft_addr: addr(ports.free()?),
                    admin_addr: addr(ports.free()?),
                    data_dir: dir.join(format!("node{id}")),
                    log: logs.join(format!("node{id}.log")),
                    child: None,
                    paused: false,
                },
            );
        }
        let mut links = BTreeMap::new();
        for from in nodes.keys() {
            for (to, node) in &nodes {
                if from != to {
                    let listener = ports.listener()?;
                    listener.set_nonblocking(true)?;
                    let listener = TcpListener::from_std(listener)?;
                    let link_seed = seed ^ (from << 32 | to).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    links.insert((*from, *to), Proxy::start(listener, node.raft_addr.clone(), link_seed));
                }
            }
        }
        Ok(Cluster {
            nodes,
            links,
            initial: (1..=n).collect(),
            crashed: Vec::new(),
            kv_node,
            extra,
        })
    }

    /// The node `id`.
    pub fn node(&self, id: u64) -> &Node {
        &self.nodes[&id]
    }

    fn args(&self, id: u64, how: &[String]) -> Vec<String> {
        let node = self.node(id);
        let routes: Vec<String> = self
            .links
            .iter()
            .filter(|((from, _), _)| *from == id)
            .map(|((_, to), proxy)| format!("{to}={}", proxy.addr))
            .collect();
        let mut args: Vec<String> = [
            "--id",
            &id.to_string(),
            "--data-dir",
            &node.data_dir.display().to_string(),
            "--client-addr",
            &node.client_addr,
            "--raft-addr",
            &node.raft_addr,
            "--admin-addr",
            &node.admin_addr,
            "--raft-route",
            &routes.join(","),
            "--fsync",
            "always",
            "--election-timeout-ms",
            &ELECTION_MS.to_string(),
            "--request-timeout-ms",
            "2500",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(how.iter().cloned());
        args.extend(self.extra.iter().cloned());
        args
    }

    /// Starts the initial nodes as one cluster (`--peers`).
    pub fn start_initial(&mut self) -> std::io::Result<()> {
        let peers = self
            .initial
            .iter()
            .map(|id| {
                let node = self.node(*id);
                format!("{id}={}/{}", node.raft_addr, node.client_addr)
            })
            .collect::<Vec<_>>()
            .join(",");
        for id in self.initial.clone() {
            self.spawn(id, &["--peers".to_string(), peers.clone()])?;
        }
        Ok(())
    }

    /// Starts node `id` with `how` (`--peers ...`, `--join ...`, or nothing for a restart
    /// from its data directory).
    pub fn spawn(&mut self, id: u64, how: &[String]) -> std::io::Result<()> {
        let args = self.args(id, how);
        let node = self.nodes.get_mut(&id).expect("a laid-out node");
        assert!(node.child.is_none(), "node {id} already runs");
        let mut log = OpenOptions::new().create(true).append(true).open(&node.log)?;
        writeln!(log, "=== kv-chaos: starting node {id}: kv-node {}", args.join(" "))?;
        let child = Command::new(&self.kv_node)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        node.child = Some(child);
        node.paused = false;
        Ok(())
    }

    /// Restarts node `id` from its data directory.
    pub fn restart(&mut self, id: u64) -> std::io::Result<()> {
        self.spawn(id, &[])
    }

    /// kill -9 (a process that had already exited by itself is noted in [`Cluster::crashed`]).
    pub fn kill(&mut self, id: u64) {
        let node = self.nodes.get_mut(&id).expect("a laid-out node");
        if let Some(mut child) = node.child.take() {
            if let Ok(Some(status)) = child.try_wait() {
                self.crashed.push((id, status.to_string()));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        node.paused = false;
    }

    /// SIGSTOP (`true`) or SIGCONT.
    pub fn pause(&mut self, id: u64, paused: bool) {
        let node = self.nodes.get_mut(&id).expect("a laid-out node");
        node.signal(if paused { libc::SIGSTOP } else { libc::SIGCONT });
        node.paused = paused && node.is_running();
    }

    /// Kills node `id` and deletes its data (after it left the cluster).
    pub fn wipe(&mut self, id: u64) -> std::io::Result<()> {
        self.kill(id);
        let dir = &self.node(id).data_dir;
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        Ok(())
    }

    /// Reaps every process that exited by itself (crashed, refused to start), noting it in
    /// [`Cluster::crashed`]; the ids.
    pub fn reap(&mut self) -> Vec<u64> {
        let mut reaped = Vec::new();
        for node in self.nodes.values_mut() {
            if let Some(child) = node.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.crashed.push((node.id, status.to_string()));
                node.child = None;
                reaped.push(node.id);
            }
        }
        reaped
    }

    /// SIGCONT and SIGTERM to every process, then waits (kill -9 after 10 s).
    pub fn stop_all(&mut self) {
        for node in self.nodes.values() {
            node.signal(libc::SIGCONT);
            node.signal(libc::SIGTERM);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        for node in self.nodes.values_mut() {
            if let Some(mut child) = node.child.take() {
                loop {
                    if child.try_wait().ok().flatten().is_some() {
                        break;
                    }
                    if std::time::Instant::now() > deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// Sets the faults of link (from, to).
    pub fn set_link(&self, from: u64, to: u64, faults: LinkFaults) {
        if let Some(proxy) = self.links.get(&(from, to)) {
            proxy.set(faults);
        }
    }

    /// Cuts every link between the groups of `sides` (both directions); links inside a group,
    /// and links of nodes in no group, stay as they are.
    pub fn partition(&self, sides: &[Vec<u64>]) {
        let side_of = |id: u64| sides.iter().position(|s| s.contains(&id));
        for ((from, to), proxy) in &self.links {
            if let (Some(a), Some(b)) = (side_of(*from), side_of(*to))
                && a != b
            {
                proxy.set(LinkFaults {
                    cut: true,
                    ..LinkFaults::default()
                });
            }
        }
    }

    /// Heals every link.
    pub fn heal(&self) {
        for proxy in self.links.values() {
            proxy.set(LinkFaults::default());
        }
    }

    /// Ids of running processes.
    pub fn running(&self) -> Vec<u64> {
        self.nodes.values().filter(|n| n.is_running()).map(|n| n.id).collect()
    }

    /// `RAFT STATUS` of node `id`, if it answers within the call timeout.
    pub async fn status(&self, id: u64) -> Option<NodeStatus> {
        let node = self.nodes.get(&id)?;
        if !node.is_running() || node.paused {
            return None;
        }
        let reply = call(&node.client_addr, &["RAFT", "STATUS"]).await?;
        parse_status(reply)
    }

    /// The leader that some running node reports and that itself says it leads.
    pub async fn leader(&self) -> Option<u64> {
        for id in self.running() {
            if let Some(status) = self.status(id).await
                && let Some(leader) = status.leader_id
                && self.status(leader).await.is_some_and(|s| s.role == "leader")
            {
                return Some(leader);
            }
        }
        None
    }

    /// Sends a command to node `id`'s client port.
    pub async fn call(&self, id: u64, args: &[&str]) -> Option<Reply> {
        call(&self.node(id).client_addr, args).await
    }
}

/// One command on a fresh connection, within [`CALL_TIMEOUT`].
pub async fn call(addr: &str, args: &[&str]) -> Option<Reply> {
    tokio::time::timeout(CALL_TIMEOUT, async {
        let mut client = Client::connect(addr, None).await.ok()?;
        client.call(args).await.ok()
    })
    .await
    .ok()
    .flatten()
}

/// Reads a `RAFT STATUS` reply (RESP2: a flat array of name, value pairs).
fn parse_status(reply: Reply) -> Option<NodeStatus> {
    let Reply::Array(items) = reply else {
        return None;
    };
    let mut status = NodeStatus::default();
    let ids = |value: &Reply| -> Vec<u64> {
        match value {
            Reply::Array(members) => members
                .iter()
                .filter_map(|m| match m {
                    Reply::Array(parts) => match parts.first() {
                        Some(Reply::Integer(id)) => u64::try_from(*id).ok(),
                        _ => None,
                    },
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    };
    for pair in items.chunks(2) {
        let [Reply::Bulk(name), value] = pair else {
            continue;
        };
        let int = match value {
            Reply::Integer(n) => u64::try_from(*n).ok(),
            _ => None,
        };
        match name.as_slice() {
            b"role" => {
                status.role = match value {
                    Reply::Bulk(role) => String::from_utf8_lossy(role).into_owned(),
                    Reply::Simple(role) => role.clone(),
                    _ => String::new(),
                };
            }
            b"leader_id" => status.leader_id = int,
            b"commit_index" => status.commit_index = int.unwrap_or(0),
            b"applied_index" => status.applied_index = int.unwrap_or(0),
            b"voters" => status.voters = ids(value),
            b"learners" => status.learners = ids(value),
            _ => {}
        }
    }
    Some(status)
}
