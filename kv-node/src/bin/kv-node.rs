//! `kv-node`: runs a QuorumKV node, or a local cluster of node processes.
//!
//! ```text
//! kv-node                                  # one-node cluster: RESP on 127.0.0.1:7379
//! kv-node --id 2 --data-dir d2 --client-addr 127.0.0.1:7389 --raft-addr 127.0.0.1:7390 \
//!         --peers 1=127.0.0.1:7380,2=127.0.0.1:7390,3=127.0.0.1:7400
//! kv-node --id 4 --data-dir d4 --client-addr 127.0.0.1:7409 --raft-addr 127.0.0.1:7410 \
//!         --join 127.0.0.1:7379
//! kv-node --config node.toml               # the same settings from a file (flags win)
//! kv-node local-cluster --nodes 3          # three node processes on 127.0.0.1
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use clap::Subcommand;
use serde::Deserialize;
use tokio::process::Child;
use tokio::signal::unix::SignalKind;
use tokio::signal::unix::signal;

use kv_core::command::Limits;
use kv_core::raft::KvNode;
use kv_node::node::NodeOptions;
use kv_node::storage::FsyncPolicy;
use kv_node::tls::ClientAuth;
use kv_node::tls::TlsOptions;

/// mimalloc instead of the system allocator: a node allocates and frees a few small buffers
/// per request (arguments, log entries, records, replies), and glibc's malloc spent 10–20% of
/// a loaded node's CPU on them (docs/benchmarks.md, "The allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in the `mi_option_t` of the mimalloc that libmimalloc-sys 0.1.49
/// builds (v3, `include/mimalloc.h`; the version is pinned in Cargo.lock). The bindings do not
/// name it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Makes mimalloc give freed memory back to the system at once rather than a second later:
/// a client may be sent large replies (up to its output limit, 48 MiB by default), and with
/// the default delay the freed reply buffers of a few such clients stayed resident, past the
/// bound `hardening.rs` holds a node to.
fn return_freed_memory_at_once() {
    // SAFETY: sets an option's value, before the node allocates anything large; mimalloc reads
    // it when it next purges.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}

/// Run a QuorumKV node (a Redis-compatible, Raft-replicated key-value store).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Commands>,
    #[command(flatten)]
    node: NodeArgs,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Start a cluster of node processes on 127.0.0.1 and wait for Ctrl-C.
    LocalCluster {
        /// Number of nodes.
        #[arg(long, default_value_t = 3)]
        nodes: u64,
        /// Client port of node 1; node i uses base + 10·(i-1) for RESP, +1 for Raft, +2 for HTTP.
        #[arg(long, default_value_t = 7379)]
        base_port: u16,
        /// Directory holding node1/, node2/, ...
        #[arg(long, default_value = "quorumkv-cluster")]
        data_dir: PathBuf,
        /// fsync policy of every node: always or never.
        #[arg(long, default_value = "always")]
        fsync: String,
        /// Serve TLS on every port, with a throwaway CA and certificates made in
        /// <data-dir>/tls (client certificates optional).
        #[arg(long)]
        tls: bool,
    },
}

/// Settings of one node; every one may also come from the `--config` file.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct NodeArgs {
    /// TOML file with any of these settings (keys as the flags, without dashes in front).
    #[arg(long)]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Node id (default 1).
    #[arg(long)]
    id: Option<u64>,
    /// Data directory (default ./quorumkv-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// RESP address (default 127.0.0.1:7379).
    #[arg(long)]
    client_addr: Option<String>,
    /// Raft address (default: the client port + 1).
    #[arg(long)]
    raft_addr: Option<String>,
    /// Admin HTTP address for /metrics and /health (default: the client port + 2; "off" for none).
    #[arg(long)]
    admin_addr: Option<String>,
    /// Initial members: ID=RAFT_ADDR[/CLIENT_ADDR],... (the same list on every initial node).
    #[arg(long)]
    peers: Option<String>,
    /// Client address of a member to join through (as a learner, then promoted).
    #[arg(long)]
    join: Option<String>,
    /// Reach members at these addresses instead of their advertised Raft address:
    /// ID=ADDR,... (NAT, tunnels, fault-injecting test proxies).
    #[arg(long)]
    raft_route: Option<String>,
    /// Password clients must give with AUTH. Anyone on this machine can read a command line
    /// (`ps`): prefer --password-file or the environment variable.
    #[arg(long, env = "QUORUMKV_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// File holding the AUTH password (one line; a trailing newline is ignored).
    #[arg(long, conflicts_with = "password")]
    password_file: Option<PathBuf>,
    /// File holding the cluster secret members prove to each other on the Raft port (one
    /// line; the same on every member). Default: the password, if any. See docs/security.md.
    #[arg(long)]
    cluster_secret_file: Option<PathBuf>,
    /// The cluster secret itself: a config-file key only (`cluster-secret = "..."`), never a
    /// flag, so that it stays out of `ps`.
    #[arg(skip)]
    cluster_secret: Option<String>,
    /// TLS: this node's certificate (PEM). With --tls-key-file and --tls-ca-cert-file, every
    /// port serves TLS only, and members authenticate each other with mutual TLS.
    #[arg(long)]
    tls_cert_file: Option<PathBuf>,
    /// TLS: the private key of --tls-cert-file (PEM).
    #[arg(long)]
    tls_key_file: Option<PathBuf>,
    /// TLS: the CA certificate that signs members' and clients' certificates (PEM).
    #[arg(long)]
    tls_ca_cert_file: Option<PathBuf>,
    /// TLS: client certificates on the client and admin ports: yes, no or optional (default).
    #[arg(long)]
    tls_auth_clients: Option<String>,
    /// fsync policy: always (default) or never.
    #[arg(long)]
    fsync: Option<String>,
    /// Snapshot after this many applied entries, and at least a quarter as many as keys held (0:
    /// only on RAFT SNAPSHOT). Default 100000 (etcd's --snapshot-count).
    #[arg(long)]
    snapshot_every: Option<u64>,
    /// Log entries kept behind a snapshot for lagging followers. Default 1000.
    #[arg(long)]
    keep_logs: Option<u64>,
    /// Shortest election timeout in milliseconds (heartbeat: a fifth of it). Default 400.
    #[arg(long)]
    election_timeout_ms: Option<u64>,
    /// How long a client operation may take, in milliseconds. Default 5000.
    #[arg(long)]
    request_timeout_ms: Option<u64>,
    /// Longest bulk string a client may send, in bytes. Default 8 MiB.
    #[arg(long)]
    max_bulk_len: Option<usize>,
    /// Most client connections open at once; more are answered "max number of clients
    /// reached". Default 10000, or the open-file limit less 256 kept for the node's own files
    /// and peers, if lower.
    #[arg(long)]
    maxclients: Option<usize>,
    /// Close a client connection idle for this many seconds (0: never, the default).
    #[arg(long)]
    timeout: Option<u64>,
    /// Most bytes of keys and values one read (GET, MGET, KEYS, SCAN) may return; a larger
    /// reply is refused with an error. Default 8 MiB.
    #[arg(long)]
    max_reply_bytes: Option<usize>,
    /// Unsent reply bytes past which a connection stops running its next commands until the
    /// client reads (back-pressure). Default 1 MiB.
    #[arg(long)]
    client_output_limit: Option<usize>,
    /// Log filter (tracing env-filter syntax), e.g. info or kv_node=debug. Default info.
    #[arg(long)]
    log: Option<String>,
}

impl NodeArgs {
    /// These settings, with the unset ones taken from `file`.
    fn or(self, file: NodeArgs) -> NodeArgs {
        NodeArgs {
            config: self.config,
            id: self.id.or(file.id),
            data_dir: self.data_dir.or(file.data_dir),
            client_addr: self.client_addr.or(file.client_addr),
            raft_addr: self.raft_addr.or(file.raft_addr),
            admin_addr: self.admin_addr.or(file.admin_addr),
            peers: self.peers.or(file.peers),
            join: self.join.or(file.join),
            raft_route: self.raft_route.or(file.raft_route),
            password: self.password.or(file.password),
            password_file: self.password_file.or(file.password_file),
            cluster_secret_file: self.cluster_secret_file.or(file.cluster_secret_file),
            cluster_secret: self.cluster_secret.or(file.cluster_secret),
            tls_cert_file: self.tls_cert_file.or(file.tls_cert_file),
            tls_key_file: self.tls_key_file.or(file.tls_key_file),
            tls_ca_cert_file: self.tls_ca_cert_file.or(file.tls_ca_cert_file),
            tls_auth_clients: self.tls_auth_clients.or(file.tls_auth_clients),
            fsync: self.fsync.or(file.fsync),
            snapshot_every: self.snapshot_every.or(file.snapshot_every),
            keep_logs: self.keep_logs.or(file.keep_logs),
            election_timeout_ms: self.election_timeout_ms.or(file.election_timeout_ms),
            request_timeout_ms: self.request_timeout_ms.or(file.request_timeout_ms),
            max_bulk_len: self.max_bulk_len.or(file.max_bulk_len),
            maxclients: self.maxclients.or(file.maxclients),
            timeout: self.timeout.or(file.timeout),
            max_reply_bytes: self.max_reply_bytes.or(file.max_reply_bytes),
            client_output_limit: self.client_output_limit.or(file.client_output_limit),
            log: self.log.or(file.log),
        }
    }

    fn into_options(self) -> Result<NodeOptions, String> {
        let defaults = NodeOptions::default();
        let client_addr = self.client_addr.unwrap_or(defaults.client_addr);
        let shifted = |by: u16| -> Result<String, String> {
            let (host, port) = client_addr
                .rsplit_once(':')
                .ok_or_else(|| format!("client address {client_addr} is not host:port"))?;
            let port: u16 = port.parse().map_err(|_| format!("bad port in {client_addr}"))?;
            let port = port
                .checked_add(by)
                .ok_or_else(|| format!("no port {by} above {client_addr}"))?;
            Ok(format!("{host}:{port}"))
        };
        let raft_addr = match self.raft_addr {
            Some(addr) => addr,
            None => shifted(1)?,
        };
        let admin_addr = match self.admin_addr.as_deref() {
            Some("off") => None,
            Some(addr) => Some(addr.to_string()),
            None => Some(shifted(2)?),
        };
        let fsync = match self.fsync.as_deref() {
            None | Some("always") => FsyncPolicy::Always,
            Some("never") => FsyncPolicy::Never,
            Some(other) => return Err(format!("--fsync must be always or never, not {other}")),
        };
        Ok(NodeOptions {
            id: self.id.unwrap_or(defaults.id),
            data_dir: self.data_dir.unwrap_or(defaults.data_dir),
            client_addr,
            raft_addr,
            admin_addr,
            peers: match self.peers {
                Some(list) => parse_peers(&list)?,
                None => BTreeMap::new(),
            },
            join: self.join,
            routes: match self.raft_route {
                Some(list) => parse_peers(&list)?
                    .into_iter()
                    .map(|(id, node)| (id, node.raft_addr))
                    .collect(),
                None => BTreeMap::new(),
            },
            password: match (self.password, self.password_file) {
                (Some(_), Some(_)) => return Err("give --password or --password-file, not both".to_string()),
                (password, None) => password,
                (None, Some(path)) => Some(read_secret(&path)?),
            },
            tls: match (self.tls_cert_file, self.tls_key_file, self.tls_ca_cert_file) {
                (Some(cert_file), Some(key_file), Some(ca_file)) => Some(TlsOptions {
                    cert_file,
                    key_file,
                    ca_file,
                    auth_clients: match self.tls_auth_clients {
                        Some(value) => value.parse()?,
                        None => ClientAuth::default(),
                    },
                }),
                (None, None, None) if self.tls_auth_clients.is_none() => None,
                _ => {
                    return Err("TLS needs all of --tls-cert-file, --tls-key-file and --tls-ca-cert-file".to_string());
                }
            },
            cluster_secret: match (self.cluster_secret, self.cluster_secret_file) {
                (Some(_), Some(_)) => return Err("give cluster-secret or cluster-secret-file, not both".to_string()),
                (secret, None) => secret,
                (None, Some(path)) => Some(read_secret(&path)?),
            },
            fsync,
            snapshot_every: match self.snapshot_every {
                Some(0) => None,
                Some(n) => Some(n),
                None => defaults.snapshot_every,
            },
            keep_logs: self.keep_logs.unwrap_or(defaults.keep_logs),
            election_timeout: self
                .election_timeout_ms
                .map_or(defaults.election_timeout, Duration::from_millis),
            request_timeout: self
                .request_timeout_ms
                .map_or(defaults.request_timeout, Duration::from_millis),
            max_bulk_len: self.max_bulk_len.unwrap_or(defaults.max_bulk_len),
            max_clients: match self.maxclients {
                Some(0) => return Err("--maxclients must be at least 1".to_string()),
                Some(n) => n,
                None => defaults.max_clients,
            },
            idle_timeout: match self.timeout {
                None | Some(0) => None,
                Some(seconds) => Some(Duration::from_secs(seconds)),
            },
            limits: Limits {
                max_reply_bytes: self.max_reply_bytes.unwrap_or(defaults.limits.max_reply_bytes),
                ..defaults.limits
            },
            output_limit: self.client_output_limit.unwrap_or(defaults.output_limit),
            ..defaults
        })
    }
}

/// Reads a one-line secret (password, cluster secret) from `path`: the trailing newline is not
/// part of it; an empty secret is an error.
fn read_secret(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let secret = text.strip_suffix('\n').unwrap_or(&text);
    let secret = secret.strip_suffix('\r').unwrap_or(secret);
    if secret.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(secret.to_string())
}

/// Parses `1=host:port[/host:port],2=...`.
fn parse_peers(list: &str) -> Result<BTreeMap<u64, KvNode>, String> {
    let mut peers = BTreeMap::new();
    for item in list.split(',').filter(|s| !s.is_empty()) {
        let (id, addrs) = item
            .split_once('=')
            .ok_or_else(|| format!("peer {item:?} is not ID=RAFT_ADDR"))?;
        let id: u64 = id
            .trim()
            .parse()
            .map_err(|_| format!("peer id {id:?} is not a number"))?;
        let (raft_addr, client_addr) = addrs.split_once('/').unwrap_or((addrs, ""));
        let node = KvNode {
            raft_addr: raft_addr.trim().to_string(),
            client_addr: client_addr.trim().to_string(),
        };
        if peers.insert(id, node).is_some() {
            return Err(format!("peer {id} is listed twice"));
        }
    }
    Ok(peers)
}

fn main() -> ExitCode {
    return_freed_memory_at_once();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("kv-node: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Some(Commands::LocalCluster {
                nodes,
                base_port,
                data_dir,
                fsync,
                tls,
            }) => local_cluster(nodes, base_port, data_dir, fsync, tls).await,
            None => run_node(cli.node).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kv-node: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run_node(args: NodeArgs) -> Result<(), String> {
    let args = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let file: NodeArgs = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            args.or(file)
        }
        None => args,
    };
    let filter = tracing_subscriber::EnvFilter::try_new(args.log.as_deref().unwrap_or("info,openraft=warn"))
        .map_err(|e| format!("bad --log filter: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let options = args.into_options()?;
    let mut terminate = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let node = kv_node::server::start(options).await.map_err(|e| e.to_string())?;
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
        fatal = node.fatal() => {
            // Raft stopped by itself (a storage failure): a process that answers nothing
            // helps no one, so exit non-zero and let the supervisor restart the node, which
            // recovers from its log.
            tracing::error!(error = %fatal, "raft stopped; exiting so that a supervisor restarts the node");
            node.shutdown().await;
            return Err(format!("raft stopped: {fatal}"));
        }
    }
    node.shutdown().await;
    Ok(())
}

/// Starts `count` node processes forming one cluster, prints how to reach them, and stops
/// them (SIGTERM) on Ctrl-C or SIGTERM.
async fn local_cluster(count: u64, base_port: u16, data_dir: PathBuf, fsync: String, tls: bool) -> Result<(), String> {
    if count == 0 || count > 99 {
        return Err("--nodes must be between 1 and 99".to_string());
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let port = |i: u64, offset: u64| -> Result<u16, String> {
        u16::try_from(u64::from(base_port) + (i - 1) * 10 + offset).map_err(|_| "ports past 65535".to_string())
    };
    let mut peers = Vec::new();
    for i in 1..=count {
        peers.push(format!("{i}=127.0.0.1:{}/127.0.0.1:{}", port(i, 1)?, port(i, 0)?));
    }
    let peers = peers.join(",");
    let pki = if tls {
        let dir = data_dir.join("tls");
        Some(
            kv_node::pki::write_cluster_pki(&dir)
                .map_err(|e| format!("cannot make certificates in {}: {e}", dir.display()))?,
        )
    } else {
        None
    };
    let mut children: Vec<Child> = Vec::new();
    for i in 1..=count {
        let dir = data_dir.join(format!("node{i}"));
        let mut command = tokio::process::Command::new(&exe);
        if let Some(pki) = &pki {
            command
                .arg("--tls-cert-file")
                .arg(&pki.node.cert)
                .arg("--tls-key-file")
                .arg(&pki.node.key)
                .arg("--tls-ca-cert-file")
                .arg(&pki.ca);
        }
        let spawned = command
            .arg("--id")
            .arg(i.to_string())
            .arg("--data-dir")
            .arg(&dir)
            .arg("--client-addr")
            .arg(format!("127.0.0.1:{}", port(i, 0)?))
            .arg("--raft-addr")
            .arg(format!("127.0.0.1:{}", port(i, 1)?))
            .arg("--admin-addr")
            .arg(format!("127.0.0.1:{}", port(i, 2)?))
            .arg("--peers")
            .arg(&peers)
            .arg("--fsync")
            .arg(&fsync)
            .kill_on_drop(true)
            .spawn();
        match spawned {
            Ok(child) => children.push(child),
            Err(e) => {
                stop(&mut children).await;
                return Err(format!("cannot start node {i}: {e}"));
            }
        }
    }
    println!("QuorumKV local cluster: {count} nodes, data in {}", data_dir.display());
    // What redis-cli needs to connect, and the scheme of the admin port.
    let (cli, scheme) = match &pki {
        Some(pki) => (format!("redis-cli --tls --cacert {}", pki.ca.display()), "https"),
        None => ("redis-cli".to_string(), "http"),
    };
    for i in 1..=count {
        println!(
            "  node {i}: {cli} -p {}    (raft 127.0.0.1:{}, metrics {scheme}://127.0.0.1:{}/metrics)",
            port(i, 0)?,
            port(i, 1)?,
            port(i, 2)?
        );
    }
    if let Some(pki) = &pki {
        println!(
            "TLS on every port, throwaway CA {} (client certificate, optional: {} / {})",
            pki.ca.display(),
            pki.client.cert.display(),
            pki.client.key.display()
        );
    }
    println!(
        "Any node accepts reads and writes. Try: {cli} -p {} SET hello world",
        port(1, 0)?
    );
    println!(
        "Cluster state: {cli} -p {} RAFT STATUS. Ctrl-C stops every node.",
        port(1, 0)?
    );
    let mut terminate = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    stop(&mut children).await;
    Ok(())
}

/// Sends SIGTERM to every child and waits for them (SIGKILL after 10 seconds).
async fn stop(children: &mut [Child]) {
    for child in children.iter() {
        if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
            // SAFETY: kill(2) with a pid of our own child and a valid signal number.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
    for child in children.iter_mut() {
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse() {
        let peers = parse_peers("1=127.0.0.1:7380/127.0.0.1:7379,2=h:1").unwrap();
        assert_eq!(peers[&1].client_addr, "127.0.0.1:7379");
        assert_eq!(peers[&2].raft_addr, "h:1");
        assert!(parse_peers("1=a:1,1=b:2").is_err());
        assert!(parse_peers("x=a:1").is_err());
    }

    #[test]
    fn defaults_derive_ports_from_the_client_address() {
        let options = NodeArgs::default().into_options().unwrap();
        assert_eq!(options.client_addr, "127.0.0.1:7379");
        assert_eq!(options.raft_addr, "127.0.0.1:7380");
        assert_eq!(options.admin_addr.as_deref(), Some("127.0.0.1:7381"));
        assert_eq!(options.data_dir, PathBuf::from("quorumkv-data"));
        let file: NodeArgs = toml::from_str("id = 3\nclient-addr = \"127.0.0.1:9000\"\nfsync = \"never\"").unwrap();
        let options = NodeArgs::default().or(file).into_options().unwrap();
        assert_eq!((options.id, options.raft_addr.as_str()), (3, "127.0.0.1:9001"));
        assert_eq!(options.fsync, FsyncPolicy::Never);
    }

    #[test]
    fn security_settings_come_from_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("password");
        std::fs::write(&password, "pw\n").unwrap();
        let text = format!(
            "password-file = {:?}\ncluster-secret = \"members\"\ntls-cert-file = \"n.crt\"\ntls-key-file = \"n.key\"\ntls-ca-cert-file = \"ca.crt\"\ntls-auth-clients = \"yes\"\n",
            password.display().to_string()
        );
        let file: NodeArgs = toml::from_str(&text).unwrap();
        let options = NodeArgs::default().or(file).into_options().unwrap();
        assert_eq!(options.password.as_deref(), Some("pw"));
        assert_eq!(options.cluster_secret.as_deref(), Some("members"));
        let tls = options.tls.unwrap();
        assert_eq!(tls.cert_file, PathBuf::from("n.crt"));
        assert_eq!(tls.auth_clients, ClientAuth::Yes);
        // Two of the three TLS files is a mistake, not "no TLS".
        let file: NodeArgs = toml::from_str("tls-cert-file = \"n.crt\"\ntls-key-file = \"n.key\"").unwrap();
        assert!(NodeArgs::default().or(file).into_options().is_err());
        let file: NodeArgs = toml::from_str("tls-auth-clients = \"maybe\"").unwrap();
        assert!(NodeArgs::default().or(file).into_options().is_err());
    }
}
