"""Transactions through quorumkv.Client and AsyncClient against a real 3-node cluster:
pipelines (MULTI .. EXEC as one log entry), errors inside and while queueing, and the
optimistic WATCH loop with two competing threads (exactly one wins each round).

Needs the kv-node binary, as test_client_cluster.py (whose cluster fixture this uses).
"""

from __future__ import annotations

import asyncio
import threading
from typing import List, Optional

import pytest
from test_client_cluster import KV_NODE, Cluster, cluster, wait_for_leader

import quorumkv

__all__ = ["cluster"]  # the fixture, imported for pytest

pytestmark = pytest.mark.skipif(KV_NODE is None, reason="kv-node binary not built")


def test_pipeline_replies_and_errors(cluster: Cluster) -> None:
    with quorumkv.Client(cluster.addresses()) as c:
        wait_for_leader(c)
        with c.pipeline() as p:
            p.set("a", "1").incr("n").incr("n", 5).get("a").delete("a").get("a")
            assert len(p) == 6
            assert p.execute() == ["OK", 1, 6, b"1", 1, None]
            assert len(p) == 0 and p.execute() == []

        # A command that fails inside EXEC: the others take effect, its error is raised.
        c["s"] = "text"
        p = c.pipeline().set("x", "1").incr("s").set("y", "2")
        with pytest.raises(quorumkv.ReplyError) as info:
            p.execute()
        assert info.value.code == "ERR" and "not an integer" in str(info.value)
        assert c["x"] == b"1" and c["y"] == b"2"
        replies = c.pipeline().set("x", "3").incr("s").execute(raise_on_error=False)
        assert replies[0] == "OK" and isinstance(replies[1], quorumkv.ReplyError) and c["x"] == b"3"

        # A command refused while queueing: EXECABORT, nothing applied.
        p = c.pipeline().set("z", "1").execute_command("SET", "lonely")
        with pytest.raises(quorumkv.ExecAbortError) as abort:
            p.execute()
        assert abort.value.code == "EXECABORT" and "wrong number of arguments" in str(abort.value)
        assert isinstance(abort.value, quorumkv.ReplyError) and "z" not in c

        # Without a transaction: one command after another, through the client.
        assert c.pipeline(transaction=False).set("t", "1").incr("t").execute() == ["OK", 2]


def test_transaction_runs_again_when_a_watched_key_changes(cluster: Cluster) -> None:
    with quorumkv.Client(cluster.addresses()) as c, quorumkv.Client(cluster.addresses()) as other:
        wait_for_leader(c)
        c["c"] = "1"
        calls = 0

        def bump(tx: quorumkv.Transaction) -> int:
            nonlocal calls
            calls += 1
            n = int(tx.get("c") or 0)
            if calls == 1:
                other["c"] = "100"  # between the read and EXEC: this round must not apply
            tx.multi()
            tx.set("c", str(n + 1)).queue_get("c")
            return n

        assert c.transaction(bump, "c") == ["OK", b"101"]
        assert calls == 2 and c["c"] == b"101"
        assert c.transaction(bump, "c", value_from_callable=True) == 101 and c["c"] == b"102"

        # GETREV: the value with the revision of its last change and the store's revision.
        value, mod_revision, revision = c.get_revision("c")
        assert value == b"102" and 0 < mod_revision <= revision
        absent = c.get_revision("never")
        assert isinstance(absent, quorumkv.Revisioned) and (absent.value, absent.mod_revision) == (None, 0)
        assert absent.revision >= revision


def test_two_threads_competing_through_watch(cluster: Cluster) -> None:
    """redis-py's documented WATCH loop, with two clients racing: in each round both read the
    counter (a barrier holds them until both have), so exactly one EXEC applies and the other
    runs again, alone (the winner waits for it at the round's end); the final value is the
    number of increments made."""
    rounds = 12
    with quorumkv.Client(cluster.addresses()) as c:
        wait_for_leader(c)
        c["counter"] = "0"
    barrier = threading.Barrier(2)
    attempts = [[0] * rounds for _ in range(2)]
    done = [0, 0]
    failures: List[BaseException] = []

    def worker(n: int) -> None:
        try:
            with quorumkv.Client(cluster.addresses(), retry_for=30) as w:
                for r in range(rounds):
                    first = True

                    def incr(tx: quorumkv.Transaction) -> None:
                        nonlocal first
                        value = int(tx.get("counter") or 0)
                        attempts[n][r] += 1
                        if first:
                            first = False
                            barrier.wait(timeout=30)
                        tx.set("counter", str(value + 1))

                    w.transaction(incr, "counter")
                    done[n] += 1
                    barrier.wait(timeout=30)  # the round is over for both
        except BaseException as e:  # noqa: BLE001 (reported by the main thread)
            failures.append(e)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, (failures, cluster.logs())
    assert done == [rounds, rounds]
    per_round = [attempts[0][r] + attempts[1][r] for r in range(rounds)]
    assert per_round == [3] * rounds, f"attempts per round (one winner, one retry each): {per_round}"
    with quorumkv.Client(cluster.addresses()) as c:
        assert int(c["counter"]) == sum(done) == 2 * rounds


def test_async_pipeline_and_transaction(cluster: Cluster) -> None:
    async def main() -> None:
        async with quorumkv.AsyncClient(cluster.addresses(), retry_for=30) as c:
            while await c.leader() is None:
                await asyncio.sleep(0.1)
            async with c.pipeline() as p:
                p.set("a", "1").incr("a").get("a")
                assert await p.execute() == ["OK", 2, b"2"]
            p2 = c.pipeline().execute_command("SET", "lonely")
            with pytest.raises(quorumkv.ExecAbortError):
                await p2.execute()

            async def double(tx: quorumkv.AsyncTransaction) -> Optional[bytes]:
                value = await tx.get("a")
                tx.set("a", str(2 * int(value or 0)))
                return value

            assert await c.transaction(double, "a", value_from_callable=True) == b"2"
            assert await c.transaction(double, "a") == ["OK"]
            assert await c.get("a") == b"8"
            assert (await c.get_revision("a")).value == b"8"

    asyncio.run(main())
