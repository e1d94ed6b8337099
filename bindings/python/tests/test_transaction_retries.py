"""The transaction loops' error paths, against a scripted fake node (a few lines of RESP on a
loopback socket): a transaction interrupted before EXEC (``-TRYAGAIN``) starts over on a
new connection and calls the function again; an EXEC whose answer is lost is
``OutcomeUnknown`` and is not sent again."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Callable, Iterator, List, Optional

import pytest
from test_client_cluster import free_ports

import quorumkv

Handler = Callable[[List[bytes]], Optional[bytes]]
"""A command to the RESP bytes to answer (``None``: close the connection)."""


class FakeNode:
    """Answers each command with ``handler(command)``; records the commands."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.commands: List[List[bytes]] = []
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", free_ports(1)[0]))
        self.listener.listen()
        self.address = "%s:%d" % self.listener.getsockname()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as reader:
            while True:
                header = reader.readline()
                if not header.startswith(b"*"):
                    return
                command = []
                for _ in range(int(header[1:])):
                    size = int(reader.readline()[1:])
                    command.append(reader.read(size + 2)[:-2])
                self.commands.append(command)
                answer = self.handler(command)
                if answer is None:
                    return
                conn.sendall(answer)

    def count(self, name: bytes) -> int:
        return sum(1 for c in self.commands if c[0] == name)

    def close(self) -> None:
        self.listener.close()


LEADER_ITSELF = b"*3\r\n:1\r\n$4\r\nraft\r\n$0\r\n\r\n"


def transactions(exec_answers: List[Optional[bytes]]) -> Handler:
    """A node that runs transactions: each EXEC answers the next of ``exec_answers``."""

    def handler(command: List[bytes]) -> Optional[bytes]:
        name = command[0]
        if name == b"RAFT":
            return LEADER_ITSELF
        if name in (b"WATCH", b"MULTI"):
            return b"+OK\r\n"
        if name == b"GET":
            return b"$1\r\n5\r\n"
        if name == b"EXEC":
            return exec_answers.pop(0)
        return b"+QUEUED\r\n"

    return handler


@pytest.fixture
def flaky() -> Iterator[FakeNode]:
    node = FakeNode(transactions([b"-TRYAGAIN no leader is known\r\n", b"*1\r\n+OK\r\n"]))
    yield node
    node.close()


def test_an_interrupted_transaction_starts_over(flaky: FakeNode) -> None:
    calls = 0

    def set_six(tx: quorumkv.Transaction) -> None:
        nonlocal calls
        calls += 1
        tx.set("k", str(int(tx.get("k") or 0) + 1))

    with quorumkv.Client([flaky.address], retry_for=5) as c:
        assert c.transaction(set_six, "k") == ["OK"]
    assert calls == 2 and flaky.count(b"EXEC") == 2 and flaky.count(b"WATCH") == 2
    assert [b"SET", b"k", b"6"] in flaky.commands


def test_an_interrupted_async_transaction_starts_over(flaky: FakeNode) -> None:
    async def main() -> None:
        async def set_six(tx: quorumkv.AsyncTransaction) -> None:
            tx.set("k", str(int(await tx.get("k") or 0) + 1))

        async with quorumkv.AsyncClient([flaky.address], retry_for=5) as c:
            assert await c.transaction(set_six, "k") == ["OK"]

    asyncio.run(main())
    assert flaky.count(b"EXEC") == 2


def test_a_lost_exec_answer_is_outcome_unknown_and_not_resent() -> None:
    node = FakeNode(transactions([None, None]))
    try:
        with quorumkv.Client([node.address], retry_for=5) as c:
            with pytest.raises(quorumkv.OutcomeUnknown):
                c.pipeline().set("k", "v").execute()
            assert node.count(b"EXEC") == 1
            with pytest.raises(quorumkv.OutcomeUnknown):
                c.transaction(lambda tx: tx.set("k", "v"), "k")
    finally:
        node.close()
    assert node.count(b"EXEC") == 2


def test_backoff_doubles_up_to_its_cap_and_ends_before_the_deadline() -> None:
    from quorumkv._transaction import _Backoff

    now = [100.0]
    backoff = _Backoff(3.0, clock=lambda: now[0])
    delays = []
    while (delay := backoff.next()) is not None:
        delays.append(delay)
        now[0] += delay
    assert delays == [0.02, 0.04, 0.08, 0.16, 0.32, 0.5, 0.5, 0.5, 0.5]
    assert now[0] <= 103.0
