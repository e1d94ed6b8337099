// The client history: each operation a bar from when it was sent to when it returned, on a
// virtual-time axis, and the checkers' live verdict. Operations the linearizability checker
// blames are drawn red.

const SVG = 'http://www.w3.org/2000/svg';
const ROWS = 10;
const ROW_H = 21;
const LABEL_W = 300;
const AXIS_H = 18;

function el(name, attrs, parent) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  parent?.appendChild(e);
  return e;
}

function keyText(key) {
  if (typeof key === 'string') return key;
  try {
    return new TextDecoder().decode(new Uint8Array(key));
  } catch {
    return String(key);
  }
}

/**
 * Reads a `check()` report: `{ ok, verdict: 'ok'|'bad'|'unknown', text, violatingOps: Set<op id>,
 * invariants: [{invariant, detail}] }`. The checker numbers operations within the checked
 * history, which leaves out failed ones (they had no effect); `ops` maps those back to op ids.
 */
export function readCheck(report, ops) {
  const checked = ops.filter((o) => o.state !== 'failed').map((o) => o.id);
  const lin = report.linearizability;
  const result = { violatingOps: new Set(), invariants: report.violations, operations: report.operations };
  if (lin === 'Linearizable') {
    Object.assign(result, { verdict: 'ok', text: `✓ linearizable (${report.operations} ops)` });
  } else if (lin.Violation) {
    const v = lin.Violation;
    for (const i of v.ops) if (checked[i] !== undefined) result.violatingOps.add(checked[i]);
    const m = /^op #(\d+)/.exec(v.reason);
    const culprit = m ? ops.find((o) => o.id === checked[Number(m[1])]) : undefined;
    Object.assign(result, {
      verdict: 'bad',
      text: `✗ NOT linearizable on key ${keyText(v.key)}: ${v.reason}`,
      culprit: culprit?.id,
      why: culprit ? whyNot(culprit, ops.filter((o) => result.violatingOps.has(o.id))) : '',
    });
  } else if (lin.Unknown) {
    Object.assign(result, { verdict: 'unknown', text: `? undecided on key ${keyText(lin.Unknown.key)}: ${lin.Unknown.reason}` });
  } else {
    Object.assign(result, { verdict: 'unknown', text: `? ${JSON.stringify(lin)}` });
  }
  result.ok = result.verdict === 'ok' && report.violations.length === 0;
  return result;
}

/** Operation kinds (as the wasm binding names them) that only read: never a write to order. */
const READ_KINDS = new Set(['get', 'local-get', 'get-revision']);

/**
 * Why `bad` cannot be ordered among `blamed` (the checker's culprits), in words: the writes
 * of the key that had returned before `bad` was sent must come before it in any order, and
 * its answer contradicts them.
 */
export function whyNot(bad, blamed) {
  if (bad.invokedMs === undefined) return '';
  const before = blamed.filter((o) => o.id !== bad.id && !READ_KINDS.has(o.kind)
    && o.state === 'ok' && o.returnedMs < bad.invokedMs);
  const s = (ms) => `${(ms / 1000).toFixed(3)} s`;
  let text = `#${bad.id} ${bad.call} on N${bad.node} was sent at ${s(bad.invokedMs)} and answered "${bad.result}".`;
  if (before.length) {
    const last = before.reduce((a, b) => (b.returnedMs > a.returnedMs ? b : a));
    const others = before.length - 1;
    text += ` But #${last.id} ${last.call} (N${last.node}) had already returned at ${s(last.returnedMs)}, before it was sent,`
      + ` so #${bad.id} must come after it${others ? ` (and after ${others} earlier write${others > 1 ? 's' : ''})` : ''}`
      + ' in any order of these operations — and then its answer is impossible.';
  } else {
    text += ' No order of these operations that respects real time gives that answer.';
  }
  if (bad.kind === 'local-get') {
    text += ` It was a stale read: N${bad.node} answered from its own copy without asking the leader, so it could miss writes committed elsewhere.`;
  }
  return text;
}

export class TimelineView {
  constructor(svg, verdictEl, invariantsEl) {
    this.svg = svg;
    this.verdictEl = verdictEl;
    this.invariantsEl = invariantsEl;
    this.violating = new Set();
  }

  showCheck(check) {
    this.violating = check.violatingOps;
    this.verdictEl.textContent = check.text;
    this.verdictEl.className = `verdict ${check.verdict}`;
    this.whyEl ??= this.verdictEl.closest('section')?.querySelector('.why');
    if (this.whyEl) {
      this.whyEl.hidden = !check.why;
      this.whyEl.textContent = check.why ?? '';
    }
    this.verdictEl.title = 'Linearizable: every operation appears to take effect at one instant between its send and its return, in an order consistent with what each one returned.';
    if (check.invariants.length) {
      this.invariantsEl.className = 'invariants bad';
      this.invariantsEl.textContent = 'Safety violated: ' + check.invariants.map((v) => `${v.invariant} (${v.detail})`).join('; ');
    } else {
      this.invariantsEl.className = 'invariants';
      this.invariantsEl.textContent = 'Safety checks hold: at most one leader per term, logs agree wherever they overlap, every leader holds all committed entries.';
    }
  }

  render(ops, nowMs) {
    const width = Math.max(500, this.svg.clientWidth || 800);
    const shown = ops.slice(-ROWS);
    const height = AXIS_H + Math.max(1, shown.length) * ROW_H + 4;
    this.svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    this.svg.setAttribute('height', height);
    const frag = document.createDocumentFragment();
    if (!shown.length) {
      el('text', { class: 'empty', x: 4, y: AXIS_H + 12 }, frag).textContent =
        'No operations yet: send one from the client panel. Each will appear here as a bar from request to reply.';
      this.svg.replaceChildren(frag);
      return;
    }
    const t0 = Math.min(...shown.map((o) => o.invokedMs));
    const t1 = Math.max(nowMs, t0 + 1);
    const x0 = LABEL_W;
    const x1 = width - 8;
    const x = (t) => x0 + ((t - t0) / (t1 - t0)) * (x1 - x0);
    const axis = el('g', { class: 'axis' }, frag);
    for (let i = 0; i <= 4; i++) {
      const t = t0 + ((t1 - t0) * i) / 4;
      el('line', { x1: x(t), x2: x(t), y1: AXIS_H - 4, y2: height }, axis);
      el('text', { x: x(t), y: AXIS_H - 7, 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle' }, axis).textContent = `${(t / 1000).toFixed(3)}s`;
    }
    shown.forEach((op, row) => {
      const y = AXIS_H + row * ROW_H;
      const g = el('g', { class: `op${this.violating.has(op.id) ? ' violating' : ''}`, 'data-op-id': op.id, 'data-state': op.state }, frag);
      const end = op.returnedMs ?? nowMs;
      el('rect', { class: `bar-${op.state}`, x: x(op.invokedMs), y: y + 3, width: Math.max(3, x(end) - x(op.invokedMs)), height: ROW_H - 6, rx: 3 }, g);
      const result = op.state === 'pending' ? '…' : op.result;
      el('text', { x: 4, y: y + 15 }, g).textContent = `#${op.id} N${op.node} ${op.call} → ${result}`.slice(0, 48);
      el('title', {}, g).textContent = `#${op.id} ${op.call} sent to N${op.node} at ${op.invokedMs.toFixed(3)} ms: ${op.result}`;
    });
    this.svg.replaceChildren(frag);
  }
}
