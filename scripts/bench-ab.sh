#!/usr/bin/env bash
# Interleaved A/B comparison of two kv-node builds under redis-benchmark SET, with
# redis-server (appendonly yes, appendfsync always) measured in the same rounds, so that each
# figure can be read as a ratio to Redis on the machine as it was at that moment.
#
#   scripts/bench-ab.sh [--rounds R] [--requests N] [--nodes "1 3"] [--pipelines "1 16"]
#                       [--tests set] [--via leader|follower] [--port BASE] A/kv-node B/kv-node
#
# Per round, per pipeline depth: redis, then A, then B (fresh servers, --fsync always; a
# 3-node cluster is driven through its leader, or a follower with --via follower), each with
# `redis-benchmark -t TESTS -n N -c 50 -r 100000 -d 64 -P P --csv`. Prints one line per run and,
# at the end, the median ops/s and p99 per server, test, nodes and pipeline with the ratio to
# Redis's median, and the servers' CPU time per operation (user + system, summed over every
# node of the cluster), which a loaded machine disturbs far less than the throughput.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3 requests=200000 nodes_list="1 3" pipelines="1 16" tests=set base=26300 via=leader
while (($#)); do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --requests) requests="$2"; shift 2 ;;
    --nodes) nodes_list="$2"; shift 2 ;;
    --pipelines) pipelines="$2"; shift 2 ;;
    --tests) tests="$2"; shift 2 ;;
    --port) base="$2"; shift 2 ;;
    --via) via="$2"; shift 2 ;;
    -*) echo "unknown argument $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
(($# == 2)) || { echo "usage: $0 [options] A/kv-node B/kv-node" >&2; exit 2; }
bin_a=$(realpath "$1") bin_b=$(realpath "$2")

work=$(mktemp -d "${TMPDIR:-/tmp}/qkv-ab.XXXXXX")
# Servers start inside command substitutions (subshells), so their pids go to a file.
stop() {
  local pid
  [[ -f $work/pids ]] || return 0
  while read -r pid; do kill -TERM "$pid" 2>/dev/null || true; done <"$work/pids"
  while read -r pid; do
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  done <"$work/pids"
  : >"$work/pids"
}
trap 'stop; rm -rf "$work"' EXIT

wait_ready() {
  for _ in $(seq 200); do
    redis-cli -p "$1" SET bench:ready 1 2>/dev/null | grep -q OK && return 0
    sleep 0.05
  done
  echo "server on port $1 did not become ready" >&2; exit 1
}

start_redis() { # → port
  mkdir -p "$work/redis"
  redis-server --port "$base" --bind 127.0.0.1 --dir "$work/redis" --daemonize no --save "" \
    --appendonly yes --appendfsync always >"$work/redis.log" 2>&1 &
  echo $! >>"$work/pids"
  wait_ready "$base"
  echo "$base"
}

start_cluster() { # bin nodes → the port of the leader (or of a follower, --via follower)
  local bin=$1 n=$2 peers="" i
  for i in $(seq "$n"); do
    peers+="${peers:+,}$i=127.0.0.1:$((base + 10 * i + 1))/127.0.0.1:$((base + 10 * i))"
  done
  for i in $(seq "$n"); do
    "$bin" --id "$i" --data-dir "$work/node$i" --client-addr "127.0.0.1:$((base + 10 * i))" \
      --raft-addr "127.0.0.1:$((base + 10 * i + 1))" --admin-addr off --peers "$peers" \
      --fsync always >"$work/node$i.log" 2>&1 &
    echo $! >>"$work/pids"
  done
  wait_ready $((base + 10))
  local leader
  leader=$(redis-cli -p $((base + 10)) RAFT LEADER | tail -1)
  leader=${leader##*:}
  if [[ $via == follower && $n -gt 1 ]]; then
    echo $(((leader - base) / 10 % n * 10 + base + 10))
  else
    echo "$leader"
  fi
}

results="$work/results"
: >"$results"
cpu_ticks() { # CPU time (user + system, clock ticks) of every server running
  local pid sum=0 stat
  while read -r pid; do
    stat=$(cut -d')' -f2 "/proc/$pid/stat")
    sum=$((sum + $(awk '{print $12 + $13}' <<<"$stat")))
  done <"$work/pids"
  echo "$sum"
}
run() { # label nodes pipeline port
  local line test rps p99 before after
  before=$(cpu_ticks)
  redis-benchmark -p "$4" -t "$tests" -n "$requests" -c 50 -r 100000 -d 64 -P "$3" --csv >"$work/out.csv" 2>/dev/null
  after=$(cpu_ticks)
  while IFS= read -r line; do
    IFS=, read -r test rps _ _ _ _ p99 _ <<<"${line//\"/}"
    [[ $test == SET || $test == GET ]] || continue
    # Server CPU per operation, in microseconds (one test per run when --tests names one).
    cpu=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$requests" 'BEGIN {printf "%.2f", t * 1e6 / hz / n}')
    echo "$1|$test|$2|$3|$rps|$p99|$cpu" | tee -a "$results"
  done <"$work/out.csv"
}

for round in $(seq "$rounds"); do
  for nodes in $nodes_list; do
    for p in $pipelines; do
      port=$(start_redis); run redis "$nodes" "$p" "$port"; stop; rm -rf "$work/redis"
      for ab in A B; do
        [[ $ab == A ]] && bin=$bin_a || bin=$bin_b
        port=$(start_cluster "$bin" "$nodes"); run "$ab" "$nodes" "$p" "$port"; stop; rm -rf "$work"/node*
      done
    done
  done
done

echo
echo "A = $bin_a"
echo "B = $bin_b"
echo "through the $via; medians of $rounds rounds ($requests requests each), load average $(cut -d' ' -f1-3 /proc/loadavg):"
python3 - "$results" <<'EOF'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, test, nodes, p, rps, p99, cpu = line.strip().split("|")
    rows[(test, nodes, p, label)].append((float(rps), float(p99), float(cpu)))
print("| test | nodes | -P | server | ops/s | p99 ms | x redis | server CPU µs/op |")
print("|---|---:|---:|---|---:|---:|---:|---:|")
for (test, nodes, p, label) in sorted(rows, key=lambda k: (k[0], int(k[1]), int(k[2]), k[3] != "redis", k[3])):
    v = rows[(test, nodes, p, label)]
    rps = statistics.median(x[0] for x in v); p99 = statistics.median(x[1] for x in v)
    cpu = statistics.median(x[2] for x in v)
    base = statistics.median(x[0] for x in rows[(test, nodes, p, "redis")])
    print(f"| {test} | {nodes} | {p} | {label} | {rps:,.0f} | {p99:.1f} | {rps / base:.2f} | {cpu:.1f} |")
EOF
