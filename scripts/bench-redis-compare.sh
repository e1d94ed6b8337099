#!/usr/bin/env bash
# Side-by-side redis-benchmark of QuorumKV (1 node and 3 nodes, fsync always) and redis-server
# (appendfsync always, and persistence off) on this machine, in one run, with one client tool.
#
#   scripts/bench-redis-compare.sh [--append docs/benchmarks.md] [--requests N] [--rounds R]
#
# SET and GET, 50 clients, 64-byte values over 100k random keys, without and with -P 16, for:
# redis (appendfsync always, and persistence off), QuorumKV 1 node, and a 3-node cluster
# through its leader, through a follower, and GET spread over all three nodes at once (three
# redis-benchmark processes, their ops/s summed). R rounds (default 1), interleaved, each with
# fresh servers; the table shows medians. Prints a markdown table (ops/s, p50, p99, ratio to
# redis appendfsync always); with --append it also appends the table, the command and the
# machine to the given file.
set -euo pipefail
cd "$(dirname "$0")/.."

append=""
requests=100000
rounds=1
while (($#)); do
  case "$1" in
    --append) append="$2"; shift 2 ;;
    --requests) requests="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

for tool in redis-server redis-benchmark redis-cli; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
done
cargo build --release -q -p kv-node --bin kv-node
node_bin="$PWD/target/release/kv-node"

work=$(mktemp -d "${TMPDIR:-/tmp}/qkv-bench.XXXXXX")
# Servers start inside command substitutions (subshells), so their pids go to a file.
cleanup() {
  local pid
  while read -r pid; do kill -TERM "$pid" 2>/dev/null || true; done <"$work/pids"
  sleep 1
  rm -rf "$work"
}
: >"$work/pids"
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { # port
  for _ in $(seq 100); do
    redis-cli -p "$1" SET bench:ready 1 2>/dev/null | grep -q OK && return 0
    sleep 0.1
  done
  echo "server on port $1 did not become ready" >&2; exit 1
}

start_redis() { # name, extra args...
  local name=$1; shift
  local p; p=$(port)
  mkdir -p "$work/$name"
  redis-server --port "$p" --bind 127.0.0.1 --dir "$work/$name" --daemonize no "$@" >"$work/$name.log" 2>&1 &
  echo $! >>"$work/pids"
  wait_ready "$p"
  echo "$p"
}

start_quorumkv() { # name, nodes → prints the client ports, the leader's first
  local name=$1 n=$2 peers="" i
  local -a cports rports
  for i in $(seq "$n"); do cports[i]=$(port); rports[i]=$(port); peers+="${peers:+,}$i=127.0.0.1:${rports[i]}/127.0.0.1:${cports[i]}"; done
  for i in $(seq "$n"); do
    "$node_bin" --id "$i" --data-dir "$work/$name/node$i" --client-addr "127.0.0.1:${cports[i]}" \
      --raft-addr "127.0.0.1:${rports[i]}" --admin-addr off --peers "$peers" --fsync always \
      >"$work/$name-$i.log" 2>&1 &
    echo $! >>"$work/pids"
  done
  wait_ready "${cports[1]}"
  local leader; leader=$(redis-cli -p "${cports[1]}" RAFT LEADER | tail -1)
  leader=${leader##*:}
  local others=""
  for i in $(seq "$n"); do [[ ${cports[i]} == "$leader" ]] || others+=" ${cports[i]}"; done
  echo "$leader$others"
}

stop_all() {
  local pid
  while read -r pid; do kill -TERM "$pid" 2>/dev/null || true; done <"$work/pids"
  : >"$work/pids"
  sleep 1
}

results=()
bench() { # label, port, pipeline
  local label=$1 p=$2 pipeline=$3 line test rps p50 p99
  while IFS= read -r line; do
    IFS=, read -r test rps _ _ p50 _ p99 _ <<<"${line//\"/}"
    [[ $test == SET || $test == GET ]] || continue
    results+=("$label|$test|$pipeline|$rps|$p50|$p99")
  done < <(redis-benchmark -p "$p" -t set,get -n "$requests" -c 50 -r 100000 -d 64 -P "$pipeline" --csv 2>/dev/null)
}

run_all() { # label, port
  bench "$1" "$2" 1
  bench "$1" "$2" 16
}

spread() { # label, pipeline, ports... → GET on every port at once; sums ops/s, worst p99
  local label=$1 pipeline=$2; shift 2
  local p i=0 sum=0 p50=0 p99=0 test rps q50 q99
  for p in "$@"; do
    redis-benchmark -p "$p" -t get -n "$requests" -c 50 -r 100000 -d 64 -P "$pipeline" --csv >"$work/spread$i.csv" 2>/dev/null &
    i=$((i + 1))
  done
  wait
  for f in "$work"/spread*.csv; do
    while IFS= read -r line; do
      IFS=, read -r test rps _ _ q50 _ q99 _ <<<"${line//\"/}"
      [[ $test == GET ]] || continue
      sum=$(python3 -c "print($sum + $rps)")
      p50=$(python3 -c "print(max($p50, $q50))")
      p99=$(python3 -c "print(max($p99, $q99))")
    done <"$f"
    rm -f "$f"
  done
  results+=("$label|GET|$pipeline|$sum|$p50|$p99")
}

for round in $(seq "$rounds"); do
  p=$(start_redis "redis-always-$round" --appendonly yes --appendfsync always --save ""); run_all "redis appendfsync always" "$p"
  p=$(start_redis "redis-nopersist-$round" --appendonly no --save ""); run_all "redis persistence off" "$p"
  stop_all
  p=$(start_quorumkv "qkv1-$round" 1); run_all "QuorumKV 1 node (fsync always)" "$p"
  stop_all
  read -r leader follower other <<<"$(start_quorumkv "qkv3-$round" 3)"
  run_all "QuorumKV 3 nodes via the leader" "$leader"
  run_all "QuorumKV 3 nodes via a follower" "$follower"
  spread "QuorumKV 3 nodes, GET on all 3 at once (sum)" 1 "$leader" "$follower" "$other"
  spread "QuorumKV 3 nodes, GET on all 3 at once (sum)" 16 "$leader" "$follower" "$other"
  stop_all
done

# Medians over the rounds, per server, test and pipeline, in first-seen order.
mapfile -t results < <(printf '%s\n' "${results[@]}" | python3 -c '
import sys, statistics
rows = {}
for line in sys.stdin:
    label, test, pipeline, rps, p50, p99 = line.rstrip("\n").split("|")
    rows.setdefault((label, test, pipeline), []).append((float(rps), float(p50), float(p99)))
for (label, test, pipeline), v in rows.items():
    med = lambda i: statistics.median(x[i] for x in v)
    print(f"{label}|{test}|{pipeline}|{med(0):.0f}|{med(1):.3f}|{med(2):.3f}")
')

baseline() { # test, pipeline → rps of redis appendfsync always
  local r
  for r in "${results[@]}"; do
    IFS='|' read -r label test pipeline rps _ _ <<<"$r"
    [[ $label == "redis appendfsync always" && $test == "$1" && $pipeline == "$2" ]] && { echo "$rps"; return; }
  done
}

table="| server | test | pipeline | ops/s | p50 ms | p99 ms | × redis always |
|---|---|---:|---:|---:|---:|---:|"
for r in "${results[@]}"; do
  IFS='|' read -r label test pipeline rps p50 p99 <<<"$r"
  base=$(baseline "$test" "$pipeline")
  ratio=$(python3 -c "print(f'{$rps/$base:.2f}')")
  table+=$'\n'"| $label | $test | $pipeline | ${rps%.*} | $p50 | $p99 | $ratio |"
done
echo "$table"

if [[ -n $append ]]; then
  {
    echo
    echo "## redis-benchmark: QuorumKV vs redis-server ($(date -u +%Y-%m-%d))"
    echo
    echo "Machine: $(nproc) cores, $(uname -sr), data in $(df -T "$work" | awk 'NR==2 {print $2}') under ${TMPDIR:-/tmp}."
    echo "Command: \`scripts/bench-redis-compare.sh --requests $requests\`, which runs for each server"
    echo "\`redis-benchmark -t set,get -n $requests -c 50 -r 100000 -d 64 -P {1,16} --csv\`;"
    echo "medians of $rounds interleaved round(s), fresh servers each round."
    echo
    echo "$table"
  } >>"$append"
fi
