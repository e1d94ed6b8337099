"""quorumkv.Client's retry, failover and error mapping, against scripted fake RESP nodes."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from typing import Callable, Iterator, List

import pytest

import quorumkv

Handler = Callable[[List[bytes]], bytes]


class FakeNode:
    """A RESP2 server on loopback that answers each command with ``handler(args)``."""

    def __init__(self, handler: Handler) -> None:
        self.calls: List[List[bytes]] = []
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
                    node.calls.append(args)
                    self.wfile.write(handler(args))

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
