//! The runner end to end: a short campaign on real processes is clean, and the same campaign
//! with a planted bug (reads that skip the read-index check) fails with its evidence.
//!
//! Needs `target/release/kv-node` (or the debug one, next to this test's kv-chaos):
//! `cargo build --release -p kv-node --bin kv-node`; `cargo test --workspace` builds it.

use std::path::PathBuf;
use std::process::Command;

fn kv_chaos(args: &[&str], out: &std::path::Path) -> (i32, String) {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_kv-chaos"));
    let kv_node = bin.with_file_name("kv-node");
    assert!(
        kv_node.exists(),
        "{} is missing: cargo build -p kv-node --bin kv-node (same profile)",
        kv_node.display()
    );
    let output = Command::new(&bin)
        .args(args)
        .args(["--base-port", "23000", "--port-end", "23999", "--out"])
        .arg(out)
        .output()
        .expect("kv-chaos runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code().unwrap_or(-1), stdout)
}

#[test]
fn a_clean_campaign_passes_and_a_planted_stale_read_fails_with_evidence() {
    let dir = std::env::temp_dir().join(format!("kv-chaos-test-{}", std::process::id()));
    let clean = dir.join("clean");
    let (code, stdout) = kv_chaos(&["--nodes", "3", "--seconds", "6", "--seed", "3"], &clean);
    assert_eq!(code, 0, "{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.contains("operations") && last.ends_with("anomalies: 0"), "{last}");
    for file in [
        "history.jsonl",
        "schedule.json",
        "nemesis.log",
        "summary.json",
        "logs/node1.log",
    ] {
        assert!(clean.join(file).exists(), "{file} missing");
    }

    let planted = dir.join("planted");
    let (code, stdout) = kv_chaos(
        &[
            "--nodes",
            "3",
            "--seconds",
            "6",
            "--seed",
            "3",
            "--planted-bug",
            "stale-reads",
        ],
        &planted,
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(!stdout.trim_end().ends_with("anomalies: 0"), "{stdout}");
    let timelines = std::fs::read_dir(&planted)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("timeline-"))
        .count();
    assert!(timelines > 0, "no timeline drawn");
    let summary = std::fs::read_to_string(planted.join("summary.json")).unwrap();
    assert!(summary.contains("\"kind\": \"register-not-linearizable\"") || summary.contains("\"kind\": \"append\""));
    let _ = std::fs::remove_dir_all(&dir);
}
