"""``quorumkv.Store``: the embedded durable single-node store, as a mapping of bytes to bytes."""

from __future__ import annotations

import os
from datetime import timedelta
from types import TracebackType
from typing import Iterator, Optional, Tuple, Type, TypeVar, Union, overload

from . import _native
from ._util import BytesLike, bounds, opt_bytes, to_bytes, ttl_ms

__all__ = ["Store"]

_PAGE = 1024
"""Entries fetched per scan call while iterating."""

_T = TypeVar("_T")
_MISSING = object()


class Store:
    """A durable key-value store in directory ``path``, used like a ``dict``.

    Keys and values are ``bytes``; ``str`` is accepted and encoded as UTF-8. Every write is
    on disk (with ``fsync="always"``, synced) before it returns. Iteration is in key order.
    Only one store at a time, in any process, may have a directory open: another gets
    :class:`quorumkv.LockedError`. Use it as a context manager, or call :meth:`close`.

    >>> import tempfile, quorumkv
    >>> with quorumkv.Store(tempfile.mkdtemp()) as s:
    ...     s["user:1"] = "ada"
    ...     s[b"user:1"]
    b'ada'
    """

    def __init__(
        self,
        path: Union[str, "os.PathLike[str]"],
        fsync: str = "always",
        *,
        snapshot_every: Optional[int] = 10_000,
    ) -> None:
        """Opens (creating if needed) the store at ``path``. ``fsync`` is ``"always"`` (a
        machine crash loses nothing acknowledged) or ``"never"`` (fast; for tests and caches).
        The log is compacted into a snapshot every ``snapshot_every`` writes (``None``: only
        on :meth:`snapshot`)."""
        self._native = _native.Store(os.fspath(path), fsync, snapshot_every)

    @property
    def path(self) -> str:
        """The store's directory."""
        return self._native.path

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._native.closed

    # -- the mapping protocol --------------------------------------------------------------

    def __getitem__(self, key: BytesLike) -> bytes:
        value = self._native.get(to_bytes(key))
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: BytesLike, value: BytesLike) -> None:
        self._native.put(to_bytes(key), to_bytes(value, "value"))

    def __delitem__(self, key: BytesLike) -> None:
        if not self._native.delete(to_bytes(key)):
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, (bytes, bytearray, memoryview, str)):
            return False
        return self._native.get(to_bytes(key)) is not None

    def __len__(self) -> int:
        return self._native.len()

    def __iter__(self) -> Iterator[bytes]:
        return self.keys()

    def get(self, key: BytesLike, default: Optional[_T] = None) -> Union[bytes, _T, None]:
        """The value at ``key``, or ``default`` if there is none."""
        value = self._native.get(to_bytes(key))
        return default if value is None else value

    @overload
    def pop(self, key: BytesLike) -> bytes: ...

    @overload
    def pop(self, key: BytesLike, default: _T) -> Union[bytes, _T]: ...

    def pop(self, key: BytesLike, default: object = _MISSING) -> object:
        """Removes ``key`` and returns its value (one atomic write); ``default`` if it is
        absent, or ``KeyError`` without a default."""
        value = self._native.pop(to_bytes(key))
        if value is not None:
            return value
        if default is _MISSING:
            raise KeyError(key)
        return default

    def setdefault(self, key: BytesLike, default: BytesLike) -> bytes:
        """The value at ``key``; if absent, sets it to ``default`` first (atomically)."""
        new = to_bytes(default, "value")
        swapped, previous = self._native.cas(to_bytes(key), None, new)
        return new if swapped or previous is None else previous

    def keys(
        self,
        prefix: Optional[BytesLike] = None,
        start: Optional[BytesLike] = None,
        end: Optional[BytesLike] = None,
    ) -> Iterator[bytes]:
        """Keys in order; see :meth:`items` for the arguments."""
        return (key for key, _ in self.items(prefix, start, end))

    def values(
        self,
        prefix: Optional[BytesLike] = None,
        start: Optional[BytesLike] = None,
        end: Optional[BytesLike] = None,
    ) -> Iterator[bytes]:
        """Values in key order; see :meth:`items` for the arguments."""
        return (value for _, value in self.items(prefix, start, end))

    def items(
        self,
        prefix: Optional[BytesLike] = None,
        start: Optional[BytesLike] = None,
        end: Optional[BytesLike] = None,
    ) -> Iterator[Tuple[bytes, bytes]]:
        """``(key, value)`` pairs in key order: keys that start with ``prefix``, are ``>=
        start`` and ``< end`` (each optional). Fetched lazily, a page at a time: writes made
        while iterating may or may not be seen, and no key is seen twice."""
        lo, hi = bounds(prefix, start, end)
        return self._scan(lo, hi)

    def _scan(self, start: Optional[bytes], end: Optional[bytes]) -> Iterator[Tuple[bytes, bytes]]:
        inclusive = True
        while start is None or end is None or start < end:
            page = self._native.scan(start, end, _PAGE, inclusive)
            yield from page
            if len(page) < _PAGE:
                return
            start, inclusive = page[-1][0], False

    # -- beyond a dict ---------------------------------------------------------------------

    def set(self, key: BytesLike, value: BytesLike, *, ttl: Union[float, timedelta, None] = None) -> None:
        """Sets ``key`` to ``value``; with ``ttl`` (seconds or a ``timedelta``) the key
        disappears that long from now."""
        self._native.put(to_bytes(key), to_bytes(value, "value"), None if ttl is None else ttl_ms(ttl))

    def compare_and_swap(self, key: BytesLike, expected: Optional[BytesLike], new: Optional[BytesLike]) -> bool:
        """Atomically: if ``key`` holds ``expected`` (``None``: is absent), sets it to ``new``
        (``None``: deletes it). Returns whether it did."""
        swapped, _ = self._native.cas(
            to_bytes(key), opt_bytes(expected, "expected value"), opt_bytes(new, "new value")
        )
        return swapped

    def snapshot(self) -> None:
        """Saves a snapshot of everything written and compacts the log it covers."""
        self._native.snapshot()

    def close(self) -> None:
        """Waits until everything is on disk, then releases the directory. Idempotent; any
        other call afterwards raises :class:`quorumkv.ClosedError`."""
        self._native.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<quorumkv.Store {self.path!r} ({state})>"
