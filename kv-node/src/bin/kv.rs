//! `kv`: the QuorumKV command-line client. It speaks RESP to the cluster through
//! [`ClusterClient`]: `--addr` takes one or more nodes (comma separated); it finds the leader,
//! fails over, backs off while there is no leader, and runs writes through a client session, so
//! a write retried after a lost answer applies once. A failure says whether the write may have
//! taken effect (exit status 1 either way). `kv bench` measures one node.
//!
//! ```text
//! kv put greeting hello --ttl 60
//! kv get greeting
//! kv cas greeting --expected hello --new bonjour
//! kv scan --match 'user:*'
//! kv watch user: --since 42     # every change after revision 42, across node failures
//! kv cluster status
//! kv cluster add 4 127.0.0.1:7410 127.0.0.1:7409
//! kv bench --clients 50 --requests 100000 --read-ratio 0.9
//! ```

use std::io::IsTerminal as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use clap::Parser;
use clap::Subcommand;

use kv_node::client::Client;
use kv_node::client::ClientError;
use kv_node::client::ClusterClient;
use kv_node::client::ClusterError;
use kv_node::client::ClusterOptions;
use kv_node::client::Failure;
use kv_node::client::Watch;
use kv_node::client::WatchError;
use kv_node::protocol::Reply;

/// QuorumKV command-line client.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Client (RESP) addresses of one or more nodes, comma separated (`kv bench` uses the
    /// first).
    #[arg(long, short, global = true, default_value = "127.0.0.1:7379", value_delimiter = ',')]
    addr: Vec<String>,
    /// How long a command keeps retrying (failover, no leader) before it fails, in seconds.
    #[arg(long, global = true, default_value_t = 15.0)]
    retry_for: f64,
    /// Password, if the node requires AUTH (prefer the environment variable or
    /// --password-file: a command line is visible to every local user).
    #[arg(long, global = true, env = "QUORUMKV_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Connect with TLS (needs --cacert).
    #[arg(long, global = true, requires = "cacert")]
    tls: bool,
    /// TLS: the CA certificate that signs the nodes' certificates (PEM).
    #[arg(long, global = true)]
    cacert: Option<std::path::PathBuf>,
    /// TLS: a client certificate to present (PEM), for nodes with --tls-auth-clients yes.
    #[arg(long = "cert", global = true, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// TLS: the private key of --cert (PEM).
    #[arg(long = "key", global = true, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// File holding the password (one line).
    #[arg(long, global = true, conflicts_with = "password")]
    password_file: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a key's value.
    Get {
        /// The key.
        key: String,
    },
    /// Set a key.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Expire after this many seconds.
        #[arg(long)]
        ttl: Option<u64>,
    },
    /// Delete keys; prints how many existed.
    Del {
        /// The keys.
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Compare-and-swap: replace the value only if it is the expected one.
    Cas {
        /// The key.
        key: String,
        /// The value the key must hold (absent if not given).
        #[arg(long)]
        expected: Option<String>,
        /// The new value (the key is deleted if not given).
        #[arg(long)]
        new: Option<String>,
    },
    /// List keys (and values) in key order.
    Scan {
        /// Only keys matching this glob pattern.
        #[arg(long = "match", default_value = "*")]
        pattern: String,
        /// Stop after this many keys.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Print a key's time to live in seconds (-1: none, -2: no such key).
    Ttl {
        /// The key.
        key: String,
    },
    /// Print every change to keys starting with PREFIX, as `revision event key value` lines,
    /// until interrupted (WATCHKEYS).
    Watch {
        /// The key prefix ("" for every key).
        prefix: String,
        /// Start after this revision (default: the current one).
        #[arg(long)]
        since: Option<u64>,
    },
    /// Inspect or change the cluster.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Load-test a node and report throughput and latency percentiles.
    Bench(BenchArgs),
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// The node's view of the cluster.
    Status,
    /// Add a node as a learner, then promote it to voter.
    Add {
        /// Its id.
        id: u64,
        /// Its Raft address.
        raft_addr: String,
        /// Its client address.
        client_addr: Option<String>,
    },
    /// Remove a node.
    Remove {
        /// Its id.
        id: u64,
    },
    /// Make another voter the leader.
    TransferLeader {
        /// Its id.
        id: u64,
    },
}

#[derive(Debug, Clone, clap::Args)]
struct BenchArgs {
    /// Concurrent connections.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Total requests.
    #[arg(long, default_value_t = 100_000)]
    requests: u64,
    /// Distinct keys.
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
    /// Key size in bytes (at least 8).
    #[arg(long, default_value_t = 16)]
    key_size: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 64)]
    value_size: usize,
    /// Fraction of requests that are GETs (the rest are SETs).
    #[arg(long, default_value_t = 0.5)]
    read_ratio: f64,
    /// Requests each connection sends before reading the replies.
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("kv: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kv: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Renders a reply for a terminal.
fn show(reply: &Reply) -> String {
    match reply {
        Reply::Simple(text) => text.clone(),
        Reply::Error(text) => format!("(error) {text}"),
        Reply::Integer(n) => n.to_string(),
        Reply::Bulk(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Reply::Nil | Reply::NilArray => "(nil)".to_string(),
        Reply::Array(items) | Reply::Push(items) => items.iter().map(show).collect::<Vec<_>>().join("\n"),
        Reply::Map(pairs) => pairs
            .iter()
            .map(|(k, v)| format!("{}: {}", show(k), show(v)))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// A reply on one line: members of a RAFT STATUS list as `id raft-addr client-addr`, comma
/// separated.
fn inline(reply: &Reply) -> String {
    match reply {
        Reply::Array(items) => items
            .iter()
            .map(|item| match item {
                Reply::Array(parts) => parts.iter().map(show).collect::<Vec<_>>().join(" "),
                other => show(other),
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => show(other),
    }
}

/// Why `kv` failed.
#[derive(Debug, thiserror::Error)]
enum CliError {
    /// From the cluster.
    #[error("{0}")]
    Cluster(#[from] ClusterError),
    /// From one node (`kv bench`).
    #[error("{0}")]
    Node(#[from] ClientError),
    /// A watch ended (`kv watch`).
    #[error("{0}")]
    Watch(#[from] WatchError),
    /// Before any command ran.
    #[error("{0}")]
    Setup(String),
}

async fn run(mut cli: Cli) -> Result<(), CliError> {
    if let Some(path) = cli.password_file.take() {
        let text = std::fs::read_to_string(&path).map_err(|e| CliError::Setup(format!("{}: {e}", path.display())))?;
        cli.password = Some(text.trim_end_matches(['\r', '\n']).to_string());
    }
    let tls = match (&cli.tls, &cli.cacert) {
        (true, Some(ca)) => Some(
            kv_node::tls::client_config(ca, cli.tls_cert.as_deref().zip(cli.tls_key.as_deref()))
                .map_err(|e| CliError::Setup(e.to_string()))?,
        ),
        _ => None,
    };
    if let Command::Bench(args) = cli.command {
        let addr = cli.addr.first().map_or("127.0.0.1:7379", String::as_str);
        return Ok(bench(addr, cli.password.as_deref(), tls.as_ref(), args).await?);
    }
    let retry_for = Duration::try_from_secs_f64(cli.retry_for)
        .map_err(|e| CliError::Setup(format!("--retry-for {}: {e}", cli.retry_for)))?;
    let options = ClusterOptions {
        password: cli.password.clone(),
        tls,
        retry_for,
        ..ClusterOptions::default()
    };
    if let Command::Watch { prefix, since } = &cli.command {
        return watch(&cli.addr, options, prefix, *since).await;
    }
    let mut client = ClusterClient::new(&cli.addr, options)?;
    let result = command(&mut client, cli.command).await;
    client.close().await;
    result
}

/// Runs one subcommand (not `bench`) through the cluster client.
async fn command(client: &mut ClusterClient, command: Command) -> Result<(), CliError> {
    let print = |reply: Reply| println!("{}", show(&reply));
    match command {
        Command::Get { key } => print(client.call(&["GET", &key]).await?),
        Command::Put { key, value, ttl } => {
            let mut args = vec!["SET".to_string(), key, value];
            if let Some(ttl) = ttl {
                args.extend(["EX".to_string(), ttl.to_string()]);
            }
            print(client.call(&args).await?);
        }
        Command::Del { keys } => {
            let args: Vec<&str> = std::iter::once("DEL").chain(keys.iter().map(String::as_str)).collect();
            print(client.call(&args).await?);
        }
        Command::Cas { key, expected, new } => {
            let mut args = vec!["CAS".to_string(), key];
            match expected {
                Some(value) => args.extend(["IFEQ".to_string(), value]),
                None => args.push("IFABSENT".to_string()),
            }
            match new {
                Some(value) => args.extend(["SET".to_string(), value]),
                None => args.push("DEL".to_string()),
            }
            match client.call(&args).await? {
                Reply::Array(items) if items.len() == 2 => {
                    let swapped = items[0] == Reply::Integer(1);
                    println!(
                        "{} (previous: {})",
                        if swapped { "swapped" } else { "not swapped" },
                        show(&items[1])
                    );
                }
                other => return Err(unexpected(&other)),
            }
        }
        Command::Scan { pattern, limit } => scan(client, &pattern, limit).await?,
        Command::Ttl { key } => print(client.call(&["TTL", &key]).await?),
        Command::Watch { .. } => unreachable!("run() handles watch"),
        Command::Cluster { command } => match command {
            // RESP2 brings the map as name, value pairs: one "name: value" line each.
            ClusterCommand::Status => match client.call(&["RAFT", "STATUS"]).await? {
                Reply::Array(items) => {
                    for pair in items.chunks(2) {
                        println!("{}: {}", show(&pair[0]), pair.get(1).map_or(String::new(), inline));
                    }
                }
                other => print(other),
            },
            ClusterCommand::Add {
                id,
                raft_addr,
                client_addr,
            } => {
                let id = id.to_string();
                let mut args = vec!["RAFT", "ADD-LEARNER", &id, &raft_addr];
                args.extend(client_addr.as_deref());
                client.call(&args).await?;
                print(client.call(&["RAFT", "PROMOTE", &id]).await?);
            }
            ClusterCommand::Remove { id } => print(client.call(&["RAFT", "REMOVE", &id.to_string()]).await?),
            ClusterCommand::TransferLeader { id } => {
                print(client.call(&["RAFT", "TRANSFER-LEADER", &id.to_string()]).await?)
            }
        },
        Command::Bench(_) => unreachable!("run() handles bench"),
    }
    Ok(())
}

fn unexpected(reply: &Reply) -> CliError {
    CliError::Cluster(Failure::Reply(format!("ERR unexpected reply {reply:?}")).into())
}

/// Prints every change under `prefix` after `since`, one `revision event key value` line each
/// (`(nil)` for a key that is gone), through [`Watch`]: when a node fails it goes on at the
/// next address from the last change printed, so no change is missed or printed twice; it
/// gives up after `retry_for` without a node to watch on, on an error reply, or when the
/// history after `since` is compacted.
async fn watch(addrs: &[String], options: ClusterOptions, prefix: &str, since: Option<u64>) -> Result<(), CliError> {
    let mut watch = Watch::new(addrs, options, prefix.as_bytes(), since)?;
    let mut watching_on = None;
    loop {
        let change = watch.next().await?;
        if watching_on.as_deref() != Some(watch.address()) {
            eprintln!("watching {prefix:?} on {}", watch.address());
            watching_on = Some(watch.address().to_string());
        }
        let value = change
            .value
            .as_deref()
            .map_or_else(|| "(nil)".into(), String::from_utf8_lossy);
        println!(
            "{} {} {} {value}",
            change.revision,
            change.event,
            String::from_utf8_lossy(&change.key)
        );
    }
}

/// Prints `key value` lines for up to `limit` keys matching `pattern`, in key order.
async fn scan(client: &mut ClusterClient, pattern: &str, limit: usize) -> Result<(), CliError> {
    let mut cursor = "0".to_string();
    let mut shown = 0;
    loop {
        let reply = client
            .call(&["SCAN", &cursor, "MATCH", pattern, "COUNT", "100"])
            .await?;
        let Reply::Array(mut parts) = reply else {
            return Err(unexpected(&reply));
        };
        let (Some(Reply::Array(keys)), Some(Reply::Bulk(next))) = (parts.pop(), parts.pop()) else {
            return Err(unexpected(&Reply::Array(parts)));
        };
        if !keys.is_empty() {
            let mut args = vec![b"MGET".to_vec()];
            args.extend(keys.iter().filter_map(|k| match k {
                Reply::Bulk(k) => Some(k.clone()),
                _ => None,
            }));
            let values = client.call(&args).await?;
            let Reply::Array(values) = values else {
                return Err(unexpected(&values));
            };
            for (key, value) in keys.iter().zip(values) {
                if shown == limit {
                    return Ok(());
                }
                println!("{} {}", show(key), show(&value));
                shown += 1;
            }
        }
        cursor = String::from_utf8_lossy(&next).into_owned();
        if cursor == "0" {
            return Ok(());
        }
    }
}

/// A tiny xorshift generator: benchmark key choice needs speed, not quality.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// What one benchmark connection measured.
#[derive(Default)]
struct WorkerReport {
    latencies_us: Vec<u32>,
    errors: u64,
}

async fn bench(
    addr: &str,
    password: Option<&str>,
    tls: Option<&tokio_rustls::TlsConnector>,
    args: BenchArgs,
) -> Result<(), ClientError> {
    let clients = args.clients.max(1);
    let pipeline = args.pipeline.max(1);
    let done = Arc::new(AtomicU64::new(0));
    let claimed = Arc::new(AtomicU64::new(0));
    let mut connections = Vec::with_capacity(clients);
    for _ in 0..clients {
        connections.push(Client::connect_tls(addr, password, tls).await?);
    }
    let started = Instant::now();
    let mut workers = Vec::with_capacity(clients);
    for (i, mut client) in connections.into_iter().enumerate() {
        let (done, claimed, args) = (done.clone(), claimed.clone(), args.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9));
            let value = vec![b'x'; args.value_size];
            let mut report = WorkerReport::default();
            loop {
                let batch = claimed.fetch_add(pipeline as u64, Ordering::Relaxed);
                if batch >= args.requests {
                    return Ok::<_, ClientError>(report);
                }
                let n = (args.requests - batch).min(pipeline as u64);
                for _ in 0..n {
                    let key = format!(
                        "{:0width$}",
                        rng.next() % args.keys.max(1),
                        width = args.key_size.max(8)
                    );
                    let read = (rng.next() % 1_000_000) as f64 / 1e6 < args.read_ratio;
                    if read {
                        client.queue(&[b"GET".as_slice(), key.as_bytes()]);
                    } else {
                        client.queue(&[b"SET".as_slice(), key.as_bytes(), &value]);
                    }
                }
                let sent = Instant::now();
                client.flush().await?;
                for _ in 0..n {
                    if client.read_reply().await?.is_error() {
                        report.errors += 1;
                    }
                }
                let us = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
                report.latencies_us.extend(std::iter::repeat_n(us, n as usize));
                done.fetch_add(n, Ordering::Relaxed);
            }
        }));
    }
    let progress = std::io::stderr().is_terminal().then(|| {
        let (done, total) = (done.clone(), args.requests);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let n = done.load(Ordering::Relaxed);
                let width = 40;
                let filled = (n * width / total.max(1)) as usize;
                let rate = n as f64 / started.elapsed().as_secs_f64();
                eprint!(
                    "\r[{}{}] {n}/{total} {rate:.0} ops/s ",
                    "#".repeat(filled),
                    " ".repeat(width as usize - filled.min(width as usize))
                );
                let _ = std::io::stderr().flush();
            }
        })
    });
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        match worker.await {
            Ok(Ok(report)) => {
                latencies.extend(report.latencies_us);
                errors += report.errors;
            }
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(ClientError::Io(std::io::Error::other(e.to_string()))),
        }
    }
    let elapsed = started.elapsed();
    if let Some(progress) = progress {
        progress.abort();
        eprintln!();
    }
    latencies.sort_unstable();
    let percentile = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        f64::from(latencies[i]) / 1000.0
    };
    println!(
        "{} requests in {:.2}s with {clients} clients (pipeline {pipeline}, {:.0}% reads, {}-byte values)",
        latencies.len(),
        elapsed.as_secs_f64(),
        args.read_ratio * 100.0,
        args.value_size
    );
    println!(
        "throughput: {:.0} ops/s",
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "latency (ms): p50 {:.3}  p99 {:.3}  p999 {:.3}  max {:.3}",
        percentile(0.5),
        percentile(0.99),
        percentile(0.999),
        percentile(1.0)
    );
    println!("errors: {errors}");
    Ok(())
}
