// The page's controls: playback, run (seed, size, link), client panel, faults. They only read
// inputs and call the handlers they are given; main.js decides what happens.

const $ = (id) => document.getElementById(id);

export class Controls {
  /** `on` holds the handlers: play, step, speed, newRun, copyLink, send, partition, isolateLeader, heal, dropRate. */
  constructor(on) {
    this.on = on;
    this.groups = new Map();
    $('play').addEventListener('click', () => on.play());
    $('step').addEventListener('click', () => on.step());
    $('speed').addEventListener('change', () => on.speed(Number($('speed').value)));
    $('new-run').addEventListener('click', () => on.newRun(Number($('seed').value), Number($('node-count').value)));
    $('copy-link').addEventListener('click', () => on.copyLink());
    $('client-op').addEventListener('change', () => this.showClientFields());
    $('client').addEventListener('submit', (e) => {
      e.preventDefault();
      on.send(this.clientRequest());
    });
    $('add-node').addEventListener('click', () => on.addNode());
    $('remove-node').addEventListener('click', () => on.removeNode(Number($('member-node').value)));
    $('transfer-leader').addEventListener('click', () => on.transferLeader(Number($('member-node').value)));
    $('apply-partition').addEventListener('click', () => on.partition(this.groupLists()));
    $('isolate-leader').addEventListener('click', () => on.isolateLeader());
    $('heal').addEventListener('click', () => on.heal());
    $('drop-rate').addEventListener('input', () => this.showDropRate());
    $('drop-rate').addEventListener('change', () => on.dropRate(Number($('drop-rate').value)));
    this.showClientFields();
  }

  get speed() {
    return Number($('speed').value);
  }

  /** Sets up the per-node controls for a run. */
  reset({ seed, nodes, dropRate = 0 }) {
    $('seed').value = seed;
    $('node-count').value = nodes;
    this.nodeIds = [];
    this.setNodes(Array.from({ length: nodes }, (_, i) => i + 1));
    this.groups = new Map(Array.from({ length: nodes }, (_, i) => [i + 1, i < Math.ceil(nodes / 2) ? 'A' : 'B']));
    this.drawGroups();
    this.setDropRate(dropRate);
  }

  /** The nodes a request or a membership change can name (they change as nodes are added). */
  setNodes(ids) {
    if (this.nodeIds?.join() === ids.join()) return;
    this.nodeIds = ids;
    for (const select of [$('client-node'), $('member-node')]) {
      const keep = Number(select.value) || 1;
      select.replaceChildren(...ids.map((id) => new Option(`N${id}`, id)));
      select.value = ids.includes(keep) ? keep : ids[0];
    }
    for (const id of ids) if (!this.groups.has(id)) this.groups.set(id, 'B');
    if (this.groups.size) this.drawGroups();
  }

  setPlaying(playing) {
    $('play').textContent = playing ? '❚❚ Pause' : '▶ Play';
    $('play').setAttribute('aria-pressed', String(playing));
  }

  setDropRate(p) {
    $('drop-rate').value = p;
    this.showDropRate();
  }

  showDropRate() {
    $('drop-rate-out').value = `${Math.round(Number($('drop-rate').value) * 100)}%`;
  }

  /** Shows the groups a partition made (`Map` node id → 'A' | 'B' | …), if it made any. */
  showGroups(groups) {
    if (!groups.size) return;
    for (const id of this.groups.keys()) this.groups.set(id, groups.get(id) === 'A' ? 'A' : 'B');
    this.drawGroups();
  }

  /** Puts `alone` in group A and everyone else in B. */
  setGroups(alone) {
    for (const id of this.groups.keys()) this.groups.set(id, id === alone ? 'A' : 'B');
    this.drawGroups();
  }

  drawGroups() {
    const buttons = [...this.groups].map(([id, group]) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.dataset.node = id;
      b.dataset.group = group;
      b.textContent = `N${id}:${group}`;
      b.title = `N${id} is in group ${group}; click to move it`;
      b.addEventListener('click', () => {
        this.groups.set(id, this.groups.get(id) === 'A' ? 'B' : 'A');
        this.drawGroups();
      });
      return b;
    });
    $('groups').replaceChildren(...buttons);
  }

  groupLists() {
    const of = (g) => [...this.groups].filter(([, x]) => x === g).map(([id]) => id);
    return [of('A'), of('B')];
  }

  showClientFields() {
    const op = $('client-op').value;
    for (const label of document.querySelectorAll('#client label[data-for]')) {
      label.hidden = !label.dataset.for.split(' ').includes(op);
    }
  }

  /** `{ type, node, key, value, expected }` from the client panel (empty expected = absent). */
  clientRequest() {
    const expected = $('client-expected').value;
    return {
      type: $('client-op').value === 'get' && $('client-read').value === 'stale' ? 'stale' : $('client-op').value,
      node: Number($('client-node').value),
      key: $('client-key').value,
      value: $('client-value').value,
      expected: expected === '' ? null : expected,
    };
  }
}
