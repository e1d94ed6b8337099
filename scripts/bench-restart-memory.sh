#!/usr/bin/env bash
# Memory per key and restart time after kill -9, QuorumKV (1 node, --fsync always) against
# redis-server (appendonly yes, appendfsync always), in one run.
#
#   scripts/bench-restart-memory.sh [--keys N] [--rounds R] [--port BASE] [--bin PATH]
#
# Each server gets the same N SETs (keys key:0000000.., 64-byte values) through
# `redis-cli --pipe`. Memory per key: the server's resident set (VmRSS) after the load minus
# before it, divided by N. Restart: the server is killed with SIGKILL, started again on the
# same data, and timed until `GET` of the last key written answers its value (kv-node: log
# replay and snapshot load, and the election of the one-node cluster; redis: AOF replay).
# R rounds (default 1), interleaved; prints one line per server and round.
set -euo pipefail
cd "$(dirname "$0")/.."

keys=1000000 rounds=1 base=26500 bin=target/release/kv-node
while (($#)); do
  case "$1" in
    --keys) keys="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --port) base="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d "${TMPDIR:-/tmp}/qkv-restart.XXXXXX")
pid=""
cleanup() {
  [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

python3 - "$keys" >"$work/load.resp" <<'EOF'
import sys
n = int(sys.argv[1]); value = b"v" * 64; out = sys.stdout.buffer
for i in range(n):
    key = b"key:%07d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$64\r\n%s\r\n" % (len(key), key, value))
EOF
last_key=$(printf 'key:%07d' $((keys - 1)))

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
now() { date +%s.%N; }
wait_value() { # port → waits until the last key reads back
  for _ in $(seq 3000); do
    [[ $(redis-cli -p "$1" GET "$last_key" 2>/dev/null) == "$(printf 'v%.0s' $(seq 64))" ]] && return 0
    sleep 0.005
  done
  echo "no answer on port $1" >&2; exit 1
}
wait_up() { # port
  for _ in $(seq 1000); do
    redis-cli -p "$1" PING 2>/dev/null | grep -q PONG && return 0
    sleep 0.01
  done
  echo "server on port $1 did not start" >&2; exit 1
}

start_redis() { # dir port
  redis-server --port "$2" --bind 127.0.0.1 --dir "$1" --daemonize no --save "" \
    --appendonly yes --appendfsync always >>"$1.log" 2>&1 &
  pid=$!
}
start_node() { # dir port
  "$bin" --id 1 --data-dir "$1" --client-addr "127.0.0.1:$2" --raft-addr "127.0.0.1:$(($2 + 1))" \
    --admin-addr off --fsync always >>"$1.log" 2>&1 &
  pid=$!
}

measure() { # label start-function port
  local label=$1 start=$2 port=$3 dir="$work/$1-$round" before after t0 t1
  mkdir -p "$dir"
  $start "$dir" "$port"
  wait_up "$port"
  redis-cli -p "$port" SET warmup 1 >/dev/null
  sleep 0.5
  before=$(rss_kb "$pid")
  redis-cli -p "$port" --pipe <"$work/load.resp" >/dev/null
  wait_value "$port"
  sleep 1
  after=$(rss_kb "$pid")
  kill -KILL "$pid"; wait "$pid" 2>/dev/null || true
  t0=$(now)
  $start "$dir" "$port"
  wait_value "$port"
  t1=$(now)
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  pid=""
  python3 -c "print(f'$label round $round: {($after - $before) * 1024 / $keys:.0f} B/key (RSS {$after / 1024:.0f} MiB), restart {$t1 - $t0:.2f} s, data $(du -sm "$dir" | cut -f1) MB')"
  rm -rf "$dir"
}

for round in $(seq "$rounds"); do
  measure redis start_redis "$base"
  measure kv-node start_node $((base + 10))
done
