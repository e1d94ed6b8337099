#!/usr/bin/env bash
# Serves the web demo on http://127.0.0.1:8080 (PORT overrides). Builds the wasm first if
# web-demo/pkg is missing; python's http.server sends .wasm as application/wasm.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -f web-demo/pkg/quorumkv_wasm_bg.wasm ]] || scripts/build-web.sh
port=${PORT:-8080}
echo "QuorumKV web demo: http://127.0.0.1:$port/"
exec python3 -m http.server --bind 127.0.0.1 "$port" -d web-demo
