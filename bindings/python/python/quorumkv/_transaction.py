"""Transactions from Python: :class:`Pipeline` (``MULTI`` .. ``EXEC`` as one Raft log entry)
and :class:`Transaction`, the pinned connection that :meth:`quorumkv.Client.transaction`
hands to its function (redis-py's optimistic ``WATCH`` loop); :class:`AsyncPipeline` and
:class:`AsyncTransaction` for :class:`quorumkv.AsyncClient`.

The Rust client does the work (kv-node's ``client::Transaction``): every command of one
transaction goes over one connection pinned to the leader; a transaction interrupted before
``EXEC`` was sent (:class:`quorumkv.TransactionInterrupted`: nothing applied) starts over on a
new connection, while one whose ``EXEC`` may have arrived is never resent
(:class:`quorumkv.OutcomeUnknown`).

>>> with client.pipeline() as p:                       # doctest: +SKIP
...     p.set("greeting", "hello").incr("visits")
...     p.execute()
['OK', 1]
"""

from __future__ import annotations

import asyncio
import functools
import time
from concurrent.futures import Executor
from datetime import timedelta
from types import TracebackType
from typing import Any, Awaitable, Callable, List, NamedTuple, Optional, Type, TypeVar, Union

from . import _native
from ._errors import ReplyError, TransactionInterrupted, WatchError
from ._util import BytesLike, to_bytes, ttl_ms

__all__ = [
    "AsyncPipeline",
    "AsyncTransaction",
    "Pipeline",
    "PipelineReply",
    "Revisioned",
    "Transaction",
]

_T = TypeVar("_T")
_R = TypeVar("_R")
_Q = TypeVar("_Q", bound="_Queue")

PipelineReply = Union[None, int, bytes, str, List[Any], ReplyError]
"""One command's reply in a pipeline's results: as :meth:`quorumkv.Client.execute` returns
it, or the :class:`quorumkv.ReplyError` of a command that failed (the others took effect)."""

_MIN_BACKOFF = 0.02
_MAX_BACKOFF = 0.5


class _Backoff:
    """The waits between attempts of a transaction loop: doubling from ``_MIN_BACKOFF`` up to
    ``_MAX_BACKOFF``, for as long as ``retry_for`` seconds from now allow."""

    def __init__(self, retry_for: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._deadline = clock() + retry_for
        self._delay = _MIN_BACKOFF

    def next(self) -> Optional[float]:
        """The next wait, or ``None`` if it would end past the deadline."""
        delay = self._delay
        if self._clock() + delay > self._deadline:
            return None
        self._delay = min(delay * 2, _MAX_BACKOFF)
        return delay


class Revisioned(NamedTuple):
    """A value with its revisions (``GETREV``): ``value`` (``None`` if absent), the revision
    of the write that last changed the key (``mod_revision``, 0 if it never existed or its
    deletion is forgotten) and the store's ``revision`` when it was read. Watching from
    ``revision`` misses no change after the read."""

    value: Optional[bytes]
    mod_revision: int
    revision: int


def revisioned(reply: Any) -> Revisioned:
    """``GETREV``'s ``[value, mod revision, revision]``."""
    if not (
        isinstance(reply, list)
        and len(reply) == 3
        and (reply[0] is None or isinstance(reply[0], bytes))
        and isinstance(reply[1], int)
        and isinstance(reply[2], int)
    ):
        raise ReplyError(f"ERR unexpected GETREV reply {reply!r}")
    return Revisioned(reply[0], reply[1], reply[2])


class _Queue:
    """Commands queued for one ``MULTI`` .. ``EXEC``; each method returns the object, so calls
    chain (``p.set(k, v).incr(c)``)."""

    def __init__(self) -> None:
        self._commands: List[List[bytes]] = []

    def execute_command(self: _Q, *args: BytesLike) -> _Q:
        """Queues any command, its name first (``execute_command("APPEND", k, v)``)."""
        if not args:
            raise ValueError("a command needs a name")
        self._commands.append([to_bytes(a, "argument") for a in args])
        return self

    def set(self: _Q, key: BytesLike, value: BytesLike, *, ttl: Union[float, timedelta, None] = None) -> _Q:
        """Queues ``SET key value`` (``PX`` with ``ttl``, seconds or ``timedelta``)."""
        if ttl is None:
            return self.execute_command(b"SET", key, value)
        return self.execute_command(b"SET", key, value, b"PX", str(ttl_ms(ttl)).encode())

    def incr(self: _Q, key: BytesLike, amount: int = 1) -> _Q:
        """Queues ``INCRBY key amount``."""
        return self.execute_command(b"INCRBY", key, str(int(amount)).encode())

    def delete(self: _Q, *keys: BytesLike) -> _Q:
        """Queues ``DEL keys``."""
        return self.execute_command(b"DEL", *keys)

    def __len__(self) -> int:
        return len(self._commands)

    def _take(self) -> List[List[bytes]]:
        commands, self._commands = self._commands, []
        return commands


def _results(replies: List[PipelineReply], raise_on_error: bool) -> List[PipelineReply]:
    if raise_on_error:
        for reply in replies:
            if isinstance(reply, ReplyError):
                raise reply
    return replies


class Pipeline(_Queue):
    """Commands queued, then sent together by :meth:`execute` (:meth:`quorumkv.Client.pipeline`).

    With ``transaction=True`` (the default) :meth:`execute` runs them as one transaction:
    ``MULTI`` .. ``EXEC`` on one connection to the leader, one Raft log entry applied
    atomically on every replica; no other client's command runs between them. With
    ``transaction=False`` they run one after another through the client (each with its
    retries and exactly-once writes), not atomically.
    """

    def __init__(self, client: Any, transaction: bool = True) -> None:
        super().__init__()
        self._client = client
        self.transaction = transaction

    def get(self, key: BytesLike) -> Pipeline:
        """Queues ``GET key``: in a transaction it sees the writes queued before it."""
        return self.execute_command(b"GET", key)

    def execute(self, raise_on_error: bool = True) -> List[PipelineReply]:
        """Runs the queued commands and empties the queue; returns one reply per command.

        A command that failed (say ``INCR`` of a non-integer) raises its
        :class:`quorumkv.ReplyError` after the others ran (with ``raise_on_error=False`` it
        is returned in its place). A command refused while queueing (unknown, wrong number of
        arguments) makes the whole transaction fail with :class:`quorumkv.ExecAbortError`,
        nothing applied. :class:`quorumkv.OutcomeUnknown` if ``EXEC``'s answer was lost."""
        commands = self._take()
        if not commands:
            return []
        if self.transaction:
            replies: List[PipelineReply] = self._client._native.transact(commands)
        else:
            replies = []
            for command in commands:
                try:
                    replies.append(self._client.execute(*command))
                except ReplyError as e:
                    replies.append(e)
        return _results(replies, raise_on_error)

    def reset(self) -> None:
        """Forgets the queued commands."""
        self._take()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.reset()

    def __repr__(self) -> str:
        return f"<quorumkv.Pipeline {len(self)} commands, transaction={self.transaction}>"


class Transaction(_Queue):
    """The connection :meth:`quorumkv.Client.transaction` pins to the leader and hands to its
    function: the watched keys are already ``WATCH``ed; :meth:`get`, :meth:`get_revision` and
    :meth:`execute` run at once (reads, to decide what to write); the queueing methods
    (``set``, ``incr``, ``delete``, ``execute_command``, and ``queue_get`` for a read inside
    the transaction) queue commands for ``EXEC``. :meth:`multi` is accepted, as redis-py's
    ``pipe.multi()``, and changes nothing.
    """

    def __init__(self, native: _native.Transaction) -> None:
        super().__init__()
        self._native = native

    def get(self, key: BytesLike) -> Optional[bytes]:
        """The value at ``key`` now (runs at once, not queued)."""
        value = self._native.execute([b"GET", to_bytes(key)])
        return value if value is None else _bytes(value)

    def queue_get(self, key: BytesLike) -> Transaction:
        """Queues ``GET key`` (its reply is among ``EXEC``'s results)."""
        return self.execute_command(b"GET", key)

    def get_revision(self, key: BytesLike) -> Revisioned:
        """``key``'s value and revisions now (``GETREV``, runs at once)."""
        return revisioned(self._native.execute([b"GETREV", to_bytes(key)]))

    def execute(self, *args: BytesLike) -> Any:
        """Runs one command at once on the pinned connection and returns its reply."""
        return self._native.execute([to_bytes(a, "argument") for a in args])

    def multi(self) -> None:
        """Marks the start of the queued part (redis-py's ``pipe.multi()``); optional."""

    @property
    def address(self) -> Optional[str]:
        """The address of the node the connection is pinned to."""
        return self._native.address

    def _begin(self, watch_keys: List[bytes]) -> None:
        self._take()
        self._native.watch(watch_keys)

    def _exec(self) -> List[PipelineReply]:
        replies: Optional[List[PipelineReply]] = self._native.exec(self._take())
        if replies is None:
            raise WatchError("a watched key changed: the transaction was not applied")
        return replies


def run_transaction(
    native_client: _native.ClusterClient,
    retry_for: float,
    func: Callable[[Transaction], _T],
    watch_keys: List[bytes],
) -> "tuple[_T, List[PipelineReply]]":
    """redis-py's ``Redis.transaction`` loop on a pinned connection: ``WATCH``, ``func``,
    ``EXEC``; again on :class:`WatchError`, and on :class:`TransactionInterrupted` (with
    backoff, on a new connection) until ``retry_for`` seconds have passed."""
    backoff = _Backoff(retry_for)
    tx: Optional[Transaction] = None
    try:
        while True:
            if tx is None:
                tx = Transaction(native_client.transaction())
            try:
                tx._begin(watch_keys)
                value = func(tx)
                return value, tx._exec()
            except WatchError:
                continue
            except TransactionInterrupted:
                tx._native.close()
                tx = None
                delay = backoff.next()
                if delay is None:
                    raise
                time.sleep(delay)
    finally:
        if tx is not None:
            tx._native.close()


class AsyncPipeline(_Queue):
    """:class:`Pipeline` for :class:`quorumkv.AsyncClient`: queue as there, then
    ``await p.execute()``."""

    def __init__(self, run: Callable[..., Awaitable[Any]], client: Any, transaction: bool = True) -> None:
        super().__init__()
        self._run = run
        self._client = client
        self.transaction = transaction

    def get(self, key: BytesLike) -> AsyncPipeline:
        """Queues ``GET key``."""
        return self.execute_command(b"GET", key)

    async def execute(self, raise_on_error: bool = True) -> List[PipelineReply]:
        """:meth:`Pipeline.execute`."""
        pipeline = Pipeline(self._client, self.transaction)
        pipeline._commands = self._take()
        replies: List[PipelineReply] = await self._run(pipeline.execute, raise_on_error)
        return replies

    def reset(self) -> None:
        """Forgets the queued commands."""
        self._take()

    async def __aenter__(self) -> AsyncPipeline:
        return self

    async def __aexit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.reset()


class AsyncTransaction(_Queue):
    """:class:`Transaction` for :class:`quorumkv.AsyncClient`: the immediate reads are
    coroutines; queueing is as there."""

    def __init__(self, native: _native.Transaction, executor: Optional[Executor]) -> None:
        super().__init__()
        self._sync = Transaction(native)
        self._executor = executor

    async def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    async def get(self, key: BytesLike) -> Optional[bytes]:
        """:meth:`Transaction.get`."""
        return await self._call(self._sync.get, key)

    def queue_get(self, key: BytesLike) -> AsyncTransaction:
        """:meth:`Transaction.queue_get`."""
        return self.execute_command(b"GET", key)

    async def get_revision(self, key: BytesLike) -> Revisioned:
        """:meth:`Transaction.get_revision`."""
        return await self._call(self._sync.get_revision, key)

    async def execute(self, *args: BytesLike) -> Any:
        """:meth:`Transaction.execute`."""
        return await self._call(self._sync.execute, *args)

    def multi(self) -> None:
        """:meth:`Transaction.multi`."""

    @property
    def address(self) -> Optional[str]:
        """The address of the node the connection is pinned to."""
        return self._sync.address


async def run_async_transaction(
    native_client: _native.ClusterClient,
    retry_for: float,
    executor: Optional[Executor],
    func: Callable[[AsyncTransaction], Awaitable[_T]],
    watch_keys: List[bytes],
) -> "tuple[_T, List[PipelineReply]]":
    """:func:`run_transaction` with an async ``func``; the blocking calls run in ``executor``."""
    loop = asyncio.get_running_loop()

    def call(fn: Callable[..., _R], *args: Any) -> Awaitable[_R]:
        return loop.run_in_executor(executor, functools.partial(fn, *args))

    backoff = _Backoff(retry_for)
    tx: Optional[AsyncTransaction] = None
    try:
        while True:
            if tx is None:
                tx = AsyncTransaction(await call(native_client.transaction), executor)
            try:
                await call(tx._sync._begin, watch_keys)
                value = await func(tx)
                tx._sync._commands = tx._take()
                return value, await call(tx._sync._exec)
            except WatchError:
                continue
            except TransactionInterrupted:
                await call(tx._sync._native.close)
                tx = None
                delay = backoff.next()
                if delay is None:
                    raise
                await asyncio.sleep(delay)
    finally:
        if tx is not None:
            await call(tx._sync._native.close)


def _bytes(reply: Any) -> bytes:
    if isinstance(reply, bytes):
        return reply
    raise ReplyError(f"ERR unexpected reply {reply!r}")
