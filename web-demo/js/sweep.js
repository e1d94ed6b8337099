// The seed sweep: N seeds of the seeded fault workload in a Web Worker (js/sweep-worker.js),
// with a progress bar, runs per second and a table; a failing seed opens as a replayable run
// (its link names the seed, the workload and the planted bug, if on).
import { encodeRun } from './url.js';

const $ = (id) => document.getElementById(id);
/** Virtual ms of clients and faults per seed, as kv-sim runs them. */
export const SWEEP_MS = 5000;
/** Passing seeds kept in the table (failing ones are all kept). */
const PASSING_SHOWN = 5;

/** The link that opens a sweep result as a run, at the virtual time the sweep's run ended. */
export function seedLink({ seed, nodes, durationMs, bug, endMs }) {
  return encodeRun({ seed, nodes, actions: [], untilMs: endMs, workloadMs: durationMs, bug });
}

export class SweepView {
  constructor() {
    this.worker = null;
    this.results = [];
    $('sweep-start').addEventListener('click', () => this.start());
    $('sweep-stop').addEventListener('click', () => this.worker?.postMessage({ type: 'stop' }));
  }

  start() {
    this.worker ??= new Worker(new URL('./sweep-worker.js', import.meta.url), { type: 'module' });
    this.worker.onmessage = ({ data }) => this.take(data);
    this.worker.onerror = (e) => {
      $('sweep-stats').textContent = `the worker failed: ${e.message}`;
      this.running(false);
    };
    this.results = [];
    this.failures = 0;
    const count = Math.max(1, Math.min(100_000, Number($('sweep-count').value) || 1));
    const from = Math.max(0, Number($('sweep-from').value) || 0);
    this.bug = $('sweep-bug').checked;
    $('sweep-progress').max = count;
    $('sweep-progress').value = 0;
    $('sweep-results').tBodies[0].replaceChildren();
    $('sweep-stats').textContent = 'starting…';
    this.running(true);
    this.worker.postMessage({ type: 'run', from, count, durationMs: SWEEP_MS, bug: this.bug });
  }

  running(on) {
    $('sweep-start').disabled = on;
    $('sweep-stop').disabled = !on;
    $('sweep-card').dataset.state = on ? 'running' : 'done';
  }

  take(msg) {
    if (msg.type === 'end') {
      this.running(false);
      const verb = msg.stopped ? 'stopped after' : 'done:';
      $('sweep-stats').textContent = `${verb} ${this.summary(msg.elapsedMs)}`;
      return;
    }
    this.results.push(msg);
    if (!msg.ok) this.failures++;
    $('sweep-progress').value = msg.done;
    $('sweep-stats').textContent = this.summary(msg.elapsedMs);
    this.draw(msg);
  }

  summary(elapsedMs) {
    const n = this.results.length;
    const rate = elapsedMs > 0 ? (n / (elapsedMs / 1000)).toFixed(1) : '—';
    return `${n} runs, ${rate} runs/s, ${this.failures} failing${this.bug ? ' (planted bug on)' : ''}`;
  }

  draw(r) {
    const body = $('sweep-results').tBodies[0];
    const tr = document.createElement('tr');
    tr.className = r.ok ? 'ok' : 'bad';
    tr.dataset.seed = r.seed;
    const cells = [r.seed, r.nodes, r.ok ? 'ok' : `✗ ${r.problem}`, r.faults, r.operations, r.traceHash];
    tr.append(...cells.map((c) => Object.assign(document.createElement('td'), { textContent: String(c) })));
    const open = document.createElement('td');
    if (!r.ok && r.traceHash) {
      const a = Object.assign(document.createElement('a'), { href: seedLink(r), textContent: 'open run', className: 'open-run' });
      open.append(a);
    }
    tr.append(open);
    body.prepend(tr);
    const passing = [...body.rows].filter((row) => row.className === 'ok');
    for (const row of passing.slice(PASSING_SHOWN)) row.remove();
  }
}
