#!/usr/bin/env bash
# A fault campaign: kv-chaos on real kv-node processes over several seeds and cluster sizes,
# then the totals (runs, operations, faults by kind, anomalies). The default is CI's short
# round, 3 seeds x 20 s on 3 and on 5 nodes (about 3 minutes). Each run's evidence goes to
# $CHAOS_OUT/n<nodes>-s<seed> (default target/chaos); a run with an anomaly fails the script
# and keeps its evidence. docs/reliability.md has the long campaign's figures.
#
#   scripts/chaos-campaign.sh                                   # the CI round
#   CHAOS_SEEDS="$(seq 100 149)" CHAOS_SECONDS=60 scripts/chaos-campaign.sh
#   (CHAOS_BASE_PORT / CHAOS_PORT_END: the ports the nodes and proxies may use, default 20000-24000)
set -euo pipefail
cd "$(dirname "$0")/.."

seeds=${CHAOS_SEEDS:-1 2 3}
seconds=${CHAOS_SECONDS:-20}
sizes=${CHAOS_NODES:-3 5}
out=${CHAOS_OUT:-${CARGO_TARGET_DIR:-target}/chaos}
ports=(--base-port "${CHAOS_BASE_PORT:-20000}" --port-end "${CHAOS_PORT_END:-24000}")

cargo build --release -p kv-node --bin kv-node -p quorumkv-tests --bin kv-chaos
bin=${CARGO_TARGET_DIR:-target}/release
mkdir -p "$out"
failed=()
for nodes in $sizes; do
  for seed in $seeds; do
    dir="$out/n$nodes-s$seed"
    if "$bin/kv-chaos" --nodes "$nodes" --seconds "$seconds" --seed "$seed" --out "$dir" "${ports[@]}" 2>"$dir.stderr"; then
      :
    else
      failed+=("$nodes nodes, seed $seed: see $dir and $dir.stderr")
      grep '^ANOMALY\|^kv-chaos:' "$dir.stderr" | head -5 || true
    fi
  done
done
runs=()
for nodes in $sizes; do for seed in $seeds; do runs+=("$out/n$nodes-s$seed"); done; done
scripts/chaos-totals.py "${runs[@]}" || true
if ((${#failed[@]})); then
  printf 'kv-chaos found anomalies:\n'
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
echo "kv-chaos: every run clean"
