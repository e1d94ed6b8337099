#!/usr/bin/env bash
# Installs what is missing, then runs every check and test. This is the README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
step() { printf '\n=== [%dm%02ds] %s\n' $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)) "$*"; }

step "install dependencies"
scripts/install-deps.sh

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

step "kv-core does no I/O; no import circles; the simulator builds for the browser"
scripts/check-no-io.sh
python3 scripts/check-layering.py
scripts/build-web.sh

step "Python package: maturin wheel, pytest (store, cluster client, simulator vs native), stubtest (first: the native tests drive the Python client through this wheel)"
scripts/test-python.sh

step "native tests"
cargo test --workspace --release

step "fault campaign: kv-chaos on real processes, 3 seeds x 20 s on 3 and 5 nodes (docs/reliability.md)"
scripts/chaos-campaign.sh

step "fuzz: build every kv-node/fuzz target and run each for 20 s"
scripts/fuzz-smoke.sh

step "determinism: the same seeds give the same traces natively and in wasm"
scripts/check-determinism.sh

step "web demo in headless Chromium"
node --test web-demo/tests/


step "all checks and tests passed"
