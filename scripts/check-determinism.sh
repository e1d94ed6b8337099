#!/usr/bin/env bash
# The same seeds must give byte-identical traces natively and in wasm (under node): compares
# the trace hashes printed by `kv-sim --hashes` with those of the wasm build.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-1,2,3,4,5,6,7,8}
native=$(cargo run -q --release -p kv-node --bin kv-sim -- --hashes "$seeds")
wasm=$(node bindings/wasm/tests/trace_hashes.mjs web-demo/pkg "$seeds")
if [[ "$native" != "$wasm" ]]; then
  echo "trace hashes differ between native and wasm:" >&2
  diff <(echo "$native") <(echo "$wasm") >&2 || true
  exit 1
fi
echo "native and wasm trace hashes agree for seeds $seeds:"
echo "$native"
