"""The docs run: the package's doctests, and the partition demo tells a correct story."""

from __future__ import annotations

import doctest
import subprocess
import sys
from pathlib import Path

import quorumkv._sim
import quorumkv._store

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "partition_demo.py"


def test_doctests() -> None:
    for module in (quorumkv._sim, quorumkv._store):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def test_partition_demo() -> None:
    run = subprocess.run([sys.executable, str(EXAMPLE), "42"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "fault: partition" in out and "fault: heal" in out
    assert "linearizability: linearizable" in out and "invariant violations: none" in out
    # After healing every node reads the majority's write; the minority's write never landed.
    assert out.count("get color through node") == 5 and out.count(": green") == 5
    again = subprocess.run([sys.executable, str(EXAMPLE), "42"], capture_output=True, text=True, timeout=300)
    assert again.stdout == out  # deterministic, down to the trace hash
