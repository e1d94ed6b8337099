"""Partition a simulated 5-node QuorumKV cluster and watch what Raft does.

Run it (after `maturin develop` or installing the wheel):

    python bindings/python/examples/partition_demo.py [seed]

Notebook-style: each `# %%` cell can be run on its own in an editor that knows the marker.
Everything is deterministic: the same seed prints the same story, down to the trace hash.
"""

# %% A cluster, and its first leader
from __future__ import annotations

import sys
from typing import Any, Dict, List

import quorumkv

seed = int(sys.argv[1]) if len(sys.argv) > 1 else 42
sim = quorumkv.Simulation(nodes=5, seed=seed)


def show(title: str) -> None:
    state = sim.state()
    print(f"\n[{state['now_ms']:8.1f} ms] {title}")
    for n in state["nodes"]:
        print(
            f"  node {n['id']}: {n['role']:<9} term {n['term']:<3} commit {n['commit_index']:<4}"
            f" leader {n['leader'] or '-'}   partition group {n['partition']}"
        )


def interesting(events: List[Dict[str, Any]]) -> List[str]:
    lines = []
    for e in events:
        if e["type"] == "fault":
            lines.append(f"  {e['at_ms']:8.1f} ms  fault: {e['action']}")
        elif e["type"] == "role_change" and e["role"] in ("leader", "candidate"):
            lines.append(f"  {e['at_ms']:8.1f} ms  node {e['node']} becomes {e['role']} in term {e['term']}")
        elif e["type"] == "client_return":
            lines.append(f"  {e['at_ms']:8.1f} ms  operation {e['op']} returns: {e['result']}")
    return lines


sim.run_for(1000)
show("after one second, the cluster has elected a leader")
old_leader = sim.leader()
assert old_leader is not None

# %% A write before the partition
before = sim.put("color", "blue", node=old_leader)
sim.run_for(200)
print(f"\nput color=blue through node {old_leader}: {before.state}")

# %% Cut the leader and one follower off from the other three
others = [n for n in range(1, 6) if n != old_leader]
minority, majority = [old_leader, others[0]], others[1:]
mark = sim.state()["events"]
sim.partition([minority, majority])
print(f"\npartition: {minority} | {majority}")

stranded = sim.put("color", "red", node=old_leader)  # the minority cannot commit this
sim.run_for(1500)
accepted = sim.put("color", "green", node=majority[0])  # the majority elects and commits
sim.run_for(1500)
show("during the partition")
print(
    f"\nnode {old_leader} may still call itself leader (of the old term), but without a majority"
    " it commits nothing; the majority elected a leader of a newer term."
)
print(f"\nput color=red   through node {old_leader} (minority): {stranded.state} {stranded.error or ''}")
print(f"put color=green through node {majority[0]} (majority): {accepted.state}")

# %% Heal, and read everywhere
sim.heal()
sim.run_for(2000)
show("after healing: one leader, everyone on the same term and commit index")
reads = [sim.get("color", node=n) for n in range(1, 6)]
sim.run_for(500)
for n, r in enumerate(reads, start=1):
    value = r.result.decode() if isinstance(r.result, bytes) else r.result
    print(f"  get color through node {n}: {value}")

# %% What happened, and was it correct?
print("\nwhat happened since the partition:")
print("\n".join(interesting(sim.events(since=mark))))

report = sim.check()
print(f"\ncheck: {report.operations} operations; invariant violations: {report.violations or 'none'};")
print(f"       linearizability: {report.linearizability['verdict']}")
print(f"trace hash {sim.trace_hash()} (seed {seed}: run it again and get the same)")
assert report.ok
