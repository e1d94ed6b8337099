#!/usr/bin/env bash
# Builds the simulator for the browser: bindings/wasm → web-demo/pkg (ES module + .wasm).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-wasm.sh quorumkv-wasm
wasm-bindgen --target web --remove-name-section --out-dir web-demo/pkg \
  target/wasm/wasm32-unknown-unknown/release/quorumkv_wasm.wasm
ls -l web-demo/pkg/quorumkv_wasm_bg.wasm | awk '{printf "web-demo/pkg/quorumkv_wasm_bg.wasm: %d bytes", $5}'
printf ', %d gzipped\n' "$(gzip -9c web-demo/pkg/quorumkv_wasm_bg.wasm | wc -c)"
