#!/usr/bin/env bash
# kv-core must not touch files, sockets, threads or the wall clock, nor print: everything comes
# in through its API and the async runtime. Comment lines are not code and are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
pattern='std::fs|std::net|std::thread|std::process|\bInstant::now|SystemTime|tokio::(net|fs|time)|\b(e?print(ln)?|dbg)!'
if grep -rnE "$pattern" kv-core/src | grep -vE '^[^:]+:[0-9]+:\s*//'; then
  echo "kv-core must do no I/O and read no wall clock (see the lines above)" >&2
  exit 1
fi
echo "kv-core: no file, socket, thread, clock or print use"
