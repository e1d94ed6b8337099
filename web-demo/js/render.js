// Draws the cluster: nodes on a circle (colour and label by role), the network links between
// them (cut links dashed red during a partition), messages in flight moving from sender to
// receiver by their virtual send and arrival times, and lost messages fizzling out.

const SVG = 'http://www.w3.org/2000/svg';
const CENTER = { x: 380, y: 272 };
const RING = 186;
const NODE_R = 46;
/** Lost messages are marked if lost this recently (virtual ms), for about a second of real time. */
const FIZZLE_RECENT_MS = 50;
const FIZZLE_REAL_MS = 900;

export const ROLE_LABEL = {
  leader: 'leader', follower: 'follower', candidate: 'candidate', learner: 'learner', crashed: 'crashed',
};
export const GROUP_COLORS = { A: '#3b82c4', B: '#e07b24' };

/** What a message kind looks like: its colour and a word for the legend. */
export function messageStyle(kind) {
  const base = kind.replace(/ reply$/, '');
  if (base === 'heartbeat') return { color: '#8a96a3', what: 'heartbeat' };
  if (base.startsWith('append')) return { color: '#1e8e3e', what: 'log entries' };
  if (base === 'vote' || base === 'pre-vote') return { color: '#9b51e0', what: 'vote request' };
  if (base.startsWith('snapshot')) return { color: '#e07b24', what: 'snapshot' };
  return { color: '#555', what: base };
}

function el(name, attrs = {}, parent) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  parent?.appendChild(e);
  return e;
}

export function nodePosition(index, count) {
  const angle = -Math.PI / 2 + (2 * Math.PI * index) / count;
  return { x: CENTER.x + RING * Math.cos(angle), y: CENTER.y + RING * Math.sin(angle) };
}

/** Partition groups as the UI names them: A is the group of the lowest node id, then B, C… */
export function groupNames(nodes) {
  const distinct = new Set(nodes.map((n) => n.partition));
  if (distinct.size <= 1) return new Map();
  const order = [...distinct].sort((a, b) => {
    const first = (g) => Math.min(...nodes.filter((n) => n.partition === g).map((n) => n.id));
    return first(a) - first(b);
  });
  return new Map(nodes.map((n) => [n.id, String.fromCharCode(65 + order.indexOf(n.partition))]));
}

export class ClusterView {
  constructor(svg, { onNodeClick }) {
    this.svg = svg;
    this.onNodeClick = onNodeClick;
    this.fizzles = [];
    svg.addEventListener('click', (e) => {
      const g = e.target.closest('.node');
      if (g) this.onNodeClick(Number(g.dataset.nodeId));
    });
    svg.addEventListener('keydown', (e) => {
      const g = e.target.closest('.node');
      if (g && (e.key === 'Enter' || e.key === ' ')) {
        e.preventDefault();
        this.onNodeClick(Number(g.dataset.nodeId));
      }
    });
  }

  /** Lays out `count` nodes afresh (a new run). */
  reset(count) {
    this.svg.replaceChildren();
    this.count = count;
    this.fizzles = [];
    this.positions = new Map();
    this.linkLayer = el('g', { class: 'links' }, this.svg);
    this.msgLayer = el('g', { class: 'messages' }, this.svg);
    this.nodeLayer = el('g', { class: 'nodes' }, this.svg);
    this.nodes = new Map();
    this.links = [];
    for (let i = 0; i < count; i++) {
      this.positions.set(i + 1, nodePosition(i, count));
    }
    for (let a = 1; a <= count; a++) {
      for (let b = a + 1; b <= count; b++) {
        const p = this.positions.get(a);
        const q = this.positions.get(b);
        this.links.push({ a, b, line: el('line', { class: 'link', x1: p.x, y1: p.y, x2: q.x, y2: q.y }, this.linkLayer) });
      }
    }
    for (let id = 1; id <= count; id++) {
      const { x, y } = this.positions.get(id);
      const g = el('g', { class: 'node', 'data-node-id': id, tabindex: 0, role: 'button', transform: `translate(${x} ${y})` }, this.nodeLayer);
      const title = el('title', {}, g);
      const ring = el('circle', { r: NODE_R + 7, fill: 'none', stroke: 'var(--leader)', 'stroke-width': 4, opacity: 0 }, g);
      const body = el('circle', { class: 'body', r: NODE_R }, g);
      const name = el('text', { class: 'name', y: -3 }, g);
      name.textContent = `N${id}`;
      const role = el('text', { class: 'role', y: 16 }, g);
      const at = infoPlace(x - CENTER.x, y - CENTER.y);
      const info1 = el('text', { class: 'info', x: at.x, y: at.y, 'text-anchor': at.anchor }, g);
      const info2 = el('text', { class: 'info faint', x: at.x, y: at.y + 15, 'text-anchor': at.anchor }, g);
      const badgeG = el('g', { transform: `translate(${NODE_R * 0.78} ${-NODE_R * 0.78})`, opacity: 0 }, g);
      const badgeC = el('circle', { r: 11 }, badgeG);
      const badgeT = el('text', { class: 'badge', y: 4 }, badgeG);
      this.nodes.set(id, { g, title, ring, body, role, info1, info2, badgeG, badgeC, badgeT, name });
    }
  }

  /** Draws `view` (the simulator's state) at virtual time view.now_ms; `events` are new since last frame. */
  render(view, events) {
    if (this.count !== view.nodes.length) this.reset(view.nodes.length);
    const groups = groupNames(view.nodes);
    const byId = new Map(view.nodes.map((n) => [n.id, n]));
    for (const n of view.nodes) {
      const v = this.nodes.get(n.id);
      v.g.dataset.role = n.role;
      v.g.setAttribute('aria-label', `Node ${n.id}, ${n.role}, term ${n.term}`);
      v.body.setAttribute('fill', `var(--${n.role})`);
      v.ring.setAttribute('opacity', n.role === 'leader' ? 0.55 : 0);
      v.role.textContent = n.removed ? 'removed' : (ROLE_LABEL[n.role] ?? n.role);
      const joining = n.role !== 'crashed' && !n.removed && n.voters.length && !n.voters.some((set) => set.includes(n.id));
      v.g.dataset.member = n.removed ? 'removed' : joining ? 'learner' : 'voter';
      v.info1.textContent = `term ${n.term} · ${voteText(n)}`;
      const last = n.log.length ? n.log[n.log.length - 1].index : n.snapshot_index;
      v.info2.textContent = `log ${last} · committed ${n.commit_index}`;
      v.title.textContent = n.removed ? `Node ${n.id} was removed from the cluster` : n.role === 'crashed' ? `Node ${n.id} is down — click to restart it` : `Node ${n.id} — click to crash it`;
      const group = groups.get(n.id);
      v.badgeG.setAttribute('opacity', group ? 1 : 0);
      if (group) {
        v.badgeC.setAttribute('fill', GROUP_COLORS[group] ?? '#66717d');
        v.badgeT.textContent = group;
      }
    }
    for (const { a, b, line } of this.links) {
      const cut = byId.get(a).partition !== byId.get(b).partition;
      line.setAttribute('class', cut ? 'link cut' : 'link');
    }
    this.drawMessages(view, events);
  }

  drawMessages(view, events) {
    const now = view.now_ms;
    const frag = document.createDocumentFragment();
    for (const m of view.in_flight) {
      const p = this.positions.get(m.from);
      const q = this.positions.get(m.to);
      if (!p || !q) continue;
      const span = (m.arrive_ns - m.sent_ns) / 1e6;
      const f = span > 0 ? Math.min(1, Math.max(0, (now - m.sent_ns / 1e6) / span)) : 1;
      const { x, y } = along(p, q, f);
      const style = messageStyle(m.kind);
      const reply = m.kind.endsWith(' reply');
      const c = el('circle', {
        class: 'msg', cx: x, cy: y, r: reply ? 5 : 6.5,
        fill: reply ? '#fff' : style.color, stroke: style.color, 'stroke-width': reply ? 2.5 : 1,
      });
      el('title', {}, c).textContent = `${m.kind}: N${m.from} → N${m.to}`;
      frag.appendChild(c);
    }
    const wall = performance.now();
    for (const e of events) {
      if (e.kind.type === 'drop' && e.from !== undefined && now - e.at_ns / 1e6 < FIZZLE_RECENT_MS) {
        const early = e.kind.reason === 'partitioned' || e.kind.reason === 'dropped' || e.kind.reason === 'sender crashed';
        this.fizzles.push({ from: e.from, to: e.to, f: early ? 0.3 : 0.82, born: wall });
      }
    }
    this.fizzles = this.fizzles.filter((z) => wall - z.born < FIZZLE_REAL_MS).slice(-40);
    for (const z of this.fizzles) {
      const p = this.positions.get(z.from);
      const q = this.positions.get(z.to);
      if (!p || !q) continue;
      const { x, y } = along(p, q, z.f);
      const age = (wall - z.born) / FIZZLE_REAL_MS;
      const s = 5;
      el('path', {
        d: `M${x - s} ${y - s}L${x + s} ${y + s}M${x + s} ${y - s}L${x - s} ${y + s}`,
        stroke: 'var(--bad)', 'stroke-width': 2.5, 'stroke-linecap': 'round', opacity: 1 - age,
      }, frag);
    }
    this.msgLayer.replaceChildren(frag);
  }
}

/** Where a node's two lines of text go: outside the ring, beside or above/below the node. */
function infoPlace(dx, dy) {
  const len = Math.hypot(dx, dy) || 1;
  const [ux, uy] = [dx / len, dy / len];
  if (Math.abs(ux) < 0.35) {
    return uy > 0 ? { x: 0, y: NODE_R + 22, anchor: 'middle' } : { x: 0, y: -NODE_R - 30, anchor: 'middle' };
  }
  return { x: Math.sign(ux) * (NODE_R + 12), y: -2, anchor: ux > 0 ? 'start' : 'end' };
}

/** A point `f` of the way from p's rim to q's rim. */
function along(p, q, f) {
  const dx = q.x - p.x;
  const dy = q.y - p.y;
  const len = Math.hypot(dx, dy) || 1;
  const start = NODE_R / len;
  const t = start + (1 - 2 * start) * f;
  return { x: p.x + dx * t, y: p.y + dy * t };
}

function voteText(n) {
  if (n.voted_for == null) return 'no vote';
  if (n.voted_for === n.id) return 'voted self';
  return `voted N${n.voted_for}`;
}
