"""redis-py and quorumkv.Client against a node with a password (kv-node/tests/security.rs).

Usage: auth_check.py PASSWORD PORT
"""

import os
import sys

import redis

from checkout import import_checkout

password, port = sys.argv[1], int(sys.argv[2])

r = redis.Redis(port=port, password=password)
r.set("py:auth", "yes")
try:
    redis.Redis(port=port).get("py:auth")
    raise SystemExit("served without AUTH")
except redis.exceptions.AuthenticationError:
    pass
try:
    redis.Redis(port=port, password="wrong").ping()
    raise SystemExit("served with a wrong password")
except redis.exceptions.AuthenticationError:
    pass

quorumkv = import_checkout()
if quorumkv is None:
    print("quorumkv not installed: skipping the Python client check")
    raise SystemExit(0)
with quorumkv.Client([f"127.0.0.1:{port}"], password=password, retry_for=5) as kv:
    assert kv["py:auth"] == b"yes"
    kv["client:auth"] = "yes"
os.environ["QUORUMKV_PASSWORD"] = password
with quorumkv.Client([f"127.0.0.1:{port}"], retry_for=5) as kv:
    assert kv["client:auth"] == b"yes"
del os.environ["QUORUMKV_PASSWORD"]
try:
    with quorumkv.Client([f"127.0.0.1:{port}"], retry_for=2) as kv:
        kv["client:auth"]
    raise SystemExit("the Python client was served without a password")
except quorumkv.Error as e:
    assert "NOAUTH" in str(e), e
print("ok")
