"""The exception tree: every error QuorumKV raises is a ``quorumkv.Error``.

Rust errors map onto these classes mechanically (``src/error.rs`` has the table); the cluster
client raises them for the replies and failures it sees. Missing keys raise the builtin
``KeyError``, as a ``dict`` does.
"""

from __future__ import annotations

import builtins
from typing import Optional

__all__ = [
    "ClosedError",
    "CorruptionError",
    "Error",
    "InternalError",
    "InvalidArgumentError",
    "LockedError",
    "NotLeaderError",
    "StorageError",
    "TimeoutError",
]


class Error(Exception):
    """Base class of every QuorumKV error."""


class InternalError(Error):
    """A bug in QuorumKV (a Rust panic, caught at the edge). Please report it."""


class InvalidArgumentError(Error, ValueError):
    """An argument QuorumKV refuses: a key or value over the size limits, an unknown node..."""


class TimeoutError(Error, builtins.TimeoutError):
    """Waiting took too long. A write that timed out may or may not have taken effect."""


class ClosedError(Error):
    """The store or client was closed."""


class StorageError(Error):
    """Opening or using the files on disk failed (I/O error, disk full, store stopped)."""


class LockedError(StorageError):
    """Another store, in this or another process, has the directory open."""


class CorruptionError(StorageError):
    """A file is damaged or of an unknown format version; nothing was dropped."""


class NotLeaderError(Error):
    """The node asked is not the leader and could not forward; ``leader`` is the leader's
    node id if the node knows it."""

    leader: Optional[int]

    def __init__(self, message: str, leader: Optional[int] = None) -> None:
        super().__init__(message)
        self.leader = leader
