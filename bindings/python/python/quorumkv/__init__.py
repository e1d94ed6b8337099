"""QuorumKV from Python.

- :class:`Store`: an embedded, durable, single-node key-value store in a directory.
- :class:`Client`: a client of a QuorumKV cluster (kv-node processes), with failover and
  exactly-once writes, transactions (:meth:`Client.pipeline`, :meth:`Client.transaction`) and
  resumable watches (:meth:`Client.watch`); :class:`AsyncClient` is the same for asyncio.
- :class:`Simulation`: the deterministic cluster simulator, with faults and checkers.

All three feel like a ``dict`` of ``bytes`` to ``bytes`` where that makes sense (``str`` is
accepted as UTF-8), and every error they raise is a :class:`quorumkv.Error`.
"""

from __future__ import annotations

from . import _native
from ._client import AsyncClient, Client
from ._errors import (
    ClosedError,
    Compacted,
    CorruptionError,
    Error,
    ExecAbortError,
    InternalError,
    InvalidArgumentError,
    LockedError,
    NotLeaderError,
    OutcomeUnknown,
    ReplyError,
    StorageError,
    TimeoutError,
    TransactionInterrupted,
    WatchError,
)
from ._sim import CheckReport, Operation, Simulation, run_seed
from ._store import Store
from ._transaction import AsyncPipeline, AsyncTransaction, Pipeline, PipelineReply, Revisioned, Transaction
from ._watch import AsyncWatch, Watch, WatchEvent

__version__: str = _native.__version__

__all__ = [
    "AsyncClient",
    "AsyncPipeline",
    "AsyncTransaction",
    "AsyncWatch",
    "CheckReport",
    "Client",
    "ClosedError",
    "Compacted",
    "CorruptionError",
    "Error",
    "ExecAbortError",
    "InternalError",
    "InvalidArgumentError",
    "LockedError",
    "NotLeaderError",
    "Operation",
    "OutcomeUnknown",
    "Pipeline",
    "PipelineReply",
    "ReplyError",
    "Revisioned",
    "Simulation",
    "StorageError",
    "Store",
    "TimeoutError",
    "Transaction",
    "TransactionInterrupted",
    "Watch",
    "WatchError",
    "WatchEvent",
    "__version__",
    "run_seed",
]
