"""redis-py and quorumkv.Client over TLS against a running cluster (kv-node/tests/tls.rs).

Usage: tls_check.py CA CERT KEY PORT...

The quorumkv package is this checkout's (see checkout.py).
"""

import sys

import redis

from checkout import import_checkout

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

quorumkv = import_checkout()
if quorumkv is None:
    print("quorumkv not installed: skipping the Python client check")
    raise SystemExit(0)
addresses = [f"127.0.0.1:{p}" for p in ports]
with quorumkv.Client(addresses, ssl=True, ssl_ca_certs=ca, ssl_certfile=cert, ssl_keyfile=key) as kv:
    kv["client:tls"] = "yes"
    assert kv["client:tls"] == b"yes", kv["client:tls"]
    assert kv[f"py:tls:{ports[0]}"] == b"over tls"
print("ok")
