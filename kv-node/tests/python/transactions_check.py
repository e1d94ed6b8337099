"""redis-py transactions against a QuorumKV cluster: run by kv-node/tests/transactions.rs.

Usage: transactions_check.py PORT OTHER_PORT -- two client ports, on different nodes (the
tests pass the leader's and a follower's). Also runs against one real redis-server (give its
port twice), which is how the expected behaviour was checked.
"""

import sys
import threading
import time

import redis
from redis.exceptions import ExecAbortError
from redis.exceptions import ResponseError
from redis.exceptions import WatchError

# Increments per client in the WATCH retry loop.
ROUNDS = 40
# Transfers in the atomicity check.
TRANSFERS = 150


def connect(port: int, protocol: int = 2) -> redis.Redis:
    return redis.Redis(port=port, protocol=protocol, socket_timeout=10)


def pipelines(r: redis.Redis, o: redis.Redis) -> None:
    r.delete("tx:a", "tx:b", "tx:n", "tx:s")
    # transaction=True (the default): MULTI ... EXEC, answers in order, reads see the
    # transaction's own earlier writes.
    p = r.pipeline()
    p.set("tx:a", "1").incr("tx:n").get("tx:a").mset({"tx:b": "2"})
    p.mget("tx:a", "tx:b").incrby("tx:n", 5).get("tx:n").exists("tx:a", "tx:zz")
    assert p.execute() == [True, 1, b"1", True, [b"1", b"2"], 6, b"6", 1]
    assert o.mget("tx:a", "tx:b", "tx:n") == [b"1", b"2", b"6"]
    # A command that fails when applied fails alone, in its place; the others apply.
    p = r.pipeline()
    p.set("tx:s", "x").incr("tx:s").append("tx:s", "y").get("tx:s")
    res = p.execute(raise_on_error=False)
    assert res[0] is True and isinstance(res[1], ResponseError) and res[2:] == [2, b"xy"], res
    # Relative TTLs inside a transaction are resolved like outside.
    p = r.pipeline()
    p.set("tx:t", "v", px=60_000).pexpire("tx:a", 60_000).pttl("tx:t")
    res = p.execute()
    assert res[:2] == [True, True] and 50_000 < res[2] <= 60_000, res
    assert 50_000 < o.pttl("tx:a") <= 60_000
    # Non-data commands queue too and answer in their places.
    p = r.pipeline()
    p.ping().echo("hi").get("tx:b")
    assert p.execute() == [True, b"hi", b"2"]
    # transaction=False: a plain pipeline, no MULTI.
    p = r.pipeline(transaction=False)
    for i in range(50):
        p.set(f"tx:p{i}", i)
    p.get("tx:p7")
    res = p.execute()
    assert res[:50] == [True] * 50 and res[50] == b"7"
    # An empty transaction is an empty array.
    assert r.pipeline().execute() == []


def raw(r: redis.Redis) -> None:
    """Exact replies on one connection, read without redis-py's reply callbacks."""
    c = redis.Redis(port=r.connection_pool.connection_kwargs["port"], single_connection_client=True)

    def call(*args):
        c.connection.send_command(*args)
        return c.connection.read_response()

    def error(*args) -> ResponseError:
        try:
            call(*args)
        except ResponseError as e:
            return e
        raise AssertionError(f"{args} accepted")

    call("DEL", "tx:abort")
    assert str(error("EXEC")) == "EXEC without MULTI"
    assert str(error("DISCARD")) == "DISCARD without MULTI"
    assert call("MULTI") == b"OK"
    assert str(error("MULTI")) == "MULTI calls can not be nested"
    assert str(error("WATCH", "tx:a")) == "WATCH inside MULTI is not allowed"
    assert call("SET", "tx:abort", "1") == b"QUEUED"
    assert "unknown command" in str(error("NOSUCHCOMMAND", "x"))
    e = error("EXEC")
    assert isinstance(e, ExecAbortError) and str(e) == "Transaction discarded because of previous errors.", e
    assert call("GET", "tx:abort") is None, "an aborted transaction applied"
    # Wrong arity aborts too; DISCARD drops the queue; nested MULTI and WATCH do not abort.
    call("MULTI")
    assert "wrong number of arguments" in str(error("GET"))
    assert isinstance(error("EXEC"), ExecAbortError)
    call("MULTI")
    call("SET", "tx:abort", "2")
    assert call("DISCARD") == b"OK"
    assert call("GET", "tx:abort") is None, "a discarded transaction applied"
    call("MULTI")
    error("MULTI")
    error("WATCH", "tx:abort")
    assert call("SET", "tx:abort", "3") == b"QUEUED"
    assert call("UNWATCH") == b"QUEUED"
    assert call("EXEC") == [b"OK", b"OK"]
    assert call("MULTI") == b"OK" and call("EXEC") == []
    c.close()


def exec_is_nil_after(r: redis.Redis, o: redis.Redis, what: str, change) -> None:
    """WATCH a key, let `change` touch it (on the other node), then EXEC must abort."""
    with r.pipeline() as pipe:
        pipe.watch("tx:w")
        change()
        pipe.multi()
        pipe.set("tx:w", "mine")
        try:
            pipe.execute()
            raise AssertionError(f"EXEC applied after {what} of a watched key")
        except WatchError:
            pass
    assert o.get("tx:w") != b"mine", what


def watch(r: redis.Redis, o: redis.Redis) -> None:
    o.set("tx:w", "0")
    exec_is_nil_after(r, o, "a SET", lambda: o.set("tx:w", "1"))
    exec_is_nil_after(r, o, "a DEL", lambda: o.delete("tx:w"))
    o.set("tx:w", "0")

    def other_transaction():
        p = o.pipeline()
        p.incr("tx:other").set("tx:w", "2")
        p.execute()

    exec_is_nil_after(r, o, "another client's transaction", other_transaction)
    # Expiry: no command touches the key after WATCH; its TTL runs out.
    o.set("tx:w", "3")
    o.pexpire("tx:w", 50)
    exec_is_nil_after(r, o, "an expiry", lambda: time.sleep(0.2))
    # Unchanged keys (present, or absent all along) let EXEC run; UNWATCH forgets.
    o.set("tx:w", "4")
    with r.pipeline() as pipe:
        pipe.watch("tx:w", "tx:never")
        assert pipe.get("tx:w") == b"4"
        o.set("tx:unrelated", "x")
        pipe.multi()
        pipe.set("tx:w", "5")
        assert pipe.execute() == [True]
    with r.pipeline() as pipe:
        pipe.watch("tx:w")
        o.set("tx:w", "6")
        pipe.unwatch()
        pipe.multi()
        pipe.set("tx:w", "7")
        assert pipe.execute() == [True]
    assert o.get("tx:w") == b"7"


def competing_increments(ports: list) -> None:
    """redis-py's documented WATCH retry loop, one client per node, on one counter: no
    increment is lost, and some EXECs were aborted (the clients really competed)."""
    connect(ports[0]).set("tx:counter", "0")
    watch_errors = [0] * len(ports)
    failures = []
    start = threading.Barrier(len(ports))

    def run(i: int) -> None:
        r = connect(ports[i])
        try:
            start.wait()
            for _ in range(ROUNDS):
                with r.pipeline() as pipe:
                    while True:
                        try:
                            pipe.watch("tx:counter")
                            value = int(pipe.get("tx:counter"))
                            pipe.multi()
                            pipe.set("tx:counter", value + 1)
                            pipe.execute()
                            break
                        except WatchError:
                            watch_errors[i] += 1
                            continue
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            failures.append(repr(e))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(ports))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    final = int(connect(ports[-1]).get("tx:counter"))
    assert final == ROUNDS * len(ports), (final, watch_errors)
    assert sum(watch_errors) > 0, "the clients never competed"
    print(f"competing increments: final {final}, watch errors {watch_errors}")


def atomic_transfers(ports: list) -> None:
    """Transfers between two keys in MULTI on one node while a reader on the other node reads
    both keys in MULTI: the reader never sees half a transfer."""
    w, rd = connect(ports[0]), connect(ports[-1])
    w.mset({"tx:acct:a": "1000", "tx:acct:b": "0"})
    done = threading.Event()
    seen = []

    def reader() -> None:
        while not done.is_set():
            p = rd.pipeline()
            p.get("tx:acct:a").get("tx:acct:b")
            a, b = p.execute()
            seen.append(int(a) + int(b))

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(TRANSFERS):
            amount = i % 7 + 1
            p = w.pipeline()
            p.decrby("tx:acct:a", amount).incrby("tx:acct:b", amount)
            p.execute()
    finally:
        done.set()
        t.join()
    assert seen and all(s == 1000 for s in seen), [s for s in seen if s != 1000][:10]
    assert int(rd.get("tx:acct:a")) + int(rd.get("tx:acct:b")) == 1000
    print(f"atomic transfers: {TRANSFERS} transfers, {len(seen)} reads, sum always 1000")


if __name__ == "__main__":
    ports = [int(p) for p in sys.argv[1:]]
    for protocol in (2, 3):
        r, o = connect(ports[0], protocol), connect(ports[-1], protocol)
        pipelines(r, o)
        raw(r)
        watch(r, o)
        r.close()
        o.close()
    competing_increments(ports)
    atomic_transfers(ports)
    print("transactions ok")
