"""quorumkv.Client's (and AsyncClient's) retry, failover, sessions and error mapping, against
scripted fake RESP nodes.

The fake nodes speak the session protocol the way a node does: ``SESSION NEW`` answers an id,
``SESSION RUN id seq acked command...`` runs the command (the handler sees the command alone;
``runs`` records the session tags)."""

from __future__ import annotations

import asyncio
import socket
import socketserver
import threading
import time
from typing import Callable, Iterator, List, Optional, Tuple

import pytest

import quorumkv

Handler = Callable[[List[bytes]], Optional[bytes]]
"""Answers a command with RESP bytes, or ``None`` to close the connection without answering."""


class FakeNode:
    """A RESP2 server on loopback that answers each command with ``handler(args)``."""

    def __init__(self, handler: Handler, session_id: int = 1) -> None:
        self.calls: List[List[bytes]] = []
        self.runs: List[Tuple[int, int, int]] = []
        node = self

        class Session(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    assert line.startswith(b"*")
                    args = []
                    for _ in range(int(line[1:])):
                        n = int(self.rfile.readline()[1:])
                        args.append(self.rfile.read(n + 2)[:-2])
                    if args[:2] == [b"SESSION", b"NEW"]:
                        self.wfile.write(b":%d\r\n" % session_id)
                        continue
                    if args[:2] == [b"SESSION", b"END"]:
                        self.wfile.write(b":1\r\n")
                        continue
                    if args[:2] == [b"SESSION", b"RUN"]:
                        node.runs.append((int(args[2]), int(args[3]), int(args[4])))
                        args = args[5:]
                    node.calls.append(args)
                    answer = handler(args)
                    if answer is None:
                        return
                    self.wfile.write(answer)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Session)
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def commands(self, name: bytes) -> int:
        return sum(1 for c in self.calls if c[0].upper() == name)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def nodes() -> Iterator[List[FakeNode]]:
    made: List[FakeNode] = []
    yield made
    for n in made:
        n.close()


def dead_address() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    address = "127.0.0.1:%d" % s.getsockname()[1]
    s.close()
    return address


NO_LEADER = b"-TRYAGAIN no leader is known (election in progress or no quorum reachable)\r\n"


def test_tryagain_is_retried_until_it_succeeds(nodes: List[FakeNode]) -> None:
    answers = [NO_LEADER, NO_LEADER, b"+OK\r\n"]

    def handler(args: List[bytes]) -> bytes:
        if args[0] == b"RAFT":
            return NO_LEADER
        return answers.pop(0)

    nodes.append(FakeNode(handler))
    with quorumkv.Client([nodes[0].address]) as c:
        c["k"] = "v"
    assert nodes[0].commands(b"SET") == 3
    assert nodes[0].calls[-1] == [b"SET", b"k", b"v"]


def test_a_node_that_knows_no_leader_is_passed_over(nodes: List[FakeNode]) -> None:
    cut_off = FakeNode(lambda args: NO_LEADER)  # e.g. on the minority side of a partition
    healthy = FakeNode(lambda args: NO_LEADER if args[0] == b"RAFT" else b"+OK\r\n")
    nodes += [cut_off, healthy]
    with quorumkv.Client([cut_off.address, healthy.address], retry_for=5) as c:
        c["k"] = "v"
    assert cut_off.commands(b"SET") == 1 and healthy.commands(b"SET") == 1


def test_fails_over_from_a_dead_node_and_follows_the_leader(nodes: List[FakeNode]) -> None:
    values = {b"k": b"v"}
    leader = FakeNode(lambda args: b"$1\r\nv\r\n" if args[0] == b"GET" else b"-ERR unexpected\r\n")
    follower_answers: Handler = lambda args: (  # noqa: E731
        b"*3\r\n:3\r\n$9\r\nraft-addr\r\n$%d\r\n%s\r\n" % (len(leader.address), leader.address.encode())
        if args[0] == b"RAFT"
        else b"$-1\r\n"
    )
    follower = FakeNode(follower_answers)
    nodes += [leader, follower]
    with quorumkv.Client([dead_address(), follower.address]) as c:
        assert c["k"] == values[b"k"]
    # The follower was asked who leads, and the read went to the leader.
    assert follower.commands(b"RAFT") == 1 and follower.commands(b"GET") == 0
    assert leader.commands(b"GET") == 1


def test_moved_redirects(nodes: List[FakeNode]) -> None:
    target = FakeNode(lambda args: b":1\r\n" if args[0] == b"DEL" else NO_LEADER)
    nodes.append(target)
    nodes.append(FakeNode(lambda args: b"-MOVED 0 %s\r\n" % target.address.encode() if args[0] == b"DEL" else NO_LEADER))
    with quorumkv.Client([nodes[1].address]) as c:
        del c["k"]
    assert target.commands(b"DEL") == 1


def test_persistent_not_leader_raises_not_leader_error(nodes: List[FakeNode]) -> None:
    # Node 2 names node 3 as leader, but cannot say where it is.
    nodes.append(
        FakeNode(
            lambda args: b"*3\r\n:3\r\n$9\r\nraft-addr\r\n$0\r\n\r\n"
            if args[0] == b"RAFT"
            else b"-TRYAGAIN node 2 is not the leader (leader: 3)\r\n"
        )
    )
    with quorumkv.Client([nodes[0].address], retry_for=0.3) as c:
        with pytest.raises(quorumkv.NotLeaderError) as info:
            c["k"] = "v"
    assert info.value.leader == 3
    assert isinstance(info.value, quorumkv.Error)


def test_real_errors_are_not_retried(nodes: List[FakeNode]) -> None:
    nodes.append(FakeNode(lambda args: NO_LEADER if args[0] == b"RAFT" else b"-ERR value is not an integer\r\n"))
    with quorumkv.Client([nodes[0].address]) as c:
        with pytest.raises(quorumkv.ReplyError) as info:
            c.execute("INCR", "k")
    assert info.value.code == "ERR" and "not an integer" in str(info.value)
    assert nodes[0].commands(b"INCR") == 1


def test_all_nodes_down_times_out() -> None:
    c = quorumkv.Client([dead_address(), dead_address()], retry_for=0.5, timeout=0.5)
    start = time.monotonic()
    with pytest.raises(quorumkv.TimeoutError) as info:
        c["k"]
    assert isinstance(info.value, TimeoutError)  # the builtin, too
    assert "Connection refused" in str(info.value)
    assert time.monotonic() - start < 5
    assert c.status()[c.addresses[0]]["error"]
    c.close()
    with pytest.raises(quorumkv.ClosedError):
        c["k"]
    with pytest.raises(ValueError):
        quorumkv.Client([])


def test_a_lost_answer_is_resent_in_the_same_session(nodes: List[FakeNode]) -> None:
    dropper = FakeNode(lambda args: NO_LEADER if args[0] == b"RAFT" else None, session_id=7)
    answerer = FakeNode(lambda args: NO_LEADER if args[0] == b"RAFT" else b":5\r\n", session_id=8)
    nodes += [dropper, answerer]
    with quorumkv.Client([dropper.address, answerer.address]) as c:
        assert c.incr("counter") == 5
        assert c.session_id == 7
        assert c.incr("counter") == 5
    # The same session and sequence number both times; the next write acknowledges it.
    assert dropper.runs == [(7, 1, 0)]
    assert answerer.runs == [(7, 1, 0), (7, 2, 1)]


def test_without_sessions_a_lost_answer_is_outcome_unknown(nodes: List[FakeNode]) -> None:
    dropper = FakeNode(lambda args: NO_LEADER if args[0] == b"RAFT" else None)
    answerer = FakeNode(lambda args: NO_LEADER if args[0] == b"RAFT" else b":5\r\n")
    nodes += [dropper, answerer]
    with quorumkv.Client([dropper.address, answerer.address], sessions=False) as c:
        with pytest.raises(quorumkv.OutcomeUnknown) as info:
            c.incr("counter")
        assert isinstance(info.value, quorumkv.Error)
        assert not isinstance(info.value, quorumkv.TimeoutError)
        assert c.session_id is None
        # A read is simply asked again, elsewhere.
        assert c.execute("EXISTS", "counter") == 5
    assert dropper.commands(b"INCRBY") == 1 and answerer.commands(b"INCRBY") == 0
    assert dropper.runs == []


def test_async_client_runs_off_the_event_loop(nodes: List[FakeNode]) -> None:
    values = {b"k": b"v"}

    def handler(args: List[bytes]) -> Optional[bytes]:
        if args[0] == b"RAFT":
            return NO_LEADER
        if args[0] == b"GET":
            time.sleep(0.3)  # a slow node
            value = values.get(args[1])
            return b"$-1\r\n" if value is None else b"$%d\r\n%s\r\n" % (len(value), value)
        if args[0] == b"SET":
            values[args[1]] = args[2]
            return b"+OK\r\n"
        return b"-ERR value is not an integer or out of range\r\n"

    nodes.append(FakeNode(handler))

    async def main() -> None:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        async with quorumkv.AsyncClient([nodes[0].address]) as c:
            task = asyncio.ensure_future(ticker())
            assert await c.get("k") == b"v"
            assert ticks >= 10, "the event loop was blocked while the call waited"
            task.cancel()
            await c.set("n", "1")
            assert await c.get("n") == b"1" and await c.get("zz", b"d") == b"d"
            # Calls made concurrently run one at a time, each answered.
            got = await asyncio.gather(c.get("k"), c.get("n"))
            assert list(got) == [b"v", b"1"]
            with pytest.raises(quorumkv.ReplyError) as info:
                await c.incr("k")
            assert info.value.code == "ERR"
        assert c.closed
        with pytest.raises(quorumkv.ClosedError):
            await c.get("k")

    asyncio.run(main())
