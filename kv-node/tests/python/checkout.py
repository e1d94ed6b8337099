"""Imports the quorumkv package from this checkout's Python sources, with the native module of
the installed wheel (`scripts/test-all.sh` builds and installs it before the native tests run).
Returns None when no wheel is installed."""

import importlib.util
import pathlib
import shutil
import sys
import tempfile
from types import ModuleType
from typing import Optional


def import_checkout() -> Optional[ModuleType]:
    installed = importlib.util.find_spec("quorumkv")
    if installed is None or installed.origin is None:
        return None
    source = pathlib.Path(__file__).resolve().parents[3] / "bindings/python/python/quorumkv"
    package = pathlib.Path(tempfile.mkdtemp()) / "quorumkv"
    shutil.copytree(source, package)
    for native in pathlib.Path(installed.origin).parent.glob("_native*.so"):
        shutil.copy(native, package)
    sys.path.insert(0, str(package.parent))
    for name in [m for m in sys.modules if m == "quorumkv" or m.startswith("quorumkv.")]:
        del sys.modules[name]
    import quorumkv

    assert pathlib.Path(quorumkv.__file__).parent == package
    return quorumkv
