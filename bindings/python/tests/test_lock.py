"""A store's directory is locked: a second opener gets LockedError, not a corrupted store."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import quorumkv

OPEN_IN_CHILD = textwrap.dedent(
    """
    import sys, quorumkv
    try:
        quorumkv.Store(sys.argv[1])
    except quorumkv.LockedError as e:
        print("LockedError:", e)
        sys.exit(3)
    print("opened")
    """
)


def test_second_process_gets_a_clear_lock_error(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with quorumkv.Store(path) as s:
        s["k"] = "v"
        child = subprocess.run(
            [sys.executable, "-c", OPEN_IN_CHILD, str(path)], capture_output=True, text=True, timeout=60
        )
        assert child.returncode == 3, child.stdout + child.stderr
        assert "is locked: another QuorumKV store has this directory open" in child.stdout
        s["k2"] = "still usable"
    # Closed: now another process may open it, and sees the data.
    child = subprocess.run([sys.executable, "-c", OPEN_IN_CHILD, str(path)], capture_output=True, text=True, timeout=60)
    assert child.returncode == 0 and "opened" in child.stdout, child.stderr
    with quorumkv.Store(path) as s:
        assert s["k"] == b"v" and s["k2"] == b"still usable"


def test_second_open_in_the_same_process_is_locked_too(tmp_path: Path) -> None:
    with quorumkv.Store(tmp_path / "db", fsync="never"):
        with pytest.raises(quorumkv.LockedError) as info:
            quorumkv.Store(tmp_path / "db", fsync="never")
        assert isinstance(info.value, quorumkv.StorageError)
