#!/usr/bin/env bash
# Builds every cargo-fuzz target in kv-node/fuzz and runs each for a bounded time (CI's short
# fuzz round). New inputs go to a temporary directory, so the committed corpora stay as they
# are; a crash fails the script and leaves the input in kv-node/fuzz/artifacts/<target>/.
#
#   scripts/fuzz-smoke.sh            # every target, FUZZ_SECONDS (default 20) each
#   FUZZ_SECONDS=600 scripts/fuzz-smoke.sh snapshot
#
# cargo-fuzz needs nightly flags: RUSTC_BOOTSTRAP=1 lets the stable toolchain take them.
# FUZZ_SANITIZER (default none: the targets are safe Rust, and an uninstrumented build is
# several times faster to build and run) may be set to address.
set -euo pipefail
cd "$(dirname "$0")/../kv-node/fuzz"

seconds=${FUZZ_SECONDS:-20}
sanitizer=${FUZZ_SANITIZER:-none}
export RUSTC_BOOTSTRAP=1
if (($#)); then
  targets=("$@")
else
  targets=()
  for file in fuzz_targets/*.rs; do targets+=("$(basename "$file" .rs)"); done
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in "${targets[@]}"; do
  cargo fuzz build --sanitizer "$sanitizer" "$target"
done
for target in "${targets[@]}"; do
  mkdir -p "$work/$target"
  echo "fuzzing $target for ${seconds}s (seed corpus: corpus/$target)"
  if ! cargo fuzz run --sanitizer "$sanitizer" "$target" "$work/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 >"$work/$target.log" 2>&1; then
    tail -40 "$work/$target.log"
    echo "fuzz target $target crashed: the input is in kv-node/fuzz/artifacts/$target/"
    exit 1
  fi
  grep -E '^Done [0-9]+ runs' "$work/$target.log" || true
done
echo "every fuzz target ran ${seconds}s without a crash: ${targets[*]}"
