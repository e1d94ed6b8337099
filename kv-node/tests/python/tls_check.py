"""redis-py and quorumkv.Client over TLS against a running cluster (kv-node/tests/tls.rs).

Usage: tls_check.py CA CERT KEY PORT...

The quorumkv package is taken from this checkout's Python sources, with the native module of
the installed wheel (the cluster client is pure Python): so the test checks the client code
next to it without rebuilding the wheel.
"""

import importlib.util
import os
import pathlib
import shutil
import sys
import tempfile

import redis

ca, cert, key, *ports = sys.argv[1:]

for port in ports:
    r = redis.Redis(port=int(port), ssl=True, ssl_ca_certs=ca, ssl_certfile=cert, ssl_keyfile=key)
    assert r.ping()
    r.set(f"py:tls:{port}", "over tls")
    assert r.get(f"py:tls:{port}") == b"over tls"

# Without a client certificate (the nodes require one): refused.
try:
    redis.Redis(port=int(ports[0]), ssl=True, ssl_ca_certs=ca, socket_timeout=5).ping()
    raise SystemExit("a client without a certificate was served")
except (redis.exceptions.ConnectionError, OSError):
    pass

installed = importlib.util.find_spec("quorumkv")
if installed is None or installed.origin is None:
    print("quorumkv not installed: skipping the Python client check")
    raise SystemExit(0)
checkout = pathlib.Path(__file__).resolve().parents[3] / "bindings/python/python/quorumkv"
with tempfile.TemporaryDirectory() as tmp:
    package = pathlib.Path(tmp) / "quorumkv"
    shutil.copytree(checkout, package)
    for native in pathlib.Path(installed.origin).parent.glob("_native*.so"):
        shutil.copy(native, package)
    sys.path.insert(0, tmp)
    import quorumkv

    assert pathlib.Path(quorumkv.__file__).parent == package
    addresses = [f"127.0.0.1:{p}" for p in ports]
    with quorumkv.Client(addresses, ssl=True, ssl_ca_certs=ca, ssl_certfile=cert, ssl_keyfile=key) as kv:
        kv["client:tls"] = "yes"
        assert kv["client:tls"] == b"yes", kv["client:tls"]
        assert kv[f"py:tls:{ports[0]}"] == b"over tls"
    print("ok", os.getpid())
