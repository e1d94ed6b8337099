// Wires the page together: the run (a Session), the animation loop, the views and the URL.
import { Controls } from './controls.js';
import { EventFeed } from './events.js';
import { explain, legend } from './explain.js';
import { LogsView, logsKey } from './logs.js';
import { ClusterView, groupNames } from './render.js';
import { Session } from './session.js';
import { Rewinder } from './rewind.js';
import { SCENARIOS, scenarioOf } from './scenarios.js';
import { SweepView } from './sweep.js';
import { readCheck, TimelineView } from './timeline.js';
import { decodeRun, encodeRun } from './url.js';
import { loadWasm } from './wasm.js';

const $ = (id) => document.getElementById(id);
/** Longest step of virtual time per frame, so a hidden tab does not jump ahead in one go. */
const MAX_FRAME_MS = 100;
/** Check the history at least this often (virtual ms), and whenever an operation returns. */
const CHECK_EVERY_MS = 1000;
const URL_EVERY_MS = 1500;

class App {
  constructor(wasm) {
    this.wasm = wasm;
    this.playing = false;
    this.lastFrame = null;
    this.cluster = new ClusterView($('cluster'), { onNodeClick: (id) => this.toggleNode(id) });
    this.logs = new LogsView($('logs'));
    this.timeline = new TimelineView($('timeline'), $('verdict'), $('invariants'));
    this.feed = new EventFeed($('feed'));
    this.controls = new Controls({
      play: () => (this.playing ? this.pause() : this.play()),
      step: () => this.step(),
      speed: () => {},
      newRun: (seed, nodes) => {
        $('scenario-note').hidden = true;
        $('scenario').value = '';
        this.start({ seed, nodes, actions: [] }, { autoplay: true });
      },
      copyLink: () => this.copyLink(),
      send: (req) => this.send(req),
      partition: (groups) => this.partition(groups),
      isolateLeader: () => this.isolateLeader(),
      heal: () => this.act('heal'),
      addNode: () => this.act('add'),
      removeNode: (id) => this.act('remove', id),
      transferLeader: (id) => this.act('transfer', id),
      dropRate: (p) => this.act('drop', p),
    });
    $('scrub').addEventListener('input', () => this.seek(Number($('scrub').value)));
    $('back').addEventListener('click', () => this.seek(this.session.nowMs() - 250));
    $('to-head').addEventListener('click', () => this.seek(this.session.headMs));
    this.idle();
    this.sweep = new SweepView();
    $('scenario').append(...SCENARIOS.map((s) => new Option(s.name, s.id)));
    $('scenario').addEventListener('change', () => {
      const s = SCENARIOS.find((x) => x.id === $('scenario').value);
      if (s) location.hash = s.link;
    });
    $('legend').innerHTML = legend();
    $('logs').insertAdjacentHTML('afterend', `<div class="logs-key">${logsKey()}</div>`);
    window.addEventListener('hashchange', () => this.startFromUrl());
    requestAnimationFrame((t) => this.frame(t));
  }

  /** Starts the run the URL names, or a fresh one. */
  startFromUrl() {
    let run = null;
    try {
      run = decodeRun(location.hash);
    } catch (e) {
      this.note(`This link could not be read: ${e.message}. Started a fresh run instead.`, true);
    }
    const scenario = scenarioOf(location.hash);
    $('scenario').value = scenario?.id ?? '';
    const note = $('scenario-note');
    note.hidden = !scenario;
    note.innerHTML = scenario ? `<b>${scenario.name}.</b> What to watch: ` : '';
    if (scenario) note.append(scenario.watch);
    if (!run) return this.start({ seed: 1, nodes: 5, actions: [] }, { autoplay: true });
    const replayed = run.actions.length > 0 || run.untilMs > 0;
    this.start(run, { autoplay: !replayed });
  }

  /** Replays `run` (seed, nodes, actions, untilMs) into a new session. */
  start(run, { autoplay }) {
    this.pause();
    try {
      this.session = Session.replay(this.wasm, run);
      this.rewinder = new Rewinder(this.wasm, this.session.base());
      if (run.actions.length || run.untilMs) {
        const workload = run.workloadMs ? `, the fault workload (${run.workloadMs / 1000} s)${run.bug ? ' with the planted bug' : ''}` : '';
        this.note(`Replayed this link: seed ${run.seed}, ${run.nodes} nodes${workload}, ${run.actions.length} action${run.actions.length === 1 ? '' : 's'}, up to ${(this.session.nowMs() / 1000).toFixed(3)} s. Press Play to go on.`);
      } else {
        this.note('');
      }
    } catch (e) {
      this.note(`This link could not be replayed: ${e.message}`, true);
      this.session = new Session(this.wasm, { seed: run.seed ?? 1, nodes: run.nodes ?? 5 });
      this.rewinder = new Rewinder(this.wasm, this.session.base());
    }
    const last = [...this.session.actions].reverse().find((a) => a.type === 'drop');
    this.controls.reset({ seed: this.session.seed, nodes: this.session.nodes, dropRate: last ? last.args[0] : 0 });
    this.feed.reset();
    this.eventsSeen = 0;
    this.lastCheck = { at: -Infinity, returned: -1 };
    this.lastUrlAt = -Infinity;
    this.refresh();
    this.controls.showGroups(groupNames(this.view.nodes));
    this.saveUrl();
    if (autoplay) this.play();
  }

  note(text, error = false) {
    const n = $('replay-note');
    n.hidden = !text;
    n.textContent = text;
    n.classList.toggle('error', error);
  }

  play() {
    this.playing = true;
    this.lastFrame = null;
    this.controls.setPlaying(true);
  }

  pause() {
    if (!this.playing) return;
    this.playing = false;
    this.controls.setPlaying(false);
    this.saveUrl();
  }

  step() {
    this.pause();
    this.session.step();
    this.refresh();
    this.saveUrl();
  }

  frame(t) {
    if (this.playing && this.session) {
      const real = this.lastFrame === null ? 0 : Math.min(t - this.lastFrame, MAX_FRAME_MS / this.controls.speed);
      this.lastFrame = t;
      this.session.runFor(real * this.controls.speed);
      this.refresh();
      if (this.session.nowMs() - this.lastUrlAt > URL_EVERY_MS) this.saveUrl();
    }
    requestAnimationFrame((t2) => this.frame(t2));
  }

  /**
   * Shows the run as it was (or will be, up to the end of the recording) at virtual time `t`:
   * a deterministic replay, from a checkpoint when one is at hand. Returns the real ms it took.
   */
  seek(t) {
    const began = performance.now();
    this.pause();
    this.session = this.rewinder.seek(this.session, t);
    this.feed.reset();
    const count = this.session.sim.eventCount();
    this.eventsSeen = Math.max(0, count - 200);
    this.lastCheck = { at: -Infinity, returned: -1 };
    this.refresh();
    this.saveUrl();
    return performance.now() - began;
  }

  /** Builds rewind checkpoints a few ms at a time while the page has nothing else to do. */
  idle() {
    if (this.rewinder && this.session) {
      this.rewinder.track(this.session);
      this.rewinder.work(this.playing ? 3 : 8);
    }
    setTimeout(() => this.idle(), 40);
  }

  /** Advances virtual time at once (tests and the console); same result as playing that long. */
  runFor(ms) {
    this.session.runFor(ms);
    this.refresh();
  }

  /** Does an action now, records it in the URL; shows the error if the simulator refuses. */
  act(type, ...args) {
    try {
      const forks = this.session.forks.length;
      const result = this.session.perform(type, ...args);
      if (this.session.forks.length > forks) {
        this.note(`Forked the run at ${(this.session.nowMs() / 1000).toFixed(3)} s: what was recorded after this moment is dropped, and the link now holds the fork.`);
      }
      this.refresh();
      this.saveUrl();
      return result;
    } catch (e) {
      this.note(`${type} refused: ${e.message ?? e}`, true);
      return undefined;
    }
  }

  toggleNode(id) {
    const node = this.view.nodes.find((n) => n.id === id);
    this.act(node.role === 'crashed' ? 'restart' : 'crash', id);
  }

  send({ type, node, key, value, expected }) {
    switch (type) {
      case 'put':
        return this.act('put', node, key, value);
      case 'get':
      case 'stale':
      case 'delete':
        return this.act(type, node, key);
      case 'cas':
        return this.act('cas', node, key, expected, value === '' ? null : value);
      default:
        throw new Error(`unknown operation ${type}`);
    }
  }

  partition([a, b]) {
    if (!a.length || !b.length) {
      this.note('Put at least one node in each group (click the N:A / N:B buttons).', true);
      return;
    }
    this.act('partition', [a, b]);
  }

  isolateLeader() {
    const leader = this.leader();
    if (!leader) {
      this.note('There is no leader to isolate right now.', true);
      return;
    }
    this.controls.setGroups(leader.id);
    this.partition(this.controls.groupLists());
  }

  /** The leader that a majority follows (highest term), if any. */
  leader() {
    const leaders = this.view.nodes.filter((n) => n.role === 'leader').sort((a, b) => b.term - a.term);
    return leaders[0] ?? null;
  }

  refresh() {
    const sim = this.session.sim;
    this.view = sim.state();
    const count = sim.eventCount();
    const events = count > this.eventsSeen ? sim.events(this.eventsSeen) : [];
    this.eventsSeen = count;
    const leader = this.leader();
    this.feed.take(events, leader?.id);
    this.cluster.render(this.view, events);
    this.logs.render(this.view);
    const ops = sim.ops();
    this.maybeCheck(ops);
    this.timeline.render(ops, this.view.now_ms);
    this.controls.setNodes(this.view.nodes.filter((n) => !n.removed).map((n) => n.id));
    const config = membershipText(this.view);
    if ($('membership').textContent !== config) $('membership').textContent = config;
    this.showResults(ops);
    const { text, tone } = explain(this.view);
    const status = $('status');
    if (status.textContent !== text) status.textContent = text;
    status.className = `status ${tone}`;
    $('now').textContent = (this.view.now_ms / 1000).toFixed(3);
    const scrub = $('scrub');
    scrub.max = this.session.headMs;
    scrub.value = this.view.now_ms;
    const behind = this.session.headMs - this.view.now_ms;
    $('scrub-out').textContent = behind > 0.5 ? `rewound: ${(behind / 1000).toFixed(3)} s before the end (${(this.session.headMs / 1000).toFixed(3)} s)` : '';
    $('trace-hash').textContent = sim.traceHash();
  }

  maybeCheck(ops) {
    const returned = ops.filter((o) => o.state !== 'pending').length;
    const now = this.view.now_ms;
    if (returned === this.lastCheck.returned && now - this.lastCheck.at < CHECK_EVERY_MS) return;
    this.lastCheck = { at: now, returned };
    this.check = readCheck(this.session.sim.check(), ops);
    this.timeline.showCheck(this.check);
  }

  showResults(ops) {
    const list = $('results');
    const recent = ops.slice(-30).reverse();
    const signature = recent.map((o) => `${o.id}:${o.state}`).join(',');
    if (list.dataset.signature === signature) return;
    list.dataset.signature = signature;
    list.replaceChildren(...recent.map((o) => {
      const li = document.createElement('li');
      li.className = `state-${o.state}`;
      li.dataset.opId = o.id;
      li.dataset.state = o.state;
      const took = o.returnedMs != null ? ` in ${(o.returnedMs - o.invokedMs).toFixed(1)} ms` : '';
      li.title = `sent to N${o.node} at ${(o.invokedMs / 1000).toFixed(3)} s; ${o.result}${took}`;
      const id = Object.assign(document.createElement('span'), { className: 'id', textContent: `#${o.id}` });
      const call = Object.assign(document.createElement('span'), { className: 'call', textContent: `N${o.node} ${o.call}` });
      const res = Object.assign(document.createElement('span'), { className: 'res', textContent: o.state === 'pending' ? 'waiting…' : o.result });
      li.append(id, call, res);
      return li;
    }));
  }

  /** The run as a link: seed, size, actions and the current virtual time. */
  link() {
    const s = this.session;
    return location.href.replace(/#.*$/, '') + encodeRun({
      ...s.base(), actions: s.recorded(), untilMs: s.headMs, viewMs: s.nowMs(), forks: s.forks,
    });
  }

  saveUrl() {
    this.lastUrlAt = this.session.nowMs();
    history.replaceState(null, '', this.link());
  }

  async copyLink() {
    this.pause();
    this.saveUrl();
    try {
      await navigator.clipboard.writeText(this.link());
      this.note('Link copied: it replays this run up to this moment.');
    } catch {
      this.note('The address bar now holds the link to this run.');
    }
  }
}

/** The configuration as the leader (or else the first running node) sees it, in words. */
export function membershipText(view) {
  const leaders = view.nodes.filter((n) => n.role === 'leader').sort((a, b) => b.term - a.term);
  const from = leaders[0] ?? view.nodes.find((n) => n.voters.length);
  if (!from) return 'Configuration: unknown (no node is running).';
  const set = (ids) => `{${ids.map((i) => `N${i}`).join(', ')}}`;
  const voters = from.voters.length === 2
    ? `joint configuration: voters ${set(from.voters[0])} and ${set(from.voters[1])}, and a write needs a majority of each`
    : `voters ${set(from.voters[0] ?? [])}`;
  const learners = from.learners.length ? `; learners ${set(from.learners)} (they copy the log but do not vote)` : '';
  const removed = view.nodes.filter((n) => n.removed).map((n) => n.id);
  const gone = removed.length ? `; removed ${set(removed)}` : '';
  return `Configuration as N${from.id} sees it: ${voters}${learners}${gone}.`;
}

const wasm = await loadWasm();
const app = new App(wasm);
app.startFromUrl();

/** Hooks for tests and the console. */
window.demo = {
  app,
  ready: true,
  state: () => app.session.sim.state(),
  ops: () => app.session.sim.ops(),
  check: () => app.session.sim.check(),
  traceHash: () => app.session.sim.traceHash(),
  nowMs: () => app.session.nowMs(),
  actions: () => structuredClone(app.session.recorded()),
  seek: (ms) => app.seek(ms),
  headMs: () => app.session.headMs,
  buildCheckpoints: () => app.rewinder.buildAll(),
  link: () => app.link(),
  leader: () => app.leader()?.id ?? null,
  play: () => app.play(),
  pause: () => app.pause(),
  runFor: (ms) => app.runFor(ms),
  runSeed: (seed, nodes, ms) => wasm.runSeed(seed, nodes, ms),
};
