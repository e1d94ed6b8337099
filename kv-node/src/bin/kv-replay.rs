//! `kv-replay`: replays a web-demo link natively and prints its trace hash, so the browser's
//! run of a seed and a list of user actions can be compared with the native simulator's.
//!
//! ```text
//! kv-replay '#seed=7&n=5&t=2400&a=812.5,put,1,x,hello;1200,crash,1;1500,partition,2.3|4.5'
//! ```
//!
//! The link format is web-demo/js/url.js's: `seed`, `n` (nodes), `t` (run until, ms) and `a`,
//! actions separated by `;`, fields by `,`: time in ms (at most 6 decimals, i.e. nanoseconds),
//! type, arguments. Text is percent-encoded, a partition's groups are joined by `|` and their
//! nodes by `.`, and `!` is "absent" in a compare-and-swap. `v` (a rewound link) is the moment
//! shown, before `t`: the replay stops there; `f` (fork times) is for the reader only. `w=MS`
//! runs the seed's fault workload (kv-sim's, clients and faults for MS) under the actions, and
//! `bug=1` switches on the simulator's planted bug: the web demo's seed sweep opens seeds so. `stale,N,key` is a stale read on
//! node N; `add` starts a node and joins it; `remove,N` and `transfer,N` change membership and
//! leadership.
//!
//! With `--check` it also prints the checkers' verdict on a second line: `linearizable`, or
//! `not linearizable on key K: …`, or the violated invariant.

use std::process::ExitCode;
use std::time::Duration;

use kv_core::check::linearizability::Verdict;
use kv_core::sim::CheckReport;
use kv_core::sim::ClientCall;
use kv_core::sim::SimOptions;
use kv_core::sim::Simulation;
use kv_core::sim::workload::RunOptions;
use kv_core::sim::workload::Workload;

const USAGE: &str = "usage: kv-replay [--check] '#seed=N&n=NODES[&t=MS][&a=ACTIONS]' (a web-demo link or its #part)";

/// One user action of a link.
#[derive(Debug)]
enum Action {
    Crash(u64),
    Restart(u64),
    Partition(Vec<Vec<u64>>),
    Heal,
    Drop(f64),
    Call(u64, ClientCall),
    Add,
    Remove(u64),
    Transfer(u64),
}

#[derive(Debug)]
struct Run {
    seed: u64,
    nodes: usize,
    until_ns: u64,
    /// The moment the link shows, if it was rewound to before `until_ns` (`v`).
    view_ns: Option<u64>,
    /// The seeded fault workload's fault period (`w`), if the run has one.
    workload_ms: Option<u64>,
    /// The planted bug (`bug=1`).
    planted_bug: bool,
    actions: Vec<(u64, Action)>,
}

/// "812.5" → 812_500_000 ns, exactly (no float on the way).
/// The longest virtual time a link may name, in milliseconds: ten minutes, as the page's
/// `MAX_REPLAY_MS` (web-demo/js/session.js). A link past it is refused rather than replayed
/// for ever.
const MAX_REPLAY_MS: u64 = 10 * 60 * 1000;

fn ms_to_ns(text: &str) -> Result<u64, String> {
    let ns = parse_ms(text)?;
    if ns > MAX_REPLAY_MS * 1_000_000 {
        return Err(format!(
            "{text} ms is past the replay bound of {MAX_REPLAY_MS} ms of virtual time"
        ));
    }
    Ok(ns)
}

fn parse_ms(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a time in milliseconds");
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || frac.len() > 6 || !(whole.chars().chain(frac.chars())).all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let frac: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().map_err(|_| bad())?
    };
    whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(bad)
}

/// Undoes encodeURIComponent.
fn decode(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .ok_or_else(|| format!("bad escape in {text:?}"))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad escape in {text:?}"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn node(text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("{text:?} is not a node id"))
}

fn optional(text: &str) -> Result<Option<Vec<u8>>, String> {
    if text == "!" { Ok(None) } else { decode(text).map(Some) }
}

fn action(item: &str) -> Result<(u64, Action), String> {
    let fields: Vec<&str> = item.split(',').collect();
    let (at, kind, args) = match fields.as_slice() {
        [at, kind, args @ ..] => (ms_to_ns(at)?, *kind, args),
        _ => return Err(format!("action {item:?} has no type")),
    };
    let action = match (kind, args) {
        ("crash", [n]) => Action::Crash(node(n)?),
        ("restart", [n]) => Action::Restart(node(n)?),
        ("heal", []) => Action::Heal,
        ("add", []) => Action::Add,
        ("remove", [n]) => Action::Remove(node(n)?),
        ("transfer", [n]) => Action::Transfer(node(n)?),
        ("stale", [n, key]) => Action::Call(node(n)?, ClientCall::LocalGet { key: decode(key)? }),
        ("drop", [p]) => Action::Drop(p.parse().map_err(|_| format!("{p:?} is not a drop rate"))?),
        ("partition", [groups]) => Action::Partition(
            groups
                .split('|')
                .map(|g| {
                    if g.is_empty() {
                        Ok(vec![])
                    } else {
                        g.split('.').map(node).collect()
                    }
                })
                .collect::<Result<_, _>>()?,
        ),
        ("put", [n, key, value]) => Action::Call(
            node(n)?,
            ClientCall::Put {
                key: decode(key)?,
                value: decode(value)?,
            },
        ),
        ("get", [n, key]) => Action::Call(node(n)?, ClientCall::Get { key: decode(key)? }),
        ("delete", [n, key]) => Action::Call(node(n)?, ClientCall::Delete { key: decode(key)? }),
        ("cas", [n, key, expected, new]) => Action::Call(
            node(n)?,
            ClientCall::Cas {
                key: decode(key)?,
                expected: optional(expected)?,
                new: optional(new)?,
            },
        ),
        _ => return Err(format!("cannot read action {item:?}")),
    };
    Ok((at, action))
}

fn parse(link: &str) -> Result<Run, String> {
    let hash = link.split_once('#').map_or(link, |(_, h)| h);
    let (mut seed, mut nodes, mut until_ns, mut view_ns, mut actions) = (None, 5, 0, None, vec![]);
    let (mut workload_ms, mut planted_bug) = (None, false);
    for param in hash.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = param.split_once('=').unwrap_or((param, ""));
        match name {
            "seed" => seed = Some(value.parse().map_err(|_| format!("bad seed {value:?}"))?),
            "n" => nodes = value.parse().map_err(|_| format!("bad node count {value:?}"))?,
            "t" => until_ns = ms_to_ns(value)?,
            "v" => view_ns = Some(ms_to_ns(value)?),
            "w" => workload_ms = Some(ms_to_ns(value)? / 1_000_000),
            "bug" => planted_bug = value == "1",
            "a" if !value.is_empty() => actions = value.split(';').map(action).collect::<Result<_, _>>()?,
            _ => {}
        }
    }
    Ok(Run {
        seed: seed.ok_or("the link names no seed")?,
        nodes,
        until_ns,
        view_ns,
        workload_ms,
        planted_bug,
        actions,
    })
}

/// Runs `run` (and its schedule) until virtual time `at_ns` exactly.
fn run_until(run: &mut Workload, at_ns: u64) -> Result<(), String> {
    run.run_until(Duration::from_nanos(at_ns)).map_err(|e| e.to_string())
}

fn replay(run: &Run) -> Result<Simulation, String> {
    let mut sim = match run.workload_ms {
        Some(duration_ms) => {
            let options = RunOptions {
                nodes: run.nodes,
                duration_ms,
                planted_bug: run.planted_bug,
                ..RunOptions::default()
            };
            Workload::new(run.seed, &options).map_err(|e| e.to_string())?
        }
        None => {
            let options = SimOptions {
                seed: run.seed,
                nodes: run.nodes,
                planted_bug: run.planted_bug,
                ..SimOptions::default()
            };
            Workload::none(Simulation::new(options).map_err(|e| e.to_string())?)
        }
    };
    let stop = run.view_ns.unwrap_or(u64::MAX);
    for (i, (at_ns, action)) in run.actions.iter().enumerate() {
        if *at_ns > stop {
            break;
        }
        run_until(&mut sim, *at_ns)?;
        let target = sim.sim_mut();
        let done = match action {
            Action::Crash(n) => target.crash(*n),
            Action::Restart(n) => target.restart(*n),
            Action::Partition(groups) => target.partition(groups),
            Action::Heal => {
                target.heal();
                Ok(())
            }
            Action::Drop(p) => target.set_drop_rate(*p),
            Action::Call(n, call) => target.submit(*n, call.clone()).map(|_| ()),
            Action::Add => target.add_node().map(|_| ()),
            Action::Remove(n) => target.remove_node(*n),
            Action::Transfer(n) => target.transfer_leader(*n),
        };
        done.map_err(|e| format!("action {} ({action:?}) failed: {e}", i + 1))?;
    }
    run_until(&mut sim, run.until_ns.min(stop))?;
    Ok(sim.into_sim())
}

/// The checkers' verdict in one line, as the web demo's test compares it.
fn verdict(report: &CheckReport) -> String {
    if let Some(v) = report.violations.first() {
        return format!("{}: {}", v.invariant, v.detail);
    }
    match &report.linearizability {
        Verdict::Linearizable => "linearizable".to_string(),
        Verdict::Violation { key, reason, .. } => {
            format!("not linearizable on key {}: {reason}", String::from_utf8_lossy(key))
        }
        Verdict::Unknown { key, reason } => format!("undecided on key {}: {reason}", String::from_utf8_lossy(key)),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (check, link) = match args.as_slice() {
        [flag, link] if flag == "--check" => (true, link),
        [link] if !link.starts_with("--") => (false, link),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match parse(link).and_then(|run| replay(&run)) {
        Ok(sim) => {
            println!("{:016x}", sim.trace_hash());
            if check {
                println!("{}", verdict(&sim.check()));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kv-replay: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_past_the_replay_bound_are_refused() {
        assert_eq!(ms_to_ns("600000").unwrap(), 600_000_000_000);
        for link in [
            "#seed=1&t=600000.001",
            "#seed=1&t=99999999999999",
            "#seed=1&w=700000",
            "#seed=1&a=600001,crash,1",
        ] {
            let error = parse(link).err().unwrap_or_else(|| panic!("{link} was accepted"));
            assert!(
                error.contains("replay bound") || error.contains("not a time"),
                "{link}: {error}"
            );
        }
    }
}
