// The run in the URL: encoding round-trips, bad links are refused with a reason, and a replay
// reaches the same trace hash however virtual time was chopped up while the run was recorded.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Session } from '../js/session.js';
import { decodeRun, encodeRun } from '../js/url.js';
import { wasm } from './replay-node.mjs';

test('a run survives the URL, awkward text included', () => {
  const run = {
    seed: 42, nodes: 5, untilMs: 2400.123456, actions: [
      { at: 812.5, type: 'put', args: [1, 'x;,!|&=#%', 'hé llo'] },
      { at: 1200, type: 'crash', args: [1] },
      { at: 1500, type: 'partition', args: [[[2, 3], [4, 5]]] },
      { at: 1600.000001, type: 'cas', args: [2, 'x', null, ''] },
      { at: 1700, type: 'cas', args: [2, 'x', '!', null] },
      { at: 1800, type: 'heal', args: [] },
      { at: 1900, type: 'drop', args: [0.25] },
      { at: 2000, type: 'get', args: [3, ''] },
      { at: 2100, type: 'delete', args: [4, 'x'] },
      { at: 2200, type: 'restart', args: [1] },
      { at: 2250, type: 'stale', args: [2, 'x,y'] },
      { at: 2300, type: 'add', args: [] },
      { at: 2350, type: 'transfer', args: [6] },
      { at: 2390, type: 'remove', args: [3] },
    ],
  };
  const hash = encodeRun(run);
  assert.match(hash, /^#seed=42&n=5&t=2400\.123456&a=812\.5,put,1,/);
  assert.deepEqual(decodeRun(hash), run);
  assert.equal(decodeRun(''), null);
  assert.deepEqual(decodeRun('#seed=9'), { seed: 9, nodes: 5, actions: [], untilMs: 0 });
});

test('malformed links are refused with a reason', () => {
  assert.throws(() => decodeRun('#seed=1&n=9'), /3 to 7 nodes/);
  assert.throws(() => decodeRun('#seed=-1'), /whole number/);
  assert.throws(() => decodeRun('#seed=1&a=10,explode,1'), /unknown type "explode"/);
  assert.throws(() => decodeRun('#seed=1&a=10,crash,99'), /no node 99/);
  assert.throws(() => decodeRun('#seed=1&a=10,put,1,k'), /put takes 3 fields/);
  assert.throws(() => decodeRun('#seed=1&a=abc,heal'), /time should be a number/);
  assert.throws(() => decodeRun('#seed=1&a=10,add,1'), /add takes 0 fields/);
  assert.throws(() => decodeRun('#seed=1&a=10,remove,10'), /no node 10/);
});

test('replay reaches the recorded trace hash, however time was chopped', () => {
  const base = { seed: 7, nodes: 5 };
  const script = [
    [700.123456, 'put', 1, 'a', 'x'], [900, 'crash', 2], [1300.5, 'partition', [[1, 3], [2, 4, 5]]],
    [2100, 'heal'], [2200, 'restart', 2], [2500.000001, 'drop', 0.2], [2600, 'get', 3, 'a'],
  ];
  const record = (chunk) => {
    const s = new Session(wasm, base);
    for (const [at, type, ...args] of script) {
      while (s.nowMs() < at) s.runFor(Math.min(chunk(), at - s.nowMs()));
      s.perform(type, ...args);
    }
    s.runUntil(4000);
    return s;
  };
  const whole = record(() => 1e9);
  const frames = record(() => 16.6667);
  let i = 0;
  const jittery = record(() => [0.3, 7, 0.000001, 2.5][i++ % 4]);
  const replayed = Session.replay(wasm, decodeRun(encodeRun({ ...base, actions: whole.actions, untilMs: 4000 })));
  const hashes = [whole, frames, jittery, replayed].map((s) => s.sim.traceHash());
  assert.deepEqual(new Set(hashes).size, 1, hashes.join(' '));
  assert.equal(replayed.nowMs(), 4000);
  assert.throws(() => Session.replay(wasm, { ...base, actions: [{ at: 5, type: 'restart', args: [1] }] }), /action 1 \(restart at 5 ms\) failed/);
});

test('the checker\'s culprits map back to op ids, skipping failed ops it never saw', async () => {
  const { readCheck } = await import('../js/timeline.js');
  const ops = [{ id: 0, state: 'ok' }, { id: 1, state: 'failed' }, { id: 2, state: 'unknown' }, { id: 3, state: 'ok' }];
  const bad = readCheck({ violations: [], operations: 3, linearizability: { Violation: { key: [120], ops: [1, 2], reason: 'get returned a value never written' } } }, ops);
  assert.equal(bad.verdict, 'bad');
  assert.equal(bad.ok, false);
  assert.deepEqual([...bad.violatingOps], [2, 3]);
  assert.match(bad.text, /NOT linearizable on key x: get returned a value never written/);
  const good = readCheck({ violations: [], operations: 3, linearizability: 'Linearizable' }, ops);
  assert.equal(good.ok, true);
  const unsafe = readCheck({ violations: [{ invariant: 'election_safety', detail: 'two leaders in term 2' }], operations: 3, linearizability: 'Linearizable' }, ops);
  assert.equal(unsafe.ok, false);
});

test('membership changes and stale reads replay to the same hash as the live run', () => {
  const base = { seed: 12, nodes: 3 };
  const live = new Session(wasm, base);
  live.runFor(600);
  const added = live.perform('add');
  assert.equal(added, 4);
  live.runFor(900);
  live.perform('transfer', 4);
  live.runFor(700);
  live.perform('stale', 2, 'k');
  live.perform('remove', 1);
  live.runFor(1500);
  const replayed = Session.replay(wasm, decodeRun(encodeRun({ ...base, actions: live.actions, untilMs: live.nowMs() })));
  assert.equal(replayed.sim.traceHash(), live.sim.traceHash());
  const view = replayed.sim.state();
  assert.equal(view.nodes.length, 4);
  assert.equal(view.nodes.find((n) => n.id === 1).removed, true);
  const leader = view.nodes.find((n) => n.role === 'leader');
  assert.deepEqual(leader.voters, [[2, 3, 4]]);
});

test('rewinding (with and without checkpoints) and forking give the same hashes as straight runs', async () => {
  const { Rewinder } = await import('../js/rewind.js');
  const base = { seed: 4, nodes: 5 };
  const live = new Session(wasm, base);
  const script = [[500, 'put', 1, 'a', '1'], [1700, 'crash', 2], [2600, 'partition', [[1, 2], [3, 4, 5]]],
    [4100, 'heal'], [5200, 'stale', 3, 'a'], [6100, 'restart', 2], [7300, 'add']];
  for (const [at, type, ...args] of script) {
    live.runUntil(at);
    live.perform(type, ...args);
  }
  live.runUntil(9000);
  const end = live.sim.traceHash();
  const straight = (t) => Session.replay(wasm, { ...base, actions: live.actions.filter((a) => a.at <= t), untilMs: t }).sim.traceHash();
  const rewinder = new Rewinder(wasm, base, 2000);
  let s = rewinder.seek(live, 3000);
  assert.equal(s.sim.traceHash(), straight(3000));
  assert.equal(s.future.length, 4);
  s = rewinder.seek(s, 9000);
  assert.equal(s.sim.traceHash(), end);
  rewinder.buildAll();
  assert.deepEqual([...rewinder.checkpoints.keys()].sort((a, b) => a - b), [2000, 4000, 6000, 8000]);
  for (const t of [6100, 4100, 2599.5, 8000, 100]) {
    s = rewinder.seek(s, t);
    assert.equal(s.nowMs(), t);
    assert.equal(s.sim.traceHash(), straight(t), `at ${t}`);
  }
  // Acting at 5000 forks the run: later recorded actions are dropped, and the fork replays.
  s = rewinder.seek(s, 5000);
  s.perform('crash', 4);
  assert.deepEqual(s.forks, [5000]);
  assert.equal(s.future.length, 0);
  s.runFor(1000);
  rewinder.track(s);
  assert.deepEqual([...rewinder.checkpoints.keys()].filter((t) => t > 5000), []);
  const link = encodeRun({ ...base, actions: s.recorded(), untilMs: s.headMs, forks: s.forks });
  assert.match(link, /&f=5000&/);
  const forked = Session.replay(wasm, decodeRun(link));
  assert.equal(forked.sim.traceHash(), s.sim.traceHash());
  assert.deepEqual(forked.forks, [5000]);
  // A rewound link (`v`) shows the earlier moment and keeps the rest as the future.
  const rewound = Session.replay(wasm, decodeRun(encodeRun({ ...base, actions: live.actions, untilMs: 9000, viewMs: 3000 })));
  assert.equal(rewound.sim.traceHash(), straight(3000));
  assert.equal(rewound.headMs, 9000);
});

test('each guided scenario shows what its text says', async () => {
  const { SCENARIOS } = await import('../js/scenarios.js');
  const leaderOf = (view) => view.nodes.filter((n) => n.role === 'leader').sort((a, b) => b.term - a.term)[0];
  const commits = (s, node) => s.sim.events(0).filter((e) => e.kind.type === 'commit' && e.kind.node === node).map((e) => e.kind.index);
  const checks = {
    election: (s, v) => assert.ok(leaderOf(v).id !== 1 && leaderOf(v).term >= 2),
    replication: (s, v) => {
      assert.deepEqual(s.sim.ops().map((o) => o.state), ['ok', 'ok']);
      assert.ok(v.nodes.filter((n) => n.commit_index >= 3).length >= 3);
    },
    'partition-heals': (s, v) => {
      assert.equal(v.nodes.filter((n) => n.role === 'leader').length, 1);
      assert.match(s.sim.ops().at(-1).result, /^ok (kept|lost)$/);
      assert.equal(s.sim.check().linearizability, 'Linearizable');
    },
    minority: (s, v) => {
      const n1 = v.nodes.find((n) => n.id === 1);
      assert.ok(n1.log.some((e) => e.summary.startsWith('SET x') && e.index > n1.commit_index));
      assert.equal(s.sim.ops()[0].state, 'pending');
    },
    'stale-read': (s) => assert.ok(s.sim.check().linearizability.Violation),
    'figure-8': (s, v) => {
      assert.equal(leaderOf(v).id, 2);
      assert.ok(v.nodes.find((n) => n.id === 2).log.some((e) => e.index === 2 && e.term === 1 && e.summary.startsWith('SET x')));
      assert.deepEqual(commits(s, 2), [1, 3], 'index 2 commits only with the new term\'s entry');
    },
    'membership-partition': (s, v) => {
      assert.equal(v.nodes.find((n) => n.id === 4).role, 'learner');
      assert.deepEqual(leaderOf(v).voters, [[1, 2, 3]]);
      const during = Session.replay(wasm, { ...decodeRun(SCENARIOS.at(-1).link), viewMs: 2000 }).sim.state();
      assert.equal(during.nodes.find((n) => n.id === 1).voters.length, 2, 'N1 is stuck in the joint configuration');
    },
  };
  assert.deepEqual(SCENARIOS.map((s) => s.id), Object.keys(checks));
  for (const scenario of SCENARIOS) {
    const run = decodeRun(scenario.link);
    assert.equal(encodeRun(run), scenario.link, `${scenario.id}'s link is in canonical form`);
    const s = Session.replay(wasm, run);
    checks[scenario.id](s, s.sim.state());
    assert.deepEqual(s.sim.check().violations, [], scenario.id);
  }
});

test('a sweep result opens as a run with the same trace hash; the planted bug is found, and only with it', async () => {
  const { seedLink } = await import('../js/sweep.js');
  const results = (bug) => Array.from({ length: 30 }, (_, seed) => ({ seed, nodes: 3 + (seed % 3), durationMs: 5000, bug, ...wasm.runSeed(seed, 3 + (seed % 3), 5000, bug) }));
  assert.deepEqual(results(false).filter((r) => !r.ok).map((r) => r.seed), []);
  const failing = results(true).filter((r) => !r.ok);
  assert.ok(failing.length > 0, 'the planted bug went unnoticed');
  const r = failing[0];
  assert.match(r.problem, /not linearizable on key k\d/);
  const link = seedLink(r);
  assert.match(link, new RegExp(`^#seed=${r.seed}&n=${r.nodes}&w=5000&bug=1&t=`));
  const run = decodeRun(link);
  assert.deepEqual({ w: run.workloadMs, bug: run.bug }, { w: 5000, bug: true });
  const s = Session.replay(wasm, run);
  assert.equal(s.sim.traceHash(), r.traceHash);
  assert.ok(s.sim.check().linearizability.Violation);
});

test('a seed\'s workload run rewinds like any other run', async () => {
  const { Rewinder } = await import('../js/rewind.js');
  const run = { seed: 8, nodes: 5, actions: [{ at: 1200, type: 'crash', args: [2] }], untilMs: 4000, workloadMs: 5000, bug: true };
  const s = Session.replay(wasm, run);
  const rewinder = new Rewinder(wasm, s.base(), 1000);
  rewinder.buildAll();
  const back = rewinder.seek(s, 2500);
  assert.equal(back.sim.traceHash(), Session.replay(wasm, { ...run, viewMs: 2500 }).sim.traceHash());
  assert.equal(rewinder.seek(back, 4000).sim.traceHash(), Session.replay(wasm, run).sim.traceHash());
});
