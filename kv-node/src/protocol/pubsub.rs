//! Pub/sub, keyspace notifications and prefix watches on a connection, over the node's
//! [event hub](crate::node::events).
//!
//! - `SUBSCRIBE`/`PSUBSCRIBE`/`UNSUBSCRIBE`/`PUNSUBSCRIBE` answer as Redis does, one
//!   `[kind, channel, count]` per channel; in RESP2 a subscribed connection accepts only
//!   those, `PING`, `QUIT`, `RESET` and `WATCHKEYS` (Redis's error otherwise); in RESP3 every
//!   command, with messages as push frames (`>`).
//! - `PUBLISH` goes through the Raft log (`Command::Publish`): every node's subscribers get
//!   the message when their node applies it, at most once, in commit order. It answers the
//!   subscribers (channel plus matching patterns) on the answering node when it answers.
//! - Keyspace notifications are raised by every node from what it applies, per its own
//!   `notify-keyspace-events` (`CONFIG SET`, not replicated: like Redis, a node setting).
//! - `WATCHKEYS prefix [SINCE revision]` (see the README): first a linearizable read of the
//!   current revision, then a wait until this node applied it, so a watch started after a
//!   write sees that write's revision as past; then `["watchkeys", prefix, start]` and one
//!   `["change", prefix, revision, key, event, value or nil]` per change after `start`.
//!
//! Tested in `kv-node/tests/pubsub.rs` and by redis-py in `tests/python/redis_py_check.py`.

use kv_core::command::Command;
use kv_core::command::Query;
use kv_core::command::Response;
use kv_core::wire::Op;

use super::command::PubSubAction;
use super::glob::Glob;
use super::op_error;
use super::reply::Reply;
use crate::node::Node;
use crate::node::events::Matcher;
use crate::node::events::NotifyFlags;
use crate::node::events::Push;
use crate::node::events::Subscription;

/// Commands a RESP2 connection may run while subscribed.
const ALLOWED_WHILE_SUBSCRIBED: &[&str] = &[
    "ping",
    "psubscribe",
    "punsubscribe",
    "quit",
    "reset",
    "subscribe",
    "unsubscribe",
    "watchkeys",
];

/// The error for a command a subscribed RESP2 connection may not run (`name` as the command
/// table spells it), or `None` if it may.
pub fn refuse(name: &str, subscribed: bool, resp3: bool) -> Option<Reply> {
    if !subscribed || resp3 || ALLOWED_WHILE_SUBSCRIBED.contains(&name) {
        return None;
    }
    Some(Reply::Error(format!(
        "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    )))
}

/// `PING [message]` on a subscribed RESP2 connection: `["pong", message or ""]`.
pub fn subscribed_ping(args: &[Vec<u8>]) -> Reply {
    Reply::Array(vec![
        Reply::text("pong"),
        Reply::Bulk(args.get(1).cloned().unwrap_or_default()),
    ])
}

fn count(n: usize) -> Reply {
    Reply::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

fn matcher(pattern: &[u8]) -> Matcher {
    let glob = Glob::new(pattern);
    Box::new(move |channel| glob.matches(channel))
}

/// (P)UNSUBSCRIBE: drops each of `names` (none: all of the current ones) with `remove`,
/// one confirmation each, or a single one when there was nothing to drop.
fn unsubscribe(
    subscription: &mut Option<Subscription>,
    kind: &str,
    mut names: Vec<Vec<u8>>,
    current: fn(&Subscription) -> &[Vec<u8>],
    remove: fn(&mut Subscription, &[u8]),
) -> Vec<Reply> {
    if names.is_empty() {
        names = subscription.as_ref().map_or_else(Vec::new, |s| current(s).to_vec());
    }
    if names.is_empty() {
        return vec![confirm(kind, None, subscription.as_ref())];
    }
    names
        .into_iter()
        .map(|name| {
            if let Some(sub) = subscription.as_mut() {
                remove(sub, &name);
            }
            confirm(kind, Some(name), subscription.as_ref())
        })
        .collect()
}

fn confirm(kind: &str, name: Option<Vec<u8>>, subscription: Option<&Subscription>) -> Reply {
    Reply::Push(vec![
        Reply::text(kind),
        Reply::bulk_or_nil(name),
        count(subscription.map_or(0, Subscription::count)),
    ])
}

/// Runs a pub/sub action (every one but `RESET`, which the session runs) and returns its
/// replies. `subscription` is the connection's; it is created by the first subscribe and
/// dropped (unsubscribing from the hub) when nothing is left.
pub async fn run(node: &Node, subscription: &mut Option<Subscription>, action: PubSubAction) -> Vec<Reply> {
    let hub = node.events();
    let replies = match action {
        PubSubAction::Subscribe(channels) => {
            let sub = subscription.get_or_insert_with(|| hub.subscribe());
            channels
                .into_iter()
                .map(|channel| {
                    sub.subscribe(&channel);
                    confirm("subscribe", Some(channel), Some(sub))
                })
                .collect()
        }
        PubSubAction::PSubscribe(patterns) => {
            let sub = subscription.get_or_insert_with(|| hub.subscribe());
            patterns
                .into_iter()
                .map(|pattern| {
                    sub.psubscribe(&pattern, matcher(&pattern));
                    confirm("psubscribe", Some(pattern), Some(sub))
                })
                .collect()
        }
        PubSubAction::Unsubscribe(channels) => unsubscribe(
            subscription,
            "unsubscribe",
            channels,
            Subscription::channels,
            Subscription::unsubscribe,
        ),
        PubSubAction::PUnsubscribe(patterns) => unsubscribe(
            subscription,
            "punsubscribe",
            patterns,
            Subscription::patterns,
            Subscription::punsubscribe,
        ),
        PubSubAction::Publish { channel, message } => {
            let op = Op::Write {
                command: Command::Publish {
                    channel: channel.clone(),
                    message,
                },
                ttl_ms: None,
            };
            vec![match node.path().execute(op).await {
                Ok(Response::Error(e)) => super::render::store_error(&e),
                Ok(_) => count(hub.receivers(&channel)),
                Err(e) => op_error(&e),
            }]
        }
        PubSubAction::Channels(pattern) => {
            let matcher = pattern.as_deref().map(matcher);
            vec![Reply::Array(
                hub.channels(matcher.as_ref()).into_iter().map(Reply::Bulk).collect(),
            )]
        }
        PubSubAction::NumSub(channels) => vec![Reply::Map(
            channels
                .into_iter()
                .map(|channel| {
                    let n = hub.numsub(&channel);
                    (Reply::Bulk(channel), count(n))
                })
                .collect(),
        )],
        PubSubAction::NumPat => vec![count(hub.numpat())],
        PubSubAction::ConfigSet(pairs) => vec![config_set(node, &pairs)],
        PubSubAction::WatchKeys { prefix, since } => watch(node, subscription, prefix, since).await,
        PubSubAction::Reset => vec![Reply::Error("ERR internal: RESET is run by the session".to_string())],
    };
    if subscription.as_ref().is_some_and(|s| s.count() == 0) {
        *subscription = None;
    }
    replies
}

/// `CONFIG SET`: only `notify-keyspace-events` is settable; every pair is checked before any
/// is applied, as Redis does.
fn config_set(node: &Node, pairs: &[(String, Vec<u8>)]) -> Reply {
    let mut flags = None;
    for (param, value) in pairs {
        if param != "notify-keyspace-events" {
            return Reply::Error(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{param}'"
            ));
        }
        match NotifyFlags::parse(value) {
            Some(parsed) => flags = Some(parsed),
            None => {
                return Reply::Error(
                    "ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'."
                        .to_string(),
                );
            }
        }
    }
    if let Some(flags) = flags {
        node.events().set_notify_flags(flags);
    }
    Reply::ok()
}

fn revision(n: u64) -> Reply {
    Reply::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

fn compacted(e: &crate::node::events::Compacted) -> Reply {
    Reply::Error(format!("COMPACTED {e}"))
}

/// `WATCHKEYS`: see the module docs.
async fn watch(
    node: &Node,
    subscription: &mut Option<Subscription>,
    prefix: Vec<u8>,
    since: Option<u64>,
) -> Vec<Reply> {
    let hub = node.events();
    if let Some(since) = since {
        let oldest = hub.oldest_revision();
        if since < oldest {
            return vec![compacted(&crate::node::events::Compacted { since, oldest })];
        }
    }
    // Linearizable start: the cluster's current revision, then this node caught up to it.
    let read = Op::Read(Query::GetRevision { key: prefix.clone() });
    let current = match node.path().execute(read).await {
        Ok(Response::Revisioned { revision, .. }) => revision,
        Ok(other) => return vec![Reply::Error(format!("ERR internal: {other:?} answers GETREV"))],
        Err(e) => return vec![op_error(&e)],
    };
    if let Err(e) = node.wait_applied(current).await {
        return vec![op_error(&e)];
    }
    let since = since.unwrap_or(current);
    let sub = subscription.get_or_insert_with(|| hub.subscribe());
    let backlog = match sub.watch(&prefix, since) {
        Ok(backlog) => backlog,
        Err(e) => return vec![compacted(&e)],
    };
    let mut replies = Vec::with_capacity(backlog.len() + 1);
    replies.push(Reply::Push(vec![
        Reply::text("watchkeys"),
        Reply::Bulk(prefix.clone()),
        revision(since),
    ]));
    let prefix: std::sync::Arc<[u8]> = prefix.into();
    replies.extend(backlog.into_iter().map(|change| {
        push_reply(Push::Change {
            prefix: prefix.clone(),
            change,
        })
    }));
    replies
}

/// A push as the client reads it: `message`, `pmessage` or a watch's `change`.
pub fn push_reply(push: Push) -> Reply {
    match push {
        Push::Message {
            pattern: None,
            channel,
            payload,
        } => Reply::Push(vec![
            Reply::text("message"),
            Reply::Bulk(channel.to_vec()),
            Reply::Bulk(payload.to_vec()),
        ]),
        Push::Message {
            pattern: Some(pattern),
            channel,
            payload,
        } => Reply::Push(vec![
            Reply::text("pmessage"),
            Reply::Bulk(pattern.to_vec()),
            Reply::Bulk(channel.to_vec()),
            Reply::Bulk(payload.to_vec()),
        ]),
        Push::Change { prefix, change } => Reply::Push(vec![
            Reply::text("change"),
            Reply::Bulk(prefix.to_vec()),
            revision(change.revision),
            Reply::Bulk(change.key.clone()),
            Reply::text(change.event),
            Reply::bulk_or_nil(change.value.clone()),
        ]),
    }
}

/// The error a subscriber's connection gets before it is closed for falling behind.
pub fn overflow_error() -> Reply {
    Reply::Error(format!(
        "ERR client output buffer limit reached for pubsub: more than {} messages undelivered; closing the connection (resume a watch with SINCE its last revision)",
        crate::node::events::QUEUE
    ))
}
