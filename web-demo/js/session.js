// A run of the simulator plus the list of user actions that shaped it. No DOM here: the same
// module replays a link in the browser and under node (tests compare the two).
//
// An action is `{ at, type, args }`: at virtual time `at` (ms), call the simulator's `type`
// with `args`. Replaying = new Simulation(seed, nodes), then for each action run up to its time
// and apply it. Virtual time advances identically however it is chopped into runFor calls, so
// a replay reaches the same trace hash as the live run it was recorded from.

/** What each action type calls on the simulator. Operations return an op id. */
const CALLS = {
  crash: (sim, node) => sim.crash(node),
  restart: (sim, node) => sim.restart(node),
  partition: (sim, groups) => sim.partition(groups),
  heal: (sim) => sim.heal(),
  drop: (sim, p) => sim.setDropRate(p),
  put: (sim, node, key, value) => sim.put(node, key, value),
  get: (sim, node, key) => sim.get(node, key),
  stale: (sim, node, key) => sim.staleGet(node, key),
  delete: (sim, node, key) => sim.delete(node, key),
  cas: (sim, node, key, expected, value) => sim.cas(node, key, expected, value),
  add: (sim) => sim.addNode(),
  remove: (sim, node) => sim.removeNode(node),
  transfer: (sim, node) => sim.transferLeader(node),
};

export const ACTION_TYPES = Object.keys(CALLS);
export const MIN_NODES = 3;
export const MAX_NODES = 7;
/** Highest node id: a cluster of 7 may add nodes up to this id (kv-core's MAX_NODE_ID). */
export const MAX_NODE_ID = 9;
/** Longest stretch of virtual time a link may ask to replay (a bound, not a preference). */
export const MAX_REPLAY_MS = 10 * 60 * 1000;

/** Virtual times are kept to the nanosecond: at most 6 decimals of a millisecond. */
export function roundMs(ms) {
  return Math.round(ms * 1e6) / 1e6;
}

export class Session {
  /** @param wasm the loaded `quorumkv_wasm` module */
  /**
   * `workloadMs`: run the seed's fault workload (kv-sim's clients and faults for that long,
   * then a quiet period) under the actions; `bug`: switch on the simulator's planted bug.
   */
  constructor(wasm, { seed, nodes, workloadMs = null, bug = false }) {
    if (!Number.isInteger(nodes) || nodes < MIN_NODES || nodes > MAX_NODES) {
      throw new Error(`a cluster has ${MIN_NODES} to ${MAX_NODES} nodes, not ${nodes}`);
    }
    this.seed = seed;
    this.nodes = nodes;
    this.workloadMs = workloadMs;
    this.bug = bug;
    this.sim = new wasm.Simulation(seed, nodes, bug, workloadMs ?? undefined);
    /** Actions applied so far. */
    this.actions = [];
    /**
     * Recorded actions not applied yet: after a rewind, the rest of the run, re-applied as
     * virtual time reaches them. Acting while any are left forks the run (they are dropped).
     */
    this.future = [];
    /** The furthest virtual time the recorded run reaches. */
    this.headMs = 0;
    /** Virtual times at which this run was forked from an earlier one. */
    this.forks = [];
  }

  /** What a fresh replay of this run starts from: `{ seed, nodes, workloadMs?, bug? }`. */
  base() {
    const base = { seed: this.seed, nodes: this.nodes };
    if (this.workloadMs !== null) base.workloadMs = this.workloadMs;
    if (this.bug) base.bug = true;
    return base;
  }

  nowMs() {
    return roundMs(this.sim.nowMs());
  }

  /** Advances virtual time by `ms`, re-applying recorded actions on the way. */
  runFor(ms) {
    if (ms > 0) this.runUntil(this.sim.nowMs() + ms);
  }

  /** Runs until virtual time `at` exactly (no-op if already there). */
  runUntil(at) {
    while (this.future.length && this.future[0].at <= at) {
      const next = this.future.shift();
      this.advance(next.at);
      this.apply(next);
    }
    this.advance(at);
  }

  advance(at) {
    const delta = at - this.sim.nowMs();
    if (delta > 1e-7) this.sim.runFor(delta);
    this.headMs = Math.max(this.headMs, this.nowMs());
  }

  /**
   * Jumps to the next moment something is scheduled. In a rewound run, where a recorded action
   * may come first, it advances by at most 1 ms and stops at that action instead.
   */
  step() {
    if (this.future.length) {
      this.runUntil(Math.min(this.future[0].at, this.sim.nowMs() + 1));
      return true;
    }
    const next = this.sim.step();
    this.headMs = Math.max(this.headMs, this.nowMs());
    return next;
  }

  /** The whole recorded run: applied actions and those still ahead. */
  recorded() {
    return [...this.actions, ...this.future];
  }

  apply({ type, args }) {
    const call = CALLS[type];
    if (!call) throw new Error(`unknown action ${JSON.stringify(type)}`);
    const result = call(this.sim, ...args);
    this.actions.push({ at: this.nowMs(), type, args });
    return result;
  }

  /**
   * Does `type(...args)` now and records it. Throws (and records nothing) if the simulator
   * refuses, e.g. crashing a node that is down. Returns what the simulator returned. Acting
   * before the end of the recorded run forks it: what was recorded after now is dropped.
   */
  perform(type, ...args) {
    if (!CALLS[type]) throw new Error(`unknown action ${JSON.stringify(type)}`);
    const result = CALLS[type](this.sim, ...args);
    if (this.future.length || this.headMs > this.nowMs()) {
      this.future = [];
      this.forks.push(this.nowMs());
    }
    this.headMs = this.nowMs();
    this.actions.push({ at: this.nowMs(), type, args });
    return result;
  }

  /**
   * Replays `{seed, nodes, actions}` and runs on to `untilMs` (if later than the last
   * action). With `viewMs`, stops at that time instead, the later actions kept as the future
   * (a rewound run); the recorded run still reaches `untilMs`.
   */
  static replay(wasm, { seed, nodes, actions, untilMs = 0, viewMs = null, forks = [], workloadMs = null, bug = false }) {
    const session = new Session(wasm, { seed, nodes, workloadMs, bug });
    session.forks = [...forks];
    const stop = Math.min(viewMs ?? Infinity, MAX_REPLAY_MS);
    for (const [i, { at, type, args }] of actions.entries()) {
      if (!(at >= (actions[i - 1]?.at ?? 0) - 1e-7) || at > MAX_REPLAY_MS) {
        throw new Error(`action ${i + 1} (${type} at ${at} ms) is out of order`);
      }
      if (at > stop) {
        session.future = actions.slice(i);
        break;
      }
      session.runUntil(at);
      try {
        session.apply({ type, args });
      } catch (e) {
        throw new Error(`action ${i + 1} (${type} at ${at} ms) failed: ${e.message ?? e}`);
      }
    }
    session.runUntil(Math.min(untilMs, stop));
    const last = actions.at(-1)?.at ?? 0;
    session.headMs = Math.max(session.headMs, Math.min(Math.max(untilMs, last), MAX_REPLAY_MS));
    return session;
  }

  /**
   * Continues a session taken from a checkpoint (a replay of the same run up to an earlier
   * time) to `viewMs`, re-applying `recorded` actions after its time.
   */
  resume(recorded, headMs, viewMs) {
    const now = this.nowMs();
    this.future = recorded.filter((a) => a.at > now);
    this.headMs = headMs;
    this.runUntil(viewMs);
    return this;
  }
}
