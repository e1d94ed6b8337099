"""Watches through quorumkv.Client and AsyncClient against a real 3-node cluster: every change
after a revision, in order; resumed on another node, exactly once, when the watcher's node
is killed with SIGKILL; Compacted when the history is gone.

Needs the kv-node binary, as test_client_cluster.py (whose cluster fixture this uses).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import List, Tuple

import pytest
from test_client_cluster import KV_NODE, Cluster, cluster, wait_for_leader

import quorumkv

__all__ = ["cluster"]  # the fixture, imported for pytest

pytestmark = pytest.mark.skipif(KV_NODE is None, reason="kv-node binary not built")


def test_watch_sees_every_change_after_since_in_order(cluster: Cluster) -> None:
    with quorumkv.Client(cluster.addresses()) as c:
        wait_for_leader(c)
        c["w:0"] = "before"
        start = c.get_revision("w:0").revision
        c["w:1"] = "a"
        c.execute("MSET", "w:2", "b", "w:3", "c")  # one entry, two changes
        c.incr("w:n")
        del c["w:1"]
        c["other"] = "not under the prefix"
        c.execute("APPEND", "w:2", "!")
        with c.watch("w:", since=start) as w:
            events = [next(w) for _ in range(6)]
            assert w.next(0.3) is None  # nothing else happened under "w:"
            assert w.revision == events[-1].revision and w.connected
        assert [(e.key, e.event, e.value) for e in events] == [
            (b"w:1", "set", b"a"),
            (b"w:2", "set", b"b"),
            (b"w:3", "set", b"c"),
            (b"w:n", "incrby", b"1"),
            (b"w:1", "del", None),
            (b"w:2", "append", b"b!"),
        ]
        revisions = [e.revision for e in events]
        assert revisions[1] == revisions[2] and start < revisions[0]
        assert all(a < b for a, b in zip(revisions[2:], revisions[3:])) and revisions[0] < revisions[1]
        assert isinstance(events[0], quorumkv.WatchEvent)
        with pytest.raises(ValueError):
            c.watch("w:", since=-1)


def test_watch_resumes_on_another_node_after_kill_9(cluster: Cluster) -> None:
    """A watcher's node is killed with SIGKILL while a writer goes on; the watch resumes on
    another node from its last revision and sees every write exactly once, in order."""
    total = 300
    with quorumkv.Client(cluster.addresses(), retry_for=30) as c:
        wait_for_leader(c)
        start = c.get_revision("k:").revision
        watch = c.watch("k:", since=start)
        seen: List[quorumkv.WatchEvent] = []
        failures: List[BaseException] = []

        def reader() -> None:
            try:
                for event in watch:
                    seen.append(event)
                    if event.key == b"k:done":
                        return
            except BaseException as e:  # noqa: BLE001 (reported by the main thread)
                failures.append(e)

        thread = threading.Thread(target=reader)
        thread.start()
        written: List[Tuple[bytes, bytes]] = []

        def write(i: int) -> None:
            key, value = b"k:%04d" % i, b"%d" % i
            c[key] = value
            written.append((key, value))

        for i in range(50):
            write(i)
        deadline = time.monotonic() + 20
        while len(seen) < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(seen) >= 20 and watch.address is not None, (failures, cluster.logs())
        victim = cluster.node_of(watch.address)
        cluster.kill(victim)
        for i in range(50, total):
            write(i)
        c["k:done"] = "1"
        written.append((b"k:done", b"1"))
        thread.join(timeout=60)
        resumed_on = watch.address
        watch.close()
    assert not failures, (failures, cluster.logs())
    assert not thread.is_alive(), f"the watch stalled after {len(seen)} changes\n{cluster.logs()}"
    assert [(e.key, e.value) for e in seen] == written, "every write exactly once, in order"
    assert all(e.event == "set" for e in seen)
    assert all(a.revision < b.revision for a, b in zip(seen, seen[1:]))
    assert resumed_on != cluster.client[victim], "the watch moved to a live node"


def test_compacted_history_raises_with_the_oldest_revision(cluster: Cluster) -> None:
    with quorumkv.Client(cluster.addresses(), retry_for=30) as c:
        wait_for_leader(c)
        for i in range(20):
            c[f"c:{i}"] = "v"
        for address in cluster.addresses():
            c._native.execute_on(address, [b"RAFT", b"SNAPSHOT"])
        # A node restarted from its snapshot keeps no history before it.
        for i in (1, 2, 3):
            cluster.kill(i)
        for i in (1, 2, 3):
            cluster.start(i)
        wait_for_leader(c)
        with pytest.raises(quorumkv.Compacted) as info:
            next(c.watch("c:", since=1))
        assert info.value.revision == 1 and info.value.oldest > 20, info.value
        assert "the oldest available is" in str(info.value)
        # Re-read, then watch from the revision read: nothing missed.
        assert c.get_revision("c:0").value == b"v"
        with c.watch("c:", since=info.value.oldest) as w:
            c["c:new"] = "fresh"
            event = next(w)
            assert (event.key, event.value) == (b"c:new", b"fresh")


def test_async_watch(cluster: Cluster) -> None:
    async def main() -> None:
        async with quorumkv.AsyncClient(cluster.addresses(), retry_for=30) as c:
            while await c.leader() is None:
                await asyncio.sleep(0.1)
            revision = (await c.get_revision("a:")).revision
            await c.set("a:1", "x")
            await c.execute("DEL", "a:1")
            seen: List[quorumkv.WatchEvent] = []
            async with c.watch("a:", since=revision) as w:
                async for event in w:
                    seen.append(event)
                    if len(seen) == 2:
                        break
                assert w.revision == seen[-1].revision
            assert [(e.key, e.event, e.value) for e in seen] == [(b"a:1", "set", b"x"), (b"a:1", "del", None)]

    asyncio.run(main())
