#!/usr/bin/env bash
# CPU profile of one kv-node under redis-benchmark SET (or GET) load, as a flamegraph SVG.
#
#   scripts/profile-write.sh [--nodes 1|3] [--pipeline P] [--seconds S] [--port BASE]
#                            [--test set|get] [--via leader|follower]
#                            [--bin target/release/kv-node] OUT.svg
#
# Starts a fresh 1-node or 3-node cluster (--fsync always) on ports BASE.. (default 26100),
# drives `redis-benchmark -t set -c 50 -d 64 -r 100000 -P P` at the leader (or a follower, where
# every node is sampled and the stacks start with the process id), samples the leader
# process with `perf record -F 499 -g --call-graph dwarf` for S seconds (default 4) once the
# load runs, and folds the stacks with inferno (`cargo install inferno`) into OUT.svg, plus
# OUT.folded next to it. Needs perf, redis-benchmark, redis-cli, inferno-collapse-perf and
# inferno-flamegraph on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

nodes=1 pipeline=1 seconds=4 base=26100 bin=target/release/kv-node out="" test=set via=leader
while (($#)); do
  case "$1" in
    --nodes) nodes="$2"; shift 2 ;;
    --pipeline) pipeline="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --port) base="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    --test) test="$2"; shift 2 ;;
    --via) via="$2"; shift 2 ;;
    -*) echo "unknown argument $1" >&2; exit 2 ;;
    *) out="$1"; shift ;;
  esac
done
[[ -n $out ]] || { echo "usage: $0 [options] OUT.svg" >&2; exit 2; }
for tool in perf redis-benchmark redis-cli inferno-collapse-perf inferno-flamegraph; do
  command -v "$tool" >/dev/null || { echo "$tool is missing" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/qkv-profile.XXXXXX")
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

peers=""
for i in $(seq "$nodes"); do
  peers+="${peers:+,}$i=127.0.0.1:$((base + 10 * i + 1))/127.0.0.1:$((base + 10 * i))"
done
declare -A node_pid
for i in $(seq "$nodes"); do
  "$bin" --id "$i" --data-dir "$work/node$i" --client-addr "127.0.0.1:$((base + 10 * i))" \
    --raft-addr "127.0.0.1:$((base + 10 * i + 1))" --admin-addr off --peers "$peers" \
    --fsync always >"$work/node$i.log" 2>&1 &
  pids+=($!)
  node_pid[$i]=$!
done
for _ in $(seq 100); do
  redis-cli -p $((base + 10)) SET profile:ready 1 2>/dev/null | grep -q OK && break
  sleep 0.1
done
leader_port=$(redis-cli -p $((base + 10)) RAFT LEADER | tail -1)
leader_port=${leader_port##*:}
leader=$(((leader_port - base) / 10))
echo "leader: node $leader on port $leader_port (pid ${node_pid[$leader]})" >&2
# --via follower: the load goes to another node, and every node is sampled.
target_port=$leader_port sampled=${node_pid[$leader]}
if [[ $via == follower ]]; then
  ((nodes > 1)) || { echo "--via follower needs --nodes 3" >&2; exit 2; }
  follower=$((leader % nodes + 1))
  target_port=$((base + 10 * follower))
  sampled=$(IFS=,; echo "${node_pid[*]}")
  echo "load through node $follower on port $target_port" >&2
fi

if [[ $test == get ]]; then # the keys GET asks for, as bench-redis-compare.sh leaves them
  redis-benchmark -p "$target_port" -t set -n 200000 -c 50 -r 100000 -d 64 -P 16 -q >/dev/null
fi
redis-benchmark -p "$target_port" -t "$test" -n 100000000 -c 50 -r 100000 -d 64 -P "$pipeline" -q \
  >"$work/bench.out" 2>&1 &
bench=$!
pids+=("$bench")
sleep 2
perf record -F 499 -g --call-graph dwarf,32768 -o "$work/perf.data" -p "$sampled" \
  -- sleep "$seconds" >"$work/perf.log" 2>&1
kill -INT "$bench" 2>/dev/null || true
collapse=(inferno-collapse-perf)
[[ $via == follower ]] && collapse+=(--pid)
perf script -i "$work/perf.data" 2>/dev/null | "${collapse[@]}" >"${out%.svg}.folded"
inferno-flamegraph --title "kv-node: ${test^^} -P$pipeline, $nodes node(s), fsync always (via the $via)" \
  --minwidth 0.2 <"${out%.svg}.folded" >"$out"
echo "wrote $out ($(du -h "$out" | cut -f1)) and ${out%.svg}.folded" >&2
