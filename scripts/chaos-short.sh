#!/usr/bin/env bash
# CI's short fault campaign: kv-chaos on real kv-node processes, 3 seeds x 20 s on 3 and on
# 5 nodes (about 3 minutes). Each run's evidence goes to $CHAOS_OUT/n<nodes>-s<seed>
# (default target/chaos); a run with an anomaly fails the script and keeps its evidence.
#
#   scripts/chaos-short.sh                      # the CI round
#   CHAOS_SEEDS="1 2 3 4" CHAOS_SECONDS=60 CHAOS_NODES="5" scripts/chaos-short.sh
set -euo pipefail
cd "$(dirname "$0")/.."

seeds=${CHAOS_SEEDS:-1 2 3}
seconds=${CHAOS_SECONDS:-20}
sizes=${CHAOS_NODES:-3 5}
out=${CHAOS_OUT:-${CARGO_TARGET_DIR:-target}/chaos}

cargo build --release -p kv-node --bin kv-node -p quorumkv-tests --bin kv-chaos
bin=${CARGO_TARGET_DIR:-target}/release
mkdir -p "$out"
failed=()
for nodes in $sizes; do
  for seed in $seeds; do
    dir="$out/n$nodes-s$seed"
    if "$bin/kv-chaos" --nodes "$nodes" --seconds "$seconds" --seed "$seed" --out "$dir" 2>"$dir.stderr"; then
      :
    else
      failed+=("$nodes nodes, seed $seed: see $dir and $dir.stderr")
      grep '^ANOMALY\|^kv-chaos:' "$dir.stderr" | head -5 || true
    fi
  done
done
if ((${#failed[@]})); then
  printf 'kv-chaos found anomalies:\n'
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
echo "kv-chaos: every run clean"
