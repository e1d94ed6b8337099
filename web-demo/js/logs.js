// The logs panel: one row per node, entries aligned by index so matching logs line up.
// Committed entries are filled with their term's colour; uncommitted ones are dashed outlines.

const CELL = 37; // entry width + gap, px

export function termColor(term) {
  return `hsl(${(term * 67 + 200) % 360} 58% 46%)`;
}

/** A short label for an entry's summary ("SET x (1 bytes) @5ms" → "x"). */
function label(summary) {
  if (summary.startsWith('(')) return '★';
  if (summary.startsWith('membership')) return 'cfg';
  const m = /^\w+ (\S+)/.exec(summary);
  return m ? m[1] : summary.slice(0, 3);
}

const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

export class LogsView {
  constructor(container) {
    this.container = container;
    this.signature = '';
  }

  render(view) {
    const cols = Math.max(6, Math.floor((this.container.clientWidth - 70) / CELL));
    const last = (n) => (n.log.length ? n.log[n.log.length - 1].index : n.snapshot_index);
    const hi = Math.max(0, ...view.nodes.map(last));
    const lo = Math.max(0, hi - cols + 1);
    const signature = JSON.stringify([cols, view.nodes.map((n) => [n.role, n.commit_index, n.snapshot_index, last(n), n.log.slice(-cols).map((e) => e.term)])]);
    if (signature === this.signature) return;
    this.signature = signature;

    const parts = ['<span></span><div class="axis">'];
    for (let i = lo; i <= hi; i++) parts.push(`<span>#${i}</span>`);
    parts.push('</div>');
    for (const n of view.nodes) {
      const entries = new Map(n.log.map((e) => [e.index, e]));
      parts.push(`<span class="who"><i style="background:var(--${n.role})"></i>N${n.id}</span>`);
      parts.push(`<div class="row ${n.role === 'crashed' ? 'crashed' : ''}" data-node-id="${n.id}">`);
      for (let i = lo; i <= hi; i++) {
        const e = entries.get(i);
        if (e) {
          const committed = e.index <= n.commit_index;
          const color = termColor(e.term);
          const style = committed ? `background:${color};border-color:${color}` : `border-color:${color};color:${color}`;
          const state = committed ? 'committed' : 'uncommitted';
          const title = `#${e.index}, term ${e.term}: ${e.summary} — ${committed ? 'committed' : 'not committed yet'}`;
          parts.push(`<span class="entry ${state}" style="${style}" title="${esc(title)}"><span class="k">${esc(label(e.summary))}</span>t${e.term}</span>`);
        } else if (i <= n.snapshot_index) {
          parts.push('<span class="entry compacted" title="in the snapshot (compacted)">▦</span>');
        } else {
          parts.push('<span class="entry gap"></span>');
        }
      }
      parts.push('</div>');
    }
    this.container.innerHTML = parts.join('');
  }
}

/** The key under the logs panel. */
export function logsKey() {
  const c = termColor(2);
  return `<span><span class="entry committed" style="background:${c};border-color:${c}"></span>committed: on a majority, applied, never lost</span>
    <span><span class="entry uncommitted" style="border-color:${c}"></span>not committed yet: may still be replaced</span>
    <span><span class="entry compacted"></span>compacted into a snapshot</span>`;
}
