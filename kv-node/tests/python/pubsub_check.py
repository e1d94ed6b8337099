"""redis-py's pubsub() against a QuorumKV cluster: run by kv-node/tests/pubsub.rs.

Usage: pubsub_check.py PORT_A PORT_B PORT_C -- subscribers on A and B, PUBLISH sent to C.
"""

import sys
import time

import redis


def wait_message(p: "redis.client.PubSub") -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        message = p.get_message(ignore_subscribe_messages=True, timeout=1)
        if message is not None:
            return message
    raise AssertionError("no message within 10 s")


def main() -> None:
    a, b, c = (int(port) for port in sys.argv[1:4])
    for protocol in (2, 3):
        subscribers = []
        clients = []  # kept alive: a collected Redis object closes its pool, pubsub included
        for port in (a, b):
            r = redis.Redis(port=port, protocol=protocol, socket_timeout=10)
            p = r.pubsub()
            p.subscribe("py:news")
            p.psubscribe("py:*")
            confirmations = [p.get_message(timeout=5) for _ in range(2)]
            assert [m["type"] for m in confirmations] == ["subscribe", "psubscribe"], confirmations
            subscribers.append(p)
            clients.append(r)
        publisher = redis.Redis(port=c, protocol=protocol, socket_timeout=10)
        assert publisher.publish("py:news", "hello") == 0
        for p in subscribers:
            message = wait_message(p)
            assert message == {"type": "message", "pattern": None, "channel": b"py:news", "data": b"hello"}, message
            message = wait_message(p)
            assert message["type"] == "pmessage" and message["pattern"] == b"py:*", message
            assert message["data"] == b"hello", message
            p.close()

        # Keyspace notifications on A for writes sent to C: SET, DEL and an expiry.
        r = redis.Redis(port=a, protocol=protocol, socket_timeout=10)
        assert r.config_set("notify-keyspace-events", "KEA")
        assert r.config_get("notify-keyspace-events") == {"notify-keyspace-events": "AKE"}
        p = r.pubsub()
        p.psubscribe("__keyspace@0__:pyks:*")
        p.subscribe("__keyevent@0__:expired")
        publisher.set("pyks:a", "1")
        publisher.delete("pyks:a")
        publisher.set("pyks:e", "1")
        # No other write: the leader's active expiry removes the key through the log.
        assert publisher.pexpire("pyks:e", 50)
        got = [wait_message(p) for _ in range(6)]
        events = [(m["channel"], m["data"]) for m in got]
        assert events == [
            (b"__keyspace@0__:pyks:a", b"set"),
            (b"__keyspace@0__:pyks:a", b"del"),
            (b"__keyspace@0__:pyks:e", b"set"),
            (b"__keyspace@0__:pyks:e", b"expire"),
            (b"__keyspace@0__:pyks:e", b"expired"),
            (b"__keyevent@0__:expired", b"pyks:e"),
        ], events
        p.close()
        r.config_set("notify-keyspace-events", "")
    print("redis-py pub/sub ok")


if __name__ == "__main__":
    main()
