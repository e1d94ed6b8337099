#!/usr/bin/env bash
# kv-core must not touch files, sockets, threads or the wall clock.
set -euo pipefail
cd "$(dirname "$0")/.."
if grep -rnE 'std::fs|std::net|std::thread|std::time::(Instant|SystemTime)|Instant::now|SystemTime|tokio::(net|fs)|println!|eprintln!' kv-core/src; then
  echo "kv-core must do no I/O and read no wall clock (see the lines above)" >&2
  exit 1
fi
echo "kv-core: no file, socket, thread, clock or print use"
