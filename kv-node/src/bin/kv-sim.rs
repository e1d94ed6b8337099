//! `kv-sim`: runs kv-core's deterministic simulator over many seeds, or replays one.
//!
//! ```text
//! kv-sim --seeds 10000            run seeds 0..10000 (on every core), report failures and speed
//! kv-sim --seed 42                run one seed and summarize it
//! kv-sim --seed 42 --trace        print that run's every event and its trace hash
//! kv-sim --hashes 1,2,3           print "seed hash" per seed (compared against wasm in CI)
//! options: --nodes N (3-7; default: 3 + seed % 3)  --duration-ms MS (default 5000)  --start S
//! ```

use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Instant;

use kv_core::sim::workload::RunOptions;
use kv_core::sim::workload::RunReport;
use kv_core::sim::workload::run_seed;

const USAGE: &str = "usage: kv-sim (--seeds N [--start S] | --seed N [--trace] | --hashes S1,S2,..) \
                     [--nodes 3-7] [--duration-ms MS]";

struct Args {
    mode: Mode,
    nodes: Option<usize>,
    duration_ms: u64,
}

enum Mode {
    Many { start: u64, count: u64 },
    One { seed: u64, trace: bool },
    Hashes(Vec<u64>),
}

fn parse() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut seeds, mut start, mut seed, mut trace, mut hashes) = (None, 0, None, false, None);
    let (mut nodes, mut duration_ms) = (None, 5_000);
    let num = |v: Option<String>, flag: &str| -> Result<u64, String> {
        v.ok_or(format!("{flag} needs a value"))?
            .parse()
            .map_err(|e| format!("{flag}: {e}"))
    };
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--seeds" => seeds = Some(num(args.next(), "--seeds")?),
            "--start" => start = num(args.next(), "--start")?,
            "--seed" => seed = Some(num(args.next(), "--seed")?),
            "--trace" => trace = true,
            "--hashes" => {
                let list = args.next().ok_or("--hashes needs a list")?;
                hashes = Some(
                    list.split(',')
                        .map(|s| s.trim().parse().map_err(|e| format!("--hashes: {e}")))
                        .collect::<Result<Vec<u64>, _>>()?,
                );
            }
            "--nodes" => nodes = Some(num(args.next(), "--nodes")? as usize),
            "--duration-ms" => duration_ms = num(args.next(), "--duration-ms")?,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let mode = match (seeds, seed, hashes) {
        (Some(count), None, None) => Mode::Many { start, count },
        (None, Some(seed), None) => Mode::One { seed, trace },
        (None, None, Some(list)) => Mode::Hashes(list),
        _ => return Err(USAGE.to_string()),
    };
    Ok(Args {
        mode,
        nodes,
        duration_ms,
    })
}

fn options(args: &Args, seed: u64, keep_trace: bool) -> RunOptions {
    RunOptions {
        nodes: args.nodes.unwrap_or(3 + (seed % 3) as usize),
        duration_ms: args.duration_ms,
        keep_trace,
        ..RunOptions::default()
    }
}

fn replay_line(args: &Args, seed: u64) -> String {
    let o = options(args, seed, false);
    format!(
        "cargo run --release -p kv-node --bin kv-sim -- --seed {seed} --nodes {} --duration-ms {}",
        o.nodes, o.duration_ms
    )
}

fn run(args: &Args, seed: u64, keep_trace: bool) -> Result<RunReport, String> {
    run_seed(seed, &options(args, seed, keep_trace)).map_err(|e| format!("seed {seed}: {e}"))
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match &args.mode {
        Mode::Hashes(seeds) => {
            for &seed in seeds {
                match run(&args, seed, false) {
                    Ok(report) => println!("{seed} {:016x}", report.trace_hash),
                    Err(e) => {
                        eprintln!("{e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Mode::One { seed, trace } => match run(&args, *seed, *trace) {
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
            Ok(report) => {
                for event in &report.trace {
                    println!("{:>12.3}ms {:?}", event.at_ns as f64 / 1e6, event.kind);
                }
                println!(
                    "seed {seed}: {} events, {} ms simulated, {} operations, faults: {}",
                    report.events,
                    report.virtual_ms,
                    report.check.operations,
                    report.faults.join(", ")
                );
                println!("trace hash {:016x}", report.trace_hash);
                if report.is_ok() {
                    println!("ok: all invariants hold, history linearizable, replicas converged");
                    ExitCode::SUCCESS
                } else {
                    println!("FAILED: {:#?}\nconverged: {:?}", report.check, report.converged);
                    println!("replay: {}", replay_line(&args, *seed));
                    ExitCode::FAILURE
                }
            }
        },
        Mode::Many { start, count } => many(&args, *start, *count),
    }
}

fn many(args: &Args, start: u64, count: u64) -> ExitCode {
    let began = Instant::now();
    let next = AtomicU64::new(start);
    let end = start + count;
    let simulated_ms = AtomicU64::new(0);
    let failures = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end {
                        break;
                    }
                    match run(args, seed, false) {
                        Ok(report) => {
                            simulated_ms.fetch_add(report.virtual_ms, Ordering::Relaxed);
                            if !report.is_ok() {
                                failures.lock().unwrap().push(seed);
                            }
                        }
                        Err(_) => failures.lock().unwrap().push(seed),
                    }
                    let done = seed + 1 - start;
                    if done.is_multiple_of(1000) {
                        eprintln!("{done}/{count} seeds, {:.1}s", began.elapsed().as_secs_f64());
                    }
                }
            });
        }
    });
    let wall = began.elapsed().as_secs_f64();
    let simulated = simulated_ms.load(Ordering::Relaxed) as f64 / 1000.0;
    let mut failures = failures.into_inner().unwrap();
    failures.sort_unstable();
    println!(
        "{count} seeds in {wall:.1}s on {workers} threads: {simulated:.0} simulated s, {:.0} simulated s per wall s",
        simulated / wall
    );
    println!("{} passed, {} failed", count - failures.len() as u64, failures.len());
    for seed in &failures {
        println!("replay: {}", replay_line(args, *seed));
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
