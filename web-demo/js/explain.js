// One sentence that says who leads and why a write is or is not committed, for someone who
// never read the Raft paper. Returns `{ text, tone }` (tone: leading, electing or stuck).

export function majorityOf(count) {
  return Math.floor(count / 2) + 1;
}

/** Nodes (running) that `node` can currently exchange messages with, itself included. */
function reachable(node, nodes) {
  return nodes.filter((n) => n.role !== 'crashed' && n.partition === node.partition);
}

export function explain(view) {
  // Majorities count the voters of the current configuration (as the leader sees it); a
  // learner or a removed node does not count.
  const leader = view.nodes.filter((n) => n.role === 'leader').sort((a, b) => b.term - a.term)[0];
  const config = (leader ?? view.nodes.find((n) => n.voters?.length))?.voters;
  const voters = config?.length ? new Set(config[config.length - 1]) : null;
  const nodes = voters ? view.nodes.filter((n) => voters.has(n.id)) : view.nodes.filter((n) => !n.removed);
  const total = nodes.length;
  const need = majorityOf(total);
  const up = nodes.filter((n) => n.role !== 'crashed');
  const old = config?.length === 2 ? config[0] : null;
  const rule = old
    ? `during this joint configuration a write is committed once a majority of the old voters (${majorityOf(old.length)} of ${old.length}) and of the new (${need} of ${total}) have it in their log`
    : `a write is committed once a majority (${need} of ${total}) have it in their log`;

  if (up.length < need) {
    return {
      tone: 'stuck',
      text: `Only ${up.length} of ${total} nodes are running. Without a majority (${need}) no leader can be elected and no write can commit — restart a node (click it).`,
    };
  }

  const leaders = nodes.filter((n) => n.role === 'leader').sort((a, b) => b.term - a.term);
  const real = leaders.find((l) => reachable(l, nodes).length >= need);
  const stale = leaders.filter((l) => l !== real);
  const staleText = stale.map((l) => {
    const r = reachable(l, nodes).length;
    return ` N${l.id} still thinks it leads term ${l.term}, but it reaches only ${r} of ${total} nodes, so nothing sent to it can commit.`;
  }).join('');

  if (real) {
    let text = `Node ${real.id} leads term ${real.term}: ${rule}.`;
    const pending = real.log.filter((e) => e.index > real.commit_index);
    if (pending.length) {
      const e = pending[pending.length - 1];
      const have = nodes.filter((n) => n.role !== 'crashed' && n.log.some((x) => x.index === e.index && x.term === e.term)).length;
      text += have < need
        ? ` Entry #${e.index} is in ${have} of ${total} logs so far — it needs ${need - have} more.`
        : ` Entry #${e.index} is in ${have} of ${total} logs, a majority: it commits as soon as the leader hears back.`;
    }
    return { tone: 'leading', text: text + staleText };
  }

  const candidates = nodes.filter((n) => n.role === 'candidate');
  if (candidates.length) {
    const who = candidates.map((c) => `N${c.id}`).join(' and ');
    const term = Math.max(...candidates.map((c) => c.term));
    return {
      tone: 'electing',
      text: `No leader right now: ${who} ${candidates.length > 1 ? 'ask' : 'asks'} for votes in term ${term}. A candidate needs ${need} of ${total} votes (its own included); until then writes wait.${staleText}`,
    };
  }
  return {
    tone: 'electing',
    text: `No leader yet: each node waits a random time to hear from a leader; the first to give up asks the others for votes and needs ${need} of ${total} to lead. Then ${rule}.${staleText}`,
  };
}

/** The legend under the cluster (HTML). */
export function legend() {
  const dot = (color, hollow) =>
    `<svg width="12" height="12"><circle cx="6" cy="6" r="5" fill="${hollow ? '#fff' : color}" stroke="${color}" stroke-width="${hollow ? 2.5 : 1}"/></svg>`;
  const role = (r, what) => `<li title="${what}">${dot(`var(--${r})`)}${r}</li>`;
  return [
    role('leader', 'takes client writes and copies them to the others'),
    role('follower', 'copies the leader’s log and votes in elections'),
    role('candidate', 'asks for votes to become leader'),
    role('learner', 'copies the log but does not vote yet (a node being added)'),
    role('crashed', 'down (click to restart)'),
    `<li>${dot('#1e8e3e')}log entries</li>`,
    `<li>${dot('#8a96a3')}heartbeat</li>`,
    `<li>${dot('#9b51e0')}vote request</li>`,
    `<li>${dot('#555', true)}reply</li>`,
    `<li><svg width="12" height="12"><path d="M2 2L10 10M10 2L2 10" stroke="var(--bad)" stroke-width="2.5" stroke-linecap="round"/></svg>lost message</li>`,
  ].join('');
}
