"""``quorumkv.Client`` and ``quorumkv.AsyncClient``: clients of a QuorumKV cluster.

Both wrap the Rust cluster client (kv-node's ``ClusterClient``, through
``quorumkv._native.ClusterClient``), the same one the ``kv`` CLI and a joining node use; there
is no second RESP codec or retry policy here. It finds the leader from structured replies
(``RAFT LEADER``, ``-MOVED``), fails over to the next address when a node is down, backs off
while there is no leader, and runs every write through a client session (``SESSION RUN id seq
acked ...``): a write whose answer was lost is resent with the same session and sequence
number, which the cluster applies at most once, so a retried ``INCR`` or ``APPEND`` counts once.

Failures are split the way the Rust client splits them: the command certainly did not take
effect (:class:`ReplyError`, :class:`quorumkv.TimeoutError`, :class:`quorumkv.NotLeaderError`),
or it may have (:class:`quorumkv.OutcomeUnknown`). The native calls release the GIL while they
wait; :class:`AsyncClient` runs them in a thread executor.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl as _ssl
from concurrent.futures import Executor
from datetime import timedelta
from types import TracebackType
from typing import (
    Any,
    AsyncIterator,
    Callable,
    Dict,
    Awaitable,
    Iterator,
    List,
    Literal,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
    overload,
)

from . import _native
from ._errors import ClosedError, Error, InvalidArgumentError, ReplyError
from ._transaction import (
    AsyncPipeline,
    AsyncTransaction,
    Pipeline,
    PipelineReply,
    Revisioned,
    Transaction,
    revisioned,
    run_async_transaction,
    run_transaction,
)
from ._util import BytesLike, bounds, to_bytes, ttl_ms
from ._watch import AsyncWatch, Watch

__all__ = ["AsyncClient", "Client", "ReplyError"]

_T = TypeVar("_T")
_MISSING: Any = object()
_SCAN_COUNT = 1000

Reply = Union[None, int, bytes, str, List[Any]]
"""A decoded RESP2 reply: status text, an integer, a bulk string, nil or an array."""


def _system_ca_file() -> str:
    paths = _ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and os.path.isfile(candidate):
            return candidate
    raise InvalidArgumentError("ssl=True needs ssl_ca_certs: no system CA bundle was found")


class Client:
    """A client of a QuorumKV cluster, used like a ``dict`` (as :class:`quorumkv.Store`).

    ``addresses`` are the nodes' client (RESP) addresses, ``"host:port"``; leaders it learns
    of are added. Each call finds a working node, preferring the leader; it retries while
    there is no leader and fails over to the next address when a node is down, until
    ``retry_for`` seconds have passed, then raises :class:`quorumkv.TimeoutError` (or
    :class:`quorumkv.NotLeaderError` when a node named a leader it could not reach).
    ``timeout`` bounds each network wait.

    Writes run through a client session (``sessions=True``, the default): one whose answer is
    lost is resent, with the same sequence number, until an answer comes, and the cluster
    applies it exactly once. A write that may or may not have taken effect raises
    :class:`quorumkv.OutcomeUnknown` (without sessions: whenever its answer is lost).

    ``password`` (default: the ``QUORUMKV_PASSWORD`` environment variable) is sent with
    ``AUTH`` on every new connection. ``ssl=True`` connects with TLS, verifying the nodes'
    certificates against ``ssl_ca_certs`` (default: the system's CA bundle); ``ssl_certfile``
    and ``ssl_keyfile`` present a client certificate (nodes started with
    ``--tls-auth-clients yes``). The names are redis-py's.

    One command runs at a time: calls from several threads are serialized. For concurrency
    give each thread its own client (each has its own session).
    """

    def __init__(
        self,
        addresses: Union[str, Sequence[str]],
        *,
        timeout: float = 5.0,
        retry_for: float = 15.0,
        password: Optional[str] = None,
        ssl: bool = False,
        ssl_ca_certs: Optional[str] = None,
        ssl_certfile: Optional[str] = None,
        ssl_keyfile: Optional[str] = None,
        sessions: bool = True,
    ) -> None:
        if isinstance(addresses, str):
            addresses = [addresses]
        if not addresses:
            raise ValueError("a Client needs at least one node address")
        self.timeout = timeout
        self.retry_for = retry_for
        if password is None:
            password = os.environ.get("QUORUMKV_PASSWORD")
        ca_file: Optional[str] = None
        if ssl or ssl_ca_certs is not None:
            ca_file = ssl_ca_certs if ssl_ca_certs is not None else _system_ca_file()
        self._native = _native.ClusterClient(
            list(addresses),
            timeout=timeout,
            retry_for=retry_for,
            password=password,
            ca_file=ca_file,
            cert_file=ssl_certfile,
            key_file=ssl_keyfile,
            sessions=sessions,
        )

    @property
    def addresses(self) -> List[str]:
        """The nodes' addresses: those given, then leaders learned of."""
        return self._native.addresses

    @property
    def session_id(self) -> Optional[int]:
        """The id of the client session on the cluster, once a write has opened one."""
        return self._native.session_id

    def execute(self, *args: BytesLike) -> Reply:
        """Sends one command (e.g. ``execute("INCR", "k")``) with the retries described in
        the class docs and returns the reply: ``str`` for status replies, ``bytes``, ``int``,
        ``None`` or a list. An error reply raises :class:`ReplyError`."""
        reply: Reply = self._native.execute([to_bytes(a, "argument") for a in args])
        return reply

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

    def incr(self, key: BytesLike, amount: int = 1) -> int:
        """Adds ``amount`` to the integer at ``key`` (absent: 0) and returns the result
        (``INCRBY``); exactly once, even when retried after a lost answer."""
        return _int(self.execute(b"INCRBY", to_bytes(key), str(int(amount)).encode()))

    def compare_and_swap(self, key: BytesLike, expected: Optional[BytesLike], new: Optional[BytesLike]) -> bool:
        """Atomically, on the leader: if ``key`` holds ``expected`` (``None``: is absent), sets
        it to ``new`` (``None``: deletes it). Returns whether it did (``CAS``; a retry after a
        lost answer gets the first attempt's answer)."""
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

    # -- revisions, watches and transactions ----------------------------------------------

    def get_revision(self, key: BytesLike) -> Revisioned:
        """``key``'s value with the revision of its last change and the store's revision
        (``GETREV``, linearizable). ``watch(prefix, since=result.revision)`` then sees every
        change after the read: no gap, no repeat."""
        return revisioned(self.execute(b"GETREV", to_bytes(key)))

    def watch(self, prefix: BytesLike = b"", *, since: Optional[int] = None) -> Watch:
        """Every change to keys starting with ``prefix`` after revision ``since`` (default:
        the current one), in commit order: ``for event in client.watch("user:"): ...`` yields
        :class:`quorumkv.WatchEvent` objects. When its node fails it resumes on another from
        the last change yielded, missing and repeating nothing. See :class:`quorumkv.Watch`."""
        if since is not None and since < 0:
            raise ValueError(f"since must be a revision (>= 0), not {since}")
        return Watch(self._native.watch(to_bytes(prefix, "prefix"), since))

    def pipeline(self, transaction: bool = True) -> Pipeline:
        """Commands queued now and sent by ``execute()``; with ``transaction=True`` (the
        default) as one atomic transaction. See :class:`quorumkv.Pipeline`."""
        return Pipeline(self, transaction)

    @overload
    def transaction(
        self,
        func: Callable[[Transaction], Any],
        *watch_keys: BytesLike,
        value_from_callable: Literal[False] = False,
    ) -> List[PipelineReply]: ...

    @overload
    def transaction(
        self, func: Callable[[Transaction], _T], *watch_keys: BytesLike, value_from_callable: Literal[True]
    ) -> _T: ...

    def transaction(
        self, func: Callable[[Transaction], Any], *watch_keys: BytesLike, value_from_callable: bool = False
    ) -> Any:
        """Optimistic concurrency, as redis-py's ``Redis.transaction``: on a connection pinned
        to the leader, ``WATCH`` the keys, call ``func(tx)`` (it reads with ``tx.get`` and
        queues writes with ``tx.set``, ``tx.incr``, ...), then ``EXEC`` them as one atomic
        transaction. If a watched key changed meanwhile nothing is applied and it starts over
        (``func`` runs again); likewise, with backoff and a new connection, when the
        transaction was interrupted before ``EXEC`` was sent. Returns ``EXEC``'s replies (or
        ``func``'s value with ``value_from_callable=True``); a command that failed inside
        raises its :class:`ReplyError` after the others took effect.

        >>> def add_one(tx: quorumkv.Transaction) -> None:        # doctest: +SKIP
        ...     n = int(tx.get("counter") or 0)
        ...     tx.set("counter", str(n + 1))
        >>> client.transaction(add_one, "counter")                  # doctest: +SKIP
        ['OK']
        """
        keys = [to_bytes(k) for k in watch_keys]
        value, replies = run_transaction(self._native, self.retry_for, func, keys)
        for reply in replies:
            if isinstance(reply, ReplyError):
                raise reply
        return value if value_from_callable else replies

    # -- the cluster -----------------------------------------------------------------------

    def status(self) -> Dict[str, Dict[str, Any]]:
        """Each node's view of the cluster, by address (``RAFT STATUS``, a map): ``node_id,
        role, term, leader_id, leader_raft_addr, leader_client_addr, last_log_index,
        commit_index, applied_index, snapshot_index, purged_index`` (``int``, ``str`` or
        ``None`` while no leader is known) and ``voters, learners`` (lists of ``(id,
        raft_addr, client_addr)``), or ``{"error": text}`` for a node that could not be
        asked."""
        result: Dict[str, Dict[str, Any]] = {}
        for address in self.addresses:
            try:
                reply = self._native.execute_on(address, [b"RAFT", b"STATUS"])
            except ClosedError:
                raise
            except Error as e:
                result[address] = {"error": str(e) or type(e).__name__}
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

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._native.closed

    def close(self) -> None:
        """Ends the client session on the cluster and closes every connection. Idempotent."""
        self._native.close()

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


class AsyncClient:
    """:class:`Client` for asyncio: the same methods as coroutines (the mapping operators
    become :meth:`get` / :meth:`set` / :meth:`delete` / :meth:`contains` / :meth:`size`), and
    :meth:`keys`, :meth:`values`, :meth:`items` as async iterators.

    Each call runs the native client's blocking call in ``executor`` (default: the loop's
    default thread pool) with the GIL released, so the event loop never blocks on the
    network. Calls on one client run one at a time, in the order they were made; for
    concurrent commands use several clients. Arguments are :class:`Client`'s.

    Cancelling a call does not recall a command already sent: it runs to completion in its
    thread (a write takes effect at most once) and its result is dropped.
    """

    def __init__(
        self,
        addresses: Union[str, Sequence[str]],
        *,
        timeout: float = 5.0,
        retry_for: float = 15.0,
        password: Optional[str] = None,
        ssl: bool = False,
        ssl_ca_certs: Optional[str] = None,
        ssl_certfile: Optional[str] = None,
        ssl_keyfile: Optional[str] = None,
        sessions: bool = True,
        executor: Optional[Executor] = None,
    ) -> None:
        self._client = Client(
            addresses,
            timeout=timeout,
            retry_for=retry_for,
            password=password,
            ssl=ssl,
            ssl_ca_certs=ssl_ca_certs,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
            sessions=sessions,
        )
        self._executor = executor
        self._lock: Optional[asyncio.Lock] = None

    async def _run(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        if self._lock is None:
            self._lock = asyncio.Lock()  # created inside the running loop
        loop = asyncio.get_running_loop()
        async with self._lock:
            return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def _iterate(self, iterator: Iterator[_T]) -> AsyncIterator[_T]:
        while True:
            item = await self._run(next, iterator, _MISSING)
            if item is _MISSING:
                return
            yield item

    @property
    def addresses(self) -> List[str]:
        """The nodes' addresses: those given, then leaders learned of."""
        return self._client.addresses

    @property
    def session_id(self) -> Optional[int]:
        """The id of the client session on the cluster, once a write has opened one."""
        return self._client.session_id

    async def execute(self, *args: BytesLike) -> Reply:
        """:meth:`Client.execute`."""
        return await self._run(self._client.execute, *args)

    async def get(self, key: BytesLike, default: Optional[_T] = None) -> Union[bytes, _T, None]:
        """The value at ``key``, or ``default``."""
        return await self._run(self._client.get, key, default)

    async def set(self, key: BytesLike, value: BytesLike, *, ttl: Union[float, timedelta, None] = None) -> None:
        """Sets ``key`` to ``value``, expiring after ``ttl`` if given."""
        await self._run(self._client.set, key, value, ttl=ttl)

    async def delete(self, key: BytesLike) -> None:
        """Removes ``key``; ``KeyError`` if absent (``del client[key]``)."""
        await self._run(self._client.__delitem__, key)

    async def contains(self, key: BytesLike) -> bool:
        """Whether ``key`` is present (``key in client``)."""
        return await self._run(self._client.__contains__, key)

    async def size(self) -> int:
        """The number of keys (``len(client)``)."""
        return await self._run(self._client.__len__)

    @overload
    async def pop(self, key: BytesLike) -> bytes: ...

    @overload
    async def pop(self, key: BytesLike, default: _T) -> Union[bytes, _T]: ...

    async def pop(self, key: BytesLike, default: object = _MISSING) -> object:
        """:meth:`Client.pop`."""
        if default is _MISSING:
            return await self._run(self._client.pop, key)
        return await self._run(self._client.pop, key, default)

    async def incr(self, key: BytesLike, amount: int = 1) -> int:
        """:meth:`Client.incr`."""
        return await self._run(self._client.incr, key, amount)

    async def compare_and_swap(self, key: BytesLike, expected: Optional[BytesLike], new: Optional[BytesLike]) -> bool:
        """:meth:`Client.compare_and_swap`."""
        return await self._run(self._client.compare_and_swap, key, expected, new)

    async def setdefault(self, key: BytesLike, default: BytesLike) -> bytes:
        """:meth:`Client.setdefault`."""
        return await self._run(self._client.setdefault, key, default)

    def keys(
        self,
        prefix: Optional[BytesLike] = None,
        start: Optional[BytesLike] = None,
        end: Optional[BytesLike] = None,
    ) -> AsyncIterator[bytes]:
        """Keys in order: ``async for key in client.keys(prefix=...)``."""
        return self._iterate(self._client.keys(prefix, start, end))

    def values(
        self,
        prefix: Optional[BytesLike] = None,
        start: Optional[BytesLike] = None,
        end: Optional[BytesLike] = None,
    ) -> AsyncIterator[bytes]:
        """Values in key order."""
        return self._iterate(self._client.values(prefix, start, end))

    def items(
        self,
        prefix: Optional[BytesLike] = None,
        start: Optional[BytesLike] = None,
        end: Optional[BytesLike] = None,
    ) -> AsyncIterator[Tuple[bytes, bytes]]:
        """``(key, value)`` pairs in key order (:meth:`Client.items`)."""
        return self._iterate(self._client.items(prefix, start, end))

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.keys()

    async def get_revision(self, key: BytesLike) -> Revisioned:
        """:meth:`Client.get_revision`."""
        return await self._run(self._client.get_revision, key)

    def watch(self, prefix: BytesLike = b"", *, since: Optional[int] = None) -> AsyncWatch:
        """:meth:`Client.watch` as an async iterator: ``async for event in client.watch(p)``.
        It has its own connection: other calls on this client go on meanwhile."""
        watch = self._client.watch(prefix, since=since)
        return AsyncWatch(watch._native, self._executor)

    def pipeline(self, transaction: bool = True) -> AsyncPipeline:
        """:meth:`Client.pipeline`; ``await p.execute()``."""
        return AsyncPipeline(self._run, self._client, transaction)

    @overload
    async def transaction(
        self,
        func: Callable[[AsyncTransaction], Awaitable[Any]],
        *watch_keys: BytesLike,
        value_from_callable: Literal[False] = False,
    ) -> List[PipelineReply]: ...

    @overload
    async def transaction(
        self,
        func: Callable[[AsyncTransaction], Awaitable[_T]],
        *watch_keys: BytesLike,
        value_from_callable: Literal[True],
    ) -> _T: ...

    async def transaction(
        self,
        func: Callable[[AsyncTransaction], Awaitable[Any]],
        *watch_keys: BytesLike,
        value_from_callable: bool = False,
    ) -> Any:
        """:meth:`Client.transaction` with an async ``func``: ``await tx.get(k)`` reads at once,
        ``tx.set(k, v)`` queues. Its pinned connection is its own: other calls on this client
        go on meanwhile."""
        keys = [to_bytes(k) for k in watch_keys]
        native = self._client._native
        value, replies = await run_async_transaction(native, self._client.retry_for, self._executor, func, keys)
        for reply in replies:
            if isinstance(reply, ReplyError):
                raise reply
        return value if value_from_callable else replies

    async def status(self) -> Dict[str, Dict[str, Any]]:
        """:meth:`Client.status`."""
        return await self._run(self._client.status)

    async def leader(self) -> Optional[str]:
        """:meth:`Client.leader`."""
        return await self._run(self._client.leader)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._client.closed

    async def close(self) -> None:
        """Ends the client session and closes every connection. Idempotent."""
        await self._run(self._client.close)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<quorumkv.AsyncClient {self.addresses!r}>"


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
