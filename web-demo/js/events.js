// Turns the simulator's event stream into plain-English lines for the "What happened" feed,
// and remembers who sent each message so a lost one can be drawn where it was lost.

const MAX_LINES = 80;

export class EventFeed {
  constructor(list) {
    this.list = list;
    this.reset();
  }

  reset() {
    this.sent = new Map();
    this.lines = [];
    this.leader = null;
    this.list.replaceChildren();
  }

  /**
   * Takes the events new since the last call; returns them with `from`/`to` added to drops.
   * `leaderId` is the current leader, whose commits are worth a line.
   */
  take(events, leaderId) {
    this.leader = leaderId;
    const added = [];
    for (const e of events) {
      const k = e.kind;
      if (k.type === 'send') {
        this.sent.set(k.msg, { from: k.from, to: k.to });
      } else if (k.type === 'deliver' || k.type === 'drop') {
        const who = this.sent.get(k.msg);
        this.sent.delete(k.msg);
        if (who && k.type === 'drop') Object.assign(e, who);
      }
      const text = describe(e, leaderId);
      if (text) added.push({ at: e.at_ns / 1e6, ...text });
    }
    if (this.sent.size > 5000) this.sent.clear();
    if (added.length) this.show(added);
    return events;
  }

  show(added) {
    for (const line of added.slice(-MAX_LINES)) {
      const li = document.createElement('li');
      const t = document.createElement('span');
      t.className = 't';
      t.textContent = `${(line.at / 1000).toFixed(3)}s`;
      const s = document.createElement('span');
      s.textContent = line.text;
      if (line.you) s.className = 'you';
      li.append(t, s);
      this.list.prepend(li);
    }
    while (this.list.children.length > MAX_LINES) this.list.lastChild.remove();
  }
}

function describe({ kind: k }, leaderId) {
  switch (k.type) {
    case 'timeout':
      return { text: `N${k.node} heard from no leader in time: it starts an election` };
    case 'role_change':
      switch (k.role) {
        case 'leader':
          return { text: `N${k.node} won a majority of votes: leader of term ${k.term}` };
        case 'candidate':
          return { text: `N${k.node} asks the others to vote for it (term ${k.term})` };
        case 'crashed':
          return { text: `N${k.node} is down` };
        case 'learner':
          return { text: `N${k.node} starts as a learner: it copies the log but does not vote yet` };
        default:
          return k.term > 0 ? { text: `N${k.node} follows (term ${k.term})` } : null;
      }
    case 'commit':
      return k.node === leaderId ? { text: `N${k.node}: entries up to #${k.index} are on a majority — committed` } : null;
    case 'client_invoke':
      return { text: `client → N${k.node}: ${k.call} (op #${k.op})` };
    case 'client_return':
      return { text: `op #${k.op} → ${k.result}` };
    case 'fault':
      return { text: `you: ${k.action}`, you: true };
    case 'membership':
      return { text: `membership: ${k.action}`, you: true };
    default:
      return null;
  }
}
