#!/usr/bin/env bash
# Unpipelined SET and GET with TLS against without, in one run: two 3-node clusters of the same
# kv-node binary (`local-cluster`, fsync never, so that the network and TLS are what is
# measured; one of them with `--tls`, i.e. TLS on the client port and mutual TLS between
# members), and `redis-benchmark -t set,get -n N -c 50 -r 100000 -d 64` (with `--tls --cacert`
# for the TLS cluster) against each cluster's leader, in interleaved rounds:
#
#   scripts/bench-tls.sh [--rounds R] [--requests N] [BIN]     (BIN: target/release/kv-node)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=2
requests=100000
bin=target/release/kv-node
while (($#)); do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --requests) requests="$2"; shift 2 ;;
    *) bin="$1"; shift ;;
  esac
done
work=$(mktemp -d "${TMPDIR:-/tmp}/qkv-tls.XXXXXX")
pids=()
stop() { for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap 'stop; rm -rf "$work"' EXIT

"$bin" local-cluster --nodes 3 --base-port 21379 --data-dir "$work/plain" --fsync never >"$work/plain.log" 2>&1 &
pids+=($!)
"$bin" local-cluster --nodes 3 --base-port 22379 --data-dir "$work/tls" --fsync never --tls >"$work/tls.log" 2>&1 &
pids+=($!)
tls=(--tls --cacert "$work/tls/tls/ca.crt")

# The client port of a cluster's leader, once one is elected.
leader_port() {
  local base=$1; shift
  for _ in $(seq 100); do
    addr=$(redis-cli "$@" -p "$base" RAFT LEADER 2>/dev/null | sed -n 3p)
    [[ -n "$addr" ]] && { echo "${addr##*:}"; return; }
    sleep 0.1
  done
  echo "no leader on $base" >&2; exit 1
}
plain_port=$(leader_port 21379)
tls_port=$(leader_port 22379 "${tls[@]}")

echo "round,cluster,test,requests_per_second,p50_ms,p99_ms"
for round in $(seq "$rounds"); do
  for cluster in plain tls; do
    if [[ $cluster == plain ]]; then args=(-p "$plain_port"); else args=(-p "$tls_port" "${tls[@]}"); fi
    redis-benchmark "${args[@]}" -t set,get -n "$requests" -c 50 -r 100000 -d 64 --csv |
      python3 -c '
import csv, sys
rows = list(csv.reader(sys.stdin))
head = rows[0]
for row in rows[1:]:
    r = dict(zip(head, row))
    rps = float(r["rps"])
    print(",".join([sys.argv[1], sys.argv[2], r["test"], f"{rps:.0f}", r["p50_latency_ms"], r["p99_latency_ms"]]))
' "$round" "$cluster"
  done
done
