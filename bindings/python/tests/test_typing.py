"""The stubs of the native module match it (mypy's stubtest), and the package, the tests and
the example type-check under mypy --strict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=PACKAGE_ROOT, capture_output=True, text=True, timeout=600
    )


def test_stubs_match_the_native_module() -> None:
    result = run("mypy.stubtest", "quorumkv._native")
    assert result.returncode == 0, result.stdout + result.stderr


def test_package_tests_and_example_type_check_strictly() -> None:
    # Files and strictness come from pyproject.toml's [tool.mypy].
    result = run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr
