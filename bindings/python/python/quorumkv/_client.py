"""``quorumkv.Client``: a cluster client speaking RESP2 (the Redis protocol) to kv-node.

It carries its own small RESP2 codec rather than depending on redis-py: the client needs
exactly five reply types and three commands' worth of framing, and owning the socket loop is
what lets it tell a dead node (connection refused, reset, timed out: fail over to the next
address) from a node that answers ``-TRYAGAIN`` (no leader yet: back off and retry) from a
real error (``-ERR``: raise), and map each onto ``quorumkv.Error`` without translating
another library's exception tree. The wheel thereby has no runtime dependencies.

Any node accepts any command (followers forward to the leader), but the client prefers the
leader: it asks ``RAFT LEADER`` when it connects and after a retryable error, and sends there.

Retries: a command that failed without an answer (the connection broke) is sent again, to the
next node. A write whose answer was lost may have taken effect; SET and DEL are idempotent, so
resending them is harmless, but a resent ``pop`` may find the key already gone.
"""

from __future__ import annotations

import os
import socket
import ssl as _ssl
import time
from datetime import timedelta
from types import TracebackType
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Type, TypeVar, Union, overload

from ._errors import ClosedError, Error, NotLeaderError, TimeoutError
from ._util import BytesLike, bounds, to_bytes, ttl_ms

__all__ = ["Client", "ReplyError"]

_T = TypeVar("_T")
_MISSING = object()
_SCAN_COUNT = 1000
_MAX_LINE = 64 * 1024


class ReplyError(Error):
    """An error reply from a node (``-CODE text``): ``code`` is its first word."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.code = text.split(" ", 1)[0]


Reply = Union[None, int, bytes, str, ReplyError, List[Any]]
"""A decoded RESP2 reply: status text, an error, an integer, a bulk string, nil or an array."""


class _Connection:
    """One TCP connection and a buffered RESP2 reader."""

    def __init__(self, address: str, timeout: float, ssl_context: Optional[_ssl.SSLContext] = None) -> None:
        host, _, port = address.rpartition(":")
        host = host.strip("[]")
        sock = socket.create_connection((host, int(port)), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ssl_context is not None:
            try:
                sock = ssl_context.wrap_socket(sock, server_hostname=host)
            except BaseException:
                sock.close()
                raise
        self.sock = sock
        self.buf = bytearray()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def call(self, args: Sequence[bytes]) -> Reply:
        out = bytearray(b"*%d\r\n" % len(args))
        for arg in args:
            out += b"$%d\r\n%s\r\n" % (len(arg), arg)
        self.sock.sendall(out)
        return self._read()

    def _line(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[: end + 2]
                return line
            if len(self.buf) > _MAX_LINE:
                raise ConnectionError("protocol error: reply line too long")
            self._fill()

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by the node")
        self.buf += chunk

    def _read(self) -> Reply:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode("utf-8", "replace")
        if kind == b"-":
            return ReplyError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data = bytes(self.buf[:n])
            del self.buf[: n + 2]
            return data
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise ConnectionError(f"protocol error: unexpected reply {line[:40]!r}")


class Client:
    """A client of a QuorumKV cluster, used like a ``dict`` (as :class:`quorumkv.Store`).

    ``addresses`` are the nodes' client (RESP) addresses, ``"host:port"``. Each call finds a
    working node, preferring the leader; it retries ``-TRYAGAIN`` answers and fails over to
    the next address when a node is down, until ``retry_for`` seconds have passed, then raises
    :class:`quorumkv.TimeoutError` (or :class:`quorumkv.NotLeaderError` when the nodes kept
    saying they are not the leader). ``timeout`` bounds each network wait.

    ``password`` (default: the ``QUORUMKV_PASSWORD`` environment variable) is sent with
    ``AUTH`` on every new connection. ``ssl=True`` connects with TLS, verifying the nodes'
    certificates against ``ssl_ca_certs`` (default: the system's CAs); ``ssl_certfile`` and
    ``ssl_keyfile`` present a client certificate (nodes started with
    ``--tls-auth-clients yes``). The names are redis-py's.

    Not safe to share between threads: give each thread its own client.
    """

    def __init__(
        self,
        addresses: Sequence[str],
        *,
        timeout: float = 5.0,
        retry_for: float = 15.0,
        password: Optional[str] = None,
        ssl: bool = False,
        ssl_ca_certs: Optional[str] = None,
        ssl_certfile: Optional[str] = None,
        ssl_keyfile: Optional[str] = None,
    ) -> None:
        if isinstance(addresses, str):
            addresses = [addresses]
        if not addresses:
            raise ValueError("a Client needs at least one node address")
        self.addresses: List[str] = list(addresses)
        self.timeout = timeout
        self.retry_for = retry_for
        if password is None:
            password = os.environ.get("QUORUMKV_PASSWORD")
        self._password = password
        self._ssl: Optional[_ssl.SSLContext] = None
        if ssl or ssl_ca_certs is not None:
            context = _ssl.create_default_context(cafile=ssl_ca_certs)
            if ssl_certfile is not None:
                context.load_cert_chain(ssl_certfile, ssl_keyfile)
            self._ssl = context
        self._conns: Dict[str, _Connection] = {}
        self._current = 0
        self._closed = False

    # -- connections and retries -----------------------------------------------------------

    def _connect(self, address: str) -> _Connection:
        conn = self._conns.get(address)
        if conn is None:
            conn = _Connection(address, self.timeout, self._ssl)
            try:
                if self._password is not None:
                    reply = conn.call([b"AUTH", self._password.encode()])
                    if isinstance(reply, ReplyError):
                        raise reply
            except BaseException:
                conn.close()
                raise
            self._conns[address] = conn
        return conn

    def _drop(self, address: str) -> None:
        conn = self._conns.pop(address, None)
        if conn is not None:
            conn.close()

    def _follow_leader(self, address: str) -> Optional[int]:
        """Asks ``address`` who leads (``RAFT LEADER``: ``[id, raft address, client
        address]``); makes the leader's client address the current one. Returns its id."""
        try:
            reply = self._connect(address).call([b"RAFT", b"LEADER"])
        except (OSError, ConnectionError):
            self._drop(address)
            return None
        if not (isinstance(reply, list) and len(reply) == 3 and isinstance(reply[0], int)):
            return None
        if isinstance(reply[2], bytes) and reply[2]:
            leader = reply[2].decode()
            if leader not in self.addresses:
                self.addresses.append(leader)
            self._current = self.addresses.index(leader)
        return reply[0]

    def execute(self, *args: BytesLike) -> Reply:
        """Sends one command (e.g. ``execute("SET", "k", "v")``) with the retries described in
        the class docs and returns the reply: ``str`` for status replies, ``bytes``, ``int``,
        ``None`` or a list. An error reply that is not retryable raises :class:`ReplyError`."""
        if self._closed:
            raise ClosedError("the client is closed")
        command = [to_bytes(a, "argument") for a in args]
        deadline = time.monotonic() + self.retry_for
        delay = 0.02
        last: Optional[BaseException] = None
        leader_hint: Optional[int] = None
        while True:
            address = self.addresses[self._current % len(self.addresses)]
            try:
                if address not in self._conns:
                    # A node we are not connected to yet: ask it who leads, and go there.
                    self._follow_leader(address)
                    address = self.addresses[self._current % len(self.addresses)]
                reply = self._connect(address).call(command)
            except (OSError, ConnectionError) as e:
                # The node is down or the connection broke: try the next node.
                self._drop(address)
                self._current = (self._current + 1) % len(self.addresses)
                last = e
            else:
                if not isinstance(reply, ReplyError):
                    return reply
                if reply.code not in ("TRYAGAIN", "MOVED", "ASK", "CLUSTERDOWN", "LOADING", "MASTERDOWN"):
                    raise reply
                last = reply
                if reply.code in ("MOVED", "ASK"):
                    target = str(reply).split()[-1]
                    if target not in self.addresses:
                        self.addresses.append(target)
                    self._current = self.addresses.index(target)
                else:
                    # Go where this node says the leader is; if it knows of none (it may be cut
                    # off from the others), try the next node.
                    before = self._current
                    leader_hint = self._follow_leader(address) or leader_hint
                    if self._current == before:
                        self._current = (self._current + 1) % len(self.addresses)
            if time.monotonic() + delay > deadline:
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        message = f"{' '.join(a.decode('utf-8', 'replace') for a in command[:1])} failed for {self.retry_for}s: {last}"
        if isinstance(last, ReplyError) and "not the leader" in str(last):
            raise NotLeaderError(message, leader_hint)
        raise TimeoutError(message)

    # -- the mapping protocol --------------------------------------------------------------

    def __getitem__(self, key: BytesLike) -> bytes:
        value = self.execute(b"GET", to_bytes(key))
        if value is None:
            raise KeyError(key)
        return _bytes(value)

    def __setitem__(self, key: BytesLike, value: BytesLike) -> None:
        self.execute(b"SET", to_bytes(key), to_bytes(value, "value"))

    def __delitem__(self, key: BytesLike) -> None:
        if self.execute(b"DEL", to_bytes(key)) == 0:
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, (bytes, bytearray, memoryview, str)):
            return False
        return self.execute(b"EXISTS", to_bytes(key)) == 1

    def __len__(self) -> int:
        return _int(self.execute(b"DBSIZE"))

    def __iter__(self) -> Iterator[bytes]:
        return self.keys()

    def get(self, key: BytesLike, default: Optional[_T] = None) -> Union[bytes, _T, None]:
        """The value at ``key``, or ``default``."""
        value = self.execute(b"GET", to_bytes(key))
        return default if value is None else _bytes(value)

    @overload
    def pop(self, key: BytesLike) -> bytes: ...

    @overload
    def pop(self, key: BytesLike, default: _T) -> Union[bytes, _T]: ...

    def pop(self, key: BytesLike, default: object = _MISSING) -> object:
        """Removes ``key`` and returns its value (``GETDEL``); ``default`` or ``KeyError`` if
        absent."""
        value = self.execute(b"GETDEL", to_bytes(key))
        if value is not None:
            return _bytes(value)
        if default is _MISSING:
            raise KeyError(key)
        return default

    def set(self, key: BytesLike, value: BytesLike, *, ttl: Union[float, timedelta, None] = None) -> None:
        """Sets ``key`` to ``value``, expiring after ``ttl`` (seconds or ``timedelta``) if given."""
        args = [b"SET", to_bytes(key), to_bytes(value, "value")]
        if ttl is not None:
            args += [b"PX", str(ttl_ms(ttl)).encode()]
        self.execute(*args)

    def compare_and_swap(self, key: BytesLike, expected: Optional[BytesLike], new: Optional[BytesLike]) -> bool:
        """Atomically, on the leader: if ``key`` holds ``expected`` (``None``: is absent), sets
        it to ``new`` (``None``: deletes it). Returns whether it did. (``CAS``; if a retry
        follows a lost answer, a swap that did happen reports ``False``.)"""
        swapped, _ = self._cas(key, expected, new)
        return swapped

    def setdefault(self, key: BytesLike, default: BytesLike) -> bytes:
        """The value at ``key``; if absent, sets it to ``default`` first (atomically)."""
        value = to_bytes(default, "value")
        swapped, previous = self._cas(key, None, value)
        return value if swapped or previous is None else previous

    def _cas(
        self, key: BytesLike, expected: Optional[BytesLike], new: Optional[BytesLike]
    ) -> Tuple[bool, Optional[bytes]]:
        args = [b"CAS", to_bytes(key)]
        args += [b"IFABSENT"] if expected is None else [b"IFEQ", to_bytes(expected, "expected value")]
        args += [b"DEL"] if new is None else [b"SET", to_bytes(new, "new value")]
        reply = self.execute(*args)
        if not (isinstance(reply, list) and len(reply) == 2 and isinstance(reply[0], int)):
            raise Error(f"unexpected CAS reply {reply!r}")
        return reply[0] == 1, None if reply[1] is None else _bytes(reply[1])

    def keys(
        self,
        prefix: Optional[BytesLike] = None,
        start: Optional[BytesLike] = None,
        end: Optional[BytesLike] = None,
    ) -> Iterator[bytes]:
        """Keys in order (``SCAN``); see :meth:`items` for the arguments."""
        lo, hi = bounds(prefix, start, end)
        pattern = b"*" if prefix is None else _glob_escape(to_bytes(prefix, "prefix")) + b"*"
        cursor = b"0"
        while True:
            reply = self.execute(b"SCAN", cursor, b"MATCH", pattern, b"COUNT", str(_SCAN_COUNT).encode())
            if not (isinstance(reply, list) and len(reply) == 2 and isinstance(reply[1], list)):
                raise Error(f"unexpected SCAN reply {reply!r}")
            cursor = _bytes(reply[0])
            for key in reply[1]:
                key = _bytes(key)
                if hi is not None and key >= hi:
                    return
                if lo is None or key >= lo:
                    yield key
            if cursor == b"0":
                return

    def values(
        self,
        prefix: Optional[BytesLike] = None,
        start: Optional[BytesLike] = None,
        end: Optional[BytesLike] = None,
    ) -> Iterator[bytes]:
        """Values in key order; see :meth:`items`."""
        return (value for _, value in self.items(prefix, start, end))

    def items(
        self,
        prefix: Optional[BytesLike] = None,
        start: Optional[BytesLike] = None,
        end: Optional[BytesLike] = None,
    ) -> Iterator[Tuple[bytes, bytes]]:
        """``(key, value)`` pairs in key order, for keys that start with ``prefix``, are
        ``>= start`` and ``< end``. Not a snapshot: a key deleted while iterating is skipped."""
        for key in self.keys(prefix, start, end):
            value = self.execute(b"GET", key)
            if value is not None:
                yield key, _bytes(value)

    # -- the cluster -----------------------------------------------------------------------

    def status(self) -> Dict[str, Dict[str, Any]]:
        """Each node's view of the cluster, by address (``RAFT STATUS``, a map): ``node_id,
        role, term, leader_id, leader_raft_addr, leader_client_addr, last_log_index,
        commit_index, applied_index, snapshot_index, purged_index`` (``int``, ``str`` or
        ``None`` while no leader is known) and ``voters, learners`` (lists of ``(id,
        raft_addr, client_addr)``), or ``{"error": text}`` for a node that could not be
        asked."""
        result: Dict[str, Dict[str, Any]] = {}
        for address in list(self.addresses):
            try:
                reply = self._connect(address).call([b"RAFT", b"STATUS"])
            except (OSError, ConnectionError) as e:
                self._drop(address)
                result[address] = {"error": str(e) or type(e).__name__}
                continue
            if isinstance(reply, ReplyError):
                result[address] = {"error": str(reply)}
                continue
            if not (isinstance(reply, list) and len(reply) % 2 == 0):
                result[address] = {"error": f"unexpected RAFT STATUS reply {reply!r}"}
                continue
            fields: Dict[str, Any] = {}
            for name, value in zip(reply[0::2], reply[1::2]):
                fields[_bytes(name).decode()] = _status_value(value)
            result[address] = fields
        return result

    def leader(self) -> Optional[str]:
        """The client address of the leader, as some reachable node knows it."""
        for fields in self.status().values():
            addr = fields.get("leader_client_addr")
            if addr:
                return str(addr)
        return None

    def close(self) -> None:
        """Closes every connection. Idempotent."""
        self._closed = True
        for address in list(self._conns):
            self._drop(address)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<quorumkv.Client {self.addresses!r}>"


def _bytes(reply: Reply) -> bytes:
    if isinstance(reply, bytes):
        return reply
    if isinstance(reply, str):
        return reply.encode()
    raise Error(f"unexpected reply {reply!r}")


def _status_value(value: Reply) -> Any:
    """A RAFT STATUS field: text decoded; members as ``(id, raft_addr, client_addr)``."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return [
            (m[0], _bytes(m[1]).decode(), _bytes(m[2]).decode())
            for m in value
            if isinstance(m, list) and len(m) == 3 and isinstance(m[0], int)
        ]
    return value


def _int(reply: Reply) -> int:
    if isinstance(reply, int):
        return reply
    raise Error(f"unexpected reply {reply!r}")


def _glob_escape(literal: bytes) -> bytes:
    out = bytearray()
    for b in literal:
        if b in b"*?[]\\":
            out.append(0x5C)
        out.append(b)
    return bytes(out)
