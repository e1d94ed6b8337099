//! `kv-sim`: runs kv-core's deterministic simulator over many seeds, or replays one.
//!
//! ```text
//! kv-sim --seeds 10000            run seeds 0..10000 (on every core), report failures and speed
//! kv-sim --seed 42                run one seed and summarize it
//! kv-sim --seed 42 --trace        print that run's every event and its trace hash
//! kv-sim --hashes 1,2,3           print "seed hash" per seed (compared against wasm in CI)
//! options: --nodes N (3-7; default: 3 + seed % 3)  --duration-ms MS (default 5000)  --start S
//!          --transactions PERCENT (share of client operations that are transactions; default 20)
//! ```

use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Instant;

use clap::Parser;
use kv_core::sim::workload::DEFAULT_TRANSACTIONS;
use kv_core::sim::workload::RunOptions;
use kv_core::sim::workload::RunReport;
use kv_core::sim::workload::run_seed;

const EXAMPLES: &str = "\
Examples:
  kv-sim --seeds 10000            run seeds 0..10000 (on every core), report failures and speed
  kv-sim --seed 42                run one seed and summarize it
  kv-sim --seed 42 --trace        print that run's every event and its trace hash
  kv-sim --hashes 1,2,3           print \"seed hash\" per seed (compared against wasm in CI)";

/// Runs kv-core's deterministic simulator over many seeds, or replays one.
///
/// Usage errors exit with 2, a failed or erroring seed with 1.
#[derive(Debug, Parser)]
#[command(name = "kv-sim", after_help = EXAMPLES, args_override_self = true)]
struct Args {
    #[command(flatten)]
    what: What,
    /// With --seeds: the first seed.
    #[arg(long, value_name = "S", default_value_t = 0)]
    start: u64,
    /// With --seed: print every event of the run, then its trace hash.
    #[arg(long)]
    trace: bool,
    /// Nodes per run, 3 to 7 [default: 3 + seed % 3].
    #[arg(long, value_name = "N")]
    nodes: Option<usize>,
    /// Virtual time of each run with clients and faults, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5_000)]
    duration_ms: u64,
    /// Percent of client operations that are transactions (0 to 100).
    #[arg(long, value_name = "PERCENT", default_value_t = DEFAULT_TRANSACTIONS,
          value_parser = clap::value_parser!(u32).range(0..=100))]
    transactions: u32,
}

/// What to run: exactly one of these. (A flag given twice takes its last value, as it always
/// did.)
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct What {
    /// Run N seeds from --start on every core; report failures and speed.
    #[arg(long, value_name = "N")]
    seeds: Option<u64>,
    /// Run one seed and summarize it.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Print "seed hash" per seed, one a line.
    #[arg(long, value_name = "S1,S2,..", value_parser = seed_list)]
    hashes: Option<SeedList>,
}

enum Mode {
    Many { start: u64, count: u64 },
    One { seed: u64, trace: bool },
    Hashes(Vec<u64>),
}

/// The seeds of a `--hashes` list.
#[derive(Debug, Clone)]
struct SeedList(Vec<u64>);

/// Reads a `--hashes` list: seeds separated by commas, with or without spaces (`1, 2, 3`).
fn seed_list(text: &str) -> Result<SeedList, std::num::ParseIntError> {
    let seeds = text.split(',').map(|s| s.trim().parse()).collect::<Result<_, _>>()?;
    Ok(SeedList(seeds))
}

impl Args {
    fn mode(&self) -> Mode {
        match (&self.what.seeds, &self.what.seed, &self.what.hashes) {
            (Some(count), None, None) => Mode::Many {
                start: self.start,
                count: *count,
            },
            (None, Some(seed), None) => Mode::One {
                seed: *seed,
                trace: self.trace,
            },
            (None, None, Some(SeedList(list))) => Mode::Hashes(list.clone()),
            _ => unreachable!("clap lets exactly one of --seeds, --seed and --hashes through"),
        }
    }
}

fn options(args: &Args, seed: u64, keep_trace: bool) -> RunOptions {
    RunOptions {
        nodes: args.nodes.unwrap_or(3 + (seed % 3) as usize),
        duration_ms: args.duration_ms,
        transactions: args.transactions,
        keep_trace,
        ..RunOptions::default()
    }
}

fn replay_line(args: &Args, seed: u64) -> String {
    let o = options(args, seed, false);
    format!(
        "cargo run --release -p kv-node --bin kv-sim -- --seed {seed} --nodes {} --duration-ms {} \
         --transactions {}",
        o.nodes, o.duration_ms, o.transactions
    )
}

fn run(args: &Args, seed: u64, keep_trace: bool) -> Result<RunReport, String> {
    run_seed(seed, &options(args, seed, keep_trace)).map_err(|e| format!("seed {seed}: {e}"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match args.mode() {
        Mode::Hashes(seeds) => {
            for seed in seeds {
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
        Mode::One { seed, trace } => match run(&args, seed, trace) {
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
                    println!("replay: {}", replay_line(&args, seed));
                    ExitCode::FAILURE
                }
            }
        },
        Mode::Many { start, count } => many(&args, start, count),
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
