//! The open connections of a client port, for `CLIENT LIST`, `CLIENT INFO` and `CLIENT KILL`,
//! and the port's `CLIENT PAUSE` state.
//!
//! Each connection registers a [`Client`] for as long as it runs (the [`Registration`] removes
//! it when dropped). A session updates its own entry once per pipeline it executes (the last
//! command's name and the time), not once per command, so the registry costs the request path
//! one uncontended lock per read from the socket. `CLIENT KILL` marks an entry and wakes its
//! session, which closes the connection after writing the replies it has.
//!
//! [`Pause`] is Redis's `CLIENT PAUSE timeout [WRITE|ALL]` / `CLIENT UNPAUSE` for the
//! connections of this node: while it holds, a session waits before each command it covers
//! (every command under `ALL`, those that may write under `WRITE`) and runs it when the pause
//! ends or is lifted; nothing fails. A second pause keeps the later end and the stricter mode,
//! as Redis does. Outside a pause the check is one atomic load per command.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use tokio::sync::Notify;
use tokio::sync::watch;

use super::command::KillFilter;

/// The open connections of a port.
#[derive(Debug, Default)]
pub(super) struct Clients {
    open: Mutex<BTreeMap<u64, Arc<Client>>>,
}

/// One open connection.
#[derive(Debug)]
pub(super) struct Client {
    id: u64,
    addr: String,
    laddr: String,
    created: Instant,
    state: Mutex<ClientState>,
    killed: AtomicBool,
    wake: Notify,
}

/// What a connection's session changes as it runs.
#[derive(Debug)]
struct ClientState {
    name: Vec<u8>,
    resp: u8,
    last_command: &'static str,
    last_active: Instant,
}

/// Keeps a connection registered; removes it when dropped.
pub(super) struct Registration<'a> {
    clients: &'a Clients,
    client: Arc<Client>,
}

impl Registration<'_> {
    /// The registered connection.
    pub(super) fn client(&self) -> &Arc<Client> {
        &self.client
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.clients.lock().remove(&self.client.id);
    }
}

impl Clients {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Client>>> {
        // A panic while holding this lock leaves the map consistent: keep using it.
        self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers connection `id` from `addr` to `laddr`.
    pub(super) fn register(&self, id: u64, addr: String, laddr: String) -> Registration<'_> {
        let now = Instant::now();
        let client = Arc::new(Client {
            id,
            addr,
            laddr,
            created: now,
            state: Mutex::new(ClientState {
                name: Vec::new(),
                resp: 2,
                last_command: "NULL",
                last_active: now,
            }),
            killed: AtomicBool::new(false),
            wake: Notify::new(),
        });
        self.lock().insert(id, client.clone());
        Registration { clients: self, client }
    }

    /// The `CLIENT LIST` text of the connections in `ids` (all if `None`), in id order. A
    /// killed connection is gone from the list at once, as Redis frees a killed client at
    /// once, though its session may still be closing the socket.
    pub(super) fn list(&self, ids: Option<&[u64]>) -> String {
        let open: Vec<Arc<Client>> = self.lock().values().cloned().collect();
        open.iter()
            .filter(|c| !c.is_killed() && ids.is_none_or(|ids| ids.contains(&c.id)))
            .map(|c| c.line())
            .collect()
    }

    /// Marks the connections that `filter` selects as killed (`me` is the caller); how many.
    /// A connection already killed is not counted again.
    pub(super) fn kill(&self, filter: &KillFilter, me: u64) -> usize {
        let open: Vec<Arc<Client>> = self.lock().values().cloned().collect();
        let now = Instant::now();
        let mut killed = 0;
        for client in open {
            let selected = filter.id.is_none_or(|id| id == client.id)
                && filter.addr.as_ref().is_none_or(|a| *a == client.addr)
                && filter.laddr.as_ref().is_none_or(|a| *a == client.laddr)
                && filter.user.as_ref().is_none_or(|u| u == "default")
                && filter.normal.unwrap_or(true)
                && filter
                    .max_age_secs
                    .is_none_or(|age| now.duration_since(client.created).as_secs() >= age)
                && !(filter.skip_me && client.id == me)
                && !client.is_killed();
            if selected {
                client.killed.store(true, Ordering::Release);
                client.wake.notify_one();
                killed += 1;
            }
        }
        killed
    }
}

/// `CLIENT PAUSE` of a port (see the module docs).
#[derive(Debug)]
pub(super) struct Pause {
    /// Whether a pause may hold (set and cleared under `state`'s lock): the whole check of a
    /// command while there is none.
    on: AtomicBool,
    /// The pause in force, if any (it may have run out: `until` tells).
    state: watch::Sender<Option<Paused>>,
}

/// A pause: until when, and whether it holds every command or only those that may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Paused {
    until: tokio::time::Instant,
    all: bool,
}

/// The longest a pause lasts, however long it was asked for (a longer one could not be
/// timed): about 30 years.
const LONGEST_PAUSE: Duration = Duration::from_secs(30 * 365 * 86_400);

impl Default for Pause {
    fn default() -> Self {
        Pause {
            on: AtomicBool::new(false),
            state: watch::Sender::new(None),
        }
    }
}

impl Pause {
    /// `CLIENT PAUSE`: holds the commands `all` says for `timeout`, or as long as a pause
    /// already in force lasts if that is longer; under `ALL` if either pause says so.
    pub(super) fn pause(&self, timeout: Duration, all: bool) {
        let now = tokio::time::Instant::now();
        let until = now + timeout.min(LONGEST_PAUSE);
        self.state.send_modify(|state| {
            let current = state.filter(|p| p.until > now);
            *state = Some(match current {
                Some(p) => Paused {
                    until: p.until.max(until),
                    all: p.all || all,
                },
                None => Paused { until, all },
            });
            self.on.store(true, Ordering::Release);
        });
    }

    /// `CLIENT UNPAUSE`: ends the pause; the commands it held run.
    pub(super) fn unpause(&self) {
        self.state.send_modify(|state| {
            *state = None;
            self.on.store(false, Ordering::Release);
        });
    }

    /// Until when a command that `writes` (or not) is held now, if it is.
    fn held_until(&self, writes: bool) -> Option<tokio::time::Instant> {
        if !self.on.load(Ordering::Acquire) {
            return None;
        }
        let now = tokio::time::Instant::now();
        let paused = (*self.state.borrow())?;
        if paused.until <= now {
            // Over: clear it, unless a new pause came meanwhile, so checks are free again.
            self.state.send_if_modified(|state| {
                let over = state.is_some_and(|p| p.until <= now);
                if over {
                    *state = None;
                    self.on.store(false, Ordering::Release);
                }
                over
            });
            return None;
        }
        (paused.all || writes).then_some(paused.until)
    }

    /// Whether a command that `writes` (or not) would wait now.
    pub(super) fn holds(&self, writes: bool) -> bool {
        self.held_until(writes).is_some()
    }

    /// Waits while the pause holds a command that `writes` (or not): until it runs out, is
    /// lifted, or is changed so that it no longer holds it.
    pub(super) async fn wait(&self, writes: bool) {
        if !self.on.load(Ordering::Acquire) {
            return;
        }
        let mut changes = self.state.subscribe();
        while let Some(until) = self.held_until(writes) {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {}
                _ = changes.changed() => {}
            }
        }
    }
}

impl Client {
    /// Records the end of a pipeline whose last command was `command`.
    pub(super) fn touched(&self, command: &'static str) {
        let mut state = self.lock();
        state.last_command = command;
        state.last_active = Instant::now();
    }

    /// Records `CLIENT SETNAME` / `HELLO SETNAME`.
    pub(super) fn set_name(&self, name: &[u8]) {
        self.lock().name = name.to_vec();
    }

    /// Records the protocol after `HELLO`.
    pub(super) fn set_resp(&self, resp: u8) {
        self.lock().resp = resp;
    }

    /// Whether `CLIENT KILL` selected this connection.
    pub(super) fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    /// Resolves once `CLIENT KILL` selects this connection.
    pub(super) async fn killed(&self) {
        while !self.is_killed() {
            self.wake.notified().await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClientState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The connection's `CLIENT LIST` / `CLIENT INFO` line, with Redis 7's fields (those this
    /// node does not track, such as buffer sizes, are 0; `fd` is -1).
    pub(super) fn line(&self) -> String {
        let state = self.lock();
        let now = Instant::now();
        let mut line = String::new();
        let _ = writeln!(
            line,
            "id={} addr={} laddr={} fd=-1 name={} age={} idle={} flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={}",
            self.id,
            self.addr,
            self.laddr,
            String::from_utf8_lossy(&state.name),
            now.duration_since(self.created).as_secs(),
            now.duration_since(state.last_active).as_secs(),
            state.last_command,
            state.resp,
        );
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_selects_by_every_filter_and_registration_ends_with_the_connection() {
        let clients = Clients::default();
        let a = clients.register(1, "127.0.0.1:1000".into(), "127.0.0.1:6379".into());
        let b = clients.register(2, "127.0.0.1:2000".into(), "127.0.0.1:6379".into());
        b.client().set_name(b"worker");
        assert!(
            clients
                .list(None)
                .contains("id=2 addr=127.0.0.1:2000 laddr=127.0.0.1:6379 fd=-1 name=worker ")
        );
        assert_eq!(clients.list(Some(&[1])).lines().count(), 1);
        let by_addr = KillFilter {
            addr: Some("127.0.0.1:2000".into()),
            skip_me: true,
            ..KillFilter::default()
        };
        assert_eq!(clients.kill(&by_addr, 1), 1);
        assert!(b.client().is_killed() && !a.client().is_killed());
        // Gone from the list and from later kills at once, while its session closes.
        assert_eq!(clients.list(None).lines().count(), 1);
        let everyone_but_me = KillFilter {
            skip_me: true,
            ..KillFilter::default()
        };
        assert_eq!(clients.kill(&everyone_but_me, 1), 0);
        assert!(!a.client().is_killed());
        drop(b);
        assert_eq!(clients.list(None).lines().count(), 1);
        let c = clients.register(3, "127.0.0.1:3000".into(), "127.0.0.1:6379".into());
        assert_eq!(clients.kill(&everyone_but_me, 1), 1);
        assert!(c.client().is_killed());
    }

    #[tokio::test]
    async fn a_pause_holds_what_its_mode_says_keeps_the_later_end_and_the_stricter_mode() {
        let pause = std::sync::Arc::new(Pause::default());
        assert!(!pause.holds(true));
        pause.pause(Duration::from_millis(300), false);
        assert!(pause.holds(true) && !pause.holds(false), "WRITE holds writes only");
        // A shorter pause does not shorten it; ALL makes it hold everything.
        let started = Instant::now();
        pause.pause(Duration::from_millis(10), true);
        assert!(pause.holds(false));
        pause.wait(false).await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(250), "{waited:?}");
        assert!(
            !pause.holds(true) && !pause.on.load(Ordering::Acquire),
            "over, and cleared"
        );
        // A pause that ran out is replaced, not extended: its mode is gone with it.
        pause.pause(Duration::from_millis(50), false);
        assert!(!pause.holds(false));
        // UNPAUSE releases a waiting command at once.
        pause.pause(Duration::from_secs(3600), true);
        let waiting = tokio::spawn({
            let pause = pause.clone();
            async move { pause.wait(false).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        let lifted = Instant::now();
        pause.unpause();
        waiting.await.unwrap();
        assert!(lifted.elapsed() < Duration::from_millis(100));
        // A pause asked for longer than can be timed lasts as long as it can.
        pause.pause(Duration::from_millis(u64::MAX), false);
        assert!(pause.holds(true));
    }
}
