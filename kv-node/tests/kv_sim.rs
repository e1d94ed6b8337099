//! The `kv-sim` binary: seeds run clean, and a seed replays identically in separate processes
//! (this build links tokio with its `rt` feature, which must not leak randomness into the
//! simulator).

use std::process::Command;

fn kv_sim(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kv-sim"))
        .args(args)
        .output()
        .expect("running kv-sim");
    (
        out.status.success(),
        String::from_utf8(out.stdout).expect("utf-8 output"),
    )
}

#[test]
fn hashes_are_identical_across_processes() {
    let (ok1, first) = kv_sim(&["--hashes", "1,2,3", "--duration-ms", "2000"]);
    let (ok2, second) = kv_sim(&["--hashes", "1,2,3", "--duration-ms", "2000"]);
    assert!(ok1 && ok2);
    assert_eq!(first.lines().count(), 3, "{first}");
    assert_eq!(first, second);
}

#[test]
fn many_seeds_run_clean_and_report_speed() {
    let (ok, out) = kv_sim(&["--seeds", "8", "--start", "100"]);
    assert!(ok, "{out}");
    assert!(out.contains("8 passed, 0 failed"), "{out}");
    assert!(out.contains("simulated s per wall s"), "{out}");
}

#[test]
fn one_seed_traces_every_event_and_its_hash() {
    let (ok, out) = kv_sim(&["--seed", "9", "--trace", "--duration-ms", "1000"]);
    assert!(ok, "{out}");
    let (_, hashes) = kv_sim(&["--hashes", "9", "--duration-ms", "1000"]);
    let hash = hashes.split_whitespace().nth(1).expect("a hash");
    assert!(out.contains(&format!("trace hash {hash}")), "{out}");
    assert!(out.lines().filter(|l| l.contains("RoleChange")).count() >= 3);
}

#[test]
fn bad_arguments_are_refused() {
    let (ok, _) = kv_sim(&["--seed"]);
    assert!(!ok);
    let (ok, _) = kv_sim(&["--frobnicate"]);
    assert!(!ok);
}
