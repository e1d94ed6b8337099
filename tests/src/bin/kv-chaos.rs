//! `kv-chaos`: one fault campaign on real kv-node processes.
//!
//! ```text
//! cargo build --release -p kv-node --bin kv-node
//! cargo run --release -p quorumkv-tests --bin kv-chaos -- --nodes 5 --seconds 60 --seed 7 --out DIR
//! ```
//!
//! The last line says how many operations ran, the faults of each kind and the anomalies; the
//! exit status is 0 only with no anomaly (1: anomalies, 2: the campaign could not run). DIR
//! holds `schedule.json` (the seed's plan), `nemesis.log` (what it did, when),
//! `history.jsonl`, `logs/node<id>.log`, `summary.json`, and for a failing run
//! `timeline-<key>.html` for each key an anomaly names.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::RwLock;
use std::time::Duration;
use std::time::Instant;

use clap::Parser;
use kv_node::client::Client;
use kv_node::protocol::Reply;
use quorumkv_tests::check;
use quorumkv_tests::check::Anomaly;
use quorumkv_tests::cluster::Cluster;
use quorumkv_tests::cluster::Layout;
use quorumkv_tests::cluster::Ports;
use quorumkv_tests::evidence;
use quorumkv_tests::history;
use quorumkv_tests::history::Call;
use quorumkv_tests::history::History;
use quorumkv_tests::history::Op;
use quorumkv_tests::history::Outcome;
use quorumkv_tests::nemesis;
use quorumkv_tests::nemesis::Nemesis;
use quorumkv_tests::workload;
use quorumkv_tests::workload::Planted;
use quorumkv_tests::workload::Workload;
use serde::Serialize;

/// Run a seeded fault campaign against a cluster of kv-node processes.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// Initial cluster size (two more ids are kept for membership changes).
    #[arg(long, default_value_t = 5)]
    nodes: u64,
    /// How long the nemesis runs, in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seed of the fault schedule and the clients' choices.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Directory for the evidence (created; files in it are overwritten).
    #[arg(long)]
    out: PathBuf,
    /// First port to use; the campaign takes what it needs from here up to --port-end.
    #[arg(long, default_value_t = 20_000)]
    base_port: u16,
    /// One past the last port to use.
    #[arg(long, default_value_t = 24_000)]
    port_end: u16,
    /// The kv-node binary (default: next to this one).
    #[arg(long)]
    kv_node: Option<PathBuf>,
    /// Clients: registers,counters,appenders.
    #[arg(long, default_value = "4,2,2")]
    clients: String,
    /// A deliberate fault, to see the checkers fail: none, stale-reads (reads skip the
    /// read-index check: READONLY connections) or blind-retries (INCR and APPEND of unknown
    /// outcome sent again without a session).
    #[arg(long, default_value = "none")]
    planted_bug: String,
    /// Draw faults only of these kinds (comma-separated: kill, pause, isolate-leader, halves,
    /// bridge, one-way, loss, delay, duplicate, transfer-leader, membership). Default: all.
    #[arg(long)]
    faults: Option<String>,
    /// Extra kv-node flags for every node. The default snapshots often, so that restarted and
    /// new members also catch up by snapshot.
    #[arg(
        long,
        default_value = "--snapshot-every 3000 --keep-logs 500",
        allow_hyphen_values = true
    )]
    node_flags: String,
    /// Keep the nodes' data directories (deleted after a clean run otherwise).
    #[arg(long)]
    keep_data: bool,
}

/// Timelines drawn for a failing run (one per key an anomaly names, in key order).
const MAX_TIMELINES: usize = 20;
/// Anomalies printed (summary.json has them all).
const MAX_PRINTED: usize = 20;

#[derive(Serialize)]
struct Summary<'a> {
    seed: u64,
    nodes: u64,
    seconds: u64,
    operations: usize,
    ok: usize,
    fail: usize,
    info: usize,
    faults: &'a BTreeMap<&'static str, u64>,
    skipped: &'a BTreeMap<&'static str, u64>,
    counter: &'a check::CounterFigures,
    /// Client sessions the counter clients opened (0: plain INCR, the nodes have no sessions).
    sessions_opened: u64,
    /// What the proxies did, summed over every link.
    links: BTreeMap<&'static str, u64>,
    anomalies: &'a [Anomaly],
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(campaign(args)) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(error) => {
            eprintln!("kv-chaos: {error}");
            ExitCode::from(2)
        }
    }
}

/// Runs the campaign; the number of anomalies.
async fn campaign(args: Args) -> Result<usize, String> {
    let planted = match args.planted_bug.as_str() {
        "none" => Planted::None,
        "stale-reads" => Planted::StaleReads,
        "blind-retries" => Planted::BlindRetries,
        other => {
            return Err(format!(
                "--planted-bug must be none, stale-reads or blind-retries, not {other}"
            ));
        }
    };
    let clients: Vec<u64> = args
        .clients
        .split(',')
        .map(|n| n.trim().parse().map_err(|_| format!("bad --clients {}", args.clients)))
        .collect::<Result<_, _>>()?;
    let [registers, counters, appenders] = clients[..] else {
        return Err("--clients takes three numbers: registers,counters,appenders".into());
    };
    if args.nodes < 3 {
        return Err("--nodes must be at least 3".into());
    }
    let kv_node = match args.kv_node.clone() {
        Some(path) => path,
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("kv-node"),
    };
    if !kv_node.exists() {
        return Err(format!(
            "{} not found: run `cargo build --release -p kv-node --bin kv-node` first, or give --kv-node",
            kv_node.display()
        ));
    }
    let out = args.out.clone();
    let logs = out.join("logs");
    let data = out.join("data");
    for dir in [&out, &logs] {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    for stale in [&logs, &data] {
        let _ = std::fs::remove_dir_all(stale);
    }
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
    let write = |name: &str, text: String| {
        std::fs::write(out.join(name), text).map_err(|e| format!("{}: {e}", out.join(name).display()))
    };

    let kinds = match &args.faults {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|name| {
                nemesis::Kind::from_name(name.trim()).ok_or_else(|| {
                    let all: Vec<&str> = nemesis::Kind::ALL.iter().map(|k| k.name()).collect();
                    format!("--faults: no fault kind {name:?}; kinds: {}", all.join(","))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let steps = nemesis::schedule(args.seed, args.seconds, &kinds);
    write(
        "schedule.json",
        serde_json::to_string_pretty(&steps).expect("the schedule serializes"),
    )?;

    let mut ports = Ports::new(args.base_port, args.port_end);
    let layout = Layout {
        kv_node,
        nodes: args.nodes,
        spares: 2,
        data: data.clone(),
        logs: logs.clone(),
        seed: args.seed,
        extra: args.node_flags.split_whitespace().map(String::from).collect(),
    };
    let mut cluster = Cluster::new(layout, &mut ports)
        .await
        .map_err(|e| format!("laying out the cluster: {e}"))?;
    cluster
        .start_initial()
        .map_err(|e| format!("starting the nodes: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster.leader().await.is_none() {
        if Instant::now() > deadline {
            cluster.stop_all();
            return Err("no leader within 30 s of starting".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let start = Instant::now();
    let history = History::new(start);
    let members: workload::Members = Arc::new(RwLock::new(
        cluster
            .initial
            .iter()
            .map(|id| (*id, cluster.node(*id).client_addr.clone()))
            .collect(),
    ));
    let workload = Workload::start(
        members.clone(),
        history.clone(),
        args.seed,
        (registers, counters, appenders),
        planted,
    );
    let nemesis = Nemesis::new(cluster, members.clone(), start).run(&steps).await;
    // A second of healthy running before the clients stop.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sessions_opened = workload.sessions_opened();
    workload.stop().await;
    let mut nemesis = nemesis;
    let mut anomalies = Vec::new();
    for id in nemesis.cluster.reap() {
        let _ = nemesis.cluster.restart(id);
    }
    for (id, status) in &nemesis.cluster.crashed {
        anomalies.push(Anomaly {
            kind: "process-exited",
            key: None,
            detail: format!("node {id} exited by itself ({status}); see logs/node{id}.log"),
            ops: Vec::new(),
        });
    }

    // Final state: a leader, every member caught up, then reads.
    let (finals, states) = match settle(&nemesis).await {
        Ok(result) => result,
        Err(why) => {
            anomalies.push(Anomaly {
                kind: "no-final-state",
                key: None,
                detail: why,
                ops: Vec::new(),
            });
            (BTreeMap::new(), BTreeMap::new())
        }
    };
    let mut ops = history.ops();
    // The final linearizable reads join the history, after every other operation.
    let final_at = history.now();
    for (key, value) in &finals {
        if key.starts_with('r') {
            ops.push(Op {
                process: 1_000,
                node: 0,
                key: key.clone(),
                call: Call::Read,
                invoked_ns: final_at,
                completed_ns: final_at + 1,
                outcome: Outcome::Ok(history::Ret::Read(value.clone())),
            });
        }
    }
    anomalies.extend(check::registers(&ops));
    let counter_value = match finals.get(workload::COUNTER_KEY) {
        Some(Some(v)) => match v.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                anomalies.push(Anomaly {
                    kind: "counter",
                    key: Some(workload::COUNTER_KEY.into()),
                    detail: format!("final value {v:?} is not a number"),
                    ops: Vec::new(),
                });
                None
            }
        },
        _ => None,
    };
    let (counter, counter_anomalies) = check::counter(&ops, counter_value);
    if counters > 0 && !finals.is_empty() {
        anomalies.extend(counter_anomalies);
    }
    if !finals.is_empty() {
        anomalies.extend(check::appends(&ops, &finals));
    }
    anomalies.extend(check::convergence(&states));

    // Evidence.
    nemesis.cluster.stop_all();
    history::write_jsonl(&ops, &out.join("history.jsonl")).map_err(|e| e.to_string())?;
    write("nemesis.log", nemesis.record.log.join("\n") + "\n")?;
    let mut keys: Vec<&String> = anomalies.iter().filter_map(|a| a.key.as_ref()).collect();
    keys.sort();
    keys.dedup();
    for key in keys.into_iter().take(MAX_TIMELINES) {
        let about: Vec<&Anomaly> = anomalies.iter().filter(|a| a.key.as_ref() == Some(key)).collect();
        let page = evidence::timeline(key, &ops, &nemesis.record.intervals, &about);
        write(&format!("timeline-{key}.html"), page)?;
    }
    let count = |f: fn(&Outcome) -> bool| ops.iter().filter(|op| f(&op.outcome)).count();
    let mut links = BTreeMap::new();
    for proxy in nemesis.cluster.links.values() {
        let stats = &proxy.stats;
        for (name, counter) in [
            ("frames-forwarded", &stats.forwarded),
            ("frames-lost", &stats.lost),
            ("frames-duplicated", &stats.duplicated),
            ("frames-delayed", &stats.delayed),
            ("connections-cut", &stats.cut),
        ] {
            *links.entry(name).or_default() += counter.load(std::sync::atomic::Ordering::Relaxed);
        }
    }
    let summary = Summary {
        links,
        seed: args.seed,
        nodes: args.nodes,
        seconds: args.seconds,
        operations: ops.len(),
        ok: count(|o| matches!(o, Outcome::Ok(_))),
        fail: count(|o| matches!(o, Outcome::Fail(_))),
        info: count(|o| matches!(o, Outcome::Info(_))),
        faults: &nemesis.record.faults,
        skipped: &nemesis.record.skipped,
        counter: &counter,
        sessions_opened,
        anomalies: &anomalies,
    };
    write(
        "summary.json",
        serde_json::to_string_pretty(&summary).expect("the summary serializes"),
    )?;
    if anomalies.len() > MAX_PRINTED {
        eprintln!(
            "{} anomalies; the first {MAX_PRINTED} (all in summary.json):",
            anomalies.len()
        );
    }
    for anomaly in anomalies.iter().take(MAX_PRINTED) {
        eprintln!(
            "ANOMALY {} {}: {} (ops {:?})",
            anomaly.kind,
            anomaly.key.as_deref().unwrap_or("-"),
            anomaly.detail,
            anomaly.ops
        );
    }
    if anomalies.is_empty() && !args.keep_data {
        let _ = std::fs::remove_dir_all(&data);
    }
    let faults = nemesis
        .record
        .faults
        .iter()
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "kv-chaos seed {} nodes {} {}s: {} operations (ok {}, fail {}, info {}); faults: {}; anomalies: {}",
        args.seed,
        args.nodes,
        args.seconds,
        summary.operations,
        summary.ok,
        summary.fail,
        summary.info,
        if faults.is_empty() { "none".to_string() } else { faults },
        anomalies.len()
    );
    Ok(anomalies.len())
}

/// Waits for a leader and for every member to apply the leader's commit index; then reads
/// every key of the workloads through the leader (linearizable) and each member's whole state
/// with stale reads.
async fn settle(
    nemesis: &Nemesis,
) -> Result<
    (
        BTreeMap<String, Option<String>>,
        BTreeMap<u64, BTreeMap<String, String>>,
    ),
    String,
> {
    let cluster = &nemesis.cluster;
    let deadline = Instant::now() + Duration::from_secs(60);
    let (leader, members) = loop {
        if let Some(leader) = cluster.leader().await
            && let Some(members) = nemesis.final_members().await
            && let Some(status) = cluster.status(leader).await
        {
            let mut caught_up = true;
            for id in &members {
                let applied = cluster.status(*id).await.map_or(0, |s| s.applied_index);
                caught_up &= applied >= status.commit_index;
            }
            if caught_up {
                break (leader, members);
            }
        }
        if Instant::now() > deadline {
            return Err("no leader with every member caught up within 60 s of the final heal".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // An entry proposed before the clients stopped may still commit between two members'
    // reads: states that differ are read again (a few times, a second apart) before they
    // count as diverged.
    let mut states = BTreeMap::new();
    for attempt in 0..5 {
        states.clear();
        for id in &members {
            states.insert(*id, state_of(&cluster.node(*id).client_addr, true).await?);
        }
        let first = states.values().next();
        if states.values().all(|s| Some(s) == first) || attempt == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let keys: Vec<String> = states.values().flat_map(|s| s.keys().cloned()).collect();
    let leader_addr = &cluster.node(leader).client_addr;
    let mut client = Client::connect(leader_addr, None).await.map_err(|e| e.to_string())?;
    let mut finals = BTreeMap::new();
    for key in keys.into_iter().take(MAX_TIMELINES) {
        let value = match client.call(&["GET", &key]).await.map_err(|e| e.to_string())? {
            Reply::Bulk(v) => Some(String::from_utf8_lossy(&v).into_owned()),
            Reply::Nil => None,
            other => return Err(format!("final GET {key} on the leader {leader}: {other:?}")),
        };
        finals.insert(key, value);
    }
    Ok((finals, states))
}

/// Every key and value a node holds (`stale`: its own state, via READONLY).
async fn state_of(addr: &str, stale: bool) -> Result<BTreeMap<String, String>, String> {
    let mut client = Client::connect(addr, None).await.map_err(|e| format!("{addr}: {e}"))?;
    if stale {
        client.call(&["READONLY"]).await.map_err(|e| e.to_string())?;
    }
    let Reply::Array(keys) = client.call(&["KEYS", "*"]).await.map_err(|e| e.to_string())? else {
        return Err(format!("KEYS * on {addr} did not answer a list"));
    };
    let keys: Vec<Vec<u8>> = keys
        .into_iter()
        .filter_map(|k| match k {
            Reply::Bulk(k) => Some(k),
            _ => None,
        })
        .collect();
    let mut state = BTreeMap::new();
    for chunk in keys.chunks(200) {
        let mut args = vec![b"MGET".to_vec()];
        args.extend(chunk.iter().cloned());
        let Reply::Array(values) = client.call(&args).await.map_err(|e| e.to_string())? else {
            return Err(format!("MGET on {addr} did not answer a list"));
        };
        for (key, value) in chunk.iter().zip(values) {
            if let Reply::Bulk(v) = value {
                state.insert(
                    String::from_utf8_lossy(key).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                );
            }
        }
    }
    Ok(state)
}
