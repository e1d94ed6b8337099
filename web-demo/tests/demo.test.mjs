// The web demo in headless Chromium: it loads cleanly, shows a leader, commits and reads a put
// made through the client panel, survives the leader crashing and being cut off, and replays
// runs exactly (the same trace hashes as the native simulator and as its own links).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { launch, openDemo, ROOT, serve } from './harness.mjs';

let server;
let chromium;
before(async () => {
  server = await serve();
  chromium = await launch();
});
after(async () => {
  await chromium?.close();
  await server?.close();
});

async function open(hash = '') {
  const page = await openDemo(chromium.browser, server.url, hash);
  page.setDefaultTimeout(20_000);
  return page;
}

const majority = (n) => Math.floor(n / 2) + 1;
const state = (page) => page.evaluate(() => window.demo.state());
const node = (id) => `#cluster .node[data-node-id="${id}"]`;
/** Clicks a node's circle, as a user would. */
const clickNode = (page, id) => page.click(`${node(id)} .body`);

/** Waits until some node other than `not` is shown as leader; returns its id. */
async function waitForLeader(page, not = null) {
  const handle = await page.waitForFunction((not) => {
    const el = [...document.querySelectorAll('#cluster .node[data-role="leader"]')]
      .find((e) => Number(e.dataset.nodeId) !== not);
    return el ? Number(el.dataset.nodeId) : null;
  }, not);
  return handle.jsonValue();
}

/** Sends an operation through the client panel; returns its op id once it has a result. */
async function send(page, { op, node: to, key, value, expected }) {
  const before = await page.evaluate(() => window.demo.ops().length);
  await page.selectOption('#client-node', String(to));
  await page.selectOption('#client-op', op);
  await page.fill('#client-key', key);
  if (value !== undefined) await page.fill('#client-value', value);
  if (expected !== undefined) await page.fill('#client-expected', expected);
  await page.click('#client-send');
  await page.waitForSelector(`#results li[data-op-id="${before}"]`);
  return before;
}

async function waitForResult(page, id) {
  await page.waitForSelector(`#results li[data-op-id="${id}"]:not([data-state="pending"])`);
  return page.evaluate((id) => window.demo.ops().find((o) => o.id === id), id);
}

async function realTime(page) {
  await page.selectOption('#speed', '1');
}

describe('web demo in headless Chromium', () => {
  test('loads without console errors and shows a leader', async () => {
    const page = await open();
    const leader = await waitForLeader(page);
    const nodes = await page.$$eval('#cluster .node', (els) => els.map((e) => [Number(e.dataset.nodeId), e.dataset.role]));
    assert.deepEqual(nodes.map(([id]) => id), [1, 2, 3, 4, 5]);
    for (const [, role] of nodes) assert.ok(['leader', 'follower', 'candidate', 'learner', 'crashed'].includes(role), role);
    assert.equal(nodes.filter(([, role]) => role === 'leader').length, 1);
    assert.match(await page.textContent('#status'), new RegExp(`Node ${leader} leads term \\d+: a write is committed once a majority \\(3 of 5\\)`));
    assert.match(await page.textContent('#verdict'), /linearizable/);
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test('a put through the client panel commits on a majority and a get reads it back', async () => {
    const page = await open('#seed=3&n=5');
    await realTime(page);
    const leader = await waitForLeader(page);
    const put = await send(page, { op: 'put', node: leader, key: 'color', value: 'blue' });
    const done = await waitForResult(page, put);
    assert.equal(done.state, 'ok', done.result);
    assert.equal(await page.textContent(`#results li[data-op-id="${put}"] .res`), 'ok');

    const view = await state(page);
    const entry = view.nodes.find((n) => n.id === leader).log.find((e) => e.summary.startsWith('SET color'));
    assert.ok(entry, 'the put is in the leader\'s log');
    const holders = view.nodes.filter((n) => n.log.some((e) => e.index === entry.index && e.term === entry.term));
    assert.ok(holders.length >= majority(5), `on ${holders.length} logs`);
    const leaderView = view.nodes.find((n) => n.id === leader);
    assert.ok(leaderView.commit_index >= entry.index, 'the leader counts it committed');
    const box = await page.$eval(`#logs .row[data-node-id="${leader}"] .entry[title^="#${entry.index},"]`, (e) => e.className);
    assert.match(box, /\bcommitted\b/);

    const follower = view.nodes.find((n) => n.id !== leader).id;
    const get = await send(page, { op: 'get', node: follower, key: 'color' });
    const read = await waitForResult(page, get);
    assert.equal(read.state, 'ok');
    assert.equal(read.result, 'ok blue');
    assert.equal(await page.textContent(`#results li[data-op-id="${get}"] .res`), 'ok blue');
    await page.waitForFunction(() => document.querySelectorAll('#timeline .op').length === 2);
    assert.match(await page.textContent('#verdict'), /✓ linearizable \(2 ops\)/);
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test('crashing the leader by clicking it brings a new leader; restarting it brings it back as a follower', async () => {
    const page = await open('#seed=5&n=5');
    await realTime(page);
    const old = await waitForLeader(page);
    const oldTerm = (await state(page)).nodes.find((n) => n.id === old).term;
    await clickNode(page, old);
    assert.equal(await page.getAttribute(node(old), 'data-role'), 'crashed');
    const next = await waitForLeader(page, old);
    assert.notEqual(next, old);
    const view = await state(page);
    assert.ok(view.nodes.find((n) => n.id === next).term > oldTerm, 'the new leader has a later term');

    await clickNode(page, old);
    await page.waitForSelector(`${node(old)}[data-role="follower"]`);
    await page.waitForFunction((old) => {
      const back = window.demo.state().nodes.find((n) => n.id === old);
      return back.role === 'follower' && back.leader !== null && back.leader !== old;
    }, old);
    assert.deepEqual((await page.evaluate(() => window.demo.actions())).map((a) => [a.type, a.args]), [['crash', [old]], ['restart', [old]]]);
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test('isolating the leader: the majority elects a new one and the old one cannot commit', async () => {
    const page = await open('#seed=11&n=5');
    await realTime(page);
    const old = await waitForLeader(page);
    await page.click('#isolate-leader');
    const view0 = await state(page);
    assert.equal(new Set(view0.nodes.map((n) => n.partition)).size, 2);
    const stuckAt = view0.nodes.find((n) => n.id === old).commit_index;

    const stale = await send(page, { op: 'put', node: old, key: 'k', value: 'lost' });
    const next = await waitForLeader(page, old);
    const fresh = await send(page, { op: 'put', node: next, key: 'k', value: 'kept' });
    assert.equal((await waitForResult(page, fresh)).state, 'ok');
    await page.evaluate(() => window.demo.runFor(1000));

    const view = await state(page);
    const oldView = view.nodes.find((n) => n.id === old);
    assert.equal(oldView.commit_index, stuckAt, 'the isolated node committed nothing');
    const staleOp = await page.evaluate((id) => window.demo.ops().find((o) => o.id === id), stale);
    assert.notEqual(staleOp.state, 'ok', `the cut-off leader's put returned ${staleOp.result}`);
    const nextView = view.nodes.find((n) => n.id === next);
    assert.ok(nextView.commit_index > stuckAt, 'the majority side goes on committing');
    assert.match(await page.textContent('#status'), new RegExp(`Node ${next} leads term ${nextView.term}`));

    await page.click('#heal');
    await page.evaluate(() => window.demo.runFor(1000));
    const healed = await state(page);
    assert.equal(new Set(healed.nodes.map((n) => n.partition)).size, 1);
    assert.equal(healed.nodes.filter((n) => n.role === 'leader').length, 1);
    // The put sent to the cut-off leader was never answered, so its client may retry it after
    // the heal; then it takes effect after "kept" — never before the heal.
    const healedAt = (await page.evaluate(() => window.demo.actions())).find((a) => a.type === 'heal').at;
    const get = await send(page, { op: 'get', node: old, key: 'k' });
    const read = await waitForResult(page, get);
    const retried = await page.evaluate((id) => window.demo.ops().find((o) => o.id === id), stale);
    if (read.result === 'ok lost') {
      assert.equal(retried.state, 'ok');
      assert.ok(retried.returnedMs > healedAt, `the stale put returned at ${retried.returnedMs} ms, before the heal at ${healedAt} ms`);
    } else {
      assert.equal(read.result, 'ok kept');
    }
    const check = await page.evaluate(() => window.demo.check());
    assert.deepEqual(check.violations, []);
    assert.equal(check.linearizability, 'Linearizable');
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test('runSeed in Chromium gives the native trace hashes', async () => {
    const seeds = [1, 2, 3, 4];
    const native = kvSimHashes(seeds);
    const page = await open();
    await page.click('#play'); // pause: the page's own run is not under test here
    const browser = await page.evaluate((seeds) => seeds.map((s) => {
      const r = window.demo.runSeed(s, 3 + (s % 3), 5000);
      if (!r.ok) throw new Error(`seed ${s} failed its checks`);
      return `${s} ${r.traceHash}`;
    }), seeds);
    assert.deepEqual(browser, native);
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test('a link replays the exact run: the same trace hash in Chromium twice, under node and natively', async () => {
    const page = await open('#seed=21&n=5');
    await page.click('#play'); // pause and drive virtual time by hand
    await page.evaluate(() => window.demo.runFor(400));
    const leader = await page.evaluate(() => window.demo.leader());
    await send(page, { op: 'put', node: leader, key: 'a;b,c!', value: 'x y' });
    await page.evaluate(() => window.demo.runFor(37.5));
    await clickNode(page, leader);
    await page.evaluate(() => window.demo.runFor(500));
    await page.click('#step');
    await page.selectOption('#client-op', 'cas');
    await send(page, { op: 'cas', node: leader === 1 ? 2 : 1, key: 'a;b,c!', expected: 'x y', value: '' });
    await page.evaluate(() => window.demo.runFor(300));
    await page.click('#isolate-leader');
    await page.$eval('#drop-rate', (e) => { e.value = '0.2'; e.dispatchEvent(new Event('change')); });
    await page.evaluate(() => window.demo.runFor(700));
    await page.click('#heal');
    await clickNode(page, leader);
    await page.evaluate(() => window.demo.runFor(250));
    await page.click('#copy-link');
    const first = await page.evaluate(() => ({ link: window.demo.link(), hash: window.demo.traceHash(), now: window.demo.nowMs(), actions: window.demo.actions() }));
    assert.equal(first.actions.length, 7);
    assert.equal(location(first.link), await page.evaluate(() => location.hash));
    assert.deepEqual(page.errors, []);
    await page.close();

    for (let i = 0; i < 2; i++) {
      const again = await open(location(first.link));
      const seen = await again.evaluate(() => ({ hash: window.demo.traceHash(), now: window.demo.nowMs(), actions: window.demo.actions() }));
      assert.deepEqual(seen, { hash: first.hash, now: first.now, actions: first.actions });
      assert.equal(await again.textContent('#trace-hash'), first.hash);
      assert.match(await again.textContent('#replay-note'), /Replayed this link: seed 21, 5 nodes, 7 actions/);
      assert.deepEqual(again.errors, []);
      await again.close();
    }

    const { replayLink } = await import('./replay-node.mjs');
    assert.equal(replayLink(location(first.link)).traceHash, first.hash);
    assert.equal(native('kv-replay', [location(first.link)]), first.hash);
  });
});

describe('membership and anomalies in headless Chromium', () => {
  test('add, transfer and remove from the page: drawn as they happen, and the link replays them', async () => {
    const page = await open('#seed=12&n=3');
    await page.click('#play'); // pause and drive virtual time by hand
    await page.evaluate(() => window.demo.runFor(600));
    await page.click('#add-node');
    await page.waitForSelector(`${node(4)}`);
    // Millisecond by millisecond, the leader's configuration goes learner → joint → voter
    // (the leader uses a configuration as soon as it is in its log).
    const stages = await page.evaluate(() => {
      const seen = [];
      for (let i = 0; i < 300; i++) {
        window.demo.runFor(1);
        const leader = window.demo.state().nodes.find((n) => n.role === 'leader');
        const stage = leader.learners.includes(4) ? 'learner' : leader.voters.length === 2 ? 'joint'
          : leader.voters[0].includes(4) ? 'voter' : 'outside';
        if (seen.at(-1) !== stage) seen.push(stage);
      }
      return seen;
    });
    assert.deepEqual(stages, ['learner', 'joint', 'voter']);
    await page.evaluate(() => window.demo.runFor(1500));
    assert.match(await page.textContent('#membership'), /voters \{N1, N2, N3, N4\}/);
    assert.equal(await page.getAttribute(node(4), 'data-member'), 'voter');
    const feed = await page.textContent('#feed');
    assert.match(feed, /node 4 is a learner/);
    assert.match(feed, /node 4 is a voter/);

    await page.selectOption('#member-node', '4');
    await page.click('#transfer-leader');
    await page.evaluate(() => window.demo.runFor(1000));
    assert.equal(await page.evaluate(() => window.demo.leader()), 4);

    await page.selectOption('#member-node', '1');
    await page.click('#remove-node');
    await page.evaluate(() => window.demo.runFor(1500));
    assert.equal(await page.getAttribute(node(1), 'data-member'), 'removed');
    assert.match(await page.textContent('#membership'), /voters \{N2, N3, N4\}; removed \{N1\}/);
    assert.match(await page.textContent('#status'), /majority \(2 of 3\)/);
    const first = await page.evaluate(() => ({ link: window.demo.link(), hash: window.demo.traceHash(), actions: window.demo.actions() }));
    assert.deepEqual(first.actions.map((a) => a.type), ['add', 'transfer', 'remove']);
    assert.deepEqual(page.errors, []);
    await page.close();

    const again = await open(location(first.link));
    assert.equal(await again.evaluate(() => window.demo.traceHash()), first.hash);
    assert.equal(await again.getAttribute(node(1), 'data-member'), 'removed');
    assert.deepEqual(again.errors, []);
    await again.close();
    assert.equal(native('kv-replay', [location(first.link)]), first.hash);
  });

  test('a stale read under a partition turns the verdict red, says why, and matches the native verdict', async () => {
    const page = await open('#seed=5&n=5');
    await page.click('#play');
    await page.evaluate(() => window.demo.runFor(1000));
    const old = await page.evaluate(() => window.demo.leader());
    await send(page, { op: 'put', node: old, key: 'k', value: 'v1' });
    await page.evaluate(() => window.demo.runFor(300));
    await page.click('#isolate-leader');
    await page.evaluate(() => window.demo.runFor(1500));
    const next = await page.evaluate(() => window.demo.leader());
    assert.notEqual(next, old);
    await send(page, { op: 'put', node: next, key: 'k', value: 'v2' });
    await page.evaluate(() => window.demo.runFor(300));
    assert.match(await page.textContent('#verdict'), /✓ linearizable/);
    await page.selectOption('#client-op', 'get');
    await page.selectOption('#client-read', 'stale');
    const stale = await send(page, { op: 'get', node: old, key: 'k' });
    await page.evaluate(() => window.demo.runFor(50));
    assert.equal((await page.evaluate((id) => window.demo.ops().find((o) => o.id === id), stale)).result, 'ok v1');
    const verdict = await page.textContent('#verdict');
    assert.match(verdict, /✗ NOT linearizable on key k: op #\d+ \(.*get.*\) cannot be linearized/);
    assert.match(await page.getAttribute('#verdict', 'class'), /\bbad\b/);
    const why = await page.textContent('#why');
    assert.match(why, new RegExp(`#${stale} local-get k on N${old} .* answered "ok v1"\\. But #\\d+ put k=v2 \\(N${next}\\) had already returned`));
    assert.match(why, /stale read/);
    assert.ok(await page.$(`#timeline .op.violating[data-op-id="${stale}"]`), 'the stale read is drawn red');
    const link = location(await page.evaluate(() => window.demo.link()));
    assert.match(link, new RegExp(`stale,${old},k`));
    assert.deepEqual(page.errors, []);
    await page.close();
    const [hash, nativeVerdict] = native('kv-replay', ['--check', link]).split('\n');
    assert.equal(hash, await (async () => (await import('./replay-node.mjs')).replayLink(link).traceHash)());
    assert.equal(nativeVerdict, verdict.replace(/^✗ NOT/, 'not'));
  });
});

describe('guided scenarios in headless Chromium', () => {
  test('picking a scenario opens its link and says what to watch', async () => {
    const { SCENARIOS } = await import('../js/scenarios.js');
    const page = await open();
    await page.selectOption('#scenario', 'figure-8');
    await page.waitForFunction((link) => location.hash === link && window.demo.nowMs() === 2000, SCENARIOS.find((s) => s.id === 'figure-8').link);
    assert.match(await page.textContent('#scenario-note'), /figure 8.*What to watch: N1 \(term 1\)/);
    assert.equal(await page.evaluate(() => window.demo.leader()), 2);
    await page.click('#new-run');
    assert.equal(await page.isHidden('#scenario-note'), true);
    assert.deepEqual(page.errors, []);
    await page.close();
  });
});

describe('seed sweep in headless Chromium', () => {
  async function sweep(page, { count, bug }) {
    await page.fill('#sweep-count', String(count));
    await page.fill('#sweep-from', '0');
    await page.setChecked('#sweep-bug', bug);
    await page.click('#sweep-start');
    await page.waitForFunction(() => document.getElementById('sweep-card').dataset.state === 'done', null, { timeout: 120_000 });
    return page.evaluate(() => ({
      stats: document.getElementById('sweep-stats').textContent,
      progress: document.getElementById('sweep-progress').value,
      failing: [...document.querySelectorAll('#sweep-results tr.bad')].map((tr) => ({
        seed: Number(tr.dataset.seed), hash: tr.cells[5].textContent, problem: tr.cells[2].textContent, link: tr.querySelector('a.open-run')?.getAttribute('href'),
      })),
    }));
  }

  test('without the planted bug no seed fails; with it the sweep finds one, which opens as a replayable run', async () => {
    const page = await open();
    await page.click('#play');
    const clean = await sweep(page, { count: 30, bug: false });
    assert.equal(clean.progress, 30);
    assert.match(clean.stats, /^done: 30 runs, [\d.]+ runs\/s, 0 failing$/);
    assert.deepEqual(clean.failing, []);

    const buggy = await sweep(page, { count: 30, bug: true });
    assert.match(buggy.stats, /^done: 30 runs, [\d.]+ runs\/s, [1-9]\d* failing \(planted bug on\)$/);
    console.log(`sweep: ${clean.stats} | ${buggy.stats}`);
    const first = buggy.failing.at(-1);
    assert.match(first.problem, /✗ not linearizable on key k\d/);
    assert.deepEqual(page.errors, []);
    await page.click(`#sweep-results tr[data-seed="${first.seed}"] a.open-run`);
    await page.waitForFunction((link) => location.hash === link && window.demo.session?.nowMs?.() !== 0, first.link).catch(() => {});
    await page.waitForFunction((hash) => window.demo.traceHash() === hash, first.hash);
    assert.match(await page.textContent('#verdict'), /✗ NOT linearizable on key k\d/);
    assert.match(await page.textContent('#replay-note'), new RegExp(`seed ${first.seed}, \\d nodes, the fault workload \\(5 s\\) with the planted bug`));
    assert.deepEqual(page.errors, []);
    await page.close();
    assert.equal(native('kv-replay', [first.link]), first.hash);
  });
});

describe('time travel in headless Chromium', () => {
  const RUN = '#seed=8&n=5&t=9000&a=600,put,1,x,1;1500,crash,1;2700,partition,2.3|4.5;4200,heal;5100,restart,1;6300,put,2,x,2;7000,add';

  test('scrubbing back and forward gives the straight runs\' hashes; a fork\'s link replays in Chromium, node and natively', async () => {
    const { replayLink } = await import('./replay-node.mjs');
    const page = await open(RUN);
    const end = await page.evaluate(() => window.demo.traceHash());
    assert.equal(end, native('kv-replay', [RUN]));
    const scrub = (ms) => page.$eval('#scrub', (e, ms) => { e.value = String(ms); e.dispatchEvent(new Event('input')); }, ms);
    await scrub(3000);
    const at3 = await page.evaluate(() => ({ hash: window.demo.traceHash(), now: window.demo.nowMs(), link: window.demo.link() }));
    assert.equal(at3.now, 3000);
    assert.match(await page.textContent('#scrub-out'), /rewound: 6\.000 s before the end/);
    assert.match(location(at3.link), /&t=9000&v=3000&/);
    assert.equal(at3.hash, replayLink(location(at3.link)).traceHash);
    assert.equal(at3.hash, native('kv-replay', [location(at3.link)]));
    // The cluster drawn is the cluster at 3 s: node 1 down, the network split.
    assert.equal(await page.getAttribute(node(1), 'data-role'), 'crashed');
    assert.equal(await page.$$eval('#cluster .link.cut', (els) => els.length) > 0, true);
    await scrub(9000);
    assert.equal(await page.evaluate(() => window.demo.traceHash()), end);
    assert.equal(await page.getAttribute(node(1), 'data-role') !== 'crashed', true);
    await page.click('#back');
    assert.equal(await page.evaluate(() => window.demo.nowMs()), 8750);

    // Act at 5.5 s: the run forks there.
    await scrub(5500);
    await page.selectOption('#member-node', '3');
    await page.click('#transfer-leader');
    assert.match(await page.textContent('#replay-note'), /Forked the run at 5\.500 s/);
    await page.evaluate(() => window.demo.runFor(800));
    const fork = await page.evaluate(() => ({ hash: window.demo.traceHash(), link: window.demo.link(), actions: window.demo.actions() }));
    assert.deepEqual(fork.actions.map((a) => a.type), ['put', 'crash', 'partition', 'heal', 'restart', 'transfer']);
    assert.match(location(fork.link), /&t=6300&f=5500&/);
    assert.deepEqual(page.errors, []);
    await page.close();
    const again = await open(location(fork.link));
    assert.equal(await again.evaluate(() => window.demo.traceHash()), fork.hash);
    assert.deepEqual(again.errors, []);
    await again.close();
    assert.equal(replayLink(location(fork.link)).traceHash, fork.hash);
    assert.equal(native('kv-replay', [location(fork.link)]), fork.hash);
  });

  test('a 60 s run redraws within 200 ms at any time once checkpoints are built', async () => {
    const page = await open('#seed=1&n=5&t=60000&a=1000,put,1,x,1');
    const took = await page.evaluate(() => {
      window.demo.buildCheckpoints();
      return [31234, 7000, 52345.5, 12000, 59000, 2500, 44444].map((t) => window.demo.seek(t));
    });
    const sorted = [...took].sort((a, b) => a - b);
    console.log(`seek redraw ms: ${took.map((t) => t.toFixed(0)).join(' ')}`);
    assert.ok(sorted[Math.floor(sorted.length / 2)] <= 200, `median ${sorted[3]} ms`);
    assert.deepEqual(page.errors, []);
    await page.close();
  });
});

function location(link) {
  return link.slice(link.indexOf('#'));
}

/**
 * Runs one of kv-node's native binaries (kv-sim, kv-replay) through cargo; NATIVE_BIN_DIR names
 * a directory of already built ones (e.g. target/release) to skip cargo.
 */
function native(bin, args) {
  const dir = process.env.NATIVE_BIN_DIR;
  const out = dir
    ? execFileSync(`${dir}/${bin}`, args, { encoding: 'utf8' })
    : execFileSync('cargo', ['run', '-q', '--release', '-p', 'kv-node', '--bin', bin, '--', ...args], { cwd: `${ROOT}/..`, encoding: 'utf8' });
  return out.trim();
}

/** "seed hash" lines from the native simulator. */
function kvSimHashes(seeds) {
  return native('kv-sim', ['--hashes', seeds.join(',')]).split('\n');
}
