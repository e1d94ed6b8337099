"""Shared helpers: where the repository's native binaries are."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[3]


def native_binary(name: str) -> Optional[Path]:
    """A binary of the workspace: ``$QUORUMKV_<NAME>`` (e.g. QUORUMKV_KV_NODE) if set, else
    ``$CARGO_TARGET_DIR/release/<name>`` or ``target/release/<name>``, if it exists."""
    env = os.environ.get("QUORUMKV_" + name.upper().replace("-", "_"))
    if env:
        return Path(env)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    path = target / "release" / name
    return path if path.is_file() and os.access(path, os.X_OK) else None
