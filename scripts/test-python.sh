#!/usr/bin/env bash
# The Python package: builds the quorumkv wheel with maturin (release), installs it into .venv,
# and runs its pytest suite against the installed wheel. The suite compares trace hashes with
# the native kv-sim and runs a real 3-node cluster of kv-node processes, so both are built first.
set -euo pipefail
cd "$(dirname "$0")/.."
python=$PWD/.venv/bin/python

cargo build --release -p kv-node --bin kv-node --bin kv-sim --bin kv-replay

rm -rf target/wheels/quorumkv-*.whl
.venv/bin/maturin build --release -m bindings/python/Cargo.toml --out target/wheels
"$python" -m pip install --quiet --force-reinstall --no-deps target/wheels/quorumkv-*.whl

# From the package directory (its pyproject.toml configures pytest and mypy); the sources live
# under python/, so `import quorumkv` is the installed wheel.
cd bindings/python
status=0
"$python" -m pytest -p no:cacheprovider tests || status=$?
if ((status == 5)); then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$status"
