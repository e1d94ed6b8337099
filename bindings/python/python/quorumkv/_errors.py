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
    "Compacted",
    "CorruptionError",
    "Error",
    "ExecAbortError",
    "InternalError",
    "InvalidArgumentError",
    "LockedError",
    "NotLeaderError",
    "OutcomeUnknown",
    "ReplyError",
    "StorageError",
    "TimeoutError",
    "TransactionInterrupted",
    "WatchError",
]


class Error(Exception):
    """Base class of every QuorumKV error."""


class InternalError(Error):
    """A bug in QuorumKV (a Rust panic, caught at the edge). Please report it."""


class InvalidArgumentError(Error, ValueError):
    """An argument QuorumKV refuses: a key or value over the size limits, an unknown node..."""


class TimeoutError(Error, builtins.TimeoutError):
    """Waiting took too long (no node answered, or no leader was found, within the time
    allowed). For the cluster clients the command did not take effect; a write that may have
    raises :class:`OutcomeUnknown` instead. For :class:`quorumkv.Store`, a write that timed
    out may or may not have taken effect."""


class OutcomeUnknown(Error):
    """A write was sent and its answer lost (the connection broke or the wait ran out after
    sending, and no retry could learn the answer): it may or may not have taken effect.

    With sessions (the default) the cluster clients resend a write whose answer was lost,
    under the same session and sequence number, so the cluster applies it once; this is raised
    only when that was impossible (the session expired meanwhile, or ``retry_for`` ran out)."""


class ReplyError(Error):
    """An error reply from a node (``-CODE text``): ``code`` is its first word (``ERR``,
    ``WRONGPASS``, ``SESSIONEXPIRED``...). The command did not take effect."""

    code: str

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.code = text.split(" ", 1)[0]


class ExecAbortError(ReplyError):
    """``EXEC`` answered ``-EXECABORT``: a command was refused while queueing (unknown, wrong
    number of arguments, bad option), so the transaction was discarded and nothing applied.
    The message names the refused command's error."""


class WatchError(Error):
    """A key watched by a transaction changed before its ``EXEC``: nothing was applied.
    :meth:`quorumkv.Client.transaction` catches it and runs the function again (redis-py's
    ``WatchError``)."""


class TransactionInterrupted(Error):
    """A transaction's connection failed, or its node found no leader, before ``EXEC`` was
    sent: nothing was applied, and it can start over on a new connection.
    :meth:`quorumkv.Client.transaction` and ``Pipeline.execute`` do so until ``retry_for``
    runs out, then raise this. (Once ``EXEC`` may have arrived, a lost answer is
    :class:`OutcomeUnknown` instead, and nothing is resent.)"""


class Compacted(Error):
    """A watch asked for changes after ``revision``, and every node asked has dropped that
    part of its history (each keeps the last 100,000 changes, none before its last snapshot).
    Read the current state again (:meth:`quorumkv.Client.get_revision`, ``items()``), then
    watch from the revision read; ``oldest`` is the oldest revision a watch can start from."""

    revision: int
    oldest: int

    def __init__(self, message: str, revision: int = 0, oldest: int = 0) -> None:
        super().__init__(message)
        self.revision = revision
        self.oldest = oldest


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
