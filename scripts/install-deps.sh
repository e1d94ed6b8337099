#!/usr/bin/env bash
# Installs what the test suite needs and a fresh machine lacks. Idempotent: skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# The wasm toolchain (Debian's rustc-web with build-std), chromium for the browser tests,
# unmodified Redis clients and server for kv-node's tests and the comparison benchmark (Debian's
# redis-cli is built with TLS: the TLS tests run `redis-cli --tls`), and a C compiler for ring,
# the crypto provider of kv-node's rustls, and g++ for libFuzzer (cargo-fuzz's runtime).
for pkg in rustc-web cargo-web rust-web-src rust-web-llvm lld-22 chromium redis-tools redis-server gcc g++; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
  echo "installing apt packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi

# wasm-bindgen-cli must match the wasm-bindgen crate version exactly.
wbg_version=$(sed -n 's/^wasm-bindgen = "=\(.*\)"/\1/p' bindings/wasm/Cargo.toml)
if [[ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $wbg_version" ]]; then
  echo "installing wasm-bindgen-cli $wbg_version"
  cargo install wasm-bindgen-cli --version "$wbg_version"
fi

# cargo-fuzz for CI's short fuzz round (scripts/fuzz-smoke.sh).
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --version 0.13.2 --locked
fi

# The web demo's browser tests: playwright-core drives the system's chromium (no browser download).
if [[ ! -d web-demo/node_modules/playwright-core || web-demo/package-lock.json -nt web-demo/node_modules/.package-lock.json ]]; then
  echo "installing web-demo npm packages"
  (cd web-demo && npm ci --no-audit --no-fund)
fi

# The Python package's build and test tools, and redis-py for kv-node's client tests, pinned,
# in a virtualenv at .venv.
py_tools=(maturin==1.16.0 pytest==9.2.0 hypothesis==6.170.17 mypy==2.4.1 redis==8.1.0)
if [[ ! -x .venv/bin/python ]]; then
  echo "creating the Python virtualenv .venv"
  python3 -m venv .venv
fi
installed=$(.venv/bin/python -m pip freeze 2>/dev/null)
for tool in "${py_tools[@]}"; do
  if ! grep -qix "$tool" <<<"$installed"; then
    echo "installing Python tools: ${py_tools[*]}"
    .venv/bin/python -m pip install --quiet "${py_tools[@]}"
    break
  fi
done
