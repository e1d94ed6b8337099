"""``quorumkv.Simulation``: kv-core's deterministic cluster simulator, driven from Python."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from . import _native
from ._util import BytesLike, opt_bytes, to_bytes

__all__ = ["CheckReport", "Operation", "Simulation", "run_seed"]


class Operation:
    """A client operation submitted to a :class:`Simulation`: a live view of where it stands.

    ``state`` is ``"pending"``, ``"ok"`` (it returned), ``"failed"`` (refused without effect)
    or ``"unknown"`` (given up on: it may or may not have taken effect). ``result`` is what it
    returned: the value read (``bytes`` or ``None``) for a get, ``None`` for a put, whether the
    key existed for a delete, whether it swapped for a cas.
    """

    __slots__ = ("_sim", "id")

    def __init__(self, sim: _native.Simulation, op_id: int) -> None:
        self._sim = sim
        self.id = op_id

    def info(self) -> Dict[str, Any]:
        """Everything about the operation: ``id, client, node, kind, key, call, invoked_ms,
        state, returned_ms, result, error, summary``."""
        return self._sim.op(self.id)

    @property
    def state(self) -> str:
        """``"pending"``, ``"ok"``, ``"failed"`` or ``"unknown"``."""
        return str(self.info()["state"])

    @property
    def done(self) -> bool:
        """Whether it is no longer pending."""
        return self.state != "pending"

    @property
    def ok(self) -> bool:
        """Whether it returned."""
        return self.state == "ok"

    @property
    def result(self) -> Any:
        """What it returned (``None`` unless ``ok``)."""
        return self.info()["result"]

    @property
    def error(self) -> Optional[str]:
        """Why it failed or was given up on."""
        error = self.info()["error"]
        return None if error is None else str(error)

    def __repr__(self) -> str:
        info = self.info()
        return f"<Operation {info['id']} {info['call']} at node {info['node']}: {info['summary']}>"


@dataclass(frozen=True)
class CheckReport:
    """The verdict of every checker on a simulation so far.

    ``violations`` lists broken Raft invariants, each ``{"invariant": name, "detail": text}``
    (names: ``election_safety``, ``log_matching``, ``leader_completeness``,
    ``state_machine_safety``). ``linearizability`` is ``{"verdict": "linearizable"}``, or
    ``{"verdict": "violation" | "unknown", "key": bytes, "reason": text, ...}``.
    """

    violations: List[Dict[str, str]]
    linearizability: Dict[str, Any]
    operations: int
    raw: Dict[str, Any] = field(repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """Whether every invariant holds and the history is linearizable."""
        return not self.violations and self.linearizability["verdict"] == "linearizable"

    def __bool__(self) -> bool:
        return self.ok

    @staticmethod
    def from_raw(raw: Dict[str, Any]) -> CheckReport:
        lin = raw["linearizability"]
        if isinstance(lin, str):
            verdict: Dict[str, Any] = {"verdict": lin.lower()}
        else:
            ((name, detail),) = lin.items()
            verdict = {"verdict": name.lower(), **detail}
            if "key" in verdict:
                verdict["key"] = bytes(verdict["key"])
        return CheckReport(
            violations=[dict(v) for v in raw["violations"]],
            linearizability=verdict,
            operations=int(raw["operations"]),
            raw=raw,
        )


class Simulation:
    """A simulated QuorumKV cluster: the real Raft code on virtual time, with a simulated
    network. Every random choice comes from ``seed``, so the same seed and the same calls give
    the same run, event for event (``trace_hash()`` proves it, here and in the native and
    browser builds).

    Nothing happens between calls: time moves only in :meth:`run_for` and :meth:`step`.

    >>> sim = Simulation(nodes=3, seed=7)
    >>> sim.run_for(1000)
    >>> op = sim.put("k", "v")
    >>> sim.run_for(500)
    >>> op.state, sim.get("k").state
    ('ok', 'pending')
    """

    def __init__(self, nodes: int = 5, seed: int = 42) -> None:
        """A cluster of ``nodes`` (3 to 7) nodes, numbered from 1."""
        self._native = _native.Simulation(seed, nodes)
        self.nodes = nodes
        self.seed = seed

    # -- time ------------------------------------------------------------------------------

    def run_for(self, ms: float) -> None:
        """Advances virtual time by ``ms`` milliseconds."""
        self._native.run_for(ms)

    def step(self) -> bool:
        """Jumps to the next scheduled moment and runs it; ``False`` if nothing is scheduled."""
        return self._native.step()

    @property
    def now_ms(self) -> float:
        """Virtual time since the start, in milliseconds."""
        return self._native.now_ms()

    # -- faults ----------------------------------------------------------------------------

    def crash(self, node: int) -> None:
        """Crashes ``node``; it keeps what it had on disk (log, vote, snapshot)."""
        self._native.crash(node)

    def restart(self, node: int) -> None:
        """Restarts a crashed ``node``."""
        self._native.restart(node)

    def is_up(self, node: int) -> bool:
        """Whether ``node`` is running."""
        return self._native.is_up(node)

    def partition(self, groups: Sequence[Sequence[int]]) -> None:
        """Splits the network: nodes talk only within their group, e.g. ``[[1, 2], [3, 4, 5]]``.
        A node in no group is cut off from all."""
        self._native.partition([list(g) for g in groups])

    def heal(self) -> None:
        """Reconnects every node."""
        self._native.heal()

    def set_drop_rate(self, p: float) -> None:
        """Sets the probability (0 to 1) that any message is lost."""
        self._native.set_drop_rate(p)

    # -- client operations -----------------------------------------------------------------

    def put(self, key: BytesLike, value: BytesLike, *, node: int = 1) -> Operation:
        """Submits a put through ``node`` (which forwards to the leader it knows)."""
        return Operation(self._native, self._native.put(node, to_bytes(key), to_bytes(value, "value")))

    def get(self, key: BytesLike, *, node: int = 1) -> Operation:
        """Submits a linearizable get through ``node``."""
        return Operation(self._native, self._native.get(node, to_bytes(key)))

    def delete(self, key: BytesLike, *, node: int = 1) -> Operation:
        """Submits a delete through ``node``."""
        return Operation(self._native, self._native.delete(node, to_bytes(key)))

    def cas(
        self, key: BytesLike, expected: Optional[BytesLike], new: Optional[BytesLike], *, node: int = 1
    ) -> Operation:
        """Submits a compare-and-swap through ``node`` (``None``: absent / delete)."""
        op_id = self._native.cas(node, to_bytes(key), opt_bytes(expected, "expected value"), opt_bytes(new, "new value"))
        return Operation(self._native, op_id)

    def operations(self) -> List[Operation]:
        """Every operation submitted so far."""
        return [Operation(self._native, op["id"]) for op in self._native.ops()]

    # -- looking --------------------------------------------------------------------------

    def state(self) -> Dict[str, Any]:
        """The cluster as plain dicts: ``now_ms, seed, drop_rate, events``, ``nodes`` (each
        ``id, role, term, voted_for, leader, commit_index, applied_index, snapshot_index, log,
        log_len, keys, bytes, partition``) and ``in_flight`` messages."""
        state: Dict[str, Any] = self._native.state()
        return state

    def leader(self) -> Optional[int]:
        """The node that is leader in the highest term, if any."""
        leaders = [n for n in self.state()["nodes"] if n["role"] == "leader"]
        return max(leaders, key=lambda n: n["term"])["id"] if leaders else None

    def events(self, since: int = 0) -> List[Dict[str, Any]]:
        """Events numbered ``since`` and later that are still kept in memory (the most recent
        ones), oldest first, each ``{"seq", "at_ms", "type", ...details}``; ``type`` is one of
        ``send, deliver, drop, timeout, role_change, commit, apply, client_invoke,
        client_return, fault``."""
        raw: List[Dict[str, Any]] = self._native.events(since)
        first = self._native.event_count() - len(raw)
        events = []
        for seq, event in enumerate(raw, start=first):
            kind = dict(event["kind"])
            flat = {"seq": seq, "at_ms": event["at_ns"] / 1e6, "type": kind.pop("type")}
            flat.update(kind)
            events.append(flat)
        return events

    def check(self) -> CheckReport:
        """Runs every checker: the named Raft invariants and the linearizability of the
        client history."""
        return CheckReport.from_raw(self._native.check())

    def trace_hash(self) -> str:
        """Hash of every event so far, as 16 hex digits (as ``kv-sim --hashes`` prints)."""
        return self._native.trace_hash()

    def __repr__(self) -> str:
        return f"<quorumkv.Simulation nodes={self.nodes} seed={self.seed} at {self.now_ms:.1f} ms>"


def run_seed(seed: int, nodes: Optional[int] = None, duration_ms: int = 5000, *, faults: bool = True) -> Dict[str, Any]:
    """Runs one seeded fault run exactly as the native ``kv-sim`` does: ``nodes`` (default
    ``3 + seed % 3``, as kv-sim) nodes, concurrent clients, crashes, partitions and drops for
    ``duration_ms`` of virtual time, then every check. Returns ``{seed, trace_hash, ok, events,
    virtual_ms, operations, faults, check, converged}``."""
    return _native.run_seed(seed, 3 + seed % 3 if nodes is None else nodes, duration_ms, faults)
