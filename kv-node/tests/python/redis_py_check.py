"""redis-py against a QuorumKV cluster: run by kv-node/tests/redis_clients.rs.

Usage: redis_py_check.py PORT [PORT ...] -- every port is a node's client port.
"""

import sys

import redis


def check(port: int, other: int) -> None:
    for protocol in (2, 3):
        r = redis.Redis(port=port, protocol=protocol, socket_timeout=10)
        o = redis.Redis(port=other, protocol=protocol, socket_timeout=10)
        assert r.ping()
        r.delete("py:a", "py:s", "py:nx")
        assert r.set("py:a", "1")
        assert o.get("py:a") == b"1"
        assert r.incr("py:a") == 2
        assert r.incrby("py:a", 10) == 12
        assert r.decr("py:a") == 11
        assert r.append("py:s", "ab") == 2 and r.strlen("py:s") == 2
        assert r.set("py:nx", "x", nx=True) and not r.set("py:nx", "y", nx=True)
        assert r.set("py:nx", "z", xx=True, get=True) == b"x"
        assert r.mset({"py:m1": "1", "py:m2": "2"})
        assert r.mget("py:m1", "py:missing", "py:m2") == [b"1", None, b"2"]
        assert r.exists("py:m1", "py:m2", "py:missing") == 2
        assert r.set("py:t", "v", ex=100) and 99 <= r.ttl("py:t") <= 100
        assert r.persist("py:t") and r.ttl("py:t") == -1
        assert r.pexpire("py:t", 5000) and 4000 < r.pttl("py:t") <= 5000
        assert r.getdel("py:t") == b"v" and r.get("py:t") is None
        assert r.delete("py:m1", "py:m2", "py:missing") == 2
        try:
            r.execute_command("NOSUCHCOMMAND")
            raise AssertionError("unknown command accepted")
        except redis.ResponseError as e:
            assert "unknown command" in str(e)
        # Pipelines without transactions: answers in order.
        p = r.pipeline(transaction=False)
        for i in range(200):
            p.set(f"py:p{i:03}", i)
        p.get("py:p042")
        p.incr("py:counter")
        results = p.execute()
        assert results[:200] == [True] * 200 and results[200] == b"42", results[198:]
        # SCAN in key order with MATCH and COUNT; KEYS; DBSIZE.
        keys = list(o.scan_iter(match="py:p*", count=7))
        assert keys == sorted(keys) and len(keys) == 200, len(keys)
        assert sorted(o.keys("py:p00*")) == [f"py:p00{i}".encode() for i in range(10)]
        assert r.dbsize() >= 200
        info = r.info("raft")
        assert "raft_role" in info, info
        assert r.client_setname("checker") and r.client_getname() in (b"checker", "checker")
        r.close()
        o.close()


if __name__ == "__main__":
    ports = [int(p) for p in sys.argv[1:]]
    check(ports[0], ports[-1])
    print("redis-py ok")
