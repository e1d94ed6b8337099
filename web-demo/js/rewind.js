// Time travel: shows a run as it was at any earlier virtual time by replaying it — the
// simulator is deterministic, so a replay of the seed and the recorded actions up to time t
// *is* the run at time t. No DOM here.
//
// Replaying a 60 s run from zero takes a few hundred ms in wasm, too slow to follow a
// scrubber, so the Rewinder keeps checkpoints: sessions replayed up to every CHECKPOINT_MS of
// virtual time. A simulation cannot be copied, so a checkpoint is used up when a seek
// continues from it; idle time rebuilds used and missing ones (from zero, lowest first). A
// seek forward continues the current session. A fork (acting at an earlier time) keeps the
// checkpoints before the fork and drops the rest.
import { Session } from './session.js';

export const CHECKPOINT_MS = 4000;

export class Rewinder {
  /** @param wasm the loaded module; `base` is `{ seed, nodes }` */
  constructor(wasm, base, everyMs = CHECKPOINT_MS) {
    this.wasm = wasm;
    this.base = base;
    this.everyMs = everyMs;
    /** checkpoint time → session at that time */
    this.checkpoints = new Map();
    /** The recorded run the checkpoints belong to. */
    this.recorded = [];
    this.headMs = 0;
    /** A checkpoint being built in idle time: `{ at, session }`. */
    this.building = null;
  }

  /** Takes note of the recorded run; drops checkpoints its actions no longer match. */
  track(session) {
    const recorded = session.recorded();
    let same = 0;
    while (same < recorded.length && same < this.recorded.length && sameAction(recorded[same], this.recorded[same])) same++;
    if (same < this.recorded.length || same < recorded.length) {
      // Checkpoints up to the first action that differs stay valid.
      const validTo = Math.min(recorded[same]?.at ?? Infinity, this.recorded[same]?.at ?? Infinity);
      for (const at of this.checkpoints.keys()) if (at >= validTo) this.checkpoints.delete(at);
      if (this.building && this.building.at >= validTo) this.building = null;
    }
    this.recorded = recorded;
    this.headMs = session.headMs;
  }

  /** The session showing the run at `t`: `current` moved forward, or a checkpoint's, or a replay. */
  seek(current, t) {
    this.track(current);
    const target = Math.max(0, Math.min(t, this.headMs));
    if (current.nowMs() <= target) {
      current.runUntil(target);
      return current;
    }
    const times = [...this.checkpoints.keys()].filter((at) => at <= target);
    const best = times.length ? Math.max(...times) : null;
    let session;
    if (best !== null) {
      session = this.checkpoints.get(best);
      this.checkpoints.delete(best);
    } else {
      session = new Session(this.wasm, this.base);
    }
    session.forks = current.forks;
    return session.resume(this.recorded, this.headMs, target);
  }

  /** Checkpoint times wanted for the recorded run. */
  wanted() {
    const times = [];
    for (let at = this.everyMs; at < this.headMs; at += this.everyMs) times.push(at);
    return times;
  }

  /**
   * Builds checkpoints for up to `budgetMs` of real time (call from idle callbacks); returns
   * true while some are still missing.
   */
  work(budgetMs) {
    const start = performance.now();
    while (performance.now() - start < budgetMs) {
      if (!this.building) {
        const missing = this.wanted().find((at) => !this.checkpoints.has(at));
        if (missing === undefined) return false;
        this.building = { at: missing, session: new Session(this.wasm, this.base) };
        this.building.session.future = this.recorded.filter((a) => a.at <= missing);
      }
      const { at, session } = this.building;
      session.runUntil(Math.min(at, session.nowMs() + 500));
      if (session.nowMs() >= at) {
        session.future = [];
        this.checkpoints.set(at, session);
        this.building = null;
      }
    }
    return true;
  }

  /** Builds every missing checkpoint now (tests and the console). */
  buildAll() {
    while (this.work(1000));
  }
}

function sameAction(a, b) {
  return a.at === b.at && a.type === b.type && JSON.stringify(a.args) === JSON.stringify(b.args);
}
