"""Watches from Python: every change to keys under a prefix after a revision, in commit
order, exactly once, across node failures (``WATCHKEYS``, resumed by the Rust client's
``client::Watch`` on the next node from the last change seen; the same code as ``kv watch``).

>>> value, _, revision = client.get_revision("user:1")      # doctest: +SKIP
>>> for event in client.watch("user:", since=revision):    # doctest: +SKIP
...     print(event.revision, event.event, event.key, event.value)
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import Executor
from types import TracebackType
from typing import AsyncIterator, Iterator, NamedTuple, Optional, Type

from . import _native

__all__ = ["AsyncWatch", "Watch", "WatchEvent"]

_POLL = 0.25
"""How long one native wait lasts (seconds): Ctrl-C and cancellation are noticed in between;
stopping a wait loses nothing."""


class WatchEvent(NamedTuple):
    """One change: the ``revision`` (log index) of the write that made it, the ``key``
    (``b""`` for a ``flushdb``), the ``event`` (named like Redis keyspace events: ``set``,
    ``del``, ``expire``, ``expired``, ``incrby``, ``append``, ``persist``, ``flushdb``) and the
    key's ``value`` after it (``None`` once the key is gone)."""

    revision: int
    key: bytes
    event: str
    value: Optional[bytes]


class Watch(Iterator[WatchEvent]):
    """Iterates changes as :class:`WatchEvent` objects, forever (:meth:`quorumkv.Client.watch`).

    Raises :class:`quorumkv.Compacted` when the history after the revision is gone on every
    node, :class:`quorumkv.ReplyError` if the watch is refused, :class:`quorumkv.TimeoutError`
    when no node took it for ``retry_for`` seconds. A context manager; :meth:`close` ends it.
    """

    def __init__(self, native: _native.Watch) -> None:
        self._native = native

    def __iter__(self) -> Watch:
        return self

    def __next__(self) -> WatchEvent:
        while True:
            event = self.next(_POLL)
            if event is not None:
                return event

    def next(self, timeout: float) -> Optional[WatchEvent]:
        """The next change, or ``None`` if none came within ``timeout`` seconds (the watch
        goes on)."""
        change = self._native.next(timeout)
        return None if change is None else WatchEvent(*change)

    @property
    def revision(self) -> Optional[int]:
        """The revision of the last change yielded, or the one the watch started after
        (``None`` until it has started, without ``since``): a watch from it misses nothing."""
        return self._native.revision

    @property
    def address(self) -> Optional[str]:
        """The node it watches on (or will try next)."""
        return self._native.address

    @property
    def connected(self) -> bool:
        """Whether it is connected to a node and watching."""
        return self._native.connected

    def close(self) -> None:
        """Ends the watch. Idempotent."""
        self._native.close()

    def __enter__(self) -> Watch:
        return self

    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.close()


class AsyncWatch(AsyncIterator[WatchEvent]):
    """:class:`Watch` for asyncio: ``async for event in client.watch(...)``. Each wait runs in
    ``executor`` for at most a quarter second, so cancelling the task leaves no thread behind
    for long."""

    def __init__(self, native: _native.Watch, executor: Optional[Executor]) -> None:
        self._sync = Watch(native)
        self._executor = executor

    def __aiter__(self) -> AsyncWatch:
        return self

    async def __anext__(self) -> WatchEvent:
        loop = asyncio.get_running_loop()
        while True:
            event = await loop.run_in_executor(self._executor, functools.partial(self._sync.next, _POLL))
            if event is not None:
                return event

    @property
    def revision(self) -> Optional[int]:
        """:attr:`Watch.revision`."""
        return self._sync.revision

    @property
    def address(self) -> Optional[str]:
        """:attr:`Watch.address`."""
        return self._sync.address

    async def aclose(self) -> None:
        """Ends the watch. Idempotent."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._sync.close)

    async def __aenter__(self) -> AsyncWatch:
        return self

    async def __aexit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        await self.aclose()
