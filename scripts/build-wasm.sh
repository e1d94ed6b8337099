#!/usr/bin/env bash
# Builds a crate for wasm32-unknown-unknown (release). Usage: build-wasm.sh <package> [cargo args...]
# Prefers rustup's wasm32 target where it is installed; otherwise uses Debian's rustc-web with
# build-std (rustup's toolchains here have no wasm32 target and cannot download one).
set -euo pipefail
pkg=$1; shift
cd "$(dirname "$0")/.."
target_dir=${WASM_TARGET_DIR:-target/wasm}
# Tuned for size (the browser downloads it): no debug info, opt-level s, one codegen unit.
# This only affects this target directory; the simulation's results do not depend on it.
export CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_OPT_LEVEL=s CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  cargo build -p "$pkg" --target wasm32-unknown-unknown --release --target-dir "$target_dir" "$@"
else
  RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc /usr/bin/cargo build -p "$pkg" -Zbuild-std=std,panic_abort \
    --target wasm32-unknown-unknown --release --target-dir "$target_dir" "$@"
fi
