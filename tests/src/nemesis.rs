//! The nemesis: a schedule of faults drawn from the seed before the campaign starts, and the
//! executor that applies it to the [`Cluster`].
//!
//! The schedule is a list of steps, one fault at a time: when it starts, its kind, how long it
//! lasts, and a `pick` that chooses nodes among the members *at that moment* (the leader, or
//! `members[pick % len]`, ...). The same seed gives the same schedule; which concrete node a
//! pick lands on depends on the run, and the executor logs every resolved action with its
//! time (`nemesis.log`).

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::time::Duration;
use std::time::Instant;

use serde::Serialize;

use crate::cluster::Cluster;
use crate::proxy::LinkFaults;
use crate::rng::SeededRng;
use crate::workload::Members;

/// A fault of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// kill -9 a member, restart it after the duration.
    Kill,
    /// SIGSTOP a member for the duration, then SIGCONT.
    Pause,
    /// Cut the leader off from everyone.
    IsolateLeader,
    /// A random minority against the majority.
    Halves,
    /// Two halves that only one node (the bridge) links.
    Bridge,
    /// One node's messages reach nobody, while everyone's reach it.
    OneWay,
    /// Random loss of requests on every link.
    Loss,
    /// Delay and jitter on every link.
    Delay,
    /// AppendEntries / votes delivered twice on every link.
    Duplicate,
    /// `RAFT TRANSFER-LEADER` to another voter.
    TransferLeader,
    /// Remove a voter, or add one (a fresh id, or a removed one back).
    Membership,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 11] = [
        Kind::Kill,
        Kind::Pause,
        Kind::IsolateLeader,
        Kind::Halves,
        Kind::Bridge,
        Kind::OneWay,
        Kind::Loss,
        Kind::Delay,
        Kind::Duplicate,
        Kind::TransferLeader,
        Kind::Membership,
    ];

    /// The kind called `name` (as [`Kind::name`] says it).
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The kind's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Kill => "kill",
            Kind::Pause => "pause",
            Kind::IsolateLeader => "isolate-leader",
            Kind::Halves => "halves",
            Kind::Bridge => "bridge",
            Kind::OneWay => "one-way",
            Kind::Loss => "loss",
            Kind::Delay => "delay",
            Kind::Duplicate => "duplicate",
            Kind::TransferLeader => "transfer-leader",
            Kind::Membership => "membership",
        }
    }
}

/// One step of the schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// When it starts, milliseconds after the campaign started (later if the previous step
    /// ran long).
    pub at_ms: u64,
    /// The fault.
    pub kind: Kind,
    /// How long it lasts.
    pub duration_ms: u64,
    /// Chooses nodes among the members at that moment.
    pub pick: u64,
    /// The fault's strength: loss or duplication probability in percent, or delay in ms.
    pub level: u64,
}

/// The link faults some process and membership faults run over (see [`Step::background`]).
const BACKGROUND: LinkFaults = LinkFaults {
    cut: false,
    drop_requests: false,
    drop_replies: false,
    loss: 0.03,
    delay_ms: 20,
    jitter_ms: 20,
    duplicate: 0.1,
};

impl Step {
    /// Whether this step runs over [`BACKGROUND`] link faults: a third of the kills, pauses,
    /// leader transfers and membership changes.
    pub fn background(&self) -> bool {
        matches!(
            self.kind,
            Kind::Kill | Kind::Pause | Kind::TransferLeader | Kind::Membership
        ) && (self.pick >> 56).is_multiple_of(3)
    }
}

/// The schedule of `seconds` of faults for `seed`,
/// drawing among `kinds` (every kind if empty).
pub fn schedule(seed: u64, seconds: u64, kinds: &[Kind]) -> Vec<Step> {
    let kinds = if kinds.is_empty() { &Kind::ALL[..] } else { kinds };
    let mut rng = SeededRng::new(seed);
    let mut steps = Vec::new();
    // Let the cluster elect and the clients start first.
    let mut at_ms = rng.between(500, 1_500);
    while at_ms < seconds * 1_000 {
        let kind = kinds[rng.below(kinds.len() as u64) as usize];
        let duration_ms = match kind {
            Kind::TransferLeader | Kind::Membership => 0,
            Kind::Kill | Kind::Pause => rng.between(1_000, 4_000),
            _ => rng.between(1_500, 6_000),
        };
        let level = match kind {
            Kind::Loss => rng.between(2, 25),
            Kind::Delay => rng.between(10, 200),
            Kind::Duplicate => rng.between(10, 60),
            _ => 0,
        };
        steps.push(Step {
            at_ms,
            kind,
            duration_ms,
            pick: rng.draw(),
            level,
        });
        at_ms += duration_ms + rng.between(500, 2_000);
    }
    steps
}

/// What the executor did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Record {
    /// Faults applied, by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Steps that could not be applied (no leader, a refused change), by kind.
    pub skipped: BTreeMap<&'static str, u64>,
    /// One line per action, with its time.
    pub log: Vec<String>,
    /// Each applied fault: start and end (nanoseconds since the campaign started), and what.
    pub intervals: Vec<(u64, u64, String)>,
}

/// Applies a schedule to a cluster.
pub struct Nemesis {
    /// The cluster (handed back by [`Nemesis::run`]).
    pub cluster: Cluster,
    members: Members,
    /// Ids removed from the cluster (data wiped), which may be added back.
    removed: Vec<u64>,
    /// Ids never started yet.
    fresh: Vec<u64>,
    start: Instant,
    /// What happened.
    pub record: Record,
}

impl Nemesis {
    /// A nemesis over `cluster`, whose initial nodes run; `members` is kept up to date for the
    /// clients.
    pub fn new(cluster: Cluster, members: Members, start: Instant) -> Nemesis {
        let fresh = cluster
            .nodes
            .keys()
            .copied()
            .filter(|id| !cluster.initial.contains(id))
            .collect();
        Nemesis {
            cluster,
            members,
            removed: Vec::new(),
            fresh,
            start,
            record: Record::default(),
        }
    }

    fn log(&mut self, line: String) {
        let line = format!("{:>9.3}s {line}", self.start.elapsed().as_secs_f64());
        eprintln!("nemesis {line}");
        self.record.log.push(line);
    }

    /// Runs every step of `steps` in turn, then heals everything.
    pub async fn run(mut self, steps: &[Step]) -> Nemesis {
        for step in steps {
            let at = self.start + Duration::from_millis(step.at_ms);
            tokio::time::sleep_until(at.into()).await;
            let began = self.start.elapsed().as_nanos() as u64;
            let background = step.background();
            if background {
                // Process and membership faults sometimes run over a lossy, slow network.
                for proxy in self.cluster.links.values() {
                    proxy.set(BACKGROUND.clone());
                }
                *self.record.faults.entry("background-link-faults").or_default() += 1;
                self.log(format!("every link, during the next fault: {BACKGROUND:?}"));
            }
            let applied = self.apply(step).await;
            if background {
                self.cluster.heal();
            }
            match applied {
                Ok(what) => {
                    *self.record.faults.entry(step.kind.name()).or_default() += 1;
                    let ended = self.start.elapsed().as_nanos() as u64;
                    let what = format!("{}: {what}", step.kind.name());
                    self.record
                        .intervals
                        .push((began, ended.max(began + 1_000_000), what.clone()));
                    self.log(what);
                }
                Err(why) => {
                    *self.record.skipped.entry(step.kind.name()).or_default() += 1;
                    self.log(format!("{} skipped: {why}", step.kind.name()));
                }
            }
        }
        self.heal_all().await;
        self
    }

    /// Voters as the leader reports them, and the leader.
    /// Waits up to 5 s for one (an election may be running).
    async fn voters(&self) -> Result<(u64, Vec<u64>), String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(leader) = self.cluster.leader().await
                && let Some(status) = self.cluster.status(leader).await
            {
                return Ok((leader, status.voters));
            }
            if Instant::now() > deadline {
                return Err("no leader for 5 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn apply(&mut self, step: &Step) -> Result<String, String> {
        let duration = Duration::from_millis(step.duration_ms);
        let pick = |list: &[u64], salt: u64| list[((step.pick >> salt) % list.len() as u64) as usize];
        match step.kind {
            Kind::Kill => {
                let (leader, voters) = self.voters().await?;
                let mut shuffled = voters.clone();
                shuffle(&mut shuffled, step.pick);
                // The leader, a majority at once, everyone at once, or one member.
                let victims = match (step.pick >> 48) % 6 {
                    0 => vec![leader],
                    1 => shuffled[..voters.len() / 2 + 1].to_vec(),
                    2 => shuffled,
                    _ => vec![pick(&voters, 0)],
                };
                for victim in &victims {
                    self.cluster.kill(*victim);
                }
                self.log(format!("kill -9 nodes {victims:?} (leader {leader})"));
                tokio::time::sleep(duration).await;
                for victim in &victims {
                    self.cluster.restart(*victim).map_err(|e| e.to_string())?;
                }
                Ok(format!("nodes {victims:?} down for {duration:?}, restarted"))
            }
            Kind::Pause => {
                let (leader, voters) = self.voters().await?;
                let victim = if (step.pick >> 48).is_multiple_of(3) {
                    leader
                } else {
                    pick(&voters, 0)
                };
                self.cluster.pause(victim, true);
                self.log(format!("SIGSTOP node {victim}"));
                tokio::time::sleep(duration).await;
                self.cluster.pause(victim, false);
                Ok(format!("node {victim} paused for {duration:?}"))
            }
            Kind::IsolateLeader => {
                let (leader, voters) = self.voters().await?;
                let rest: Vec<u64> = self
                    .member_ids(&voters)
                    .into_iter()
                    .filter(|&id| id != leader)
                    .collect();
                self.partitioned(vec![vec![leader], rest], duration).await
            }
            Kind::Halves => {
                let (_, voters) = self.voters().await?;
                let mut shuffled = self.member_ids(&voters);
                shuffle(&mut shuffled, step.pick);
                let minority = 1 + (step.pick >> 40) as usize % (shuffled.len().saturating_sub(1) / 2).max(1);
                let majority = shuffled.split_off(minority.min(shuffled.len()));
                self.partitioned(vec![shuffled, majority], duration).await
            }
            Kind::Bridge => {
                let (_, voters) = self.voters().await?;
                let mut shuffled = self.member_ids(&voters);
                if shuffled.len() < 3 {
                    return Err(format!("{} members, a bridge needs 3", shuffled.len()));
                }
                shuffle(&mut shuffled, step.pick);
                let bridge = shuffled.pop().expect("3 or more");
                let right = shuffled.split_off(shuffled.len() / 2);
                let left = shuffled;
                for a in &left {
                    for b in &right {
                        let cut = LinkFaults {
                            cut: true,
                            ..LinkFaults::default()
                        };
                        self.cluster.set_link(*a, *b, cut.clone());
                        self.cluster.set_link(*b, *a, cut);
                    }
                }
                self.log(format!("bridge: {left:?} | {bridge} | {right:?}"));
                tokio::time::sleep(duration).await;
                self.cluster.heal();
                Ok(format!("{left:?} <-> {bridge} <-> {right:?} for {duration:?}"))
            }
            Kind::OneWay => {
                let (leader, voters) = self.voters().await?;
                let members = self.member_ids(&voters);
                let source = if step.pick.is_multiple_of(2) {
                    leader
                } else {
                    pick(&members, 1)
                };
                for other in members.iter().filter(|&&id| id != source) {
                    self.cluster.set_link(
                        source,
                        *other,
                        LinkFaults {
                            drop_requests: true,
                            ..LinkFaults::default()
                        },
                    );
                    self.cluster.set_link(
                        *other,
                        source,
                        LinkFaults {
                            drop_replies: true,
                            ..LinkFaults::default()
                        },
                    );
                }
                let role = if source == leader { " (the leader)" } else { "" };
                self.log(format!("one-way: node {source}{role} is not heard"));
                tokio::time::sleep(duration).await;
                self.cluster.heal();
                Ok(format!("node {source}{role} not heard for {duration:?}"))
            }
            Kind::Loss | Kind::Delay | Kind::Duplicate => {
                let faults = match step.kind {
                    Kind::Loss => LinkFaults {
                        loss: step.level as f64 / 100.0,
                        ..LinkFaults::default()
                    },
                    Kind::Delay => LinkFaults {
                        delay_ms: step.level,
                        jitter_ms: step.level / 2,
                        ..LinkFaults::default()
                    },
                    _ => LinkFaults {
                        duplicate: step.level as f64 / 100.0,
                        ..LinkFaults::default()
                    },
                };
                for proxy in self.cluster.links.values() {
                    proxy.set(faults.clone());
                }
                self.log(format!("every link: {faults:?}"));
                tokio::time::sleep(duration).await;
                self.cluster.heal();
                Ok(format!("level {} for {duration:?}", step.level))
            }
            Kind::TransferLeader => {
                let (leader, voters) = self.voters().await?;
                let others: Vec<u64> = voters.iter().copied().filter(|&id| id != leader).collect();
                if others.is_empty() {
                    return Err("no other voter".into());
                }
                let target = pick(&others, 0);
                let reply = self
                    .cluster
                    .call(leader, &["RAFT", "TRANSFER-LEADER", &target.to_string()])
                    .await;
                Ok(format!("{leader} -> {target}: {reply:?}"))
            }
            Kind::Membership => self.change_membership(step).await,
        }
    }

    /// Running members: the voters, plus anything else running that the clients use.
    fn member_ids(&self, voters: &[u64]) -> Vec<u64> {
        let running = self.cluster.running();
        voters.iter().copied().filter(|id| running.contains(id)).collect()
    }

    async fn partitioned(&mut self, sides: Vec<Vec<u64>>, duration: Duration) -> Result<String, String> {
        self.cluster.partition(&sides);
        self.log(format!("partition {sides:?}"));
        tokio::time::sleep(duration).await;
        self.cluster.heal();
        Ok(format!("{sides:?} for {duration:?}"))
    }

    async fn change_membership(&mut self, step: &Step) -> Result<String, String> {
        let (leader, voters) = self.voters().await?;
        let n = self.cluster.initial.len();
        let remove = voters.len() > n || (voters.len() == n && n > 3 && step.pick.is_multiple_of(2));
        if remove {
            let victim = voters[(step.pick >> 8) as usize % voters.len()];
            let reply = self
                .cluster
                .call(leader, &["RAFT", "REMOVE", &victim.to_string()])
                .await;
            if reply != Some(kv_node::protocol::Reply::ok()) {
                return Err(format!("RAFT REMOVE {victim} via {leader}: {reply:?}"));
            }
            self.set_members(voters.iter().copied().filter(|&id| id != victim).collect());
            // Let the new configuration reach the others before the process goes.
            tokio::time::sleep(Duration::from_millis(500)).await;
            self.cluster.wipe(victim).map_err(|e| e.to_string())?;
            self.removed.push(victim);
            return Ok(format!("removed node {victim} (via {leader}), its data wiped"));
        }
        let (id, how) = if !self.fresh.is_empty() && (self.removed.is_empty() || step.pick.is_multiple_of(2)) {
            (self.fresh.remove(0), "fresh")
        } else if let Some(id) = self.removed.pop() {
            (id, "back")
        } else {
            return Err("no id to add".into());
        };
        let via = self.cluster.node(leader).client_addr.clone();
        self.cluster
            .spawn(id, &["--join".to_string(), via])
            .map_err(|e| e.to_string())?;
        self.log(format!("adding node {id} ({how}) through {leader}"));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok((_, voters)) = self.voters().await
                && voters.contains(&id)
            {
                self.set_members(voters);
                return Ok(format!("node {id} added ({how})"));
            }
            if Instant::now() > deadline {
                // It keeps trying; the clients may use it once it is in.
                return Ok(format!("node {id} ({how}) not a voter after 20 s; still joining"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn set_members(&self, ids: Vec<u64>) {
        let addrs = ids
            .into_iter()
            .map(|id| (id, self.cluster.node(id).client_addr.clone()))
            .collect();
        *self.members.write().expect("members lock") = addrs;
    }

    /// Heals every link, resumes paused nodes and restarts members that are down; waits until
    /// a leader answers and every voter runs.
    pub async fn heal_all(&mut self) {
        self.cluster.heal();
        let ids: Vec<u64> = self.cluster.nodes.keys().copied().collect();
        for id in &ids {
            if self.cluster.node(*id).paused {
                self.cluster.pause(*id, false);
            }
        }
        if let Ok((_, voters)) = self.voters().await {
            for id in voters {
                if !self.cluster.node(id).is_running() {
                    let _ = self.cluster.restart(id);
                }
            }
        }
        self.log("healed: every link restored, every process resumed".to_string());
    }

    /// Ids currently in the cluster as the leader says (voters and learners).
    pub async fn final_members(&self) -> Option<BTreeSet<u64>> {
        let leader = self.cluster.leader().await?;
        let status = self.cluster.status(leader).await?;
        Some(status.voters.into_iter().chain(status.learners).collect())
    }
}

/// A deterministic shuffle of `ids` by `pick`.
fn shuffle(ids: &mut [u64], pick: u64) {
    let mut rng = SeededRng::new(pick);
    for i in (1..ids.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        ids.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_one_schedule_with_every_kind() {
        assert_eq!(schedule(7, 60, &[]), schedule(7, 60, &[]));
        assert_ne!(schedule(7, 60, &[]), schedule(8, 60, &[]));
        let kinds: BTreeSet<Kind> = (0..20)
            .flat_map(|seed| schedule(seed, 60, &[]))
            .map(|s| s.kind)
            .collect();
        assert_eq!(kinds.len(), Kind::ALL.len());
        assert!(schedule(7, 60, &[]).iter().all(|s| s.at_ms < 60_000));
        let only = [Kind::Kill, Kind::TransferLeader];
        assert!(schedule(7, 60, &only).iter().all(|s| only.contains(&s.kind)));
        assert!(Kind::ALL.iter().all(|k| Kind::from_name(k.name()) == Some(*k)));
    }
}
