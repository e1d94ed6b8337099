// Guided scenarios: classic Raft situations, each a link (seed, size, actions, end time) with a
// short text on what to watch. Every link stops at the end of its scene; drag the time
// scrubber back to watch it unfold, or press Play to go on from there. The test
// (tests/url.test.mjs) replays each and checks that the scene shows what the text promises.

export const SCENARIOS = [
  {
    id: 'election',
    name: 'Leader election',
    link: '#seed=3&n=5&t=1500&a=500,crash,1',
    watch: 'N1 led term 1 and crashes at 0.5 s. Scrub back to 0.5 s and step forward: each follower waits its own random election timeout; the first to give up becomes a candidate for term 2 and asks for votes (purple). With 3 of 5 votes, its own included, it leads, and its first entry commits once a majority holds it.',
  },
  {
    id: 'replication',
    name: 'Log replication',
    link: '#seed=4&n=5&t=560&a=500,put,1,x,hello;520,put,3,y,world',
    watch: 'Two puts: one sent to the leader N1, one to the follower N3, which forwards it. Scrub from 0.5 s: the leader appends each entry to its log, sends it to the others (green), and marks it committed (solid box) once 3 of 5 logs hold it; followers learn the new commit index with the next message and apply it.',
  },
  {
    id: 'partition-heals',
    name: 'A partition that heals',
    link: '#seed=6&n=5&t=4000&a=600,partition,1.2|3.4.5;800,put,1,x,lost;1500,put,3,x,kept;2500,heal;3200,get,2,x',
    watch: 'At 0.6 s the leader N1 and N2 are cut off from N3-N5. N1 still takes a put ("lost") but cannot commit it with 2 of 5; N3-N5 elect a new leader in a later term, which commits "kept". At 2.5 s the network heals: N1 sees the later term, steps down, and its uncommitted entry is replaced by the new leader\'s log. The get at 3.2 s reads "kept" (or, if the unanswered put was retried after the heal, "lost" — later, never before).',
  },
  {
    id: 'minority',
    name: 'A minority cannot commit',
    link: '#seed=7&n=5&t=2500&a=600,partition,1.2|3.4.5;700,put,1,x,1',
    watch: 'The leader N1 keeps only N2. Its put at 0.7 s is appended to N1\'s and N2\'s logs but stays uncommitted (hollow box): 2 of 5 is not a majority, and the client gets no answer. Meanwhile the other side elects its own leader and goes on.',
  },
  {
    id: 'stale-read',
    name: 'A stale read',
    link: '#seed=5&n=5&t=3200&a=1000,put,1,k,v1;1300,partition,1|2.3.4.5;2800,put,3,k,v2;3100,stale,1,k',
    watch: 'N1 wrote k=v1 and is then cut off; the majority elects N3, which commits k=v2. A stale read on N1 answers from N1\'s own copy — v1 — after v2 had returned. The checker finds no order of these operations that explains it: the verdict is red and the box under it says why. (A linearizable read on N1 would fail instead: N1 cannot confirm it still leads.)',
  },
  {
    id: 'figure-8',
    name: 'Raft paper, figure 8: commit only entries of the current term',
    link: '#seed=2&n=5&t=2000&a=600,crash,3;600,crash,4;600,crash,5;700,put,1,x,old;900,crash,1;1000,restart,3;1000,restart,4',
    watch: 'N1 (term 1) appends x=old at index 2 but only N2 gets it (N3-N5 are down), then N1 crashes. N3 and N4 come back; N2, whose log is longest, wins term 4 and copies index 2 to them — a majority now holds it, yet a leader never commits an entry of an earlier term by counting copies. Watch the commit index jump from 1 straight to 3: index 2 commits only together with N2\'s own first entry of term 4 (openraft appends it on election).',
  },
  {
    id: 'membership-partition',
    name: 'Membership change under a partition',
    link: '#seed=9&n=3&t=4500&a=600,add;611,partition,1.4|2.3;2500,heal',
    watch: 'N4 joins as a learner, and the leader N1 starts the joint configuration {N1,N2,N3} + {N1,N2,N3,N4}, which needs a majority of both. At 0.611 s N1 and N4 are cut off from N2 and N3: the joint entry cannot commit. N2 and N3, still under the old configuration, elect N2 in term 2. After the heal N1\'s joint entry is overwritten: N4 stays a learner, and the change must be asked again.',
  },
];

/** The scenario a URL hash names, if any. */
export function scenarioOf(hash) {
  return SCENARIOS.find((s) => s.link === hash) ?? null;
}
