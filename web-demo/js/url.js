// The run in the URL: `#seed=42&n=5&t=1830.5&a=<actions>`, so a copied link replays it exactly.
//
// Actions are separated by `;`, their fields by `,`: time in ms (to the nanosecond), type, then
// the arguments. Text is percent-encoded (so `;` and `,` inside keys and values stay
// unambiguous), a partition is its groups joined by `|` with nodes joined by `.`, and `!` stands
// for "absent" in a compare-and-swap. `stale,N,key` is a stale read on node N; `add` starts a
// node and joins it, `remove,N` and `transfer,N` change membership and leadership. Example:
//   #seed=7&n=5&t=2400&a=812.5,put,1,x,hello;1200,crash,1;1500,partition,2.3|4.5;1600,add
import { ACTION_TYPES, MAX_NODE_ID, MAX_NODES, MAX_REPLAY_MS, MIN_NODES, roundMs } from './session.js';

const enc = (s) => encodeURIComponent(s).replace(/!/g, '%21');
const dec = (s) => decodeURIComponent(s);
const num = (s, what) => {
  const n = Number(s);
  if (s === '' || !Number.isFinite(n)) throw new Error(`${what} should be a number, not ${JSON.stringify(s)}`);
  return n;
};
const node = (s) => {
  const n = num(s, 'a node id');
  if (!Number.isInteger(n) || n < 1 || n > MAX_NODE_ID) throw new Error(`no node ${s}`);
  return n;
};
const fmtMs = (ms) => String(roundMs(ms));

function encodeArgs(type, args) {
  switch (type) {
    case 'partition':
      return [args[0].map((g) => g.join('.')).join('|')];
    case 'cas':
      return [args[0], enc(args[1]), args[2] === null ? '!' : enc(args[2]), args[3] === null ? '!' : enc(args[3])];
    default:
      return args.map((a) => (typeof a === 'string' ? enc(a) : String(a)));
  }
}

function decodeArgs(type, f) {
  const want = (n) => {
    if (f.length !== n) throw new Error(`${type} takes ${n} fields, not ${f.length}`);
  };
  switch (type) {
    case 'crash':
    case 'restart':
    case 'remove':
    case 'transfer':
      want(1);
      return [node(f[0])];
    case 'heal':
    case 'add':
      want(0);
      return [];
    case 'drop':
      want(1);
      return [num(f[0], 'a drop rate')];
    case 'partition':
      want(1);
      return [f[0].split('|').map((g) => (g === '' ? [] : g.split('.').map(node)))];
    case 'put':
      want(3);
      return [node(f[0]), dec(f[1]), dec(f[2])];
    case 'get':
    case 'stale':
    case 'delete':
      want(2);
      return [node(f[0]), dec(f[1])];
    case 'cas':
      want(4);
      return [node(f[0]), dec(f[1]), f[2] === '!' ? null : dec(f[2]), f[3] === '!' ? null : dec(f[3])];
    default:
      throw new Error(`unknown action ${JSON.stringify(type)}`);
  }
}

/**
 * `{seed, nodes, actions, untilMs, viewMs?, forks?}` → the URL hash (with its `#`). `v` is the
 * moment shown, when the run was rewound to before its end `t`; `f` lists the virtual times at
 * which the run was forked from an earlier one (for the reader: the actions are the fork's).
 */
export function encodeRun({ seed, nodes, actions, untilMs, viewMs = null, forks = [], workloadMs = null, bug = false }) {
  const parts = [`seed=${seed}`, `n=${nodes}`];
  if (workloadMs !== null) parts.push(`w=${workloadMs}`);
  if (bug) parts.push('bug=1');
  if (untilMs > 0) parts.push(`t=${fmtMs(untilMs)}`);
  if (viewMs !== null && viewMs < untilMs) parts.push(`v=${fmtMs(viewMs)}`);
  if (forks.length) parts.push(`f=${forks.map(fmtMs).join(',')}`);
  if (actions.length) {
    const list = actions.map(({ at, type, args }) => [fmtMs(at), type, ...encodeArgs(type, args)].join(','));
    parts.push(`a=${list.join(';')}`);
  }
  return '#' + parts.join('&');
}

/**
 * The URL hash → `{seed, nodes, actions, untilMs}`, or null if it names no run. Throws with a
 * readable message on a malformed link.
 */
export function decodeRun(hash) {
  const text = hash.replace(/^#/, '');
  if (!text) return null;
  const params = new Map(text.split('&').map((p) => {
    const i = p.indexOf('=');
    return i < 0 ? [p, ''] : [p.slice(0, i), p.slice(i + 1)];
  }));
  if (!params.has('seed')) return null;
  const seed = num(params.get('seed'), 'the seed');
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`the seed must be a whole number, not ${seed}`);
  const nodes = params.has('n') ? num(params.get('n'), 'the node count') : 5;
  if (!Number.isInteger(nodes) || nodes < MIN_NODES || nodes > MAX_NODES) {
    throw new Error(`a cluster has ${MIN_NODES} to ${MAX_NODES} nodes, not ${nodes}`);
  }
  const untilMs = params.has('t') ? num(params.get('t'), 'the time') : 0;
  const viewMs = params.has('v') ? num(params.get('v'), 'the time shown') : null;
  const forks = params.get('f') ? params.get('f').split(',').map((f) => num(f, 'a fork time')) : [];
  const raw = params.get('a') ?? '';
  const actions = raw === '' ? [] : raw.split(';').map((item, i) => {
    const [at, type, ...fields] = item.split(',');
    if (!ACTION_TYPES.includes(type)) throw new Error(`action ${i + 1}: unknown type ${JSON.stringify(type)}`);
    return { at: num(at, `action ${i + 1}'s time`), type, args: decodeArgs(type, fields) };
  });
  const run = { seed, nodes, actions, untilMs };
  if (viewMs !== null) run.viewMs = viewMs;
  if (forks.length) run.forks = forks;
  if (params.has('w')) {
    const w = num(params.get('w'), 'the workload length');
    if (!Number.isInteger(w) || w < 0 || w > MAX_REPLAY_MS) throw new Error(`the workload length must be whole ms up to ${MAX_REPLAY_MS}, not ${w}`);
    run.workloadMs = w;
  }
  if (params.get('bug') === '1') run.bug = true;
  return run;
}
