//! One client connection: read, parse a pipeline, execute it in order, write the replies.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use openraft::type_config::async_runtime::WatchReceiver;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;

use kv_core::command::Query;
use kv_core::wire::Op;
use kv_core::wire::OpError;
use kv_core::wire::ReadMode;
use kv_core::wire::Role;
use kv_core::wire::Status;

use super::ClientPort;
use super::auth::Attempts;
use super::auth::Verdict;
use super::clients::Client;
use super::command;
use super::command::Action;
use super::command::CommandError;
use super::command::Flag;
use super::command::PubSubAction;
use super::cursors::CursorTable;
use super::op_error;
use super::parser;
use super::parser::ProtocolError;
use super::pubsub;
use super::render;
use super::render::Shape;
use super::reply::Reply;
use super::transaction::Answer;
use super::transaction::Transaction;
use crate::node::events::Push;
use crate::node::events::Subscription;
use crate::tls::Stream;

/// Most commands taken from the buffer before their replies are written.
const MAX_PIPELINE: usize = 1024;
/// Most data commands sent down the request path as one batch: with each read's reply bounded
/// by `max-reply-bytes`, this bounds what one batch can add to the output at once.
const MAX_BATCH: usize = 32;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 << 10;
/// SCAN cursors a connection remembers for keys too long to encode in the cursor itself.
const CURSORS_PER_CONNECTION: usize = 256;

/// Per-connection state.
struct Session {
    id: u64,
    authenticated: bool,
    attempts: Attempts,
    read_mode: ReadMode,
    name: Option<Vec<u8>>,
    quit: bool,
    /// Replies in RESP3 (after `HELLO 3`).
    resp3: bool,
    /// This connection in the port's registry (`CLIENT LIST`, `CLIENT KILL`).
    client: Arc<Client>,
    /// Channels, patterns and watches, while there are any (see [`pubsub`]).
    subscription: Option<Subscription>,
    /// `MULTI` / `WATCH` state.
    transaction: Transaction,
}

/// The peer's and this end's addresses of a connection, as `CLIENT LIST` shows them.
fn addresses(stream: &Stream) -> (String, String) {
    let tcp = match stream {
        Stream::Plain(tcp) => tcp,
        Stream::TlsServer(tls) => tls.get_ref().0,
        Stream::TlsClient(tls) => tls.get_ref().0,
    };
    let show = |addr: std::io::Result<std::net::SocketAddr>| addr.map_or_else(|_| "?:0".to_string(), |a| a.to_string());
    (show(tcp.peer_addr()), show(tcp.local_addr()))
}

/// Serves one connection until the client quits or disconnects, the input is malformed, it
/// stays idle past the `timeout` option, or the node shuts down.
///
/// Back-pressure: commands are executed only while the unsent replies are under the output
/// limit; past it the replies are written (waiting for the client to read them) before the
/// next command runs, and nothing more is read from the client meanwhile. A client that does
/// not read its replies therefore holds at most the limit plus one batch.
pub(super) async fn run(mut stream: Stream, shared: &ClientPort) -> std::io::Result<()> {
    let node = &shared.node;
    let options = node.options();
    let mut shutdown = node.shutdown_signal();
    let id = shared.client_id();
    let (addr, laddr) = addresses(&stream);
    let registration = shared.clients.register(id, addr, laddr);
    let mut session = Session {
        id,
        authenticated: options.password.is_none(),
        attempts: Attempts::default(),
        read_mode: ReadMode::Linearizable,
        name: None,
        quit: false,
        resp3: false,
        client: registration.client().clone(),
        subscription: None,
        transaction: Transaction::new(options.limits.max_keys_per_command),
    };
    let cursors = CursorTable::new(CURSORS_PER_CONNECTION);
    // Bytes buffered beyond one maximal bulk string mean a request that can never complete.
    let max_buffer = shared.limits.max_bulk_len.saturating_mul(2).max(64 << 20);
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut out = Vec::new();
    let mut pending: VecDeque<Vec<Vec<u8>>> = VecDeque::new();
    let mut parser = parser::RequestParser::default();
    loop {
        let mut failure = None;
        let mut used = 0;
        while pending.len() < MAX_PIPELINE {
            match parser.parse(&buf[used..], &shared.limits) {
                Ok(Some((args, n))) => {
                    used += n;
                    if !args.is_empty() {
                        pending.push_back(args);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        buf.drain(..used);
        if pending.is_empty() && failure.is_none() {
            if buf.len() > max_buffer {
                failure = Some(ProtocolError::LineTooLong);
            } else {
                buf.reserve(READ_CHUNK);
                let idle = async {
                    match options.idle_timeout {
                        Some(limit) => tokio::time::sleep(limit).await,
                        None => std::future::pending().await,
                    }
                };
                let read = tokio::select! {
                    read = stream.read_buf(&mut buf) => read?,
                    push = next_push(&mut session.subscription) => {
                        if !write_pushes(&mut stream, &mut session, push, &mut out).await? {
                            return stream.shutdown().await;
                        }
                        continue;
                    }
                    _ = shutdown.changed() => return Ok(()),
                    _ = session.client.killed() => return stream.shutdown().await,
                    _ = idle => {
                        tracing::debug!(client = session.id, "closing an idle connection");
                        return Ok(());
                    }
                };
                if read == 0 {
                    return Ok(());
                }
                continue;
            }
        }
        let held = execute(shared, &mut session, &cursors, &mut pending, &mut out).await;
        if pending.is_empty()
            && let Some(error) = &failure
        {
            Reply::Error(format!("ERR Protocol error: {error}")).encode(&mut out);
        }
        stream.write_all(&out).await?;
        out.clear();
        if (failure.is_some() && pending.is_empty()) || session.quit || session.client.is_killed() {
            return stream.shutdown().await;
        }
        // CLIENT PAUSE holds the next command: wait for the pause to end, still reading (a
        // client that disconnects meanwhile never has it run, as in Redis) and delivering.
        if let Some(writes) = held {
            loop {
                buf.reserve(READ_CHUNK);
                tokio::select! {
                    () = shared.pause.wait(writes) => break,
                    read = stream.read_buf(&mut buf), if buf.len() <= max_buffer => if read? == 0 {
                        return Ok(());
                    },
                    push = next_push(&mut session.subscription) => {
                        if !write_pushes(&mut stream, &mut session, push, &mut out).await? {
                            return stream.shutdown().await;
                        }
                    }
                    _ = shutdown.changed() => return Ok(()),
                    _ = session.client.killed() => return stream.shutdown().await,
                }
            }
        }
        // With commands still pending, the next round runs them (the malformed request is
        // still at the front of the buffer, and fails again once they are answered).
    }
}

/// Executes commands from the front of `pending` in order, appending their replies to `out`,
/// until none is left, the replies reach the output limit, or `CLIENT PAUSE` holds the next
/// one: then it stays at the front of `pending`, and the answer is `Some(whether it may
/// write)`.
async fn execute(
    shared: &ClientPort,
    session: &mut Session,
    cursors: &CursorTable,
    pending: &mut VecDeque<Vec<Vec<u8>>>,
    out: &mut Vec<u8>,
) -> Option<bool> {
    let metrics = shared.node.metrics().clone();
    let output_limit = shared.node.options().output_limit;
    let cursor_key = |cursor: &[u8]| cursors.cursor_key(cursor);
    // Parses a command; `true` if it may run before AUTH.
    let parse = |args: &[Vec<u8>]| {
        let before_auth = command::lookup(&args[0]).is_some_and(|spec| spec.has(Flag::NoAuth));
        command::parse(args, &cursor_key).map(|action| (action, before_auth))
    };
    let mut last_command = Vec::new();
    let mut held = None;
    while out.len() < output_limit && !session.quit {
        let Some(args) = pending.pop_front() else {
            break;
        };
        let started = Instant::now();
        let action = match parse(&args) {
            Ok((_, false)) if !session.authenticated => {
                Err(Reply::Error("NOAUTH Authentication required.".to_string()))
            }
            Ok((action, _)) => subscribed_mode(session, &args).map_or(Ok(action), Err),
            Err(e) => Err(Reply::Error(format!("ERR {e}"))),
        };
        // CLIENT PAUSE: a command it holds goes back to wait (errors above are answered at once).
        if let Ok(action) = &action {
            let writes = may_write(action, &session.transaction);
            if shared.pause.holds(writes) {
                pending.push_front(args);
                held = Some(writes);
                break;
            }
        }
        last_command.clear();
        last_command.extend_from_slice(&args[0]);
        let replies = match action {
            Ok(Action::Multi) => vec![session.transaction.multi()],
            Ok(Action::Exec) => vec![exec(shared, session, cursors).await],
            Ok(Action::Discard) => vec![session.transaction.discard()],
            Ok(Action::Watch(keys)) => vec![watch(shared, session, keys).await],
            // Inside MULTI everything else but QUIT is queued (or refused, aborting EXEC).
            action if session.transaction.is_queueing() && !matches!(action, Ok(Action::Quit)) => {
                vec![session.transaction.queue(action)]
            }
            Ok(Action::Unwatch) => vec![session.transaction.unwatch()],
            Err(reply) => vec![reply],
            Ok(Action::Data { op, shape }) => {
                // This data command and those right after it go down the request path as one
                // batch: proposed together, read behind one barrier, forwarded together.
                let mut batch = Vec::with_capacity(MAX_BATCH.min(pending.len() + 1));
                batch.push((op, shape));
                while batch.len() < MAX_BATCH
                    && pending
                        .front()
                        .and_then(|args| command::lookup(&args[0]))
                        .is_some_and(|spec| spec.has(Flag::Write) || spec.has(Flag::ReadOnly))
                {
                    match parse(pending.front().expect("checked above")) {
                        Ok((Action::Data { op, shape }, _)) if !shared.pause.holds(!op.is_read()) => {
                            pending.pop_front();
                            batch.push((op, shape));
                        }
                        // Not a data command after all (an error), or one a pause holds: it
                        // runs on its own.
                        _ => break,
                    }
                }
                let writes = batch.iter().any(|(op, _)| !op.is_read());
                let commands = batch.len() as u64;
                let errors = data(shared, cursors, session, batch, out).await;
                let latency = if writes {
                    &metrics.write_latency
                } else {
                    &metrics.read_latency
                };
                latency.observe(started.elapsed());
                metrics.commands.add(commands);
                metrics.command_errors.add(errors);
                continue;
            }
            Ok(Action::PubSub(PubSubAction::Reset)) => vec![reset(shared, session)],
            Ok(Action::PubSub(action)) => pubsub::run(&shared.node, &mut session.subscription, action).await,
            Ok(other) => vec![session_action(shared, session, other).await],
        };
        for reply in replies {
            metrics.commands.add(1);
            if reply.is_error() {
                metrics.command_errors.add(1);
            }
            reply.encode_as(out, session.resp3);
        }
    }
    if !last_command.is_empty() {
        session
            .client
            .touched(command::lookup(&last_command).map_or("NULL", |spec| spec.name));
    }
    held
}

/// Whether a command may change data, for `CLIENT PAUSE WRITE` (Redis's "may replicate"):
/// writes (sessions' included), `PUBLISH`, and `EXEC` of a transaction that queued either.
fn may_write(action: &Action, transaction: &Transaction) -> bool {
    match action {
        Action::Data { op, .. } => !op.is_read(),
        Action::PubSub(PubSubAction::Publish { .. }) => true,
        Action::Exec => transaction.may_write(),
        _ => false,
    }
}

/// What a subscribed RESP2 connection answers instead of running the command, if anything:
/// Redis's error for a command not allowed, or PING's subscribed-mode reply.
fn subscribed_mode(session: &Session, args: &[Vec<u8>]) -> Option<Reply> {
    if session.subscription.is_none() || session.resp3 {
        return None;
    }
    let spec = command::resolve(args).ok()?;
    if spec.name == "ping" {
        return Some(pubsub::subscribed_ping(args));
    }
    pubsub::refuse(spec.name, true, false)
}

/// `RESET`: out of subscribed mode, back to RESP2, linearizable reads, no name, and (with a
/// password set) not authenticated.
fn reset(shared: &ClientPort, session: &mut Session) -> Reply {
    session.subscription = None;
    session.resp3 = false;
    session.read_mode = ReadMode::Linearizable;
    session.name = None;
    session.authenticated = shared.node.options().password.is_none();
    Reply::Simple("RESET".to_string())
}

/// The next push for a subscribed connection; pending forever for one that is not.
async fn next_push(subscription: &mut Option<Subscription>) -> Option<Push> {
    match subscription {
        Some(subscription) => subscription.recv().await,
        None => std::future::pending().await,
    }
}

/// Writes `push` and whatever else is queued (up to a batch); `false` if the hub dropped the
/// subscriber (`push` is `None`): the connection is to close, told why if it fell behind.
async fn write_pushes(
    stream: &mut Stream,
    session: &mut Session,
    push: Option<Push>,
    out: &mut Vec<u8>,
) -> std::io::Result<bool> {
    let Some(push) = push else {
        if session.subscription.as_ref().is_none_or(Subscription::overflowed) {
            pubsub::overflow_error().encode_as(out, session.resp3);
            stream.write_all(out).await?;
        }
        return Ok(false);
    };
    pubsub::push_reply(push).encode_as(out, session.resp3);
    while out.len() < READ_CHUNK
        && let Some(push) = session.subscription.as_mut().and_then(Subscription::try_recv)
    {
        pubsub::push_reply(push).encode_as(out, session.resp3);
    }
    stream.write_all(out).await?;
    out.clear();
    Ok(true)
}

/// Runs a batch of data commands and appends their replies to `out`, encoded in place;
/// returns how many of them are errors.
async fn data(
    shared: &ClientPort,
    cursors: &CursorTable,
    session: &Session,
    batch: Vec<(Op, Shape)>,
    out: &mut Vec<u8>,
) -> u64 {
    let (ops, shapes): (Vec<Op>, Vec<Shape>) = batch.into_iter().unzip();
    let results = shared.node.path().execute_batch(ops, session.read_mode).await;
    let next_cursor = |key: &[u8]| cursors.cursor_for(key);
    let mut errors = 0;
    for (shape, result) in shapes.into_iter().zip(results) {
        let error = match result {
            Ok(response) => render::encode(shape, response, &next_cursor, out, session.resp3),
            Err(e) => {
                op_error(&e).encode_as(out, session.resp3);
                true
            }
        };
        errors += u64::from(error);
    }
    errors
}

/// `WATCH keys`: reads the keys' revisions linearizably (a barrier, like GET).
async fn watch(shared: &ClientPort, session: &mut Session, keys: Vec<Vec<u8>>) -> Reply {
    if let Some(refused) = session.transaction.refuse_watch() {
        return refused;
    }
    let reads = Transaction::watch_reads(&keys);
    let results = shared.node.path().execute_batch(reads, ReadMode::Linearizable).await;
    session.transaction.watched(keys, results)
}

/// `EXEC`: the queued data commands as one write down the request path, then the queued local
/// commands, their replies in queue order as one array.
async fn exec(shared: &ClientPort, session: &mut Session, cursors: &CursorTable) -> Reply {
    let mut exec = match session.transaction.exec() {
        Ok(exec) => exec,
        Err(reply) => return reply,
    };
    let outcome = match exec.take_write() {
        Some(op) => Some(shared.node.path().execute(op).await),
        None => None,
    };
    let answers = match exec.answers(outcome, &|key| cursors.cursor_for(key)) {
        Ok(answers) => answers,
        Err(reply) => return reply,
    };
    let mut replies = Vec::with_capacity(answers.len());
    for answer in answers {
        replies.push(match answer {
            Answer::Reply(reply) => reply,
            Answer::Local(action) => session_action(shared, session, action).await,
            Answer::Published(channel) => Reply::Integer(shared.node.events().receivers(&channel) as i64),
        });
    }
    Reply::Array(replies)
}

/// Commands about the connection, the node or the cluster rather than the data.
async fn session_action(shared: &ClientPort, session: &mut Session, action: Action) -> Reply {
    let node = &shared.node;
    match action {
        Action::Reply(reply) => reply,
        Action::Quit => {
            session.quit = true;
            Reply::ok()
        }
        Action::Auth { user, password } => auth(shared, session, user.as_deref(), &password).await,
        Action::Hello {
            protover,
            auth: credentials,
            name,
        } => {
            if let Some(version) = protover
                && version != 2
                && version != 3
            {
                return Reply::Error("NOPROTO unsupported protocol version".to_string());
            }
            if let Some((user, password)) = credentials {
                let reply = auth(shared, session, Some(&user), &password).await;
                if reply.is_error() {
                    return reply;
                }
            }
            if !session.authenticated {
                return Reply::Error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".to_string());
            }
            if let Some(name) = name {
                session.client.set_name(&name);
                session.name = Some(name);
            }
            if let Some(version) = protover {
                session.resp3 = version == 3;
                session.client.set_resp(if session.resp3 { 3 } else { 2 });
            }
            let role = if node.status().role == Role::Leader {
                "master"
            } else {
                "replica"
            };
            Reply::Map(vec![
                (Reply::text("server"), Reply::text("quorumkv")),
                (Reply::text("version"), Reply::text(env!("CARGO_PKG_VERSION"))),
                (Reply::text("proto"), Reply::Integer(if session.resp3 { 3 } else { 2 })),
                (
                    Reply::text("id"),
                    Reply::Integer(i64::try_from(session.id).unwrap_or(i64::MAX)),
                ),
                (Reply::text("mode"), Reply::text("standalone")),
                (Reply::text("role"), Reply::text(role)),
                (Reply::text("modules"), Reply::Array(Vec::new())),
            ])
        }
        Action::SetReadMode(mode) => {
            session.read_mode = mode;
            Reply::ok()
        }
        Action::SetName(name) => {
            session.client.set_name(&name);
            session.name = Some(name);
            Reply::ok()
        }
        Action::Role => role(shared),
        Action::Wait { replicas, timeout_ms } => wait(shared, replicas, timeout_ms).await,
        Action::ClientList(ids) => Reply::text(shared.clients.list(ids.as_deref())),
        Action::ClientInfo => Reply::text(session.client.line()),
        Action::ClientKill(filter) => {
            let killed = shared.clients.kill(&filter, session.id);
            match (filter.old_form, killed) {
                (true, 0) => Reply::Error("ERR No such client".to_string()),
                (true, _) => Reply::ok(),
                (false, n) => integer(n as u64),
            }
        }
        Action::ClientPause { timeout_ms, all } => {
            shared.pause.pause(Duration::from_millis(timeout_ms), all);
            Reply::ok()
        }
        Action::ClientUnpause => {
            shared.pause.unpause();
            Reply::ok()
        }
        Action::GetName => Reply::bulk_or_nil(session.name.clone()),
        Action::ClientId => Reply::Integer(i64::try_from(session.id).unwrap_or(i64::MAX)),
        Action::Info(sections) => Reply::text(info(shared, &sections)),
        Action::ConfigGet(params) => config_get(shared, &params),
        Action::RaftStatus => status_reply(&node.status()),
        Action::Introspect(what) => command::introspect(&what),
        Action::RaftLeader => match node.status().leader {
            Some((id, addrs)) => Reply::Array(vec![
                integer(id),
                Reply::text(addrs.raft_addr),
                Reply::text(addrs.client_addr),
            ]),
            None => op_error(&OpError::NoLeader),
        },
        Action::Snapshot => match node.snapshot().await {
            Ok(()) => Reply::ok(),
            Err(e) => op_error(&e),
        },
        Action::Admin(op) => match node.path().execute(op).await {
            Ok(_) => Reply::ok(),
            Err(e) => op_error(&e),
        },
        Action::Data { .. }
        | Action::PubSub(_)
        | Action::Multi
        | Action::Exec
        | Action::Discard
        | Action::Watch(_)
        | Action::Unwatch => Reply::Error(
            CommandError::Invalid("internal: data, pub/sub or transaction command routed as a session command".into())
                .to_string(),
        ),
    }
}

/// `AUTH`: see [`super::auth`] (constant time; failures slowed, then the connection closed).
async fn auth(shared: &ClientPort, session: &mut Session, user: Option<&[u8]>, given: &[u8]) -> Reply {
    let Some(password) = &shared.node.options().password else {
        return Reply::Error(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
                .to_string(),
        );
    };
    match session.attempts.check(password, user, given) {
        Verdict::Accepted => {
            session.authenticated = true;
            Reply::ok()
        }
        Verdict::Refused { pause, close } => {
            shared.node.metrics().auth_failures.add(1);
            tokio::time::sleep(pause).await;
            if close {
                tracing::warn!(
                    client = session.id,
                    "too many failed AUTH attempts; closing the connection"
                );
                session.quit = true;
            }
            Reply::Error("WRONGPASS invalid username-password pair or user is disabled.".to_string())
        }
    }
}

fn integer(n: u64) -> Reply {
    Reply::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

/// `ROLE`, as Redis shapes it. The leader is the `master`, with its commit index as the
/// offset and each follower's matched log index as its offset; any other node is a `slave`
/// of the leader it knows (`connect` while it knows none), with its applied index.
fn role(shared: &ClientPort) -> Reply {
    let node = &shared.node;
    let status = node.status();
    let split = |addr: &str| {
        let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "0"));
        (host.to_string(), port.to_string())
    };
    if status.role == Role::Leader {
        let metrics = node.raft().metrics().borrow_watched().clone();
        let matched = |id: &u64| {
            metrics
                .replication
                .as_ref()
                .and_then(|r| r.get(id).cloned().flatten())
                .map_or(0, |log| log.index)
        };
        let followers = status
            .voters
            .iter()
            .chain(&status.learners)
            .filter(|(id, _)| *id != status.id)
            .map(|(id, member)| {
                let (host, port) = split(&member.client_addr);
                Reply::Array(vec![
                    Reply::text(host),
                    Reply::text(port),
                    Reply::text(matched(id).to_string()),
                ])
            })
            .collect();
        return Reply::Array(vec![
            Reply::text("master"),
            integer(status.commit_index),
            Reply::Array(followers),
        ]);
    }
    let (host, port, state) = match &status.leader {
        Some((_, leader)) => {
            let (host, port) = split(&leader.client_addr);
            (host, port, "connected")
        }
        None => (String::new(), "0".to_string(), "connect"),
    };
    Reply::Array(vec![
        Reply::text("slave"),
        Reply::text(host),
        Reply::Integer(port.parse().unwrap_or(0)),
        Reply::text(state),
        integer(status.applied_index),
    ])
}

/// `WAIT numreplicas timeout`. Every write this connection was answered is committed, so it
/// is at or below the commit index when WAIT arrives. On the leader, WAIT counts the followers
/// (voters and learners) whose log holds that index, waiting until `replicas` of them do or the
/// timeout passes (0: no limit, as in Redis, unless more are asked for than there are
/// followers, which answers at once). A follower does not see the others' logs: it answers
/// how many followers a commit guarantees hold the writes, a majority of the voters less the
/// leader.
async fn wait(shared: &ClientPort, replicas: i64, timeout_ms: u64) -> Reply {
    let node = &shared.node;
    let status = node.status();
    if status.role != Role::Leader {
        return integer(status.voters.len() as u64 / 2);
    }
    let target = status.commit_index;
    let me = status.id;
    let followers = (status.voters.len() + status.learners.len()).saturating_sub(1);
    let holding = |metrics: &openraft::RaftMetrics<crate::NodeConfig>| {
        metrics.replication.as_ref().map_or(0, |r| {
            r.iter()
                .filter(|(id, matched)| **id != me && matched.as_ref().is_some_and(|log| log.index >= target))
                .count()
        })
    };
    let mut metrics = node.raft().metrics();
    let mut shutdown = node.shutdown_signal();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        let have = holding(&metrics.borrow_watched());
        if i64::try_from(have).unwrap_or(i64::MAX) >= replicas || usize::try_from(replicas).unwrap_or(0) > followers {
            return integer(have as u64);
        }
        let limit = async {
            if timeout_ms == 0 {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep_until(deadline).await;
        };
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() {
                return integer(have as u64);
            },
            _ = limit => return integer(holding(&metrics.borrow_watched()) as u64),
            _ = shutdown.changed() => return integer(have as u64),
        }
    }
}

/// `RAFT STATUS`: a map of fixed fields, in this order (a flat array of name, value pairs in
/// RESP2, as `HELLO` answers). Members are arrays of `[id, raft address, client address]`;
/// the leader fields are nil while no leader is known. Documented in the README.
fn status_reply(status: &Status) -> Reply {
    let member = |(id, node): &(u64, kv_core::raft::KvNode)| {
        Reply::Array(vec![
            integer(*id),
            Reply::text(node.raft_addr.clone()),
            Reply::text(node.client_addr.clone()),
        ])
    };
    let leader = status.leader.as_ref();
    let field = |name: &str, value: Reply| (Reply::text(name), value);
    Reply::Map(vec![
        field("node_id", integer(status.id)),
        field("role", Reply::text(status.role.as_str())),
        field("term", integer(status.term)),
        field("leader_id", leader.map_or(Reply::Nil, |(id, _)| integer(*id))),
        field(
            "leader_raft_addr",
            leader.map_or(Reply::Nil, |(_, n)| Reply::text(n.raft_addr.clone())),
        ),
        field(
            "leader_client_addr",
            leader.map_or(Reply::Nil, |(_, n)| Reply::text(n.client_addr.clone())),
        ),
        field("last_log_index", integer(status.last_log_index)),
        field("commit_index", integer(status.commit_index)),
        field("applied_index", integer(status.applied_index)),
        field("snapshot_index", integer(status.snapshot_index)),
        field("purged_index", integer(status.purged_index)),
        field("voters", Reply::Array(status.voters.iter().map(member).collect())),
        field("learners", Reply::Array(status.learners.iter().map(member).collect())),
    ])
}

/// The `# Raft` section of INFO.
fn raft_section(status: &Status) -> String {
    let members = |list: &[(u64, kv_core::raft::KvNode)]| {
        list.iter()
            .map(|(id, node)| format!("{id}@{}", node.raft_addr))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut text = String::new();
    let _ = write!(
        text,
        "# Raft\r\nraft_node_id:{}\r\nraft_role:{}\r\nraft_term:{}\r\nraft_leader_id:{}\r\nraft_leader_raft_addr:{}\r\nraft_leader_client_addr:{}\r\nraft_last_log_index:{}\r\nraft_commit_index:{}\r\nraft_applied_index:{}\r\nraft_snapshot_index:{}\r\nraft_purged_index:{}\r\nraft_voters:{}\r\nraft_learners:{}\r\n",
        status.id,
        status.role.as_str(),
        status.term,
        status.leader.as_ref().map_or(0, |(id, _)| *id),
        status.leader.as_ref().map_or("", |(_, n)| n.raft_addr.as_str()),
        status.leader.as_ref().map_or("", |(_, n)| n.client_addr.as_str()),
        status.last_log_index,
        status.commit_index,
        status.applied_index,
        status.snapshot_index,
        status.purged_index,
        members(&status.voters),
        members(&status.learners),
    );
    text
}

/// `CONFIG GET`: the node's settings under Redis's names where Redis has one; parameters it
/// does not know are left out, as Redis does. (redis-benchmark asks `save` and `appendonly`.)
fn config_get(shared: &ClientPort, params: &[String]) -> Reply {
    let options = shared.node.options();
    let pairs = params
        .iter()
        .filter_map(|param| {
            let value = match param.as_str() {
                "save" => String::new(),
                "appendonly" => "no".to_string(),
                "databases" => "1".to_string(),
                "maxclients" => options.max_clients.to_string(),
                "timeout" => options.idle_timeout.map_or(0, |t| t.as_secs()).to_string(),
                "proto-max-bulk-len" => options.max_bulk_len.to_string(),
                "max-reply-bytes" => options.limits.max_reply_bytes.to_string(),
                "client-output-limit" => options.output_limit.to_string(),
                "notify-keyspace-events" => shared.node.events().notify_flags().render(),
                _ => return None,
            };
            Some((Reply::text(param.clone()), Reply::text(value)))
        })
        .collect();
    Reply::Map(pairs)
}

/// The INFO text: server, clients, replication, raft, stats and keyspace sections.
fn info(shared: &ClientPort, sections: &[String]) -> String {
    let node = &shared.node;
    let status = node.status();
    let metrics = node.metrics();
    let wanted = |name: &str| {
        sections.is_empty()
            || sections
                .iter()
                .any(|s| s == name || s == "all" || s == "everything" || s == "default")
    };
    let mut text = String::new();
    if wanted("server") {
        let port = node.options().client_addr.rsplit(':').next().unwrap_or("");
        let _ = write!(
            text,
            "# Server\r\nredis_version:7.0.0\r\nquorumkv_version:{}\r\nredis_mode:standalone\r\nprocess_id:{}\r\ntcp_port:{port}\r\nrun_id:quorumkv-node-{}\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            status.id,
        );
    }
    if wanted("clients") {
        let _ = write!(
            text,
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nrejected_connections:{}\r\ntimeout:{}\r\nclient_output_limit:{}\r\nmax_reply_bytes:{}\r\n\r\n",
            metrics.connections_open.get(),
            node.options().max_clients,
            metrics.connections_rejected.get(),
            node.options().idle_timeout.map_or(0, |t| t.as_secs()),
            node.options().output_limit,
            node.options().limits.max_reply_bytes
        );
    }
    if wanted("replication") {
        let leader = status.role == Role::Leader;
        let _ = write!(
            text,
            "# Replication\r\nrole:{}\r\n",
            if leader { "master" } else { "slave" }
        );
        if leader {
            let _ = write!(
                text,
                "connected_slaves:{}\r\n",
                (status.voters.len() + status.learners.len()).saturating_sub(1)
            );
        } else if let Some((_, leader)) = &status.leader {
            let (host, port) = leader.client_addr.rsplit_once(':').unwrap_or(("", ""));
            let _ = write!(
                text,
                "master_host:{host}\r\nmaster_port:{port}\r\nmaster_link_status:up\r\n"
            );
        } else {
            let _ = write!(text, "master_link_status:down\r\n");
        }
        text.push_str("\r\n");
    }
    if wanted("raft") {
        text.push_str(&raft_section(&status));
        let _ = write!(
            text,
            "raft_stalled_followers:{}\r\nraft_data_lost:{}\r\n",
            metrics.replication_stalled.get(),
            u8::from(node.lost_data().is_lost())
        );
        text.push_str("\r\n");
    }
    if wanted("stats") {
        let _ = write!(
            text,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ntotal_error_replies:{}\r\nforwarded_commands:{}\r\n\r\n",
            metrics.connections_accepted.get(),
            metrics.commands.get(),
            metrics.command_errors.get(),
            metrics.forwarded.get(),
        );
    }
    if wanted("keyspace") {
        let keys = match node.query_local(&Query::Count) {
            kv_core::command::Response::Count(n) => n,
            _ => 0,
        };
        let _ = write!(text, "# Keyspace\r\ndb0:keys={keys},expires=0,avg_ttl=0\r\n");
    }
    text
}
