//! Process metrics in the Prometheus text format: counters and latency histograms kept with
//! atomics, rendered on demand by the admin port.

use std::fmt::Write as _;
use std::sync::atomic::AtomicI64;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Adds `n` (negative to subtract).
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Sets the value.
    pub fn set(&self, n: i64) {
        self.0.store(n, Ordering::Relaxed);
    }
}

/// Upper bounds of the latency buckets, in microseconds.
const BUCKETS_US: [u64; 16] = [
    50, 100, 250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    10_000_000,
];

/// A latency histogram with fixed buckets (Prometheus `histogram`).
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS_US.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        if let Some(i) = BUCKETS_US.iter().position(|&bound| us <= bound) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS_US.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = *bound as f64 / 1e6;
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let count = self.count();
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {sum}\n{name}_count {count}"
        );
    }
}

/// Everything a node counts. One instance per node, shared by its tasks.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Client commands executed (any outcome).
    pub commands: Counter,
    /// Client commands answered with an error.
    pub command_errors: Counter,
    /// Client connections accepted.
    pub connections_accepted: Counter,
    /// Client connections refused past `maxclients`.
    pub connections_rejected: Counter,
    /// Client connections open now.
    pub connections_open: Gauge,
    /// Followers whose replication made no progress lately (on the leader).
    pub replication_stalled: Gauge,
    /// Time from receiving a write command to its answer.
    pub write_latency: Histogram,
    /// Time from receiving a read command to its answer.
    pub read_latency: Histogram,
    /// Operations this node forwarded to the leader.
    pub forwarded: Counter,
    /// Durations of log and snapshot fsyncs.
    pub fsync_latency: Histogram,
    /// Bytes sent in Raft requests.
    pub raft_bytes_sent: Counter,
    /// Connections made to peers.
    pub raft_connects: Counter,
    /// Snapshot bytes sent to followers.
    pub snapshot_bytes_sent: Counter,
    /// Snapshot bytes received from a leader.
    pub snapshot_bytes_received: Counter,
    /// Snapshots installed from a leader.
    pub snapshots_installed: Counter,
    /// Connections to the Raft port refused in the handshake (wrong or no cluster secret,
    /// not a member's certificate).
    pub raft_handshakes_refused: Counter,
    /// Raft messages refused by the sanity checks (`kv_core::wire::sanity`), in either
    /// direction.
    pub raft_messages_refused: Counter,
    /// Failed `AUTH` attempts on the client port.
    pub auth_failures: Counter,
}

/// A sample of a gauge-like value rendered next to the counters (Raft state, sizes).
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Metric name.
    pub name: &'static str,
    /// Help text.
    pub help: &'static str,
    /// The value.
    pub value: f64,
}

impl Metrics {
    /// Renders every metric, followed by `samples`, in the Prometheus text format.
    pub fn render(&self, samples: &[Sample]) -> String {
        let mut out = String::new();
        let counters = [
            ("quorumkv_commands_total", "Client commands executed.", &self.commands),
            (
                "quorumkv_command_errors_total",
                "Client commands answered with an error.",
                &self.command_errors,
            ),
            (
                "quorumkv_connections_accepted_total",
                "Client connections accepted.",
                &self.connections_accepted,
            ),
            (
                "quorumkv_connections_rejected_total",
                "Client connections refused past maxclients.",
                &self.connections_rejected,
            ),
            (
                "quorumkv_forwarded_total",
                "Operations forwarded to the leader.",
                &self.forwarded,
            ),
            (
                "quorumkv_raft_bytes_sent_total",
                "Bytes sent to peers.",
                &self.raft_bytes_sent,
            ),
            (
                "quorumkv_raft_connects_total",
                "Connections made to peers.",
                &self.raft_connects,
            ),
            (
                "quorumkv_snapshot_bytes_sent_total",
                "Snapshot bytes sent.",
                &self.snapshot_bytes_sent,
            ),
            (
                "quorumkv_snapshot_bytes_received_total",
                "Snapshot bytes received.",
                &self.snapshot_bytes_received,
            ),
            (
                "quorumkv_snapshots_installed_total",
                "Snapshots installed from a leader.",
                &self.snapshots_installed,
            ),
            (
                "quorumkv_raft_handshakes_refused_total",
                "Raft port connections refused in the handshake (not a member).",
                &self.raft_handshakes_refused,
            ),
            (
                "quorumkv_raft_messages_refused_total",
                "Raft messages refused as impossible for an honest peer (term or index bounds).",
                &self.raft_messages_refused,
            ),
            (
                "quorumkv_auth_failures_total",
                "Failed AUTH attempts on the client port.",
                &self.auth_failures,
            ),
        ];
        for (name, help, counter) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                counter.get()
            );
        }
        let gauges = [
            (
                "quorumkv_connections_open",
                "Client connections open.",
                &self.connections_open,
            ),
            (
                "quorumkv_replication_stalled",
                "Followers whose replication made no progress for 5 s while the leader has entries for them.",
                &self.replication_stalled,
            ),
        ];
        for (name, help, gauge) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}", gauge.get());
        }
        self.write_latency
            .render(&mut out, "quorumkv_write_seconds", "Latency of write commands.");
        self.read_latency
            .render(&mut out, "quorumkv_read_seconds", "Latency of read commands.");
        self.fsync_latency.render(
            &mut out,
            "quorumkv_fsync_seconds",
            "Duration of log and snapshot fsyncs.",
        );
        for sample in samples {
            let Sample { name, help, value } = sample;
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let metrics = Metrics::default();
        metrics.write_latency.observe(Duration::from_micros(70));
        metrics.write_latency.observe(Duration::from_millis(3));
        metrics.write_latency.observe(Duration::from_secs(60));
        let text = metrics.render(&[Sample {
            name: "quorumkv_raft_term",
            help: "Current term.",
            value: 4.0,
        }]);
        assert!(
            text.contains("quorumkv_write_seconds_bucket{le=\"0.0001\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("quorumkv_write_seconds_bucket{le=\"0.005\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("quorumkv_write_seconds_bucket{le=\"+Inf\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("quorumkv_raft_term 4\n"), "{text}");
    }
}
