#!/usr/bin/env bash
# Pipelined SET and GET through a follower and through the leader of a 3-node cluster (fsync
# always), for one or more kv-node binaries in interleaved rounds, so a change to forwarding or
# to follower reads can be measured before and after:
#
#   scripts/bench-follower.sh [--rounds R] [--requests N] BIN [BIN ...]
#
# Each round starts a fresh cluster per binary and runs
# `redis-benchmark -t set,get -n N -c 50 -r 100000 -d 64 -P 16 --csv` against a follower, then
# against the leader.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3
requests=100000
bins=()
while (($#)); do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --requests) requests="$2"; shift 2 ;;
    *) bins+=("$1"); shift ;;
  esac
done
((${#bins[@]})) || { echo "usage: $0 [--rounds R] [--requests N] BIN [BIN ...]" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/qkv-follower.XXXXXX")
pids=()
stop() { for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
trap 'stop; rm -rf "$work"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

for round in $(seq "$rounds"); do
  for bin in "${bins[@]}"; do
    dir="$work/r$round-$(basename "$(dirname "$(dirname "$(dirname "$bin")")")")"
    peers="" cports=() rports=()
    for i in 1 2 3; do cports[i]=$(port); rports[i]=$(port); peers+="${peers:+,}$i=127.0.0.1:${rports[i]}/127.0.0.1:${cports[i]}"; done
    for i in 1 2 3; do
      "$bin" --id "$i" --data-dir "$dir/node$i" --client-addr "127.0.0.1:${cports[i]}" \
        --raft-addr "127.0.0.1:${rports[i]}" --admin-addr off --peers "$peers" --fsync always >"$dir-$i.log" 2>&1 &
      pids+=($!)
    done
    leader=""
    for _ in $(seq 100); do
      leader=$(redis-cli -p "${cports[1]}" RAFT LEADER 2>/dev/null | head -1)
      [[ $leader =~ ^[0-9]+$ ]] && break
      sleep 0.1
    done
    follower=$(( leader % 3 + 1 ))
    for target in "follower $follower" "leader $leader"; do
      id=${target#* }
      while IFS= read -r line; do
        IFS=, read -r test rps _ _ p50 _ p99 _ <<<"${line//\"/}"
        [[ $test == SET || $test == GET ]] || continue
        echo "round $round | $bin | $test -P16 via $target | ${rps%.*} ops/s | p50 $p50 ms | p99 $p99 ms"
      done < <(redis-benchmark -p "${cports[id]}" -t set,get -n "$requests" -c 50 -r 100000 -d 64 -P 16 --csv 2>/dev/null)
    done
    stop
  done
done
