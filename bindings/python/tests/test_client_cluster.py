"""quorumkv.Client against a real 3-node kv-node cluster, with the leader killed mid-run.

Needs the kv-node binary (``cargo build --release -p kv-node --bin kv-node``, or
``$QUORUMKV_KV_NODE``); skipped, saying so, only when it is absent.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest
from conftest import native_binary

import quorumkv

KV_NODE = native_binary("kv-node")
pytestmark = pytest.mark.skipif(
    KV_NODE is None,
    reason="kv-node binary not built: run `cargo build --release -p kv-node --bin kv-node` or set QUORUMKV_KV_NODE",
)


_next_port = 0


def free_ports(n: int) -> List[int]:
    """``n`` ports nobody listens on: from ``$QUORUMKV_TEST_PORTS`` (``first-last``, below the
    ephemeral range, so no outgoing connection takes one before its node binds it) if set,
    else ones the OS picks."""
    global _next_port
    span = os.environ.get("QUORUMKV_TEST_PORTS")
    if span:
        first, last = (int(p) for p in span.split("-"))
        ports: List[int] = []
        for _ in range(last - first + 1):
            port = first + (os.getpid() * 7 + _next_port) % (last - first + 1)
            _next_port += 1
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            ports.append(port)
            if len(ports) == n:
                return ports
        raise RuntimeError(f"not {n} free ports in {span}")
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Cluster:
    """Three kv-node processes on loopback, each with its own data directory and log file."""

    def __init__(self, root: Path) -> None:
        ports = free_ports(6)
        self.root = root
        self.client = {i: f"127.0.0.1:{ports[2 * (i - 1)]}" for i in (1, 2, 3)}
        self.raft = {i: f"127.0.0.1:{ports[2 * (i - 1) + 1]}" for i in (1, 2, 3)}
        self.peers = ",".join(f"{i}={self.raft[i]}/{self.client[i]}" for i in (1, 2, 3))
        self.procs: Dict[int, subprocess.Popen[bytes]] = {}

    def start(self, i: int) -> None:
        log = open(self.root / f"node{i}.log", "ab")
        self.procs[i] = subprocess.Popen(
            [
                str(KV_NODE),
                "--id", str(i),
                "--data-dir", str(self.root / f"node{i}"),
                "--client-addr", self.client[i],
                "--raft-addr", self.raft[i],
                "--admin-addr", "off",
                "--peers", self.peers,
                "--election-timeout-ms", "300",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def kill(self, i: int) -> None:
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait(timeout=10)

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def addresses(self) -> List[str]:
        return [self.client[i] for i in (1, 2, 3)]

    def node_of(self, client_addr: Optional[str]) -> int:
        return next(i for i, a in self.client.items() if a == client_addr)

    def logs(self) -> str:
        return "\n".join(
            f"--- node{i}.log\n" + (self.root / f"node{i}.log").read_text(errors="replace")[-3000:] for i in (1, 2, 3)
        )


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    for i in (1, 2, 3):
        c.start(i)
    try:
        yield c
    finally:
        c.stop()


def wait_for_leader(client: quorumkv.Client, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leader = client.leader()
        if leader:
            return leader
        time.sleep(0.1)
    raise AssertionError(f"no leader after {timeout}s: {client.status()}")


def test_mapping_surface_and_status(cluster: Cluster) -> None:
    with quorumkv.Client(cluster.addresses()) as c:
        wait_for_leader(c)
        c["a"] = "1"
        c[b"b"] = b"2"
        set_at = time.monotonic()
        c.set("ttl", "x", ttl=1.5)
        assert c["a"] == b"1" and c.get("b") == b"2" and c.get("zz", b"d") == b"d"
        assert "a" in c and "zz" not in c
        with pytest.raises(KeyError):
            c["zz"]
        keys, count = sorted(c), len(c)
        if time.monotonic() - set_at < 1.5:  # (a loaded machine may take longer than the ttl)
            assert keys == [b"a", b"b", b"ttl"] and count == 3
        time.sleep(max(0.0, set_at + 1.8 - time.monotonic()))
        assert "ttl" not in c and sorted(c) == [b"a", b"b"]
        for k in [b"p:1", b"p:2", b"p:3", b"q"]:
            c[k] = k
        assert list(c.items(prefix="p:")) == [(b"p:1", b"p:1"), (b"p:2", b"p:2"), (b"p:3", b"p:3")]
        assert list(c.keys(prefix="p:", start="p:2")) == [b"p:2", b"p:3"]
        assert c.compare_and_swap("c", None, "1")  # absent -> created
        assert not c.compare_and_swap("c", None, "2")
        assert not c.compare_and_swap("c", "0", "2") and c["c"] == b"1"
        assert c.compare_and_swap("c", "1", "2") and c["c"] == b"2"
        assert c.compare_and_swap("c", b"2", None) and "c" not in c  # deleted
        assert c.setdefault("d", "first") == b"first" and c.setdefault("d", "second") == b"first"
        del c["d"]
        assert c.pop("a") == b"1" and c.pop("a", None) is None
        del c["b"]
        with pytest.raises(KeyError):
            del c["b"]
        with pytest.raises(quorumkv.ReplyError) as info:
            c.execute("INCR", "q")  # not an integer: a real error, not retried
        assert info.value.code == "ERR" and isinstance(info.value, quorumkv.Error)

        status = c.status()
        assert set(status) == set(cluster.addresses())
        roles = sorted(s["role"] for s in status.values())
        assert roles == ["follower", "follower", "leader"], status
        assert len({s["leader_id"] for s in status.values()}) == 1
        # Every node sees the same committed writes, through any node.
        for address in cluster.addresses():
            with quorumkv.Client([address]) as one:
                assert one["p:3"] == b"p:3"


def test_leader_killed_mid_run(cluster: Cluster) -> None:
    """A writer keeps writing while the leader is killed with SIGKILL; every write the client
    acknowledged is readable afterwards from the survivors, and writing goes on."""
    with quorumkv.Client(cluster.addresses(), retry_for=30) as c:
        leader = cluster.node_of(wait_for_leader(c))
        c["before"] = "kill"

    acked: List[int] = []
    failures: List[BaseException] = []
    stop = threading.Event()

    def writer() -> None:
        with quorumkv.Client(cluster.addresses(), retry_for=30) as w:
            i = 0
            while not stop.is_set() and i < 10_000:
                try:
                    w[b"w%05d" % i] = b"%d" % i
                except quorumkv.Error as e:
                    failures.append(e)
                    return
                acked.append(i)
                i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while len(acked) < 50 and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.02)
        assert len(acked) >= 50, (failures, cluster.logs())
        before_kill = len(acked)
        cluster.kill(leader)
        deadline = time.monotonic() + 30
        while len(acked) < before_kill + 50 and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not failures, (failures, cluster.logs())
    assert len(acked) >= before_kill + 50, f"writes stopped after the kill: {len(acked)} acked\n{cluster.logs()}"

    survivors = [cluster.client[i] for i in (1, 2, 3) if i != leader]
    with quorumkv.Client(cluster.addresses(), retry_for=30) as c:  # the dead node listed first too
        new_leader = wait_for_leader(c)
        assert cluster.node_of(new_leader) != leader
        assert c["before"] == b"kill"
        stored = dict(c.items(prefix="w"))
        missing = [i for i in acked if stored.get(b"w%05d" % i) != b"%d" % i]
        assert not missing, f"acknowledged writes lost: {missing[:10]}"
        status = c.status()
        assert "error" in status[cluster.client[leader]]
        assert all("error" not in status[a] for a in survivors)

    # The killed node comes back and catches up.
    cluster.start(leader)
    with quorumkv.Client([cluster.client[leader]], retry_for=30) as back:
        deadline = time.monotonic() + 30
        while True:
            try:
                if back.get(b"w%05d" % acked[-1]) == b"%d" % acked[-1]:
                    break
            except quorumkv.Error:
                pass
            assert time.monotonic() < deadline, cluster.logs()
            time.sleep(0.2)


def test_counter_increments_apply_exactly_once_across_two_leader_kills(cluster: Cluster) -> None:
    """The issue's reproduction: six threads INCR one counter through quorumkv.Client while the
    leader is killed with SIGKILL twice (the first victim restarted in between, so a majority
    stays up). Writes run through client sessions: an increment whose answer was lost is
    resent with the same sequence number and applied once. The final value equals the
    increments acknowledged, and none ends with an unknown outcome."""
    with quorumkv.Client(cluster.addresses(), retry_for=30) as c:
        wait_for_leader(c)
        c["counter"] = "0"

    acked = [0] * 6
    failures: List[BaseException] = []
    stop = threading.Event()

    def incrementer(n: int) -> None:
        with quorumkv.Client(cluster.addresses(), retry_for=30) as w:
            while not stop.is_set():
                try:
                    w.incr("counter")
                except quorumkv.Error as e:
                    failures.append(e)
                    return
                acked[n] += 1

    threads = [threading.Thread(target=incrementer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()

    def wait_for_progress(more: int, timeout: float = 30) -> None:
        target = sum(acked) + more
        deadline = time.monotonic() + timeout
        while sum(acked) < target and time.monotonic() < deadline and not failures:
            time.sleep(0.02)
        assert sum(acked) >= target, (failures, sum(acked), cluster.logs())

    try:
        wait_for_progress(200)
        for round in range(2):
            with quorumkv.Client(cluster.addresses(), retry_for=30) as c:
                victim = cluster.node_of(wait_for_leader(c))
            cluster.kill(victim)
            wait_for_progress(200)
            cluster.start(victim)
            if round == 0:
                # Wait until it is back, so killing the next leader leaves a majority.
                with quorumkv.Client([cluster.client[victim]], retry_for=30) as back:
                    assert back.get("counter") is not None
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not failures, (failures, cluster.logs())
    with quorumkv.Client(cluster.addresses(), retry_for=30) as c:
        final = int(c["counter"])
    assert final == sum(acked), f"{sum(acked)} increments acknowledged, counter at {final}"


def test_async_client_on_a_cluster(cluster: Cluster) -> None:
    async def main() -> None:
        async with quorumkv.AsyncClient(cluster.addresses(), retry_for=30) as c:
            deadline = time.monotonic() + 30
            while await c.leader() is None:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            await c.set("a:1", "x")
            await c.set("a:2", "y", ttl=60)
            assert await c.get("a:1") == b"x" and await c.contains("a:2")
            assert [k async for k in c.keys(prefix="a:")] == [b"a:1", b"a:2"]
            assert [kv async for kv in c.items(prefix="a:")] == [(b"a:1", b"x"), (b"a:2", b"y")]
            assert await asyncio.gather(*(c.incr("n") for _ in range(20))) == list(range(1, 21))
            assert await c.compare_and_swap("a:1", "x", "z") and await c.pop("a:1") == b"z"
            assert await c.pop("a:1", None) is None and await c.size() == 2
            assert c.session_id is not None
            await c.delete("a:2")
            with pytest.raises(KeyError):
                await c.delete("a:2")

    asyncio.run(main())
